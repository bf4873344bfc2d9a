from __future__ import annotations

from rest_framework import serializers

from linguaflex.fields import AsciiIntegerField, IdField, QuerySerializer
from linguaflex.money import DollarAmountField, cents_to_dollars

from .models import MAX_DURATION_MINUTES, MAX_PRICE_CENTS, MIN_DURATION_MINUTES, MIN_PRICE_CENTS, Gig


class GigOutputSerializer(serializers.ModelSerializer):
    price = serializers.SerializerMethodField()
    teacher_id = serializers.IntegerField(read_only=True)
    teacher_name = serializers.CharField(source="teacher.display_name", read_only=True)

    class Meta:
        model = Gig
        fields = [
            "id", "title", "description", "language", "price", "price_cents", "currency",
            "duration_minutes", "teacher_id", "teacher_name", "is_active", "created_at",
        ]
        read_only_fields = fields

    def get_price(self, gig: Gig) -> float:
        return cents_to_dollars(gig.price_cents)


class GigInputSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    description = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")
    language = serializers.CharField(max_length=64)
    price = DollarAmountField(min_cents=MIN_PRICE_CENTS, max_cents=MAX_PRICE_CENTS)
    duration_minutes = AsciiIntegerField(min_value=MIN_DURATION_MINUTES, max_value=MAX_DURATION_MINUTES)


class GigUpdateSerializer(GigInputSerializer):
    is_active = serializers.BooleanField(required=False)

    def __init__(self, *args, **kwargs):
        kwargs["partial"] = True
        super().__init__(*args, **kwargs)


class GigListQuerySerializer(QuerySerializer):
    language = serializers.CharField(required=False, max_length=64)
    teacher = IdField(required=False)
    mine = serializers.BooleanField(required=False, default=False)
    ordering = serializers.ChoiceField(required=False, choices=["price", "-price", "created_at", "-created_at"])
