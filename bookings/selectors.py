"""Booking reads, scoped to the requesting user."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q, QuerySet

from linguaflex.errors import NotFound

from .models import Booking, BookingStatus


def _visible_to(user) -> Q:
    """What a user may see: all (admins), or their own rows by their role. One side, not
    ``student OR teacher``: only a single-column filter lets the ``(student | teacher, -created_at,
    -id)`` index serve the list in order, where the OR sorts every row the user has. Only students
    pay and only teachers have gigs, so a user's rows are all on their role's side."""
    if user.is_admin:
        return Q()
    if user.is_student:
        return Q(student=user)
    if user.is_teacher:
        return Q(teacher=user)
    return Q(student=user) | Q(teacher=user)


def booking_list(*, user, status: str | None = None) -> QuerySet[Booking]:
    qs = Booking.objects.filter(_visible_to(user)).select_related("gig", "student", "teacher")
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("-created_at", "-id")


def booking_get_visible(*, user, booking_id: int) -> Booking:
    booking = booking_list(user=user).filter(pk=booking_id).first()
    if booking is None:
        raise NotFound("Booking not found.")
    return booking


def bookings_pending_confirmation_before(*, cutoff: datetime) -> QuerySet[Booking]:
    return Booking.objects.filter(status=BookingStatus.PENDING_CONFIRMATION, created_at__lt=cutoff).order_by("id")
