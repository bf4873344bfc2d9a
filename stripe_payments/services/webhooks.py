"""Stripe webhooks: verified, stored once under the event id, processed once, replayable.

Handlers are dispatched through ``HANDLERS``. The event's copy of its object is never applied: its
statuses, amounts and ids (``WebhookEvent.object_state``, from the verified event) are only compared
with the database. When the rows already record exactly that, the handler does nothing and makes
no Stripe call; otherwise it re-reads each object it needs from Stripe once (through the gateway)
and applies what it read, so events that arrive late, twice or out of order leave the same final
state at one read per object at most.
"""

from __future__ import annotations

import logging
from datetime import datetime
from datetime import timezone as dt_timezone
from typing import Callable

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from linguaflex import metrics

from .. import gateway
from ..models import CHARGED_STATUSES, Payment, PaymentStatus, SavedPaymentMethod, WebhookEvent, WebhookEventStatus
from . import cards, connect, disputes, payments, refunds

logger = logging.getLogger(__name__)


def _intent_recorded(payment: Payment | None, state: dict) -> bool:
    """The payment already records what the event's PaymentIntent says: succeeded with this very
    charge, failed, or canceled, for the same amount."""
    if payment is None or state.get("amount") != payment.amount_cents:
        return False
    status = state.get("status")
    if status == "succeeded":
        return payment.status in CHARGED_STATUSES and payment.stripe_charge_id == (state.get("latest_charge") or "")
    if status == "requires_payment_method" and state.get("failed"):
        return payment.status == PaymentStatus.FAILED
    if status == "canceled":
        return payment.status == PaymentStatus.CANCELED
    return False


def handle_payment_intent(event: WebhookEvent) -> None:
    """succeeded / payment_failed / canceled: settle from Stripe's current state (one read), unless
    the payment already records what the event says (no read: e.g. the API settled it).

    Completes 3-D Secure and the client-side flow: the booking is created once."""
    if not event.object_id:
        return
    payment = Payment.objects.filter(stripe_payment_intent_id=event.object_id).first()
    if _intent_recorded(payment, event.object_state):
        return
    payments.payment_settle_by_intent_id(payment_intent_id=event.object_id)


def _setup_recorded(state: dict) -> bool:
    """The card the event's SetupIntent set up is saved already, for the customer it names."""
    pm_id, customer_id = state.get("payment_method"), state.get("customer")
    if state.get("status") != "succeeded" or not pm_id or not customer_id:
        return False
    return SavedPaymentMethod.objects.filter(stripe_payment_method_id=pm_id,
                                             user__stripe_customer__stripe_customer_id=customer_id).exists()


def handle_setup_intent_succeeded(event: WebhookEvent) -> None:
    """Save the card once (one read of the SetupIntent), unless it is saved already (no read)."""
    if _setup_recorded(event.object_state):
        return
    cards.setup_intent_settle(setup_intent_id=event.object_id)


def handle_refund_event(event: WebhookEvent) -> None:
    """charge.refunded, refund.created, refund.updated: nothing when our rows already record the
    event's refund (or the charge's refunded amount); otherwise settle the payment if it is not
    charged yet (one read of the intent) and sync its refunds (one read of Stripe's list)."""
    state = event.object_state
    if event.type == "charge.refunded":
        if refunds.charge_refunds_recorded(charge_id=event.object_id, state=state):
            return
    elif refunds.refund_recorded(refund_id=event.object_id, state=state):
        return
    pi_id = event.payment_intent_id
    if not pi_id:
        logger.info("refund event %s names no payment intent; nothing to sync", event.stripe_event_id)
        return
    refunds.payment_sync_refunds_for_intent(payment_intent_id=pi_id)


def handle_dispute_event(event: WebhookEvent) -> None:
    """charge.dispute.*: nothing when the dispute is recorded as the event says; otherwise re-read
    the dispute once: the payment and booking become ``disputed``, the dispute is recorded and the
    split moves as its status says (services.disputes)."""
    if not event.object_id or disputes.dispute_recorded(dispute_id=event.object_id, state=event.object_state):
        return
    disputes.dispute_sync(dispute_id=event.object_id)


def handle_account_updated(event: WebhookEvent) -> None:
    """A connected account changed (onboarding finished, capabilities lost): re-read it from
    Stripe, unless its row already says what the event does. An account that is not a teacher's
    here is ignored."""
    created = int(event.stripe_created.timestamp()) if event.stripe_created else 0
    connect.account_event_apply(account_id=event.object_id, state=event.object_state, event_created=created)


HANDLERS: dict[str, Callable[[WebhookEvent], None]] = {
    "payment_intent.succeeded": handle_payment_intent,
    "payment_intent.payment_failed": handle_payment_intent,
    "payment_intent.canceled": handle_payment_intent,
    "setup_intent.succeeded": handle_setup_intent_succeeded,
    "charge.refunded": handle_refund_event,
    "refund.created": handle_refund_event,
    "refund.updated": handle_refund_event,
    "charge.dispute.created": handle_dispute_event,
    "charge.dispute.updated": handle_dispute_event,
    "charge.dispute.closed": handle_dispute_event,
    "charge.dispute.funds_withdrawn": handle_dispute_event,
    "charge.dispute.funds_reinstated": handle_dispute_event,
    "account.updated": handle_account_updated,
}


