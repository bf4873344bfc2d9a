"""Disputes and the split, against the emulator: the platform is liable on destination charges, so
when a dispute's funds are withdrawn the teacher's share is taken back (reversed from their account
by the payout run, or no longer owed) and the platform loses its fee part; a won dispute gives both
back (the share owed again, then paid by a new transfer); a lost one leaves them. The
charge.dispute.* webhooks re-read the dispute, so replays and reordering end in the same state."""

from __future__ import annotations

import pytest

from stripe_payments.models import (
    Dispute,
    DisputeStatus,
    LedgerEntry,
    PaymentStatus,
)
from stripe_payments.services import ledger, payouts, refunds

from .conftest import account_net, assert_ledger_ok, dashboard, deliver, ledger_balances, onboard

pytestmark = [pytest.mark.django_db, pytest.mark.emulator]

def fund_platform(emulator) -> None:
    """Available funds on the platform's balance (Stripe's 4000000000000077 test card), as a live
    platform has from its other payments: a restore transfer is paid from them."""
    dashboard(emulator).v1.payment_intents.create(params={
        "amount": 20000, "currency": "usd", "confirm": True, "payment_method": "pm_card_bypassPending"})


def last_event(emulator, type_: str) -> dict:
    return emulator.events(type_)[-1]


def open_dispute(client, emulator, payment) -> Dispute:
    dp = emulator.trigger_dispute(payment.stripe_charge_id)
    deliver(client, last_event(emulator, "charge.dispute.created"))
    return Dispute.objects.get(stripe_dispute_id=dp["id"])


def close(client, emulator, dispute: Dispute, outcome: str) -> Dispute:
    emulator.close_dispute(dispute.stripe_dispute_id, outcome)
    deliver(client, last_event(emulator, "charge.dispute.closed"))
    dispute.refresh_from_db()
    return dispute


def test_a_lost_dispute_of_a_destination_charge_takes_the_teachers_share_back(client, stripe_emulator, paid,
                                                                                teacher):
    account = onboard(stripe_emulator, teacher)
    payment = paid()
    dispute = open_dispute(client, stripe_emulator, payment)
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.DISPUTED
    assert (dispute.status, dispute.amount_cents, dispute.fee_cents, dispute.share_cents) == (
        DisputeStatus.NEEDS_RESPONSE, 5000, 500, 4500)
    assert dispute.share_was_paid_out and dispute.evidence_due_by is not None
    assert ledger_balances(teacher) == (0, 0, 0)
    run = payouts.pay_out_teachers()  # takes the share back from the teacher's account at Stripe
    assert (run.reversals, run.reversed_cents) == (1, 4500)
    assert account_net(account.stripe_account_id) == 0
    assert payouts.pay_out_teachers().reversals == 0  # once
    dispute = close(client, stripe_emulator, dispute, "lost")
    assert dispute.status == DisputeStatus.LOST
    assert ledger_balances(teacher) == (0, 0, 0)
    assert ledger.check().total.disputed_cents == 5000
    assert_ledger_ok()


def test_a_won_dispute_gives_the_share_back_to_the_teacher(client, stripe_emulator, paid, teacher):
    account = onboard(stripe_emulator, teacher)
    payment = paid()
    dispute = open_dispute(client, stripe_emulator, payment)
    payouts.pay_out_teachers()
    dispute = close(client, stripe_emulator, dispute, "won")
    assert ledger_balances(teacher) == (500, 4500, 0)  # the fee kept again, the share owed again
    stalled = payouts.pay_out_teachers()  # the platform's available balance is short: retried later
    assert stalled.paid_cents == 0 and stalled.pending
    fund_platform(stripe_emulator)  # the new transfer is paid from the platform's available balance
    run = payouts.pay_out_teachers()
    assert run.paid_cents == 4500
    dispute.refresh_from_db()
    assert dispute.restore_transfer_id
    assert ledger_balances(teacher) == (500, 0, 4500)
    assert account_net(account.stripe_account_id) == 4500
    assert payouts.pay_out_teachers().paid_cents == 0  # once
    assert ledger.check().total.disputed_cents == 0
    assert_ledger_ok()


