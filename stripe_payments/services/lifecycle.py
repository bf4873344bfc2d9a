"""The payment lifecycle: the only code that assigns ``Payment.status``.

Each move is one named service that locks the payment row, checks ``PAYMENT_TRANSITIONS``
(models.py) and raises ``InvalidState`` on any other move:
- ``payment_settle_from_intent``: Stripe's PaymentIntent says where the payment is (succeeded: the
  booking is created in the same transaction); ``payment_settle_new``: the same for a payment the
  caller has just sent, by compare-and-set where the row is as it was read;
- ``payment_fail``: declined, refused, or never sent;
- ``payment_reopen_never_sent``: a retry of a payment reconciliation closed as never sent;
- ``payment_apply_refund``: a refund counted into (or, reversed by Stripe, out of) the payment,
  its split reversed cumulatively; a full refund closes the booking;
- ``payment_mark_disputed``: the card holder disputed the charge.
Webhook handlers, reconciliation and the consistency check call these, never a private helper.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext

from django.db import IntegrityError, transaction
from django.utils import timezone

from bookings import notifications as booking_notifications
from bookings.models import Booking, BookingStatus
from bookings.services import booking_create_for_payment, booking_transition
from linguaflex import mail, metrics
from linguaflex.errors import InvalidState

from .. import notifications
from ..decline_messages import customer_message
from ..gateway import CardFailure, IntentResult
from ..models import PAYMENT_TRANSITIONS, Payment, PaymentStatus, RefundKind, RefundRequest
from ..money import split_refunded
from . import cards, ledger, payouts

logger = logging.getLogger(__name__)

NEVER_SENT = "not_charged"  # the failure code of a payment Stripe never received
# The moves linguaflex_payments_total counts (by outcome and decline code).
_COUNTED_OUTCOMES = frozenset({PaymentStatus.SUCCEEDED, PaymentStatus.FAILED, PaymentStatus.REQUIRES_ACTION,
                               PaymentStatus.CANCELED})

# Stripe's PaymentIntent status -> ours, for an unsettled payment.
_INTENT_STATUS = {
    "succeeded": PaymentStatus.SUCCEEDED,
    "requires_action": PaymentStatus.REQUIRES_ACTION,
    "processing": PaymentStatus.PROCESSING,
    "canceled": PaymentStatus.CANCELED,
}
# A booking a full refund closes; and where it goes, by the refund that closed it.
OPEN_BOOKING_STATUSES = (BookingStatus.PENDING_CONFIRMATION, BookingStatus.CONFIRMED, BookingStatus.COMPLETED)
BOOKING_CLOSED_BY = {
    RefundKind.DECLINE: BookingStatus.DECLINED,
    RefundKind.CANCEL: BookingStatus.CANCELLED,
    RefundKind.EXPIRY: BookingStatus.DECLINED,
}


def _move(payment: Payment, to: str) -> None:
    """Set the locked payment's status to ``to``, if the table allows it (staying put always is)."""
    if to != payment.status and to not in PAYMENT_TRANSITIONS[payment.status]:
        raise InvalidState(f"A {payment.status} payment cannot become {to}.", extra={"status": payment.status})
    if to != payment.status and to in _COUNTED_OUTCOMES:
        # Counted and logged once the move has committed, with the decline code the move records:
        # one line per outcome, under the request (or task) id that caused it.
        transaction.on_commit(lambda: _outcome_recorded(payment, to))
    payment.status = to


def _outcome_recorded(payment: Payment, outcome: str) -> None:
    metrics.payment_outcome(outcome, payment.decline_code or None)
    logger.info("payment %s %s (%s%s)", payment.pk, outcome, payment.stripe_payment_intent_id or "no intent",
                f", decline {payment.decline_code}" if payment.decline_code else "")


def _lock(payment_id: int) -> Payment:
    return Payment.objects.select_for_update().get(pk=payment_id)


