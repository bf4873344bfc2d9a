"""Stripe's asynchronous refund test cards against the app: 4000000000007726 (refund pending,
then succeeded by refund.updated) and 4000000000005126 (refund succeeded, then failed with
expired_or_canceled_card by refund.updated/refund.failed)."""

from __future__ import annotations

import time

import pytest
import requests

from stripe_payments.models import Payment, RefundRequest, RefundRequestStatus
from stripe_payments.services import refunds

from .conftest import PAY_URL, card, deliver

pytestmark = [pytest.mark.django_db, pytest.mark.emulator]

PENDING_CARD = "4000000000007726"
FAIL_LATER_CARD = "4000000000005126"


@pytest.fixture
def manual_settle(stripe_emulator):
    """The test cards' refunds settle only by the emulator's settle route in these tests."""
    url = f"{stripe_emulator.base_url}/_emulator/refunds/config"
    requests.post(url, json={"refund_settle_ms": None}, timeout=5).raise_for_status()
    yield stripe_emulator
    requests.post(url, json={"refund_settle_ms": 200}, timeout=5).raise_for_status()


def _pay(client_for, student, gig, number) -> Payment:
    response = client_for(student).post(PAY_URL, {"gig_id": gig.pk, "card_details": card(number)},
                                        format="json")
    assert response.status_code == 200, response.content
    return Payment.objects.get(pk=response.json()["payment_id"])


def _settle(emulator, refund_id, **body) -> dict:
    answer = requests.post(f"{emulator.base_url}/_emulator/refunds/{refund_id}/settle", json=body,
                           timeout=5)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _deliver_new(client, emulator, seen: set) -> None:
    for event in emulator.events():
        if event["id"] not in seen:
            seen.add(event["id"])
            deliver(client, event)


def test_a_pending_refund_is_pending_then_succeeds_by_refund_updated(
        client, client_for, student, gig, admin_user, manual_settle):
    emulator = manual_settle
    payment = _pay(client_for, student, gig, PENDING_CARD)
    seen = {e["id"] for e in emulator.events()}
    request = refunds.refund_request_create(student=student, payment=payment, amount_cents=1000, reason="")
    refund = refunds.refund_request_approve(admin=admin_user, refund_request_id=request.pk)
    refund.refresh_from_db()
    assert refund.stripe_refund_id
    _deliver_new(client, emulator, seen)  # charge.refunded, refund.created (pending)
    refund.refresh_from_db()
    assert refund.status == RefundRequestStatus.PENDING  # Stripe has not settled it yet

    _settle(emulator, refund.stripe_refund_id, outcome="succeeded")
    _deliver_new(client, emulator, seen)  # refund.updated, charge.refund.updated

    refund.refresh_from_db()
    assert refund.status == RefundRequestStatus.SUCCEEDED
    payment.refresh_from_db()
    assert payment.refunded_cents == 1000


def test_a_refund_that_fails_later_restores_the_payment(
        client, client_for, student, gig, admin_user, manual_settle):
    emulator = manual_settle
    payment = _pay(client_for, student, gig, FAIL_LATER_CARD)
    seen = {e["id"] for e in emulator.events()}
    refund = refunds.admin_refund_create(admin=admin_user, payment=payment, amount_cents=1000, reason="")
    _deliver_new(client, emulator, seen)
    payment.refresh_from_db()
    assert payment.refunded_cents == 1000

    _settle(emulator, refund.stripe_refund_id, outcome="failed", failure_reason="expired_or_canceled_card")
    _deliver_new(client, emulator, seen)  # refund.updated, refund.failed, charge.refund.updated

    refund.refresh_from_db()
    assert refund.status == RefundRequestStatus.FAILED
    assert refund.failure_reason
    payment.refresh_from_db()
    assert payment.refunded_cents == 0
    assert RefundRequest.objects.filter(payment=payment, status=RefundRequestStatus.SUCCEEDED).count() == 0


def test_the_fail_later_card_fails_by_itself_and_the_app_follows(
        client, client_for, student, gig, admin_user, stripe_emulator):
    payment = _pay(client_for, student, gig, FAIL_LATER_CARD)
    refund = refunds.admin_refund_create(admin=admin_user, payment=payment, amount_cents=500, reason="")
    deadline = time.monotonic() + 5
    while not stripe_emulator.events("refund.failed") and time.monotonic() < deadline:
        time.sleep(0.02)
    [failed] = stripe_emulator.events("refund.failed")
    assert failed["data"]["object"]["failure_reason"] == "expired_or_canceled_card"
    for event in stripe_emulator.events("refund.updated"):
        deliver(client, event)
    refund.refresh_from_db()
    assert refund.status == RefundRequestStatus.FAILED
    payment.refresh_from_db()
    assert payment.refunded_cents == 0
