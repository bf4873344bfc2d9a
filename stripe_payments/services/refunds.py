"""Refund workflows: decline, cancel and expiry refunds, refund requests, admin refunds, and
syncing refunds that Stripe reports (including ones issued from Stripe's dashboard).

Exactly once, by construction:
- every refund is a committed RefundRequest before Stripe hears of it, and Stripe's idempotency
  key derives from that request (``keys.row_key``): a doubled approval, a repeated decline or a
  retry after a lost answer gets Stripe's first refund back, and no two kinds ever share a key;
- a decline, cancel or expiry closes the booking in the same commit that records the refund it
  owes, so a lost Stripe answer can no longer leave a refunded student with a bookable lesson,
  and reconciliation finds the pending request and finishes it;
- a refund counts into the payment once (``RefundRequest.applied``), under the payment's row lock,
  whichever of the API answer, the webhook or reconciliation records it first;
- locks are always taken in one order, the payment, then its refund requests, then its booking, so
  a decline racing an approval (or a webhook) waits for it instead of deadlocking.
The split is reversed cumulatively (``money.split_refunded``), so a full refund returns exactly the
fee and the teacher's share.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from bookings import notifications as booking_notifications
from bookings.models import Booking, BookingStatus
from bookings.selectors import bookings_pending_confirmation_before
from bookings.services import booking_transition, ensure_student_of, ensure_teacher_of
from linguaflex.errors import DomainError, Forbidden, InvalidState, NotFound, ValidationFailed

from .. import gateway, keys, notifications
from ..models import (
    CAPTURED_STATUSES,
    Payment,
    PaymentStatus,
    RefundKind,
    RefundRequest,
    RefundRequestStatus,
)
from . import lifecycle, payments
from .common import with_request_id

logger = logging.getLogger(__name__)

# Stripe's refund reason for each kind (Stripe accepts only these three values).
_STRIPE_REASON = {RefundKind.REQUESTED: "requested_by_customer", RefundKind.CANCEL: "requested_by_customer"}
_BOOKING_TARGET = lifecycle.BOOKING_CLOSED_BY


class RefundPending(DomainError):
    status_code = 409
    code = "refund_pending"
    message = "A refund request for this payment is already pending."


def _amount_error(left: int) -> ValidationFailed:
    return ValidationFailed(
        f"The amount is more than what is left to refund ({left / 100:.2f} USD).",
        fields={"amount": [f"At most {left / 100:.2f} USD is left to refund."]},
    )


# --- what is left to refund: one rule ---------------------------------------------------------------
def ensure_refundable(payment: Payment, amount_cents: int | None, *, disputed_ok: bool = False) -> int:
    """The amount to refund from this payment (``None``: all that is left), or why it cannot be:
    409 for a payment that captured nothing refundable, 400 ``fields.amount`` for an amount beyond
    what is left. Checked when a refund is asked for and again, under the payment's row lock, when
    it is approved; the database's check constraint is the backstop."""
    allowed = CAPTURED_STATUSES + ((PaymentStatus.DISPUTED,) if disputed_ok else ())
    if payment.status not in allowed:
        raise InvalidState(f"A {payment.status} payment cannot be refunded.", extra={"status": payment.status})
    left = payment.refundable_cents
    amount = left if amount_cents is None else amount_cents
    if amount <= 0 or amount > left:
        raise _amount_error(left)
    return amount


def _record_result(refund: RefundRequest, result: gateway.RefundResult) -> RefundRequest:
    """Record Stripe's answer for a refund request: payment and request locked by the caller."""
    payment = Payment.objects.select_for_update().get(pk=refund.payment_id)
    refund.stripe_refund_id = result.id
    previous = refund.status
    if result.status == "succeeded":
        refund.status = RefundRequestStatus.SUCCEEDED
        refund.failure_reason = ""
        if not refund.applied:
            lifecycle.payment_apply_refund(payment=payment, refund=refund,
                                           share_reversed_by_stripe=result.transfer_reversal_id is not None)
    elif result.status in ("failed", "canceled"):
        refund.status = RefundRequestStatus.FAILED
        refund.failure_reason = (result.failure_reason or result.status)[:255]
        if refund.applied:  # Stripe reversed a refund it had reported succeeded
            lifecycle.payment_apply_refund(payment=payment, refund=refund, sign=-1)
            if refund.kind in _BOOKING_TARGET:
                _queue_for_admin(payment, refund)
    # pending / requires_action: Stripe is still working; refund.updated will settle it.
    refund.save(update_fields=["stripe_refund_id", "status", "failure_reason", "updated_at"])
    if previous != refund.status and refund.status in (RefundRequestStatus.SUCCEEDED, RefundRequestStatus.FAILED):
        notifications.refund_outcome(refund_id=refund.pk, status=refund.status)
    return refund


