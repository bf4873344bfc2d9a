"""The card endpoints: add (and verify) a card, list, make default, delete."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from linguaflex.openapi import IDEMPOTENCY_HEADER, PAGE_PARAMETERS, error_responses, success_serializer
from linguaflex.pagination import StandardPagination, paginated_response
from linguaflex.throttling import PaymentThrottle

from .. import selectors
from ..idempotency import idempotency_key, idempotent
from ..serializers.cards import (
    AddPaymentMethodInputSerializer,
    AddPaymentMethodOutputSerializer,
    SavedPaymentMethodSerializer,
)
from ..services import cards
from .common import PAYMENT_WRITE_ERRORS


class AddPaymentMethodView(APIView):
    throttle_classes = [PaymentThrottle]

    @extend_schema(
        operation_id="payment_methods_add",
        parameters=[IDEMPOTENCY_HEADER],
        request=AddPaymentMethodInputSerializer,
        responses={200: AddPaymentMethodOutputSerializer, **PAYMENT_WRITE_ERRORS},
    )
    @idempotent("add-payment-method")
    def post(self, request):
        serializer = AddPaymentMethodInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        added = cards.payment_method_add(user=request.user, idempotency_key=idempotency_key(request),
                                         **serializer.validated_data)
        return Response(AddPaymentMethodOutputSerializer(added).data)


class PaymentMethodListView(APIView):
    pagination_class = StandardPagination

    @extend_schema(
        operation_id="payment_methods_list",
        parameters=PAGE_PARAMETERS,
        responses={200: SavedPaymentMethodSerializer(many=True), **error_responses(400, 401, 404)},
    )
    def get(self, request):
        saved = selectors.saved_payment_method_list(user=request.user)
        return paginated_response(request, self, saved, SavedPaymentMethodSerializer)


class PaymentMethodDefaultView(APIView):
    throttle_classes = [PaymentThrottle]

    @extend_schema(operation_id="payment_methods_set_default", request=None,
                   responses={200: SavedPaymentMethodSerializer, **error_responses(401, 404, 429)})
    def post(self, request, payment_method_id: str):
        saved = cards.payment_method_set_default(user=request.user, payment_method_id=payment_method_id)
        return Response(SavedPaymentMethodSerializer(saved).data)


class PaymentMethodDeleteView(APIView):
    throttle_classes = [PaymentThrottle]

    @extend_schema(operation_id="payment_methods_delete",
                   responses={200: success_serializer("PaymentMethodDeleted"),
                              **error_responses(401, 404, 429, 502, 503, 504)})
    def delete(self, request, payment_method_id: str):
        cards.payment_method_delete(user=request.user, payment_method_id=payment_method_id)
        return Response({"success": True})
