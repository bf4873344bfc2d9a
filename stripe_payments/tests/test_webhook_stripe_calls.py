"""How many Stripe calls the webhook handlers make (issue 15). The event's signature is verified,
so its object says what Stripe said when the event was made: a handler whose rows already record
exactly that makes no Stripe call; otherwise it reads each object once (a fresh read is the truth:
events arrive late and out of order) and passes what it read down, never reading it twice. An
approved refund costs Stripe its create call and nothing more, its webhooks included.

Every handled event type has a scenario here (``SCENARIOS`` covers ``webhooks.HANDLERS``), each
counted against the emulator's request log."""

from __future__ import annotations

from collections import Counter
from typing import Callable

import pytest

from bookings.models import Booking, BookingStatus
from stripe_payments import gateway
from stripe_payments.models import (
    ConnectedAccount,
    Dispute,
    Payment,
    PaymentStatus,
    RefundRequest,
    RefundRequestStatus,
    SavedPaymentMethod,
    WebhookEvent,
    WebhookEventStatus,
)
from stripe_payments.services import refunds, webhooks

from .conftest import (
    ADD_URL,
    PAY_URL,
    REFUNDS_URL,
    THREE_DS,
    card,
    dashboard,
    deliver,
    onboard,
    only_event,
    stripe_calls,
)

pytestmark = [pytest.mark.django_db, pytest.mark.emulator]


def calls_of(client, emulator, event: dict) -> list[tuple[str, str]]:
    """Deliver ``event`` (processed) and return the Stripe calls its handler made."""
    emulator.clear_requests()
    assert deliver(client, event)["status"] == "processed"
    made = [(r["method"], r["path"]) for r in stripe_calls(emulator)]
    return made


def again(event: dict) -> dict:
    """Another event about the same object as it was then (Stripe sends several per change)."""
    return {**event, "id": f"{event['id']}_again"}


def assert_each_object_read_once(made: list[tuple[str, str]], expected: int) -> None:
    assert all(method == "GET" for method, _ in made), made
    assert max(Counter(made).values(), default=0) == min(1, expected), made
    assert len(made) == expected, made


# --- the scenarios: one per handled event type, each leaving the database behind the event ----------------
@pytest.fixture
def pay_3ds(client_for, student, gig):
    def pay() -> Payment:
        response = client_for(student).post(PAY_URL, {"gig_id": gig.pk, "card_details": card(THREE_DS)},
                                            format="json")
        assert response.status_code == 402, response.content
        return Payment.objects.get(pk=response.json()["error"]["payment_id"])

    return pay


def _pi_succeeded(ctx) -> dict:
    payment = ctx.pay_3ds()
    ctx.emulator.complete_3ds(payment.stripe_payment_intent_id)
    return only_event(ctx.emulator, "payment_intent.succeeded")


def _pi_failed(ctx) -> dict:
    payment = ctx.pay_3ds()
    ctx.emulator.complete_3ds(payment.stripe_payment_intent_id, succeed=False)
    return only_event(ctx.emulator, "payment_intent.payment_failed")


def _pi_canceled(ctx) -> dict:
    payment = ctx.pay_3ds()
    dashboard(ctx.emulator).v1.payment_intents.cancel(payment.stripe_payment_intent_id)
    return only_event(ctx.emulator, "payment_intent.canceled")


def _setup_succeeded(ctx) -> dict:
    response = ctx.client_for(ctx.student).post(ADD_URL, card(THREE_DS), format="json")
    assert response.status_code == 402, response.content
    ctx.emulator.complete_3ds(response.json()["error"]["setup_intent_id"])
    return only_event(ctx.emulator, "setup_intent.succeeded")


def _dashboard_refund(event_type: str) -> Callable:
    def make(ctx) -> dict:
        payment = ctx.paid()
        dashboard(ctx.emulator).v1.refunds.create(params={"payment_intent": payment.stripe_payment_intent_id,
                                                           "amount": 1500})
        return only_event(ctx.emulator, event_type)

    return make


def _refund_failed(ctx) -> dict:
    payment = ctx.paid()
    refund = refunds.admin_refund_create(admin=ctx.admin_user, payment=payment, amount_cents=2000, reason="")
    ctx.emulator.fail_refund(refund.stripe_refund_id)
    return only_event(ctx.emulator, "refund.updated")


def _dispute_opened(event_type: str) -> Callable:
    def make(ctx) -> dict:
        payment = ctx.paid()
        ctx.emulator.trigger_dispute(payment.stripe_charge_id)
        return only_event(ctx.emulator, event_type)

    return make


def _dispute_updated(ctx) -> dict:
    """The emulator sends no ``charge.dispute.updated``: Stripe's has the same shape as the others."""
    created = _dispute_opened("charge.dispute.created")(ctx)
    return {**created, "id": f"{created['id']}_updated", "type": "charge.dispute.updated"}


