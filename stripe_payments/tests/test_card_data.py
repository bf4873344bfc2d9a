"""Card numbers and CVCs exist only in memory for the one Stripe call.

The whole flow runs with distinctive CVCs and every logger at DEBUG (the ``stripe`` SDK prints
request bodies there); then no database table, log record or response holds a card number or CVC.
"""

from __future__ import annotations

import json
import logging
import re

import pytest
import requests
from django.apps import apps

from linguaflex.logging import CardDataRedactingFilter

from .conftest import (
    ADD_URL,
    AMEX,
    BAD_LUHN,
    DECLINED,
    INSUFFICIENT,
    MASTERCARD,
    METHODS_URL,
    PAY_URL,
    PAYMENTS_URL,
    RETURN_URL,
    THREE_DS,
    VISA,
    card,
)

pytestmark = [pytest.mark.django_db, pytest.mark.emulator]

CVC = "987"
AMEX_CVC = "8765"
NUMBERS = [VISA, MASTERCARD, AMEX, DECLINED, INSUFFICIENT, THREE_DS, BAD_LUHN]
# A CVC is three or four digits: look for it as a token of its own, not inside ids or hashes.
CVC_TOKENS = [re.compile(rf"(?<![0-9A-Za-z]){cvc}(?![0-9A-Za-z])") for cvc in (CVC, AMEX_CVC)]


def _leaks(text: str) -> list[str]:
    found = [n for n in NUMBERS if n in text]
    found += [p.pattern for p in CVC_TOKENS if p.search(text)]
    return found


