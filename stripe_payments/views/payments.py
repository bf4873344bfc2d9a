"""Thin views for the seed's payment endpoints: validate, call one service, serialize."""

from __future__ import annotations

import hmac
import re

from django.utils.html import escape
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer, StaticHTMLRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from linguaflex.errors import DomainError
from linguaflex.money import cents_to_dollars
from linguaflex.openapi import IDEMPOTENCY_HEADER, PAGE_PARAMETERS, error_responses, success_serializer
from linguaflex.pagination import StandardPagination, paginated_response
from linguaflex.throttling import PaymentThrottle

from . import selectors, services
from .gateway import ProviderInvalidRequest
from .idempotency import Outcome, run_idempotent, validate_key
from .models import PaymentStatus
from .serializers import (
    AddPaymentMethodInputSerializer,
    AddPaymentMethodOutputSerializer,
    ConfirmPaymentInputSerializer,
    CreatePaymentIntentInputSerializer,
    CreatePaymentIntentOutputSerializer,
    PaymentListQuerySerializer,
    PaymentSerializer,
    ProcessPaymentInputSerializer,
    ProcessPaymentOutputSerializer,
    SavedPaymentMethodSerializer,
    booking_id_of,
    process_payment_body,
)

PAYMENT_WRITE_ERRORS = error_responses(400, 401, 402, 403, 404, 409, 413, 415, 429, 502, 503, 504)


STRIPE_ID = re.compile(r"[A-Za-z0-9_]{1,255}")


def _respond(outcome: Outcome) -> Response:
    return Response(outcome.body, status=outcome.status)


class AddPaymentMethodView(APIView):
    throttle_classes = [PaymentThrottle]

    @extend_schema(
        operation_id="payment_methods_add",
        parameters=[IDEMPOTENCY_HEADER],
        request=AddPaymentMethodInputSerializer,
        responses={200: AddPaymentMethodOutputSerializer, **PAYMENT_WRITE_ERRORS},
    )
    def post(self, request):
        serializer = AddPaymentMethodInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key = validate_key(request.headers.get("Idempotency-Key"))

        def handler(resume, remember) -> Outcome:
            added = services.payment_method_add(user=request.user, idempotency_key=key, **serializer.validated_data)
            return Outcome(200, {
                "success": True,
                "message": "Payment method added successfully" if added.saved else "Payment method verified",
                "payment_method_id": added.payment_method_id,
                "card_last4": added.last4,
                "card_brand": added.brand,
                "exp_month": added.exp_month,
                "exp_year": added.exp_year,
                "saved": added.saved,
            })

        return _respond(run_idempotent(user=request.user, key=key, scope="add-payment-method",
                                       data=request.data, handler=handler))


class ProcessPaymentView(APIView):
    throttle_classes = [PaymentThrottle]

    @extend_schema(
        operation_id="payments_process",
        parameters=[IDEMPOTENCY_HEADER],
        request=ProcessPaymentInputSerializer,
        responses={200: ProcessPaymentOutputSerializer, **PAYMENT_WRITE_ERRORS},
    )
    def post(self, request):
        serializer = ProcessPaymentInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        key = validate_key(request.headers.get("Idempotency-Key"))

        def handler(resume, remember) -> Outcome:
            payment = services.payment_process(
                student=request.user, gig_id=data["gig_id"], card=data.get("card_details"),
                saved_payment_method_id=data.get("saved_payment_method_id"),
                payment_method_id=data.get("payment_method_id"), save_card=data.get("save_card", False),
                scheduled_at=data.get("scheduled_at"), resume=resume, remember=remember,
            )
            saved = services.payment_method_saved_for(payment)
            return Outcome(200, process_payment_body(payment, saved=saved), payment)

        return _respond(run_idempotent(user=request.user, key=key, scope="process-payment",
                                       data=request.data, handler=handler))


class PaymentMethodListView(APIView):
    pagination_class = StandardPagination
    @extend_schema(
        operation_id="payment_methods_list",
        parameters=PAGE_PARAMETERS,
        responses={200: SavedPaymentMethodSerializer(many=True), **error_responses(400, 401, 404)},
    )
    def get(self, request):
        cards = selectors.saved_payment_method_list(user=request.user)
        return paginated_response(request, self, cards, SavedPaymentMethodSerializer)


class PaymentMethodDefaultView(APIView):
    throttle_classes = [PaymentThrottle]

    @extend_schema(operation_id="payment_methods_set_default", request=None,
                   responses={200: SavedPaymentMethodSerializer, **error_responses(401, 404, 429)})
    def post(self, request, payment_method_id: str):
        saved = services.payment_method_set_default(user=request.user, payment_method_id=payment_method_id)
        return Response(SavedPaymentMethodSerializer(saved).data)


