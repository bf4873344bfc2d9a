"""Disputes (chargebacks), kept in step with Stripe, and what they do to the split.

The platform is liable on destination charges (Stripe debits the platform's balance), so the
platform takes the teacher's part back itself:
- when the funds are withdrawn (``needs_response``, ``under_review``, or first seen closed), the
  disputed amount is split as a refund of it would be (the contract's cumulative split, after the
  refunds before it) and leaves the ledger (``dispute:<id>``): the fee part from the platform's
  fees, the share part from what is owed to the teacher or, once paid out, from the teacher's
  account (the next payout run reverses it at Stripe);
- a won dispute gives both back (``dispute-won:<id>``): the share is owed again and the payout
  run pays it (a new transfer, where it had been paid out and reversed); a lost one leaves them.
Inquiries (``warning_*``) move no money. A webhook whose dispute the database already records as
the event says makes no Stripe call (``dispute_recorded``); any other re-reads the dispute from
Stripe once, so replayed and reordered ``charge.dispute.*`` events converge on Stripe's state.
"""

from __future__ import annotations

import logging
from datetime import datetime
from datetime import timezone as dt_timezone

from django.db import IntegrityError, transaction

from .. import gateway
from ..models import DISPUTE_FUNDS_WITHDRAWN, Dispute, DisputeStatus, LedgerAccount, LedgerKind, Payment
from ..money import split_refunded
from . import ledger, lifecycle, payments

logger = logging.getLogger(__name__)

A, K = LedgerAccount, LedgerKind
# An open inquiry (no funds withdrawn yet) marks the payment disputed for admins; a closed one does not.
_INQUIRY_OPEN = (DisputeStatus.WARNING_NEEDS_RESPONSE, DisputeStatus.WARNING_UNDER_REVIEW)


def _payment_of(result: gateway.DisputeResult) -> Payment | None:
    if result.payment_intent_id:
        payment = Payment.objects.filter(stripe_payment_intent_id=result.payment_intent_id).first()
        if payment is not None:
            return payment
    if result.charge_id:
        return Payment.objects.filter(stripe_charge_id=result.charge_id).first()
    return None


def _due_at(evidence_due_by: int | None) -> datetime | None:
    return datetime.fromtimestamp(evidence_due_by, tz=dt_timezone.utc) if evidence_due_by else None


def dispute_recorded(*, dispute_id: str, state: dict) -> bool:
    """Our dispute row already records ``state`` (a verified event's copy of the dispute: status,
    amount, reason, deadline) on a charged payment: ``dispute_apply`` of it would change nothing."""
    if not dispute_id or "status" not in state or "amount" not in state:
        return False
    dispute = Dispute.objects.select_related("payment").filter(stripe_dispute_id=dispute_id).first()
    return (dispute is not None and dispute.payment.charged and dispute.status == state["status"]
            and dispute.amount_cents == state["amount"] and dispute.reason == (state.get("reason") or "")[:64]
            and dispute.evidence_due_by == _due_at(state.get("evidence_due_by")))


def dispute_sync(*, dispute_id: str) -> Dispute | None:
    """Re-read a dispute from Stripe (once) and apply it: the payment settled if it was not yet
    (one read of its intent), marked disputed, the dispute recorded, the ledger moved as its
    status says. None for a dispute not of ours."""
    try:
        result = gateway.dispute_retrieve(dispute_id)
    except gateway.ProviderInvalidRequest as exc:
        if exc.stripe_code == "resource_missing":  # not a dispute of this account: nothing to do
            logger.info("dispute %s is unknown to Stripe; ignored", dispute_id)
            return None
        raise
    payment = _payment_of(result)
    if payment is None:
        logger.info("dispute %s names no payment of ours", dispute_id)
        return None
    # Settle first: a dispute handled before payment_intent.succeeded still leaves the charged
    # payment with its booking, whatever the order of events. A charged payment has nothing to settle.
    if not payment.charged:
        payments.payment_settle(payment=payment)
    return dispute_apply(payment_id=payment.pk, result=result)


