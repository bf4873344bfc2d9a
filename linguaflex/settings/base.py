"""Settings shared by every environment. Values come from the environment (see README)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from dotenv import load_dotenv

from .env import env_bool, env_float, env_int, env_list, env_str, parse_throttle_rates
from .logging_config import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent.parent
# An optional .env in development; real environment variables win.
load_dotenv(BASE_DIR / ".env", override=False)

SECRET_KEY = env_str("SECRET_KEY")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    # Swagger UI and ReDoc served from this project's static files (no CDN): /api/docs/, /api/redoc/.
    "drf_spectacular_sidecar",
    # The project package itself, for its templates (the index page, the CDN-free ReDoc page).
    "linguaflex",
    "accounts",
    "gigs",
    "bookings",
    "stripe_payments",
]

MIDDLEWARE = [
    # First: every later layer, its errors and its log lines included, runs under the request's id.
    "linguaflex.request_id.RequestIdMiddleware",
    "linguaflex.metrics.MetricsMiddleware",
    # With no Celery broker, e-mails are sent in-process once the response has gone out.
    "linguaflex.after_response.AfterResponseMiddleware",
    "linguaflex.deadline.RequestDeadlineMiddleware",
    # Card data in a URL is refused before anything else reads or logs the request.
    "linguaflex.middleware.CardDataInQueryStringMiddleware",
    "linguaflex.middleware.JsonNotFoundMiddleware",
    "linguaflex.middleware.RequestSizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files (the admin's CSS, Swagger UI, ReDoc) under gunicorn, after the security headers.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "linguaflex.urls"
# An API answers an unknown path with the JSON 404, not a redirect that drops a POST body.
APPEND_SLASH = False
WSGI_APPLICATION = "linguaflex.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 0),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Concurrent writers wait for the lock (BEGIN IMMEDIATE + busy timeout) instead of failing
    # with "database is locked"; WAL lets readers proceed while one writer works.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
# Services own their transactions (STYLE.md §6): a failed payment's record must survive the error.
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (throttles, idempotency waits) ---------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient"},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Auth -----------------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Filled by `manage.py collectstatic` (the set-up runs it) and served by WhiteNoise in production,
# where the manifest storage needs it (settings/production.py). Git-ignored.
STATIC_ROOT = BASE_DIR / "staticfiles"
# Outside production (make run, tests) nothing runs collectstatic: WhiteNoise finds each file in the
# apps when it is asked for. Production turns both off and serves only STATIC_ROOT.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True

# Bodies over 64 KiB are refused before any parser runs (linguaflex.middleware).
DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
MAX_JSON_DEPTH = 32

# --- REST framework ---------------------------------------------------------------------------
DEFAULT_THROTTLE_RATES = {
    "login_email": "5/min",
    "login_ip": "20/min",
    "register": "10/hour",
    "payment": "30/min",
}
THROTTLE_RATES = parse_throttle_rates(env_str("THROTTLE_RATES"), DEFAULT_THROTTLE_RATES)

REST_FRAMEWORK = {
    # JWT first, so a missing or bad token answers 401 with WWW-Authenticate, not 403.
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework_simplejwt.authentication.JWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["linguaflex.parsers.SafeJSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "linguaflex.negotiation.JSONFallbackContentNegotiation",
    "DEFAULT_PAGINATION_CLASS": "linguaflex.pagination.StandardPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_THROTTLE_RATES": THROTTLE_RATES,
    "EXCEPTION_HANDLER": "linguaflex.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Proxies in front of the app that add to X-Forwarded-For (deploy/nginx.conf: 1). 0 (the
    # default, no proxy): the client's address is REMOTE_ADDR and X-Forwarded-For is ignored, so a
    # client cannot pick the address its throttles count against.
    "NUM_PROXIES": env_int("NUM_PROXIES", 0),
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("JWT_ACCESS_MINUTES", 30)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("JWT_REFRESH_DAYS", 7)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "LinguaFlex API",
    "DESCRIPTION": "Language lessons marketplace: accounts, gigs, bookings and server-side Stripe payments.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and Swagger UI are public and ignore any Authorization header, stale or not.
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    # Swagger UI and ReDoc come from drf-spectacular-sidecar's pinned copies in the static files.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # No call to the public validator.swagger.io: the docs work offline.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/",
    "ENUM_NAME_OVERRIDES": {
        "UserRoleEnum": "accounts.models.Role",
        "BookingStatusEnum": "bookings.models.BookingStatus",
        "PaymentStatusEnum": "stripe_payments.models.PaymentStatus",
        "RefundRequestStatusEnum": "stripe_payments.models.RefundRequestStatus",
        "WebhookEventStatusEnum": "stripe_payments.models.WebhookEventStatus",
        "RegisterRoleEnum": [("student", "Student"), ("teacher", "Teacher")],
    },
    "APPEND_COMPONENTS": {
        "securitySchemes": {
            "jwtAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
        }
    },
}

# --- CORS ---------------------------------------------------------------------------------------
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS", [])
CORS_ALLOW_HEADERS = (
    "accept",
    "authorization",
    "content-type",
    "idempotency-key",
    "origin",
    "user-agent",
)
# A browser client may read the request id (to quote it in a support request) and whether a list's
# count is an estimate (linguaflex/pagination.py).
CORS_EXPOSE_HEADERS = ["x-request-id", "x-total-count-estimated"]

# --- E-mail ---------------------------------------------------------------------------------------
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
# Without a broker, e-mails are sent once the response has gone out (linguaflex/after_response.py).
DEFER_AFTER_RESPONSE = env_bool("DEFER_AFTER_RESPONSE", True)
# Seconds an SMTP connection may hang: a stuck mail server must not hold a worker (and the e-mail
# row's lock) for ever; the task retries later.
EMAIL_TIMEOUT = env_float("EMAIL_TIMEOUT", 15.0)
# The directory django.core.mail.backends.filebased.EmailBackend writes to (make stack uses it).
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH") or None
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "LinguaFlex <no-reply@linguaflex.local>")

# --- LinguaFlex and Stripe ---------------------------------------------------------------------
PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
BOOKING_CONFIRMATION_HOURS = env_int("BOOKING_CONFIRMATION_HOURS", 48)
STRIPE_SECRET_KEY = env_str("STRIPE_SECRET_KEY")
STRIPE_PUBLISHABLE_KEY = env_str("STRIPE_PUBLISHABLE_KEY")
STRIPE_WEBHOOK_SECRET = env_str("STRIPE_WEBHOOK_SECRET")
# The signing secret of the Connect webhook endpoint (events of teachers' connected accounts, such
# as account.updated, go to a separate endpoint at Stripe; it may point at the same URL).
STRIPE_CONNECT_WEBHOOK_SECRET = env_str("STRIPE_CONNECT_WEBHOOK_SECRET")
STRIPE_API_BASE = env_str("STRIPE_API_BASE", "https://api.stripe.com").rstrip("/")
STRIPE_ALLOW_RAW_CARD_DATA = env_bool("STRIPE_ALLOW_RAW_CARD_DATA", False)
STRIPE_CONNECT_TIMEOUT = env_float("STRIPE_CONNECT_TIMEOUT", 5.0)
STRIPE_READ_TIMEOUT = env_float("STRIPE_READ_TIMEOUT", 20.0)
STRIPE_MAX_NETWORK_RETRIES = env_int("STRIPE_MAX_NETWORK_RETRIES", 2)
# The whole request's budget for Stripe, across every call and retry (linguaflex.deadline): kept
# below the proxy's 60 s (deploy/nginx.conf) so a client always hears the contract's 504 first.
# Measured from the proxy's X-Request-Start when it sends one, so time spent queued counts too.
REQUEST_DEADLINE_SECONDS = env_float("REQUEST_DEADLINE_SECONDS", 25.0)
STRIPE_WEBHOOK_TOLERANCE = 300
IDEMPOTENCY_KEY_TTL_HOURS = 24
IDEMPOTENCY_WAIT_SECONDS = env_float("IDEMPOTENCY_WAIT_SECONDS", 10.0)

# --- Request ids, metrics ------------------------------------------------------------------------
# Take the proxy's X-Request-ID as the request's id (linguaflex/request_id.py). Only behind a proxy
# that always sets it itself (deploy/nginx.conf does): otherwise any client could choose it.
TRUST_X_REQUEST_ID = env_bool("TRUST_X_REQUEST_ID", False)
# The bearer token Prometheus sends to /metrics/; without one only loopback, not proxied, may read it.
METRICS_TOKEN = env_str("METRICS_TOKEN")
# Gauges computed at each scrape from the shared state, one collector per app (linguaflex/metrics.py).
METRICS_SCRAPE_COLLECTORS = ["stripe_payments.metrics.WebhookBacklogCollector"]

# --- Celery (linguaflex/celery.py) ------------------------------------------------------------------
# Redis (redis://host:6379/1) or RabbitMQ (amqp://user:password@host:5672//). Empty: every task runs
# in-process when it is sent (make run, the tests); no worker or beat is needed then.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
# Results are never read: tasks record their outcome in the database.
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
# A message is acknowledged when its task has finished, and given back when the worker dies: a
# killed worker's task runs again elsewhere (every task is idempotent). One message at a time.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Redis gives an unacknowledged message back after this long: above the longest retry countdown.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600)}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A stored webhook event still ``received`` this long after it arrived lost its task message (a
# worker killed while holding it: Redis would give it back only after the visibility timeout), and
# the beat job requeue_webhook_events sends it again.
WEBHOOK_REQUEUE_AFTER_SECONDS = env_int("WEBHOOK_REQUEUE_AFTER_SECONDS", 300)
# Sending a task must not hang a request when the broker is down: the row it works on is stored,
# and a beat job sends it again (stripe_payments/tasks.py).
CELERY_BROKER_CONNECTION_TIMEOUT = env_float("CELERY_BROKER_CONNECTION_TIMEOUT", 2.0)
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0.1, "interval_step": 0.2,
                                    "interval_max": 0.5}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False  # LOGGING above (JSON, card-redacted) applies in the worker
CELERY_TIMEZONE = "UTC"


def _every(task: str, seconds: int) -> dict:
    """Run ``task`` every ``seconds``; each run expires after its period, so a backlog never piles up."""
    return {"task": task, "schedule": float(seconds), "options": {"expires": seconds}}


CELERY_BEAT_SCHEDULE = {
    "requeue-webhook-events": _every("stripe_payments.tasks.requeue_webhook_events", 60),
    "resend-pending-emails": _every("linguaflex.tasks.resend_pending_emails", 120),
    "expire-pending-bookings": _every("stripe_payments.tasks.expire_pending_bookings", 300),
    "reconcile-payments": _every("stripe_payments.tasks.reconcile_payments", 600),
    "purge-idempotency-keys": _every("stripe_payments.tasks.purge_idempotency_keys", 3600),
    "pay-out-teachers": _every("stripe_payments.tasks.pay_out_teachers", 3600),
    "check-ledger": _every("stripe_payments.tasks.check_ledger", 1800),
    # With Stripe's balance transactions (API calls): once a day, at 03:30 UTC.
    "check-ledger-stripe": {"task": "stripe_payments.tasks.check_ledger", "schedule": crontab(hour=3, minute=30),
                            "kwargs": {"stripe": True}, "options": {"expires": 3600}},
}

# --- Logging: card numbers masked, the request id on every record (logging_config.py) ----------------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
STRIPE_LOG_LEVEL = env_str("STRIPE_LOG_LEVEL", "WARNING").upper()
# plain (development) or json (one event per line; production's default).
LOG_FORMAT = env_str("LOG_FORMAT", "plain").lower()
LOGGING = logging_config(level=LOG_LEVEL, stripe_level=STRIPE_LOG_LEVEL, fmt=LOG_FORMAT)
DEFAULT_EXCEPTION_REPORTER_FILTER = "linguaflex.logging.CardDataExceptionReporterFilter"

# The stripe SDK's own STRIPE_LOG switch prints request bodies straight to stderr, past the
# logging filters above: refuse it rather than risk card data on a console.
if env_str("STRIPE_LOG").strip():
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        "STRIPE_LOG must not be set: it prints Stripe request bodies past the redacting log "
        "filters. Use STRIPE_LOG_LEVEL=DEBUG, which goes through them."
    )

# Optional error reporting (SENTRY_DSN): card data is scrubbed before an event leaves (linguaflex/sentry.py).
if env_str("SENTRY_DSN").strip():
    from linguaflex.sentry import init_from_env

    init_from_env()
