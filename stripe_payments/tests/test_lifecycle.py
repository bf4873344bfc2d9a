"""The payment lifecycle (services.lifecycle): the state machine is PAYMENT_TRANSITIONS and nothing
else, each state is documented, each named service moves a payment as it says, and it is the only code
that writes Payment.status."""

from __future__ import annotations

import ast
import inspect
import io
import tokenize
from itertools import product
from pathlib import Path

import pytest

from bookings.models import Booking, BookingStatus
from bookings.services import booking_create_for_payment
from linguaflex.errors import InvalidState
from stripe_payments import gateway, models
from stripe_payments.decline_messages import GENERIC_DECLINE
from stripe_payments.gateway import CardDetails, CardFailure, IntentResult, PaymentMethodInfo
from stripe_payments.models import (
    CAPTURED_STATUSES,
    PAYMENT_TRANSITIONS,
    UNSETTLED_STATUSES,
    Payment,
    PaymentMethodOwner,
    PaymentStatus,
    RefundKind,
    RefundRequest,
    RefundRequestStatus,
)
from stripe_payments.money import split_amount, split_refunded
from stripe_payments.services import lifecycle, payments

from .conftest import PAY_URL, VISA, card, deliver, only_event

S = PaymentStatus
STATES = [s.value for s in PaymentStatus]
PAIRS = list(product(STATES, STATES))
ALLOWED = {(src, dst) for src, dst in PAIRS if dst in PAYMENT_TRANSITIONS[src]}
PACKAGE = Path(models.__file__).resolve().parent  # stripe_payments/


def _payment(student, gig, status: str = S.PROCESSING, *, refunded_cents: int = 0, **extra) -> Payment:
    """A payment row in ``status`` (written directly: this is the fixture, not the code under test)."""
    split = split_amount(gig.price_cents)
    refunded = split_refunded(amount_cents=gig.price_cents, admin_fee_cents=split.admin_fee_cents,
                              refunded_cents=refunded_cents)
    return Payment.objects.create(
        student=student, teacher=gig.teacher, gig=gig, amount_cents=gig.price_cents,
        admin_fee_cents=split.admin_fee_cents, teacher_amount_cents=split.teacher_amount_cents, status=status,
        refunded_cents=refunded_cents, refunded_admin_fee_cents=refunded.admin_fee_cents,
        refunded_teacher_cents=refunded.teacher_amount_cents, **extra)


def _with_booking(payment: Payment, booking_status: str = BookingStatus.PENDING_CONFIRMATION) -> Booking:
    """Give a payment its booking (created while it is succeeded, as the lifecycle creates it)."""
    status = payment.status
    Payment.objects.filter(pk=payment.pk).update(status=S.SUCCEEDED)
    payment.refresh_from_db()
    booking, _ = booking_create_for_payment(payment=payment)
    Payment.objects.filter(pk=payment.pk).update(status=status)
    Booking.objects.filter(pk=booking.pk).update(status=booking_status)
    payment.refresh_from_db()
    booking.refresh_from_db()
    return booking


def _intent(payment: Payment, status: str, *, declined: bool = False, intent_id: str | None = None,
            pm: PaymentMethodInfo | None = None) -> IntentResult:
    return IntentResult(
        id=intent_id or payment.stripe_payment_intent_id or f"pi_walk_{payment.pk}", status=status,
        amount=payment.amount_cents, amount_received=payment.amount_cents if status == "succeeded" else 0,
        currency="usd", client_secret=None, customer_id=None, payment_method=pm,
        latest_charge_id=f"ch_walk_{payment.pk}" if status == "succeeded" else None, redirect_url=None,
        last_error=CardFailure("card_declined", "generic_decline", "Your card was declined.") if declined else None,
        metadata={"payment_id": str(payment.pk)})


def _refund(payment: Payment, amount_cents: int, *, kind: str = RefundKind.REQUESTED, applied: bool = False):
    """A refund Stripe answered, to count into (or out of) the payment; not yet counted unless ``applied``."""
    return RefundRequest.objects.create(payment=payment, amount_cents=amount_cents, kind=kind,
                                        status=RefundRequestStatus.SUCCEEDED, requested_by=payment.student,
                                        applied=applied)


# --- the table ------------------------------------------------------------------------------------------
def test_the_transition_table_names_every_state_and_only_states():
    assert set(PAYMENT_TRANSITIONS) == set(STATES)
    for targets in PAYMENT_TRANSITIONS.values():
        assert targets <= set(STATES)
    assert S.DISPUTED in PAYMENT_TRANSITIONS[S.SUCCEEDED]
    assert PAYMENT_TRANSITIONS[S.CANCELED] == PAYMENT_TRANSITIONS[S.DISPUTED] == frozenset()  # final states
    assert not set(UNSETTLED_STATUSES) & set(CAPTURED_STATUSES)


