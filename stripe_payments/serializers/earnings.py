"""Output shape of ``GET /stripe-payments/earnings/``: each figure in integer cents (``*_cents``)
and in dollars (the same name without the suffix), as the other payment endpoints show amounts."""

from __future__ import annotations

from rest_framework import serializers

from linguaflex.money import CentsAsDollarsField


class EarningsFiguresSerializer(serializers.Serializer):
    """Totals or one month: what students paid (gross), the platform's fee kept, refunded to
    students, the teacher's net earnings, paid out to the teacher's connected account and still
    owed (for a month: the change of those balances in that month)."""

    gross_cents = serializers.IntegerField(read_only=True)
    platform_fee_cents = serializers.IntegerField(read_only=True)
    refunded_cents = serializers.IntegerField(read_only=True)
    net_cents = serializers.IntegerField(read_only=True)
    paid_out_cents = serializers.IntegerField(read_only=True)
    owed_cents = serializers.IntegerField(read_only=True)
    gross = CentsAsDollarsField(source="gross_cents")
    platform_fee = CentsAsDollarsField(source="platform_fee_cents")
    refunded = CentsAsDollarsField(source="refunded_cents")
    net = CentsAsDollarsField(source="net_cents")
    paid_out = CentsAsDollarsField(source="paid_out_cents")
    owed = CentsAsDollarsField(source="owed_cents")


class EarningsMonthSerializer(EarningsFiguresSerializer):
    month = serializers.CharField(read_only=True, help_text='The calendar month in UTC, "YYYY-MM".')

    def to_representation(self, instance):
        data = super().to_representation(instance)
        return {"month": data.pop("month"), **data}


class EarningsSerializer(serializers.Serializer):
    totals = EarningsFiguresSerializer(read_only=True)
    months = EarningsMonthSerializer(many=True, read_only=True, help_text="Newest month first.")
