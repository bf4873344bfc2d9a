"""Input from outside that once answered 500, or was accepted against the schema.

Lone UTF-16 surrogates, digits that are not ASCII, empty or non-numeric list parameters, chunked
request bodies, and card data in a query string (which would land in every access log).
"""

from __future__ import annotations

import io
import json
import logging
from datetime import date

import pytest
from django.core.cache import cache
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import override_settings
from rest_framework.exceptions import ValidationError

from linguaflex.chunked import ChunkedBodyMiddleware
from linguaflex.fields import AsciiIntegerField
from linguaflex.parsers import SafeJSONParser
from linguaflex.tests.test_errors import assert_envelope
from linguaflex.throttling import LoginEmailThrottle

pytestmark = pytest.mark.django_db

REGISTER = "/accounts/register/"
LOGIN = "/accounts/login/"
PAN = "4242424242424242"
LISTS_WITH_STATUS = ["/bookings/", "/stripe-payments/payments/", "/stripe-payments/refunds/"]
PAGINATED = ["/gigs/", *LISTS_WITH_STATUS, "/stripe-payments/payment-methods/"]
ARABIC_3 = "\u0663"  # ٣
FULLWIDTH_3 = "\uff13"  # ３


def _post_raw(client, url, raw: bytes):
    return client.generic("POST", url, raw, content_type="application/json")


def _fields(response) -> dict:
    return response.json()["error"].get("fields", {})


# --- 1. lone surrogates -------------------------------------------------------------------------
@pytest.mark.parametrize("raw", [
    b'{"email": "new@example.test", "password": "Xyzzy-plugh-42", "role": "\\ud800"}',
    b'{"email": "new@example.test", "password": "Xyzzy-plugh-42", "role": "student", "\\udfff": 1}',
    b'{"email": "new@example.test", "password": "Xyzzy-plugh-42", "role": "student", "x": [[{"y": "a\\udc00"}]]}',
])
def test_register_with_a_lone_surrogate_anywhere_is_a_400_not_a_500(api_client, raw):
    response = _post_raw(api_client, REGISTER, raw)

    error = assert_envelope(response, 400, "invalid_request")
    assert "surrogate" in error["message"]
    response.content.decode("utf-8")  # the answer itself is valid UTF-8


class _Utf8KeyCache:
    """The default cache, with keys encoded as Redis encodes them (a lone surrogate raises)."""

    def get(self, key, default=None):
        key.encode("utf-8")
        return cache.get(key, default)

    def set(self, key, value, timeout=None):
        key.encode("utf-8")
        cache.set(key, value, timeout)


def test_login_with_a_surrogate_email_never_reaches_the_throttle_cache_key(api_client, monkeypatch):
    monkeypatch.setattr(LoginEmailThrottle, "cache", _Utf8KeyCache())

    response = _post_raw(api_client, LOGIN, b'{"email": "a\\ud800@example.test", "password": "x"}')

    assert_envelope(response, 400, "invalid_request")


@pytest.mark.redis
def test_login_with_a_surrogate_email_is_a_400_with_throttles_in_redis(api_client):
    from linguaflex.tests.test_throttling import REDIS_CACHES

    with override_settings(CACHES=REDIS_CACHES):
        response = _post_raw(api_client, LOGIN, b'{"email": "\\ud800", "password": "x"}')

    assert_envelope(response, 400, "invalid_request")


def test_parser_keeps_a_proper_surrogate_pair_and_other_unicode():
    raw = '{"name": "\\ud83d\\ude00 Zo\\u00eb \u4e2d\u6587"}'.encode()

    assert SafeJSONParser().parse(io.BytesIO(raw)) == {"name": "\U0001F600 Zo\u00eb \u4e2d\u6587"}


def test_a_surrogate_shaped_query_string_is_a_400_not_a_500(client_for, student):
    response = client_for(student).get("/stripe-payments/payments/?status=%ED%A0%80")

    error = assert_envelope(response, 400, "invalid_request")
    assert "status" in error["fields"]


def test_surrogate_shaped_bytes_in_a_header_are_not_a_500(client_for, student):
    # A WSGI server decodes header bytes as latin-1, so "\xed\xa0\x80" arrives as three characters.
    response = client_for(student).post("/stripe-payments/refunds/", {"payment_id": 999999}, format="json",
                                        HTTP_IDEMPOTENCY_KEY="\xed\xa0\x80")

    assert response.status_code < 500
    response.content.decode("utf-8")


