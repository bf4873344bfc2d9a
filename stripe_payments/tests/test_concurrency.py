"""Races that only a real database shows: settling one payment twice at the same moment."""

from __future__ import annotations

import pytest

from bookings.models import Booking
from linguaflex.testing.concurrency import run_at_once
from stripe_payments import gateway
from stripe_payments.models import Payment, PaymentStatus
from stripe_payments.money import split_amount
from stripe_payments.services import lifecycle


def _succeeded_intent(pi_id: str) -> gateway.IntentResult:
    card = gateway.CardDetails("visa", "4242", 12, 2035, "fp_race")
    return gateway.IntentResult(
        id=pi_id, status="succeeded", amount=5000, amount_received=5000, currency="usd", client_secret=None,
        customer_id=None, payment_method=gateway.PaymentMethodInfo("pm_race", None, card), latest_charge_id="ch_race",
        redirect_url=None, last_error=None, metadata={})


def _run_together(count: int, target) -> list[str]:
    return run_at_once([target] * count)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_settles_of_one_succeeded_payment_book_exactly_once(student, gig):
    split = split_amount(gig.price_cents)
    payment = Payment.objects.create(
        student=student, teacher=gig.teacher, gig=gig, amount_cents=gig.price_cents,
        admin_fee_cents=split.admin_fee_cents, teacher_amount_cents=split.teacher_amount_cents,
        status=PaymentStatus.PROCESSING, save_card=True)
    intent = _succeeded_intent("pi_race")

    outcomes = _run_together(4, lambda: lifecycle.payment_settle_from_intent(payment_id=payment.pk,
                                                                             intent=intent).status)

    assert outcomes == [PaymentStatus.SUCCEEDED] * 4
    assert Booking.objects.filter(payment=payment).count() == 1
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED and payment.stripe_payment_intent_id == "pi_race"
    assert payment.student.saved_payment_methods.count() == 1
