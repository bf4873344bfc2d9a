"""Refund workflows (stripe_payments.refunds) against the in-process Stripe emulator: decline, cancel
and expiry refunds, refund requests and their decisions, the cumulative split, Stripe faults."""

from __future__ import annotations

from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from bookings import services as booking_services
from bookings.models import Booking, BookingStatus
from linguaflex.errors import Forbidden, InvalidState, ValidationFailed
from stripe_payments import gateway, keys
from stripe_payments.models import Payment, PaymentStatus, RefundKind, RefundRequest, RefundRequestStatus
from stripe_payments.services import refunds

from .conftest import PAY_URL, VISA, card, dashboard, deliver, only_event, refund_posts, stripe_calls

pytestmark = [pytest.mark.django_db, pytest.mark.emulator]

CENT = Decimal("0.01")


# --- an independent oracle of the contract's split (Decimal dollars, ROUND_HALF_UP) -----------------
def oracle(amount_cents: int, refunded_cents: int) -> tuple[int, int, int]:
    """(admin fee, refunded fee, refunded teacher share) in cents, computed in Decimal dollars."""
    amount = Decimal(amount_cents) / 100
    fee = (amount * Decimal("0.10")).quantize(CENT, rounding=ROUND_HALF_UP)
    refunded = Decimal(refunded_cents) / 100
    refunded_fee = (fee * refunded / amount).quantize(CENT, rounding=ROUND_HALF_UP)
    return int(fee * 100), int(refunded_fee * 100), int((refunded - refunded_fee) * 100)


def assert_split(payment: Payment) -> None:
    fee, refunded_fee, refunded_teacher = oracle(payment.amount_cents, payment.refunded_cents)
    assert payment.admin_fee_cents == fee
    assert (payment.refunded_admin_fee_cents, payment.refunded_teacher_cents) == (refunded_fee, refunded_teacher)


def stripe_refunds(emulator, payment: Payment) -> list[dict]:
    with emulator.state.lock:
        return [o for o in emulator.state.objects.values()
                if o.get("object") == "refund" and o.get("payment_intent") == payment.stripe_payment_intent_id]


@pytest.fixture
def fast_failing_stripe(settings):
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    settings.STRIPE_READ_TIMEOUT = 0.5
    return settings


def request_key(request: RefundRequest) -> str:
    request.refresh_from_db()
    return keys.row_key("refund", request.pk, request.created_at)


def _booking(payment: Payment) -> Booking:
    return Booking.objects.get(payment=payment)


def _assert_fully_refunded(payment: Payment) -> None:
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.REFUNDED
    assert payment.refunded_cents == payment.amount_cents
    assert payment.refunded_admin_fee_cents == payment.admin_fee_cents
    assert payment.refunded_teacher_cents == payment.teacher_amount_cents


# --- decline, cancel, expiry -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("action", "kind", "target"),
    [("decline", RefundKind.DECLINE, BookingStatus.DECLINED),
     ("cancel", RefundKind.CANCEL, BookingStatus.CANCELLED),
     ("expire", RefundKind.EXPIRY, BookingStatus.DECLINED)],
)
def test_decline_cancel_and_expiry_refund_in_full_once(action, kind, target, paid, stripe_emulator, student, teacher):
    payment = paid()
    booking = _booking(payment)

    def run():
        if action == "decline":
            return refunds.booking_decline(booking=booking, user=teacher)
        if action == "cancel":
            return refunds.booking_cancel(booking=booking, user=student)
        return refunds.booking_expire(booking_id=booking.pk)

    result = run()
    assert result.status == target
    _assert_fully_refunded(payment)
    refund = RefundRequest.objects.get(payment=payment)
    assert (refund.kind, refund.status, refund.amount_cents, refund.applied) == (
        kind, RefundRequestStatus.SUCCEEDED, payment.amount_cents, True)
    assert [r["idempotency_key"] for r in refund_posts(stripe_emulator)] == [request_key(refund)]

    with pytest.raises(InvalidState):
        run()
    assert len(refund_posts(stripe_emulator)) == 1
    assert [r["amount"] for r in stripe_refunds(stripe_emulator, payment)] == [payment.amount_cents]
    assert RefundRequest.objects.filter(payment=payment).count() == 1


