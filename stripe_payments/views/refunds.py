"""Refund requests (students), decisions and direct refunds (admins), and the Stripe webhook."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers as drf_serializers
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from linguaflex.errors import DomainError, Forbidden
from linguaflex.openapi import IDEMPOTENCY_HEADER, PAGE_PARAMETERS, STRIPE_SIGNATURE_HEADER, error_responses
from linguaflex.pagination import StandardPagination, paginated_response
from linguaflex.throttling import PaymentThrottle

from . import refunds, selectors, webhooks
from .idempotency import Outcome, run_idempotent, validate_key
from .refund_serializers import (
    RefundApproveInputSerializer,
    RefundCreateInputSerializer,
    RefundListQuerySerializer,
    RefundRejectInputSerializer,
    RefundRequestSerializer,
)


def _create_refund(request, *, scope: str, create) -> Response:
    """Validate, then create a refund request once per Idempotency-Key; 201 with the request."""
    serializer = RefundCreateInputSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    data = serializer.validated_data

    def handler(resume, remember) -> Outcome:
        payment = selectors.payment_get_visible(user=request.user, payment_id=data["payment_id"])
        refund = create(request.user, payment=payment, amount_cents=data.get("amount"), reason=data.get("reason", ""))
        return Outcome(201, RefundRequestSerializer(refund).data)

    key = validate_key(request.headers.get("Idempotency-Key"))
    outcome = run_idempotent(user=request.user, key=key, scope=scope, data=request.data, handler=handler)
    return Response(outcome.body, status=outcome.status)


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
    def post(self, request):
        return _create_refund(request, scope="refund-request", create=lambda user, **kw: refunds.refund_request_create(
            student=user, **kw))


class AdminRefundCreateView(APIView):
    throttle_classes = [PaymentThrottle]

    @extend_schema(
        operation_id="refunds_admin_create",
        parameters=[IDEMPOTENCY_HEADER],
        request=RefundCreateInputSerializer,
        responses={201: RefundRequestSerializer,
                   **error_responses(400, 401, 403, 404, 409, 413, 415, 429, 502, 503, 504)},
    )
    def post(self, request):
        if not request.user.is_admin:
            raise Forbidden("Only admins issue refunds directly.")
        return _create_refund(request, scope="admin-refund", create=lambda user, **kw: refunds.admin_refund_create(
            admin=user, **kw))


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


class StripeWebhookView(APIView):
    """Authenticated by its Stripe-Signature header, verified over the raw body."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    parser_classes: list = []  # the raw body is what the signature covers

    @extend_schema(
        operation_id="stripe_webhook",
        request={"application/json": {"type": "object", "description": "A Stripe event, signed"}},
        responses={
            200: inline_serializer("WebhookAck", {"received": drf_serializers.BooleanField(),
                                                  "status": drf_serializers.CharField()}),
            **error_responses(400, 413, 500, 502, 503, 504),
        },
        parameters=[STRIPE_SIGNATURE_HEADER],
    )
    def post(self, request):
        event = webhooks.webhook_receive(payload=request.body, signature=request.headers.get("Stripe-Signature"))
        return Response({"received": True, "status": event.status}, status=status.HTTP_200_OK)

    def handle_exception(self, exc):
        if not isinstance(exc, DomainError) and not hasattr(exc, "status_code"):
            # A handler failed: the event is stored as failed; a 500 makes Stripe deliver it again.
            return Response({"success": False, "error": {"code": "server_error",
                                                         "message": "The event was stored and will be retried."}},
                            status=status.HTTP_500_INTERNAL_SERVER_ERROR)
        return super().handle_exception(exc)
