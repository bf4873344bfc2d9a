"""The payment endpoints: process-payment, the client-side flow, payments, and 3-D Secure's return."""

from __future__ import annotations

from django.template.loader import render_to_string
from django.utils.cache import add_never_cache_headers
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer, StaticHTMLRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from linguaflex.errors import DomainError, NotFound
from linguaflex.openapi import IDEMPOTENCY_HEADER, PAGE_PARAMETERS, error_responses
from linguaflex.pagination import StandardPagination, paginated_response
from linguaflex.throttling import PaymentThrottle

from .. import selectors
from ..gateway import STRIPE_ID
from ..idempotency import idempotency_key, idempotent, key_is_new
from ..models import CHARGED_STATUSES, PaymentStatus
from ..serializers.payments import (
    CardReturnOutputSerializer,
    ConfirmPaymentInputSerializer,
    CreatePaymentIntentInputSerializer,
    CreatePaymentIntentOutputSerializer,
    PaymentListQuerySerializer,
    PaymentReturnOutputSerializer,
    PaymentSerializer,
    ProcessPaymentInputSerializer,
    ProcessPaymentOutputSerializer,
)
from ..services import cards, payments
from .common import PAGE_CSP, PAYMENT_WRITE_ERRORS, page_errors


class ProcessPaymentView(APIView):
    throttle_classes = [PaymentThrottle]

    @extend_schema(
        operation_id="payments_process",
        parameters=[IDEMPOTENCY_HEADER],
        request=ProcessPaymentInputSerializer,
        responses={200: ProcessPaymentOutputSerializer, **PAYMENT_WRITE_ERRORS},
    )
    @idempotent("process-payment")
    def post(self, request):
        serializer = ProcessPaymentInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        outcome = payments.payment_process(
            student=request.user, gig_id=data["gig_id"], card=data.get("card_details"),
            saved_payment_method_id=data.get("saved_payment_method_id"),
            payment_method_id=data.get("payment_method_id"), save_card=data.get("save_card", False),
            scheduled_at=data.get("scheduled_at"), idempotency_key=idempotency_key(request),
            key_is_new=key_is_new(request),
        )
        return Response(ProcessPaymentOutputSerializer(outcome).data)


class PaymentListView(APIView):
    pagination_class = StandardPagination

    @extend_schema(
        operation_id="payments_list",
        parameters=[PaymentListQuerySerializer, *PAGE_PARAMETERS],
        responses={200: PaymentSerializer(many=True), **error_responses(400, 401, 404)},
    )
    def get(self, request):
        query = PaymentListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        found = selectors.payment_list(user=request.user, status=query.validated_data.get("status"))
        return paginated_response(request, self, found, PaymentSerializer)


class PaymentDetailView(APIView):
    @extend_schema(operation_id="payments_retrieve", responses={200: PaymentSerializer, **error_responses(401, 404)})
    def get(self, request, payment_id: int):
        return Response(PaymentSerializer(selectors.payment_get_visible(user=request.user, payment_id=payment_id)).data)


class CreatePaymentIntentView(APIView):
    throttle_classes = [PaymentThrottle]

    @extend_schema(
        operation_id="payments_create_intent",
        parameters=[IDEMPOTENCY_HEADER],
        request=CreatePaymentIntentInputSerializer,
        responses={200: CreatePaymentIntentOutputSerializer,
                   **error_responses(400, 401, 403, 404, 409, 413, 415, 429, 502, 503, 504)},
    )
    @idempotent("create-payment-intent")
    def post(self, request):
        serializer = CreatePaymentIntentInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        created = payments.payment_intent_create_for_client(
            student=request.user, gig_id=serializer.validated_data["gig_id"], idempotency_key=idempotency_key(request))
        return Response(CreatePaymentIntentOutputSerializer(created).data)


class ConfirmPaymentView(APIView):
    throttle_classes = [PaymentThrottle]

    @extend_schema(
        operation_id="payments_confirm",
        request=ConfirmPaymentInputSerializer,
        responses={200: ProcessPaymentOutputSerializer, **PAYMENT_WRITE_ERRORS},
    )
    def post(self, request):
        serializer = ConfirmPaymentInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        outcome = payments.payment_confirm_for_client(
            student=request.user, payment_intent_id=serializer.validated_data["payment_intent_id"])
        return Response(ProcessPaymentOutputSerializer(outcome).data)