@pytest.mark.parametrize("state", [BookingStatus.CONFIRMED, BookingStatus.COMPLETED, BookingStatus.DECLINED,
                                   BookingStatus.CANCELLED, BookingStatus.REFUNDED, BookingStatus.DISPUTED])
@pytest.mark.parametrize("action", ["decline", "cancel", "expire"])
def test_decline_cancel_and_expiry_of_a_booking_not_pending_is_invalid_state_without_stripe_call(
        action, state, stripe_emulator, student, teacher, gig, make_paid_booking):
    booking = make_paid_booking(student=student, gig=gig, status=state)
    with pytest.raises(InvalidState):
        if action == "decline":
            refunds.booking_decline(booking=booking, user=teacher)
        elif action == "cancel":
            refunds.booking_cancel(booking=booking, user=student)
        else:
            refunds.booking_expire(booking_id=booking.pk)
    assert stripe_calls(stripe_emulator) == []
    booking.refresh_from_db()
    assert booking.status == state
    assert not RefundRequest.objects.exists()


@pytest.mark.parametrize("who", ["student", "other_teacher", "admin_user"])
def test_only_the_gigs_teacher_declines(who, request, stripe_emulator, student, gig, make_paid_booking):
    booking = make_paid_booking(student=student, gig=gig)
    with pytest.raises(Forbidden):
        refunds.booking_decline(booking=booking, user=request.getfixturevalue(who))
    booking.refresh_from_db()
    assert booking.status == BookingStatus.PENDING_CONFIRMATION
    assert stripe_calls(stripe_emulator) == []


@pytest.mark.parametrize("who", ["teacher", "other_student", "admin_user"])
def test_only_the_bookings_student_cancels(who, request, stripe_emulator, student, gig, make_paid_booking):
    booking = make_paid_booking(student=student, gig=gig)
    with pytest.raises(Forbidden):
        refunds.booking_cancel(booking=booking, user=request.getfixturevalue(who))
    booking.refresh_from_db()
    assert booking.status == BookingStatus.PENDING_CONFIRMATION
    assert stripe_calls(stripe_emulator) == []


def test_decline_after_a_partial_refund_returns_what_is_left_and_supersedes_a_pending_request(
        paid, stripe_emulator, student, teacher, admin_user):
    payment = paid()
    refunds.admin_refund_create(admin=admin_user, payment=payment, amount_cents=1234, reason="goodwill")
    pending = refunds.refund_request_create(student=student, payment=payment, amount_cents=100, reason="late")

    booking = refunds.booking_decline(booking=_booking(payment), user=teacher)

    assert booking.status == BookingStatus.DECLINED
    _assert_fully_refunded(payment)
    assert sorted(r["amount"] for r in stripe_refunds(stripe_emulator, payment)) == sorted(
        [1234, payment.amount_cents - 1234])
    pending.refresh_from_db()
    assert pending.status == RefundRequestStatus.REJECTED
    assert "Superseded" in pending.decision_note


@pytest.mark.parametrize("action", ["decline", "cancel", "expire"])
@pytest.mark.parametrize("fault", ["drop_after_work", "error_500", "timeout"])
def test_a_booking_refund_whose_answer_is_lost_closes_the_booking_and_records_what_is_owed(
        action, fault, paid, stripe_emulator, student, teacher, fast_failing_stripe):
    payment = paid()
    booking = _booking(payment)
    target = BookingStatus.CANCELLED if action == "cancel" else BookingStatus.DECLINED
    stripe_emulator.arm_fault("POST", "/v1/refunds", fault, count=5, seconds=2)

    def run():
        if action == "decline":
            return refunds.booking_decline(booking=booking, user=teacher)
        if action == "cancel":
            return refunds.booking_cancel(booking=booking, user=student)
        return refunds.booking_expire(booking_id=booking.pk)

    with pytest.raises(gateway.GatewayError) as caught:
        run()
    assert caught.value.status_code in (502, 503, 504)
    booking.refresh_from_db()
    payment.refresh_from_db()
    # The decision and the debt are committed: the teacher can no longer confirm a refunded lesson.
    assert booking.status == target
    owed = RefundRequest.objects.get(payment=payment)
    assert (owed.status, owed.amount_cents, owed.stripe_refund_id) == (
        RefundRequestStatus.PENDING, payment.amount_cents, None)
    with pytest.raises(InvalidState):
        booking_services.booking_confirm(booking=booking, user=teacher)

    stripe_emulator.clear_faults()
    assert run().status == target  # the same request again finishes the refund under the same key
    _assert_fully_refunded(payment)
    assert len(stripe_refunds(stripe_emulator, payment)) == 1
    assert {r["idempotency_key"] for r in refund_posts(stripe_emulator)} == {request_key(owed)}
    with pytest.raises(InvalidState):  # and once refunded, it is simply closed
        run()