def test_the_transition_table_is_the_documented_one():
    assert {(src, dst) for src, targets in PAYMENT_TRANSITIONS.items() for dst in targets} == {
        (S.PROCESSING, S.REQUIRES_ACTION), (S.PROCESSING, S.SUCCEEDED), (S.PROCESSING, S.FAILED),
        (S.PROCESSING, S.CANCELED),
        (S.REQUIRES_ACTION, S.PROCESSING), (S.REQUIRES_ACTION, S.SUCCEEDED), (S.REQUIRES_ACTION, S.FAILED),
        (S.REQUIRES_ACTION, S.CANCELED),
        (S.FAILED, S.SUCCEEDED), (S.FAILED, S.PROCESSING),
        (S.SUCCEEDED, S.PARTIALLY_REFUNDED), (S.SUCCEEDED, S.REFUNDED), (S.SUCCEEDED, S.DISPUTED),
        (S.PARTIALLY_REFUNDED, S.SUCCEEDED), (S.PARTIALLY_REFUNDED, S.REFUNDED), (S.PARTIALLY_REFUNDED, S.DISPUTED),
        (S.REFUNDED, S.SUCCEEDED), (S.REFUNDED, S.PARTIALLY_REFUNDED), (S.REFUNDED, S.DISPUTED),
    }


def test_every_payment_state_is_documented_in_one_line():
    """Each ``PaymentStatus`` member carries its one-line meaning as a comment (STYLE.md §6)."""
    source = inspect.getsource(PaymentStatus)
    comments = {tok.start[0]: tok.string for tok in tokenize.generate_tokens(io.StringIO(source).readline)
                if tok.type == tokenize.COMMENT}
    members = [node for node in ast.parse(source).body[0].body if isinstance(node, ast.Assign)]
    assert [m.targets[0].id for m in members] == [s.name for s in PaymentStatus]
    for member in members:
        comment = comments.get(member.lineno, "").lstrip("# ").strip()
        assert len(comment.split()) >= 3, f"PaymentStatus.{member.targets[0].id} has no one-line doc comment"


