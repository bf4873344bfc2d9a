"""The cron commands expire_pending_bookings and purge_idempotency_keys, against the in-process Stripe
emulator (reconcile_payments: test_reconciliation.py; replay_webhook_events: test_webhooks.py;
check_stripe_consistency: test_consistency.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from bookings.models import Booking, BookingStatus
from stripe_payments.models import (
    IdempotencyRecord,
    PaymentStatus,
    RefundKind,
    RefundRequest,
    RefundRequestStatus,
)

from .conftest import run_command, stripe_calls

pytestmark = [pytest.mark.django_db, pytest.mark.emulator]


def age_booking(booking: Booking, hours: float) -> None:
    Booking.objects.filter(pk=booking.pk).update(created_at=timezone.now() - timedelta(hours=hours))


# --- expire_pending_bookings --------------------------------------------------------------------------------
def test_expire_declines_and_refunds_bookings_older_than_the_confirmation_window_once(paid, stripe_emulator, settings):
    settings.BOOKING_CONFIRMATION_HOURS = 48
    old, fresh = paid(), paid()
    old_booking = Booking.objects.get(payment=old)
    age_booking(old_booking, 49)
    age_booking(Booking.objects.get(payment=fresh), 47)

    out = run_command("expire_pending_bookings")
    assert f"booking {old_booking.pk}: declined and refunded" in out
    assert "1 expired, 0 failed" in out
    assert "0 expired, 0 failed" in run_command("expire_pending_bookings")

    old_booking.refresh_from_db()
    assert old_booking.status == BookingStatus.DECLINED
    old.refresh_from_db()
    assert (old.status, old.refunded_cents, old.refunded_admin_fee_cents, old.refunded_teacher_cents) == (
        PaymentStatus.REFUNDED, old.amount_cents, old.admin_fee_cents, old.teacher_amount_cents)
    assert RefundRequest.objects.get(payment=old).kind == RefundKind.EXPIRY
    assert Booking.objects.get(payment=fresh).status == BookingStatus.PENDING_CONFIRMATION
    assert len(stripe_calls(stripe_emulator, "POST", "/v1/refunds")) == 1


def test_expire_hours_overrides_the_setting(paid, stripe_emulator):
    payment = paid()
    booking = Booking.objects.get(payment=payment)
    age_booking(booking, 3)
    assert "0 expired" in run_command("expire_pending_bookings", "--hours", "4")
    assert "1 expired" in run_command("expire_pending_bookings", "--hours", "2")
    booking.refresh_from_db()
    assert booking.status == BookingStatus.DECLINED


def test_expire_leaves_confirmed_bookings_alone(paid, stripe_emulator):
    payment = paid()
    booking = Booking.objects.get(payment=payment)
    Booking.objects.filter(pk=booking.pk).update(status=BookingStatus.CONFIRMED)
    age_booking(booking, 100)
    assert "0 expired" in run_command("expire_pending_bookings")
    assert stripe_calls(stripe_emulator, "POST", "/v1/refunds") == []


@pytest.mark.parametrize("fault", ["error_500", "drop_after_work"])
def test_expire_reports_a_stripe_outage_fails_and_the_next_run_finishes_the_refund_once(
        fault, paid, stripe_emulator, settings):
    from django.core.management.base import CommandError

    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    payment = paid()
    booking = Booking.objects.get(payment=payment)
    age_booking(booking, 49)
    stripe_emulator.arm_fault("POST", "/v1/refunds", fault)
    with pytest.raises(CommandError):
        run_command("expire_pending_bookings")
    booking.refresh_from_db()
    assert booking.status == BookingStatus.DECLINED  # expired: no teacher can confirm it any more
    assert RefundRequest.objects.get(payment=payment).status == RefundRequestStatus.PENDING

    out = run_command("expire_pending_bookings")
    assert "0 expired, 0 failed" in out and "succeeded" in out
    payment.refresh_from_db()
    assert (payment.status, payment.refunded_cents) == (PaymentStatus.REFUNDED, payment.amount_cents)
    # A lost answer is found in Stripe's list (one POST in all); an unexecuted one is sent again.
    assert len(stripe_calls(stripe_emulator, "POST", "/v1/refunds")) == (1 if fault == "drop_after_work" else 2)
    with stripe_emulator.state.lock:
        refunds_at_stripe = [o for o in stripe_emulator.state.objects.values() if o.get("object") == "refund"]
    assert len(refunds_at_stripe) == 1


# --- purge_idempotency_keys ------------------------------------------------------------------------------------
def test_purge_removes_keys_older_than_24_hours_only(student):
    old = IdempotencyRecord.objects.create(user=student, key="old", scope="payment", request_hash="x",
                                           in_flight=False, response_status=200, response_body={})
    IdempotencyRecord.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=25))
    recent = IdempotencyRecord.objects.create(user=student, key="recent", scope="payment", request_hash="y")
    IdempotencyRecord.objects.filter(pk=recent.pk).update(created_at=timezone.now() - timedelta(hours=23))

    assert "1 idempotency key(s) removed" in run_command("purge_idempotency_keys")
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["recent"]
    assert "0 idempotency key(s) removed" in run_command("purge_idempotency_keys")
