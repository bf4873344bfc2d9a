"""The booking decline and cancel endpoints (views/bookings.py: they keep the /bookings/ URLs and move
money): roles, the full refund, a booking no longer pending, through the API against the in-process
Stripe emulator."""

from __future__ import annotations

import pytest

from bookings.models import Booking, BookingStatus
from stripe_payments.models import PaymentStatus

from .conftest import error_of, refund_posts

pytestmark = [pytest.mark.django_db, pytest.mark.emulator]


def decline_url(booking_id: int) -> str:
    return f"/bookings/{booking_id}/decline/"


def cancel_url(booking_id: int) -> str:
    return f"/bookings/{booking_id}/cancel/"


# --- decline and cancel ----------------------------------------------------------------------------
def test_the_teacher_declines_and_the_payment_is_refunded_in_full(paid, client_for, teacher, stripe_emulator):
    payment = paid()
    booking = Booking.objects.get(payment=payment)
    response = client_for(teacher).post(decline_url(booking.pk))
    assert response.status_code == 200
    assert response.json()["status"] == "declined"
    assert response.json()["id"] == booking.pk
    payment.refresh_from_db()
    assert (payment.status, payment.refunded_cents) == (PaymentStatus.REFUNDED, payment.amount_cents)
    assert len(refund_posts(stripe_emulator)) == 1

    again = client_for(teacher).post(decline_url(booking.pk))
    assert again.status_code == 409
    assert error_of(again)["code"] == "invalid_state"
    assert len(refund_posts(stripe_emulator)) == 1


def test_the_student_cancels_and_the_payment_is_refunded_in_full(paid, client_for, student, stripe_emulator):
    payment = paid()
    booking = Booking.objects.get(payment=payment)
    response = client_for(student).post(cancel_url(booking.pk))
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.REFUNDED
    assert client_for(student).post(cancel_url(booking.pk)).status_code == 409
    assert len(refund_posts(stripe_emulator)) == 1


@pytest.mark.parametrize(("action", "who", "status"), [
    (decline_url, "student", 403), (decline_url, "admin_user", 403),
    (decline_url, "other_teacher", 404), (decline_url, "other_student", 404),
    (cancel_url, "teacher", 403), (cancel_url, "admin_user", 403),
    (cancel_url, "other_teacher", 404), (cancel_url, "other_student", 404),
])
def test_decline_and_cancel_roles(action, who, status, request, paid, client_for, stripe_emulator):
    payment = paid()
    booking = Booking.objects.get(payment=payment)
    response = client_for(request.getfixturevalue(who)).post(action(booking.pk))
    assert response.status_code == status
    booking.refresh_from_db()
    assert booking.status == BookingStatus.PENDING_CONFIRMATION
    assert refund_posts(stripe_emulator) == []


@pytest.mark.parametrize(("action", "who"), [(decline_url, "teacher"), (cancel_url, "student")])
def test_declining_or_cancelling_a_confirmed_booking_is_409(action, who, request, paid, client_for, teacher,
                                                            stripe_emulator):
    payment = paid()
    booking = Booking.objects.get(payment=payment)
    assert client_for(teacher).post(f"/bookings/{booking.pk}/confirm/").status_code == 200
    response = client_for(request.getfixturevalue(who)).post(action(booking.pk))
    assert response.status_code == 409
    assert error_of(response)["code"] == "invalid_state"
    assert refund_posts(stripe_emulator) == []


def test_decline_of_an_unknown_booking_is_404(client_for, teacher):
    assert client_for(teacher).post(decline_url(999999)).status_code == 404
