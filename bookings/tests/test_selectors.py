"""bookings.selectors: every read scoped to the user, in a fixed number of queries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bookings import selectors
from bookings.models import Booking, BookingStatus
from bookings.serializers import BookingOutputSerializer
from linguaflex.errors import NotFound

pytestmark = pytest.mark.django_db


def test_booking_list_for_student_is_own(student, other_student, gig, make_paid_booking):
    mine = make_paid_booking(student=student, gig=gig)
    make_paid_booking(student=other_student, gig=gig)

    assert list(selectors.booking_list(user=student)) == [mine]


def test_booking_list_for_teacher_is_own_gigs(teacher, other_teacher, student, gig, make_gig, make_paid_booking):
    own = make_paid_booking(student=student, gig=gig)
    make_paid_booking(student=student, gig=make_gig(other_teacher))

    assert list(selectors.booking_list(user=teacher)) == [own]


def test_booking_list_for_admin_is_all(admin_user, student, other_student, gig, make_paid_booking):
    bookings = [make_paid_booking(student=student, gig=gig), make_paid_booking(student=other_student, gig=gig)]

    assert list(selectors.booking_list(user=admin_user)) == bookings[::-1]


def test_booking_list_filters_by_status(student, gig, make_paid_booking):
    make_paid_booking(student=student, gig=gig)
    done = make_paid_booking(student=student, gig=gig, status=BookingStatus.COMPLETED)

    assert list(selectors.booking_list(user=student, status=BookingStatus.COMPLETED)) == [done]


def test_booking_get_visible_hides_others_bookings(other_student, other_teacher, student, gig, make_paid_booking):
    booking = make_paid_booking(student=student, gig=gig)

    for user in (other_student, other_teacher):
        with pytest.raises(NotFound):
            selectors.booking_get_visible(user=user, booking_id=booking.pk)


def test_booking_list_serializes_in_a_fixed_number_of_queries(admin_user, make_user, make_gig, make_paid_booking):
    def count_for(n: int) -> int:
        for _ in range(n):
            make_paid_booking(student=make_user("student"), gig=make_gig(make_user("teacher")))
        with CaptureQueriesContext(connection) as ctx:
            BookingOutputSerializer(selectors.booking_list(user=admin_user), many=True).data  # noqa: B018
        return len(ctx.captured_queries)

    assert count_for(2) == count_for(8) == 1


def test_bookings_pending_confirmation_before_cutoff(student, gig, make_paid_booking):
    old = make_paid_booking(student=student, gig=gig)
    Booking.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=49))
    make_paid_booking(student=student, gig=gig)  # recent
    stale_confirmed = make_paid_booking(student=student, gig=gig, status=BookingStatus.CONFIRMED)
    Booking.objects.filter(pk=stale_confirmed.pk).update(created_at=timezone.now() - timedelta(hours=49))

    cutoff = timezone.now() - timedelta(hours=48)

    assert list(selectors.bookings_pending_confirmation_before(cutoff=cutoff)) == [old]
