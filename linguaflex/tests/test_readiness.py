"""GET /health/ready/: the database, Redis and the broker, each answering or not."""

from __future__ import annotations

import pytest
from django.test import override_settings

from linguaflex import health

pytestmark = pytest.mark.django_db

URL = "/health/ready/"


def _not_ready(response) -> dict:
    assert response.status_code == 503
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == "not_ready"
    assert body["error"]["request_id"] == response["X-Request-ID"]
    assert body["status"] == "error"
    return body


def test_ready_in_the_tests_setup(api_client):
    response = api_client.get(URL)

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "redis": "not_configured",
                               "broker": "not_configured"}


def test_ready_needs_no_authentication_and_ignores_a_stale_token(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Bearer expired.or.garbage")

    assert api_client.get(URL).status_code == 200


@override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0")
def test_an_unreachable_broker_is_not_ready(api_client):
    body = _not_ready(api_client.get(URL))

    assert body["broker"] == "error"
    assert body["database"] == "ok"
    assert body["redis"] == "not_configured"
    assert "broker" in body["error"]["message"]


def test_an_unreachable_database_is_not_ready(api_client, monkeypatch):
    monkeypatch.setattr(health, "database_ok", lambda: False)

    body = _not_ready(api_client.get(URL))

    assert body["database"] == "error"
    assert body["broker"] == "not_configured"
    assert "database" in body["error"]["message"]


@override_settings(REDIS_URL="redis://x")
def test_an_unreachable_redis_is_not_ready(api_client, monkeypatch):
    def refused(*args, **kwargs):
        raise ConnectionError("connection refused")

    monkeypatch.setattr(health.cache, "set", refused)

    body = _not_ready(api_client.get(URL))

    assert body["redis"] == "error"
    assert body["database"] == "ok"
    assert "redis" in body["error"]["message"]


@override_settings(REDIS_URL="redis://x")
def test_a_redis_that_answers_is_ready(api_client):
    """The in-process cache stands in for Redis here: it stores and gives back the probe."""
    response = api_client.get(URL)

    assert response.status_code == 200
    assert response.json()["redis"] == "ok"


@override_settings(REDIS_URL="redis://x")
def test_a_redis_that_loses_the_probe_is_not_ready(api_client, monkeypatch):
    monkeypatch.setattr(health.cache, "get", lambda *args, **kwargs: None)

    assert _not_ready(api_client.get(URL))["redis"] == "error"


def test_every_failing_part_is_named(api_client, monkeypatch):
    monkeypatch.setattr(health, "database_ok", lambda: False)
    monkeypatch.setattr(health, "broker_state", lambda: health.ERROR)

    body = _not_ready(api_client.get(URL))

    assert body["database"] == body["broker"] == "error"
    assert "database" in body["error"]["message"] and "broker" in body["error"]["message"]


def test_ready_refuses_post_with_405(api_client):
    response = api_client.post(URL, {}, format="json")

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
