"""Refund requests (students), decisions and direct refunds (admins)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from linguaflex.openapi import IDEMPOTENCY_HEADER, PAGE_PARAMETERS, error_responses
from linguaflex.pagination import StandardPagination, paginated_response
from linguaflex.throttling import PaymentThrottle

from .. import selectors
from ..idempotency import idempotent
from ..serializers.refunds import (
    RefundApproveInputSerializer,
    RefundCreateInputSerializer,
    RefundListQuerySerializer,
    RefundRejectInputSerializer,
    RefundRequestSerializer,
)
from ..services import refunds


def _create_refund(request, create) -> Response:
    """Validate, find the visible payment, create the refund request; 201 with the request."""
    serializer = RefundCreateInputSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    data = serializer.validated_data
    payment = selectors.payment_get_visible(user=request.user, payment_id=data["payment_id"])
    refund = create(request.user, payment=payment, amount_cents=data.get("amount"), reason=data.get("reason", ""))
    return Response(RefundRequestSerializer(refund).data, status=status.HTTP_201_CREATED)


class RefundListCreateView(APIView):
    pagination_class = StandardPagination
    throttle_classes = [PaymentThrottle]

    @extend_schema(
        operation_id="refunds_list",
        parameters=[RefundListQuerySerializer, *PAGE_PARAMETERS],
        responses={200: RefundRequestSerializer(many=True), **error_responses(400, 401, 404)},
    )
    def get(self, request):
        query = RefundListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        items = selectors.refund_request_list(user=request.user, status=query.validated_data.get("status"))
        return paginated_response(request, self, items, RefundRequestSerializer)

    @extend_schema(
        operation_id="refunds_request",
        parameters=[IDEMPOTENCY_HEADER],
        request=RefundCreateInputSerializer,
        responses={201: RefundRequestSerializer, **error_responses(400, 401, 403, 404, 409, 413, 415, 429)},
    )
    @idempotent("refund-request")
    def post(self, request):
        return _create_refund(request, lambda user, **kw: refunds.refund_request_create(student=user, **kw))


class AdminRefundCreateView(APIView):
    throttle_classes = [PaymentThrottle]

    @extend_schema(
        operation_id="refunds_admin_create",
        parameters=[IDEMPOTENCY_HEADER],
        request=RefundCreateInputSerializer,
        responses={201: RefundRequestSerializer,
                   **error_responses(400, 401, 403, 404, 409, 413, 415, 429, 502, 503, 504)},
    )
    @idempotent("admin-refund")
    def post(self, request):
        return _create_refund(request, lambda user, **kw: refunds.admin_refund_create(admin=user, **kw))


class RefundApproveView(APIView):
    throttle_classes = [PaymentThrottle]

    @extend_schema(
        operation_id="refunds_approve",
        request=RefundApproveInputSerializer,
        responses={200: RefundRequestSerializer,
                   **error_responses(400, 401, 403, 404, 409, 413, 415, 429, 502, 503, 504)},
    )
    def post(self, request, refund_id: int):
        selectors.refund_request_get_visible(user=request.user, refund_id=refund_id)
        serializer = RefundApproveInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        refund = refunds.refund_request_approve(admin=request.user, refund_request_id=refund_id,
                                                note=serializer.validated_data.get("note", ""))
        return Response(RefundRequestSerializer(refund).data)


class RefundRejectView(APIView):
    throttle_classes = [PaymentThrottle]

    @extend_schema(
        operation_id="refunds_reject",
        request=RefundRejectInputSerializer,
        responses={200: RefundRequestSerializer, **error_responses(400, 401, 403, 404, 409, 413, 415, 429)},
    )
    def post(self, request, refund_id: int):
        selectors.refund_request_get_visible(user=request.user, refund_id=refund_id)
        serializer = RefundRejectInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        refund = refunds.refund_request_reject(admin=request.user, refund_request_id=refund_id,
                                               note=serializer.validated_data.get("note", ""))
        return Response(RefundRequestSerializer(refund).data)
