"""The Stripe webhook: signatures, storing each event once, every handler, duplicates and
out-of-order events, failures and replay, and real signed deliveries from the emulator to a live
server."""

from __future__ import annotations

import json
import time

import pytest
import requests
from django.core.management import call_command
from rest_framework_simplejwt.tokens import RefreshToken

from bookings.models import Booking, BookingStatus
from stripe_payments.models import (
    Payment,
    PaymentStatus,
    RefundKind,
    RefundRequest,
    RefundRequestStatus,
    SavedPaymentMethod,
    WebhookEvent,
    WebhookEventStatus,
)
from stripe_payments.services import webhooks

from .conftest import (
    ADD_URL,
    PAY_URL,
    THREE_DS,
    WEBHOOK_SECRET,
    WEBHOOK_URL,
    card,
    dashboard,
    deliver,
    only_event,
    post_event,
    sign,
    stripe_calls,
)

pytestmark = [pytest.mark.emulator]


# --- fixtures -----------------------------------------------------------------------------------------------
@pytest.fixture
def pay_3ds(stripe_emulator, client_for, student, gig):
    """A 3-D Secure payment through the API: 402 authentication_required, payment requires_action."""

    def pay() -> Payment:
        response = client_for(student).post(PAY_URL, {"gig_id": gig.pk, "card_details": card(THREE_DS)},
                                            format="json")
        assert response.status_code == 402, response.content
        assert response.json()["error"]["code"] == "authentication_required"
        payment = Payment.objects.get(pk=response.json()["error"]["payment_id"])
        assert payment.status == PaymentStatus.REQUIRES_ACTION
        return payment

    return pay


# --- signatures -----------------------------------------------------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize("how", ["forged", "unsigned", "stale", "tampered", "garbage_header", "very_stale"])
def test_a_bad_missing_or_stale_signature_is_400_and_nothing_is_stored_or_processed(
        how, client, pay_3ds, stripe_emulator):
    payment = pay_3ds()
    stripe_emulator.complete_3ds(payment.stripe_payment_intent_id)
    event = only_event(stripe_emulator, "payment_intent.succeeded")
    stripe_emulator.clear_requests()
    payload = json.dumps(event).encode()
    signature = {
        "forged": sign(payload, secret="whsec_someone_else"),
        "unsigned": None,
        "stale": sign(payload, timestamp=int(time.time()) - 301),
        "tampered": sign(json.dumps({**event, "type": "payment_intent.canceled"}).encode()),
        "garbage_header": "not-a-signature",
        "very_stale": sign(payload, timestamp=int(time.time()) - 10_000),
    }[how]
    headers = {"HTTP_STRIPE_SIGNATURE": signature} if signature is not None else {}

    response = client.post(WEBHOOK_URL, data=payload, content_type="application/json", **headers)

    assert response.status_code == 400
    assert response.json()["success"] is False
    assert not WebhookEvent.objects.exists()
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.REQUIRES_ACTION
    assert not Booking.objects.exists()
    assert stripe_calls(stripe_emulator) == []


@pytest.mark.django_db
def test_a_signature_just_inside_the_tolerance_is_accepted(client, stripe_emulator):
    event = {"id": "evt_recent", "object": "event", "type": "customer.created", "created": int(time.time()),
             "livemode": False, "data": {"object": {"id": "cus_1", "object": "customer"}}}
    assert post_event(client, event, timestamp=int(time.time()) - 250).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(("secret", "status"), [("whsec_connect_endpoint", 200), ("whsec_someone_else", 400)])
def test_an_event_signed_by_the_connect_endpoint_is_accepted_too(client, settings, secret, status):
    """Stripe sends connected accounts' events (account.updated) to the Connect endpoint, signed with
    its own secret; the same URL accepts both endpoints' signatures, and no other."""
    settings.STRIPE_CONNECT_WEBHOOK_SECRET = "whsec_connect_endpoint"
    event = {"id": f"evt_connect_{status}", "object": "event", "type": "customer.created", "account": "acct_1",
             "created": int(time.time()), "livemode": False, "data": {"object": {"id": "cus_1", "object": "customer"}}}
    assert post_event(client, event, secret=secret).status_code == status
    assert WebhookEvent.objects.filter(stripe_event_id=event["id"]).exists() == (status == 200)


