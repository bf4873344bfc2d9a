"""Input and output shapes of the refund endpoints."""

from __future__ import annotations

from rest_framework import serializers

from linguaflex.fields import IdField, QuerySerializer
from linguaflex.money import DollarAmountField, cents_to_dollars

from ..models import RefundRequest, RefundRequestStatus


class RefundRequestSerializer(serializers.ModelSerializer):
    payment_id = serializers.IntegerField()
    amount = serializers.SerializerMethodField()
    requested_by = serializers.IntegerField(source="requested_by_id")
    decided_by = serializers.IntegerField(source="decided_by_id", allow_null=True)

    class Meta:
        model = RefundRequest
        fields = ["id", "payment_id", "amount", "amount_cents", "status", "kind", "reason", "decision_note",
                  "failure_reason", "requested_by", "decided_by", "decided_at", "created_at"]
        read_only_fields = fields

    def get_amount(self, refund: RefundRequest) -> float:
        return cents_to_dollars(refund.amount_cents)


class RefundCreateInputSerializer(serializers.Serializer):
    payment_id = IdField()
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    amount = DollarAmountField(min_cents=1, max_cents=1_000_000, required=False, allow_null=True, default=None)


class RefundRejectInputSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class RefundApproveInputSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class RefundListQuerySerializer(QuerySerializer):
    status = serializers.ChoiceField(choices=RefundRequestStatus.choices, required=False)
