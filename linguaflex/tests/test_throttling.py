"""Throttles: the contract's scopes, keyed as the contract says, shared through Redis across workers."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.test import override_settings

from linguaflex.throttling import LoginEmailThrottle, PaymentThrottle

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
REDIS_CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": "redis://127.0.0.1:6379/15",
        "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient"},
    }
}


def _login(client, email, password="wrong-password"):
    return client.post(LOGIN, {"email": email, "password": password}, format="json")


def test_login_email_throttle_ignores_requests_without_an_email(rf):
    request = rf.post(LOGIN)
    request.data = {"password": "x"}

    assert LoginEmailThrottle().get_cache_key(request, None) is None


def test_login_email_throttle_keys_on_the_lower_cased_email(rf):
    request = rf.post(LOGIN)
    request.data = {"email": "  Someone@Example.TEST "}

    assert LoginEmailThrottle().get_cache_key(request, None).endswith("someone@example.test")


def test_payment_throttle_ignores_reads_and_anonymous_callers(rf, student):
    read = rf.get("/stripe-payments/payments/")
    read.user = student
    anonymous_write = rf.post("/stripe-payments/process-payment/")
    anonymous_write.user = None
    write = rf.post("/stripe-payments/process-payment/")
    write.user = student

    throttle = PaymentThrottle()
    assert throttle.get_cache_key(read, None) is None
    assert throttle.get_cache_key(anonymous_write, None) is None
    assert throttle.get_cache_key(write, None).endswith(str(student.pk))


def test_throttle_rates_take_effect_without_reimport(api_client, student, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
                                                          "login_email": "2/min"}}

    assert _login(api_client, student.email).status_code == 401
    assert _login(api_client, student.email).status_code == 401
    assert _login(api_client, student.email).status_code == 429


@pytest.mark.redis
def test_login_throttle_counts_in_redis_so_every_worker_shares_it(api_client, student):
    with override_settings(CACHES=REDIS_CACHES):
        from django_redis import get_redis_connection

        cache.clear()
        try:
            for _ in range(5):
                assert _login(api_client, student.email).status_code == 401

            response = _login(api_client, student.email, "password123")

            assert response.status_code == 429
            assert response.json()["error"]["code"] == "throttled"
            assert int(response["Retry-After"]) > 0
            keys = [key.decode() for key in get_redis_connection("default").keys("*throttle_login_email_*")]
            assert any(key.endswith(student.email) for key in keys)
        finally:
            cache.clear()
