"""bookings.services: a booking only for a succeeded payment, and every state transition."""

from __future__ import annotations

from datetime import timedelta
from itertools import product

import pytest
from django.utils import timezone

from bookings import services
from bookings.models import TRANSITIONS, Booking, BookingStatus
from linguaflex.errors import Forbidden, InvalidState
from stripe_payments.models import Payment, PaymentStatus

pytestmark = pytest.mark.django_db

STATES = [s.value for s in BookingStatus]
PAIRS = list(product(STATES, STATES))
ALLOWED = [(src, dst) for src, dst in PAIRS if src in TRANSITIONS.get(dst, ())]
REFUSED = [(src, dst) for src, dst in PAIRS if src not in TRANSITIONS.get(dst, ())]


def _payment(student, gig, status=PaymentStatus.SUCCEEDED, **extra):
    return Payment.objects.create(
        student=student, teacher=gig.teacher, gig=gig, amount_cents=gig.price_cents,
        admin_fee_cents=500, teacher_amount_cents=gig.price_cents - 500, status=status, **extra,
    )


# --- creation ------------------------------------------------------------------------------------
def test_booking_create_for_succeeded_payment_copies_its_parties(student, gig):
    when = timezone.now() + timedelta(days=3)
    payment = _payment(student, gig, scheduled_at=when)

    booking, created = services.booking_create_for_payment(payment=payment)

    assert created is True
    assert (booking.gig_id, booking.student_id, booking.teacher_id, booking.payment_id) == (
        gig.pk, student.pk, gig.teacher_id, payment.pk)
    assert booking.status == BookingStatus.PENDING_CONFIRMATION
    assert booking.scheduled_at == when


def test_booking_create_for_payment_prefers_an_explicit_schedule(student, gig):
    when = timezone.now() + timedelta(days=5)

    booking, _ = services.booking_create_for_payment(payment=_payment(student, gig), scheduled_at=when)

    assert booking.scheduled_at == when


def test_booking_create_for_one_payment_twice_returns_the_same_booking(student, gig):
    payment = _payment(student, gig)

    first, first_created = services.booking_create_for_payment(payment=payment)
    second, second_created = services.booking_create_for_payment(payment=payment)

    assert (first_created, second_created) == (True, False)
    assert first.pk == second.pk
    assert Booking.objects.count() == 1


@pytest.mark.parametrize("status", [s for s in PaymentStatus if s != PaymentStatus.SUCCEEDED])
def test_booking_create_refuses_a_payment_that_has_not_succeeded(student, gig, status):
    payment = _payment(student, gig, status=status)

    with pytest.raises(services.BookingRequiresSucceededPayment):
        services.booking_create_for_payment(payment=payment)

    assert not Booking.objects.exists()


# --- every transition ----------------------------------------------------------------------------
def test_transition_table_matches_the_contract():
    S = BookingStatus
    assert TRANSITIONS[S.CONFIRMED] == {S.PENDING_CONFIRMATION}
    assert TRANSITIONS[S.COMPLETED] == {S.CONFIRMED}
    assert TRANSITIONS[S.DECLINED] == {S.PENDING_CONFIRMATION}
    assert TRANSITIONS[S.CANCELLED] == {S.PENDING_CONFIRMATION}
    assert TRANSITIONS[S.REFUNDED] == {S.PENDING_CONFIRMATION, S.CONFIRMED, S.COMPLETED}
    assert TRANSITIONS[S.DISPUTED] == set(S) - {S.DISPUTED}
    assert S.PENDING_CONFIRMATION not in TRANSITIONS  # only a payment reaches it


@pytest.mark.parametrize(("source", "target"), ALLOWED)
def test_allowed_transition_succeeds_and_stamps_the_time(student, gig, make_paid_booking, source, target):
    booking = make_paid_booking(student=student, gig=gig, status=source)

    result = services.booking_transition(booking_id=booking.pk, to=target)

    booking.refresh_from_db()
    assert result.status == booking.status == target
    stamp = {"confirmed": "confirmed_at", "completed": "completed_at"}.get(target, "closed_at")
    assert getattr(booking, stamp) is not None


@pytest.mark.parametrize(("source", "target"), REFUSED)
def test_wrong_transition_raises_invalid_state_and_changes_nothing(student, gig, make_paid_booking, source, target):
    booking = make_paid_booking(student=student, gig=gig, status=source)

    with pytest.raises(InvalidState) as exc_info:
        services.booking_transition(booking_id=booking.pk, to=target)

    assert exc_info.value.status_code == 409
    assert exc_info.value.code == "invalid_state"
    booking.refresh_from_db()
    assert booking.status == source


def test_transition_to_an_unknown_state_raises_invalid_state(student, gig, make_paid_booking):
    booking = make_paid_booking(student=student, gig=gig)

    with pytest.raises(InvalidState):
        services.booking_transition(booking_id=booking.pk, to="teleported")


def test_lifecycle_pending_confirmed_completed(student, teacher, gig, make_paid_booking):
    booking = make_paid_booking(student=student, gig=gig)

    booking = services.booking_confirm(booking=booking, user=teacher)
    booking = services.booking_complete(booking=booking, user=teacher)

    assert booking.status == BookingStatus.COMPLETED
    assert booking.confirmed_at <= booking.completed_at


@pytest.mark.parametrize("action", ["booking_confirm", "booking_complete"])
@pytest.mark.parametrize("who", ["student", "other_teacher", "admin_user"])
def test_only_the_gigs_teacher_confirms_or_completes(request, student, gig, make_paid_booking, action, who):
    booking = make_paid_booking(student=student, gig=gig, status=BookingStatus.PENDING_CONFIRMATION
                                if action == "booking_confirm" else BookingStatus.CONFIRMED)
    before = booking.status

    with pytest.raises(Forbidden):
        getattr(services, action)(booking=booking, user=request.getfixturevalue(who))

    booking.refresh_from_db()
    assert booking.status == before


def test_confirm_rechecks_the_state_in_the_database_not_the_stale_object(student, teacher, gig, make_paid_booking):
    booking = make_paid_booking(student=student, gig=gig)
    Booking.objects.filter(pk=booking.pk).update(status=BookingStatus.CANCELLED)

    with pytest.raises(InvalidState):
        services.booking_confirm(booking=booking, user=teacher)  # booking.status is stale