# --- 2. ASCII digits only -------------------------------------------------------------------------
@pytest.mark.parametrize("value", [ARABIC_3, FULLWIDTH_3, "\u00b3", " 3", "3 ", "3_0", "+3", "3.0", "", "1e2"])
def test_ascii_integer_field_refuses_a_string_that_is_not_ascii_digits(value):
    with pytest.raises(ValidationError) as raised:
        AsciiIntegerField().run_validation(value)

    assert raised.value.get_codes() == ["invalid"]


@pytest.mark.parametrize(("value", "expected"), [(3, 3), ("3", 3), ("-3", -3), ("007", 7), (3.0, 3)])
def test_ascii_integer_field_takes_json_numbers_and_ascii_digit_strings(value, expected):
    assert AsciiIntegerField().run_validation(value) == expected


@pytest.mark.parametrize("price", [ARABIC_3, f"{ARABIC_3}.00", FULLWIDTH_3, "3_000", " 5.00", "5.00 ", "3e2", "5.", ".5",
                                   "+5"])
def test_gig_price_must_be_ascii_digits(client_for, teacher, price):
    body = {"title": "Spanish", "language": "Spanish", "price": price, "duration_minutes": 60}

    response = client_for(teacher).post("/gigs/", body, format="json")

    error = assert_envelope(response, 400, "invalid_request")
    assert set(error["fields"]) == {"price"}


