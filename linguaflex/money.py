"""Money at the API edge: dollars in, integer cents inside, dollars out."""

from __future__ import annotations

from decimal import Decimal

from rest_framework import serializers


def cents_to_dollars(cents: int) -> float:
    """A JSON number with two decimals' worth of precision (50.0 for 5000)."""
    return float(Decimal(cents) / 100)


def dollars_to_cents(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value())


class DollarAmountField(serializers.DecimalField):
    """Accepts "50.00" or 50 or 50.5; more than two decimals is a 400. Returns integer cents."""

    def __init__(self, *, min_cents: int | None = None, max_cents: int | None = None, **kwargs):
        kwargs.setdefault("max_digits", 12)
        kwargs.setdefault("decimal_places", 2)
        if min_cents is not None:
            kwargs["min_value"] = Decimal(min_cents) / 100
        if max_cents is not None:
            kwargs["max_value"] = Decimal(max_cents) / 100
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, bool):
            self.fail("invalid")
        return super().to_internal_value(data)  # Decimal dollars, at most two decimals

    def run_validation(self, data=serializers.empty):
        # The min/max validators compare dollars, so cents are made only after they have run.
        value = super().run_validation(data)
        return None if value is None else dollars_to_cents(value)

    def to_representation(self, value):
        return cents_to_dollars(value)