@pytest.mark.django_db
def test_a_validly_signed_body_that_is_not_json_is_400(client):
    payload = b"not json"
    response = client.post(WEBHOOK_URL, data=payload, content_type="application/json",
                           HTTP_STRIPE_SIGNATURE=sign(payload))
    assert response.status_code == 400
    assert not WebhookEvent.objects.exists()


# --- handlers -------------------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_an_unknown_event_type_is_stored_as_ignored_and_answered_200(client, stripe_emulator):
    event = {"id": "evt_unknown_1", "object": "event", "type": "customer.subscription.created",
             "created": int(time.time()), "livemode": False,
             "data": {"object": {"id": "sub_1", "object": "subscription"}}}
    assert deliver(client, event) == {"received": True, "status": "ignored"}
    stored = WebhookEvent.objects.get(stripe_event_id="evt_unknown_1")
    assert (stored.type, stored.status, stored.attempts, stored.object_id) == (
        "customer.subscription.created", WebhookEventStatus.IGNORED, 1, "sub_1")
    assert deliver(client, event)["status"] == "ignored"
    assert WebhookEvent.objects.count() == 1


@pytest.mark.django_db
def test_payment_intent_succeeded_completes_a_3ds_payment_and_creates_its_booking(client, pay_3ds, stripe_emulator):
    payment = pay_3ds()
    stripe_emulator.complete_3ds(payment.stripe_payment_intent_id)
    event = only_event(stripe_emulator, "payment_intent.succeeded")

    assert deliver(client, event)["status"] == "processed"

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert payment.stripe_charge_id
    booking = Booking.objects.get(payment=payment)
    assert booking.status == BookingStatus.PENDING_CONFIRMATION
    stored = WebhookEvent.objects.get(stripe_event_id=event["id"])
    assert (stored.status, stored.attempts, stored.payment_intent_id) == (
        WebhookEventStatus.PROCESSED, 1, payment.stripe_payment_intent_id)
    assert stored.processed_at is not None


@pytest.mark.django_db
def test_payment_intent_succeeded_settles_the_client_side_flow(client, client_for, student, gig, stripe_emulator):
    response = client_for(student).post("/stripe-payments/create-payment-intent/", {"gig_id": gig.pk}, format="json")
    assert response.status_code == 200
    pi_id = response.json()["payment_intent_id"]
    # The student's app confirms with Stripe's SDK; the backend hears only the webhook.
    dashboard(stripe_emulator).v1.payment_intents.confirm(
        pi_id, params={"payment_method": "pm_card_visa"})
    deliver(client, only_event(stripe_emulator, "payment_intent.succeeded"))
    payment = Payment.objects.get(stripe_payment_intent_id=pi_id)
    assert payment.status == PaymentStatus.SUCCEEDED
    assert Booking.objects.filter(payment=payment).count() == 1


@pytest.mark.django_db
def test_payment_intent_payment_failed_marks_a_failed_3ds_payment_failed(client, pay_3ds, stripe_emulator):
    payment = pay_3ds()
    stripe_emulator.complete_3ds(payment.stripe_payment_intent_id, succeed=False)
    deliver(client, only_event(stripe_emulator, "payment_intent.payment_failed"))
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.FAILED
    assert payment.failure_code
    assert not Booking.objects.exists()


@pytest.mark.django_db
def test_payment_intent_canceled_marks_the_payment_canceled(client, pay_3ds, stripe_emulator):
    payment = pay_3ds()
    dashboard(stripe_emulator).v1.payment_intents.cancel(payment.stripe_payment_intent_id)
    deliver(client, only_event(stripe_emulator, "payment_intent.canceled"))
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.CANCELED
    assert not Booking.objects.exists()


@pytest.mark.django_db
def test_setup_intent_succeeded_saves_a_card_after_3ds(client, client_for, student, stripe_emulator):
    response = client_for(student).post(ADD_URL, card(THREE_DS), format="json")
    assert response.status_code == 402
    setup_intent_id = response.json()["error"]["setup_intent_id"]
    assert not SavedPaymentMethod.objects.exists()

    stripe_emulator.complete_3ds(setup_intent_id)
    event = only_event(stripe_emulator, "setup_intent.succeeded")
    deliver(client, event)
    deliver(client, event)

    saved = SavedPaymentMethod.objects.get(user=student)
    assert (saved.last4, saved.brand, saved.is_default) == ("3155", "visa", True)