def _queue_for_admin(payment: Payment, failed: RefundRequest) -> None:
    """A declined, cancelled or expired booking promised a full refund; Stripe later reported that
    refund failed. The booking stays closed, so the money is owed: put a pending request in the
    admins' queue (approving it retries under a new key) instead of moving on silently."""
    logger.error("refund %s of payment %s (booking %s) failed after succeeding: queued for an admin",
                 failed.pk, payment.pk, failed.kind)
    try:
        with transaction.atomic():
            RefundRequest.objects.create(
                payment=payment, amount_cents=failed.amount_cents, kind=RefundKind.ADMIN,
                requested_by=failed.requested_by,
                reason=f"Stripe reported refund #{failed.pk} ({failed.get_kind_display().lower()}) failed: "
                       f"{failed.failure_reason}. The booking is closed and the student is owed this amount.",
            )
    except IntegrityError:
        pass  # a pending request for this payment already waits in the admins' queue


def _issue(refund: RefundRequest, *, key: str, metadata: dict[str, str]) -> RefundRequest:
    """Call Stripe for a locked, pending, committed request and record the answer in the same
    transaction. A 503/504 rolls the caller's transaction back: the request stays pending and a
    retry reuses the same idempotency key with the same parameters, so Stripe refunds once."""
    payment = refund.payment
    result = gateway.refund_create(
        payment_intent_id=payment.stripe_payment_intent_id, amount_cents=refund.amount_cents,
        idempotency_key=key, reason=_STRIPE_REASON.get(refund.kind),
        metadata={"payment_id": str(payment.pk), "kind": refund.kind, **metadata},
        reverse_split=bool(payment.destination_account_id),
    )
    return _record_result(refund, result)


# --- decline, cancel, expiry: full refunds of a pending booking ------------------------------------------
# A booking's refund is owed, not asked for: kinds whose pending request nobody decides.
BOOKING_REFUND_KINDS = tuple(_BOOKING_TARGET)


def _booking_refund_resumable(payment: Payment, booking: Booking, kind: str) -> RefundRequest | None:
    """The pending refund an earlier attempt of this very decline, cancel or expiry left behind
    (Stripe unreachable or its answer lost): the booking is already closed as this kind."""
    if booking.status != _BOOKING_TARGET[kind]:
        return None
    return RefundRequest.objects.filter(payment=payment, kind=kind, status=RefundRequestStatus.PENDING,
                                        stripe_refund_id=None).first()


