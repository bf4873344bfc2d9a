"""A gig is a lesson a teacher offers, priced in integer USD cents."""

from __future__ import annotations

from django.conf import settings
from django.db import models

MIN_PRICE_CENTS = 50  # Stripe's minimum charge in USD
MAX_PRICE_CENTS = 1_000_000  # 10,000.00 USD
MIN_DURATION_MINUTES = 15
MAX_DURATION_MINUTES = 240


class Gig(models.Model):
    teacher = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="gigs")
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, max_length=5000)
    language = models.CharField(max_length=64, db_index=True)
    price_cents = models.BigIntegerField()
    currency = models.CharField(max_length=3, default="usd")
    duration_minutes = models.PositiveIntegerField()
    # Inactive gigs are hidden from the catalogue and cannot be paid for; kept for their bookings.
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["is_active", "-created_at"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(price_cents__gte=MIN_PRICE_CENTS, price_cents__lte=MAX_PRICE_CENTS),
                name="gigs_gig_price_range",
            ),
            models.CheckConstraint(
                condition=models.Q(duration_minutes__gte=MIN_DURATION_MINUTES, duration_minutes__lte=MAX_DURATION_MINUTES),
                name="gigs_gig_duration_range",
            ),
            models.CheckConstraint(condition=models.Q(currency="usd"), name="gigs_gig_currency_usd"),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.price_cents / 100:.2f} USD)"