class PaymentMethodDeleteView(APIView):
    throttle_classes = [PaymentThrottle]

    @extend_schema(operation_id="payment_methods_delete",
                   responses={200: success_serializer("PaymentMethodDeleted"),
                              **error_responses(401, 404, 429, 502, 503, 504)})
    def delete(self, request, payment_method_id: str):
        services.payment_method_delete(user=request.user, payment_method_id=payment_method_id)
        return Response({"success": True})


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
        payments = selectors.payment_list(user=request.user, status=query.validated_data.get("status"))
        return paginated_response(request, self, payments, PaymentSerializer)


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
    def post(self, request):
        serializer = CreatePaymentIntentInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key = validate_key(request.headers.get("Idempotency-Key"))

        def handler(resume, remember) -> Outcome:
            created = services.payment_intent_create_for_client(
                student=request.user, gig_id=serializer.validated_data["gig_id"], resume=resume, remember=remember)
            payment = created.payment
            return Outcome(200, {
                "payment_id": payment.pk,
                "payment_intent_id": payment.stripe_payment_intent_id,
                "client_secret": created.client_secret,
                "amount": cents_to_dollars(payment.amount_cents),
                "amount_cents": payment.amount_cents,
                "currency": payment.currency,
            }, payment)

        return _respond(run_idempotent(user=request.user, key=key, scope="create-payment-intent",
                                       data=request.data, handler=handler))


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
        payment = services.payment_confirm_for_client(
            student=request.user, payment_intent_id=serializer.validated_data["payment_intent_id"])
        return Response(process_payment_body(payment, saved=services.payment_method_saved_for(payment)))


_RETURN_MESSAGES = {
    PaymentStatus.SUCCEEDED: "Payment complete. Your booking is waiting for the teacher's confirmation.",
    PaymentStatus.FAILED: "Authentication failed or the card was declined. No money was taken.",
    PaymentStatus.REQUIRES_ACTION: "Authentication is not finished yet.",
    PaymentStatus.PROCESSING: "The payment is still processing.",
}


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
            200: OpenApiResponse(description="An HTML page, or JSON {success, kind, status, message, ...} when asked"),
            **error_responses(400, 404, 502, 503, 504),
        },
    )
    def get(self, request):
        pi_id = request.query_params.get("payment_intent", "").strip()
        si_id = request.query_params.get("setup_intent", "").strip()
        for value in (pi_id, si_id):
            if value and not STRIPE_ID.fullmatch(value):
                raise DomainError("Unknown payment or card set-up.", code="not_found", status_code=404)
        if pi_id:
            payment = services.payment_settle_by_intent_id(payment_intent_id=pi_id)
            if payment is None:
                raise DomainError("Unknown payment.", code="not_found", status_code=404)
            data = {"success": payment.status == PaymentStatus.SUCCEEDED, "kind": "payment",
                    "status": payment.status, "payment_id": payment.pk,
                    "booking_id": booking_id_of(payment),
                    "message": _RETURN_MESSAGES.get(payment.status, f"The payment is {payment.status}.")}
        elif si_id:
            try:
                result, saved = services.setup_intent_settle(setup_intent_id=si_id)
            except ProviderInvalidRequest as exc:
                if exc.stripe_code != "resource_missing":
                    raise
                raise DomainError("Unknown card set-up.", code="not_found", status_code=404) from None
            ok = result.status == "succeeded"
            # The card's id only to the browser Stripe sent back (it carries the SetupIntent's client
            # secret): this page is public. A card verified without saving still gets its id, for one
            # payment by its own student (process-payment refuses it to anyone else).
            secret = request.query_params.get("setup_intent_client_secret", "")
            reveal = ok and bool(result.client_secret) and hmac.compare_digest(secret, result.client_secret or "")
            pm_id = None
            if reveal:
                pm_id = saved.stripe_payment_method_id if saved else (
                    result.payment_method.id if result.payment_method else None)
            message = ("Your card is saved." if saved else "Your card is verified.") if ok \
                else "The card could not be authenticated."
            data = {"success": ok, "kind": "card", "status": result.status, "saved": saved is not None,
                    "payment_method_id": pm_id, "message": message}
        else:
            raise DomainError("Give payment_intent or setup_intent.", fields={"payment_intent": ["This field is required."]})
        if request.accepted_renderer.format == "json":
            return Response(data)
        title = "Done" if data["success"] else "Not completed"
        html = (f"<!doctype html><html><head><meta charset='utf-8'><title>LinguaFlex: {escape(title)}</title></head>"
                f"<body><h1>{escape(title)}</h1><p id='outcome' data-status='{escape(data['status'])}'>"
                f"{escape(data['message'])}</p><p>You can close this window and return to the app.</p></body></html>")
        return Response(html)
