"""Input and output shapes of the payment endpoints. Card fields are write-only."""

from __future__ import annotations

from django.utils import timezone
from rest_framework import serializers

from linguaflex.fields import AsciiIntegerField, DocumentedCharField, IdField, QuerySerializer
from linguaflex.money import cents_to_dollars

from .cards import (
    CARD_NUMBER_PATTERN,
    CVC_PATTERN,
    MAX_EXPIRY_YEARS_AHEAD,
    CardInput,
    card_errors,
    normalize_number,
)
from .models import Payment, PaymentStatus, SavedPaymentMethod


def _expiry_year_schema() -> dict:
    """The years card_errors accepts, as of the day the schema is built."""
    year = timezone.now().year
    return {
        "minimum": year, "maximum": year + MAX_EXPIRY_YEARS_AHEAD,
        "description": f"A 4-digit year, not in the past (with exp_month, not before this month), "
                       f"at most {MAX_EXPIRY_YEARS_AHEAD} years ahead.",
    }


class CardDetailsSerializer(serializers.Serializer):
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

    def validate(self, attrs):
        number = normalize_number(attrs["card_number"])
        errors = card_errors(number=number, exp_month=attrs["exp_month"], exp_year=attrs["exp_year"], cvc=attrs["cvc"])
        if errors:
            raise serializers.ValidationError(errors)
        return CardInput(number=number, exp_month=attrs["exp_month"], exp_year=attrs["exp_year"], cvc=attrs["cvc"],
                         cardholder_name=attrs.get("cardholder_name", ""))


class AddPaymentMethodInputSerializer(CardDetailsSerializer):
    save_for_future = serializers.BooleanField(required=False, default=True)

    def validate(self, attrs):
        save = attrs.pop("save_for_future", True)
        return {"card": super().validate(attrs), "save_for_future": save}


class AddPaymentMethodOutputSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    message = serializers.CharField()
    payment_method_id = serializers.CharField()
    card_last4 = serializers.CharField()
    card_brand = serializers.CharField()
    exp_month = serializers.IntegerField()
    exp_year = serializers.IntegerField()
    saved = serializers.BooleanField()


class AwareDateTimeField(serializers.DateTimeField):
    """A datetime that must carry its timezone: DRF would silently make a naive one aware in
    TIME_ZONE, so the contract's "naive is 400" has to be checked here, before that happens."""

    def enforce_timezone(self, value):
        if timezone.is_naive(value):
            raise serializers.ValidationError("Give a timezone, e.g. 2030-01-01T10:00:00Z.")
        return super().enforce_timezone(value)


class ProcessPaymentInputSerializer(serializers.Serializer):
    gig_id = IdField()
    card_details = CardDetailsSerializer(required=False)
    saved_payment_method_id = serializers.CharField(required=False, max_length=255)
    payment_method_id = serializers.CharField(required=False, max_length=255)
    save_card = serializers.BooleanField(required=False, default=False)
    scheduled_at = AwareDateTimeField(required=False, allow_null=True, default=None)

    def validate_scheduled_at(self, value):
        if value is None:
            return value
        if value <= timezone.now():
            raise serializers.ValidationError("The lesson must be scheduled in the future.")
        return value

    def validate(self, attrs):
        sources = [name for name in ("card_details", "saved_payment_method_id", "payment_method_id") if attrs.get(name)]
        if len(sources) != 1:
            message = "Send exactly one of card_details, saved_payment_method_id or payment_method_id."
            raise serializers.ValidationError({name: [message] for name in (sources or ["card_details"])})
        return attrs


class ProcessPaymentOutputSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    message = serializers.CharField()
    payment_id = serializers.IntegerField()
    payment_intent_id = serializers.CharField(allow_null=True)
    amount = serializers.FloatField()
    amount_cents = serializers.IntegerField()
    currency = serializers.CharField()
    status = serializers.ChoiceField(choices=PaymentStatus.choices)
    booking_id = serializers.IntegerField(allow_null=True)
    payment_method_saved = serializers.BooleanField()
    card_brand = serializers.CharField(allow_blank=True)
    card_last4 = serializers.CharField(allow_blank=True)


def booking_id_of(payment: Payment) -> int | None:
    try:
        return payment.booking.pk
    except Payment.booking.RelatedObjectDoesNotExist:
        return None


def process_payment_body(payment: Payment, *, saved: bool) -> dict:
    booking_id = booking_id_of(payment)
    succeeded = payment.status == PaymentStatus.SUCCEEDED
    return {
        "success": succeeded,
        "message": "Payment processed successfully" if succeeded else f"Payment is {payment.status}",
        "payment_id": payment.pk,
        "payment_intent_id": payment.stripe_payment_intent_id,
        "amount": cents_to_dollars(payment.amount_cents),
        "amount_cents": payment.amount_cents,
        "currency": payment.currency,
        "status": payment.status,
        "booking_id": booking_id,
        "payment_method_saved": saved,
        "card_brand": payment.card_brand,
        "card_last4": payment.card_last4,
    }


class SavedPaymentMethodSerializer(serializers.ModelSerializer):
    payment_method_id = serializers.CharField(source="stripe_payment_method_id")
    card_brand = serializers.CharField(source="brand")
    card_last4 = serializers.CharField(source="last4")

    class Meta:
        model = SavedPaymentMethod
        fields = ["payment_method_id", "card_brand", "card_last4", "exp_month", "exp_year", "is_default", "created_at"]
        read_only_fields = fields


class PaymentSerializer(serializers.ModelSerializer):
    amount = serializers.SerializerMethodField()
    payment_intent_id = serializers.CharField(source="stripe_payment_intent_id", allow_null=True)
    booking_id = serializers.SerializerMethodField()
    gig_id = serializers.IntegerField()
    gig_title = serializers.CharField(source="gig.title")
    student_id = serializers.IntegerField()
    teacher_id = serializers.IntegerField()

    class Meta:
        model = Payment
        fields = [
            "id", "amount", "amount_cents", "currency", "status", "admin_fee_cents", "teacher_amount_cents",
            "refunded_cents", "refunded_admin_fee_cents", "refunded_teacher_cents", "card_brand", "card_last4",
            "payment_intent_id", "booking_id", "gig_id", "gig_title", "student_id", "teacher_id",
            "failure_code", "failure_message", "created_at",
        ]
        read_only_fields = fields

    def get_amount(self, payment: Payment) -> float:
        return cents_to_dollars(payment.amount_cents)

    def get_booking_id(self, payment: Payment) -> int | None:
        return booking_id_of(payment)


class PaymentListQuerySerializer(QuerySerializer):
    status = serializers.ChoiceField(choices=PaymentStatus.choices, required=False)


class CreatePaymentIntentInputSerializer(serializers.Serializer):
    gig_id = IdField()


class CreatePaymentIntentOutputSerializer(serializers.Serializer):
    payment_id = serializers.IntegerField()
    payment_intent_id = serializers.CharField()
    client_secret = serializers.CharField()
    amount = serializers.FloatField()
    amount_cents = serializers.IntegerField()
    currency = serializers.CharField()


class ConfirmPaymentInputSerializer(serializers.Serializer):
    payment_intent_id = serializers.CharField(max_length=255)
