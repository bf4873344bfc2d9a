"""JSON log lines and Sentry events: one line per record, card data masked before anything leaves."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import sys

import pytest
import sentry_sdk
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from sentry_sdk.transport import Transport

from linguaflex import request_id
from linguaflex.jsonlog import JsonFormatter
from linguaflex.logging import MASK
from linguaflex.sentry import scrub_event
from linguaflex.settings.logging_config import logging_config

PAN = "4242424242424242"


def _record(msg, args=(), *, exc_info=None, **extra) -> logging.LogRecord:
    record = logging.LogRecord("linguaflex.jsonlog_test", logging.WARNING, __file__, 10, msg, args, exc_info)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def _line(record: logging.LogRecord) -> tuple[str, dict]:
    text = JsonFormatter().format(record)
    return text, json.loads(text)


# --- JsonFormatter --------------------------------------------------------------------------------
def test_a_record_is_one_line_of_json_with_the_contract_keys():
    record = _record("paid %s cents", ("5000",))
    request_id.RequestIdLogFilter().filter(record)  # as the configured handler does, outside a request
    text, data = _line(record)

    assert "\n" not in text
    assert {"time", "level", "logger", "message", "request_id"} <= set(data)
    assert data["level"] == "WARNING"
    assert data["logger"] == "linguaflex.jsonlog_test"
    assert data["message"] == "paid 5000 cents"
    assert data["request_id"] == "-"
    assert data["time"].endswith("+00:00")


def test_a_record_carries_the_request_id_the_filter_set():
    record = _record("hello")
    with request_id.bound("abcdef0123456789"):
        request_id.RequestIdLogFilter().filter(record)

    assert _line(record)[1]["request_id"] == "abcdef0123456789"


def test_a_card_number_in_the_message_is_masked():
    text, data = _line(_record("card %s declined", (PAN,)))

    assert PAN not in text
    assert MASK in data["message"]


def test_a_card_number_in_an_extra_field_is_masked():
    text, data = _line(_record("request body", body=f"card[number]={PAN}&amount=5000", card=PAN))

    assert PAN not in text
    assert MASK in data["card"]
    assert MASK in data["body"] and "amount=5000" in data["body"]


def test_a_card_number_in_a_traceback_is_masked():
    def charge(card_number):
        raise ValueError(f"card {card_number} refused")

    try:
        charge(PAN)
    except ValueError:
        exc_info = sys.exc_info()
    text, data = _line(_record("charge failed", exc_info=exc_info))

    assert "\n" not in text
    assert PAN not in text
    assert "ValueError" in data["exc_info"]
    assert MASK in data["exc_info"]


def test_a_non_ascii_message_is_kept_readable():
    text, data = _line(_record("clase de español"))

    assert "español" in text
    assert data["message"] == "clase de español"


# --- logging_config ---------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["json", "plain"])
def test_logging_config_is_accepted_by_dictconfig(fmt):
    config = logging_config(level="INFO", stripe_level="WARNING", fmt=fmt)
    try:
        logging.config.dictConfig(config)
        root_handler = logging.getLogger().handlers[0]
        assert isinstance(root_handler.formatter, JsonFormatter) == (fmt == "json")
        assert logging.getLogger("stripe").level == logging.WARNING

        stream = io.StringIO()
        old_stream = root_handler.setStream(stream)
        try:
            logging.getLogger("linguaflex.config_probe").warning("card %s", PAN)
        finally:
            root_handler.setStream(old_stream)
        output = stream.getvalue()
        assert "config_probe" in output
        assert PAN not in output
        if fmt == "json":
            assert json.loads(output.strip())["request_id"] == "-"
    finally:
        logging.config.dictConfig(settings.LOGGING)


def test_an_unknown_log_format_is_refused():
    with pytest.raises(ImproperlyConfigured, match="LOG_FORMAT"):
        logging_config(level="INFO", stripe_level="WARNING", fmt="xml")


# --- Sentry: scrub_event ----------------------------------------------------------------------------------
def _event() -> dict:
    return {
        "message": f"charge of card {PAN} failed",
        "exception": {"values": [{
            "type": "CardError",
            "value": f"card {PAN} declined",
            "stacktrace": {"frames": [{
                "function": "charge",
                "vars": {"card_number": PAN, "cvc": "123", "amount": 5000, "note": f"the card {PAN}",
                         "nested": {"card": {"number": PAN, "exp_month": 12}}},
            }]},
        }]},
        "request": {"url": "https://api.example.test/stripe-payments/process-payment/",
                    "data": {"card[number]": PAN, "card[cvc]": "314", "gig_id": "7"}},
        "breadcrumbs": {"values": [{"category": "stripe", "message": f"POST /v1/payment_methods card={PAN}"}]},
        "extra": {"payment_id": 42},
    }


def test_scrub_event_masks_every_card_value_and_keeps_the_rest():
    scrubbed = scrub_event(_event(), {})
    text = json.dumps(scrubbed)

    assert PAN not in text
    assert "314" not in text
    assert MASK in scrubbed["message"]
    exception = scrubbed["exception"]["values"][0]
    assert MASK in exception["value"] and exception["type"] == "CardError"
    frame_vars = exception["stacktrace"]["frames"][0]["vars"]
    assert frame_vars["card_number"] == MASK
    assert frame_vars["cvc"] == MASK
    assert MASK in frame_vars["note"]
    assert frame_vars["nested"]["card"]["number"] == MASK
    assert frame_vars["nested"]["card"]["exp_month"] == 12
    assert frame_vars["amount"] == 5000
    assert scrubbed["request"]["data"]["card[number]"] == MASK
    assert scrubbed["request"]["data"]["card[cvc]"] == MASK
    assert scrubbed["request"]["data"]["gig_id"] == "7"
    assert MASK in scrubbed["breadcrumbs"]["values"][0]["message"]
    assert scrubbed["extra"] == {"payment_id": 42}


def test_scrub_event_leaves_a_blank_card_field_blank():
    scrubbed = scrub_event({"extra": {"card_number": "", "cvc": None}})

    assert scrubbed["extra"] == {"card_number": "", "cvc": None}


def test_scrub_event_tags_the_bound_request_id():
    with request_id.bound("abcdef0123456789"):
        scrubbed = scrub_event({"message": "x", "tags": {"app": "linguaflex"}})

    assert scrubbed["tags"] == {"app": "linguaflex", "request_id": "abcdef0123456789"}


def test_scrub_event_adds_no_tag_outside_a_request():
    assert "tags" not in scrub_event({"message": "x"})


# --- Sentry: the real SDK, with a transport that keeps what it would send --------------------------------
class _CapturingTransport(Transport):
    envelopes: list = []

    def capture_envelope(self, envelope):
        type(self).envelopes.append(envelope.serialize())


@pytest.fixture
def sentry_capture():
    _CapturingTransport.envelopes = []
    sentry_sdk.init(
        dsn="https://public@o0.ingest.sentry.io/0",
        before_send=scrub_event,
        transport=_CapturingTransport,
        include_local_variables=True,
        default_integrations=False,
        auto_enabling_integrations=False,
    )
    try:
        yield _CapturingTransport.envelopes
    finally:
        sentry_sdk.init(dsn=None)


def _charge_and_report():
    card_number = PAN
    cvc = "123"  # noqa: F841 - a local the report must hide
    amount = 5000  # noqa: F841
    try:
        raise RuntimeError(f"card {card_number} was declined")
    except RuntimeError as exc:
        sentry_sdk.add_breadcrumb(category="stripe", message=f"POST /v1/payment_methods card[number]={PAN}")
        return sentry_sdk.capture_exception(exc)


def test_an_event_sent_through_the_sdk_holds_no_card_number(sentry_capture):
    with request_id.bound("abcdef0123456789"):
        event_id = _charge_and_report()
    sentry_sdk.flush()

    assert event_id is not None
    assert sentry_capture, "the SDK sent nothing"
    sent = b"".join(sentry_capture)
    assert PAN.encode() not in sent
    assert MASK.encode() in sent
    assert b"was declined" in sent and b"RuntimeError" in sent
    assert b"card_number" in sent  # the variable's name stays, for debugging
    assert b"abcdef0123456789" in sent  # the request id tag


def test_after_the_sdk_is_turned_off_nothing_is_sent(sentry_capture):
    sentry_sdk.init(dsn=None)

    _charge_and_report()
    sentry_sdk.flush()

    assert sentry_capture == []
