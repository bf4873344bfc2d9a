"""Input and output shapes of the card endpoints. Card numbers and CVCs are write-only."""

from __future__ import annotations

from django.utils import timezone
from rest_framework import serializers

from linguaflex.fields import AllErrorsSerializer, AsciiIntegerField, DocumentedCharField

from ..cards import (
    CARD_NUMBER_PATTERN,
    CVC_PATTERN,
    MAX_EXPIRY_YEARS_AHEAD,
    CardInput,
    card_errors,
    normalize_number,
)
from ..models import SavedPaymentMethod


def _expiry_year_schema() -> dict:
    """The years card_errors accepts, as of the day the schema is built."""
    year = timezone.now().year
    return {
        "minimum": year, "maximum": year + MAX_EXPIRY_YEARS_AHEAD,
        "description": f"A 4-digit year, not in the past (with exp_month, not before this month), "
                       f"at most {MAX_EXPIRY_YEARS_AHEAD} years ahead.",
    }


class CardDetailsSerializer(AllErrorsSerializer):
    # The formats are checked in validate() (card_errors), so that every card field's error is
    # reported at once; the schema states them. No trimming: the patterns say where a space may be
    # (anywhere in a card number, as a separator; nowhere in a CVC).
    card_number = DocumentedCharField(
        write_only=True, max_length=32, trim_whitespace=False,
        schema_extra={"pattern": CARD_NUMBER_PATTERN,
                      "description": "13 to 19 ASCII digits; spaces and dashes among them are ignored. "
                                     "The number must pass the Luhn check."},
    )
    exp_month = AsciiIntegerField(min_value=1, max_value=12,
                                  schema_extra={"description": "1 to 12; with exp_year, not in the past."})
    exp_year = AsciiIntegerField(min_value=2000, max_value=2200, schema_extra=_expiry_year_schema)
    cvc = DocumentedCharField(
        write_only=True, max_length=8, trim_whitespace=False,
        schema_extra={"pattern": CVC_PATTERN, "description": "3 ASCII digits; 4 for American Express."},
    )
    cardholder_name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")

    def cross_field_errors(self, attrs):
        number = attrs.get("card_number")
        return card_errors(number=None if number is None else normalize_number(number), exp_month=attrs.get("exp_month"),
                           exp_year=attrs.get("exp_year"), cvc=attrs.get("cvc"))

    def validate(self, attrs):
        attrs = super().validate(attrs)
        return CardInput(number=normalize_number(attrs["card_number"]), exp_month=attrs["exp_month"],
                         exp_year=attrs["exp_year"], cvc=attrs["cvc"], cardholder_name=attrs.get("cardholder_name", ""))


class AddPaymentMethodInputSerializer(CardDetailsSerializer):
    save_for_future = serializers.BooleanField(required=False, default=True)

    def validate(self, attrs):
        save = attrs.pop("save_for_future", True)
        return {"card": super().validate(attrs), "save_for_future": save}


class AddPaymentMethodOutputSerializer(serializers.Serializer):
    """Renders a ``services.cards.AddedCard``."""

    success = serializers.BooleanField()
    message = serializers.CharField()
    payment_method_id = serializers.CharField()
    card_last4 = serializers.CharField(source="last4")
    card_brand = serializers.CharField(source="brand")
    exp_month = serializers.IntegerField()
    exp_year = serializers.IntegerField()
    saved = serializers.BooleanField()


class SavedPaymentMethodSerializer(serializers.ModelSerializer):
    payment_method_id = serializers.CharField(source="stripe_payment_method_id")
    card_brand = serializers.CharField(source="brand")
    card_last4 = serializers.CharField(source="last4")

    class Meta:
        model = SavedPaymentMethod
        fields = ["payment_method_id", "card_brand", "card_last4", "exp_month", "exp_year", "is_default", "created_at"]
        read_only_fields = fields
