"""One id per request: the X-Request-ID header, the error envelope, log records and Celery tasks."""

from __future__ import annotations

import logging
import re
from types import SimpleNamespace

import pytest
from django.test import override_settings

from linguaflex import request_id
from linguaflex.celery import REQUEST_ID_HEADER, _bind_request_id, _send_request_id, _unbind_request_id
from linguaflex.request_id import RequestIdLogFilter

pytestmark = pytest.mark.django_db

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
SUPPLIED = "abcdef0123456789"


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


def _record(msg: str = "hello") -> logging.LogRecord:
    return logging.LogRecord("linguaflex.test", logging.INFO, __file__, 1, msg, (), None)


# --- the header -------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/health/", "/health/ready/", "/api/no-such-endpoint/"])
def test_every_response_has_a_new_32_hex_request_id(api_client, path):
    response = api_client.get(path)

    assert UUID.fullmatch(response["X-Request-ID"])


def test_each_request_gets_its_own_id(api_client):
    first = api_client.get("/health/")["X-Request-ID"]
    second = api_client.get("/health/")["X-Request-ID"]

    assert first != second


def test_a_clients_request_id_is_ignored_by_default(api_client):
    response = api_client.get("/health/", HTTP_X_REQUEST_ID=SUPPLIED)

    assert response["X-Request-ID"] != SUPPLIED
    assert UUID.fullmatch(response["X-Request-ID"])


@override_settings(TRUST_X_REQUEST_ID=True)
@pytest.mark.parametrize("supplied", [SUPPLIED, "0123456789abcdef0123456789abcdef",
                                      "f47ac10b-58cc-4372-a567-0e02b2c3d479", "a" * 128])
def test_a_well_formed_request_id_is_taken_when_trusted(api_client, supplied):
    response = api_client.get("/health/", HTTP_X_REQUEST_ID=supplied)

    assert response["X-Request-ID"] == supplied


@override_settings(TRUST_X_REQUEST_ID=True)
@pytest.mark.parametrize("supplied", ["abc def0123456789", "abcdef01\n23456789", "abcdef0123456789\n", "short",
                                      "a" * 129, "-abcdef0123456789", "abcdef'0123456789", ""])
def test_a_malformed_request_id_is_replaced_even_when_trusted(api_client, supplied):
    response = api_client.get("/health/", HTTP_X_REQUEST_ID=supplied)

    assert response["X-Request-ID"] != supplied
    assert UUID.fullmatch(response["X-Request-ID"])


# --- the error envelope ------------------------------------------------------------------------------
def test_a_404_envelope_carries_the_request_id_of_the_header(api_client):
    response = api_client.get("/api/no-such-endpoint/")

    assert response.status_code == 404
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == "not_found"
    assert body["error"]["request_id"] == response["X-Request-ID"]