def test_a_lost_decline_refund_then_a_cancel_or_expiry_never_reuses_its_stripe_key(
        paid, stripe_emulator, student, teacher, fast_failing_stripe):
    payment = paid()
    booking = _booking(payment)
    stripe_emulator.arm_fault("POST", "/v1/refunds", "drop_after_work")
    with pytest.raises(gateway.GatewayError):
        refunds.booking_decline(booking=booking, user=teacher)

    with pytest.raises(InvalidState):  # the booking is declined: the student cannot cancel it too
        refunds.booking_cancel(booking=booking, user=student)
    assert not Booking.objects.filter(status=BookingStatus.PENDING_CONFIRMATION).exists()
    assert len(stripe_refunds(stripe_emulator, payment)) == 1  # Stripe refunded once, under the decline's key


def test_reconcile_finishes_a_booking_refund_whose_answer_was_lost(
        paid, stripe_emulator, teacher, fast_failing_stripe):
    from stripe_payments.services.reconciliation import reconcile

    payment = paid()
    booking = _booking(payment)
    stripe_emulator.arm_fault("POST", "/v1/refunds", "drop_after_work")
    with pytest.raises(gateway.GatewayError):
        refunds.booking_decline(booking=booking, user=teacher)

    report = reconcile(older_than=timedelta(0))
    assert not report.errors
    _assert_fully_refunded(payment)
    owed = RefundRequest.objects.get(payment=payment)
    assert (owed.status, owed.applied) == (RefundRequestStatus.SUCCEEDED, True)
    assert len(stripe_refunds(stripe_emulator, payment)) == 1


def test_reconcile_issues_a_booking_refund_that_never_reached_stripe(
        paid, stripe_emulator, teacher, fast_failing_stripe):
    from stripe_payments.services.reconciliation import reconcile

    payment = paid()
    booking = _booking(payment)
    stripe_emulator.arm_fault("POST", "/v1/refunds", "error_500", count=10)
    with pytest.raises(gateway.GatewayError):
        refunds.booking_decline(booking=booking, user=teacher)
    assert stripe_refunds(stripe_emulator, payment) == []
    stripe_emulator.clear_faults()

    reconcile(older_than=timedelta(0))
    _assert_fully_refunded(payment)
    assert len(stripe_refunds(stripe_emulator, payment)) == 1
    booking.refresh_from_db()
    assert booking.status == BookingStatus.DECLINED


def test_a_decline_whose_answer_was_lost_is_completed_by_stripes_refund_event(
        paid, stripe_emulator, student, teacher, fast_failing_stripe, django_capture_on_commit_callbacks):
    from django.core import mail

    payment = paid()
    booking = _booking(payment)
    stripe_emulator.arm_fault("POST", "/v1/refunds", "drop_after_work")
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(gateway.ProviderUnavailable):
        refunds.booking_decline(booking=booking, user=teacher)
    # The decision is told at once; the refund's outcome when Stripe's answer is known.
    assert student.email in [to for m in mail.outbox if m.subject.startswith("Booking declined") for to in m.to]
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        refunds.payment_sync_refunds(payment_id=payment.pk)  # refund.created arrives

    booking.refresh_from_db()
    assert booking.status == BookingStatus.DECLINED
    _assert_fully_refunded(payment)
    refund = RefundRequest.objects.get(payment=payment)
    assert (refund.kind, refund.status, refund.applied) == (RefundKind.DECLINE, RefundRequestStatus.SUCCEEDED, True)
    assert student.email in [to for m in mail.outbox if m.subject.startswith("Refund succeeded") for to in m.to]
    with pytest.raises(InvalidState):  # the teacher's retry: already declined and refunded
        refunds.booking_decline(booking=booking, user=teacher)
    assert len(stripe_refunds(stripe_emulator, payment)) == 1


