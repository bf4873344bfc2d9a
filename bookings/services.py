"""Booking writes: creation for a succeeded payment, and every state transition.

Each transition locks the booking row (``select_for_update``), checks the current state against
``TRANSITIONS`` and raises ``InvalidState`` (409) on a wrong move. Money-moving workflows (decline,
cancel, expiry, refunds) live in ``stripe_payments.services`` (the payment lifecycle creates the
booking of a succeeded payment) and call these; this app never imports ``stripe_payments``.
"""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from linguaflex.errors import Forbidden, InvalidState

from . import notifications
from .models import TRANSITIONS, Booking, BookingStatus


class BookingRequiresSucceededPayment(Exception):
    """A booking was asked for a payment that has not succeeded (a programming error)."""

def booking_create_for_payment(*, payment, scheduled_at: datetime | None = None,
                               fresh: bool = False) -> tuple[Booking, bool]:
    """The booking of a succeeded payment, created once. Returns (booking, created). Only the payment
    lifecycle calls it, for a payment it has just settled as succeeded: the payment says so itself
    (``has_succeeded``), so this app knows no payment status. ``fresh``: the payment became
    succeeded in the caller's transaction, so it has no booking yet: one INSERT, no lookup and no
    savepoint (a conflict raises, and the caller rolls back)."""
    if not payment.has_succeeded:
        raise BookingRequiresSucceededPayment(f"payment {payment.pk} is {payment.status}")

    def create() -> Booking:
        return Booking.objects.create(
            gig_id=payment.gig_id,
            student_id=payment.student_id,
            teacher_id=payment.teacher_id,
            payment_id=payment.pk,
            scheduled_at=scheduled_at if scheduled_at is not None else getattr(payment, "scheduled_at", None),
        )

    if fresh:
        return create(), True
    existing = Booking.objects.filter(payment_id=payment.pk).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            booking = create()
    except IntegrityError:
        # A concurrent settle created it first (unique payment_id): that one is the booking.
        return Booking.objects.get(payment_id=payment.pk), False
    return booking, True


def _lock(booking_id: int) -> Booking:
    return Booking.objects.select_for_update().get(pk=booking_id)


def booking_transition(*, booking_id: int, to: str) -> Booking:
    """Move a booking to ``to`` under a row lock; 409 ``invalid_state`` on a wrong move.

    Must run inside the caller's transaction when the caller changes other rows with it.
    """
    with transaction.atomic():
        booking = _lock(booking_id)
        # A state no transition leads to (pending_confirmation, or no state at all) is never allowed.
        if booking.status not in TRANSITIONS.get(to, frozenset()):
            target = BookingStatus(to).label.lower() if to in BookingStatus.values else repr(to)
            raise InvalidState(
                f"A {booking.get_status_display().lower()} booking cannot become {target}.",
                extra={"status": booking.status},
            )
        now = timezone.now()
        booking.status = to
        fields = ["status", "updated_at"]
        if to == BookingStatus.CONFIRMED:
            booking.confirmed_at = now
            fields.append("confirmed_at")
        elif to == BookingStatus.COMPLETED:
            booking.completed_at = now
            fields.append("completed_at")
        else:
            booking.closed_at = now
            fields.append("closed_at")
        booking.save(update_fields=fields)
        return booking


def ensure_teacher_of(booking: Booking, user) -> None:
    if booking.teacher_id != user.pk:
        raise Forbidden("Only the gig's teacher can do this.")


def ensure_student_of(booking: Booking, user) -> None:
    if booking.student_id != user.pk:
        raise Forbidden("Only the booking's student can do this.")


def booking_confirm(*, booking: Booking, user) -> Booking:
    ensure_teacher_of(booking, user)
    with transaction.atomic():
        booking = booking_transition(booking_id=booking.pk, to=BookingStatus.CONFIRMED)
        notifications.booking_confirmed(booking_id=booking.pk)
    return booking


def booking_complete(*, booking: Booking, user) -> Booking:
    ensure_teacher_of(booking, user)
    return booking_transition(booking_id=booking.pk, to=BookingStatus.COMPLETED)
