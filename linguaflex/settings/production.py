"""Production: refuses to start without SECRET_KEY or with DEBUG on; HTTPS everywhere."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F401,F403
from .base import DEBUG, LOG_LEVEL, SECRET_KEY, STRIPE_LOG_LEVEL
from .env import env_bool, env_int, env_str
from .logging_config import logging_config

if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set in production.")
if DEBUG:
    raise ImproperlyConfigured("DEBUG must be off in production.")

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
# Health checks from the load balancer arrive over plain HTTP on the private network.
SECURE_REDIRECT_EXEMPT = [r"^health/$", r"^health/ready/$", r"^metrics/$"]
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
DATABASES["default"]["CONN_MAX_AGE"] = env_int("DB_CONN_MAX_AGE", 60)  # noqa: F405

# Hashed, compressed static files, served by WhiteNoise with far-future caching. The manifest
# comes from `manage.py collectstatic --noinput` (the set-up runs it): without it pages 500.
WHITENOISE_USE_FINDERS = False
WHITENOISE_AUTOREFRESH = False
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# One JSON object per log line (card-redacted, with the request id) for the log pipeline.
LOG_FORMAT = env_str("LOG_FORMAT", "json").lower()
LOGGING = logging_config(level=LOG_LEVEL, stripe_level=STRIPE_LOG_LEVEL, fmt=LOG_FORMAT)