def test_a_booking_refund_can_be_approved_but_not_rejected_by_an_admin(
        paid, stripe_emulator, teacher, admin_user, fast_failing_stripe):
    payment = paid()
    stripe_emulator.arm_fault("POST", "/v1/refunds", "error_500", count=10)
    with pytest.raises(gateway.GatewayError):
        refunds.booking_decline(booking=_booking(payment), user=teacher)
    stripe_emulator.clear_faults()
    owed = RefundRequest.objects.get(payment=payment)
    with pytest.raises(InvalidState):
        refunds.refund_request_reject(admin=admin_user, refund_request_id=owed.pk, note="no")
    assert refunds.refund_request_approve(admin=admin_user, refund_request_id=owed.pk).status == \
        RefundRequestStatus.SUCCEEDED
    _assert_fully_refunded(payment)


# --- refund requests: the split ------------------------------------------------------------------------
def test_oracle_matches_the_contracts_examples():
    assert oracle(5, 0)[0] == 1 and oracle(25, 0)[0] == 3 and oracle(3333, 0)[0] == 333
    assert oracle(3333, 3333)[1:] == (333, 3000)


def test_partial_then_full_refund_splits_cumulatively_to_the_cent(paid, stripe_emulator, student, admin_user):
    payment = paid(3333)
    assert (payment.admin_fee_cents, payment.teacher_amount_cents) == (333, 3000)

    first = refunds.refund_request_create(student=student, payment=payment, amount_cents=1001, reason="half")
    first = refunds.refund_request_approve(admin=admin_user, refund_request_id=first.pk)
    assert first.status == RefundRequestStatus.SUCCEEDED
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PARTIALLY_REFUNDED
    assert payment.refunded_cents == 1001
    assert (payment.refunded_admin_fee_cents, payment.refunded_teacher_cents) == (100, 901)  # 33.3 * 10.01/33.33
    assert_split(payment)
    assert _booking(payment).status == BookingStatus.PENDING_CONFIRMATION

    rest = refunds.refund_request_create(student=student, payment=payment, amount_cents=None, reason="the rest")
    assert rest.amount_cents == 3333 - 1001
    refunds.refund_request_approve(admin=admin_user, refund_request_id=rest.pk)
    _assert_fully_refunded(payment)
    assert_split(payment)
    assert _booking(payment).status == BookingStatus.REFUNDED
    assert [r["amount"] for r in sorted(stripe_refunds(stripe_emulator, payment), key=lambda r: r["created"])] == [
        1001, 2332]


@hypothesis_settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(amount=st.integers(min_value=50, max_value=1_000_000),
       fractions=st.lists(st.integers(min_value=1, max_value=1000), min_size=1, max_size=4))
