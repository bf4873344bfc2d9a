"""Input and output shapes of the payment endpoints. Card fields are write-only."""

from __future__ import annotations

from django.utils import timezone
from rest_framework import serializers

from linguaflex.fields import AllErrorsSerializer, IdField, QuerySerializer
from linguaflex.money import CentsAsDollarsField

from ..models import Payment, PaymentStatus
from ..selectors import booking_id_of
from .cards import CardDetailsSerializer


class AwareDateTimeField(serializers.DateTimeField):
    """A datetime that must carry its timezone: DRF would silently make a naive one aware in
    TIME_ZONE, so the contract's "naive is 400" has to be checked here, before that happens."""

    def enforce_timezone(self, value):
        if timezone.is_naive(value):
            raise serializers.ValidationError("Give a timezone, e.g. 2030-01-01T10:00:00Z.")
        return super().enforce_timezone(value)


class ProcessPaymentInputSerializer(AllErrorsSerializer):
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

    def cross_field_errors(self, attrs):
        sources = [name for name in ("card_details", "saved_payment_method_id", "payment_method_id") if attrs.get(name)]
        if len(sources) != 1:
            message = "Send exactly one of card_details, saved_payment_method_id or payment_method_id."
            return {name: [message] for name in (sources or ["card_details"])}
        return {}


class ProcessPaymentOutputSerializer(serializers.Serializer):
    """Renders a ``services.payments.PaymentOutcome`` (process-payment and confirm-payment)."""

    success = serializers.BooleanField()
    message = serializers.CharField()
    payment_id = serializers.IntegerField(source="payment.pk")
    payment_intent_id = serializers.CharField(source="payment.stripe_payment_intent_id", allow_null=True)
    amount = CentsAsDollarsField(source="payment.amount_cents")
    amount_cents = serializers.IntegerField(source="payment.amount_cents")
    currency = serializers.CharField(source="payment.currency")
    status = serializers.ChoiceField(source="payment.status", choices=PaymentStatus.choices)
    booking_id = serializers.IntegerField(allow_null=True)
    payment_method_saved = serializers.BooleanField()
    card_brand = serializers.CharField(source="payment.card_brand", allow_blank=True)
    card_last4 = serializers.CharField(source="payment.card_last4", allow_blank=True)


class PaymentSerializer(serializers.ModelSerializer):
    amount = CentsAsDollarsField(source="amount_cents")
    payment_intent_id = serializers.CharField(source="stripe_payment_intent_id", allow_null=True)
    booking_id = serializers.SerializerMethodField()
    gig_id = serializers.IntegerField()
    gig_title = serializers.CharField(source="gig.title")
    student_id = serializers.IntegerField()
    teacher_id = serializers.IntegerField()
    charged = serializers.BooleanField(help_text="The card was charged, so the split moved money (succeeded, "
                                                 "partially_refunded, refunded, disputed). Otherwise admin_fee_cents "
                                                 "and teacher_amount_cents are the intended split only.")

    class Meta:
        model = Payment
        fields = [
            "id", "amount", "amount_cents", "currency", "status", "charged", "admin_fee_cents", "teacher_amount_cents",
            "refunded_cents", "refunded_admin_fee_cents", "refunded_teacher_cents", "card_brand", "card_last4",
            "payment_intent_id", "booking_id", "gig_id", "gig_title", "student_id", "teacher_id",
            "failure_code", "failure_message", "created_at",
        ]
        read_only_fields = fields

    def get_booking_id(self, payment: Payment) -> int | None:
        return booking_id_of(payment)


class PaymentListQuerySerializer(QuerySerializer):
    status = serializers.ChoiceField(choices=PaymentStatus.choices, required=False)


class CreatePaymentIntentInputSerializer(serializers.Serializer):
    gig_id = IdField()


class CreatePaymentIntentOutputSerializer(serializers.Serializer):
    """Renders a ``services.payments.CreatedIntent``."""

    payment_id = serializers.IntegerField(source="payment.pk")
    payment_intent_id = serializers.CharField(source="payment.stripe_payment_intent_id")
    client_secret = serializers.CharField()
    amount = CentsAsDollarsField(source="payment.amount_cents")
    amount_cents = serializers.IntegerField(source="payment.amount_cents")
    currency = serializers.CharField(source="payment.currency")


class ConfirmPaymentInputSerializer(serializers.Serializer):
    payment_intent_id = serializers.CharField(max_length=255)


class _ReturnOutputSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    status = serializers.CharField()
    message = serializers.CharField()


class PaymentReturnOutputSerializer(_ReturnOutputSerializer):
    """The 3-D Secure return page's JSON for a payment (``services.payments.PaymentReturn``)."""

    kind = serializers.ChoiceField(choices=["payment"])
    payment_id = serializers.IntegerField(source="payment.pk")
    booking_id = serializers.IntegerField(allow_null=True)


class CardReturnOutputSerializer(_ReturnOutputSerializer):
    """The 3-D Secure return page's JSON for a card set-up (``services.cards.CardReturn``)."""

    kind = serializers.ChoiceField(choices=["card"])
    saved = serializers.BooleanField()
    payment_method_id = serializers.CharField(allow_null=True)