def _booking_refund(*, booking_id: int, kind: str, actor) -> Booking:
    """Close a pending booking as ``kind`` and refund its payment in full, in two steps.

    1. One transaction closes the booking and records the refund it owes as a pending request,
       and commits: the decision and the debt survive whatever Stripe does next, a teacher can no
       longer confirm the booking, and the request's own Stripe key (``_refund_key``) can never be
       reused by another kind with other parameters.
    2. The refund is issued under that key (``refund_pending_issue``). A 503/504 leaves the request
       pending; repeating the same decline, cancel or expiry, an admin's approval, the webhook or
       reconciliation finishes it under the same key, so Stripe refunds once.
    """
    payment_id = Booking.objects.filter(pk=booking_id).values_list("payment_id", flat=True).first()
    if payment_id is None:
        raise NotFound("Booking not found.")
    refund = None
    with transaction.atomic():
        # Lock order, everywhere: payment, then its refund requests, then its booking (see the module doc).
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        booking = Booking.objects.select_for_update().get(pk=booking_id)
        if kind == RefundKind.DECLINE:
            ensure_teacher_of(booking, actor)
        elif kind == RefundKind.CANCEL:
            ensure_student_of(booking, actor)
        refund = _booking_refund_resumable(payment, booking, kind)
        resumed = refund is not None
        if not resumed:
            if booking.status != BookingStatus.PENDING_CONFIRMATION:
                raise InvalidState(f"A {booking.get_status_display().lower()} booking cannot be "
                                   f"{'declined' if kind != RefundKind.CANCEL else 'cancelled'}.",
                                   extra={"status": booking.status})
            # A student's pending partial request is superseded by this full refund.
            RefundRequest.objects.filter(payment=payment, status=RefundRequestStatus.PENDING).update(
                status=RefundRequestStatus.REJECTED, decision_note="Superseded by the booking's full refund.",
                decided_at=timezone.now(), updated_at=timezone.now())
            left = payment.refundable_cents
            if left > 0 and payment.status in CAPTURED_STATUSES:
                refund = RefundRequest.objects.create(
                    payment=payment, amount_cents=left, kind=kind, requested_by=actor or payment.student,
                    reason=f"Booking {kind}", decided_by=None, decided_at=timezone.now(),
                )
            booking = booking_transition(booking_id=booking.pk, to=_BOOKING_TARGET[kind])
            booking_notifications.booking_closed(booking_id=booking.pk, kind=kind)
    if resumed:
        refund_owed_finish(refund_request_id=refund.pk)
    elif refund is not None:
        refund_pending_issue(refund_request_id=refund.pk)
    booking.refresh_from_db()
    return booking


def _refund_key(refund: RefundRequest) -> str:
    """Stripe's idempotency key for a refund request: its id and creation instant (``keys``)."""
    return keys.row_key("refund", refund.pk, refund.created_at)


def _refund_metadata(refund: RefundRequest) -> dict[str, str]:
    metadata = {"refund_request_id": str(refund.pk)}
    booking_id = Booking.objects.filter(payment_id=refund.payment_id).values_list("pk", flat=True).first()
    if refund.kind in BOOKING_REFUND_KINDS and booking_id is not None:
        metadata["booking_id"] = str(booking_id)
    return with_request_id(metadata, refund.request_id)


def refund_pending_issue(*, refund_request_id: int) -> RefundRequest:
    """Issue the Stripe refund of a committed, pending request that nobody needs to decide (a
    booking's decline, cancel or expiry), or that an admin already approved, under its own key.

    Safe to repeat: a request Stripe already answered is returned as it is. A refusal by Stripe
    (400) fails the request and queues what is owed for an admin; 503/504 raise, leaving it pending."""
    payment_id = RefundRequest.objects.filter(pk=refund_request_id).values_list("payment_id", flat=True).first()
    if payment_id is None:
        raise NotFound("Refund request not found.")
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        refund = RefundRequest.objects.select_for_update().get(pk=refund_request_id)
        if refund.status != RefundRequestStatus.PENDING or refund.stripe_refund_id:
            return refund
        refund.payment = payment
        try:
            with transaction.atomic():
                return _issue(refund, key=_refund_key(refund), metadata=_refund_metadata(refund))
        except gateway.ProviderInvalidRequest as exc:
            _fail_refused(refund, exc)
            if refund.kind in BOOKING_REFUND_KINDS:
                _queue_for_admin(payment, refund)
            return refund


def owed_booking_refund_ids(*, kind: str | None = None, payment_id: int | None = None,
                            before=None) -> list[int]:
    """Booking refunds (decline, cancel, expiry) still pending: Stripe's answer was never heard."""
    owed = RefundRequest.objects.filter(status=RefundRequestStatus.PENDING, stripe_refund_id=None,
                                        kind__in=[kind] if kind else BOOKING_REFUND_KINDS)
    if payment_id is not None:
        owed = owed.filter(payment_id=payment_id)
    if before is not None:
        owed = owed.filter(updated_at__lt=before)
    return list(owed.order_by("pk").values_list("pk", flat=True))


