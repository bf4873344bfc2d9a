"""E-mails about bookings, sent after the transaction commits (never for a rolled-back change)."""

from __future__ import annotations

from django.core.mail import send_mail

from linguaflex.mail import send_after_commit

from .models import Booking

_CLOSED_TEXT = {
    "decline": ("declined", "The teacher declined your booking."),
    "cancel": ("cancelled", "You cancelled your booking."),
    "expiry": ("expired", "The teacher did not confirm your booking in time."),
}


def _when(booking: Booking) -> str:
    return booking.scheduled_at.strftime("%Y-%m-%d %H:%M %Z") if booking.scheduled_at else "to be arranged"


def _send(subject: str, body: str, to: str) -> None:
    send_mail(subject=subject, message=body, from_email=None, recipient_list=[to], fail_silently=False)


def _after_commit(fn, booking_id: int, *args) -> None:
    def send():
        booking = Booking.objects.select_related("gig", "student", "teacher", "payment").filter(pk=booking_id).first()
        if booking is not None:
            fn(booking, *args)

    send_after_commit(f"{fn.__name__.strip('_')} (booking {booking_id})", send)


def _new_booking(booking: Booking) -> None:
    payment = booking.payment
    _send(
        f"New booking: {booking.gig.title}",
        f"Hello {booking.teacher.display_name},\n\n{booking.student.display_name} booked and paid for "
        f"\"{booking.gig.title}\" ({payment.amount_cents / 100:.2f} USD; your share "
        f"{payment.teacher_amount_cents / 100:.2f} USD).\nLesson time: {_when(booking)}.\n\n"
        f"Please confirm or decline booking #{booking.pk}. Unanswered bookings are refunded automatically.\n",
        booking.teacher.email,
    )


def _confirmed(booking: Booking) -> None:
    _send(
        f"Booking confirmed: {booking.gig.title}",
        f"Hello {booking.student.display_name},\n\n{booking.teacher.display_name} confirmed your booking "
        f"#{booking.pk} for \"{booking.gig.title}\".\nLesson time: {_when(booking)}.\n",
        booking.student.email,
    )


def _closed(booking: Booking, kind: str) -> None:
    word, sentence = _CLOSED_TEXT.get(kind, ("closed", "Your booking was closed."))
    payment = booking.payment
    _send(
        f"Booking {word}: {booking.gig.title}",
        f"Hello {booking.student.display_name},\n\n{sentence} Booking #{booking.pk} for \"{booking.gig.title}\" "
        f"is {word}.\nThe full amount of {payment.amount_cents / 100:.2f} USD is being refunded to your card "
        f"ending in {payment.card_last4 or '----'}; you will hear when the refund is done.\n",
        booking.student.email,
    )


def booking_created(*, booking_id: int) -> None:
    _after_commit(_new_booking, booking_id)


def booking_confirmed(*, booking_id: int) -> None:
    _after_commit(_confirmed, booking_id)


def booking_closed(*, booking_id: int, kind: str) -> None:
    _after_commit(_closed, booking_id, kind)