def _record_failure(payment: Payment, failure: CardFailure) -> list[str]:
    """The failure on the locked payment: Stripe's codes, the message for the student, and Stripe's
    own text (ids already masked by the gateway) for admins and the log, never for a response."""
    payment.failure_code = failure.code[:64]
    payment.decline_code = (failure.decline_code or "")[:64]
    payment.failure_message = customer_message(failure.code, failure.decline_code)[:500]
    payment.provider_failure_message = failure.message[:500]
    logger.info("payment %s failed: code=%s decline_code=%s provider_message=%r",
                payment.pk, payment.failure_code, payment.decline_code, payment.provider_failure_message)
    return ["failure_code", "decline_code", "failure_message", "provider_failure_message"]


def _clear_failure(payment: Payment) -> list[str]:
    payment.failure_code = payment.decline_code = payment.failure_message = payment.provider_failure_message = ""
    return ["failure_code", "decline_code", "failure_message", "provider_failure_message"]


def payment_fail(*, payment_id: int, failure: CardFailure, payment_intent_id: str | None = None) -> Payment:
    """An unsettled payment failed (declined, refused by Stripe, abandoned, never sent). A payment
    that has settled meanwhile is left as it is."""
    with transaction.atomic():
        payment = _lock(payment_id)
        if payment.status not in (PaymentStatus.PROCESSING, PaymentStatus.REQUIRES_ACTION):
            return payment
        _move(payment, PaymentStatus.FAILED)
        fields = ["status", "updated_at", *_record_failure(payment, failure)]
        if payment_intent_id and not payment.stripe_payment_intent_id:
            payment.stripe_payment_intent_id = payment_intent_id
            fields.append("stripe_payment_intent_id")
        payment.save(update_fields=fields)
    return payment


def payment_reopen_never_sent(*, payment: Payment) -> Payment:
    """A retry of the request whose payment reconciliation closed as never sent to Stripe: that
    payment is tried again, under its own Stripe key (so if Stripe did get it after all, the same
    PaymentIntent comes back), instead of answering a failure the client never caused."""
    if payment.status != PaymentStatus.FAILED or payment.failure_code != NEVER_SENT:
        return payment
    with transaction.atomic():
        payment = _lock(payment.pk)
        if payment.status == PaymentStatus.FAILED and payment.failure_code == NEVER_SENT:
            _move(payment, PaymentStatus.PROCESSING)
            payment.save(update_fields=["status", "updated_at", *_clear_failure(payment)])
    return payment


def _take_intent_fields(payment: Payment, intent: IntentResult) -> set[str]:
    """The intent's id and card on the payment (in memory: the caller writes the fields returned)."""
    fields = set()
    if not payment.stripe_payment_intent_id:
        payment.stripe_payment_intent_id = intent.id
        fields.add("stripe_payment_intent_id")
    pm = intent.payment_method
    if pm is not None:
        payment.stripe_payment_method_id = pm.id
        fields.add("stripe_payment_method_id")
        if pm.card is not None:
            payment.card_brand, payment.card_last4 = pm.card.brand, pm.card.last4
            fields.update({"card_brand", "card_last4"})
    return fields


def _record_card_owner(payment: Payment, intent: IntentResult, *, saved_card_id: str) -> None:
    """The paying card's owner recorded, after the payment's row is locked (one lock order for every
    settle). A saved card (``saved_card_id``, the payment's card before the intent) is the
    student's already: nothing to write."""
    pm = intent.payment_method
    if pm is not None and not (payment.payment_method_saved and pm.id == saved_card_id):
        cards.payment_method_owner_record(user_id=payment.student_id, payment_method_id=pm.id)


def _status_for(intent: IntentResult, current: str) -> str:
    if intent.status == "requires_payment_method" and intent.last_error is not None:
        return PaymentStatus.FAILED
    return _INTENT_STATUS.get(intent.status, current)


def _on_succeeded(payment: Payment, intent: IntentResult, *, fresh: bool = False) -> None:
    """The locked, succeeded payment's ledger movements and booking (once), its notices, and its
    card if asked to keep it. ``fresh``: the payment moved into succeeded in this transaction by
    ``payment_settle_new``'s compare-and-set, so none of these rows exist yet: each is one INSERT,
    without looking first (a conflict raises and that service settles the careful way)."""
    ledger.post_charge(payment=payment, fresh=fresh)
    payouts.record_destination_share(payment=payment, fresh=fresh)
    booking, created = booking_create_for_payment(payment=payment, fresh=fresh)
    payment.booking = booking  # cached on the instance: the answer's booking_id needs no query
    if created:
        with mail.recorded_together() if fresh else nullcontext():
            notifications.payment_receipt(payment_id=payment.pk)
            booking_notifications.booking_created(booking_id=booking.pk)
    if payment.payment_method_saved and not payment.save_card:
        return  # paid with one of the student's saved cards: nothing to keep, nothing to look up
    saved = cards.card_keep_after_payment(payment=payment, pm=intent.payment_method)
    if saved and not payment.payment_method_saved:
        payment.payment_method_saved = True
        payment.save(update_fields=["payment_method_saved"])