def refund_owed_finish(*, refund_request_id: int) -> RefundRequest:
    """Finish a committed refund whose Stripe answer is unknown: Stripe's own list first (it may
    have refunded, and an idempotency key is only kept 24 hours), then issue what is still owed."""
    payment_id = RefundRequest.objects.filter(pk=refund_request_id).values_list("payment_id", flat=True).first()
    if payment_id is None:
        raise NotFound("Refund request not found.")
    payment_sync_refunds(payment_id=payment_id)
    return refund_pending_issue(refund_request_id=refund_request_id)


def _fail_refused(refund: RefundRequest, exc: gateway.ProviderInvalidRequest) -> None:
    """Stripe refused the refund itself (a disputed charge, already refunded there, ...): the
    request failed, with Stripe's reason; no money moved."""
    refund.status = RefundRequestStatus.FAILED
    refund.failure_reason = exc.message[:255]
    refund.save(update_fields=["status", "failure_reason", "updated_at"])
    notifications.refund_outcome(refund_id=refund.pk, status=refund.status)


def booking_decline(*, booking: Booking, user) -> Booking:
    """The teacher says no: the booking is declined and the payment refunded in full."""
    return _booking_refund(booking_id=booking.pk, kind=RefundKind.DECLINE, actor=user)


def booking_cancel(*, booking: Booking, user) -> Booking:
    """The student withdraws before confirmation: cancelled and refunded in full."""
    return _booking_refund(booking_id=booking.pk, kind=RefundKind.CANCEL, actor=user)


def booking_expire(*, booking_id: int) -> Booking:
    """No answer within BOOKING_CONFIRMATION_HOURS: declined and refunded in full."""
    return _booking_refund(booking_id=booking_id, kind=RefundKind.EXPIRY, actor=None)


@dataclass
class ExpiryRun:
    """What ``bookings_expire_overdue`` did: one line per booking or refund, and the failures."""

    expired: int = 0
    lines: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def bookings_expire_overdue(*, hours: float) -> ExpiryRun:
    """Decline and refund every booking left unanswered for ``hours``, and finish the expiry
    refunds whose Stripe answer an earlier run lost. Safe twice or at once: each booking moves
    under its row lock (a booking another run expired meanwhile is skipped), each refund under
    its request's key."""
    run = ExpiryRun()
    started = timezone.now()
    cutoff = started - timedelta(hours=hours)
    for booking_id in list(bookings_pending_confirmation_before(cutoff=cutoff).values_list("pk", flat=True)):
        try:
            booking_expire(booking_id=booking_id)
        except DomainError as exc:
            if exc.code != "invalid_state":  # invalid_state: answered, cancelled or expired meanwhile
                run.failures.append(f"booking {booking_id}: {exc.code}: {exc.message}")
            continue
        run.expired += 1
        run.lines.append(f"booking {booking_id}: declined and refunded (no answer in {hours:g} h)")
    for refund_id in owed_booking_refund_ids(kind=RefundKind.EXPIRY, before=started):
        try:
            refund = refund_owed_finish(refund_request_id=refund_id)
        except DomainError as exc:
            run.failures.append(f"refund request {refund_id}: {exc.code}: {exc.message}")
            continue
        run.lines.append(f"refund request {refund_id} (booking expired earlier): {refund.status}")
    return run


# --- refund requests ----------------------------------------------------------------------------------
def refund_request_create(*, student, payment: Payment, amount_cents: int | None, reason: str) -> RefundRequest:
    if payment.student_id != student.pk:
        raise Forbidden("Only the student who paid can request a refund.")
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        refund = _new_pending_request(payment, amount_cents=amount_cents, kind=RefundKind.REQUESTED,
                                      reason=reason, requested_by=student)
    notifications.refund_requested(refund_id=refund.pk)
    return refund


def _new_pending_request(payment: Payment, *, amount_cents: int | None, kind: str, reason: str,
                         requested_by) -> RefundRequest:
    """A pending request on a locked, captured payment; ``None`` asks for all that is left.

    At most one pending request per payment (a partial unique constraint): 409 ``refund_pending``."""
    amount = ensure_refundable(payment, amount_cents)
    try:
        with transaction.atomic():
            return RefundRequest.objects.create(payment=payment, amount_cents=amount, kind=kind, reason=reason,
                                                requested_by=requested_by)
    except IntegrityError:
        raise RefundPending() from None


