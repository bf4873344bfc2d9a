"""The cron commands: expire_pending_bookings, reconcile_payments, purge_idempotency_keys (and
replay_webhook_events, in test_webhooks.py), against the in-process Stripe emulator."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
import stripe
from django.core.management import call_command
from django.utils import timezone

from bookings.models import Booking, BookingStatus
from stripe_payments.models import (
    IdempotencyRecord,
    Payment,
    PaymentStatus,
    RefundKind,
    RefundRequest,
    RefundRequestStatus,
)

from .conftest import PAY_URL, THREE_DS, VISA, card, stripe_calls

pytestmark = [pytest.mark.django_db, pytest.mark.emulator]


def run(command: str, *args) -> str:
    out = StringIO()
    call_command(command, *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def age_booking(booking: Booking, hours: float) -> None:
    Booking.objects.filter(pk=booking.pk).update(created_at=timezone.now() - timedelta(hours=hours))


def age_payment(payment: Payment, minutes: float) -> None:
    Payment.objects.filter(pk=payment.pk).update(updated_at=timezone.now() - timedelta(minutes=minutes))


@pytest.fixture
def paid(stripe_emulator, client_for, student, gig):
    def pay() -> Payment:
        response = client_for(student).post(PAY_URL, {"gig_id": gig.pk, "card_details": card(VISA)}, format="json")
        assert response.status_code == 200, response.content
        return Payment.objects.get(pk=response.json()["payment_id"])

    return pay


# --- expire_pending_bookings --------------------------------------------------------------------------------
def test_expire_declines_and_refunds_bookings_older_than_the_confirmation_window_once(paid, stripe_emulator, settings):
    settings.BOOKING_CONFIRMATION_HOURS = 48
    old, fresh = paid(), paid()
    old_booking = Booking.objects.get(payment=old)
    age_booking(old_booking, 49)
    age_booking(Booking.objects.get(payment=fresh), 47)

    out = run("expire_pending_bookings")
    assert f"booking {old_booking.pk}: declined and refunded" in out
    assert "1 expired, 0 failed" in out
    assert "0 expired, 0 failed" in run("expire_pending_bookings")

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
    assert "0 expired" in run("expire_pending_bookings", "--hours", "4")
    assert "1 expired" in run("expire_pending_bookings", "--hours", "2")
    booking.refresh_from_db()
    assert booking.status == BookingStatus.DECLINED


def test_expire_leaves_confirmed_bookings_alone(paid, stripe_emulator):
    payment = paid()
    booking = Booking.objects.get(payment=payment)
    Booking.objects.filter(pk=booking.pk).update(status=BookingStatus.CONFIRMED)
    age_booking(booking, 100)
    assert "0 expired" in run("expire_pending_bookings")
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
        run("expire_pending_bookings")
    booking.refresh_from_db()
    assert booking.status == BookingStatus.DECLINED  # expired: no teacher can confirm it any more
    assert RefundRequest.objects.get(payment=payment).status == RefundRequestStatus.PENDING

    out = run("expire_pending_bookings")
    assert "0 expired, 0 failed" in out and "succeeded" in out
    payment.refresh_from_db()
    assert (payment.status, payment.refunded_cents) == (PaymentStatus.REFUNDED, payment.amount_cents)
    # A lost answer is found in Stripe's list (one POST in all); an unexecuted one is sent again.
    assert len(stripe_calls(stripe_emulator, "POST", "/v1/refunds")) == (1 if fault == "drop_after_work" else 2)
    with stripe_emulator.state.lock:
        refunds_at_stripe = [o for o in stripe_emulator.state.objects.values() if o.get("object") == "refund"]
    assert len(refunds_at_stripe) == 1


# --- reconcile_payments ----------------------------------------------------------------------------------------
def test_reconcile_after_a_dropped_create_finds_the_charge_and_creates_exactly_one_booking(
        client_for, student, gig, stripe_emulator, settings):
    settings.STRIPE_MAX_NETWORK_RETRIES = 1
    # Stripe creates and charges the PaymentIntent every time, but no answer ever arrives.
    stripe_emulator.arm_fault("POST", "/v1/payment_intents", "drop_after_work",
                              count=settings.STRIPE_MAX_NETWORK_RETRIES + 2)
    response = client_for(student).post(PAY_URL, {"gig_id": gig.pk, "card_details": card(VISA)}, format="json")
    assert response.status_code == 503
    payment = Payment.objects.get()
    assert (payment.status, payment.stripe_payment_intent_id) == (PaymentStatus.PROCESSING, None)
    assert not Booking.objects.exists()
    with stripe_emulator.state.lock:
        assert sum(1 for o in stripe_emulator.state.objects.values() if o.get("object") == "payment_intent") == 1

    assert "0 change(s)" in run("reconcile_payments", "--older-than-minutes", "15")  # too recent: untouched
    age_payment(payment, 20)
    out = run("reconcile_payments", "--older-than-minutes", "15")

    assert f"payment {payment.pk}: processing -> succeeded with its booking" in out
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED and payment.stripe_payment_intent_id
    assert Booking.objects.filter(payment=payment).count() == 1

    age_payment(payment, 20)
    assert "0 change(s)" in run("reconcile_payments", "--older-than-minutes", "15")
    assert Booking.objects.count() == 1


def test_reconcile_copes_with_stripes_search_lag_and_never_fails_a_charged_payment(
        client_for, student, gig, stripe_emulator, settings):
    """Search is about a minute behind at Stripe: finding nothing there does not mean nothing was
    charged. Reconciliation reads the consistent list before it closes a payment as never sent."""
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    stripe_emulator.set_search_lag(120_000)
    stripe_emulator.arm_fault("POST", "/v1/payment_intents", "drop_after_work")
    assert client_for(student).post(PAY_URL, {"gig_id": gig.pk, "card_details": card(VISA)},
                                    format="json").status_code == 503
    payment = Payment.objects.get()
    age_payment(payment, 20)
    stripe_emulator.clear_requests()

    out = run("reconcile_payments", "--older-than-minutes", "15", "--skip-consistency")

    assert f"payment {payment.pk}: processing -> succeeded with its booking" in out
    calls = [(r["method"], r["path"]) for r in stripe_calls(stripe_emulator)]
    assert ("GET", "/v1/payment_intents/search") in calls and ("GET", "/v1/payment_intents") in calls
    assert Booking.objects.filter(payment=payment).count() == 1


def test_reconcile_closes_as_never_sent_only_a_payment_absent_from_search_and_list(
        client_for, student, gig, stripe_emulator, settings):
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    stripe_emulator.set_search_lag(120_000)
    stripe_emulator.arm_fault("POST", "/v1/payment_intents", "error_500")  # not executed
    assert client_for(student).post(PAY_URL, {"gig_id": gig.pk, "card_details": card(VISA)},
                                    format="json").status_code == 502
    payment = Payment.objects.get()
    age_payment(payment, 20)

    out = run("reconcile_payments", "--older-than-minutes", "15", "--skip-consistency")

    assert f"payment {payment.pk}: processing -> failed" in out
    payment.refresh_from_db()
    assert payment.failure_code == "not_charged"


def test_reconcile_creates_the_missing_booking_of_a_client_confirmed_intent_once(
        client_for, student, gig, stripe_emulator):
    response = client_for(student).post("/stripe-payments/create-payment-intent/", {"gig_id": gig.pk}, format="json")
    assert response.status_code == 200
    pi_id = response.json()["payment_intent_id"]
    # The student's app confirmed at Stripe; the confirm call and the webhook were both lost.
    stripe.StripeClient("sk_test_client", base_addresses={"api": stripe_emulator.base_url}).v1.payment_intents.confirm(
        pi_id, params={"payment_method": "pm_card_visa"})
    payment = Payment.objects.get(stripe_payment_intent_id=pi_id)
    age_payment(payment, 30)

    out = run("reconcile_payments", "--older-than-minutes", "15")

    assert f"payment {payment.pk}: processing -> succeeded with its booking" in out
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert Booking.objects.filter(payment=payment).count() == 1
    age_payment(payment, 30)
    assert "0 change(s)" in run("reconcile_payments", "--older-than-minutes", "15")
    assert Booking.objects.count() == 1


def test_reconcile_cancels_an_abandoned_3ds_payment_at_stripe_and_fails_it(client_for, student, gig, stripe_emulator):
    response = client_for(student).post(PAY_URL, {"gig_id": gig.pk, "card_details": card(THREE_DS)}, format="json")
    assert response.status_code == 402
    payment = Payment.objects.get(pk=response.json()["error"]["payment_id"])
    assert payment.status == PaymentStatus.REQUIRES_ACTION
    age_payment(payment, 60)

    out = run("reconcile_payments", "--older-than-minutes", "15")

    assert f"payment {payment.pk}: requires_action -> failed" in out
    payment.refresh_from_db()
    assert (payment.status, payment.failure_code) == (PaymentStatus.FAILED, "abandoned")
    with stripe_emulator.state.lock:
        assert stripe_emulator.state.objects[payment.stripe_payment_intent_id]["status"] == "canceled"
    assert not Booking.objects.exists()
    age_payment(payment, 60)
    assert "0 change(s)" in run("reconcile_payments", "--older-than-minutes", "15")
    cancels = stripe_calls(stripe_emulator, "POST", f"/v1/payment_intents/{payment.stripe_payment_intent_id}/cancel")
    assert len(cancels) == 1


def test_reconcile_settles_a_3ds_payment_completed_at_stripe_but_never_reported(
        client_for, student, gig, stripe_emulator):
    response = client_for(student).post(PAY_URL, {"gig_id": gig.pk, "card_details": card(THREE_DS)}, format="json")
    payment = Payment.objects.get(pk=response.json()["error"]["payment_id"])
    stripe_emulator.complete_3ds(payment.stripe_payment_intent_id)  # no return page, no webhook
    age_payment(payment, 60)
    run("reconcile_payments", "--older-than-minutes", "15")
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert Booking.objects.filter(payment=payment).count() == 1
    assert stripe_calls(stripe_emulator, "POST", f"/v1/payment_intents/{payment.stripe_payment_intent_id}/cancel") == []


def test_reconcile_reports_an_unreachable_stripe_and_changes_nothing(client_for, student, gig, stripe_emulator,
                                                                     settings):
    from django.core.management.base import CommandError

    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    response = client_for(student).post(PAY_URL, {"gig_id": gig.pk, "card_details": card(THREE_DS)}, format="json")
    payment = Payment.objects.get(pk=response.json()["error"]["payment_id"])
    age_payment(payment, 60)
    stripe_emulator.arm_fault("GET", "/v1/payment_intents/", "error_500")
    with pytest.raises(CommandError):
        run("reconcile_payments", "--older-than-minutes", "15")
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.REQUIRES_ACTION


def test_reconcile_records_an_approved_refund_whose_answer_and_webhook_were_lost(
        paid, student, admin_user, stripe_emulator, settings):
    from stripe_payments import gateway
    from stripe_payments.services import refunds

    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    payment = paid()
    request = refunds.refund_request_create(student=student, payment=payment, amount_cents=1500, reason="")
    stripe_emulator.arm_fault("POST", "/v1/refunds", "drop_after_work")
    with pytest.raises(gateway.ProviderUnavailable):
        refunds.refund_request_approve(admin=admin_user, refund_request_id=request.pk)
    RefundRequest.objects.filter(pk=request.pk).update(updated_at=timezone.now() - timedelta(minutes=30))

    out = run("reconcile_payments", "--older-than-minutes", "15")

    assert f"payment {payment.pk}: refunds" in out
    request.refresh_from_db()
    assert request.status == "succeeded" and request.stripe_refund_id
    payment.refresh_from_db()
    assert (payment.status, payment.refunded_cents) == (PaymentStatus.PARTIALLY_REFUNDED, 1500)
    assert "0 change(s)" in run("reconcile_payments", "--older-than-minutes", "15")


def test_reconcile_leaves_a_pending_request_that_stripe_never_saw_pending(paid, student, stripe_emulator):
    from stripe_payments.services import refunds

    payment = paid()
    request = refunds.refund_request_create(student=student, payment=payment, amount_cents=1500, reason="")
    RefundRequest.objects.filter(pk=request.pk).update(updated_at=timezone.now() - timedelta(minutes=30))
    assert "0 change(s)" in run("reconcile_payments", "--older-than-minutes", "15")
    request.refresh_from_db()
    assert request.status == "pending"


# --- purge_idempotency_keys ------------------------------------------------------------------------------------
def test_purge_removes_keys_older_than_24_hours_only(student):
    old = IdempotencyRecord.objects.create(user=student, key="old", scope="payment", request_hash="x",
                                           in_flight=False, response_status=200, response_body={})
    IdempotencyRecord.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=25))
    recent = IdempotencyRecord.objects.create(user=student, key="recent", scope="payment", request_hash="y")
    IdempotencyRecord.objects.filter(pk=recent.pk).update(created_at=timezone.now() - timedelta(hours=23))

    assert "1 idempotency key(s) removed" in run("purge_idempotency_keys")
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["recent"]
    assert "0 idempotency key(s) removed" in run("purge_idempotency_keys")