def test_a_dispute_of_an_owed_share_lowers_what_is_owed_and_a_win_restores_it(client, stripe_emulator, paid,
                                                                                teacher):
    payment = paid()  # no account yet: the share is owed
    dispute = open_dispute(client, stripe_emulator, payment)
    assert not dispute.share_was_paid_out
    assert ledger_balances(teacher) == (0, 0, 0)
    onboard(stripe_emulator, teacher)
    assert payouts.pay_out_teachers().paid == []  # nothing owed while it is disputed
    close(client, stripe_emulator, dispute, "won")
    assert ledger_balances(teacher) == (500, 4500, 0)
    assert payouts.pay_out_teachers().paid_cents == 4500  # the share transfer, as for any owed share
    assert ledger_balances(teacher) == (500, 0, 4500)
    assert_ledger_ok()


def test_a_dispute_after_a_partial_refund_splits_what_was_left(client, stripe_emulator, paid, teacher, admin_user):
    onboard(stripe_emulator, teacher)
    payment = paid()
    refunds.admin_refund_create(admin=admin_user, payment=payment, amount_cents=1000, reason="test")
    dispute = open_dispute(client, stripe_emulator, payment)
    assert (dispute.amount_cents, dispute.fee_cents, dispute.share_cents) == (4000, 400, 3600)
    assert ledger_balances(teacher) == (0, 0, 0)
    payouts.pay_out_teachers()
    assert_ledger_ok()


def test_dispute_events_replayed_and_reordered_end_in_the_same_state(client, stripe_emulator, paid, teacher):
    onboard(stripe_emulator, teacher)
    payment = paid()
    dp = stripe_emulator.trigger_dispute(payment.stripe_charge_id)
    created = last_event(stripe_emulator, "charge.dispute.created")
    withdrawn = last_event(stripe_emulator, "charge.dispute.funds_withdrawn")
    stripe_emulator.close_dispute(dp["id"], "won")
    closed = last_event(stripe_emulator, "charge.dispute.closed")
    reinstated = last_event(stripe_emulator, "charge.dispute.funds_reinstated")
    for event in (closed, created, reinstated, withdrawn, closed, created):  # late, out of order, twice
        deliver(client, event)
    dispute = Dispute.objects.get()
    assert dispute.status == DisputeStatus.WON
    assert sorted(set(LedgerEntry.objects.filter(movement__startswith="dispute").values_list("movement", flat=True))
                  ) == [f"dispute-won:{dispute.pk}", f"dispute:{dispute.pk}"]
    assert ledger_balances(teacher) == (500, 4500, 0)
    fund_platform(stripe_emulator)
    payouts.pay_out_teachers()
    assert ledger_balances(teacher) == (500, 0, 4500)
    assert_ledger_ok()


def test_an_inquiry_moves_no_money(client, stripe_emulator, paid, teacher):
    onboard(stripe_emulator, teacher)
    payment = paid()
    dp = stripe_emulator.trigger_dispute(payment.stripe_charge_id)
    with stripe_emulator.state.lock:
        stripe_emulator.state.objects[dp["id"]]["status"] = "warning_needs_response"
    deliver(client, last_event(stripe_emulator, "charge.dispute.created"))
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.DISPUTED  # for admins to see
    assert ledger_balances(teacher) == (500, 0, 4500)
    assert not LedgerEntry.objects.filter(movement__startswith="dispute").exists()


def test_admins_see_open_disputes_with_their_deadline(client, stripe_emulator, paid, teacher, admin_user):
    onboard(stripe_emulator, teacher)
    dispute = open_dispute(client, stripe_emulator, paid())
    client.force_login(admin_user)
    page = client.get("/admin/stripe_payments/dispute/?open=yes")
    assert page.status_code == 200
    text = page.content.decode()
    assert dispute.stripe_dispute_id in text
    assert "6 d 23 h left" in text  # Stripe gives 7 days for evidence
    assert "$50.00" in text
    closed = client.get("/admin/stripe_payments/dispute/?open=no")
    assert dispute.stripe_dispute_id not in closed.content.decode()


def test_a_dispute_event_stripe_does_not_know_is_ignored(client, stripe_emulator):
    event = {"id": "evt_unknown_dispute", "object": "event", "type": "charge.dispute.created", "created": 1,
             "livemode": False, "data": {"object": {"id": "dp_unknown", "object": "dispute"}}}
    assert deliver(client, event)["status"] == "processed"
    assert not Dispute.objects.exists()
