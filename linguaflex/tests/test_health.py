"""GET /health/: public, checks the database."""

from __future__ import annotations

import pytest
from django.db import OperationalError

from linguaflex import health

pytestmark = pytest.mark.django_db


def test_health_is_ok_without_authentication(api_client):
    response = api_client.get("/health/")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_health_ignores_a_stale_authorization_header(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Bearer expired.or.garbage")

    assert api_client.get("/health/").status_code == 200


def test_health_answers_503_when_the_database_is_unreachable(api_client, monkeypatch):
    class BrokenConnection:
        def cursor(self):
            raise OperationalError("connection refused")

    monkeypatch.setattr(health, "connection", BrokenConnection())

    response = api_client.get("/health/")

    assert response.status_code == 503
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == "database_unavailable"
    assert body["database"] == "error"


def test_health_refuses_post_with_405(api_client):
    response = api_client.post("/health/", {}, format="json")

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