# The 3-D Secure return page: how each status reads (data-outcome on the page's #outcome).
_PENDING_STATUSES = frozenset({"processing", "requires_action", "requires_confirmation"})
# Charged earlier and refunded or disputed since: not a failure ("your card was not charged" would be wrong).
_PAID_EARLIER_STATUSES = frozenset(CHARGED_STATUSES) - {PaymentStatus.SUCCEEDED}


def _return_outcome(data: dict) -> str:
    """success | failure | pending | info, from a PaymentReturn's or CardReturn's serialized data."""
    if data["success"]:
        return "success"
    if data["status"] in _PENDING_STATUSES:
        return "pending"
    if data["kind"] == "payment" and data["status"] in _PAID_EARLIER_STATUSES:
        return "info"
    return "failure"


class PaymentReturnView(APIView):
    """Where Stripe sends the browser after 3-D Secure: settle from Stripe's state, show the outcome.

    JSON (Accept or ?format=json) gets the outcome, or the error envelope; anything else gets the
    page (stripe_payments/payment_return.html), errors included, with the error's status: a bad or
    unknown link (4xx) and Stripe out of reach (5xx) each say what to do next."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    renderer_classes = [StaticHTMLRenderer, JSONRenderer]

    @extend_schema(
        operation_id="payments_return",
        parameters=[OpenApiParameter("payment_intent", str), OpenApiParameter("setup_intent", str),
                    OpenApiParameter("setup_intent_client_secret", str,
                                     description="Added by Stripe to the return URL; the card's id is shown only with it")],
        responses={
            (200, "application/json"): OpenApiResponse(
                PolymorphicProxySerializer(component_name="PaymentReturnOutcome", resource_type_field_name="kind",
                                           serializers={"payment": PaymentReturnOutputSerializer,
                                                        "card": CardReturnOutputSerializer}),
                description="The outcome, when JSON is asked for (Accept or ?format=json); otherwise a small "
                            "self-contained page saying the outcome and what to do next"),
            (200, "text/html"): OpenApiResponse(OpenApiTypes.STR),
            **page_errors(400, 404, 502, 503, 504),
        },
    )
    def get(self, request):
        try:
            data = self._outcome(request)
        except DomainError as exc:
            if request.accepted_renderer.format == "json":
                raise  # the contract's envelope, from the exception handler
            outcome = "unavailable" if exc.status_code >= 500 else "bad_link"
            return self._page(request, {"outcome": outcome, "status": outcome}, status=exc.status_code,
                              headers=exc.headers)
        if request.accepted_renderer.format == "json":
            return Response(data)
        return self._page(request, {"outcome": _return_outcome(data), "status": data["status"], "kind": data["kind"],
                                    "message": data["message"], "saved": data.get("saved", False)})

    @staticmethod
    def _outcome(request) -> dict:
        pi_id = request.query_params.get("payment_intent", "").strip()
        si_id = request.query_params.get("setup_intent", "").strip()
        for value in (pi_id, si_id):
            if value and not STRIPE_ID.fullmatch(value):
                raise NotFound("Unknown payment or card set-up.")
        if pi_id:
            return PaymentReturnOutputSerializer(payments.payment_return(payment_intent_id=pi_id)).data
        if si_id:
            secret = request.query_params.get("setup_intent_client_secret", "")
            return CardReturnOutputSerializer(cards.card_return(setup_intent_id=si_id, client_secret=secret)).data
        raise DomainError("Give payment_intent or setup_intent.", fields={"payment_intent": ["This field is required."]})

    @staticmethod
    def _page(request, context: dict, *, status: int = 200, headers: dict | None = None) -> Response:
        html = render_to_string("stripe_payments/payment_return.html", context, request=request)
        response = Response(html, status=status, headers=headers)
        response["Content-Security-Policy"] = PAGE_CSP
        # The URL may carry the SetupIntent's client secret, and the state moves on: keep neither.
        response["Referrer-Policy"] = "no-referrer"
        add_never_cache_headers(response)
        # Our own 404 page, not Django's: JsonNotFoundMiddleware lets it through.
        response.json_404_exempt = True
        return response