def webhook_event_record(*, info: gateway.EventInfo) -> tuple[WebhookEvent, bool]:
    """Store a verified event once (UNIQUE event id). Returns (event, created)."""
    created_at = datetime.fromtimestamp(info.created, tz=dt_timezone.utc) if info.created else None
    try:
        with transaction.atomic():
            event = WebhookEvent.objects.create(
                stripe_event_id=info.id, type=info.type[:100], object_id=info.object_id[:255],
                payment_intent_id=(info.payment_intent_id or "")[:255], livemode=info.livemode,
                stripe_created=created_at, object_state=info.object_state,
            )
        return event, True
    except IntegrityError:
        return WebhookEvent.objects.get(stripe_event_id=info.id), False


def _lag_seconds(event: WebhookEvent) -> float | None:
    """Stripe's ``created`` to applied."""
    if event.stripe_created is None or event.processed_at is None:
        return None
    return max(0.0, (event.processed_at - event.stripe_created).total_seconds())


def webhook_event_process(*, event_id: int) -> WebhookEvent:
    """Run the event's handler once, under the event's row lock (the task that applies it; a
    second task, or a concurrent one, finds it processed and does nothing). A failure is recorded
    (status ``failed``, the error, the attempt count) in its own transaction and re-raised."""
    event_type = ""
    try:
        with transaction.atomic():
            event = WebhookEvent.objects.select_for_update().get(pk=event_id)
            if event.status in (WebhookEventStatus.PROCESSED, WebhookEventStatus.IGNORED):
                return event
            event_type = event.type
            event.attempts += 1
            handler = HANDLERS.get(event.type)
            if handler is None:
                event.status = WebhookEventStatus.IGNORED
            else:
                handler(event)
                event.status = WebhookEventStatus.PROCESSED
            event.error = ""
            event.processed_at = timezone.now()
            event.save(update_fields=["attempts", "status", "error", "processed_at"])
        metrics.webhook_applied(event.type, _lag_seconds(event), event.status)
        return event
    except Exception as exc:  # recorded for replay, then re-raised: the task retries, the admin can replay
        WebhookEvent.objects.filter(pk=event_id).update(
            status=WebhookEventStatus.FAILED, attempts=F("attempts") + 1,
            error=f"{type(exc).__name__}: {exc}"[:2000],
        )
        if event_type:
            metrics.webhook_applied(event_type, None, WebhookEventStatus.FAILED)
        raise


def webhook_event_enqueue(*, event_id: int) -> None:
    """Hand the event to the task that applies it. With a broker the request ends here (no Stripe
    call, no payment lock); if the broker is down the event stays ``received`` and the beat job
    sends it again. Without a broker the task runs in-process, and its failure reaches the caller."""
    from ..tasks import process_webhook_event

    if settings.CELERY_TASK_ALWAYS_EAGER:
        process_webhook_event.delay(event_id)
        return
    try:
        process_webhook_event.delay(event_id)
    except Exception:  # stored: requeue_webhook_events sends it once the broker is back
        logger.exception("webhook event %s stored but not queued; the beat job will send it", event_id)


def webhook_receive(*, payload: bytes, signature: str | None) -> WebhookEvent:
    """Verify, store once, and have it applied (once) by a task. A delivery of an event already
    applied changes nothing."""
    info = gateway.webhook_event_verify(payload, signature)
    event, _ = webhook_event_record(info=info)
    if event.status in (WebhookEventStatus.PROCESSED, WebhookEventStatus.IGNORED):
        return event
    webhook_event_enqueue(event_id=event.pk)
    if settings.CELERY_TASK_ALWAYS_EAGER:
        event.refresh_from_db(fields=["status"])  # applied in-process: answer how it ended
    return event


def webhook_events_replay(*, event_ids: list[int] | None = None) -> list[tuple[WebhookEvent, str]]:
    """Process again the failed events (or the given ones). Returns (event, outcome) pairs."""
    qs = WebhookEvent.objects.order_by("received_at", "id")
    qs = qs.filter(pk__in=event_ids) if event_ids else qs.filter(status=WebhookEventStatus.FAILED)
    outcomes = []
    for event in qs:
        if event.status in (WebhookEventStatus.PROCESSED, WebhookEventStatus.IGNORED):
            outcomes.append((event, f"already {event.status}"))
            continue
        WebhookEvent.objects.filter(pk=event.pk).update(status=WebhookEventStatus.RECEIVED)
        try:
            event = webhook_event_process(event_id=event.pk)
            outcomes.append((event, event.status))
        except Exception as exc:  # reported per event; the command goes on with the others
            event.refresh_from_db()
            outcomes.append((event, f"failed: {type(exc).__name__}"))
    return outcomes
