"""Tests: fast hashing, in-memory e-mail, isolated cache, Stripe pointed at the test emulator."""

from .base import *  # noqa: F401,F403
from .base import CACHES as _CACHES
from .base import SECRET_KEY as _SECRET_KEY

DEBUG = False
SECRET_KEY = _SECRET_KEY or "test-secret-key-not-for-production"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
ALLOWED_HOSTS = ["*"]
CACHES = _CACHES
# The gateway is pointed at the in-process emulator by the test fixtures.
STRIPE_SECRET_KEY = "sk_test_linguaflex_emulator"
STRIPE_WEBHOOK_SECRET = "whsec_test_linguaflex"
STRIPE_API_BASE = "http://127.0.0.1:9"
STRIPE_CONNECT_TIMEOUT = 2.0
STRIPE_READ_TIMEOUT = 5.0
IDEMPOTENCY_WAIT_SECONDS = 3.0
# Deferred work runs at once: an in-process live server must not still write after a test's
# response, while the test tears its database down (linguaflex/after_response.py; its own tests
# turn deferral on).
DEFER_AFTER_RESPONSE = False
