"""Payment reads, always scoped to the requesting user, with a fixed number of queries per list."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from linguaflex.errors import NotFound

from .models import Payment, RefundRequest, SavedPaymentMethod


def _visible(user, *, through: str = "") -> Q:
    """What a user may see: all (admins), or their own rows by their role. One side, not
    ``student OR teacher``: only a single-column filter lets the ``(student | teacher, -created_at,
    -id)`` index serve the list in order, where the OR sorts every row the user has. Only students
    pay and only teachers have gigs, so a user's rows are all on their role's side."""
    if user.is_admin:
        return Q()
    student, teacher = Q(**{f"{through}student": user}), Q(**{f"{through}teacher": user})
    if user.is_student:
        return student
    if user.is_teacher:
        return teacher
    return student | teacher


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


def card_is_saved(*, student_id: int, payment_method_id: str, fingerprint: str = "") -> bool:
    """Whether a card is among the student's saved cards: by its PaymentMethod id, or by its
    fingerprint (the same card typed in again is a new PaymentMethod)."""
    if not payment_method_id:
        return False
    same = Q(stripe_payment_method_id=payment_method_id)
    if fingerprint:
        same |= Q(fingerprint=fingerprint)
    return SavedPaymentMethod.objects.filter(same, user_id=student_id).exists()


def payment_card_saved(payment: Payment) -> bool:
    """The answer's ``payment_method_saved``: the card used is among the student's saved cards."""
    return payment.payment_method_saved or card_is_saved(student_id=payment.student_id,
                                                         payment_method_id=payment.stripe_payment_method_id)


def booking_id_of(payment: Payment) -> int | None:
    try:
        return payment.booking.pk
    except Payment.booking.RelatedObjectDoesNotExist:
        return None


def refund_request_list(*, user, status: str | None = None) -> QuerySet[RefundRequest]:
    qs = RefundRequest.objects.select_related("payment")
    if not user.is_admin:
        qs = qs.filter(_visible(user, through="payment__"))
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("-created_at", "-id")


def refund_request_get_visible(*, user, refund_id: int) -> RefundRequest:
    refund = refund_request_list(user=user).filter(pk=refund_id).first()
    if refund is None:
        raise NotFound("Refund request not found.")
    return refund