def _dispute_decided(event_type: str, outcome: str) -> Callable:
    def make(ctx) -> dict:
        payment = ctx.paid()
        dp = ctx.emulator.trigger_dispute(payment.stripe_charge_id)
        deliver(ctx.client, only_event(ctx.emulator, "charge.dispute.created"))
        ctx.emulator.close_dispute(dp["id"], outcome)
        return only_event(ctx.emulator, event_type)

    return make


def _account_updated(ctx) -> dict:
    account = onboard(ctx.emulator, ctx.teacher, complete=False)
    ctx.emulator.complete_onboarding(account.stripe_account_id)
    return ctx.emulator.events("account.updated")[-1]


# event type -> (a scenario whose event the database is behind, the reads its handler then makes)
SCENARIOS: dict[str, tuple[Callable, int]] = {
    "payment_intent.succeeded": (_pi_succeeded, 1),
    "payment_intent.payment_failed": (_pi_failed, 1),
    "payment_intent.canceled": (_pi_canceled, 1),
    "setup_intent.succeeded": (_setup_succeeded, 1),
    "charge.refunded": (_dashboard_refund("charge.refunded"), 1),
    "refund.created": (_dashboard_refund("refund.created"), 1),
    "refund.updated": (_refund_failed, 1),
    "charge.dispute.created": (_dispute_opened("charge.dispute.created"), 1),
    "charge.dispute.funds_withdrawn": (_dispute_opened("charge.dispute.funds_withdrawn"), 1),
    "charge.dispute.updated": (_dispute_updated, 1),
    "charge.dispute.closed": (_dispute_decided("charge.dispute.closed", "lost"), 1),
    "charge.dispute.funds_reinstated": (_dispute_decided("charge.dispute.funds_reinstated", "won"), 1),
    "account.updated": (_account_updated, 1),
}


class Ctx:
    def __init__(self, **fixtures):
        self.__dict__.update(fixtures)


@pytest.fixture
def ctx(stripe_emulator, client, client_for, student, teacher, admin_user, paid, pay_3ds):
    return Ctx(emulator=stripe_emulator, client=client, client_for=client_for, student=student, teacher=teacher,
               admin_user=admin_user, paid=paid, pay_3ds=pay_3ds)


def test_every_handled_event_type_has_a_scenario():
    assert set(SCENARIOS) == set(webhooks.HANDLERS)


@pytest.mark.parametrize("event_type", sorted(SCENARIOS))
def test_an_event_the_database_is_behind_reads_each_object_once(event_type, ctx):
    scenario, reads = SCENARIOS[event_type]
    event = scenario(ctx)

    made = calls_of(ctx.client, ctx.emulator, event)

    assert_each_object_read_once(made, reads)


@pytest.mark.parametrize("event_type", sorted(SCENARIOS))
def test_an_event_the_database_already_records_makes_no_stripe_call(event_type, ctx):
    scenario, _ = SCENARIOS[event_type]
    event = scenario(ctx)
    deliver(ctx.client, event)  # the database catches up (one read)

    assert calls_of(ctx.client, ctx.emulator, again(event)) == []
    assert WebhookEvent.objects.get(stripe_event_id=again(event)["id"]).status == WebhookEventStatus.PROCESSED


# --- the approved refund, end to end ----------------------------------------------------------------------
def test_an_approved_refund_costs_stripe_its_create_call_and_nothing_more(paid, client_for, student, admin_user,
                                                                          client, stripe_emulator):
    payment = paid()
    response = client_for(student).post(REFUNDS_URL, {"payment_id": payment.pk, "reason": "sick", "amount": "20.00"},
                                        format="json")
    assert response.status_code == 201, response.content
    seen = {e["id"] for e in stripe_emulator.events()}
    stripe_emulator.clear_requests()

    approved = client_for(admin_user).post(f"{REFUNDS_URL}{response.json()['id']}/approve/", {}, format="json")
    assert approved.status_code == 200, approved.content
    events = [e for e in stripe_emulator.events() if e["id"] not in seen]
    assert {e["type"] for e in events} >= {"refund.created", "charge.refunded"}
    for event in events:
        deliver(client, event)

    made = [(r["method"], r["path"]) for r in stripe_calls(stripe_emulator)]
    assert made == [("POST", "/v1/refunds")]
    payment.refresh_from_db()
    assert (payment.status, payment.refunded_cents) == (PaymentStatus.PARTIALLY_REFUNDED, 2000)
    [refund] = RefundRequest.objects.filter(payment=payment)
    assert (refund.status, refund.applied) == (RefundRequestStatus.SUCCEEDED, True)


def test_payment_intent_succeeded_after_the_api_settled_the_payment_reads_nothing(paid, client, stripe_emulator):
    payment = paid()

    assert calls_of(client, stripe_emulator, only_event(stripe_emulator, "payment_intent.succeeded")) == []

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert Booking.objects.get(payment=payment).status == BookingStatus.PENDING_CONFIRMATION