def _lock_pending(refund_request_id: int) -> RefundRequest:
    refund = RefundRequest.objects.select_for_update().filter(pk=refund_request_id).first()
    if refund is None:
        raise NotFound("Refund request not found.")
    # A pending request that Stripe already holds (approved, refund still pending there) is decided.
    if refund.status != RefundRequestStatus.PENDING or refund.stripe_refund_id:
        raise InvalidState(f"The refund request is {refund.status}.", extra={"status": refund.status})
    return refund


def _ensure_admin(user) -> None:
    if not user.is_admin:
        raise Forbidden("Only admins decide refunds.")


def refund_request_approve(*, admin, refund_request_id: int, note: str = "") -> RefundRequest:
    """Issue the Stripe refund: ``succeeded``, or ``failed`` with ``failure_reason``. What is left
    is checked again under the payment's row lock."""
    _ensure_admin(admin)
    payment_id = RefundRequest.objects.filter(pk=refund_request_id).values_list("payment_id", flat=True).first()
    if payment_id is None:
        raise NotFound("Refund request not found.")
    with transaction.atomic():
        # The payment first, as every money workflow does: a decline racing this approval waits, never deadlocks.
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        refund = _lock_pending(refund_request_id)
        ensure_refundable(payment, refund.amount_cents, disputed_ok=True)
        refund.decided_by = admin
        refund.decided_at = timezone.now()
        if note:
            refund.decision_note = note
        refund.save(update_fields=["decided_by", "decided_at", "decision_note", "updated_at"])
        refund.payment = payment
        try:
            with transaction.atomic():
                return _issue(refund, key=_refund_key(refund), metadata=_refund_metadata(refund))
        except gateway.ProviderInvalidRequest as exc:
            _fail_refused(refund, exc)
            return refund


def refund_request_reject(*, admin, refund_request_id: int, note: str) -> RefundRequest:
    _ensure_admin(admin)
    with transaction.atomic():
        refund = _lock_pending(refund_request_id)
        if refund.kind in BOOKING_REFUND_KINDS:
            raise InvalidState("This refund is owed for a closed booking; it can be approved, not rejected.",
                               extra={"status": refund.status})
        refund.status = RefundRequestStatus.REJECTED
        refund.decided_by = admin
        refund.decided_at = timezone.now()
        refund.decision_note = note
        refund.save(update_fields=["status", "decided_by", "decided_at", "decision_note", "updated_at"])
    notifications.refund_outcome(refund_id=refund.pk, status=refund.status)
    return refund


def admin_refund_create(*, admin, payment: Payment, amount_cents: int | None, reason: str) -> RefundRequest:
    """An admin refunds directly: a request created and approved at once.

    The request is committed before Stripe is called, so its Stripe key (its id and creation instant)
    survives a 503/504: it stays pending, to approve again, and a retry of this call with the same
    amount approves that same request instead of refunding a second time."""
    _ensure_admin(admin)
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        own = RefundRequest.objects.filter(payment=locked, status=RefundRequestStatus.PENDING, kind=RefundKind.ADMIN,
                                           requested_by=admin, stripe_refund_id=None).first()
        if own is not None and own.amount_cents == (locked.refundable_cents if amount_cents is None else amount_cents):
            refund = own
        else:
            refund = _new_pending_request(locked, amount_cents=amount_cents, kind=RefundKind.ADMIN, reason=reason,
                                          requested_by=admin)
    try:
        return refund_request_approve(admin=admin, refund_request_id=refund.pk)
    except InvalidState:
        # Between this call's commit and its approval, a concurrent identical call decided the same
        # request (it took over ours, or we took over its): that call made the refund; this one
        # found it pending. Any other refusal (the payment itself moved on) is answered as it is.
        if RefundRequest.objects.filter(pk=refund.pk, status=RefundRequestStatus.PENDING,
                                        stripe_refund_id=None).exists():
            raise
        raise RefundPending() from None