def payment_settle_from_intent(*, payment_id: int, intent: IntentResult) -> Payment:
    """Bring an unsettled payment in line with its PaymentIntent. Idempotent; never moves a
    settled payment backwards. A success writes the payment and its booking in one transaction."""
    with transaction.atomic():
        payment = _lock(payment_id)
        if payment.stripe_payment_intent_id and payment.stripe_payment_intent_id != intent.id:
            raise InvalidState("This PaymentIntent belongs to another payment.")
        if payment.status not in (PaymentStatus.PROCESSING, PaymentStatus.REQUIRES_ACTION, PaymentStatus.FAILED):
            return payment
        if payment.status == PaymentStatus.FAILED and intent.status != "succeeded":
            return payment
        saved_card_id = payment.stripe_payment_method_id
        fields = {"updated_at", "status", *_take_intent_fields(payment, intent)}
        _record_card_owner(payment, intent, saved_card_id=saved_card_id)
        new_status = _status_for(intent, payment.status)
        if new_status == PaymentStatus.FAILED:
            fields.update(_record_failure(payment, intent.last_error))
        elif new_status == PaymentStatus.SUCCEEDED:
            fields.update(_clear_failure(payment))
            payment.stripe_charge_id = intent.latest_charge_id or ""
            fields.add("stripe_charge_id")
        _move(payment, new_status)
        payment.save(update_fields=sorted(fields))
        if new_status == PaymentStatus.SUCCEEDED:
            _on_succeeded(payment, intent)
    return payment


class _RowMoved(Exception):
    """The payment's row is no longer as the caller read it (a webhook or another twin settled it)."""


def payment_settle_new(*, payment: Payment, intent: IntentResult) -> Payment:
    """Settle a payment the caller has just sent to Stripe, from the intent Stripe answered.

    ``payment`` is the row as the caller read it. The common case (a succeeded intent for a payment
    still processing, with no intent recorded) is a compare-and-set: one UPDATE ... WHERE the row is
    still processing with no intent, which takes the row's lock as the lock of
    ``payment_settle_from_intent`` would, then the ledger, booking and e-mail rows as single INSERTs
    in the same transaction (``_on_succeeded(fresh=True)``). If the row has moved meanwhile, or a row
    that must be new already exists, that transaction rolls back and the payment settles the careful
    way (``payment_settle_from_intent``: lock, re-read, look before each write). Same outcome either
    way; the fast way writes in 5 statements what the careful one needs 10 or more for."""
    if (intent.status != "succeeded" or payment.status != PaymentStatus.PROCESSING
            or payment.stripe_payment_intent_id):
        return payment_settle_from_intent(payment_id=payment.pk, intent=intent)
    saved_card_id = payment.stripe_payment_method_id
    try:
        with transaction.atomic():
            fields = {"updated_at", "status", "stripe_charge_id", *_take_intent_fields(payment, intent),
                      *_clear_failure(payment)}
            payment.stripe_charge_id = intent.latest_charge_id or ""
            payment.updated_at = timezone.now()
            _move(payment, PaymentStatus.SUCCEEDED)
            moved = (Payment.objects.filter(pk=payment.pk, status=PaymentStatus.PROCESSING,
                                            stripe_payment_intent_id__isnull=True)
                     .update(**{name: getattr(payment, name) for name in sorted(fields)}))
            if not moved:
                raise _RowMoved()
            _record_card_owner(payment, intent, saved_card_id=saved_card_id)
            _on_succeeded(payment, intent, fresh=True)
    except (_RowMoved, IntegrityError) as exc:
        logger.info("payment %s: settled the careful way (%s)", payment.pk, type(exc).__name__)
        return payment_settle_from_intent(payment_id=payment.pk, intent=intent)
    return payment


