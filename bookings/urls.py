from django.urls import path

from . import views

app_name = "bookings"

urlpatterns = [
    path("", views.BookingListView.as_view(), name="list"),
    path("<int:booking_id>/", views.BookingDetailView.as_view(), name="detail"),
    path("<int:booking_id>/confirm/", views.BookingConfirmView.as_view(), name="confirm"),
    path("<int:booking_id>/complete/", views.BookingCompleteView.as_view(), name="complete"),
]
