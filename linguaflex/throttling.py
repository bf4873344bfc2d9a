"""Throttles with the contract's scopes. Rates are read per request, so THROTTLE_RATES and
``override_settings`` take effect without re-importing anything."""

from __future__ import annotations

from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle


class _ScopedThrottle(SimpleRateThrottle):
    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)


class LoginEmailThrottle(_ScopedThrottle):
    """Login attempts per e-mail address, whatever the client address."""

    scope = "login_email"

    def get_cache_key(self, request, view):
        email = request.data.get("email") if hasattr(request.data, "get") else None
        if not isinstance(email, str) or not email.strip():
            return None
        return self.cache_format % {"scope": self.scope, "ident": email.strip().lower()}


class LoginIPThrottle(_ScopedThrottle):
    scope = "login_ip"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class RegisterThrottle(LoginIPThrottle):
    """Registrations (and password resets) per client address."""

    scope = "register"


class PaymentThrottle(_ScopedThrottle):
    """Every payment, card and refund write, per user."""

    scope = "payment"

    def get_cache_key(self, request, view):
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return None
        if not request.user or not request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}