class _Capture(logging.Handler):
    """Keeps every formatted record, like a console would print it."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        # No %(asctime)s: its milliseconds (",987") would read as the CVC, one run in a thousand.
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        self.lines: list[tuple[str, str]] = []

    def emit(self, record):
        self.lines.append((record.name, self.format(record)))


def _configured_console_handler() -> logging.Handler:
    handlers = [h for h in logging.getLogger().handlers if h.get_name() == "console"]
    assert handlers, "settings.LOGGING's console handler is not installed on the root logger"
    return handlers[0]


@pytest.fixture
def everything_logged(caplog):
    """Root and ``stripe`` loggers at DEBUG, captured by a handler filtered like settings.LOGGING's
    console handler. The ``stripe`` logger does not propagate: its own filter must protect it."""
    caplog.set_level(logging.DEBUG)
    stripe_logger = logging.getLogger("stripe")
    assert any(isinstance(f, CardDataRedactingFilter) for f in stripe_logger.filters), \
        "the stripe logger carries no redacting filter"
    assert any(isinstance(f, CardDataRedactingFilter) for f in _configured_console_handler().filters), \
        "the console handler carries no redacting filter"

    capture = _Capture()
    capture.addFilter(CardDataRedactingFilter())  # as settings.LOGGING configures the console handler
    previous_level = stripe_logger.level
    stripe_logger.setLevel(logging.DEBUG)
    stripe_logger.addHandler(capture)
    logging.getLogger().addHandler(capture)
    try:
        yield capture
    finally:
        logging.getLogger().removeHandler(capture)
        stripe_logger.removeHandler(capture)
        stripe_logger.setLevel(previous_level)


def _database_text() -> list[tuple[str, str]]:
    rows = []
    for model in apps.get_models():
        for values in model._base_manager.all().values():
            rows.append((model._meta.label, json.dumps(values, default=str)))
    return rows


def test_whole_flow_leaves_no_card_number_or_cvc_in_database_logs_or_responses(
        stripe_emulator, client_for, student, gig, everything_logged, settings):
    settings.STRIPE_MAX_NETWORK_RETRIES = 1
    client = client_for(student)
    bodies: list[str] = []

    def call(method, url, data=None, **kwargs):
        response = getattr(client, method)(url, data, format="json", **kwargs) if data is not None else \
            getattr(client, method)(url, **kwargs)
        bodies.append(response.content.decode())
        return response

    # add a card; pay with a new card and save it; pay with the saved card; the same with an amex
    added = call("post", ADD_URL, card(VISA, cvc=CVC))
    assert added.status_code == 200
    assert call("post", PAY_URL, {"gig_id": gig.pk, "card_details": card(MASTERCARD, cvc=CVC),
                                  "save_card": True}).status_code == 200
    assert call("post", PAY_URL, {"gig_id": gig.pk,
                                  "saved_payment_method_id": added.json()["payment_method_id"]}).status_code == 200
    assert call("post", ADD_URL, card(AMEX, cvc=AMEX_CVC)).status_code == 200
    assert call("post", PAY_URL, {"gig_id": gig.pk, "card_details": card(AMEX, cvc=AMEX_CVC)},
                headers={"Idempotency-Key": "amex-1"}).status_code == 200
    assert call("post", PAY_URL, {"gig_id": gig.pk, "card_details": card(AMEX, cvc=AMEX_CVC)},
                headers={"Idempotency-Key": "amex-1"}).status_code == 200
    # declines, at both endpoints
    assert call("post", PAY_URL, {"gig_id": gig.pk, "card_details": card(DECLINED, cvc=CVC)}).status_code == 402
    assert call("post", ADD_URL, card(INSUFFICIENT, cvc=CVC)).status_code == 402
    # 3-D Secure through its return page
    three_ds = call("post", PAY_URL, {"gig_id": gig.pk, "card_details": card(THREE_DS, cvc=CVC)})
    assert three_ds.status_code == 402
    redirect = requests.post(three_ds.json()["error"]["redirect_url"] + "/complete", allow_redirects=False, timeout=5)
    returned = client_for(None).get(RETURN_URL + "?" + redirect.headers["Location"].split("?", 1)[1])
    bodies.append(returned.content.decode())
    assert "succeeded" in bodies[-1]
    # a local validation error, a provider error (logged by the gateway), and the reads
    assert call("post", PAY_URL, {"gig_id": gig.pk, "card_details": card(BAD_LUHN, cvc=CVC)}).status_code == 400
    stripe_emulator.arm_fault("POST", "/v1/payment_intents", "error_500", count=2)
    assert call("post", PAY_URL, {"gig_id": gig.pk, "card_details": card(VISA, cvc=CVC)}).status_code == 502
    assert call("get", METHODS_URL).status_code == 200
    assert call("get", PAYMENTS_URL).status_code == 200

    logs = everything_logged.lines
    stripe_lines = [line for name, line in logs if name == "stripe"]
    # The scan below is only meaningful if the SDK's request bodies were logged, and masked.
    assert any("Post details" in line for line in stripe_lines)
    assert any("[REDACTED]" in line for line in stripe_lines)
    assert any(name == "stripe_payments.gateway" for name, _ in logs)

    assert [(label, _leaks(text)) for label, text in _database_text() if _leaks(text)] == []
    assert [(name, _leaks(line)) for name, line in logs if _leaks(line)] == []
    assert [_leaks(body) for body in bodies if _leaks(body)] == []


def test_stripe_logger_masks_a_request_body_even_through_a_bare_handler(stripe_emulator, add_card):
    """The protection of the SDK's DEBUG lines is the stripe logger's own filter, whatever handler
    someone attaches to it."""
    stripe_logger = logging.getLogger("stripe")
    bare = _Capture()  # no filter of its own
    previous_level = stripe_logger.level
    stripe_logger.setLevel(logging.DEBUG)
    stripe_logger.addHandler(bare)
    try:
        assert add_card(VISA, cvc=CVC).status_code == 200
    finally:
        stripe_logger.removeHandler(bare)
        stripe_logger.setLevel(previous_level)

    post_details = [line for _, line in bare.lines if "Post details" in line]
    assert post_details and all("[REDACTED]" in line for line in post_details if "card" in line)
    assert [line for _, line in bare.lines if _leaks(line)] == []


def test_card_fields_are_write_only_and_not_echoed_in_validation_errors(stripe_emulator, client_for, student, gig):
    client = client_for(student)
    bad = {**card("4242 4242 4242 4241", cvc=CVC), "exp_month": 99}

    responses = [client.post(ADD_URL, bad, format="json"),
                 client.post(PAY_URL, {"gig_id": gig.pk, "card_details": bad}, format="json"),
                 client.post(PAY_URL, {"gig_id": "x" * 40, "card_details": bad}, format="json")]

    for response in responses:
        assert response.status_code == 400
        text = response.content.decode()
        assert "4242 4242 4242 4241" not in text and not CVC_TOKENS[0].search(text)


def test_an_error_report_of_a_crash_mid_payment_shows_no_card_data(stripe_emulator, student, gig, monkeypatch, rf):
    """``sensitive_variables`` and the project's exception reporter filter hide the card in the
    frames of a crash, and in the JSON body (where ``sensitive_post_parameters`` does nothing)."""
    import sys

    from django.views.debug import ExceptionReporter

    from stripe_payments import gateway
    from stripe_payments.cards import CardInput
    from stripe_payments.services import payments

    def crash(**kwargs):
        raise RuntimeError("unexpected")

    monkeypatch.setattr(gateway, "payment_intent_create", crash)
    body = {"gig_id": gig.pk, "card_details": card(VISA, cvc=CVC)}
    request = rf.post(PAY_URL, data=json.dumps(body), content_type="application/json")
    request.user = student
    try:
        payments.payment_process(student=student, gig_id=gig.pk,
                                 card=CardInput(number=VISA, exp_month=12, exp_year=2035, cvc=CVC))
    except RuntimeError:
        report = ExceptionReporter(request, *sys.exc_info())
        text = report.get_traceback_text() + report.get_traceback_html()
    else:
        pytest.fail("the crash did not happen")

    assert "payment_process" in text  # the report does show the failing frames
    assert VISA not in text and not CVC_TOKENS[0].search(text)