# --- what the event says is compared, never applied -----------------------------------------------------------
def test_a_refund_that_failed_since_the_database_recorded_it_is_read_once_and_taken_back(paid, admin_user, client,
                                                                                     stripe_emulator):
    """The database says the refund succeeded; the event says it failed since: one read, and the
    refund is failed as Stripe now says, the money taken back once."""
    payment = paid()
    refund = refunds.admin_refund_create(admin=admin_user, payment=payment, amount_cents=2000, reason="")
    stripe_emulator.fail_refund(refund.stripe_refund_id)
    event = only_event(stripe_emulator, "refund.updated")

    assert_each_object_read_once(calls_of(client, stripe_emulator, event), 1)
    assert calls_of(client, stripe_emulator, again(event)) == []

    refund.refresh_from_db()
    payment.refresh_from_db()
    assert (refund.status, refund.applied, payment.refunded_cents) == (RefundRequestStatus.FAILED, False, 0)


def test_a_late_event_whose_object_changed_since_is_applied_as_stripe_now_says(paid, client, stripe_emulator):
    """An old dispute event (``needs_response``) after the database recorded the loss: read once
    (it does not match), and Stripe's current state stays."""
    payment = paid()
    dp = stripe_emulator.trigger_dispute(payment.stripe_charge_id)
    created = only_event(stripe_emulator, "charge.dispute.created")
    stripe_emulator.close_dispute(dp["id"], "lost")
    deliver(client, only_event(stripe_emulator, "charge.dispute.closed"))

    assert_each_object_read_once(calls_of(client, stripe_emulator, created), 1)

    assert Dispute.objects.get(stripe_dispute_id=dp["id"]).status == "lost"


def test_a_refund_event_before_the_payment_settled_reads_the_intent_and_the_refunds_once_each(
        client, pay_3ds, stripe_emulator):
    payment = pay_3ds()
    stripe_emulator.complete_3ds(payment.stripe_payment_intent_id)
    dashboard(stripe_emulator).v1.refunds.create(params={"payment_intent": payment.stripe_payment_intent_id})

    made = calls_of(client, stripe_emulator, only_event(stripe_emulator, "refund.created"))

    assert Counter(path.split("/")[2] for _, path in made) == {"payment_intents": 1, "refunds": 1}
    assert_each_object_read_once(made, 2)
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.REFUNDED
    assert calls_of(client, stripe_emulator, only_event(stripe_emulator, "charge.refunded")) == []
    assert calls_of(client, stripe_emulator, only_event(stripe_emulator, "payment_intent.succeeded")) == []


def test_an_event_stored_without_its_object_state_is_read_once(paid, stripe_emulator):
    """Events stored before ``object_state`` existed (or an object without the fields): one read."""
    payment = paid()
    event = only_event(stripe_emulator, "payment_intent.succeeded")
    stored, _ = webhooks.webhook_event_record(info=gateway.EventInfo(
        id=event["id"], type=event["type"], object_id=payment.stripe_payment_intent_id,
        object_type="payment_intent", livemode=False, created=event["created"],
        payment_intent_id=payment.stripe_payment_intent_id))
    stripe_emulator.clear_requests()

    webhooks.webhook_event_process(event_id=stored.pk)

    made = [(r["method"], r["path"]) for r in stripe_calls(stripe_emulator)]
    assert made == [("GET", f"/v1/payment_intents/{payment.stripe_payment_intent_id}")]


def test_a_connected_account_event_the_row_records_only_moves_synced_at(stripe_emulator, client, teacher):
    account = onboard(stripe_emulator, teacher, complete=False)
    stripe_emulator.complete_onboarding(account.stripe_account_id)
    event = stripe_emulator.events("account.updated")[-1]
    deliver(client, event)
    later = {**again(event), "created": event["created"] + 60}

    assert calls_of(client, stripe_emulator, later) == []

    account = ConnectedAccount.objects.get(pk=account.pk)
    assert (account.transfers_active, account.synced_at) == (True, event["created"] + 60)


def test_a_card_set_up_the_database_already_saved_is_not_read_again(ctx):
    event = _setup_succeeded(ctx)
    deliver(ctx.client, event)
    assert SavedPaymentMethod.objects.filter(user=ctx.student).count() == 1

    assert calls_of(ctx.client, ctx.emulator, again(event)) == []


def test_the_stored_object_state_keeps_statuses_amounts_and_ids_only(settings):
    import json

    from .conftest import WEBHOOK_SECRET, sign

    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    intent = {"id": "pi_1", "object": "payment_intent", "status": "succeeded", "amount": 5000,
              "latest_charge": "ch_1", "client_secret": "pi_1_secret_x", "metadata": {"payment_id": "7"},
              "payment_method": {"id": "pm_1", "object": "payment_method", "card": {"last4": "4242"}}}
    payload = json.dumps({"id": "evt_1", "object": "event", "type": "payment_intent.succeeded", "created": 1,
                          "livemode": False, "data": {"object": intent}}).encode()

    info = gateway.webhook_event_verify(payload, sign(payload))

    assert info.object_state == {"status": "succeeded", "amount": 5000, "latest_charge": "ch_1", "failed": False}
