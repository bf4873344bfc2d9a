"""Races on PostgreSQL's row locks: decline, cancel and expiry of one booking at the same moment, and
two admins approving one refund request, refund once at Stripe."""

from __future__ import annotations

import pytest

from bookings.models import Booking, BookingStatus
from linguaflex.errors import DomainError
from linguaflex.testing.concurrency import run_at_once
from stripe_payments.models import Payment, PaymentStatus, RefundRequest, RefundRequestStatus
from stripe_payments.services import refunds

from .conftest import PAY_URL, VISA, card, stripe_calls

pytestmark = [pytest.mark.postgres, pytest.mark.emulator, pytest.mark.django_db(transaction=True)]


def race(*calls) -> list[str]:
    def ok(call):
        return lambda: (call(), "ok")[1]

    def describe(exc):
        return exc.code if isinstance(exc, DomainError) else f"error: {exc!r}"

    return sorted(run_at_once([ok(call) for call in calls], describe=describe))


@pytest.fixture
def paid(stripe_emulator, client_for, student, gig):
    response = client_for(student).post(PAY_URL, {"gig_id": gig.pk, "card_details": card(VISA)}, format="json")
    assert response.status_code == 200, response.content
    return Payment.objects.get(pk=response.json()["payment_id"])


@pytest.mark.parametrize(("first", "second"), [("decline", "cancel"), ("decline", "expire"), ("cancel", "expire"),
                                               ("decline", "decline"), ("cancel", "cancel")])
def test_racing_decline_cancel_and_expiry_refund_once_and_exactly_one_wins(
        first, second, paid, student, teacher, stripe_emulator):
    booking_id = Booking.objects.get(payment=paid).pk

    def action(name):
        def call():
            stale = Booking.objects.get(pk=booking_id)  # both read pending_confirmation
            if name == "decline":
                refunds.booking_decline(booking=stale, user=teacher)
            elif name == "cancel":
                refunds.booking_cancel(booking=stale, user=student)
            else:
                refunds.booking_expire(booking_id=booking_id)
        return call

    stripe_emulator.clear_requests()
    outcomes = race(action(first), action(second))
    if first == second:
        # The same decision twice: the second either finds it done (409) or finishes the refund the
        # first committed, under the same Stripe key; either way one refund.
        assert outcomes in (["invalid_state", "ok"], ["ok", "ok"]), outcomes
    else:
        assert outcomes == ["invalid_state", "ok"]

    assert len(stripe_calls(stripe_emulator, "POST", "/v1/refunds")) == 1
    booking = Booking.objects.get(pk=booking_id)
    assert booking.status in (BookingStatus.DECLINED, BookingStatus.CANCELLED)
    paid.refresh_from_db()
    assert (paid.status, paid.refunded_cents, paid.refunded_admin_fee_cents) == (
        PaymentStatus.REFUNDED, paid.amount_cents, paid.admin_fee_cents)
    assert RefundRequest.objects.filter(payment=paid).count() == 1


def test_two_admins_approving_one_request_at_once_refund_once(paid, student, admin_user, make_user, stripe_emulator):
    other_admin = make_user("admin")
    request = refunds.refund_request_create(student=student, payment=paid, amount_cents=2000, reason="")

    outcomes = race(lambda: refunds.refund_request_approve(admin=admin_user, refund_request_id=request.pk),
                    lambda: refunds.refund_request_approve(admin=other_admin, refund_request_id=request.pk))

    assert outcomes == ["invalid_state", "ok"]
    assert len(stripe_calls(stripe_emulator, "POST", "/v1/refunds")) == 1
    request.refresh_from_db()
    assert request.status == RefundRequestStatus.SUCCEEDED
    paid.refresh_from_db()
    assert paid.refunded_cents == 2000


def test_a_decline_racing_an_approval_never_refunds_more_than_was_paid(paid, student, teacher, admin_user,
                                                                       stripe_emulator):
    booking = Booking.objects.get(payment=paid)
    request = refunds.refund_request_create(student=student, payment=paid, amount_cents=2000, reason="")

    outcomes = race(lambda: refunds.refund_request_approve(admin=admin_user, refund_request_id=request.pk),
                    lambda: refunds.booking_decline(booking=booking, user=teacher))

    assert "ok" in outcomes and not any(o.startswith("error") for o in outcomes), outcomes
    paid.refresh_from_db()
    booking.refresh_from_db()
    assert booking.status == BookingStatus.DECLINED
    assert (paid.status, paid.refunded_cents) == (PaymentStatus.REFUNDED, paid.amount_cents)
    with stripe_emulator.state.lock:
        refunded = sum(o["amount"] for o in stripe_emulator.state.objects.values() if o.get("object") == "refund")
    assert refunded == paid.amount_cents


def test_concurrent_identical_admin_refunds_refund_once_and_the_others_hear_refund_pending(
        paid, admin_user, stripe_emulator):
    def refund():
        refunds.admin_refund_create(admin=admin_user, payment=paid, amount_cents=1000, reason="goodwill")

    outcomes = race(*[refund] * 6)

    assert all(o in ("ok", "refund_pending") for o in outcomes), outcomes
    refunded = RefundRequest.objects.filter(payment=paid, status=RefundRequestStatus.SUCCEEDED).count()
    assert outcomes.count("ok") == refunded >= 1
    paid.refresh_from_db()
    assert paid.refunded_cents == 1000 * refunded
    with stripe_emulator.state.lock:
        at_stripe = [o for o in stripe_emulator.state.objects.values() if o.get("object") == "refund"]
    assert sum(r["amount"] for r in at_stripe) == paid.refunded_cents
