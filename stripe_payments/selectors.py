"""Payment reads, always scoped to the requesting user, with a fixed number of queries per list."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from linguaflex.errors import NotFound

from .models import Payment, SavedPaymentMethod


def _visible(user) -> Q:
    if user.is_admin:
        return Q()
    return Q(student=user) | Q(teacher=user)


def payment_list(*, user, status: str | None = None) -> QuerySet[Payment]:
    qs = Payment.objects.filter(_visible(user)).select_related("gig", "booking")
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("-created_at", "-id")


def payment_get_visible(*, user, payment_id: int) -> Payment:
    payment = payment_list(user=user).filter(pk=payment_id).first()
    if payment is None:
        raise NotFound("Payment not found.")
    return payment


def saved_payment_method_list(*, user) -> QuerySet[SavedPaymentMethod]:
    return SavedPaymentMethod.objects.filter(user=user).order_by("-created_at", "-id")


def saved_payment_method_ids(*, user) -> set[str]:
    return set(SavedPaymentMethod.objects.filter(user=user).values_list("stripe_payment_method_id", flat=True))


def refund_request_list(*, user, status: str | None = None):
    from .models import RefundRequest

    qs = RefundRequest.objects.select_related("payment")
    if not user.is_admin:
        qs = qs.filter(Q(payment__student=user) | Q(payment__teacher=user))
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("-created_at", "-id")


def refund_request_get_visible(*, user, refund_id: int):
    refund = refund_request_list(user=user).filter(pk=refund_id).first()
    if refund is None:
        raise NotFound("Refund request not found.")
    return refund
