"""OpenAPI helpers: the error envelope as a schema component, per status."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, inline_serializer
from rest_framework import serializers

_ERROR_DESCRIPTIONS = {
    400: "invalid_request: validation failed (see fields)",
    401: "not_authenticated / invalid_token / invalid_credentials",
    402: "card error from Stripe (card_declined with decline_code, authentication_required, ...)",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    409: "invalid_state / idempotency_conflict / idempotency_in_progress / refund_pending",
    413: "request_too_large",
    415: "unsupported_media_type",
    429: "throttled (Retry-After)",
    502: "payment_provider_error",
    503: "payment_provider_unavailable (Retry-After)",
    504: "payment_provider_timeout",
}


class ErrorBodySerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    decline_code = serializers.CharField(required=False)
    fields = serializers.DictField(child=serializers.JSONField(), required=False)
    payment_id = serializers.IntegerField(required=False)
    payment_intent_id = serializers.CharField(required=False)
    setup_intent_id = serializers.CharField(required=False)
    client_secret = serializers.CharField(required=False)
    redirect_url = serializers.CharField(required=False)
    status = serializers.CharField(required=False, help_text="invalid_state: the object's current state")
    request_id = serializers.CharField(required=False, help_text="the response's X-Request-ID")


class ErrorEnvelopeSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    error = ErrorBodySerializer()


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    return {
        status: OpenApiResponse(response=ErrorEnvelopeSerializer, description=_ERROR_DESCRIPTIONS.get(status, ""))
        for status in statuses
    }


# Statuses any authenticated, throttled JSON write can answer besides its own.
AUTHED = (401,)
JSON_BODY = (400, 413, 415)


def success_serializer(name: str = "SuccessResponse"):
    return inline_serializer(name, {"success": serializers.BooleanField()})


# The query parameters of every paginated list (linguaflex.pagination.StandardPagination).
PAGE_PARAMETERS = [
    OpenApiParameter(
        "page", {"type": "integer", "minimum": 1}, required=False,
        description="The page, from 1, in ASCII digits; a page that does not exist is 404 not_found.",
    ),
    OpenApiParameter(
        "page_size", {"type": "integer", "minimum": 1}, required=False,
        description="Items a page, 1 or more in ASCII digits (default 20); more than 100 is taken as 100. "
                    "Anything else is 400 invalid_request naming page_size.",
    ),
]

# Stripe's webhook signature: the time it signed, then one or more signatures (v1: HMAC-SHA256, hex).
STRIPE_SIGNATURE_PATTERN = r"^t=[0-9]+(?:,v[0-9]+=[0-9a-f]+)+$"
STRIPE_SIGNATURE_HEADER = OpenApiParameter(
    "Stripe-Signature", {"type": "string", "pattern": STRIPE_SIGNATURE_PATTERN}, OpenApiParameter.HEADER,
    required=True,
    description="Stripe's signature of the raw body: t=<unix time>,v1=<hex HMAC-SHA256 of \"<t>.<body>\" with "
                "the endpoint's secret>[,v1=...][,v0=...]. A missing, bad or over 300 s old signature is 400.",
)

# The Idempotency-Key header of payment, card and refund writes.
IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key", str, OpenApiParameter.HEADER, required=False,
    description="Up to 255 characters. The same key and body replay the first answer; another body is 409.",
)
