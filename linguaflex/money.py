"""Money at the API edge: dollars in, integer cents inside, dollars out."""

from __future__ import annotations

import re
from decimal import Decimal

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from rest_framework import serializers

# A string amount is ASCII: Decimal() also takes "٣" (Arabic-Indic 3), " 3 ", "3_000" and "3e2".
# The decimals are counted by DecimalField itself, so that "1.234" says "no more than 2 decimal places".
_DOLLARS = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


def cents_to_dollars(cents: int) -> float:
    """A JSON number with two decimals' worth of precision (50.0 for 5000)."""
    return float(Decimal(cents) / 100)


def dollars_to_cents(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value())


class DollarAmountField(serializers.DecimalField):
    """Accepts "50.00" or 50 or 50.5; more than two decimals is a 400. Returns integer cents.

    A string must be ASCII digits with an optional "." and decimals (and a leading "-" where the
    minimum allows it); the schema states both forms (``DollarAmountFieldExtension``).
    """

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
        if isinstance(data, str):
            if len(data) > self.MAX_STRING_LENGTH:
                self.fail("max_string_length")
            if not _DOLLARS.fullmatch(data):
                self.fail("invalid")
        return super().to_internal_value(data)  # Decimal dollars, at most two decimals

    def run_validation(self, data=serializers.empty):
        # The min/max validators compare dollars, so cents are made only after they have run.
        value = super().run_validation(data)
        return None if value is None else dollars_to_cents(value)

    def to_representation(self, value):
        return cents_to_dollars(value)


class DollarAmountFieldExtension(OpenApiSerializerFieldExtension):
    """The schema of a dollar amount: a string of ASCII digits with at most two decimals, or a JSON
    number that is a multiple of 0.01, within the field's minimum and maximum."""

    target_class = DollarAmountField
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        field: DollarAmountField = self.target
        negative = field.min_value is None or field.min_value < 0
        whole = r"-?[0-9]+" if negative else r"[0-9]+"
        string = {"type": "string", "format": "decimal",
                  "pattern": rf"^{whole}(?:\.[0-9]{{1,{field.decimal_places}}})?$"}
        number: dict = {"type": "number", "multipleOf": float(Decimal(1).scaleb(-field.decimal_places))}
        bounds = []
        if field.min_value is not None:
            number["minimum"] = float(field.min_value)
            bounds.append(f"at least {field.min_value:.2f}")
        if field.max_value is not None:
            number["maximum"] = float(field.max_value)
            bounds.append(f"at most {field.max_value:.2f}")
        description = (f"US dollars as a string (\"50.00\") or a number (50.5), with at most "
                       f"{field.decimal_places} decimals")
        if bounds:
            description += ", " + " and ".join(bounds)
        return {"oneOf": [string, number], "description": description + "."}


class CentsAsDollarsField(serializers.FloatField):
    """Read-only: integer cents out as a JSON number of dollars (5000 -> 50.0)."""

    def __init__(self, **kwargs):
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def to_representation(self, value):
        return cents_to_dollars(value)


def format_dollars(cents: int) -> str:
    """Integer cents as dollars for people to read: 5000 -> "$50.00", 123456 -> "$1,234.56",
    -250 -> "-$2.50". Integer arithmetic only (no float, no rounding)."""
    whole, part = divmod(abs(cents), 100)
    return f"{'-' if cents < 0 else ''}${whole:,}.{part:02d}"


def format_dollars_and_cents(cents: int) -> str:
    """The dollars and the integer the database holds: 5000 -> "$50.00 (5000 cents)"."""
    return f"{format_dollars(cents)} ({cents} cents)"
