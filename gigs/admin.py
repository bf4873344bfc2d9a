from django.contrib import admin
from django.utils.text import Truncator

from linguaflex.money import format_dollars

from .models import MAX_PRICE_CENTS, MIN_PRICE_CENTS, Gig


@admin.register(Gig)
class GigAdmin(admin.ModelAdmin):
    list_display = ["id", "title_short", "teacher", "language", "price", "duration_minutes", "is_active",
                    "created_at"]
    list_filter = ["is_active", "language"]
    search_fields = ["title", "teacher__email"]
    list_select_related = ["teacher"]
    readonly_fields = ["price_detail", "created_at", "updated_at"]

    @admin.display(description="Title", ordering="title")
    def title_short(self, gig: Gig) -> str:
        return Truncator(gig.title).chars(60)

    @admin.display(description="Price", ordering="price_cents")
    def price(self, gig: Gig) -> str:
        return format_dollars(gig.price_cents)

    @admin.display(description="Price in dollars (saved)")
    def price_detail(self, gig: Gig) -> str:
        return f"{format_dollars(gig.price_cents)} ({gig.price_cents} cents)"

    def get_fields(self, request, obj=None):
        # The saved price in dollars right under the cents it is edited in.
        fields = [f for f in super().get_fields(request, obj) if f != "price_detail"]
        if obj is not None and "price_cents" in fields:
            fields.insert(fields.index("price_cents") + 1, "price_detail")
        return fields

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "price_cents":
            kwargs["help_text"] = (f"In US cents, a whole number: 5000 is {format_dollars(5000)}. From "
                                   f"{format_dollars(MIN_PRICE_CENTS)} to {format_dollars(MAX_PRICE_CENTS)}.")
        return super().formfield_for_dbfield(db_field, request, **kwargs)
