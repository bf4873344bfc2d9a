from django.contrib import admin

from .models import Booking


@admin.register(Booking)
class BookingAdmin(admin.ModelAdmin):
    list_display = ["id", "gig", "student", "teacher", "status", "scheduled_at", "created_at"]
    list_filter = ["status"]
    search_fields = ["student__email", "teacher__email", "gig__title", "payment__stripe_payment_intent_id"]
    list_select_related = ["gig", "student", "teacher"]
    readonly_fields = ["gig", "student", "teacher", "payment", "status", "created_at", "updated_at",
                       "confirmed_at", "completed_at", "closed_at"]

    def has_add_permission(self, request):
        return False  # bookings come only from succeeded payments
