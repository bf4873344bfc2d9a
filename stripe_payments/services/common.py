"""What the card, payment and Connect services share: the 3-D Secure answer, the return URL, the role checks."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse

from linguaflex.errors import DomainError, Forbidden


class AuthenticationRequired(DomainError):
    """402: the card needs 3-D Secure; the client opens ``redirect_url`` (or uses ``client_secret``)."""

    status_code = 402
    code = "authentication_required"
    message = "This card requires authentication. Open redirect_url to complete 3-D Secure."


def return_url() -> str:
    """Where Stripe sends the browser back after 3-D Secure."""
    return f"{settings.PUBLIC_BASE_URL}{reverse('stripe_payments:payment_return')}"


def ensure_student(user) -> None:
    if not user.is_student:
        raise Forbidden("Only students can pay and manage cards.")


def ensure_teacher(user) -> None:
    if not user.is_teacher:
        raise Forbidden("Only teachers have a payout account.")


def with_request_id(metadata: dict[str, str], request_id: str) -> dict[str, str]:
    """Stripe metadata with the id of the request that created the object's row
    (linguaflex/request_id.py): one payment followed from the API call to Stripe and back. Rows made
    before request ids (or outside any request) have none, and their metadata stays as it was."""
    return {**metadata, "request_id": request_id} if request_id else metadata