@pytest.mark.django_db
@pytest.mark.parametrize("event_type", ["charge.refunded", "refund.created"])
def test_a_dashboard_refund_is_synced_from_its_event(event_type, client, paid, stripe_emulator):
    payment = paid()
    dashboard(stripe_emulator).v1.refunds.create(params={"payment_intent": payment.stripe_payment_intent_id,
                                                          "amount": 1500})
    deliver(client, only_event(stripe_emulator, event_type))

    payment.refresh_from_db()
    assert (payment.status, payment.refunded_cents, payment.refunded_admin_fee_cents,
            payment.refunded_teacher_cents) == (PaymentStatus.PARTIALLY_REFUNDED, 1500, 150, 1350)
    [external] = RefundRequest.objects.filter(payment=payment)
    assert (external.kind, external.status, external.amount_cents) == (
        RefundKind.EXTERNAL, RefundRequestStatus.SUCCEEDED, 1500)


@pytest.mark.django_db
def test_refund_events_of_our_own_refund_do_not_count_it_twice(client, paid, admin_user, stripe_emulator):
    from stripe_payments.services import refunds

    payment = paid()
    refund = refunds.admin_refund_create(admin=admin_user, payment=payment, amount_cents=2000, reason="")
    for event_type in ("charge.refunded", "refund.created"):
        deliver(client, only_event(stripe_emulator, event_type))
    payment.refresh_from_db()
    assert payment.refunded_cents == 2000
    assert list(RefundRequest.objects.filter(payment=payment)) == [refund]


@pytest.mark.django_db
def test_refund_updated_with_a_failed_refund_shows_failure_reason_and_takes_the_money_back(
        client, paid, admin_user, stripe_emulator):
    from stripe_payments.services import refunds

    payment = paid()
    refund = refunds.admin_refund_create(admin=admin_user, payment=payment, amount_cents=2000, reason="")
    stripe_emulator.fail_refund(refund.stripe_refund_id)
    deliver(client, only_event(stripe_emulator, "refund.updated"))
    refund.refresh_from_db()
    assert refund.status == RefundRequestStatus.FAILED and refund.failure_reason
    payment.refresh_from_db()
    assert (payment.status, payment.refunded_cents, payment.refunded_admin_fee_cents,
            payment.refunded_teacher_cents) == (PaymentStatus.SUCCEEDED, 0, 0, 0)


@pytest.mark.django_db
@pytest.mark.parametrize("state", [BookingStatus.PENDING_CONFIRMATION, BookingStatus.CONFIRMED,
                                   BookingStatus.DECLINED])
def test_charge_dispute_created_marks_the_payment_and_its_booking_disputed(state, client, paid, stripe_emulator):
    payment = paid()
    Booking.objects.filter(payment=payment).update(status=state)
    stripe_emulator.trigger_dispute(payment.stripe_charge_id)
    event = only_event(stripe_emulator, "charge.dispute.created")
    deliver(client, event)
    deliver(client, event)
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.DISPUTED
    assert Booking.objects.get(payment=payment).status == BookingStatus.DISPUTED


@pytest.mark.django_db
def test_a_dispute_event_that_stripe_does_not_confirm_changes_nothing(client, paid, stripe_emulator):
    payment = paid()
    stripe_emulator.trigger_dispute(payment.stripe_charge_id)
    event = only_event(stripe_emulator, "charge.dispute.created")
    with stripe_emulator.state.lock:  # Stripe's current state says otherwise: the event's copy is not trusted
        stripe_emulator.state.objects[event["data"]["object"]["id"]]["status"] = "warning_closed"
    deliver(client, event)
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED


# --- duplicates and order -------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_the_same_success_event_ten_times_takes_effect_once(client, pay_3ds, stripe_emulator):
    payment = pay_3ds()
    stripe_emulator.complete_3ds(payment.stripe_payment_intent_id)
    event = only_event(stripe_emulator, "payment_intent.succeeded")
    stripe_emulator.clear_requests()

    answers = [deliver(client, event)["status"] for _ in range(10)]

    assert answers == ["processed"] * 10
    assert Booking.objects.filter(payment=payment).count() == 1
    assert WebhookEvent.objects.filter(stripe_event_id=event["id"]).count() == 1
    assert WebhookEvent.objects.get(stripe_event_id=event["id"]).attempts == 1
    # The handler ran once: one re-read of the PaymentIntent at Stripe for ten deliveries.
    assert len(stripe_calls(stripe_emulator, "GET", "/v1/payment_intents/")) == 1


