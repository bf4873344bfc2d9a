"""Development: DEBUG on, console e-mail, a throwaway secret key when none is set."""

from .base import *  # noqa: F401,F403
from .base import SECRET_KEY as _SECRET_KEY
from .env import env_bool, env_str

DEBUG = env_bool("DEBUG", True)
SECRET_KEY = _SECRET_KEY or "django-insecure-local-development-only-key-change-me"
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
CORS_ALLOW_ALL_ORIGINS = not env_str("CORS_ALLOWED_ORIGINS")
