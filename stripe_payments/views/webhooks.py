"""The Stripe webhook: authenticated by its Stripe-Signature header, verified over the raw body."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from linguaflex.errors import DomainError, envelope
from linguaflex.openapi import STRIPE_SIGNATURE_HEADER, error_responses

from ..services import webhooks


class WebhookAckSerializer(serializers.Serializer):
    """Renders a stored ``WebhookEvent``: received, and how its handling ended."""

    received = serializers.SerializerMethodField()
    status = serializers.CharField()

    def get_received(self, event) -> bool:
        return True


class StripeWebhookView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    parser_classes: list = []  # the raw body is what the signature covers

    @extend_schema(
        operation_id="stripe_webhook",
        request={"application/json": {"type": "object", "description": "A Stripe event, signed"}},
        responses={200: WebhookAckSerializer, **error_responses(400, 413, 500, 502, 503, 504)},
        parameters=[STRIPE_SIGNATURE_HEADER],
    )
    def post(self, request):
        event = webhooks.webhook_receive(payload=request.body, signature=request.headers.get("Stripe-Signature"))
        return Response(WebhookAckSerializer(event).data, status=status.HTTP_200_OK)

    def handle_exception(self, exc):
        if not isinstance(exc, DomainError) and not hasattr(exc, "status_code"):
            # A handler failed: the event is stored as failed; a 500 makes Stripe deliver it again.
            return Response(envelope("server_error", "The event was stored and will be retried."),
                            status=status.HTTP_500_INTERNAL_SERVER_ERROR)
        return super().handle_exception(exc)