@pytest.mark.django_db
def test_the_same_refund_event_ten_times_applies_the_refund_once(client, paid, stripe_emulator):
    payment = paid()
    dashboard(stripe_emulator).v1.refunds.create(params={"payment_intent": payment.stripe_payment_intent_id,
                                                          "amount": 1000})
    event = only_event(stripe_emulator, "refund.created")
    for _ in range(10):
        deliver(client, event)
    payment.refresh_from_db()
    assert payment.refunded_cents == 1000
    assert RefundRequest.objects.filter(payment=payment).count() == 1
    assert WebhookEvent.objects.count() == 1


@pytest.mark.django_db
def test_a_refund_event_before_the_success_event_ends_in_the_right_state(client, pay_3ds, stripe_emulator):
    payment = pay_3ds()
    stripe_emulator.complete_3ds(payment.stripe_payment_intent_id)
    # Refunded in full from the dashboard before LinguaFlex heard of the success.
    dashboard(stripe_emulator).v1.refunds.create(params={"payment_intent": payment.stripe_payment_intent_id})
    succeeded = only_event(stripe_emulator, "payment_intent.succeeded")

    deliver(client, only_event(stripe_emulator, "refund.created"))
    deliver(client, only_event(stripe_emulator, "charge.refunded"))
    deliver(client, succeeded)

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.REFUNDED
    assert (payment.refunded_cents, payment.refunded_admin_fee_cents) == (payment.amount_cents, payment.admin_fee_cents)
    assert Booking.objects.get(payment=payment).status == BookingStatus.REFUNDED
    assert RefundRequest.objects.filter(payment=payment).count() == 1


@pytest.mark.django_db
def test_events_in_any_order_leave_the_same_final_state(client, pay_3ds, stripe_emulator):
    payment = pay_3ds()
    stripe_emulator.complete_3ds(payment.stripe_payment_intent_id)
    dashboard(stripe_emulator).v1.refunds.create(params={"payment_intent": payment.stripe_payment_intent_id,
                                                          "amount": 1000})
    events = [e for e in stripe_emulator.events() if e["type"] in (
        "payment_intent.requires_action", "payment_intent.succeeded", "charge.succeeded", "charge.refunded",
        "refund.created")]
    for event in reversed(events):
        deliver(client, event)
    payment.refresh_from_db()
    assert (payment.status, payment.refunded_cents) == (PaymentStatus.PARTIALLY_REFUNDED, 1000)
    assert Booking.objects.get(payment=payment).status == BookingStatus.PENDING_CONFIRMATION


def test_a_dispute_handled_before_the_success_event_still_books_the_charged_payment(
        client, client_for, student, gig, stripe_emulator):
    assert client_for(student).post(PAY_URL, {"gig_id": gig.pk, "card_details": card(THREE_DS)},
                                    format="json").status_code == 402
    payment = Payment.objects.get()
    intent = stripe_emulator.complete_3ds(payment.stripe_payment_intent_id)
    charge = intent["latest_charge"]
    stripe_emulator.trigger_dispute(charge if isinstance(charge, str) else charge["id"])

    deliver(client, only_event(stripe_emulator, "charge.dispute.created"))
    deliver(client, only_event(stripe_emulator, "payment_intent.succeeded"))

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.DISPUTED and payment.stripe_charge_id
    assert Booking.objects.get(payment=payment).status == BookingStatus.DISPUTED


# --- failures and replay ---------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_a_handler_that_cannot_reach_stripe_records_the_failure_and_replay_processes_it(
        client, pay_3ds, stripe_emulator, settings):
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    payment = pay_3ds()
    stripe_emulator.complete_3ds(payment.stripe_payment_intent_id)
    event = only_event(stripe_emulator, "payment_intent.succeeded")
    stripe_emulator.arm_fault("GET", "/v1/payment_intents/", "error_500", count=2)

    for attempt in (1, 2):
        response = post_event(client, event)
        assert response.status_code >= 500
        stored = WebhookEvent.objects.get(stripe_event_id=event["id"])
        assert (stored.status, stored.attempts) == (WebhookEventStatus.FAILED, attempt)
        assert stored.error
    assert not Booking.objects.exists()

    call_command("replay_webhook_events")

    stored.refresh_from_db()
    assert (stored.status, stored.attempts, stored.error) == (WebhookEventStatus.PROCESSED, 3, "")
    assert Booking.objects.filter(payment=payment).count() == 1
    call_command("replay_webhook_events")  # nothing failed is left: no change
    assert Booking.objects.filter(payment=payment).count() == 1


