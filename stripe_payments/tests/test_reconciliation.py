"""Reconciliation (services.reconciliation, through the reconcile_payments command): payments left
processing or requires_action and refunds whose answer was lost are settled from Stripe's own state,
once, against the in-process Stripe emulator."""

from __future__ import annotations

from datetime import timedelta

import pytest
import stripe
from django.utils import timezone

from bookings.models import Booking
from stripe_payments.models import Payment, PaymentStatus, RefundRequest

from .conftest import PAY_URL, THREE_DS, VISA, card, run_command, stripe_calls

pytestmark = [pytest.mark.django_db, pytest.mark.emulator]


def age_payment(payment: Payment, minutes: float) -> None:
    Payment.objects.filter(pk=payment.pk).update(updated_at=timezone.now() - timedelta(minutes=minutes))


# --- payments left unsettled, refunds whose answer was lost ------------------------------------------------------
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

    assert "0 change(s)" in run_command("reconcile_payments", "--older-than-minutes", "15")  # too recent: untouched
    age_payment(payment, 20)
    out = run_command("reconcile_payments", "--older-than-minutes", "15")

    assert f"payment {payment.pk}: processing -> succeeded with its booking" in out
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED and payment.stripe_payment_intent_id
    assert Booking.objects.filter(payment=payment).count() == 1

    age_payment(payment, 20)
    assert "0 change(s)" in run_command("reconcile_payments", "--older-than-minutes", "15")
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

    out = run_command("reconcile_payments", "--older-than-minutes", "15", "--skip-consistency")

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

    out = run_command("reconcile_payments", "--older-than-minutes", "15", "--skip-consistency")

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

    out = run_command("reconcile_payments", "--older-than-minutes", "15")

    assert f"payment {payment.pk}: processing -> succeeded with its booking" in out
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert Booking.objects.filter(payment=payment).count() == 1
    age_payment(payment, 30)
    assert "0 change(s)" in run_command("reconcile_payments", "--older-than-minutes", "15")
    assert Booking.objects.count() == 1


def test_reconcile_cancels_an_abandoned_3ds_payment_at_stripe_and_fails_it(client_for, student, gig, stripe_emulator):
    response = client_for(student).post(PAY_URL, {"gig_id": gig.pk, "card_details": card(THREE_DS)}, format="json")
    assert response.status_code == 402
    payment = Payment.objects.get(pk=response.json()["error"]["payment_id"])
    assert payment.status == PaymentStatus.REQUIRES_ACTION
    age_payment(payment, 60)

    out = run_command("reconcile_payments", "--older-than-minutes", "15")

    assert f"payment {payment.pk}: requires_action -> failed" in out
    payment.refresh_from_db()
    assert (payment.status, payment.failure_code) == (PaymentStatus.FAILED, "abandoned")
    with stripe_emulator.state.lock:
        assert stripe_emulator.state.objects[payment.stripe_payment_intent_id]["status"] == "canceled"
    assert not Booking.objects.exists()
    age_payment(payment, 60)
    assert "0 change(s)" in run_command("reconcile_payments", "--older-than-minutes", "15")
    cancels = stripe_calls(stripe_emulator, "POST", f"/v1/payment_intents/{payment.stripe_payment_intent_id}/cancel")
    assert len(cancels) == 1


def test_reconcile_settles_a_3ds_payment_completed_at_stripe_but_never_reported(
        client_for, student, gig, stripe_emulator):
    response = client_for(student).post(PAY_URL, {"gig_id": gig.pk, "card_details": card(THREE_DS)}, format="json")
    payment = Payment.objects.get(pk=response.json()["error"]["payment_id"])
    stripe_emulator.complete_3ds(payment.stripe_payment_intent_id)  # no return page, no webhook
    age_payment(payment, 60)
    run_command("reconcile_payments", "--older-than-minutes", "15")
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
        run_command("reconcile_payments", "--older-than-minutes", "15")
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

    out = run_command("reconcile_payments", "--older-than-minutes", "15")

    assert f"payment {payment.pk}: refunds" in out
    request.refresh_from_db()
    assert request.status == "succeeded" and request.stripe_refund_id
    payment.refresh_from_db()
    assert (payment.status, payment.refunded_cents) == (PaymentStatus.PARTIALLY_REFUNDED, 1500)
    assert "0 change(s)" in run_command("reconcile_payments", "--older-than-minutes", "15")


def test_reconcile_leaves_a_pending_request_that_stripe_never_saw_pending(paid, student, stripe_emulator):
    from stripe_payments.services import refunds

    payment = paid()
    request = refunds.refund_request_create(student=student, payment=payment, amount_cents=1500, reason="")
    RefundRequest.objects.filter(pk=request.pk).update(updated_at=timezone.now() - timedelta(minutes=30))
    assert "0 change(s)" in run_command("reconcile_payments", "--older-than-minutes", "15")
    request.refresh_from_db()
    assert request.status == "pending"