def test_any_refund_sequence_splits_like_the_oracle_and_a_full_refund_returns_fee_and_share_exactly(
        amount, fractions, paid, admin_user):
    payment = paid(amount)
    previous = (0, 0)
    for fraction in fractions:
        left = payment.refundable_cents
        if left == 0:
            break
        step = max(1, left * fraction // 1000)
        refunds.admin_refund_create(admin=admin_user, payment=payment, amount_cents=step, reason="")
        payment.refresh_from_db()
        assert_split(payment)
        # Cumulative: neither part ever goes down, and each refund's parts add up to the refund.
        assert payment.refunded_admin_fee_cents >= previous[0] and payment.refunded_teacher_cents >= previous[1]
        previous = (payment.refunded_admin_fee_cents, payment.refunded_teacher_cents)
    if payment.refundable_cents:
        refunds.admin_refund_create(admin=admin_user, payment=payment, amount_cents=None, reason="")
    _assert_fully_refunded(payment)


# --- refund requests: limits and decisions --------------------------------------------------------------
def test_a_request_beyond_what_is_left_is_refused(paid, student, admin_user, stripe_emulator):
    payment = paid()
    refunds.admin_refund_create(admin=admin_user, payment=payment, amount_cents=4000, reason="")
    with pytest.raises(ValidationFailed) as caught:
        refunds.refund_request_create(student=student, payment=payment, amount_cents=1001, reason="")
    assert "amount" in caught.value.fields
    assert refunds.refund_request_create(student=student, payment=payment, amount_cents=1000, reason="").pk


def test_approval_rechecks_what_is_left_under_the_lock_after_a_dashboard_refund(
        paid, student, admin_user, stripe_emulator):
    payment = paid()  # 50.00
    request = refunds.refund_request_create(student=student, payment=payment, amount_cents=3000, reason="")
    # Meanwhile 30.00 is refunded from Stripe's dashboard and synced (refund.created webhook).
    dashboard(stripe_emulator).v1.refunds.create(params={"payment_intent": payment.stripe_payment_intent_id,
                                                          "amount": 3000})
    refunds.payment_sync_refunds(payment_id=payment.pk)
    payment.refresh_from_db()
    assert payment.refunded_cents == 3000
    posts_before = len(refund_posts(stripe_emulator))

    with pytest.raises(ValidationFailed) as caught:
        refunds.refund_request_approve(admin=admin_user, refund_request_id=request.pk)

    assert "amount" in caught.value.fields
    assert len(refund_posts(stripe_emulator)) == posts_before
    request.refresh_from_db()
    assert (request.status, request.decided_by_id) == (RefundRequestStatus.PENDING, None)
    payment.refresh_from_db()
    assert payment.refunded_cents == 3000


def test_only_one_pending_request_per_payment_and_an_admin_refund_waits_for_its_decision(
        paid, student, admin_user, stripe_emulator):
    payment = paid()
    refunds.refund_request_create(student=student, payment=payment, amount_cents=1000, reason="")
    with pytest.raises(refunds.RefundPending):
        refunds.refund_request_create(student=student, payment=payment, amount_cents=1000, reason="")
    with pytest.raises(refunds.RefundPending):
        refunds.admin_refund_create(admin=admin_user, payment=payment, amount_cents=1000, reason="")
    assert refund_posts(stripe_emulator) == []


@pytest.mark.parametrize("who", ["other_student", "teacher", "admin_user"])
def test_only_the_paying_student_requests_a_refund(who, request, paid):
    payment = paid()
    with pytest.raises(Forbidden):
        refunds.refund_request_create(student=request.getfixturevalue(who), payment=payment, amount_cents=None,
                                      reason="")
    assert not RefundRequest.objects.exists()


@pytest.mark.parametrize("status", [PaymentStatus.FAILED, PaymentStatus.PROCESSING, PaymentStatus.REQUIRES_ACTION,
                                    PaymentStatus.CANCELED, PaymentStatus.REFUNDED, PaymentStatus.DISPUTED])
def test_a_payment_without_captured_money_left_cannot_be_refunded(status, paid, student, admin_user):
    payment = paid()
    Payment.objects.filter(pk=payment.pk).update(status=status)
    payment.refresh_from_db()
    with pytest.raises(InvalidState):
        refunds.refund_request_create(student=student, payment=payment, amount_cents=None, reason="")
    with pytest.raises(InvalidState):
        refunds.admin_refund_create(admin=admin_user, payment=payment, amount_cents=None, reason="")


def test_approval_records_who_when_and_why_and_refunds_at_stripe_with_a_key_per_request(
        paid, student, admin_user, stripe_emulator):
    payment = paid()
    request = refunds.refund_request_create(student=student, payment=payment, amount_cents=1500, reason="sick")
    approved = refunds.refund_request_approve(admin=admin_user, refund_request_id=request.pk, note="ok, get well")
    approved.refresh_from_db()
    assert approved.status == RefundRequestStatus.SUCCEEDED
    assert approved.decided_by_id == admin_user.pk and approved.decided_at is not None
    assert approved.decision_note == "ok, get well"
    assert approved.stripe_refund_id and approved.applied
    assert [r["idempotency_key"] for r in refund_posts(stripe_emulator)] == [request_key(request)]
    [stripe_refund] = stripe_refunds(stripe_emulator, payment)
    assert stripe_refund["id"] == approved.stripe_refund_id and stripe_refund["amount"] == 1500


def test_a_double_approval_refunds_once(paid, student, admin_user, stripe_emulator):
    payment = paid()
    request = refunds.refund_request_create(student=student, payment=payment, amount_cents=1500, reason="")
    refunds.refund_request_approve(admin=admin_user, refund_request_id=request.pk)
    with pytest.raises(InvalidState):
        refunds.refund_request_approve(admin=admin_user, refund_request_id=request.pk)
    assert len(refund_posts(stripe_emulator)) == 1
    payment.refresh_from_db()
    assert payment.refunded_cents == 1500


def test_rejection_records_the_decision_and_moves_no_money(paid, student, admin_user, stripe_emulator):
    payment = paid()
    request = refunds.refund_request_create(student=student, payment=payment, amount_cents=1500, reason="")
    rejected = refunds.refund_request_reject(admin=admin_user, refund_request_id=request.pk, note="lesson given")
    rejected.refresh_from_db()
    assert rejected.status == RefundRequestStatus.REJECTED
    assert (rejected.decided_by_id, rejected.decision_note) == (admin_user.pk, "lesson given")
    assert rejected.decided_at is not None
    assert refund_posts(stripe_emulator) == []
    payment.refresh_from_db()
    assert (payment.status, payment.refunded_cents) == (PaymentStatus.SUCCEEDED, 0)
    with pytest.raises(InvalidState):
        refunds.refund_request_approve(admin=admin_user, refund_request_id=request.pk)
    with pytest.raises(InvalidState):
        refunds.refund_request_reject(admin=admin_user, refund_request_id=request.pk, note="again")
    # A rejected request no longer blocks a new one.
    assert refunds.refund_request_create(student=student, payment=payment, amount_cents=100, reason="").pk


@pytest.mark.parametrize("who", ["student", "teacher"])
def test_only_admins_decide_refund_requests(who, request, paid, student, stripe_emulator):
    payment = paid()
    pending = refunds.refund_request_create(student=student, payment=payment, amount_cents=100, reason="")
    user = request.getfixturevalue(who)
    with pytest.raises(Forbidden):
        refunds.refund_request_approve(admin=user, refund_request_id=pending.pk)
    with pytest.raises(Forbidden):
        refunds.refund_request_reject(admin=user, refund_request_id=pending.pk, note="")
    with pytest.raises(Forbidden):
        refunds.admin_refund_create(admin=user, payment=payment, amount_cents=None, reason="")
    pending.refresh_from_db()
    assert pending.status == RefundRequestStatus.PENDING
    assert refund_posts(stripe_emulator) == []


# --- Stripe faults at approval -----------------------------------------------------------------------------
@pytest.mark.parametrize(("fault", "error", "stripe_refunded_first"), [
    ("drop_after_work", gateway.ProviderUnavailable, True),
    ("timeout", gateway.ProviderTimeout, False),
    ("error_500", gateway.ProviderError, False),
])
def test_a_provider_failure_at_approval_leaves_it_pending_and_a_second_approval_refunds_once(
        fault, error, stripe_refunded_first, paid, student, admin_user, stripe_emulator, fast_failing_stripe):
    payment = paid()
    request = refunds.refund_request_create(student=student, payment=payment, amount_cents=2000, reason="")
    stripe_emulator.arm_fault("POST", "/v1/refunds", fault, seconds=1.0)

    with pytest.raises(error):
        refunds.refund_request_approve(admin=admin_user, refund_request_id=request.pk)

    request.refresh_from_db()
    payment.refresh_from_db()
    assert (request.status, request.decided_by_id, request.stripe_refund_id) == (
        RefundRequestStatus.PENDING, None, None)
    assert (payment.status, payment.refunded_cents) == (PaymentStatus.SUCCEEDED, 0)
    assert len(stripe_refunds(stripe_emulator, payment)) == int(stripe_refunded_first)

    approved = refunds.refund_request_approve(admin=admin_user, refund_request_id=request.pk)

    assert approved.status == RefundRequestStatus.SUCCEEDED
    [stripe_refund] = stripe_refunds(stripe_emulator, payment)
    assert stripe_refund["id"] == approved.stripe_refund_id
    assert {r["idempotency_key"] for r in refund_posts(stripe_emulator)} == {request_key(request)}
    payment.refresh_from_db()
    assert (payment.status, payment.refunded_cents) == (PaymentStatus.PARTIALLY_REFUNDED, 2000)


def test_an_admin_refund_that_stripe_cannot_answer_stays_pending_and_a_retry_refunds_once(
        paid, admin_user, stripe_emulator, fast_failing_stripe):
    payment = paid()
    stripe_emulator.arm_fault("POST", "/v1/refunds", "drop_after_work")
    with pytest.raises(gateway.ProviderUnavailable):
        refunds.admin_refund_create(admin=admin_user, payment=payment, amount_cents=1200, reason="goodwill")
    [pending] = RefundRequest.objects.filter(payment=payment)
    assert (pending.status, pending.kind, pending.amount_cents) == (RefundRequestStatus.PENDING, RefundKind.ADMIN, 1200)

    retried = refunds.admin_refund_create(admin=admin_user, payment=payment, amount_cents=1200, reason="goodwill")

    assert retried.pk == pending.pk and retried.status == RefundRequestStatus.SUCCEEDED
    assert [r["amount"] for r in stripe_refunds(stripe_emulator, payment)] == [1200]
    payment.refresh_from_db()
    assert payment.refunded_cents == 1200


def test_a_refund_stripe_refuses_at_approval_is_failed_with_stripes_reason(paid, student, admin_user,
                                                                          stripe_emulator):
    payment = paid()
    request = refunds.refund_request_create(student=student, payment=payment, amount_cents=1000, reason="")
    stripe_emulator.trigger_dispute(payment.stripe_charge_id)  # Stripe refuses refunds of a disputed charge

    refund = refunds.refund_request_approve(admin=admin_user, refund_request_id=request.pk)

    refund.refresh_from_db()
    assert refund.status == RefundRequestStatus.FAILED
    assert "disputed" in refund.failure_reason or "charged back" in refund.failure_reason
    assert refund.decided_by_id == admin_user.pk
    payment.refresh_from_db()
    assert (payment.refunded_cents, payment.refunded_admin_fee_cents, payment.refunded_teacher_cents) == (0, 0, 0)


# --- refunds Stripe reports failed -------------------------------------------------------------------------
def test_a_refund_stripe_fails_before_we_heard_of_it_shows_failure_reason_and_moves_no_money(
        paid, student, admin_user, stripe_emulator, fast_failing_stripe):
    payment = paid()
    request = refunds.refund_request_create(student=student, payment=payment, amount_cents=2000, reason="")
    stripe_emulator.arm_fault("POST", "/v1/refunds", "drop_after_work")
    with pytest.raises(gateway.ProviderUnavailable):
        refunds.refund_request_approve(admin=admin_user, refund_request_id=request.pk)
    [stripe_refund] = stripe_refunds(stripe_emulator, payment)
    stripe_emulator.fail_refund(stripe_refund["id"])

    refunds.payment_sync_refunds(payment_id=payment.pk)  # what refund.updated does

    request.refresh_from_db()
    assert request.status == RefundRequestStatus.FAILED
    assert request.failure_reason
    assert request.stripe_refund_id == stripe_refund["id"] and not request.applied
    payment.refresh_from_db()
    assert (payment.status, payment.refunded_cents, payment.refunded_admin_fee_cents,
            payment.refunded_teacher_cents) == (PaymentStatus.SUCCEEDED, 0, 0, 0)
    with pytest.raises(InvalidState):
        refunds.refund_request_approve(admin=admin_user, refund_request_id=request.pk)


def test_a_succeeded_refund_that_stripe_later_fails_is_taken_back_out_of_the_money_fields(
        paid, student, admin_user, stripe_emulator):
    payment = paid(3333)
    refunds.admin_refund_create(admin=admin_user, payment=payment, amount_cents=1001, reason="")
    second = refunds.admin_refund_create(admin=admin_user, payment=payment, amount_cents=500, reason="")
    payment.refresh_from_db()
    assert payment.refunded_cents == 1501

    stripe_emulator.fail_refund(second.stripe_refund_id)
    refunds.payment_sync_refunds(payment_id=payment.pk)
    refunds.payment_sync_refunds(payment_id=payment.pk)  # a second refund.updated changes nothing

    second.refresh_from_db()
    assert second.status == RefundRequestStatus.FAILED and second.failure_reason
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PARTIALLY_REFUNDED
    assert payment.refunded_cents == 1001
    assert_split(payment)


def test_a_refund_failing_after_a_decline_is_queued_for_an_admin(client, client_for, student, teacher, gig,
                                                                 stripe_emulator):
    paid = client_for(student).post(PAY_URL, {"gig_id": gig.pk, "card_details": card(VISA)}, format="json").json()
    payment = Payment.objects.get(pk=paid["payment_id"])
    refunds.booking_decline(booking=Booking.objects.get(payment=payment), user=teacher)
    refund = RefundRequest.objects.get(payment=payment)
    stripe_emulator.fail_refund(refund.stripe_refund_id)

    deliver(client, only_event(stripe_emulator, "refund.updated"))

    payment.refresh_from_db()
    assert payment.refunded_cents == 0
    queued = RefundRequest.objects.get(payment=payment, status=RefundRequestStatus.PENDING)
    assert queued.kind == RefundKind.ADMIN and queued.amount_cents == payment.amount_cents
    assert Booking.objects.get(payment=payment).status == BookingStatus.DECLINED


# --- a full refund and the booking -------------------------------------------------------------------------
@pytest.mark.parametrize("state", [BookingStatus.PENDING_CONFIRMATION, BookingStatus.CONFIRMED,
                                   BookingStatus.COMPLETED])
def test_a_full_refund_moves_a_pending_confirmed_or_completed_booking_to_refunded(state, paid, admin_user):
    payment = paid()
    Booking.objects.filter(payment=payment).update(status=state)
    refunds.admin_refund_create(admin=admin_user, payment=payment, amount_cents=None, reason="")
    assert _booking(payment).status == BookingStatus.REFUNDED


@pytest.mark.parametrize("state", [BookingStatus.PENDING_CONFIRMATION, BookingStatus.CONFIRMED])
def test_a_partial_refund_leaves_the_booking_as_it_is(state, paid, admin_user):
    payment = paid()
    Booking.objects.filter(payment=payment).update(status=state)
    refunds.admin_refund_create(admin=admin_user, payment=payment, amount_cents=payment.amount_cents - 1, reason="")
    assert _booking(payment).status == state


@pytest.mark.parametrize(("action", "state"), [("decline", BookingStatus.DECLINED),
                                               ("cancel", BookingStatus.CANCELLED)])
def test_a_declined_or_cancelled_booking_keeps_its_state_when_its_payment_is_refunded_again(
        action, state, paid, student, teacher, admin_user, stripe_emulator):
    payment = paid()
    booking = _booking(payment)
    if action == "decline":
        refunds.booking_decline(booking=booking, user=teacher)
    else:
        refunds.booking_cancel(booking=booking, user=student)
    # Stripe fails the booking's refund: the money is back on the payment, the booking stays closed.
    decline_refund = RefundRequest.objects.get(payment=payment)
    stripe_emulator.fail_refund(decline_refund.stripe_refund_id)
    refunds.payment_sync_refunds(payment_id=payment.pk)
    payment.refresh_from_db()
    assert (payment.status, payment.refunded_cents) == (PaymentStatus.SUCCEEDED, 0)
    assert _booking(payment).status == state

    # The owed refund waits in the admins' queue; approving it pays the student back.
    queued = RefundRequest.objects.get(payment=payment, status=RefundRequestStatus.PENDING)
    refunds.refund_request_approve(admin=admin_user, refund_request_id=queued.pk)

    _assert_fully_refunded(payment)
    assert _booking(payment).status == state


def test_a_full_dashboard_refund_is_synced_as_external_and_refunds_the_booking(paid, stripe_emulator):
    payment = paid()
    dashboard(stripe_emulator).v1.refunds.create(params={"payment_intent": payment.stripe_payment_intent_id})
    refunds.payment_sync_refunds(payment_id=payment.pk)
    refunds.payment_sync_refunds(payment_id=payment.pk)
    _assert_fully_refunded(payment)
    [external] = RefundRequest.objects.filter(payment=payment)
    assert (external.kind, external.status, external.amount_cents) == (
        RefundKind.EXTERNAL, RefundRequestStatus.SUCCEEDED, payment.amount_cents)
    assert _booking(payment).status == BookingStatus.REFUNDED