@pytest.mark.django_db
def test_a_handler_bug_is_500_recorded_failed_and_replayable_by_event_id(client, paid, stripe_emulator, monkeypatch):
    payment = paid()
    dashboard(stripe_emulator).v1.refunds.create(params={"payment_intent": payment.stripe_payment_intent_id,
                                                          "amount": 1000})
    event = only_event(stripe_emulator, "refund.created")

    def broken(_event):
        raise RuntimeError("boom")

    monkeypatch.setitem(webhooks.HANDLERS, "refund.created", broken)
    response = post_event(client, event)
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "server_error"
    stored = WebhookEvent.objects.get(stripe_event_id=event["id"])
    assert (stored.status, stored.attempts) == (WebhookEventStatus.FAILED, 1)
    assert "RuntimeError: boom" in stored.error
    payment.refresh_from_db()
    assert payment.refunded_cents == 0

    monkeypatch.undo()
    call_command("replay_webhook_events", event["id"])

    stored.refresh_from_db()
    assert (stored.status, stored.attempts) == (WebhookEventStatus.PROCESSED, 2)
    payment.refresh_from_db()
    assert payment.refunded_cents == 1000


@pytest.mark.django_db
def test_replaying_an_unknown_event_id_is_an_error(client):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("replay_webhook_events", "evt_does_not_exist")


# --- real signed deliveries to a live server --------------------------------------------------------------------
@pytest.fixture
def webhooks_to(stripe_emulator):
    """Point the emulator's deliveries at a URL for one test (the emulator lives for the session)."""

    def configure(url: str) -> None:
        stripe_emulator.configure_webhooks(url, WEBHOOK_SECRET, max_attempts=3, backoff=0.2, timeout=10)

    yield configure
    stripe_emulator.configure_webhooks(None)


def _live_server_test(live_server, stripe_emulator, webhooks_to, student, gig):
    webhooks_to(f"{live_server.url}/stripe-payments/webhook/")
    token = str(RefreshToken.for_user(student).access_token)
    response = requests.post(f"{live_server.url}{PAY_URL}", json={"gig_id": gig.pk, "card_details": card(THREE_DS)},
                             headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert response.status_code == 402, response.text
    pi_id = response.json()["error"]["payment_intent_id"]

    stripe_emulator.complete_3ds(pi_id)
    assert stripe_emulator.wait_for_deliveries(timeout=20)

    deliveries = stripe_emulator.deliveries()
    assert deliveries and all(d["status"] == "succeeded" for d in deliveries), deliveries
    succeeded = [d for d in deliveries if d["event_type"] == "payment_intent.succeeded"]
    assert len(succeeded) == 1
    payment = Payment.objects.get(stripe_payment_intent_id=pi_id)
    assert payment.status == PaymentStatus.SUCCEEDED
    assert Booking.objects.filter(payment=payment).count() == 1
    assert WebhookEvent.objects.get(stripe_event_id=succeeded[0]["event_id"]).status == WebhookEventStatus.PROCESSED

    # Stripe delivers again (at-least-once): still one booking, one stored event.
    stripe_emulator.resend(succeeded[0]["id"])
    assert stripe_emulator.wait_for_deliveries(timeout=20)
    assert Booking.objects.filter(payment=payment).count() == 1
    assert WebhookEvent.objects.filter(stripe_event_id=succeeded[0]["event_id"]).count() == 1


# PostgreSQL only: with SQLite's in-memory test database, pytest-django's live server shares one
# connection between its request threads, so a webhook arriving while the API request is still
# settling trips "cannot release savepoint" (flaky in CI). The app itself opens a connection per
# thread, on a file database under make run as on PostgreSQL in production.
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_emulator_delivers_real_signed_events_to_a_live_server(live_server, stripe_emulator, webhooks_to,
                                                                   student, gig):
    _live_server_test(live_server, stripe_emulator, webhooks_to, student, gig)
