"""Two teachers' clicks on confirm at the same moment: the row lock lets exactly one through."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from bookings import services
from bookings.models import Booking, BookingStatus
from linguaflex.errors import InvalidState


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_confirms_exactly_one_succeeds(student, teacher, gig, make_paid_booking):
    booking = make_paid_booking(student=student, gig=gig)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []
    lock = threading.Lock()

    def confirm():
        try:
            stale = Booking.objects.get(pk=booking.pk)  # both read pending_confirmation
            barrier.wait(timeout=10)
            services.booking_confirm(booking=stale, user=teacher)
            result = "ok"
        except InvalidState:
            result = "invalid_state"
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            result = f"error: {exc!r}"
        finally:
            connection.close()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=confirm) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes) == ["invalid_state", "ok"]
    booking.refresh_from_db()
    assert booking.status == BookingStatus.CONFIRMED
