"""E-mails about bookings, through the outbox (linguaflex/mail.py): recorded with the change,
sent after commit, once (never for a rolled-back change)."""

from __future__ import annotations

from linguaflex.mail import Email, email_after_commit

from .models import Booking

_CLOSED_TEXT = {
    "decline": ("declined", "The teacher declined your booking."),
    "cancel": ("cancelled", "You cancelled your booking."),
    "expiry": ("expired", "The teacher did not confirm your booking in time."),
}


def _when(booking: Booking) -> str:
    return booking.scheduled_at.strftime("%Y-%m-%d %H:%M %Z") if booking.scheduled_at else "to be arranged"


def _booking(booking_id: int) -> Booking | None:
    return Booking.objects.select_related("gig", "student", "teacher", "payment").filter(pk=booking_id).first()


def booking_created(*, booking_id: int) -> None:
    email_after_commit("bookings.notifications.render_new_booking", booking_id)


def booking_confirmed(*, booking_id: int) -> None:
    email_after_commit("bookings.notifications.render_confirmed", booking_id)


def booking_closed(*, booking_id: int, kind: str) -> None:
    email_after_commit("bookings.notifications.render_closed", booking_id, kind)


def render_new_booking(booking_id: int, variant: str = "") -> list[Email]:
    booking = _booking(booking_id)
    if booking is None:
        return []
    payment = booking.payment
    return [Email(
        booking.teacher.email, f"New booking: {booking.gig.title}",
        f"Hello {booking.teacher.display_name},\n\n{booking.student.display_name} booked and paid for "
        f"\"{booking.gig.title}\" ({payment.amount_cents / 100:.2f} USD; your share "
        f"{payment.teacher_amount_cents / 100:.2f} USD).\nLesson time: {_when(booking)}.\n\n"
        f"Please confirm or decline booking #{booking.pk}. Unanswered bookings are refunded automatically.\n",
    )]


def render_confirmed(booking_id: int, variant: str = "") -> list[Email]:
    booking = _booking(booking_id)
    if booking is None:
        return []
    return [Email(
        booking.student.email, f"Booking confirmed: {booking.gig.title}",
        f"Hello {booking.student.display_name},\n\n{booking.teacher.display_name} confirmed your booking "
        f"#{booking.pk} for \"{booking.gig.title}\".\nLesson time: {_when(booking)}.\n",
    )]


def render_closed(booking_id: int, variant: str) -> list[Email]:
    booking = _booking(booking_id)
    if booking is None:
        return []
    word, sentence = _CLOSED_TEXT.get(variant, ("closed", "Your booking was closed."))
    payment = booking.payment
    return [Email(
        booking.student.email, f"Booking {word}: {booking.gig.title}",
        f"Hello {booking.student.display_name},\n\n{sentence} Booking #{booking.pk} for \"{booking.gig.title}\" "
        f"is {word}.\nThe full amount of {payment.amount_cents / 100:.2f} USD is being refunded to your card "
        f"ending in {payment.card_last4 or '----'}; you will hear when the refund is done.\n",
    )]
