"""Teachers paid through Stripe Connect, against the emulator: destination charges in the payment's
one call, platform charges paid out later by ``pay_out_teachers`` (once, whatever crashes), refunds
that give back each share to the cent, and the ledger that records all of it (``check_ledger``,
with and without Stripe's balance transactions)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command

from stripe_payments.models import (
    ConnectedAccount,
    LedgerAccount,
    LedgerEntry,
    LedgerKind,
    Payment,
    TeacherTransfer,
    TeacherTransferKind,
    TeacherTransferStatus,
)
from stripe_payments.services import ledger, payouts, refunds

from .conftest import account_net, assert_ledger_ok, ledger_balances, onboard, run_command, stripe_calls

pytestmark = [pytest.mark.django_db, pytest.mark.emulator]

def enable(emulator, account: ConnectedAccount) -> None:
    emulator.complete_onboarding(account.stripe_account_id)
    ConnectedAccount.objects.filter(pk=account.pk).update(transfers_active=True, charges_enabled=True,
                                                          payouts_enabled=True)


def stored(emulator, obj_id: str) -> dict:
    with emulator.state.lock:
        return dict(emulator.state.objects[obj_id])


def objects_of(emulator, kind: str) -> list[dict]:
    with emulator.state.lock:
        return [dict(o) for o in emulator.state.objects.values() if o.get("object") == kind]


def refund(admin, payment: Payment, cents: int | None) -> None:
    refunds.admin_refund_create(admin=admin, payment=payment, amount_cents=cents, reason="test")


# --- destination charges ---------------------------------------------------------------------------------
def test_a_payment_to_an_onboarded_teacher_is_a_destination_charge_in_one_call(stripe_emulator, paid, teacher):
    account = onboard(stripe_emulator, teacher)
    stripe_emulator.clear_requests()
    payment = paid()  # $50.00
    assert payment.destination_account_id == account.stripe_account_id
    posts = stripe_calls(stripe_emulator, "POST")
    assert [c["path"] for c in posts] == ["/v1/payment_intents"]  # no second call, no transfer call
    pi = stored(stripe_emulator, payment.stripe_payment_intent_id)
    assert pi["transfer_data"] == {"destination": account.stripe_account_id}
    assert pi["application_fee_amount"] == 500
    charge = stored(stripe_emulator, payment.stripe_charge_id)
    transfer = stored(stripe_emulator, charge["transfer"])
    fee = stored(stripe_emulator, charge["application_fee"])
    assert (transfer["amount"], transfer["destination"], transfer["source_transaction"]) == (
        5000, account.stripe_account_id, charge["id"])
    assert (fee["amount"], fee["account"]) == (500, account.stripe_account_id)
    assert account_net(account.stripe_account_id) == 4500
    tt = TeacherTransfer.objects.get(payment=payment)
    assert (tt.kind, tt.status, tt.amount_cents) == (TeacherTransferKind.DESTINATION, TeacherTransferStatus.PAID, 4500)
    assert ledger_balances(teacher) == (500, 0, 4500)
    assert_ledger_ok()


def test_a_teacher_without_a_ready_account_is_paid_on_the_platform_and_owed(stripe_emulator, paid, teacher):
    onboard(stripe_emulator, teacher, complete=False)  # created, not onboarded: no transfers yet
    payment = paid()
    assert payment.destination_account_id == ""
    assert stored(stripe_emulator, payment.stripe_payment_intent_id)["transfer_data"] is None
    assert not objects_of(stripe_emulator, "transfer")
    assert ledger_balances(teacher) == (500, 4500, 0)
    assert_ledger_ok()


def test_an_account_that_loses_its_capability_stops_receiving_destination_charges(stripe_emulator, paid, teacher):
    account = onboard(stripe_emulator, teacher)
    first = paid()
    stripe_emulator.restrict_account(account.stripe_account_id)
    ConnectedAccount.objects.filter(pk=account.pk).update(transfers_active=False)  # as account.updated does
    second = paid()
    assert first.destination_account_id == account.stripe_account_id
    assert second.destination_account_id == ""
    assert ledger_balances(teacher) == (1000, 4500, 4500)
    assert_ledger_ok()


# --- paying what is owed ---------------------------------------------------------------------------------
def test_a_platform_charge_is_paid_out_once_the_account_is_enabled(stripe_emulator, paid, teacher):
    payment = paid()
    assert payouts.pay_out_teachers().paid == []  # no account yet
    account = onboard(stripe_emulator, teacher, complete=False)
    assert payouts.pay_out_teachers().paid == []  # not enabled yet
    enable(stripe_emulator, account)
    run = payouts.pay_out_teachers()
    assert run.paid_cents == 4500 and len(run.paid) == 1
    transfer = objects_of(stripe_emulator, "transfer")
    assert len(transfer) == 1
    assert (transfer[0]["amount"], transfer[0]["destination"], transfer[0]["source_transaction"]) == (
        4500, account.stripe_account_id, payment.stripe_charge_id)
    assert ledger_balances(teacher) == (500, 0, 4500)
    assert account_net(account.stripe_account_id) == 4500
    assert_ledger_ok()
    # Run again (and once more through the command): nothing more is paid.
    assert payouts.pay_out_teachers().paid == []
    assert "paid 0 transfer(s)" in run_command("pay_out_teachers")
    assert len(objects_of(stripe_emulator, "transfer")) == 1


def test_a_payout_whose_answer_was_lost_is_paid_once_by_the_next_run(stripe_emulator, paid, teacher, settings):
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    paid(), paid(3000)
    enable(stripe_emulator, onboard(stripe_emulator, teacher, complete=False))
    stripe_emulator.arm_fault("POST", "^/v1/transfers$", "drop_after_work", count=1)
    first = payouts.pay_out_teachers()
    assert len(first.paid) == 1 and len(first.pending) == 1  # Stripe transferred; we never heard
    second = payouts.pay_out_teachers()
    assert second.paid == first.pending
    transfers = objects_of(stripe_emulator, "transfer")
    assert sorted(t["amount"] for t in transfers) == [2700, 4500]
    assert ledger_balances(teacher) == (800, 0, 7200)
    assert_ledger_ok()


def test_a_payout_run_killed_after_stripe_answered_pays_once_when_rerun(stripe_emulator, paid, teacher, monkeypatch):
    paid()
    enable(stripe_emulator, onboard(stripe_emulator, teacher, complete=False))
    real = payouts._paid

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("worker killed between Stripe's answer and the commit")

    monkeypatch.setattr(payouts, "_paid", killed)
    with pytest.raises(KeyboardInterrupt):
        payouts.pay_out_teachers()
    assert TeacherTransfer.objects.get().status == TeacherTransferStatus.PENDING
    monkeypatch.setattr(payouts, "_paid", real)
    assert payouts.pay_out_teachers().paid_cents == 4500
    assert len(objects_of(stripe_emulator, "transfer")) == 1  # the same key: Stripe replayed it
    assert_ledger_ok()


def test_a_pending_payout_older_than_stripes_key_lifetime_is_found_by_its_group(stripe_emulator, paid, teacher,
                                                                                 monkeypatch):
    paid()
    enable(stripe_emulator, onboard(stripe_emulator, teacher, complete=False))
    monkeypatch.setattr(payouts, "_paid", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        payouts.pay_out_teachers()
    monkeypatch.undo()
    TeacherTransfer.objects.update(created_at=TeacherTransfer.objects.get().created_at - timedelta(hours=30))
    stripe_emulator.clear_requests()
    assert payouts.pay_out_teachers().paid_cents == 4500
    assert stripe_calls(stripe_emulator, "POST", "/v1/transfers") == []  # found, not sent again
    assert len(objects_of(stripe_emulator, "transfer")) == 1
    assert_ledger_ok()


def test_the_payout_command_reports_and_fails_on_a_refused_transfer(stripe_emulator, paid, teacher):
    paid()
    account = onboard(stripe_emulator, teacher, complete=False)
    # The row says the account can receive transfers; Stripe says it cannot: refused, not retried.
    ConnectedAccount.objects.filter(pk=account.pk).update(transfers_active=True)
    with pytest.raises(CommandError, match="refused"):
        call_command("pay_out_teachers")
    assert TeacherTransfer.objects.get().status == TeacherTransferStatus.FAILED
    assert ledger_balances(teacher) == (500, 4500, 0)  # still owed
    assert_ledger_ok()


def test_a_refused_payout_is_tried_again_under_a_new_key_once_the_account_changed(stripe_emulator, paid, teacher):
    paid()
    account = onboard(stripe_emulator, teacher, complete=False)
    ConnectedAccount.objects.filter(pk=account.pk).update(transfers_active=True)  # Stripe: not yet
    assert payouts.pay_out_teachers().failed
    assert payouts.pay_out_teachers().failed == []  # not again while nothing changed
    stripe_emulator.complete_onboarding(account.stripe_account_id)
    account.refresh_from_db()
    account.charges_enabled = True
    account.save()  # as account.updated does: the account changed since the refusal
    run = payouts.pay_out_teachers()
    assert run.paid_cents == 4500  # a replay of the refusal would have failed again
    transfer = TeacherTransfer.objects.get()
    assert (transfer.status, transfer.refusals) == (TeacherTransferStatus.PAID, 1)
    assert len(objects_of(stripe_emulator, "transfer")) == 1
    assert_ledger_ok()


# --- refunds give back each share ------------------------------------------------------------------------
@pytest.mark.parametrize("steps", [[None], [1999, None], [1000, 1000, 1000, None], [1, None]])
def test_refunds_of_a_destination_charge_reverse_both_shares_to_the_cent(stripe_emulator, paid, teacher,
                                                                          admin_user, steps):
    account = onboard(stripe_emulator, teacher)
    payment = paid()
    for cents in steps:
        payment.refresh_from_db()
        refund(admin_user, payment, cents)
        payment.refresh_from_db()
        fee, owed, paid_ = ledger_balances(teacher)
        assert fee == 500 - payment.refunded_admin_fee_cents
        assert (owed, paid_) == (0, 4500 - payment.refunded_teacher_cents)
        assert account_net(account.stripe_account_id) == paid_  # Stripe agrees, to the cent
        assert_ledger_ok()
    charge = stored(stripe_emulator, payment.stripe_charge_id)
    assert stored(stripe_emulator, charge["transfer"])["amount_reversed"] == 5000
    assert stored(stripe_emulator, charge["application_fee"])["amount_refunded"] == 500
    assert ledger_balances(teacher) == (0, 0, 0)


def test_a_partial_refund_of_an_odd_amount_splits_as_the_contract_says(stripe_emulator, paid, teacher, admin_user):
    account = onboard(stripe_emulator, teacher)
    payment = paid(3333)  # fee 333, share 3000
    refund(admin_user, payment, 1111)
    payment.refresh_from_db()
    assert (payment.refunded_admin_fee_cents, payment.refunded_teacher_cents) == (111, 1000)
    assert ledger_balances(teacher) == (222, 0, 2000)
    assert account_net(account.stripe_account_id) == 2000
    assert_ledger_ok()


def test_a_refund_of_an_owed_share_lowers_what_is_owed_and_the_payout_pays_the_rest(stripe_emulator, paid,
                                                                                      teacher, admin_user):
    payment = paid()
    refund(admin_user, payment, 2000)  # fee part 200, share part 1800
    assert ledger_balances(teacher) == (300, 2700, 0)
    enable(stripe_emulator, onboard(stripe_emulator, teacher, complete=False))
    assert payouts.pay_out_teachers().paid_cents == 2700
    assert ledger_balances(teacher) == (300, 0, 2700)
    assert_ledger_ok()


def test_a_refund_after_the_payout_reverses_the_transfer_in_proportion(stripe_emulator, paid, teacher, admin_user):
    payment = paid()
    account = onboard(stripe_emulator, teacher, complete=False)
    enable(stripe_emulator, account)
    payouts.pay_out_teachers()
    refund(admin_user, payment, 1999)  # fee part 200, share part 1799
    assert ledger_balances(teacher) == (300, 0, 2701)
    run = payouts.reverse_paid_shares()
    assert (run.reversals, run.reversed_cents) == (1, 1799)
    assert payouts.reverse_paid_shares().reversals == 0  # once
    assert account_net(account.stripe_account_id) == 2701
    refund(admin_user, payment, None)
    payouts.pay_out_teachers()  # the payout run reverses too
    transfer = TeacherTransfer.objects.get(payment=payment)
    assert transfer.reversed_cents == 4500
    assert account_net(account.stripe_account_id) == 0
    assert ledger_balances(teacher) == (0, 0, 0)
    assert_ledger_ok()


def test_a_refund_made_in_stripes_dashboard_of_a_destination_charge_is_reversed_by_the_payout_run(
        stripe_emulator, paid, teacher):
    from stripe_payments.services import refunds as refund_services

    from .conftest import dashboard

    account = onboard(stripe_emulator, teacher)
    payment = paid()
    # Someone refunds $20.00 in Stripe's dashboard, without reversing the transfer.
    dashboard(stripe_emulator).v1.refunds.create(params={"payment_intent": payment.stripe_payment_intent_id,
                                                         "amount": 2000})
    refund_services.payment_sync_refunds(payment_id=payment.pk)  # as the refund webhooks do
    payment.refresh_from_db()
    assert (payment.refunded_admin_fee_cents, payment.refunded_teacher_cents) == (200, 1800)
    assert ledger_balances(teacher) == (300, 0, 2700)
    assert account_net(account.stripe_account_id) == 4500  # Stripe took nothing back yet
    run = payouts.pay_out_teachers()
    assert (run.reversals, run.reversed_cents) == (1, 1800)
    assert account_net(account.stripe_account_id) == 2700
    report = ledger.check()
    ledger.compare_with_stripe(report)
    # The platform bore the fee part: Stripe kept the application fee, the ledger's fee went down.
    assert [d for d in report.differences if "application fees" not in d] == []


def test_a_declined_booking_of_a_destination_charge_gives_both_shares_back(stripe_emulator, paid, teacher):
    from bookings.models import Booking

    account = onboard(stripe_emulator, teacher)
    payment = paid()
    refunds.booking_decline(booking=Booking.objects.get(payment=payment), user=teacher)
    assert ledger_balances(teacher) == (0, 0, 0)
    assert account_net(account.stripe_account_id) == 0
    assert_ledger_ok()


# --- the ledger ------------------------------------------------------------------------------------------
def test_every_movement_balances_and_is_written_once(stripe_emulator, paid, teacher, admin_user):
    onboard(stripe_emulator, teacher)
    payment = paid()
    refund(admin_user, payment, 1000)
    movements = {}
    for row in LedgerEntry.objects.filter(payment=payment):
        movements.setdefault(row.movement, []).append((row.account, row.kind, row.amount_cents))
    assert sorted(movements) == sorted([f"charge:{payment.pk}", f"transfer:{payment.teacher_transfer.pk}",
                                        f"refund:{payment.refund_requests.get().pk}"])
    assert all(sum(c for *_, c in rows) == 0 for rows in movements.values())
    # A destination charge's refund: Stripe's call reversed the share itself (kind refund, not reversal).
    assert (LedgerAccount.TEACHER_PAID, LedgerKind.REFUND, -900) in movements[
        f"refund:{payment.refund_requests.get().pk}"]
    ledger.post_charge(payment=payment)  # again: nothing new
    assert LedgerEntry.objects.filter(payment=payment).count() == 8


def test_ledger_rows_cannot_be_changed_or_deleted(stripe_emulator, paid):
    row = LedgerEntry.objects.filter(payment=paid()).first()
    row.amount_cents += 1
    with pytest.raises(ValueError, match="append-only"):
        row.save()
    with pytest.raises(ValueError, match="append-only"):
        row.delete()


def test_check_ledger_exits_0_when_it_balances_and_1_with_a_report_when_not(stripe_emulator, paid, teacher):
    onboard(stripe_emulator, teacher)
    payment = paid()
    assert "ledger OK" in run_command("check_ledger", "--stripe")
    LedgerEntry.objects.create(movement="tampered", account=LedgerAccount.TEACHER_PAID, kind=LedgerKind.TRANSFER,
                               amount_cents=100, payment=payment, teacher=teacher)
    with pytest.raises(CommandError, match="difference"):
        call_command("check_ledger", "--stripe")
    report = ledger.check()
    ledger.compare_with_stripe(report)
    text = "\n".join(report.differences)
    assert "movement tampered does not balance" in text
    assert f"teacher {teacher.pk}" in text and "Stripe's balance transactions 4500" in text


# --- payments made before the ledger -----------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_the_migration_writes_the_ledger_of_older_payments(student, gig, teacher):
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    from stripe_payments.money import split_amount

    before = [("stripe_payments", "0008_dispute")]
    after = [("stripe_payments", "0009_ledger_backfill")]
    MigrationExecutor(connection).migrate(before)
    try:
        state = MigrationExecutor(connection).loader.project_state(before).apps
        old_payment, old_refund = state.get_model("stripe_payments", "Payment"), state.get_model(
            "stripe_payments", "RefundRequest")
        split = split_amount(3333)
        common = dict(student_id=student.pk, teacher_id=teacher.pk, gig_id=gig.pk, amount_cents=3333, currency="usd",
                      admin_fee_cents=split.admin_fee_cents, teacher_amount_cents=split.teacher_amount_cents)
        refunded = old_payment.objects.create(**common, status="partially_refunded", refunded_cents=2222,
                                              refunded_admin_fee_cents=222, refunded_teacher_cents=2000)
        for cents in (1111, 1111):
            old_refund.objects.create(payment_id=refunded.pk, amount_cents=cents, status="succeeded", applied=True,
                                      requested_by_id=student.pk)
        old_payment.objects.create(**common, status="succeeded")
        old_payment.objects.create(**common, status="failed")  # never charged: no rows
        MigrationExecutor(connection).migrate(after)
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())  # the schema the other tests expect
    assert LedgerEntry.objects.values("payment_id").distinct().count() == 2
    assert ledger_balances(teacher) == (333 * 2 - 222, 3000 * 2 - 2000, 0)  # every share owed
    assert_ledger_ok(with_stripe=False)
