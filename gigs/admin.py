from django.contrib import admin

from .models import Gig


@admin.register(Gig)
class GigAdmin(admin.ModelAdmin):
    list_display = ["id", "title", "teacher", "language", "price_cents", "duration_minutes", "is_active", "created_at"]
    list_filter = ["is_active", "language"]
    search_fields = ["title", "teacher__email"]
    list_select_related = ["teacher"]
    readonly_fields = ["created_at", "updated_at"]