# --- syncing from Stripe (webhooks, reconciliation) --------------------------------------------------------
# A Stripe refund's status -> how its request records it once applied (``_record_result``).
_RECORDED_AS = {
    "succeeded": RefundRequestStatus.SUCCEEDED, "failed": RefundRequestStatus.FAILED,
    "canceled": RefundRequestStatus.FAILED, "pending": RefundRequestStatus.PENDING,
    "requires_action": RefundRequestStatus.PENDING,
}


def refund_recorded(*, refund_id: str, state: dict) -> bool:
    """Our request for Stripe refund ``refund_id`` already records ``state`` (a verified event's
    copy of the refund: its status and amount), counted into the payment exactly when it succeeded."""
    status = _RECORDED_AS.get(state.get("status", ""))
    if status is None or "amount" not in state or not refund_id:
        return False
    row = RefundRequest.objects.filter(stripe_refund_id=refund_id).values("status", "amount_cents", "applied").first()
    return row == {"status": status, "amount_cents": state["amount"],
                   "applied": status == RefundRequestStatus.SUCCEEDED}


def charge_refunds_recorded(*, charge_id: str, state: dict) -> bool:
    """The payment of charge ``charge_id`` is charged and already counts what ``state`` (a verified
    event's copy of the charge) says was refunded of it."""
    if "amount" not in state or "amount_refunded" not in state or not charge_id:
        return False
    payment = Payment.objects.filter(stripe_charge_id=charge_id).first()
    return (payment is not None and payment.charged and payment.amount_cents == state["amount"]
            and payment.refunded_cents == state["amount_refunded"])


def payment_sync_refunds_for_intent(*, payment_intent_id: str) -> Payment | None:
    """A refund event the database is behind: settle the payment only if it is not charged yet
    (one read of the intent), then sync its refunds (one read of Stripe's list). None for an
    intent that is not ours."""
    payment = Payment.objects.filter(stripe_payment_intent_id=payment_intent_id).first()
    if payment is None or not payment.charged:
        payment = payments.payment_settle_by_intent_id(payment_intent_id=payment_intent_id)
    if payment is None:
        return None
    return payment_sync_refunds(payment_id=payment.pk)


def payment_sync_refunds(*, payment_id: int) -> Payment:
    """Bring the payment's refunds in line with Stripe's list (re-read, never the event's copy).

    Refunds issued from Stripe's dashboard become ``external`` refund requests."""
    payment = Payment.objects.get(pk=payment_id)
    if not payment.stripe_payment_intent_id:
        return payment
    results = gateway.refunds_for_payment_intent(payment.stripe_payment_intent_id)
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        for result in sorted(results, key=lambda r: r.id):
            refund = RefundRequest.objects.select_for_update().filter(stripe_refund_id=result.id).first()
            if refund is None:
                raw = result.metadata.get("refund_request_id", "")
                if raw.isdigit():
                    refund = RefundRequest.objects.select_for_update().filter(pk=int(raw), payment=payment).first()
            closes = None
            if refund is None:
                if result.status != "succeeded":
                    continue
                # A decline, cancel or expiry whose answer Stripe never delivered (its transaction
                # rolled back): it closes the booking as that kind. Anything else is a dashboard refund.
                kind = result.metadata.get("kind", "")
                closes = kind if kind in _BOOKING_TARGET and result.metadata.get("booking_id") else None
                refund = RefundRequest.objects.create(
                    payment=payment, amount_cents=result.amount, kind=closes or RefundKind.EXTERNAL,
                    status=RefundRequestStatus.SUCCEEDED,
                    reason=f"Booking {closes}" if closes else "Refunded outside LinguaFlex (Stripe dashboard)",
                    requested_by=payment.student, decided_at=timezone.now(), stripe_refund_id=result.id,
                )
            refund.payment = payment
            _record_result(refund, result)
            payment.refresh_from_db()
            if closes:
                booking = Booking.objects.filter(payment_id=payment.pk).first()
                if booking is not None and booking.status == _BOOKING_TARGET[closes]:
                    booking_notifications.booking_closed(booking_id=booking.pk, kind=closes)
                    notifications.refund_outcome(refund_id=refund.pk, status=refund.status)
    return payment