@pytest.mark.parametrize(("price", "cents"), [("50.00", 5000), (50, 5000), (50.5, 5050), ("0.50", 50), ("10000", 1000000)])
def test_gig_price_as_an_ascii_string_or_a_json_number_is_accepted(client_for, teacher, price, cents):
    body = {"title": "Spanish", "language": "Spanish", "price": price, "duration_minutes": 60}

    response = client_for(teacher).post("/gigs/", body, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["price_cents"] == cents


def test_gig_duration_in_arabic_indic_digits_is_a_400(client_for, teacher):
    body = {"title": "Spanish", "language": "Spanish", "price": "50.00", "duration_minutes": "\u0666\u0660"}

    response = client_for(teacher).post("/gigs/", body, format="json")

    assert set(assert_envelope(response, 400, "invalid_request")["fields"]) == {"duration_minutes"}


def test_refund_payment_id_and_amount_in_arabic_indic_digits_are_a_400(client_for, student, gig, make_paid_booking):
    booking = make_paid_booking(student=student, gig=gig)
    digits = "".join(chr(0x0660 + int(d)) for d in str(booking.payment_id))

    response = client_for(student).post("/stripe-payments/refunds/", {"payment_id": digits, "amount": ARABIC_3},
                                        format="json")

    assert set(assert_envelope(response, 400, "invalid_request")["fields"]) == {"payment_id", "amount"}


def test_a_payment_id_past_the_database_range_is_a_400(client_for, student):
    response = client_for(student).post("/stripe-payments/refunds/", {"payment_id": 2**64}, format="json")

    assert set(assert_envelope(response, 400, "invalid_request")["fields"]) == {"payment_id"}


@pytest.mark.parametrize("url", ["/stripe-payments/process-payment/", "/stripe-payments/create-payment-intent/"])
def test_gig_id_in_arabic_indic_digits_is_a_400(client_for, student, gig, url):
    digits = "".join(chr(0x0660 + int(d)) for d in str(gig.pk))

    response = client_for(student).post(url, {"gig_id": digits, "payment_method_id": "pm_card_visa"}, format="json")

    assert "gig_id" in assert_envelope(response, 400, "invalid_request")["fields"]


@pytest.mark.parametrize(("field", "value"), [
    ("exp_month", "\u0661\u0662"), ("exp_year", "\u0662\u0660\u0663\u0660"), ("exp_month", FULLWIDTH_3),
    ("card_number", "\u0664" * 16), ("cvc", "\u0661\u0662\u0663"), ("cvc", " 123"), ("card_number", f"\t{PAN}"),
])
def test_card_fields_in_digits_that_are_not_ascii_are_a_400_before_any_stripe_call(client_for, student, field, value):
    card = {"card_number": PAN, "exp_month": 12, "exp_year": date.today().year + 3, "cvc": "123", field: value}

    response = client_for(student).post("/stripe-payments/add-payment-method/", card, format="json")

    error = assert_envelope(response, 400, "invalid_request")
    assert field in error["fields"]
    assert PAN not in response.content.decode()


def test_gig_list_teacher_filter_in_arabic_indic_digits_is_a_400(client_for, student, teacher):
    response = client_for(student).get("/gigs/", {"teacher": "".join(chr(0x0660 + int(d)) for d in str(teacher.pk))})

    assert "teacher" in assert_envelope(response, 400, "invalid_request")["fields"]


# --- 3. list parameters as the schema states them -------------------------------------------------------
@pytest.mark.parametrize("url", LISTS_WITH_STATUS)
def test_an_empty_status_filter_is_a_400_naming_status(client_for, admin_user, url):
    response = client_for(admin_user).get(f"{url}?status=")

    assert "status" in assert_envelope(response, 400, "invalid_request")["fields"]


@pytest.mark.parametrize("query", ["language=", "mine=", "ordering=", "teacher="])
def test_an_empty_gig_list_filter_is_a_400_naming_it(client_for, student, query):
    response = client_for(student).get(f"/gigs/?{query}")

    assert query.rstrip("=") in assert_envelope(response, 400, "invalid_request")["fields"]


@pytest.mark.parametrize("url", PAGINATED)
@pytest.mark.parametrize("page_size", ["null", "abc", "-1", "0", "", "1.5", " 5", "%D9%A3", "0x10", "00"])
def test_a_page_size_that_is_not_a_positive_ascii_integer_is_a_400(client_for, admin_user, url, page_size):
    response = client_for(admin_user).get(f"{url}?page_size={page_size}")

    error = assert_envelope(response, 400, "invalid_request")
    assert set(error["fields"]) == {"page_size"}


@pytest.mark.parametrize(("page_size", "expected"), [("1", 1), ("007", 7), ("100", 100), ("101", 100), ("9" * 5000, 100)])
def test_page_size_is_honoured_up_to_one_hundred_and_clamped_beyond(client_for, student, teacher, make_gig, page_size,
                                                                   expected):
    for _ in range(101):
        make_gig(teacher)

    body = client_for(student).get(f"/gigs/?page_size={page_size}").json()

    assert len(body["results"]) == expected


@pytest.mark.parametrize("page", ["abc", "0", "-1", "", "last", "%D9%A1", "1.0", " 1", "9" * 5000])
def test_a_page_that_is_not_a_positive_ascii_integer_is_the_404_not_found(client_for, student, page):
    response = client_for(student).get(f"/gigs/?page={page}")

    assert_envelope(response, 404, "not_found")


def test_page_one_in_ascii_digits_is_the_first_page(client_for, student, gig):
    assert client_for(student).get("/gigs/?page=1").json()["count"] == 1


# --- 5. chunked request bodies --------------------------------------------------------------------
def _wsgi_post(path: str, body: bytes, **environ):
    """POST through ChunkedBodyMiddleware and Django's WSGI handler, as a WSGI server would."""
    application = ChunkedBodyMiddleware(WSGIHandler())
    base = {
        "REQUEST_METHOD": "POST", "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "testserver",
        "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": "application/json", "HTTP_TRANSFER_ENCODING": "chunked",
        "wsgi.input": io.BytesIO(body), "wsgi.url_scheme": "http", "wsgi.errors": io.StringIO(),
        "wsgi.version": (1, 0), "wsgi.multithread": False, "wsgi.multiprocess": False, "wsgi.run_once": False,
    }
    base.update(environ)
    answer = {}

    def start_response(status, headers, exc_info=None):
        answer["status"] = int(status.split()[0])
        answer["headers"] = dict(headers)

    # As Django's test client does: the test's own database connection stays open across the call.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        chunks = application(base, start_response)
        content = b"".join(chunks)
        if hasattr(chunks, "close"):
            chunks.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return answer["status"], answer["headers"], json.loads(content)


# A body that names a role the API refuses: the answer lists only "role" when the body was read,
# and every field ("This field is required.") when it was read as empty.
BAD_ROLE = json.dumps({"email": "chunked@example.test", "password": "Xyzzy-plugh-42", "role": "wizard"}).encode()


def test_a_dechunked_body_without_content_length_is_read_whole():
    status, headers, body = _wsgi_post(REGISTER, BAD_ROLE, **{"wsgi.input_terminated": True})

    assert status == 400
    assert set(body["error"]["fields"]) == {"role"}


def test_a_dechunked_body_of_exactly_the_limit_is_read(settings):
    padded = BAD_ROLE[:-1] + b" " * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE - len(BAD_ROLE)) + b"}"
    assert len(padded) == settings.DATA_UPLOAD_MAX_MEMORY_SIZE

    status, _, body = _wsgi_post(REGISTER, padded, **{"wsgi.input_terminated": True})

    assert status == 400
    assert set(body["error"]["fields"]) == {"role"}