# A move is made on a locked row inside a transaction (its outcome is counted after the commit).
@pytest.mark.django_db
@pytest.mark.parametrize(("src", "dst"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_move_allows_exactly_the_tables_pairs_and_staying_put(src, dst):
    payment = Payment(status=src)

    if src == dst or (src, dst) in ALLOWED:
        lifecycle._move(payment, dst)
        assert payment.status == dst
    else:
        with pytest.raises(InvalidState) as refused:
            lifecycle._move(payment, dst)
        assert refused.value.status_code == 409 and refused.value.extra == {"status": src}
        assert payment.status == src


# Every public lifecycle service, as (name, call) probes run on a fresh payment in each state.
def _settle(status, **kw):
    return lambda p: lifecycle.payment_settle_from_intent(payment_id=p.pk, intent=_intent(p, status, **kw))


def _apply(amount_of, sign=1):
    def run(p):
        amount = amount_of(p)
        refund = _refund(p, amount, applied=sign < 0)
        lifecycle.payment_apply_refund(payment=Payment.objects.select_for_update().get(pk=p.pk), refund=refund,
                                       sign=sign)
    return run


PROBES = {
    "settle succeeded": _settle("succeeded"),
    "settle requires_action": _settle("requires_action"),
    "settle processing": _settle("processing"),
    "settle canceled": _settle("canceled"),
    "settle declined": _settle("requires_payment_method", declined=True),
    "fail": lambda p: lifecycle.payment_fail(payment_id=p.pk, failure=CardFailure("card_declined", None, "No.")),
    "reopen never sent": lambda p: lifecycle.payment_reopen_never_sent(payment=p),
    "refund a part": _apply(lambda p: 1000),
    "refund the rest": _apply(lambda p: p.amount_cents - p.refunded_cents or p.amount_cents),
    "reverse a part": _apply(lambda p: 1000, sign=-1),
    "reverse all": _apply(lambda p: p.refunded_cents or p.amount_cents, sign=-1),
    "mark disputed": lambda p: lifecycle.payment_mark_disputed(payment_id=p.pk),
    "restore booking": lambda p: lifecycle.payment_booking_restore(payment_id=p.pk),
    "close booking refunded": lambda p: lifecycle.payment_booking_close_refunded(payment_id=p.pk),
}
# What a payment in each state has refunded (so that refunds and reversals have something to act on).
REFUNDED_IN = {S.PARTIALLY_REFUNDED: 1000, S.REFUNDED: 5000}


def test_the_public_services_make_every_move_of_the_table_and_no_other(student, gig):
    moves, refusals = set(), set()
    for state, (name, probe) in product(STATES, PROBES.items()):
        payment = _payment(student, gig, state, refunded_cents=REFUNDED_IN.get(state, 0),
                           failure_code=lifecycle.NEVER_SENT if state == S.FAILED else "")
        try:
            probe(payment)
        except InvalidState:
            refusals.add((state, name))
            payment.refresh_from_db()
            assert payment.status == state, f"{name} refused a {state} payment but left it {payment.status}"
            continue
        payment.refresh_from_db()
        if payment.status != state:
            moves.add((state, payment.status))
            assert (state, payment.status) in ALLOWED, f"{name} moved a {state} payment to {payment.status}"

    assert moves == ALLOWED  # every move of the table is some named service's, and only those
    # A service asked for a move the table forbids refuses it (409), it never forces it.
    assert {(s, "mark disputed") for s in (S.PROCESSING, S.REQUIRES_ACTION, S.FAILED, S.CANCELED)} <= refusals
    assert {(s, "refund a part") for s in (S.PROCESSING, S.REQUIRES_ACTION, S.FAILED, S.CANCELED)} <= refusals


# --- settling from an intent ---------------------------------------------------------------------------
@pytest.mark.django_db
def test_settling_a_succeeded_intent_charges_the_payment_and_books_it_once(student, gig):
    payment = _payment(student, gig, failure_code="card_declined", failure_message="An earlier try.",
                       provider_failure_message="Your card was declined.")
    intent = _intent(payment, "succeeded")

    settled = lifecycle.payment_settle_from_intent(payment_id=payment.pk, intent=intent)
    lifecycle.payment_settle_from_intent(payment_id=payment.pk, intent=intent)

    payment.refresh_from_db()
    assert settled.status == payment.status == S.SUCCEEDED
    assert (payment.stripe_payment_intent_id, payment.stripe_charge_id) == (intent.id, intent.latest_charge_id)
    assert (payment.failure_code, payment.decline_code, payment.failure_message,
            payment.provider_failure_message) == ("", "", "", "")
    assert Booking.objects.filter(payment=payment).count() == 1


@pytest.mark.django_db
def test_settling_records_the_intents_card_and_its_owner(student, gig):
    payment = _payment(student, gig)
    pm = PaymentMethodInfo(id="pm_walk", customer_id=None,
                           card=CardDetails(brand="mastercard", last4="4444", exp_month=1, exp_year=2040, fingerprint=""))

    lifecycle.payment_settle_from_intent(payment_id=payment.pk, intent=_intent(payment, "requires_action", pm=pm))

    payment.refresh_from_db()
    assert payment.status == S.REQUIRES_ACTION
    assert (payment.stripe_payment_method_id, payment.card_brand, payment.card_last4) == ("pm_walk", "mastercard", "4444")
    assert PaymentMethodOwner.objects.get(stripe_payment_method_id="pm_walk").user == student
    assert not Booking.objects.exists()


@pytest.mark.django_db
def test_settling_a_declined_intent_fails_the_payment_with_stripes_reason_cut_to_the_columns(student, gig):
    payment = _payment(student, gig, S.REQUIRES_ACTION)
    intent = IntentResult(**{**_intent(payment, "requires_payment_method").__dict__,
                             "last_error": CardFailure("c" * 80, "d" * 80, "m" * 600)})

    lifecycle.payment_settle_from_intent(payment_id=payment.pk, intent=intent)

    payment.refresh_from_db()
    assert payment.status == S.FAILED
    assert (payment.failure_code, payment.decline_code, payment.provider_failure_message) == ("c" * 64, "d" * 64,
                                                                                              "m" * 500)
    assert payment.failure_message == GENERIC_DECLINE  # unknown codes: the student's generic decline
    assert not Booking.objects.exists()


@pytest.mark.django_db
def test_a_failed_payment_that_stripe_charged_after_all_is_settled_succeeded_with_its_booking(student, gig):
    payment = _payment(student, gig, S.FAILED, stripe_payment_intent_id="pi_late", failure_code="authentication")

    lifecycle.payment_settle_from_intent(payment_id=payment.pk, intent=_intent(payment, "succeeded"))

    payment.refresh_from_db()
    assert (payment.status, payment.failure_code) == (S.SUCCEEDED, "")
    assert Booking.objects.filter(payment=payment).count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("status", ["requires_action", "processing", "canceled", "requires_payment_method"])
def test_a_failed_payment_stays_failed_unless_its_intent_succeeded(student, gig, status):
    payment = _payment(student, gig, S.FAILED, stripe_payment_intent_id="pi_failed", failure_code="card_declined")

    lifecycle.payment_settle_from_intent(payment_id=payment.pk, intent=_intent(payment, status, declined=True))

    payment.refresh_from_db()
    assert (payment.status, payment.failure_code) == (S.FAILED, "card_declined")


@pytest.mark.django_db
def test_an_intent_of_another_payment_is_refused_and_changes_nothing(student, gig):
    payment = _payment(student, gig, stripe_payment_intent_id="pi_mine")

    with pytest.raises(InvalidState):
        lifecycle.payment_settle_from_intent(payment_id=payment.pk,
                                             intent=_intent(payment, "succeeded", intent_id="pi_someone_elses"))

    payment.refresh_from_db()
    assert (payment.status, payment.stripe_payment_intent_id) == (S.PROCESSING, "pi_mine")
    assert not Booking.objects.exists()


def test_settling_the_same_succeeded_intent_twice_books_once(stripe_emulator, pay):
    payment_id = pay(VISA).json()["payment_id"]
    payment = Payment.objects.get(pk=payment_id)
    intent = gateway.payment_intent_retrieve(payment.stripe_payment_intent_id)

    lifecycle.payment_settle_from_intent(payment_id=payment_id, intent=intent)
    lifecycle.payment_settle_from_intent(payment_id=payment_id, intent=intent)
    payments.payment_settle(payment=payment)

    assert Booking.objects.filter(payment_id=payment_id).count() == 1
    assert Payment.objects.get(pk=payment_id).status == PaymentStatus.SUCCEEDED


def test_a_failed_intent_never_moves_a_succeeded_payment_back(stripe_emulator, pay):
    payment_id = pay(VISA).json()["payment_id"]
    payment = Payment.objects.get(pk=payment_id)
    intent = gateway.payment_intent_retrieve(payment.stripe_payment_intent_id)
    failed = gateway.IntentResult(**{**intent.__dict__, "status": "requires_payment_method",
                                     "last_error": gateway.CardFailure("card_declined", "generic_decline", "no")})

    lifecycle.payment_settle_from_intent(payment_id=payment_id, intent=failed)

    assert Payment.objects.get(pk=payment_id).status == PaymentStatus.SUCCEEDED
    assert Booking.objects.filter(payment_id=payment_id).count() == 1


# --- failing, and reopening what was never sent -------------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize("state", [S.PROCESSING, S.REQUIRES_ACTION])
def test_failing_an_unsettled_payment_records_the_failure_and_its_intent(student, gig, state):
    payment = _payment(student, gig, state)

    lifecycle.payment_fail(payment_id=payment.pk, failure=CardFailure("card_declined", "lost_card", "Lost."),
                           payment_intent_id="pi_failed_at_create")

    payment.refresh_from_db()
    assert payment.status == S.FAILED
    assert (payment.failure_code, payment.decline_code, payment.provider_failure_message) == ("card_declined",
                                                                                              "lost_card", "Lost.")
    assert payment.failure_message == GENERIC_DECLINE  # a lost card is told as a generic decline
    assert payment.stripe_payment_intent_id == "pi_failed_at_create"


@pytest.mark.django_db
@pytest.mark.parametrize("state", [S.SUCCEEDED, S.CANCELED, S.REFUNDED, S.DISPUTED])
def test_failing_a_payment_that_settled_meanwhile_leaves_it_as_it_is(student, gig, state):
    payment = _payment(student, gig, state, refunded_cents=REFUNDED_IN.get(state, 0))

    lifecycle.payment_fail(payment_id=payment.pk, failure=CardFailure("abandoned", None, "Too late."))

    payment.refresh_from_db()
    assert (payment.status, payment.failure_code) == (state, "")


@pytest.mark.django_db
def test_a_payment_closed_as_never_sent_is_reopened_processing_without_its_failure(student, gig):
    payment = _payment(student, gig, S.FAILED, failure_code=lifecycle.NEVER_SENT, failure_message="Never reached.",
                       provider_failure_message="The payment never reached Stripe.")

    reopened = lifecycle.payment_reopen_never_sent(payment=payment)

    payment.refresh_from_db()
    assert reopened.status == payment.status == S.PROCESSING
    assert (payment.failure_code, payment.decline_code, payment.failure_message,
            payment.provider_failure_message) == ("", "", "", "")


@pytest.mark.django_db
def test_a_payment_that_failed_at_stripe_is_not_reopened(student, gig):
    payment = _payment(student, gig, S.FAILED, failure_code="card_declined")

    lifecycle.payment_reopen_never_sent(payment=payment)

    payment.refresh_from_db()
    assert (payment.status, payment.failure_code) == (S.FAILED, "card_declined")


# --- applying a refund ------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_a_partial_refund_makes_the_payment_partially_refunded_with_its_split_reversed(student, gig):
    payment = _payment(student, gig, S.SUCCEEDED)
    booking = _with_booking(payment, BookingStatus.CONFIRMED)
    refund = _refund(payment, 1999)

    lifecycle.payment_apply_refund(payment=payment, refund=refund)

    payment.refresh_from_db()
    split = split_refunded(amount_cents=5000, admin_fee_cents=500, refunded_cents=1999)
    assert (payment.status, payment.refunded_cents) == (S.PARTIALLY_REFUNDED, 1999)
    assert (payment.refunded_admin_fee_cents, payment.refunded_teacher_cents) == (split.admin_fee_cents,
                                                                                  split.teacher_amount_cents)
    refund.refresh_from_db()
    assert refund.applied is True
    booking.refresh_from_db()
    assert booking.status == BookingStatus.CONFIRMED


@pytest.mark.django_db
@pytest.mark.parametrize(("kind", "booking_before", "booking_after"), [
    (RefundKind.REQUESTED, BookingStatus.CONFIRMED, BookingStatus.REFUNDED),
    (RefundKind.ADMIN, BookingStatus.COMPLETED, BookingStatus.REFUNDED),
    (RefundKind.EXTERNAL, BookingStatus.PENDING_CONFIRMATION, BookingStatus.REFUNDED),
    (RefundKind.DECLINE, BookingStatus.PENDING_CONFIRMATION, BookingStatus.DECLINED),
    (RefundKind.CANCEL, BookingStatus.PENDING_CONFIRMATION, BookingStatus.CANCELLED),
    (RefundKind.EXPIRY, BookingStatus.PENDING_CONFIRMATION, BookingStatus.DECLINED),
    (RefundKind.DECLINE, BookingStatus.CONFIRMED, BookingStatus.REFUNDED),
    (RefundKind.REQUESTED, BookingStatus.DECLINED, BookingStatus.DECLINED),  # already closed: left as it is
])
def test_the_last_refund_makes_the_payment_refunded_and_closes_its_open_booking(student, gig, kind, booking_before,
                                                                                 booking_after):
    payment = _payment(student, gig, S.PARTIALLY_REFUNDED, refunded_cents=1000)
    booking = _with_booking(payment, booking_before)

    lifecycle.payment_apply_refund(payment=payment, refund=_refund(payment, 4000, kind=kind))

    payment.refresh_from_db()
    assert (payment.status, payment.refunded_cents) == (S.REFUNDED, 5000)
    assert (payment.refunded_admin_fee_cents, payment.refunded_teacher_cents) == (500, 4500)
    booking.refresh_from_db()
    assert booking.status == booking_after


@pytest.mark.django_db
@pytest.mark.parametrize(("state", "refunded", "reversed_cents", "after"), [
    (S.PARTIALLY_REFUNDED, 1000, 1000, S.SUCCEEDED),
    (S.REFUNDED, 5000, 1000, S.PARTIALLY_REFUNDED),
    (S.REFUNDED, 5000, 5000, S.SUCCEEDED),
])
def test_a_refund_stripe_reversed_is_taken_back_out_of_the_payment(student, gig, state, refunded, reversed_cents,
                                                                   after):
    payment = _payment(student, gig, state, refunded_cents=refunded)
    refund = _refund(payment, reversed_cents, applied=True)

    lifecycle.payment_apply_refund(payment=payment, refund=refund, sign=-1)

    payment.refresh_from_db()
    assert (payment.status, payment.refunded_cents) == (after, refunded - reversed_cents)
    split = split_refunded(amount_cents=5000, admin_fee_cents=500, refunded_cents=refunded - reversed_cents)
    assert payment.refunded_admin_fee_cents == split.admin_fee_cents
    refund.refresh_from_db()
    assert refund.applied is False


@pytest.mark.django_db
@pytest.mark.parametrize(("state", "refunded", "amount", "sign"), [
    (S.PARTIALLY_REFUNDED, 1000, 4001, 1), (S.SUCCEEDED, 0, 5001, 1), (S.PARTIALLY_REFUNDED, 1000, 1001, -1),
])
def test_a_refund_beyond_the_payment_is_invalid_state_and_changes_nothing(student, gig, state, refunded, amount,
                                                                          sign):
    payment = _payment(student, gig, state, refunded_cents=refunded)
    refund = _refund(payment, amount, applied=sign < 0)

    with pytest.raises(InvalidState):
        lifecycle.payment_apply_refund(payment=payment, refund=refund, sign=sign)

    payment.refresh_from_db()
    assert (payment.status, payment.refunded_cents) == (state, refunded)
    refund.refresh_from_db()
    assert refund.applied is (sign < 0)


@pytest.mark.django_db
@pytest.mark.parametrize("state", [S.PROCESSING, S.REQUIRES_ACTION, S.FAILED, S.CANCELED])
def test_a_refund_of_a_payment_that_captured_nothing_is_invalid_state(student, gig, state):
    payment = _payment(student, gig, state)

    with pytest.raises(InvalidState):
        lifecycle.payment_apply_refund(payment=payment, refund=_refund(payment, 1000))

    payment.refresh_from_db()
    assert (payment.status, payment.refunded_cents) == (state, 0)


@pytest.mark.django_db
def test_a_refund_of_a_disputed_payment_is_counted_and_the_payment_stays_disputed(student, gig):
    payment = _payment(student, gig, S.DISPUTED)
    booking = _with_booking(payment, BookingStatus.DISPUTED)
    partial, rest = _refund(payment, 1000), _refund(payment, 4000, kind=RefundKind.EXTERNAL)

    lifecycle.payment_apply_refund(payment=payment, refund=partial)
    assert (payment.status, payment.refunded_cents) == (S.DISPUTED, 1000)
    lifecycle.payment_apply_refund(payment=payment, refund=rest)
    assert (payment.status, payment.refunded_cents) == (S.DISPUTED, 5000)
    lifecycle.payment_apply_refund(payment=payment, refund=rest, sign=-1)  # Stripe reversed the second one

    payment.refresh_from_db()
    assert (payment.status, payment.refunded_cents) == (S.DISPUTED, 1000)
    assert (payment.refunded_admin_fee_cents, payment.refunded_teacher_cents) == (100, 900)
    booking.refresh_from_db()
    assert booking.status == BookingStatus.DISPUTED


@pytest.mark.emulator
def test_a_refund_stripe_fails_after_the_charge_was_disputed_leaves_the_payment_disputed(
        client, client_for, student, admin_user, gig, stripe_emulator):
    from stripe_payments.services import refunds

    response = client_for(student).post(PAY_URL, {"gig_id": gig.pk, "card_details": card(VISA)}, format="json")
    assert response.status_code == 200, response.content
    payment = Payment.objects.get(pk=response.json()["payment_id"])
    refund = refunds.admin_refund_create(admin=admin_user, payment=payment, amount_cents=1500, reason="")
    stripe_emulator.trigger_dispute(payment.stripe_charge_id)
    deliver(client, only_event(stripe_emulator, "charge.dispute.created"))
    payment.refresh_from_db()
    assert (payment.status, payment.refunded_cents) == (S.DISPUTED, 1500)

    stripe_emulator.fail_refund(refund.stripe_refund_id)
    deliver(client, only_event(stripe_emulator, "refund.updated"))  # the refund is taken back out

    payment.refresh_from_db()
    assert (payment.status, payment.refunded_cents) == (S.DISPUTED, 0)
    assert Booking.objects.get(payment=payment).status == BookingStatus.DISPUTED


# --- disputes ---------------------------------------------------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize("state", [S.SUCCEEDED, S.PARTIALLY_REFUNDED, S.REFUNDED])
def test_a_dispute_makes_the_payment_and_its_booking_disputed_once(student, gig, state):
    payment = _payment(student, gig, state, refunded_cents=REFUNDED_IN.get(state, 0))
    booking = _with_booking(payment, BookingStatus.CONFIRMED)

    lifecycle.payment_mark_disputed(payment_id=payment.pk)
    lifecycle.payment_mark_disputed(payment_id=payment.pk)

    payment.refresh_from_db()
    booking.refresh_from_db()
    assert (payment.status, booking.status) == (S.DISPUTED, BookingStatus.DISPUTED)
    assert payment.refunded_cents == REFUNDED_IN.get(state, 0)


@pytest.mark.django_db
@pytest.mark.parametrize("state", [S.PROCESSING, S.REQUIRES_ACTION, S.FAILED, S.CANCELED])
def test_a_payment_that_captured_nothing_cannot_be_disputed(student, gig, state):
    payment = _payment(student, gig, state)

    with pytest.raises(InvalidState):
        lifecycle.payment_mark_disputed(payment_id=payment.pk)

    payment.refresh_from_db()
    assert payment.status == state


# --- the booking of a settled payment ---------------------------------------------------------------------
@pytest.mark.django_db
def test_a_succeeded_payment_missing_its_booking_gets_it_back_once(student, gig):
    payment = _payment(student, gig, S.SUCCEEDED)

    lifecycle.payment_booking_restore(payment_id=payment.pk)
    lifecycle.payment_booking_restore(payment_id=payment.pk)

    booking = Booking.objects.get(payment=payment)
    assert (booking.status, booking.student_id, booking.gig_id) == (BookingStatus.PENDING_CONFIRMATION, student.pk,
                                                                    gig.pk)


@pytest.mark.django_db
@pytest.mark.parametrize("state", [s for s in STATES if s != S.SUCCEEDED])
def test_only_a_succeeded_payment_gets_its_booking_back(student, gig, state):
    payment = _payment(student, gig, state, refunded_cents=REFUNDED_IN.get(state, 0))

    lifecycle.payment_booking_restore(payment_id=payment.pk)

    assert not Booking.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("booking_before", "booking_after"), [
    (BookingStatus.PENDING_CONFIRMATION, BookingStatus.REFUNDED), (BookingStatus.CONFIRMED, BookingStatus.REFUNDED),
    (BookingStatus.COMPLETED, BookingStatus.REFUNDED), (BookingStatus.DECLINED, BookingStatus.DECLINED),
    (BookingStatus.DISPUTED, BookingStatus.DISPUTED),
])
def test_the_open_booking_of_a_payment_refunded_in_full_is_closed_refunded(student, gig, booking_before,
                                                                           booking_after):
    payment = _payment(student, gig, S.REFUNDED, refunded_cents=5000)
    booking = _with_booking(payment, booking_before)

    lifecycle.payment_booking_close_refunded(payment_id=payment.pk)

    booking.refresh_from_db()
    assert booking.status == booking_after


@pytest.mark.django_db
def test_the_booking_of_a_partly_refunded_payment_stays_open(student, gig):
    payment = _payment(student, gig, S.PARTIALLY_REFUNDED, refunded_cents=4999)
    booking = _with_booking(payment, BookingStatus.CONFIRMED)

    lifecycle.payment_booking_close_refunded(payment_id=payment.pk)

    booking.refresh_from_db()
    assert booking.status == BookingStatus.CONFIRMED


# --- only the lifecycle writes Payment.status ---------------------------------------------------------------
# Names the code gives a Payment (``payment``, ``locked``, ``resumed``, ``p``, ``*_payment``...).
PAYMENT_NAMES = {"p", "locked", "resumed", "settled", "charged", "reopened"}
# Creating a row in its first state is not a move: ``_new_payment`` commits each payment ``processing``.
CREATE_ALLOWED = {("services/payments.py", "_new_payment")}
QUERYSET_WRITES = {"update", "update_or_create", "get_or_create", "bulk_create", "create"}


def _is_payment_name(node: ast.expr) -> bool:
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
    return name in PAYMENT_NAMES or name == "payment" or name.endswith("_payment") or name.startswith("payment_")


def _base_name(node: ast.expr) -> str:
    while isinstance(node, (ast.Attribute, ast.Call, ast.Subscript)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else ""


def _names_status(node: ast.Call) -> bool:
    if any(kw.arg == "status" for kw in node.keywords):
        return True
    for kw in node.keywords:  # update_or_create(defaults={"status": ...}), save(update_fields=["status"])
        if isinstance(kw.value, ast.Dict) and any(isinstance(k, ast.Constant) and k.value == "status"
                                                  for k in kw.value.keys):
            return True
    return False


def payment_status_writes(source: str, path: str) -> list[str]:
    """Every write of a Payment's status in ``source``: ``<payment>.status = ...`` (also augmented or
    unpacked), ``setattr(<payment>, "status", ...)``, ``<payment>.save(update_fields=[..."status"...])``,
    ``Payment.objects....update(status=...)`` (and the other queryset writes), ``Payment(status=...)``,
    and ``Payment.objects.create(status=...)`` outside ``CREATE_ALLOWED``. ``path`` is relative to the
    package; each finding is ``path:line: what``."""
    found = []

    def visit(node: ast.AST, function: str) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            function = node.name
        targets = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        stack = list(targets)
        while stack:
            target = stack.pop()
            if isinstance(target, (ast.Tuple, ast.List)):
                stack.extend(target.elts)
            elif isinstance(target, ast.Starred):
                stack.append(target.value)
            elif isinstance(target, ast.Attribute) and target.attr == "status" and _is_payment_name(target.value):
                found.append(f"{path}:{target.lineno}: {ast.unparse(target)} = ...")
        if isinstance(node, ast.Call):
            func = node.func
            if (isinstance(func, ast.Name) and func.id == "setattr" and len(node.args) >= 2
                    and _is_payment_name(node.args[0])
                    and isinstance(node.args[1], ast.Constant) and node.args[1].value == "status"):
                found.append(f"{path}:{node.lineno}: setattr(..., 'status', ...)")
            elif isinstance(func, ast.Attribute) and func.attr == "save" and _is_payment_name(func.value):
                for kw in node.keywords:
                    if kw.arg == "update_fields" and isinstance(kw.value, (ast.List, ast.Tuple, ast.Set)) and any(
                            isinstance(e, ast.Constant) and e.value == "status" for e in kw.value.elts):
                        found.append(f"{path}:{node.lineno}: {ast.unparse(func)}(update_fields=[... 'status' ...])")
            elif isinstance(func, ast.Name) and func.id == "Payment" and _names_status(node):
                found.append(f"{path}:{node.lineno}: Payment(status=...)")
            elif (isinstance(func, ast.Attribute) and func.attr in QUERYSET_WRITES and _base_name(func) == "Payment"
                  and _names_status(node) and not (func.attr == "create" and (path, function) in CREATE_ALLOWED)):
                found.append(f"{path}:{node.lineno}: {ast.unparse(func)}(status=...)")
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    visit(ast.parse(source), "")
    return found


def _package_modules() -> list[Path]:
    """Every module of stripe_payments but its migrations and tests (which set up rows as they need)."""
    return sorted(p for p in PACKAGE.rglob("*.py")
                  if not {"migrations", "tests"} & set(p.relative_to(PACKAGE).parts))


def test_only_the_lifecycle_writes_payment_status():
    lifecycle_path = Path(lifecycle.__file__).resolve()
    modules = _package_modules()
    assert lifecycle_path in modules and len(modules) > 20  # the walk sees the whole package

    writes = [w for path in modules if path != lifecycle_path
              for w in payment_status_writes(path.read_text(), path.relative_to(PACKAGE).as_posix())]

    assert writes == [], "only services/lifecycle.py may write Payment.status:\n" + "\n".join(writes)


def test_the_status_write_check_sees_the_lifecycles_own_writes():
    """Not a vacuous check: run on the lifecycle itself, it finds its writes (``_move`` and the saves)."""
    writes = payment_status_writes(Path(lifecycle.__file__).read_text(), "services/lifecycle.py")

    assert [w for w in writes if "payment.status = ..." in w]  # _move
    assert len([w for w in writes if "update_fields" in w]) >= 3  # reopen, apply a refund, mark disputed


def test_a_status_write_added_to_the_refund_service_is_caught():
    path = PACKAGE / "services" / "refunds.py"
    source = path.read_text()
    assert payment_status_writes(source, "services/refunds.py") == []
    anchor = "    refund.stripe_refund_id = result.id\n"
    assert anchor in source
    mutated = source.replace(anchor, anchor + "    payment.status = PaymentStatus.REFUNDED\n", 1)

    writes = payment_status_writes(mutated, "services/refunds.py")

    line = mutated[:mutated.index("    payment.status = PaymentStatus.REFUNDED")].count("\n") + 1
    assert writes == [f"services/refunds.py:{line}: payment.status = ..."]


@pytest.mark.parametrize(("snippet", "caught"), [
    ("payment.status = 'refunded'", True),
    ("locked.status = PaymentStatus.FAILED", True),
    ("self.payment.status = x", True),
    ("refund.payment.status = x", True),
    ("payment.status, payment.refunded_cents = x, 0", True),
    ("setattr(payment, 'status', x)", True),
    ("payment.save(update_fields=['status', 'updated_at'])", True),
    ("Payment.objects.filter(pk=1).update(status='failed')", True),
    ("Payment.objects.select_for_update().filter(pk=1).update(status=S.FAILED, updated_at=now)", True),
    ("Payment.objects.update_or_create(pk=1, defaults={'status': 'failed'})", True),
    ("Payment.objects.create(student=s, status=PaymentStatus.SUCCEEDED)", True),
    ("Payment(student=s, status='succeeded')", True),
    # Not a payment's status: refund requests, webhook events, bookings; and reads.
    ("refund.status = RefundRequestStatus.FAILED", False),
    ("event.status = WebhookEventStatus.IGNORED", False),
    ("booking.status = to", False),
    ("RefundRequest.objects.filter(pk=1).update(status='rejected')", False),
    ("WebhookEvent.objects.filter(pk=1).update(status='failed')", False),
    ("Payment.objects.filter(status='processing').update(idempotency_key=None)", False),
    ("status = payment.status", False),
    ("payment.save(update_fields=['refunded_cents'])", False),
])
def test_the_status_write_check_tells_a_payments_status_from_other_writes(snippet, caught):
    source = f"def service(payment, locked, refund, event, booking, x, s, now):\n    {snippet}\n"

    assert bool(payment_status_writes(source, "services/example.py")) is caught


def test_creating_a_payment_in_its_first_state_is_allowed_only_in_new_payment():
    create = "    return Payment.objects.create(student=s, status=PaymentStatus.PROCESSING)\n"

    assert payment_status_writes(f"def _new_payment(s):\n{create}", "services/payments.py") == []
    assert payment_status_writes(f"def _other(s):\n{create}", "services/payments.py")
    assert payment_status_writes(f"def _new_payment(s):\n{create}", "services/refunds.py")
