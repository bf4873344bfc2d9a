"""A teacher's earnings from the ledger: totals and per calendar month."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from linguaflex.openapi import error_responses

from .. import selectors_ledger
from ..serializers.earnings import EarningsSerializer


class EarningsView(APIView):
    @extend_schema(
        operation_id="earnings",
        responses={200: EarningsSerializer, **error_responses(401, 403)},
    )
    def get(self, request):
        earnings = selectors_ledger.earnings_for_teacher(teacher=request.user)
        return Response(EarningsSerializer(earnings).data)
