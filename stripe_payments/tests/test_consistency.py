"""check_stripe_consistency against the in-process Stripe emulator: real payments and refunds, then the
database (or Stripe) broken on purpose, and the report expected to name exactly that difference."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
import stripe
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from bookings.models import Booking, BookingStatus
from stripe_payments import gateway
from stripe_payments.models import Payment, PaymentStatus, RefundKind, RefundRequest, RefundRequestStatus
from stripe_payments.money import split_refunded
from stripe_payments.services import refunds
from stripe_payments.services.consistency import ConsistencyReport, check_stripe_consistency

from .conftest import PAY_URL, THREE_DS, VISA, card, stripe_calls

pytestmark = [pytest.mark.django_db, pytest.mark.emulator]

NOW = timedelta(0)  # no grace: what the tests just did is old enough to compare


def check(**kwargs) -> ConsistencyReport:
    return check_stripe_consistency(grace=NOW, **kwargs)


def found(report: ConsistencyReport) -> set[tuple[str, str, bool]]:
    return {(d.kind, d.subject, d.repaired) for d in report.differences}


def run(command: str, *args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(command, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def run_failing(command: str, *args) -> tuple[str, str, str]:
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError) as raised:
        call_command(command, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue(), str(raised.value)


def sdk(emulator) -> stripe.StripeClient:
    """Stripe as someone in its dashboard (or another program) would use it, past our gateway."""
    return stripe.StripeClient("sk_test_dashboard", base_addresses={"api": emulator.base_url})


def set_refunded(payment: Payment, cents: int, status: str) -> None:
    split = split_refunded(amount_cents=payment.amount_cents, admin_fee_cents=payment.admin_fee_cents,
                           refunded_cents=cents)
    Payment.objects.filter(pk=payment.pk).update(
        refunded_cents=cents, refunded_admin_fee_cents=split.admin_fee_cents,
        refunded_teacher_cents=split.teacher_amount_cents, status=status)


@pytest.fixture
def refunded(paid, admin_user):
    """A payment partly refunded by an admin (1500 of 5000 cents), and its refund request."""

    def make(amount_cents: int = 1500) -> tuple[Payment, RefundRequest]:
        payment = paid()
        request = refunds.admin_refund_create(admin=admin_user, payment=payment, amount_cents=amount_cents, reason="")
        assert request.status == RefundRequestStatus.SUCCEEDED
        payment.refresh_from_db()
        return payment, request

    return make


# --- a clean database -----------------------------------------------------------------------------------
def test_a_consistent_database_reports_no_differences_and_counts_what_it_checked(
        paid, refunded, teacher, stripe_emulator):
    paid()
    refunded()
    declined = paid()
    refunds.booking_decline(booking=Booking.objects.get(payment=declined), user=teacher)

    report = check()

    assert report.differences == [] and report.unrepaired == []
    assert report.checked == {"payment_intents": 3, "charges": 3, "refunds": 2, "payments": 3}
    out, _ = run("check_stripe_consistency", "--grace-minutes", "0")
    assert out.strip() == ("checked 3 payment intent(s), 3 charge(s), 2 refund(s), 3 payment(s): "
                           "0 difference(s), 0 repaired, 0 left unrepaired")


def test_failed_and_abandoned_payments_are_no_difference(client_for, student, gig, stripe_emulator):
    declined = client_for(student).post(PAY_URL, {"gig_id": gig.pk, "card_details": card("4000000000000002")},
                                        format="json")
    assert declined.status_code == 402
    three_ds = client_for(student).post(PAY_URL, {"gig_id": gig.pk, "card_details": card(THREE_DS)}, format="json")
    assert three_ds.status_code == 402

    report = check()

    assert report.differences == []
    assert report.checked["payments"] == 2


# --- repaired ----------------------------------------------------------------------------------------------
def test_a_refund_whose_database_write_was_lost_is_recorded_and_counted(refunded, stripe_emulator):
    payment, request = refunded()
    refund_id = request.stripe_refund_id
    RefundRequest.objects.filter(pk=request.pk).delete()
    set_refunded(payment, 0, PaymentStatus.SUCCEEDED)

    report = check()

    assert found(report) == {("refund_unrecorded", f"refund {refund_id}", True),
                             ("refunded_cents_mismatch", f"payment {payment.pk}", True)}
    assert report.unrepaired == []
    recorded = RefundRequest.objects.get(stripe_refund_id=refund_id)
    assert (recorded.payment_id, recorded.amount_cents, recorded.status) == (payment.pk, 1500, "succeeded")
    payment.refresh_from_db()
    assert (payment.status, payment.refunded_cents) == (PaymentStatus.PARTIALLY_REFUNDED, 1500)
    assert check().differences == []


def test_a_refund_recorded_but_never_counted_is_counted_once(refunded, stripe_emulator):
    payment, request = refunded()
    RefundRequest.objects.filter(pk=request.pk).update(applied=False)
    set_refunded(payment, 0, PaymentStatus.SUCCEEDED)

    report = check()

    assert found(report) == {("refunded_cents_mismatch", f"payment {payment.pk}", True)}
    payment.refresh_from_db()
    assert (payment.status, payment.refunded_cents, payment.refunded_admin_fee_cents + payment.refunded_teacher_cents) \
        == (PaymentStatus.PARTIALLY_REFUNDED, 1500, 1500)
    assert RefundRequest.objects.count() == 1


def test_a_dashboard_refund_is_recorded_as_external(paid, stripe_emulator):
    payment = paid()
    refund = sdk(stripe_emulator).v1.refunds.create(
        params={"payment_intent": payment.stripe_payment_intent_id, "amount": 1000})

    report = check()

    assert found(report) == {("refund_unrecorded", f"refund {refund.id}", True),
                             ("refunded_cents_mismatch", f"payment {payment.pk}", True)}
    recorded = RefundRequest.objects.get(stripe_refund_id=refund.id)
    assert (recorded.kind, recorded.amount_cents, recorded.status) == (RefundKind.EXTERNAL, 1000, "succeeded")
    payment.refresh_from_db()
    assert payment.refunded_cents == 1000
    assert Booking.objects.get(payment=payment).status == BookingStatus.PENDING_CONFIRMATION


def test_a_full_dashboard_refund_records_it_and_closes_the_booking(paid, stripe_emulator):
    payment = paid()
    booking = Booking.objects.get(payment=payment)
    Booking.objects.filter(pk=booking.pk).update(status=BookingStatus.CONFIRMED)
    refund = sdk(stripe_emulator).v1.refunds.create(params={"payment_intent": payment.stripe_payment_intent_id})

    report = check()

    assert found(report) == {("refund_unrecorded", f"refund {refund.id}", True),
                             ("refunded_cents_mismatch", f"payment {payment.pk}", True),
                             ("booking_not_refunded", f"booking {booking.pk}", True)}
    payment.refresh_from_db()
    assert (payment.status, payment.refunded_cents) == (PaymentStatus.REFUNDED, payment.amount_cents)
    booking.refresh_from_db()
    assert booking.status == BookingStatus.REFUNDED


def test_a_booking_reopened_after_its_full_refund_is_closed_again(paid, teacher, stripe_emulator):
    payment = paid()
    booking = refunds.booking_decline(booking=Booking.objects.get(payment=payment), user=teacher)
    Booking.objects.filter(pk=booking.pk).update(status=BookingStatus.CONFIRMED)

    report = check()

    assert found(report) == {("booking_not_refunded", f"booking {booking.pk}", True)}
    booking.refresh_from_db()
    assert booking.status == BookingStatus.REFUNDED
    assert RefundRequest.objects.filter(payment=payment).count() == 1


def test_a_deleted_booking_of_a_succeeded_payment_is_recreated_once(paid, stripe_emulator):
    payment = paid()
    Booking.objects.filter(payment=payment).delete()

    report = check()

    assert found(report) == {("intent_succeeded_no_booking", f"payment {payment.pk}", True)}
    assert Booking.objects.get(payment=payment).status == BookingStatus.PENDING_CONFIRMATION
    assert check().differences == []
    assert Booking.objects.filter(payment=payment).count() == 1


def test_a_payment_left_processing_while_its_intent_succeeded_is_settled_with_its_booking(paid, stripe_emulator):
    payment = paid()
    Booking.objects.filter(payment=payment).delete()
    Payment.objects.filter(pk=payment.pk).update(status=PaymentStatus.PROCESSING, stripe_charge_id="")

    report = check()

    assert found(report) == {("intent_succeeded_unsettled", f"payment {payment.pk}", True)}
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED and payment.stripe_charge_id
    assert Booking.objects.filter(payment=payment).count() == 1


def test_a_payment_whose_create_answer_was_lost_is_settled_from_its_intent(
        client_for, student, gig, stripe_emulator, settings):
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    stripe_emulator.arm_fault("POST", "/v1/payment_intents", "drop_after_work")
    response = client_for(student).post(PAY_URL, {"gig_id": gig.pk, "card_details": card(VISA)}, format="json")
    assert response.status_code == 503
    payment = Payment.objects.get()
    assert (payment.status, payment.stripe_payment_intent_id) == (PaymentStatus.PROCESSING, None)

    report = check()

    assert found(report) == {("intent_succeeded_unsettled", f"payment {payment.pk}", True)}
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED and payment.stripe_payment_intent_id
    assert Booking.objects.filter(payment=payment).count() == 1


def test_a_dispute_at_stripe_marks_the_payment_and_booking_disputed(paid, stripe_emulator):
    payment = paid()
    stripe_emulator.trigger_dispute(payment.stripe_charge_id)  # its webhook never arrives

    report = check()

    assert found(report) == {("dispute_unrecorded", f"payment {payment.pk}", True)}
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.DISPUTED
    assert Booking.objects.get(payment=payment).status == BookingStatus.DISPUTED


def test_a_refund_stripe_reports_failed_is_uncounted(refunded, stripe_emulator):
    payment, request = refunded()
    stripe_emulator.fail_refund(request.stripe_refund_id)  # its webhook never arrives

    report = check()

    assert found(report) == {("refund_status_mismatch", f"refund {request.stripe_refund_id}", True),
                             ("refunded_cents_mismatch", f"payment {payment.pk}", True)}
    request.refresh_from_db()
    assert (request.status, request.applied) == (RefundRequestStatus.FAILED, False)
    payment.refresh_from_db()
    assert (payment.status, payment.refunded_cents) == (PaymentStatus.SUCCEEDED, 0)


def test_a_second_run_repairs_nothing(paid, refunded, stripe_emulator):
    lost_booking = paid()
    Booking.objects.filter(payment=lost_booking).delete()
    dashboard = paid()
    sdk(stripe_emulator).v1.refunds.create(params={"payment_intent": dashboard.stripe_payment_intent_id,
                                                   "amount": 700})
    uncounted, request = refunded()
    RefundRequest.objects.filter(pk=request.pk).update(applied=False)
    set_refunded(uncounted, 0, PaymentStatus.SUCCEEDED)
    first = check()
    assert len(first.differences) == 4 and first.unrepaired == []
    writes = len(stripe_calls(stripe_emulator, "POST"))

    assert check().differences == []
    out, _ = run("check_stripe_consistency", "--grace-minutes", "0")
    assert "0 difference(s)" in out and "REPAIRED" not in out
    assert len(stripe_calls(stripe_emulator, "POST")) == writes  # the check never writes to Stripe


# --- needs a person ----------------------------------------------------------------------------------------------
def test_a_deleted_refund_request_still_counted_is_not_counted_twice(refunded, stripe_emulator):
    payment, request = refunded()
    refund_id = request.stripe_refund_id
    RefundRequest.objects.filter(pk=request.pk).delete()  # refunded_cents still counts it

    report = check()

    assert found(report) == {("refund_unrecorded", f"refund {refund_id}", False)}
    assert "undone: it would have left refunded_cents_mismatch" in report.differences[0].detail
    assert not RefundRequest.objects.exists()
    payment.refresh_from_db()
    assert (payment.status, payment.refunded_cents) == (PaymentStatus.PARTIALLY_REFUNDED, 1500)


def test_refunded_cents_off_while_every_refund_is_counted_needs_a_person(refunded, stripe_emulator):
    payment, _ = refunded()
    set_refunded(payment, 1000, PaymentStatus.PARTIALLY_REFUNDED)

    report = check()

    assert found(report) == {("refunded_cents_mismatch", f"payment {payment.pk}", False)}
    assert not report.differences[0].repairable
    out, _, error = run_failing("check_stripe_consistency", "--grace-minutes", "0")
    assert f"NEEDS A PERSON refunded_cents_mismatch payment {payment.pk}: Stripe refunded 1500 cents" in out
    assert "1 Stripe difference(s) left unrepaired" in error


def test_a_payment_marked_succeeded_while_its_intent_did_not_makes_the_command_exit_1(
        client_for, student, gig, stripe_emulator):
    response = client_for(student).post(PAY_URL, {"gig_id": gig.pk, "card_details": card(THREE_DS)}, format="json")
    payment = Payment.objects.get(pk=response.json()["error"]["payment_id"])
    Payment.objects.filter(pk=payment.pk).update(status=PaymentStatus.SUCCEEDED)

    out, _, _ = run_failing("check_stripe_consistency", "--grace-minutes", "0")

    assert (f"NEEDS A PERSON payment_succeeded_intent_not_succeeded payment {payment.pk}: the payment is "
            f"succeeded, but {payment.stripe_payment_intent_id} is requires_action at Stripe") in out
    assert not Booking.objects.exists()


def test_an_intent_naming_a_payment_the_database_does_not_have_needs_a_person(stripe_emulator, db):
    intent = sdk(stripe_emulator).v1.payment_intents.create(params={
        "amount": 5000, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True,
        "allowed_payment_method_types": ["card"], "metadata": {"payment_id": "987654"}})

    report = check()

    assert found(report) == {("intent_unknown_payment", f"intent {intent.id}", False)}
    assert "names payment 987654" in report.differences[0].detail


def test_an_intent_without_our_metadata_is_not_ours(stripe_emulator, db):
    sdk(stripe_emulator).v1.payment_intents.create(params={
        "amount": 5000, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True,
        "allowed_payment_method_types": ["card"]})

    report = check()

    assert report.differences == [] and report.checked["payment_intents"] == 1


def test_a_payment_whose_intent_stripe_does_not_have_needs_a_person(make_paid_booking, student, gig, stripe_emulator):
    payment = make_paid_booking(student=student, gig=gig).payment

    report = check()

    assert found(report) == {("intent_missing_at_stripe", f"payment {payment.pk}", False)}


def test_an_amount_that_differs_from_stripe_needs_a_person(paid, stripe_emulator):
    payment = paid()
    Payment.objects.filter(pk=payment.pk).update(amount_cents=6000, teacher_amount_cents=6000 - payment.admin_fee_cents)

    report = check()

    assert found(report) == {("amount_mismatch", f"payment {payment.pk}", False)}
    assert "5000 usd at Stripe, the payment 6000 usd" in report.differences[0].detail


def test_a_second_succeeded_intent_for_one_payment_is_a_double_charge_until_refunded(paid, stripe_emulator):
    payment = paid()
    extra = sdk(stripe_emulator).v1.payment_intents.create(params={
        "amount": payment.amount_cents, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True,
        "allowed_payment_method_types": ["card"], "metadata": {"payment_id": str(payment.pk)}})

    report = check()

    assert found(report) == {("double_charge", f"payment {payment.pk}", False)}
    assert extra.id in report.differences[0].detail and payment.stripe_payment_intent_id in report.differences[0].detail

    sdk(stripe_emulator).v1.refunds.create(params={"payment_intent": extra.id})  # a person resolved it
    assert check().differences == []


def test_a_payment_recording_another_payments_intent_reports_each_difference(paid, stripe_emulator):
    payment = paid()
    own = payment.stripe_payment_intent_id
    other = sdk(stripe_emulator).v1.payment_intents.create(params={
        "amount": payment.amount_cents, "currency": "usd", "allowed_payment_method_types": ["card"],
        "metadata": {"payment_id": "424242"}})
    Payment.objects.filter(pk=payment.pk).update(stripe_payment_intent_id=other.id)

    report = check()

    assert found(report) == {("intent_unknown_payment", f"intent {other.id}", False),
                             ("intent_payment_mismatch", f"intent {other.id}", False),
                             ("payment_succeeded_intent_not_succeeded", f"payment {payment.pk}", False),
                             ("intent_succeeded_untracked", f"intent {own}", False)}


def test_a_succeeded_refund_request_stripe_does_not_have_needs_a_person(paid, student, stripe_emulator):
    payment = paid()
    ghost = RefundRequest.objects.create(payment=payment, amount_cents=500, status=RefundRequestStatus.SUCCEEDED,
                                         requested_by=student, stripe_refund_id="re_ghost")

    report = check()

    assert found(report) == {("refund_unknown_at_stripe", "refund re_ghost", False)}
    assert f"refund request {ghost.pk}" in report.differences[0].detail


def test_a_refund_amount_that_differs_from_stripe_needs_a_person(refunded, stripe_emulator):
    _, request = refunded()
    RefundRequest.objects.filter(pk=request.pk).update(amount_cents=1400)

    report = check()

    assert found(report) == {("refund_amount_mismatch", f"refund {request.stripe_refund_id}", False)}


def test_a_failed_repair_is_reported_and_the_check_goes_on(paid, stripe_emulator, monkeypatch):
    broken = paid()
    Booking.objects.filter(payment=broken).delete()
    dashboard = paid()
    refund = sdk(stripe_emulator).v1.refunds.create(params={"payment_intent": dashboard.stripe_payment_intent_id,
                                                            "amount": 500})

    def unreachable(**kwargs):
        raise gateway.ProviderUnavailable()

    monkeypatch.setattr(refunds, "payment_sync_refunds", unreachable)
    report = check()

    assert found(report) == {("intent_succeeded_no_booking", f"payment {broken.pk}", True),
                             ("refund_unrecorded", f"refund {refund.id}", False),
                             ("refunded_cents_mismatch", f"payment {dashboard.pk}", False)}
    assert all("the repair failed: payment_provider_unavailable" in d.detail for d in report.unrepaired)
    assert not RefundRequest.objects.exists()


def test_a_difference_the_lists_show_but_a_fresh_read_does_not_is_no_difference(refunded, stripe_emulator,
                                                                                  monkeypatch):
    refunded()
    monkeypatch.setattr(gateway, "refunds_all", lambda **kwargs: [])  # a list read before the refund

    report = check()

    assert report.differences == [] and report.checked["refunds"] == 0


def test_a_recent_refund_on_a_payment_older_than_since_is_still_compared(paid, stripe_emulator):
    payment = paid()
    Payment.objects.filter(pk=payment.pk).update(created_at=timezone.now() - timedelta(days=10))
    old = int((timezone.now() - timedelta(days=10)).timestamp())
    with stripe_emulator.state.lock:
        stripe_emulator.state.objects[payment.stripe_payment_intent_id]["created"] = old
    refund = sdk(stripe_emulator).v1.refunds.create(params={"payment_intent": payment.stripe_payment_intent_id,
                                                            "amount": 800})

    report = check(since=timezone.now() - timedelta(days=7))

    assert report.checked["payment_intents"] == 0 and report.checked["refunds"] == 1
    assert found(report) == {("refund_unrecorded", f"refund {refund.id}", True),
                             ("refunded_cents_mismatch", f"payment {payment.pk}", True)}
    assert RefundRequest.objects.get(stripe_refund_id=refund.id).amount_cents == 800


# --- options ------------------------------------------------------------------------------------------------------
def test_no_repair_reports_what_it_would_repair_and_changes_nothing(paid, stripe_emulator):
    payment = paid()
    Booking.objects.filter(payment=payment).delete()

    out, _, _ = run_failing("check_stripe_consistency", "--no-repair", "--grace-minutes", "0")

    assert f"NOT REPAIRED intent_succeeded_no_booking payment {payment.pk}" in out
    assert not Booking.objects.exists()


def test_work_younger_than_the_grace_is_left_to_the_request_or_webhook_settling_it(paid, stripe_emulator):
    payment = paid()
    sdk(stripe_emulator).v1.refunds.create(params={"payment_intent": payment.stripe_payment_intent_id,
                                                   "amount": 1000})

    report = check_stripe_consistency()  # the default grace: 15 minutes

    assert report.differences == [] and report.checked["payments"] == 0
    assert not RefundRequest.objects.exists()
    assert "refund_unrecorded" in run("check_stripe_consistency", "--grace-minutes", "0")[0]


def test_since_days_leaves_out_older_payments(make_paid_booking, student, gig, stripe_emulator):
    payment = make_paid_booking(student=student, gig=gig).payment
    Payment.objects.filter(pk=payment.pk).update(created_at=timezone.now() - timedelta(days=10))

    out, _ = run("check_stripe_consistency", "--since-days", "7", "--grace-minutes", "0")
    assert "0 difference(s)" in out and "0 payment(s)" in out

    _, _, error = run_failing("check_stripe_consistency", "--since-days", "30", "--grace-minutes", "0")
    assert "1 Stripe difference(s) left unrepaired" in error


def test_an_unreachable_stripe_exits_1_with_a_clear_line_and_no_traceback(paid, stripe_emulator, settings):
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    paid()
    stripe_emulator.arm_fault("GET", "/v1/payment_intents", "drop_after_work")

    out, err, error = run_failing("check_stripe_consistency", "--grace-minutes", "0")

    assert "Stripe could not be read, nothing was compared: payment_provider_unavailable" in err
    assert error == "The Stripe consistency check could not read Stripe; run again later."
    assert "Traceback" not in out + err


# --- reconcile_payments runs the check -------------------------------------------------------------------------
def test_reconcile_runs_the_check_and_repairs_what_it_finds(paid, stripe_emulator):
    payment = paid()
    refund = sdk(stripe_emulator).v1.refunds.create(params={"payment_intent": payment.stripe_payment_intent_id,
                                                            "amount": 1000})

    out, _ = run("reconcile_payments", "--older-than-minutes", "0")

    assert "0 change(s), 0 error(s)" in out
    assert f"REPAIRED refund_unrecorded refund {refund.id}" in out
    assert "checked 1 payment intent(s), 1 charge(s), 1 refund(s), 1 payment(s)" in out
    assert RefundRequest.objects.get(stripe_refund_id=refund.id).kind == RefundKind.EXTERNAL


def test_reconcile_exits_1_when_the_check_leaves_something_for_a_person(make_paid_booking, student, gig,
                                                                        stripe_emulator):
    payment = make_paid_booking(student=student, gig=gig).payment
    Payment.objects.filter(pk=payment.pk).update(updated_at=timezone.now() - timedelta(minutes=30))

    out, _, error = run_failing("reconcile_payments", "--older-than-minutes", "15")

    assert "0 change(s), 0 error(s)" in out
    assert f"NEEDS A PERSON intent_missing_at_stripe payment {payment.pk}" in out
    assert "left unrepaired" in error


def test_reconcile_skip_consistency_does_not_run_the_check(make_paid_booking, student, gig, stripe_emulator):
    make_paid_booking(student=student, gig=gig)

    out, _ = run("reconcile_payments", "--older-than-minutes", "0", "--skip-consistency")

    assert out.strip() == "0 change(s), 0 error(s)"
    assert stripe_calls(stripe_emulator) == []