def test_a_validation_error_envelope_carries_the_request_id_of_the_header(api_client):
    response = api_client.post("/accounts/register/", {}, format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["error"]["code"] == "invalid_request"
    assert body["error"]["request_id"] == response["X-Request-ID"]


@override_settings(TRUST_X_REQUEST_ID=True)
def test_a_trusted_request_id_is_the_one_in_the_envelope(api_client):
    response = api_client.post("/accounts/register/", {}, format="json", HTTP_X_REQUEST_ID=SUPPLIED)

    assert response["X-Request-ID"] == SUPPLIED
    assert response.json()["error"]["request_id"] == SUPPLIED


# --- log records -------------------------------------------------------------------------------------
def test_the_log_filter_puts_a_dash_outside_a_request():
    assert request_id.get() is None
    record = _record()

    assert RequestIdLogFilter().filter(record) is True
    assert record.request_id == "-"


def test_the_log_filter_puts_the_bound_id_on_a_record():
    record = _record()
    with request_id.bound(SUPPLIED):
        RequestIdLogFilter().filter(record)

    assert record.request_id == SUPPLIED


def test_the_log_filter_keeps_an_id_the_record_already_has():
    record = _record()
    record.request_id = "from-the-task-headers"
    with request_id.bound(SUPPLIED):
        RequestIdLogFilter().filter(record)

    assert record.request_id == "from-the-task-headers"


def test_a_record_logged_inside_a_view_carries_the_requests_id(api_client, monkeypatch):
    """A line a view logs (here: a health check's warning) is under the id the response returns."""
    from linguaflex import health

    logger = logging.getLogger("linguaflex.health")
    capture = _Capture()
    capture.addFilter(RequestIdLogFilter())
    logger.addHandler(capture)
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    monkeypatch.setattr(health, "redis_state", lambda: (health.logger.warning("probe"), health.OK)[1])
    try:
        response = api_client.get("/health/ready/")
    finally:
        logger.removeHandler(capture)
        logger.setLevel(old_level)

    probes = [r for r in capture.records if r.getMessage() == "probe"]
    assert len(probes) == 1
    assert probes[0].request_id == response["X-Request-ID"]

    after = _record()
    RequestIdLogFilter().filter(after)
    assert after.request_id == "-"


@pytest.mark.parametrize(("method", "path", "status"), [("post", "/accounts/register/", 400),
                                                       ("get", "/api/no-such-endpoint/", 404)])
def test_djangos_own_4xx_line_carries_the_requests_id(api_client, method, path, status):
    """django.request logs "Bad Request: /path" after the middleware chain has returned."""
    logger = logging.getLogger("django.request")
    capture = _Capture()
    capture.addFilter(RequestIdLogFilter())
    logger.addHandler(capture)
    try:
        response = getattr(api_client, method)(path, {}, format="json") if method == "post" else api_client.get(path)
    finally:
        logger.removeHandler(capture)

    assert response.status_code == status
    assert [r.request_id for r in capture.records] == [response["X-Request-ID"]]
    assert request_id.get() is None  # unbound once the response was closed


# --- bound, push/pop, origin --------------------------------------------------------------------------
def test_bound_nests_and_restores():
    assert request_id.get() is None
    with request_id.bound("outer-id-0001") as outer:
        assert outer == "outer-id-0001" == request_id.get()
        with request_id.bound("inner-id-0002") as inner:
            assert inner == request_id.get() == "inner-id-0002"
        assert request_id.get() == "outer-id-0001"
    assert request_id.get() is None


def test_bound_makes_a_new_id_for_a_missing_or_malformed_one():
    with request_id.bound(None) as made:
        assert UUID.fullmatch(made)
    with request_id.bound("bad id") as made:
        assert UUID.fullmatch(made)
    assert request_id.get() is None


def test_bound_restores_after_an_exception():
    with pytest.raises(RuntimeError), request_id.bound(SUPPLIED):
        raise RuntimeError("boom")

    assert request_id.get() is None


def test_push_and_pop_nest_and_restore():
    outer = request_id.push("outer-id-0001")
    inner = request_id.push("inner-id-0002")
    assert request_id.get() == "inner-id-0002"
    request_id.pop(inner)
    assert request_id.get() == "outer-id-0001"
    request_id.pop(outer)
    assert request_id.get() is None


def test_current_or_blank():
    assert request_id.current_or_blank() == ""
    with request_id.bound(SUPPLIED):
        assert request_id.current_or_blank() == SUPPLIED


def test_origin_is_the_current_id_unless_overridden():
    assert request_id.origin() == ""
    with request_id.bound(SUPPLIED):
        assert request_id.origin() == SUPPLIED
        with request_id.origin_bound("first-request-id"):
            assert request_id.origin() == "first-request-id"
            assert request_id.get() == SUPPLIED
        assert request_id.origin() == SUPPLIED
        with request_id.origin_bound(None):  # nothing to override with: the request's own id
            assert request_id.origin() == SUPPLIED
    assert request_id.origin() == ""


# --- Celery ---------------------------------------------------------------------------------------------
def test_publishing_a_task_puts_the_request_id_in_its_headers():
    headers: dict = {}
    with request_id.bound(SUPPLIED):
        _send_request_id(headers=headers)

    assert headers[REQUEST_ID_HEADER] == SUPPLIED


def test_publishing_outside_a_request_adds_no_header_and_keeps_an_existing_one():
    headers: dict = {}
    _send_request_id(headers=headers)
    assert headers == {}

    headers = {REQUEST_ID_HEADER: "already-there-01"}
    with request_id.bound(SUPPLIED):
        _send_request_id(headers=headers)
    assert headers[REQUEST_ID_HEADER] == "already-there-01"

    _send_request_id(headers=None)  # no headers to write to: nothing happens


def _task(*, is_eager: bool, sent: str | None):
    return SimpleNamespace(request=SimpleNamespace(is_eager=is_eager, **({REQUEST_ID_HEADER: sent} if sent else {})))


def test_a_worker_binds_the_sent_request_id_while_the_task_runs():
    assert request_id.get() is None

    _bind_request_id(task_id="t1", task=_task(is_eager=False, sent=SUPPLIED))
    try:
        assert request_id.get() == SUPPLIED
    finally:
        _unbind_request_id(task_id="t1")

    assert request_id.get() is None


def test_a_task_sent_without_an_id_runs_under_a_new_one():
    _bind_request_id(task_id="t2", task=_task(is_eager=False, sent=None))
    try:
        assert UUID.fullmatch(request_id.get())
    finally:
        _unbind_request_id(task_id="t2")

    assert request_id.get() is None


def test_an_eager_task_keeps_the_callers_id():
    with request_id.bound(SUPPLIED):
        _bind_request_id(task_id="t3", task=_task(is_eager=True, sent="another-id-0001"))
        assert request_id.get() == SUPPLIED
        _unbind_request_id(task_id="t3")
        assert request_id.get() == SUPPLIED


def test_unbinding_an_unknown_task_is_harmless():
    _unbind_request_id(task_id="never-bound")

    assert request_id.get() is None


def test_a_new_id_never_holds_a_run_of_digits_a_card_number_could_be():
    """Error bodies and log lines carry the id; card-number scanners look for 13-19 digits."""
    assert all(re.search(r"\d{13}", request_id.new()) is None for _ in range(5000))
