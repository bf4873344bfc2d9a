"""The error envelope for each status of the contract's table that needs no Stripe call."""

from __future__ import annotations

import io
import json

import pytest
from rest_framework.exceptions import ParseError

from bookings.models import BookingStatus
from linguaflex.errors import json_500
from linguaflex.parsers import SafeJSONParser

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"


def assert_envelope(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["success"] is False
    assert set(body) == {"success", "error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


# --- 400 ----------------------------------------------------------------------------------------
def test_400_validation_error_lists_fields(client_for, teacher):
    response = client_for(teacher).post("/gigs/", {"title": "", "price": "0.10"}, format="json")

    error = assert_envelope(response, 400, "invalid_request")
    assert {"title", "price", "language", "duration_minutes"} <= set(error["fields"])
    assert all(isinstance(messages, list) for messages in error["fields"].values())


def test_400_non_object_body_reports_non_field_errors(api_client):
    response = api_client.post(LOGIN, "[1, 2]", content_type="application/json")

    error = assert_envelope(response, 400, "invalid_request")
    assert "non_field_errors" in error["fields"]


@pytest.mark.parametrize("body", [b'{"email": ', b"{'single': 'quotes'}", b'{"a": NaN}', b'{"a": Infinity}',
                                  b"\xff\xfe\xfa", b'{"a": 1} trailing'])
def test_400_malformed_json(api_client, body):
    response = api_client.generic("POST", LOGIN, body, content_type="application/json")

    error = assert_envelope(response, 400, "invalid_request")
    assert "fields" not in error


def test_400_deeply_nested_json_under_the_size_limit_is_not_a_500(api_client):
    body = "[" * 60000  # 60 000 levels deep (unterminated), under the 64 KiB limit

    response = api_client.generic("POST", LOGIN, body, content_type="application/json")

    assert_envelope(response, 400, "invalid_request")


def test_400_hundred_thousand_levels_of_nesting_is_not_a_500(api_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024  # let the body past the 413 guard to reach the parser
    body = "[" * 100_000 + "]" * 100_000

    response = api_client.generic("POST", LOGIN, body, content_type="application/json")

    assert_envelope(response, 400, "invalid_request")


def test_400_valid_json_nested_past_max_depth(api_client, settings):
    body = "[" * (settings.MAX_JSON_DEPTH + 1) + "]" * (settings.MAX_JSON_DEPTH + 1)

    response = api_client.generic("POST", LOGIN, body, content_type="application/json")

    assert_envelope(response, 400, "invalid_request")


def test_parser_accepts_exactly_max_depth_and_refuses_one_more(settings):
    parser = SafeJSONParser()
    depth = settings.MAX_JSON_DEPTH
    deep_ok = json.dumps(json.loads("[" * depth + "]" * depth)).encode()
    nested_dicts = ('{"a":' * (depth + 1) + "1" + "}" * (depth + 1)).encode()

    assert parser.parse(io.BytesIO(deep_ok)) is not None
    with pytest.raises(ParseError):
        parser.parse(io.BytesIO(nested_dicts))


def test_400_bad_content_length_header(api_client):
    response = api_client.generic("POST", LOGIN, b"{}", content_type="application/json", CONTENT_LENGTH="abc")

    assert_envelope(response, 400, "invalid_request")


# --- 401 ----------------------------------------------------------------------------------------
def test_401_not_authenticated_has_www_authenticate(api_client):
    response = api_client.get("/gigs/")

    assert_envelope(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer not.a.jwt", "Bearer ", "Bearer a b"])
def test_401_invalid_token_has_www_authenticate(api_client, header):
    api_client.credentials(HTTP_AUTHORIZATION=header)

    response = api_client.get("/gigs/")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_token"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_401_invalid_token_for_a_garbage_jwt(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Bearer not.a.jwt")

    assert_envelope(api_client.get("/accounts/me/"), 401, "invalid_token")


def test_401_refresh_token_used_as_access_token(api_client, student):
    from rest_framework_simplejwt.tokens import RefreshToken

    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(student)}")

    assert_envelope(api_client.get("/accounts/me/"), 401, "invalid_token")


def test_401_invalid_credentials(api_client, student):
    response = api_client.post(LOGIN, {"email": student.email, "password": "nope"}, format="json")

    assert_envelope(response, 401, "invalid_credentials")


# --- 403, 404, 405 --------------------------------------------------------------------------------
def test_403_permission_denied(client_for, student):
    response = client_for(student).post("/gigs/", {"title": "x", "language": "x", "price": 10,
                                                  "duration_minutes": 30}, format="json")

    assert_envelope(response, 403, "permission_denied")


@pytest.mark.parametrize("url", ["/nope/", "/gigs/abc/", "/accounts/unknown/", "/bookings/1/teleport/", "/gigs"])
def test_404_unknown_url_is_json(client_for, student, url):
    assert_envelope(client_for(student).get(url), 404, "not_found")


def test_404_unknown_url_without_authentication_is_json(api_client):
    assert_envelope(api_client.post("/no/such/endpoint/", {}, format="json"), 404, "not_found")


def test_404_unknown_object(client_for, student):
    assert_envelope(client_for(student).get("/gigs/424242/"), 404, "not_found")
    assert_envelope(client_for(student).get("/bookings/424242/"), 404, "not_found")


def test_405_method_not_allowed(client_for, student):
    assert_envelope(client_for(student).put("/gigs/", {}, format="json"), 405, "method_not_allowed")
    assert_envelope(client_for(student).get(LOGIN), 405, "method_not_allowed")


# --- 409 ----------------------------------------------------------------------------------------
def test_409_invalid_state(client_for, teacher, student, gig, make_paid_booking):
    booking = make_paid_booking(student=student, gig=gig, status=BookingStatus.COMPLETED)

    response = client_for(teacher).post(f"/bookings/{booking.pk}/confirm/")

    error = assert_envelope(response, 409, "invalid_state")
    assert error["status"] == "completed"


# --- 413 ----------------------------------------------------------------------------------------
def test_413_body_over_64_kib(api_client):
    body = json.dumps({"email": "a@example.test", "password": "x" * (64 * 1024)})

    response = api_client.generic("POST", LOGIN, body, content_type="application/json")

    assert_envelope(response, 413, "request_too_large")


def test_413_applies_before_authentication(api_client):
    response = api_client.generic("POST", "/gigs/", b"x" * (64 * 1024 + 1), content_type="application/json")

    assert_envelope(response, 413, "request_too_large")


def test_body_of_exactly_64_kib_is_not_413(api_client):
    prefix = b'{"email": "a@example.test", "password": "'
    suffix = b'"}'
    body = prefix + b"x" * (64 * 1024 - len(prefix) - len(suffix)) + suffix
    assert len(body) == 64 * 1024

    response = api_client.generic("POST", LOGIN, body, content_type="application/json")

    assert response.status_code != 413


# --- 415 ----------------------------------------------------------------------------------------
def test_415_text_plain(api_client):
    response = api_client.generic("POST", LOGIN, b"email=a&password=b", content_type="text/plain")

    assert_envelope(response, 415, "unsupported_media_type")


def test_415_multipart(api_client):
    response = api_client.post(LOGIN, {"email": "a@example.test", "password": "b"}, format="multipart")

    assert_envelope(response, 415, "unsupported_media_type")


def test_415_form_encoded_to_an_authenticated_endpoint(client_for, teacher):
    response = client_for(teacher).generic("POST", "/gigs/", b"title=x", content_type="application/x-www-form-urlencoded")

    assert_envelope(response, 415, "unsupported_media_type")


# --- 429 ----------------------------------------------------------------------------------------
def test_429_throttled_with_retry_after(api_client, student):
    for _ in range(5):
        api_client.post(LOGIN, {"email": student.email, "password": "nope"}, format="json")

    response = api_client.post(LOGIN, {"email": student.email, "password": "nope"}, format="json")

    assert_envelope(response, 429, "throttled")
    assert 0 < int(response["Retry-After"]) <= 60


def test_json_500_handler_answers_the_envelope(rf):
    response = json_500(rf.get("/"))

    assert response.status_code == 500
    assert json.loads(response.content) == {"success": False, "error": {"code": "server_error",
                                                                        "message": "An unexpected error occurred."}}


def test_an_unknown_url_is_the_json_404_even_with_debug_on(api_client, settings):
    settings.DEBUG = True

    response = api_client.get("/gigs/null,null/")

    assert_envelope(response, 404, "not_found")


def test_a_browser_accept_header_still_gets_json_not_406(client_for, student):
    response = client_for(student).get("/gigs/", HTTP_ACCEPT="text/html")

    assert response.status_code == 200 and response["Content-Type"].startswith("application/json")


def test_a_teacher_filter_beyond_a_64_bit_id_is_a_400(client_for, student):
    assert_envelope(client_for(student).get("/gigs/", {"teacher": "12822497682539167315132416"}), 400, "invalid_request")


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "status"), [("/stripe-payments/connect/return/?token=x&format=AAA", 400),
                                              ("/stripe-payments/connect/refresh/?token=x&format=AAA", 400),
                                              ("/gigs/?format=AAA", 401), ("/health/?format=AAA", 200)])
def test_an_unknown_format_parameter_is_ignored_not_a_404(api_client, path, status):
    """DRF answers 404 to a ``?format=`` naming no renderer; the page exists, so it answers as it
    would without the parameter (a bad token is 400)."""
    assert api_client.get(path).status_code == status