def test_a_dechunked_body_over_the_limit_is_the_413_envelope(settings):
    big = b" " * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)

    status, headers, body = _wsgi_post(REGISTER, big, **{"wsgi.input_terminated": True})

    assert status == 413
    assert headers["Content-Type"] == "application/json"
    assert body["success"] is False
    assert body["error"]["code"] == "request_too_large"


class _Unreadable(io.RawIOBase):
    def read(self, *args):
        raise AssertionError("the raw chunked stream must not be read")


def test_a_chunked_body_the_server_did_not_dechunk_is_refused_with_a_400_unread():
    status, _, body = _wsgi_post(REGISTER, b"", **{"wsgi.input": _Unreadable()})

    assert status == 400
    assert body["error"]["code"] == "invalid_request"
    assert "Content-Length" in body["error"]["message"]


def test_a_body_with_content_length_is_left_to_django():
    status, _, body = _wsgi_post(REGISTER, BAD_ROLE, HTTP_TRANSFER_ENCODING="", CONTENT_LENGTH=str(len(BAD_ROLE)))

    assert status == 400
    assert set(body["error"]["fields"]) == {"role"}


# --- 6. card data in a query string ---------------------------------------------------------------
@pytest.mark.parametrize("query", [
    f"card_number={PAN}", "number=4242", "cvc=123", "CVV=123", "card[number]=4242", "card%5Bcvc%5D=123",
    "card_details[exp_month]=12", "exp_year=2030", "exp_month=12", f"q={PAN}", "q=4242%204242%204242%204242",
    "q=4242-4242-4242-4242", "search=my+card+378282246310005+please", f"{PAN}=", f"status=succeeded&note={PAN}",
])
def test_card_data_in_a_query_string_is_refused_without_echoing_it(api_client, caplog, query):
    caplog.set_level(logging.DEBUG)

    response = api_client.get(f"/gigs/?{query}")

    error = assert_envelope(response, 400, "invalid_request")
    assert error["message"] == "Card data must never be sent in a URL. Send it in the JSON body of a POST request."
    assert "fields" not in error
    content = response.content.decode()
    assert PAN not in content and "378282246310005" not in content and "4242" not in content


def test_a_card_number_in_a_query_string_reaches_no_log_record(client_for, student, caplog):
    caplog.set_level(logging.DEBUG)

    response = client_for(student).get(f"/stripe-payments/payments/?card_number={PAN}&cvc=123")

    assert response.status_code == 400
    assert PAN not in response.content.decode()
    assert caplog.records, "the 400 is logged (django.request)"
    for record in caplog.records:
        assert PAN not in record.getMessage()
    assert PAN not in caplog.text


@pytest.mark.parametrize("query", [
    "status=succeeded&page=2", "q=4242424242424241",  # fails Luhn: not a card number
    "_=1733090000006",  # a millisecond timestamp (a cache buster) that happens to pass Luhn
    "payment_intent=pi_3Nabc123&redirect_status=succeeded", "card_brand=visa", "amount=12345678",
])
def test_ordinary_query_strings_pass(client_for, student, query):
    response = client_for(student).get(f"/gigs/?{query}")

    assert response.status_code in (200, 404), response.content  # a page past the end is 404


def test_the_timestamp_in_the_passing_case_does_pass_luhn():
    from linguaflex.logging import luhn_valid

    assert luhn_valid("1733090000006")


class _Keep(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.mark.parametrize("name", ["django.server", "django.request"])
def test_runserver_and_request_logs_mask_card_numbers_before_any_handler(name):
    logger = logging.getLogger(name)
    keep = _Keep()
    logger.handlers.insert(0, keep)  # first: a filter on a handler before it would hide a gap
    try:
        # As runserver logs a request line: '"%s" %s %s', request line, status, size.
        logger.warning('"%s" %s %s', f"GET /gigs/?card_number={PAN}&cvc=123 HTTP/1.1", "400", "120")
    finally:
        logger.removeHandler(keep)

    assert keep.messages
    assert all(PAN not in message and "cvc=123" not in message for message in keep.messages)
