"""Receipts and refund notices, sent after commit. Cards appear as their last four digits only."""

from __future__ import annotations

from django.core.mail import send_mail

from linguaflex.mail import send_after_commit

from .models import Payment, RefundRequest, RefundRequestStatus


def _dollars(cents: int) -> str:
    return f"{cents / 100:.2f} USD"


def payment_receipt(*, payment_id: int) -> None:
    def send():
        payment = Payment.objects.select_related("gig", "student").get(pk=payment_id)
        send_mail(
            subject=f"Receipt: {payment.gig.title}",
            message=(
                f"Hello {payment.student.display_name},\n\nThank you for your payment.\n\n"
                f"Lesson: {payment.gig.title}\nAmount: {_dollars(payment.amount_cents)}\n"
                f"Card: {payment.card_brand or 'card'} ending in {payment.card_last4 or '----'}\n"
                f"Date: {payment.updated_at:%Y-%m-%d %H:%M %Z}\nPayment: #{payment.pk}\n\n"
                "Your booking now waits for the teacher's confirmation.\n"
            ),
            from_email=None,
            recipient_list=[payment.student.email],
        )

    send_after_commit("receipt", send)


def refund_requested(*, refund_id: int) -> None:
    def send():
        refund = RefundRequest.objects.select_related("payment__gig", "payment__student").get(pk=refund_id)
        send_mail(
            subject=f"Refund requested: {refund.payment.gig.title}",
            message=(
                f"Hello {refund.payment.student.display_name},\n\nWe received your refund request #{refund.pk} "
                f"for {_dollars(refund.amount_cents)} ({refund.payment.gig.title}). An admin will decide on it "
                "shortly.\n"
            ),
            from_email=None,
            recipient_list=[refund.payment.student.email],
        )

    send_after_commit("refund request", send)


def refund_outcome(*, refund_id: int) -> None:
    """Both the student and the teacher hear how a refund ended."""

    def send():
        refund = RefundRequest.objects.select_related("payment__gig", "payment__student", "payment__teacher").get(
            pk=refund_id)
        payment = refund.payment
        if refund.status == RefundRequestStatus.SUCCEEDED:
            outcome = (f"{_dollars(refund.amount_cents)} was refunded to the card ending in "
                       f"{payment.card_last4 or '----'}.")
        elif refund.status == RefundRequestStatus.FAILED:
            outcome = f"The refund of {_dollars(refund.amount_cents)} failed: {refund.failure_reason or 'unknown'}."
        elif refund.status == RefundRequestStatus.REJECTED:
            outcome = f"The refund request for {_dollars(refund.amount_cents)} was rejected. {refund.decision_note}"
        else:
            return
        body = (f"Refund #{refund.pk} for \"{payment.gig.title}\" (payment #{payment.pk}, "
                f"{_dollars(payment.amount_cents)}, {payment.created_at:%Y-%m-%d}):\n{outcome}\n"
                f"Refunded so far: {_dollars(payment.refunded_cents)}.\n")
        for user in (payment.student, payment.teacher):
            send_mail(subject=f"Refund {refund.status}: {payment.gig.title}",
                      message=f"Hello {user.display_name},\n\n{body}", from_email=None, recipient_list=[user.email])

    send_after_commit("refund outcome", send)
