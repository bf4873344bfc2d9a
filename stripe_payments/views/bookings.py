"""Decline and cancel: the booking actions that move money. They keep the bookings URLs (see
``stripe_payments/booking_urls.py``) but live with the refund workflow that owns them, so that
``bookings`` never imports ``stripe_payments``."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view

from bookings.serializers import BookingOutputSerializer
from bookings.views import BookingActionView
from linguaflex.openapi import error_responses

from ..services import refunds

_MONEY_ERRORS = error_responses(401, 403, 404, 409, 502, 503, 504)


@extend_schema_view(post=extend_schema(
    operation_id="bookings_decline", request=None, responses={200: BookingOutputSerializer, **_MONEY_ERRORS},
    description="The gig's teacher declines a pending booking; the payment is refunded in full."))
class BookingDeclineView(BookingActionView):
    action_service = staticmethod(refunds.booking_decline)


@extend_schema_view(post=extend_schema(
    operation_id="bookings_cancel", request=None, responses={200: BookingOutputSerializer, **_MONEY_ERRORS},
    description="The student cancels a pending booking; the payment is refunded in full."))
class BookingCancelView(BookingActionView):
    action_service = staticmethod(refunds.booking_cancel)