def payment_apply_refund(*, payment: Payment, refund: RefundRequest, sign: int = 1,
                         share_reversed_by_stripe: bool = False) -> None:
    """Count (sign=1) or uncount (sign=-1) a refund into the locked payment, cumulatively split;
    the caller holds the payment's and the request's row locks. A full refund closes the booking
    (as the refund's kind says, or ``refunded``). A disputed payment stays disputed.
    ``share_reversed_by_stripe``: Stripe's refund reversed the teacher's transfer itself (a
    destination charge's refund with ``reverse_transfer``); otherwise a paid-out share is reversed
    by the next payout run (ledger)."""
    refunded = payment.refunded_cents + sign * refund.amount_cents
    if not 0 <= refunded <= payment.amount_cents:
        raise InvalidState("The refunds would exceed the payment.")
    split = split_refunded(amount_cents=payment.amount_cents, admin_fee_cents=payment.admin_fee_cents,
                           refunded_cents=refunded)
    fee_part = abs(split.admin_fee_cents - payment.refunded_admin_fee_cents)
    share_part = abs(split.teacher_amount_cents - payment.refunded_teacher_cents)
    ledger.post_refund(payment=payment, refund=refund, fee_cents=fee_part, share_cents=share_part, sign=sign,
                       reversed_by_stripe=share_reversed_by_stripe)
    payment.refunded_cents = refunded
    payment.refunded_admin_fee_cents = split.admin_fee_cents
    payment.refunded_teacher_cents = split.teacher_amount_cents
    if payment.status != PaymentStatus.DISPUTED:
        if refunded == payment.amount_cents:
            _move(payment, PaymentStatus.REFUNDED)
        elif refunded > 0:
            _move(payment, PaymentStatus.PARTIALLY_REFUNDED)
        else:
            _move(payment, PaymentStatus.SUCCEEDED)
    payment.save(update_fields=["refunded_cents", "refunded_admin_fee_cents", "refunded_teacher_cents",
                                "status", "updated_at"])
    refund.applied = sign > 0
    refund.save(update_fields=["applied", "updated_at"])
    if sign > 0 and refunded == payment.amount_cents:
        booking = Booking.objects.filter(payment_id=payment.pk).first()
        if booking is not None and booking.status in OPEN_BOOKING_STATUSES:
            target = BOOKING_CLOSED_BY.get(refund.kind, BookingStatus.REFUNDED)
            if booking.status != BookingStatus.PENDING_CONFIRMATION:
                target = BookingStatus.REFUNDED
            booking_transition(booking_id=booking.pk, to=target)


def payment_mark_disputed(*, payment_id: int) -> Payment:
    """The card holder disputed the charge (Stripe says so): payment and booking become disputed."""
    with transaction.atomic():
        payment = _lock(payment_id)
        if payment.status != PaymentStatus.DISPUTED:
            _move(payment, PaymentStatus.DISPUTED)
            payment.save(update_fields=["status", "updated_at"])
        booking = Booking.objects.filter(payment_id=payment.pk).first()
        if booking is not None and booking.status != BookingStatus.DISPUTED:
            booking_transition(booking_id=booking.pk, to=BookingStatus.DISPUTED)
    return payment


def payment_booking_restore(*, payment_id: int) -> None:
    """A succeeded payment whose booking is missing (the consistency check found it): created as
    settling creates it, once."""
    with transaction.atomic():
        payment = _lock(payment_id)
        if payment.status != PaymentStatus.SUCCEEDED:
            return
        booking, created = booking_create_for_payment(payment=payment)
        if created:
            booking_notifications.booking_created(booking_id=booking.pk)


def payment_booking_close_refunded(*, payment_id: int) -> None:
    """The booking of a payment refunded in full (every refund already counted) that is still open
    becomes ``refunded``, as counting the last refund does."""
    with transaction.atomic():
        payment = _lock(payment_id)
        if payment.refunded_cents < payment.amount_cents:
            return
        booking = Booking.objects.select_for_update().filter(payment_id=payment_id).first()
        if booking is not None and booking.status in OPEN_BOOKING_STATUSES:
            booking_transition(booking_id=booking.pk, to=BookingStatus.REFUNDED)
