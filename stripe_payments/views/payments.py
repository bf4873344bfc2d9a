"""The payment endpoints: process-payment, the client-side flow, payments, and 3-D Secure's return."""

from __future__ import annotations

from django.utils.html import escape
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
from ..idempotency import idempotency_key, idempotent
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
from .common import PAYMENT_WRITE_ERRORS


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


class PaymentReturnView(APIView):
    """Where Stripe sends the browser after 3-D Secure: settle from Stripe's state, show the outcome."""

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
                description="The outcome, when JSON is asked for (Accept or ?format=json)"),
            (200, "text/html"): OpenApiResponse(OpenApiTypes.STR, description="A small page saying the outcome"),
            **error_responses(400, 404, 502, 503, 504),
        },
    )
    def get(self, request):
        pi_id = request.query_params.get("payment_intent", "").strip()
        si_id = request.query_params.get("setup_intent", "").strip()
        for value in (pi_id, si_id):
            if value and not STRIPE_ID.fullmatch(value):
                raise NotFound("Unknown payment or card set-up.")
        if pi_id:
            data = PaymentReturnOutputSerializer(payments.payment_return(payment_intent_id=pi_id)).data
        elif si_id:
            secret = request.query_params.get("setup_intent_client_secret", "")
            data = CardReturnOutputSerializer(cards.card_return(setup_intent_id=si_id, client_secret=secret)).data
        else:
            raise DomainError("Give payment_intent or setup_intent.", fields={"payment_intent": ["This field is required."]})
        if request.accepted_renderer.format == "json":
            return Response(data)
        title = "Done" if data["success"] else "Not completed"
        html = (f"<!doctype html><html><head><meta charset='utf-8'><title>LinguaFlex: {escape(title)}</title></head>"
                f"<body><h1>{escape(title)}</h1><p id='outcome' data-status='{escape(data['status'])}'>"
                f"{escape(data['message'])}</p><p>You can close this window and return to the app.</p></body></html>")
        return Response(html)
