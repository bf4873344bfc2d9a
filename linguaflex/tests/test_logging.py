"""Card data never reaches a log line or an error report (STYLE.md, "Patterns to avoid")."""

from __future__ import annotations

import io
import logging
import sys

import pytest
from django.test import RequestFactory
from django.views.debug import ExceptionReporter

from linguaflex.logging import MASK, CardDataExceptionReporterFilter, CardDataRedactingFilter, redact

PAN = "4242424242424242"


def _filtered(msg, *args) -> str:
    record = logging.LogRecord("stripe", logging.DEBUG, __file__, 1, msg, args, None)
    assert CardDataRedactingFilter().filter(record) is True  # never drops a record
    return record.getMessage()


@pytest.mark.parametrize("text", [
    f"card {PAN} charged",
    "card 4242 4242 4242 4242 charged",
    "card 4242-4242-4242-4242 charged",
    "amex 378282246310005 ok",
    "nineteen 4242424242424242424",
    f"card[number]={PAN}&card[exp_month]=12",
    f"card%5Bnumber%5D={PAN}",
    f'{{"number": "{PAN}", "exp_year": 2030}}',
])
def test_redact_masks_card_numbers(text):
    cleaned = redact(text)

    assert MASK in cleaned
    assert not any(run in cleaned.replace(" ", "").replace("-", "") for run in ("424242424242", "37828224631"))


@pytest.mark.parametrize(("text", "cvc"), [
    ("card[cvc]=123&card[number]=x", "123"),
    ("card%5Bcvc%5D=1234", "1234"),
    ("payment_method_data[card][cvc]=987", "987"),
    ('{"cvc": "321", "exp_month": 12}', "321"),
    ("{'cvc': 456}", "456"),
    ('{"CVC":"789"}', "789"),
])
def test_redact_masks_cvc_in_forms_and_json(text, cvc):
    cleaned = redact(text)

    assert cvc not in cleaned
    assert MASK in cleaned


@pytest.mark.parametrize("text", ["payment 12345 for gig 9", "exp_month=12&exp_year=2030", "amount 5000 cents",
                                  "pi_3Nabc123", "2030-12-31T10:00:00Z"])
def test_redact_leaves_ordinary_text_alone(text):
    assert redact(text) == text


def test_filter_masks_card_numbers_passed_as_log_arguments():
    message = _filtered("Request body: %s cvc=%s", f"card[number]={PAN}&card[cvc]=123", "999")

    assert PAN not in message
    assert "123" not in message
    assert "999" not in message


def test_filter_leaves_a_clean_record_untouched():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "paid %s", ("5000",), None)

    CardDataRedactingFilter().filter(record)

    assert record.getMessage() == "paid 5000"


def test_configured_stripe_logger_redacts_through_its_handler():
    logger = logging.getLogger("stripe")
    handler = next(h for h in logger.handlers if isinstance(h, logging.StreamHandler))
    stream = io.StringIO()
    old_stream, old_level = handler.setStream(stream), logger.level
    logger.setLevel(logging.DEBUG)
    try:
        logger.debug("POST /v1/payment_methods body=card[number]=%s&card[cvc]=314", PAN)
    finally:
        logger.setLevel(old_level)
        handler.setStream(old_stream)

    output = stream.getvalue()
    assert "payment_methods" in output
    assert PAN not in output
    assert "314" not in output


def _report_text(request) -> str:
    card_number = PAN  # noqa: F841 - a local the report must hide
    cvc = "123"  # noqa: F841
    body = f'{{"card_details": {{"number": "{PAN}"}}}}'  # noqa: F841
    note = f"the card was {PAN}"  # noqa: F841 - a string the report must redact
    details = {"number": PAN, "cvc": "123"}  # noqa: F841 - a container the report must redact
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        reporter = ExceptionReporter(request, *sys.exc_info())
        reporter.filter = CardDataExceptionReporterFilter()
        # The HTML report is the one with every frame's local variables (and what AdminEmailHandler mails).
        return reporter.get_traceback_text() + reporter.get_traceback_html()


def test_exception_report_hides_card_locals_and_post_fields(settings):
    settings.DEFAULT_EXCEPTION_REPORTER_FILTER = "linguaflex.logging.CardDataExceptionReporterFilter"
    request = RequestFactory().post("/stripe-payments/process-payment/",
                                    {"card_number": PAN, "cvc": "123", "gig_id": "7"})

    text = _report_text(request)

    assert "boom" in text
    assert "card_number" in text and "gig_id" in text  # the names stay, for debugging
    assert PAN not in text
    assert "&#x27;123&#x27;" not in text and "'123'" not in text


def test_exception_reporter_filter_hides_card_settings():
    reporter_filter = CardDataExceptionReporterFilter()

    assert reporter_filter.cleanse_setting("STRIPE_SECRET_KEY", "sk_live_x") == reporter_filter.cleansed_substitute
    assert reporter_filter.cleanse_setting("CARD_NUMBER", PAN) == reporter_filter.cleansed_substitute
    assert reporter_filter.cleanse_setting("STRIPE_WEBHOOK_SECRET", "whsec_x") == reporter_filter.cleansed_substitute


def test_settings_use_the_card_exception_reporter_filter(settings):
    assert settings.DEFAULT_EXCEPTION_REPORTER_FILTER == "linguaflex.logging.CardDataExceptionReporterFilter"
    assert "redact_cards" in settings.LOGGING["loggers"]["stripe"]["filters"]
