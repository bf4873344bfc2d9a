"""The booking admin, through Django's test client: its columns and the payment link."""

from __future__ import annotations

import pytest
from django.contrib import admin as django_admin

from bookings.models import Booking

pytestmark = pytest.mark.django_db

BOOKINGS = "/admin/bookings/booking/"


@pytest.fixture
def staff(client, admin_user):
    client.force_login(admin_user)
    return client


def test_the_booking_changelist_columns_put_the_status_first_after_the_id():
    assert django_admin.site._registry[Booking].list_display == [
        "id", "status", "gig_title", "student", "teacher", "scheduled_at", "created_at"]


def test_the_booking_changelist_shows_a_short_gig_title(staff, make_paid_booking, make_gig, teacher, student):
    gig = make_gig(teacher, title="A very long title for a gig " * 5)
    make_paid_booking(student=student, gig=gig)

    html = staff.get(BOOKINGS).content.decode()

    assert "A very long title for a gig A very long…" in html
    assert gig.title not in html


def test_the_booking_page_links_its_payment_without_raw_cents(staff, make_paid_booking, gig, student):
    booking = make_paid_booking(student=student, gig=gig)

    page = staff.get(f"{BOOKINGS}{booking.pk}/change/")

    assert page.status_code == 200
    html = page.content.decode()
    assert (f'<a href="/admin/stripe_payments/payment/{booking.payment_id}/change/">Payment #{booking.payment_id}</a>'
            in html)
    assert "5000c" not in html
    assert 'name="payment"' not in html and 'name="status"' not in html
