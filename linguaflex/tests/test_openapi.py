"""The API docs: public, and a schema that names every endpoint of this issue."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_schema_is_public_and_lists_the_foundation_endpoints(api_client):
    response = api_client.get("/api/schema/", HTTP_ACCEPT="application/json")

    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in ("/accounts/register/", "/accounts/login/", "/accounts/token/refresh/", "/accounts/logout/",
                 "/accounts/me/", "/accounts/password-reset/", "/accounts/password-reset/confirm/", "/gigs/",
                 "/gigs/{gig_id}/", "/bookings/", "/bookings/{booking_id}/", "/bookings/{booking_id}/confirm/",
                 "/bookings/{booking_id}/complete/", "/health/"):
        assert path in paths, path


def test_gig_create_documents_its_error_envelopes(api_client):
    operation = api_client.get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]["/gigs/"]["post"]

    assert {"201", "400", "401", "403"} <= set(operation["responses"])


def test_swagger_ui_is_public(api_client):
    assert api_client.get("/api/docs/").status_code == 200


@pytest.mark.parametrize("url", ["/api/schema/", "/api/docs/"])
def test_api_docs_ignore_a_stale_authorization_header(api_client, url):
    api_client.credentials(HTTP_AUTHORIZATION="Bearer stale.or.garbage")

    assert api_client.get(url).status_code == 200


@pytest.mark.parametrize("path", ["/gigs/", "/bookings/", "/stripe-payments/payment-methods/",
                                  "/stripe-payments/payments/", "/stripe-payments/refunds/"])
def test_paginated_lists_are_documented_with_the_page_shape(api_client, path):
    schema = api_client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    ref = schema["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    component = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]

    assert {"count", "next", "previous", "results"} <= set(component["properties"])
