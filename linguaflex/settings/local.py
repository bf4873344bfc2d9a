"""Development (`make run`): DEBUG on, console e-mail, a throwaway secret key when none is set, and
generous throttle rates.

The contract's rates (base.py: 5 logins a minute per e-mail, 30 payments a minute, ...) protect a
production server; on a development server they stop the project's own tools (the flow script,
the guide's curl blocks, newman) after a few dozen calls. Here every scope allows
``DEVELOPMENT_THROTTLE_RATE``; ``THROTTLE_RATES`` still overrides any scope (``payment=5/min`` to
try the throttle by hand).

Without a STRIPE_SECRET_KEY, Stripe is ``make run``'s local emulator (127.0.0.1:STRIPE_EMULATOR_PORT,
12111): so are the management commands run in another terminal (``pay_out_teachers``,
``check_ledger --stripe``, ``reconcile_payments``), not api.stripe.com with no key.
"""

from .base import *  # noqa: F401,F403
from .base import DEFAULT_THROTTLE_RATES as _CONTRACT_RATES
from .base import REST_FRAMEWORK as _REST_FRAMEWORK
from .base import SECRET_KEY as _SECRET_KEY
from .base import STRIPE_SECRET_KEY as _STRIPE_SECRET_KEY
from .env import env_bool, env_str, parse_throttle_rates

DEBUG = env_bool("DEBUG", True)
SECRET_KEY = _SECRET_KEY or "django-insecure-local-development-only-key-change-me"
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
CORS_ALLOW_ALL_ORIGINS = not env_str("CORS_ALLOWED_ORIGINS")

DEVELOPMENT_THROTTLE_RATE = "1000/min"
DEVELOPMENT_THROTTLE_RATES = {scope: DEVELOPMENT_THROTTLE_RATE for scope in _CONTRACT_RATES}
THROTTLE_RATES = parse_throttle_rates(env_str("THROTTLE_RATES"), DEVELOPMENT_THROTTLE_RATES)
REST_FRAMEWORK = {**_REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": THROTTLE_RATES}

if not _STRIPE_SECRET_KEY.strip():
    STRIPE_SECRET_KEY = "sk_test_linguaflex_local_emulator"  # as linguaflex.devserver gives the server
    STRIPE_API_BASE = env_str("STRIPE_API_BASE", f"http://127.0.0.1:{env_str('STRIPE_EMULATOR_PORT', '12111')}")
