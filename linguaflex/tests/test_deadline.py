"""One deadline for the whole request (issue 9, item 4): no Stripe try starts once it is spent, each
try gets at most what is left, and time queued behind the proxy counts. These tests assert what ended
a call (which tries reached Stripe, which timeouts were used), never how long it took."""

from __future__ import annotations

import time

import pytest

from linguaflex import deadline
from stripe_payments import gateway
from stripe_payments.models import Payment

PAY_URL = "/stripe-payments/process-payment/"


def _card():
    return {"card_number": "4242424242424242", "exp_month": 12, "exp_year": time.gmtime().tm_year + 2, "cvc": "123"}


def test_no_deadline_outside_a_request():
    assert deadline.remaining() is None


def test_a_nested_deadline_never_extends_the_outer_one():
    with deadline.deadline(1.0):
        with deadline.deadline(60.0):
            assert deadline.remaining() <= 1.0
    assert deadline.remaining() is None


@pytest.mark.parametrize(("header", "expected"), [
    (None, 0.0), ("", 0.0), ("garbage", 0.0), ("t=abc", 0.0),
    ("t=1000000000.000", 3600.0),  # a clock far off never buys more than the cap
])
def test_queued_seconds_reads_nginx_msec_header_defensively(header, expected):
    assert deadline.queued_seconds(header, now=1_000_010_000.0) == expected


def test_queued_seconds_from_a_recent_proxy_timestamp():
    assert deadline.queued_seconds("t=1700000000.250", now=1_700_000_010.0) == pytest.approx(9.75)
    assert deadline.queued_seconds("1700000000.5", now=1_700_000_001.0) == pytest.approx(0.5)
    assert deadline.queued_seconds("t=1700002000.0", now=1_700_000_000.0) == 0.0  # proxy clock ahead


def test_each_stripe_try_gets_at_most_what_is_left(settings):
    settings.STRIPE_CONNECT_TIMEOUT, settings.STRIPE_READ_TIMEOUT = 5.0, 20.0
    client = gateway._DeadlineRequestsClient(timeout=(5.0, 20.0))
    assert client._timeout == (5.0, 20.0)
    with deadline.deadline(3.0):
        connect, read = client._timeout
        assert connect <= 3.0 and read <= 3.0
    with deadline.deadline(0.0):
        assert client._timeout == (gateway.MIN_TRY_SECONDS, gateway.MIN_TRY_SECONDS)


@pytest.mark.django_db
@pytest.mark.emulator
def test_a_request_whose_deadline_is_spent_in_the_queue_never_calls_stripe(
        client_for, student, gig, stripe_emulator, settings):
    settings.REQUEST_DEADLINE_SECONDS = 25.0
    queued_since = f"t={time.time() - 30:.3f}"  # nginx received it 30 s ago; every thread was busy

    response = client_for(student).post(PAY_URL, {"gig_id": gig.pk, "card_details": _card()}, format="json",
                                        HTTP_X_REQUEST_START=queued_since)

    assert response.status_code == 504
    assert response.json()["error"]["code"] == "payment_provider_timeout"
    assert [r for r in stripe_emulator.requests() if r["path"].startswith("/v1/")] == []
    assert Payment.objects.get().status == "processing"  # settled by reconciliation: never sent


@pytest.mark.django_db
@pytest.mark.emulator
def test_retries_stop_at_the_request_deadline_not_after_every_try(
        client_for, student, gig, stripe_emulator, settings):
    settings.REQUEST_DEADLINE_SECONDS = 1.2
    settings.STRIPE_MAX_NETWORK_RETRIES = 5
    settings.STRIPE_READ_TIMEOUT = 20.0
    stripe_emulator.arm_fault("POST", "/v1/payment_intents", "timeout", count=10, seconds=5)

    response = client_for(student).post(PAY_URL, {"gig_id": gig.pk, "card_details": _card()}, format="json")

    assert response.status_code == 504
    tries = [r for r in stripe_emulator.requests() if r["path"] == "/v1/payment_intents"]
    assert len(tries) == 1  # a 20 s read timeout would have allowed six tries; the deadline allowed one
    stripe_emulator.clear_faults()
