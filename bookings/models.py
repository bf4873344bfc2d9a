"""A booking exists only for a succeeded payment; its states are the contract's table."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class BookingStatus(models.TextChoices):
    PENDING_CONFIRMATION = "pending_confirmation", "Pending confirmation"  # paid, waiting for the teacher
    CONFIRMED = "confirmed", "Confirmed"  # the teacher will give the lesson
    COMPLETED = "completed", "Completed"  # the lesson was given
    DECLINED = "declined", "Declined"  # the teacher said no, or never answered; refunded in full
    CANCELLED = "cancelled", "Cancelled"  # the student withdrew before confirmation; refunded in full
    REFUNDED = "refunded", "Refunded"  # the payment was fully refunded by an admin or Stripe's dashboard
    DISPUTED = "disputed", "Disputed"  # the card holder opened a dispute


# target state -> the states it may be reached from
TRANSITIONS: dict[str, frozenset[str]] = {
    BookingStatus.CONFIRMED: frozenset({BookingStatus.PENDING_CONFIRMATION}),
    BookingStatus.COMPLETED: frozenset({BookingStatus.CONFIRMED}),
    BookingStatus.DECLINED: frozenset({BookingStatus.PENDING_CONFIRMATION}),
    BookingStatus.CANCELLED: frozenset({BookingStatus.PENDING_CONFIRMATION}),
    BookingStatus.REFUNDED: frozenset(
        {BookingStatus.PENDING_CONFIRMATION, BookingStatus.CONFIRMED, BookingStatus.COMPLETED}
    ),
    BookingStatus.DISPUTED: frozenset(set(BookingStatus) - {BookingStatus.DISPUTED}),
}


class Booking(models.Model):
    gig = models.ForeignKey("gigs.Gig", on_delete=models.PROTECT, related_name="bookings")
    student = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="bookings_as_student")
    teacher = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="bookings_as_teacher")
    # One booking per payment: the constraint, not a check, makes "book once" hold under races.
    payment = models.OneToOneField("stripe_payments.Payment", on_delete=models.PROTECT, related_name="booking")
    status = models.CharField(max_length=32, choices=BookingStatus.choices, default=BookingStatus.PENDING_CONFIRMATION)
    scheduled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)  # declined, cancelled, refunded or disputed

    class Meta:
        ordering = ["-created_at", "-id"]
        # Each list's filter, then its order (newest first: the index read backwards); (status,
        # created_at) forwards is the expiry job's.
        indexes = [
            models.Index(fields=["created_at", "id"]),
            models.Index(fields=["student", "created_at", "id"]),
            models.Index(fields=["teacher", "created_at", "id"]),
            models.Index(fields=["status", "created_at", "id"]),
        ]

    def __str__(self) -> str:
        return f"Booking #{self.pk} ({self.status})"
