"""The API docs: public, and a schema that names every endpoint of this issue."""

from __future__ import annotations

import re
from datetime import date

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


# --- the schema states the rules the code applies -------------------------------------------------
@pytest.fixture
def schema(api_client):
    return api_client.get("/api/schema/", HTTP_ACCEPT="application/json").json()


def _properties(schema, component: str) -> dict:
    return schema["components"]["schemas"][component]["properties"]


def _parameters(schema, path: str) -> dict:
    return {parameter["name"]: parameter for parameter in schema["paths"][path]["get"]["parameters"]}


def test_schema_is_valid_openapi(schema):
    from drf_spectacular.validation import validate_schema

    validate_schema(schema)


def test_no_schema_pattern_uses_backslash_d_which_matches_any_unicode_digit(schema):
    patterns = []
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            patterns += [value for key, value in node.items() if key == "pattern"]
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)

    assert patterns
    assert not [pattern for pattern in patterns if "\\d" in pattern]


@pytest.mark.parametrize(("component", "field"), [("RegisterInputRequest", "password"),
                                                  ("PasswordResetConfirmInputRequest", "new_password")])
def test_passwords_state_the_minimum_length_and_djangos_other_rules(schema, component, field):
    password = _properties(schema, component)[field]

    assert password["minLength"] == 8
    for rule in ("at least 8 characters", "entirely numeric", "commonly used", "similar"):
        assert rule in password["description"], rule


def test_a_password_shorter_than_the_schema_minimum_is_a_400(api_client):
    response = api_client.post("/accounts/register/", {"email": "short@example.test", "password": "Xy-4567",
                                                       "role": "student"}, format="json")

    assert response.status_code == 400
    assert "password" in response.json()["error"]["fields"]


CARD_SAMPLES = [
    ("4242424242424242", True), ("4242 4242 4242 4242", True), ("4242-4242-4242-4242", True),
    ("378282246310005", True), ("4222222222222", True), (" 4242 4242 4242 4242 ", True),
    ("\t4242424242424242", False), ("\u0664\u0662" * 8, False), ("424242424242", False),
    ("42424242424242424242", False), ("4242_4242_4242_4242", False), ("4242.4242.4242.4242", False),
]


@pytest.mark.parametrize(("number", "accepted"), CARD_SAMPLES)
def test_card_number_pattern_accepts_exactly_the_formats_the_code_accepts(schema, number, accepted):
    from stripe_payments.cards import card_errors, normalize_number

    card = _properties(schema, "CardDetailsRequest")["card_number"]
    code_accepts = "card_number" not in card_errors(number=normalize_number(number), exp_month=12, exp_year=2099,
                                                    cvc="1234" if number.startswith("37") else "123")

    assert bool(re.search(card["pattern"], number)) is accepted
    assert code_accepts is accepted  # every sample is Luhn-valid: only the format decides
    assert "Luhn" in card["description"]


def test_cvc_pattern_is_three_or_four_ascii_digits(schema):
    cvc = _properties(schema, "CardDetailsRequest")["cvc"]

    assert cvc["pattern"] == "^[0-9]{3,4}$"
    assert "American Express" in cvc["description"]


def test_expiry_is_a_month_and_a_year_not_in_the_past(schema):
    card = _properties(schema, "CardDetailsRequest")
    year = date.today().year

    assert (card["exp_month"]["minimum"], card["exp_month"]["maximum"]) == (1, 12)
    assert (card["exp_year"]["minimum"], card["exp_year"]["maximum"]) == (year, year + 50)
    assert card["exp_year"]["type"] == card["exp_month"]["type"] == "integer"


@pytest.mark.parametrize("component", ["GigInputRequest", "PatchedGigUpdateRequest"])
def test_gig_price_states_its_range_and_two_decimals_as_a_string_or_a_number(schema, component):
    price = _properties(schema, component)["price"]
    string, number = sorted(price["oneOf"], key=lambda option: option["type"], reverse=True)

    assert string["type"] == "string" and number["type"] == "number"
    assert (number["minimum"], number["maximum"], number["multipleOf"]) == (0.5, 10000.0, 0.01)
    for text, matches in [("50.00", True), ("50", True), ("0.5", True), ("50.505", False), ("\u0665\u0660", False),
                          (" 50", False), ("-5", False), ("5e1", False)]:
        assert bool(re.search(string["pattern"], text)) is matches, text
    assert "0.50" in price["description"] and "10000.00" in price["description"]


def test_gig_duration_is_fifteen_to_two_hundred_forty_minutes(schema):
    duration = _properties(schema, "GigInputRequest")["duration_minutes"]

    assert (duration["type"], duration["minimum"], duration["maximum"]) == ("integer", 15, 240)


@pytest.mark.parametrize("path", ["/gigs/", "/bookings/", "/stripe-payments/payment-methods/",
                                  "/stripe-payments/payments/", "/stripe-payments/refunds/"])
def test_page_parameters_are_integers_of_one_or_more(schema, path):
    parameters = _parameters(schema, path)

    for name in ("page", "page_size"):
        assert parameters[name]["schema"] == {"type": "integer", "minimum": 1}, name
    assert "100" in parameters["page_size"]["description"]


@pytest.mark.parametrize("path", ["/bookings/", "/stripe-payments/payments/", "/stripe-payments/refunds/"])
def test_status_filters_are_a_non_empty_enum(schema, path):
    status = _parameters(schema, path)["status"]["schema"]

    assert status["enum"] and status["minLength"] == 1
    assert "" not in status["enum"]


def test_stripe_signature_parameter_states_stripes_format():
    from linguaflex.openapi import STRIPE_SIGNATURE_HEADER
    from stripe_emulator.webhooks import sign

    pattern = STRIPE_SIGNATURE_HEADER.type["pattern"]

    assert re.search(pattern, sign(b'{"id": "evt_1"}', "whsec_test"))
    assert re.search(pattern, "t=1492774577,v1=5257a869e7,v0=6ffbb59b2300aae63f27")
    for bad in ("", "garbage", "v1=abc", "t=abc,v1=00", "t=1492774577", "t=1,v1=XYZ"):
        assert not re.search(pattern, bad), bad


def test_the_webhook_documents_its_signature_header_pattern(schema):
    from linguaflex.openapi import STRIPE_SIGNATURE_PATTERN

    parameters = schema["paths"]["/stripe-payments/webhook/"]["post"]["parameters"]
    header = next(p for p in parameters if p["name"] == "Stripe-Signature")
    assert header["in"] == "header" and header["required"] is True
    assert header["schema"]["pattern"] == STRIPE_SIGNATURE_PATTERN
