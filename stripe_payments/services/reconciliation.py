"""Settle what the API could not: payments left processing or requires_action, refunds Stripe still
held, from Stripe's own state. Safe to run any number of times (every step is idempotent)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.utils import timezone

from .. import gateway, keys
from ..gateway import CardFailure
from ..models import UNSETTLED_STATUSES, Payment, PaymentStatus, RefundRequest, RefundRequestStatus
from . import lifecycle, refunds

logger = logging.getLogger(__name__)


@dataclass
class ReconcileReport:
    changes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        self.changes.append(text)


def _fail(payment: Payment, *, code: str, message: str) -> None:
    lifecycle.payment_fail(payment_id=payment.pk, failure=CardFailure(code=code, decline_code=None, message=message),
                           payment_intent_id=payment.stripe_payment_intent_id)


def reconcile_payment(payment: Payment, report: ReconcileReport) -> None:
    before = payment.status
    if payment.stripe_payment_intent_id:
        intent = gateway.payment_intent_retrieve(payment.stripe_payment_intent_id)
    else:
        intent = gateway.payment_intent_find_for_payment(payment.pk, created_at=int(payment.created_at.timestamp()))
        if intent is None:
            _fail(payment, code=lifecycle.NEVER_SENT, message="The payment never reached Stripe.")
            report.note(f"payment {payment.pk}: {before} -> failed (no PaymentIntent at Stripe)")
            return
    payment = lifecycle.payment_settle_from_intent(payment_id=payment.pk, intent=intent)
    if payment.status in UNSETTLED_STATUSES and intent.status in (
        "requires_payment_method", "requires_confirmation", "requires_action"
    ):
        # Abandoned (3-D Secure never finished): cancel at Stripe so it can never be charged later.
        # It is marked failed ("the rest failed"): settling from the canceled intent first would
        # leave it ``canceled``, which ``payment_fail`` no longer moves.
        canceled = gateway.payment_intent_cancel(intent.id, idempotency_key=keys.payment_key(payment, "cancel"))
        if canceled.status == "canceled":
            _fail(payment, code="abandoned", message="The payment was not completed in time.")
            payment.refresh_from_db()
        else:  # it moved on at Stripe meanwhile
            payment = lifecycle.payment_settle_from_intent(payment_id=payment.pk, intent=canceled)
    if payment.status != before:
        booking = " with its booking" if payment.status == PaymentStatus.SUCCEEDED else ""
        report.note(f"payment {payment.pk}: {before} -> {payment.status}{booking}")


def reconcile(*, older_than: timedelta) -> ReconcileReport:
    report = ReconcileReport()
    cutoff = timezone.now() - older_than
    stale = Payment.objects.filter(status__in=UNSETTLED_STATUSES, updated_at__lt=cutoff).order_by("id")
    for payment in stale:
        try:
            reconcile_payment(payment, report)
        except gateway.GatewayError as exc:
            report.errors.append(f"payment {payment.pk}: {exc.code}: {exc.message}")
    # Refunds Stripe accepted but had not finished, and refunds whose answer was lost (found by
    # their refund_request_id metadata): every request still pending after the cutoff is checked
    # against Stripe's list; a booking's refund that Stripe never received is issued.
    held = RefundRequest.objects.filter(
        status=RefundRequestStatus.PENDING, updated_at__lt=cutoff
    ).order_by("payment_id").values_list("payment_id", flat=True).distinct()
    for payment_id in held:
        try:
            before = list(RefundRequest.objects.filter(payment_id=payment_id).values_list("pk", "status"))
            refunds.payment_sync_refunds(payment_id=payment_id)
            # A decline, cancel or expiry whose refund Stripe never received is owed without anyone
            # deciding: issued under its own key (Stripe refunds once).
            for refund_id in refunds.owed_booking_refund_ids(payment_id=payment_id):
                refunds.refund_pending_issue(refund_request_id=refund_id)
            after = list(RefundRequest.objects.filter(payment_id=payment_id).values_list("pk", "status"))
            if before != after:
                report.note(f"payment {payment_id}: refunds {before} -> {after}")
        except gateway.GatewayError as exc:
            report.errors.append(f"refunds of payment {payment_id}: {exc.code}: {exc.message}")
    return report
