"""Receipts and notices: who gets each e-mail, that it is sent only after commit, and that no e-mail
holds more of a card than its last four digits."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail

from bookings.models import Booking
from stripe_payments import gateway
from stripe_payments.models import Payment
from stripe_payments.services import refunds

from .conftest import AMEX, PAY_URL, VISA, card

pytestmark = [pytest.mark.django_db, pytest.mark.emulator]

LONG_DIGIT_RUN = re.compile(r"(?:\d[ -]?){12,}")  # 12+ digits, single spaces or dashes between: most of a card


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def paid(stripe_emulator, client_for, student, gig, on_commit):
    def pay(number: str = VISA) -> Payment:
        with on_commit():
            response = client_for(student).post(PAY_URL, {"gig_id": gig.pk, "card_details": card(number)},
                                                format="json")
        assert response.status_code == 200, response.content
        return Payment.objects.get(pk=response.json()["payment_id"])

    return pay


def sent(subject_start: str) -> list[mail.EmailMessage]:
    return [m for m in mail.outbox if m.subject.startswith(subject_start)]


def recipients(subject_start: str) -> list[str]:
    return sorted(to for m in sent(subject_start) for to in m.to)


def assert_no_card_number(messages) -> None:
    for message in messages:
        text = f"{message.subject}\n{message.body}"
        assert not LONG_DIGIT_RUN.search(text), text
        for number in (VISA, AMEX):
            assert number not in text and number[:6] not in text


def test_a_payment_sends_the_student_a_receipt_and_the_teacher_a_new_booking_notice(paid, student, teacher, gig):
    payment = paid()
    [receipt] = sent("Receipt:")
    assert receipt.to == [student.email]
    assert "50.00 USD" in receipt.body and gig.title in receipt.body and "4242" in receipt.body
    [notice] = sent("New booking:")
    assert notice.to == [teacher.email]
    assert "45.00 USD" in notice.body  # the teacher's share
    assert f"#{Booking.objects.get(payment=payment).pk}" in notice.body
    assert len(mail.outbox) == 2
    assert_no_card_number(mail.outbox)


def test_confirmation_is_sent_to_the_student(paid, client_for, student, teacher, on_commit):
    payment = paid()
    mail.outbox.clear()
    with on_commit():
        response = client_for(teacher).post(f"/bookings/{Booking.objects.get(payment=payment).pk}/confirm/")
    assert response.status_code == 200
    assert recipients("Booking confirmed:") == [student.email]
    assert len(mail.outbox) == 1


@pytest.mark.parametrize(("action", "subject"), [("decline", "Booking declined:"), ("cancel", "Booking cancelled:"),
                                                 ("expire", "Booking expired:")])
def test_decline_cancel_and_expiry_are_sent_to_the_student_with_the_refund_and_last4(
        action, subject, paid, student, teacher, on_commit):
    payment = paid(AMEX)
    booking = Booking.objects.get(payment=payment)
    mail.outbox.clear()
    with on_commit():
        if action == "decline":
            refunds.booking_decline(booking=booking, user=teacher)
        elif action == "cancel":
            refunds.booking_cancel(booking=booking, user=student)
        else:
            refunds.booking_expire(booking_id=booking.pk)
    [notice] = sent(subject)
    assert notice.to == [student.email]
    assert "50.00 USD" in notice.body and "ending in 0005" in notice.body
    # The refund itself is a refund outcome: both parties hear of it.
    assert recipients("Refund succeeded:") == sorted([student.email, teacher.email])
    assert_no_card_number(mail.outbox)


def test_a_refund_request_acknowledgement_goes_to_the_student(paid, student, on_commit):
    payment = paid()
    mail.outbox.clear()
    with on_commit():
        refunds.refund_request_create(student=student, payment=payment, amount_cents=1234, reason="")
    assert recipients("Refund requested:") == [student.email]
    assert "12.34 USD" in mail.outbox[0].body


@pytest.mark.parametrize("outcome", ["succeeded", "rejected", "failed"])
def test_a_refunds_outcome_goes_to_the_student_and_the_teacher(outcome, paid, student, teacher, admin_user,
                                                               stripe_emulator, on_commit):
    payment = paid()
    request = refunds.refund_request_create(student=student, payment=payment, amount_cents=1500, reason="")
    if outcome == "failed":
        with on_commit():
            refunds.refund_request_approve(admin=admin_user, refund_request_id=request.pk)
        request.refresh_from_db()
        stripe_emulator.fail_refund(request.stripe_refund_id)
    mail.outbox.clear()
    with on_commit():
        if outcome == "rejected":
            refunds.refund_request_reject(admin=admin_user, refund_request_id=request.pk, note="lesson given")
        elif outcome == "succeeded":
            refunds.refund_request_approve(admin=admin_user, refund_request_id=request.pk)
        else:
            refunds.payment_sync_refunds(payment_id=payment.pk)  # what refund.updated does
    assert recipients(f"Refund {outcome}:") == sorted([student.email, teacher.email])
    assert len(mail.outbox) == 2
    assert all("15.00 USD" in m.body for m in mail.outbox)
    if outcome == "rejected":
        assert all("lesson given" in m.body for m in mail.outbox)
    assert_no_card_number(mail.outbox)


def test_no_e_mail_is_sent_for_a_change_that_rolled_back(paid, student, admin_user, stripe_emulator, settings,
                                                         on_commit):
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    payment = paid()
    request = refunds.refund_request_create(student=student, payment=payment, amount_cents=None, reason="")
    mail.outbox.clear()
    stripe_emulator.arm_fault("POST", "/v1/refunds", "error_500")
    with on_commit(), pytest.raises(gateway.ProviderError):
        refunds.refund_request_approve(admin=admin_user, refund_request_id=request.pk)
    assert mail.outbox == []


def test_a_decline_whose_refund_is_delayed_tells_the_decision_now_and_the_refund_when_it_is_done(
        paid, student, teacher, stripe_emulator, settings, on_commit):
    from stripe_payments.services.reconciliation import reconcile

    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    payment = paid()
    mail.outbox.clear()
    stripe_emulator.arm_fault("POST", "/v1/refunds", "error_500")
    with on_commit(), pytest.raises(gateway.ProviderError):
        refunds.booking_decline(booking=Booking.objects.get(payment=payment), user=teacher)
    assert [m.subject.split(":")[0] for m in mail.outbox] == ["Booking declined"]
    assert "being refunded" in mail.outbox[0].body

    mail.outbox.clear()
    with on_commit():
        reconcile(older_than=timedelta(0))
    assert sorted(to for m in mail.outbox if m.subject.startswith("Refund succeeded") for to in m.to) == sorted(
        [student.email, teacher.email])


def test_a_whole_lifecycle_sends_no_card_number_anywhere(paid, client_for, student, teacher, admin_user, on_commit):
    first, second = paid(VISA), paid(AMEX)
    with on_commit():
        client_for(teacher).post(f"/bookings/{Booking.objects.get(payment=first).pk}/confirm/")
        request = refunds.refund_request_create(student=student, payment=first, amount_cents=None, reason="")
        refunds.refund_request_approve(admin=admin_user, refund_request_id=request.pk)
        refunds.booking_cancel(booking=Booking.objects.get(payment=second), user=student)
    assert len(mail.outbox) >= 10
    assert_no_card_number(mail.outbox)
    assert any("4242" in m.body for m in mail.outbox) and any("0005" in m.body for m in mail.outbox)
