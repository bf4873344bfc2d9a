"""The bookings URLs whose actions move money (included under /bookings/ by linguaflex/urls.py)."""

from django.urls import path

from .views import bookings

app_name = "booking_refunds"

urlpatterns = [
    path("<int:booking_id>/decline/", bookings.BookingDeclineView.as_view(), name="decline"),
    path("<int:booking_id>/cancel/", bookings.BookingCancelView.as_view(), name="cancel"),
]
