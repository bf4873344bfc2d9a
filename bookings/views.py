from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework.response import Response
from rest_framework.views import APIView

from linguaflex.openapi import PAGE_PARAMETERS, error_responses
from linguaflex.pagination import StandardPagination, paginated_response

from . import selectors, services
from .serializers import BookingListQuerySerializer, BookingOutputSerializer


class BookingListView(APIView):
    pagination_class = StandardPagination
    @extend_schema(
        operation_id="bookings_list",
        parameters=[BookingListQuerySerializer, *PAGE_PARAMETERS],
        responses={200: BookingOutputSerializer(many=True), **error_responses(400, 401, 404)},
    )
    def get(self, request):
        query = BookingListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        bookings = selectors.booking_list(user=request.user, status=query.validated_data.get("status"))
        return paginated_response(request, self, bookings, BookingOutputSerializer)


class BookingDetailView(APIView):
    @extend_schema(operation_id="bookings_retrieve", responses={200: BookingOutputSerializer, **error_responses(401, 404)})
    def get(self, request, booking_id: int):
        return Response(BookingOutputSerializer(selectors.booking_get_visible(user=request.user, booking_id=booking_id)).data)


class BookingActionView(APIView):
    """POST /bookings/{id}/<action>/: the visible booking, one service, the updated booking."""

    action_service = None

    def post(self, request, booking_id: int):
        booking = selectors.booking_get_visible(user=request.user, booking_id=booking_id)
        booking = type(self).action_service(booking=booking, user=request.user)
        booking = selectors.booking_get_visible(user=request.user, booking_id=booking.pk)
        return Response(BookingOutputSerializer(booking).data)


_ACTION_ERRORS = error_responses(401, 403, 404, 409)


@extend_schema_view(post=extend_schema(
    operation_id="bookings_confirm", request=None, responses={200: BookingOutputSerializer, **_ACTION_ERRORS}))
class BookingConfirmView(BookingActionView):
    action_service = staticmethod(services.booking_confirm)


@extend_schema_view(post=extend_schema(
    operation_id="bookings_complete", request=None, responses={200: BookingOutputSerializer, **_ACTION_ERRORS}))
class BookingCompleteView(BookingActionView):
    action_service = staticmethod(services.booking_complete)

# Decline and cancel move money: their views live with the refund workflow (stripe_payments.views.bookings).
