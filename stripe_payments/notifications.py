"""Receipts and refund notices, through the outbox (linguaflex/mail.py): recorded with the change,
sent after commit, once. Cards appear as their last four digits only."""

from __future__ import annotations

from linguaflex.mail import Email, email_after_commit

from .models import Payment, RefundRequest, RefundRequestStatus


def _dollars(cents: int) -> str:
    return f"{cents / 100:.2f} USD"


def payment_receipt(*, payment_id: int) -> None:
    email_after_commit("stripe_payments.notifications.render_receipt", payment_id)


def refund_requested(*, refund_id: int) -> None:
    email_after_commit("stripe_payments.notifications.render_refund_requested", refund_id)


def refund_outcome(*, refund_id: int, status: str) -> None:
    """Both the student and the teacher hear how a refund ended (once per outcome: a refund that
    succeeded and that Stripe later reports failed is two notices)."""
    if status in (RefundRequestStatus.SUCCEEDED, RefundRequestStatus.FAILED, RefundRequestStatus.REJECTED):
        email_after_commit("stripe_payments.notifications.render_refund_outcome", refund_id, status)


def render_receipt(payment_id: int, variant: str = "") -> list[Email]:
    payment = Payment.objects.select_related("gig", "student").filter(pk=payment_id).first()
    if payment is None:
        return []
    return [Email(
        payment.student.email, f"Receipt: {payment.gig.title}",
        f"Hello {payment.student.display_name},\n\nThank you for your payment.\n\n"
        f"Lesson: {payment.gig.title}\nAmount: {_dollars(payment.amount_cents)}\n"
        f"Card: {payment.card_brand or 'card'} ending in {payment.card_last4 or '----'}\n"
        f"Date: {payment.updated_at:%Y-%m-%d %H:%M %Z}\nPayment: #{payment.pk}\n\n"
        "Your booking now waits for the teacher's confirmation.\n",
    )]


def render_refund_requested(refund_id: int, variant: str = "") -> list[Email]:
    refund = RefundRequest.objects.select_related("payment__gig", "payment__student").filter(pk=refund_id).first()
    if refund is None:
        return []
    return [Email(
        refund.payment.student.email, f"Refund requested: {refund.payment.gig.title}",
        f"Hello {refund.payment.student.display_name},\n\nWe received your refund request #{refund.pk} "
        f"for {_dollars(refund.amount_cents)} ({refund.payment.gig.title}). An admin will decide on it "
        "shortly.\n",
    )]


def render_refund_outcome(refund_id: int, variant: str) -> list[Email]:
    refund = (RefundRequest.objects.select_related("payment__gig", "payment__student", "payment__teacher")
              .filter(pk=refund_id).first())
    if refund is None:
        return []
    payment = refund.payment
    if variant == RefundRequestStatus.SUCCEEDED:
        outcome = (f"{_dollars(refund.amount_cents)} was refunded to the card ending in "
                   f"{payment.card_last4 or '----'}.")
    elif variant == RefundRequestStatus.FAILED:
        outcome = f"The refund of {_dollars(refund.amount_cents)} failed: {refund.failure_reason or 'unknown'}."
    elif variant == RefundRequestStatus.REJECTED:
        outcome = f"The refund request for {_dollars(refund.amount_cents)} was rejected. {refund.decision_note}"
    else:
        return []
    body = (f"Refund #{refund.pk} for \"{payment.gig.title}\" (payment #{payment.pk}, "
            f"{_dollars(payment.amount_cents)}, {payment.created_at:%Y-%m-%d}):\n{outcome}\n"
            f"Refunded so far: {_dollars(payment.refunded_cents)}.\n")
    return [Email(user.email, f"Refund {variant}: {payment.gig.title}", f"Hello {user.display_name},\n\n{body}")
            for user in (payment.student, payment.teacher)]
