"""Teachers' Stripe Connect onboarding: start (or resume) onboarding, the account's status, and the
two public URLs Stripe's hosted onboarding sends the browser to (refresh and return)."""

from __future__ import annotations

from django.conf import settings
from django.template.loader import render_to_string
from django.utils.cache import add_never_cache_headers
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer, StaticHTMLRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from linguaflex.errors import DomainError
from linguaflex.openapi import error_responses
from linguaflex.throttling import PaymentThrottle

from ..models import ConnectedAccount
from ..serializers.connect import (
    ConnectOnboardOutputSerializer,
    ConnectReturnOutputSerializer,
    ConnectStatusOutputSerializer,
)
from ..services import connect
from .common import PAGE_CSP, page_errors

_TOKEN_PARAMETER = OpenApiParameter(
    "token", str, required=True,
    description="The signed token this API put in the onboarding link's refresh and return URLs (valid 7 days)")


class ConnectOnboardView(APIView):
    """Start or resume a teacher's onboarding: the account is created at Stripe on the first call
    only; every call answers a fresh single-use link to Stripe's hosted onboarding."""

    throttle_classes = [PaymentThrottle]

    @extend_schema(
        operation_id="connect_onboard",
        request=None,
        responses={200: ConnectOnboardOutputSerializer, **error_responses(400, 401, 403, 429, 502, 503, 504)},
    )
    def post(self, request):
        result = connect.connect_onboard(teacher=request.user, base_url=settings.PUBLIC_BASE_URL)
        return Response(ConnectOnboardOutputSerializer(result).data)


class ConnectStatusView(APIView):
    """The teacher's payout account as last synced from Stripe (no Stripe call).

    A teacher who has not started onboarding gets 200, not 404: ``account_id`` null, both flags
    false and ``requirements_due`` empty, so the app reads one shape and offers onboarding."""

    @extend_schema(
        operation_id="connect_status",
        responses={200: ConnectStatusOutputSerializer, **error_responses(401, 403)},
    )
    def get(self, request):
        account = connect.connect_status(teacher=request.user)
        return Response(ConnectStatusOutputSerializer(account if account is not None else ConnectedAccount()).data)


class _OnboardingPage(APIView):
    """Public: the browser arrives from Stripe without a JWT; the signed token is the credential.

    JSON (Accept or ?format=json) gets the error envelope; anything else gets the page
    (stripe_payments/connect_return.html) with the error's status."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    renderer_classes = [StaticHTMLRenderer, JSONRenderer]

    def _error(self, request, exc: DomainError) -> Response:
        if request.accepted_renderer.format == "json":
            raise exc  # the contract's envelope, from the exception handler
        outcome = "unavailable" if exc.status_code >= 500 else "bad_link"
        return self._page(request, {"outcome": outcome}, status=exc.status_code, headers=exc.headers)

    @staticmethod
    def _private(response: Response) -> Response:
        # The URL carries the token and the state moves on: keep neither, leak it to no one.
        response["Referrer-Policy"] = "no-referrer"
        add_never_cache_headers(response)
        return response

    def _page(self, request, context: dict, *, status: int = 200, headers: dict | None = None) -> Response:
        html = render_to_string("stripe_payments/connect_return.html", context, request=request)
        response = Response(html, status=status, headers=headers)
        response["Content-Security-Policy"] = PAGE_CSP
        return self._private(response)


class ConnectRefreshView(_OnboardingPage):
    """Stripe's refresh URL (the onboarding link was used or expired): 302 to a new link.

    A bad or expired token: 400, the page's bad_link outcome (the envelope for JSON)."""

    @extend_schema(
        operation_id="connect_refresh",
        parameters=[_TOKEN_PARAMETER],
        responses={302: OpenApiResponse(description="Location: a new single-use onboarding link at Stripe"),
                   **page_errors(400, 502, 503, 504)},
    )
    def get(self, request):
        try:
            result = connect.connect_refresh(token=request.query_params.get("token", ""),
                                             base_url=settings.PUBLIC_BASE_URL)
        except DomainError as exc:
            return self._error(request, exc)
        return self._private(Response(status=302, headers={"Location": result.onboarding_url}))


class ConnectReturnView(_OnboardingPage):
    """Stripe's return URL (the teacher left onboarding, finished or not): sync the account from
    Stripe and say whether onboarding is complete; JSON when asked (Accept or ?format=json)."""

    @extend_schema(
        operation_id="connect_return",
        parameters=[_TOKEN_PARAMETER],
        responses={
            (200, "application/json"): OpenApiResponse(
                ConnectReturnOutputSerializer,
                description="The account just synced, when JSON is asked for (Accept or ?format=json); "
                            "otherwise a small self-contained page saying whether onboarding is complete"),
            (200, "text/html"): OpenApiResponse(OpenApiTypes.STR),
            **page_errors(400, 502, 503, 504),
        },
    )
    def get(self, request):
        try:
            returned = connect.connect_return(token=request.query_params.get("token", ""))
        except DomainError as exc:
            return self._error(request, exc)
        data = ConnectReturnOutputSerializer(returned).data
        if request.accepted_renderer.format == "json":
            return self._private(Response(data))
        return self._page(request, {"outcome": "complete" if data["onboarding_complete"] else "pending",
                                    "requirements_due": data["requirements_due"]})
