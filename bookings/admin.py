from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import Truncator

from .models import Booking


@admin.register(Booking)
class BookingAdmin(admin.ModelAdmin):
    # The status second, so that it is on screen at any width; a booking has no amount of its own
    # (its payment's, in dollars, is on the payment's page).
    list_display = ["id", "status", "gig_title", "student", "teacher", "scheduled_at", "created_at"]
    list_filter = ["status"]
    search_fields = ["student__email", "teacher__email", "gig__title", "payment__stripe_payment_intent_id"]
    list_select_related = ["gig", "student", "teacher"]
    readonly_fields = ["gig", "student", "teacher", "payment", "payment_link", "status", "created_at", "updated_at",
                       "confirmed_at", "completed_at", "closed_at"]

    @admin.display(description="Gig", ordering="gig__title")
    def gig_title(self, booking: Booking) -> str:
        return Truncator(booking.gig.title).chars(40)

    @admin.display(description="Payment")
    def payment_link(self, booking: Booking) -> str:
        url = reverse("admin:stripe_payments_payment_change", args=[booking.payment_id])
        return format_html('<a href="{}">Payment #{}</a>', url, booking.payment_id)

    def get_fields(self, request, obj=None):
        # The payment as a link to its page: its __str__ shows raw cents.
        fields = [f for f in super().get_fields(request, obj) if f != "payment_link"]
        return [("payment_link" if f == "payment" else f) for f in fields]

    def has_add_permission(self, request):
        return False  # bookings come only from succeeded payments