def dispute_apply(*, payment_id: int, result: gateway.DisputeResult) -> Dispute:
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        dispute = Dispute.objects.select_for_update().filter(stripe_dispute_id=result.id).first()
        if dispute is None:
            try:
                with transaction.atomic():
                    dispute = Dispute.objects.create(payment=payment, stripe_dispute_id=result.id,
                                                     status=result.status, amount_cents=result.amount,
                                                     reason=result.reason[:64], evidence_due_by=_due_at(result.evidence_due_by))
            except IntegrityError:
                dispute = Dispute.objects.select_for_update().get(stripe_dispute_id=result.id)
        dispute.status = result.status
        dispute.amount_cents = result.amount
        dispute.reason = result.reason[:64]
        dispute.evidence_due_by = _due_at(result.evidence_due_by)
        if result.status in DISPUTE_FUNDS_WITHDRAWN and payment.charged:
            _withdrawn(payment, dispute)
            if result.status == DisputeStatus.WON:
                _won(payment, dispute)
        dispute.save()
        if result.status in DISPUTE_FUNDS_WITHDRAWN or result.status in _INQUIRY_OPEN:
            lifecycle.payment_mark_disputed(payment_id=payment.pk)
    return dispute


def _withdrawn(payment: Payment, dispute: Dispute) -> None:
    """The disputed amount left the platform: its fee and share parts leave the ledger, once."""
    if ledger.movement_exists(f"dispute:{dispute.pk}"):
        return
    taken = ledger.disputed_for_payment(payment.pk)  # earlier disputes of the same charge
    before = min(payment.amount_cents, payment.refunded_cents + taken)
    after = min(payment.amount_cents, before + dispute.amount_cents)
    split_before = split_refunded(amount_cents=payment.amount_cents, admin_fee_cents=payment.admin_fee_cents,
                                  refunded_cents=before)
    split_after = split_refunded(amount_cents=payment.amount_cents, admin_fee_cents=payment.admin_fee_cents,
                                 refunded_cents=after)
    dispute.fee_cents = split_after.admin_fee_cents - split_before.admin_fee_cents
    dispute.share_cents = split_after.teacher_amount_cents - split_before.teacher_amount_cents
    dispute.share_was_paid_out = ledger.share_paid_out(payment)
    teacher = A.TEACHER_PAID if dispute.share_was_paid_out else A.TEACHER_OWED
    ledger.post_movement(f"dispute:{dispute.pk}", payment, [
        (A.STUDENT, K.DISPUTE, dispute.fee_cents + dispute.share_cents),
        (A.PLATFORM_FEES, K.DISPUTE, -dispute.fee_cents),
        (teacher, K.DISPUTE, -dispute.share_cents),
    ], dispute.stripe_dispute_id)


def _won(payment: Payment, dispute: Dispute) -> None:
    """The funds came back: the fee to the platform, the share owed to the teacher again."""
    ledger.post_movement(f"dispute-won:{dispute.pk}", payment, [
        (A.STUDENT, K.DISPUTE_WON, -(dispute.fee_cents + dispute.share_cents)),
        (A.PLATFORM_FEES, K.DISPUTE_WON, dispute.fee_cents),
        (A.TEACHER_OWED, K.DISPUTE_WON, dispute.share_cents),
    ], dispute.stripe_dispute_id)


def disputes_sync_for_payment(*, payment_id: int) -> Payment:
    """Stripe says the payment's charge may be disputed and no webhook told us (the consistency
    check): settle the payment, then apply every dispute Stripe lists for its charge."""
    payment = payments.payment_settle(payment=Payment.objects.get(pk=payment_id))
    charge_id = payment.stripe_charge_id
    if charge_id:
        for result in gateway.disputes_for_charge(charge_id):
            dispute_apply(payment_id=payment.pk, result=result)
    payment.refresh_from_db()
    return payment
