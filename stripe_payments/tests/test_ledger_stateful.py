"""The ledger's invariants over random sequences of payments (to teachers with and without a ready
connected account), partial and full refunds, disputes opened, won and lost, onboarding and payout
runs (Hypothesis, stateful),
against the emulator: after every step the ledger balances and agrees with the payments, and at
the end with Stripe's balance transactions of the platform and of each connected account."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from stripe_payments.models import ConnectedAccount, Dispute, Payment, PaymentStatus
from stripe_payments.services import ledger, payouts, refunds

from .conftest import dashboard, deliver, onboard

pytestmark = [pytest.mark.django_db, pytest.mark.emulator]

def test_ledger_invariants_hold_over_random_sequences(client, stripe_emulator, paid, make_gig, teacher,
                                                      other_teacher, admin_user):
    teachers = [teacher, other_teacher]

    class LedgerMachine(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.payments: list[int] = []

        @rule(who=st.integers(0, 1), price=st.sampled_from([50, 99, 3333, 5000, 12345]))
        def pay(self, who, price):
            cache.clear()  # the payment throttle counts in the cache: this test pays far more than a student
            payment = paid(target=make_gig(teachers[who], price_cents=price))
            self.payments.append(payment.pk)

        @rule(who=st.integers(0, 1))
        def onboard(self, who):
            if not ConnectedAccount.objects.filter(teacher=teachers[who]).exists():
                onboard(stripe_emulator, teachers[who])

        @precondition(lambda self: self.payments)
        @rule(pick=st.integers(0, 10_000), part=st.sampled_from([None, 1, 3, 2]))
        def refund(self, pick, part):
            payment = Payment.objects.get(pk=self.payments[pick % len(self.payments)])
            left = payment.refundable_cents
            if left <= 0 or payment.status == PaymentStatus.DISPUTED:
                return
            amount = None if part is None else max(1, left // part) if part > 1 else 1
            refunds.admin_refund_create(admin=admin_user, payment=payment, amount_cents=amount, reason="stateful")

        @precondition(lambda self: self.payments)
        @rule(pick=st.integers(0, 10_000))
        def dispute(self, pick):
            payment = Payment.objects.get(pk=self.payments[pick % len(self.payments)])
            if payment.status == PaymentStatus.DISPUTED or payment.refundable_cents <= 0:
                return
            stripe_emulator.trigger_dispute(payment.stripe_charge_id)
            deliver(client, stripe_emulator.events("charge.dispute.created")[-1])

        @rule(pick=st.integers(0, 10_000), outcome=st.sampled_from(["won", "lost"]))
        def close_dispute(self, pick, outcome):
            open_ = list(Dispute.objects.filter(status="needs_response").order_by("pk"))
            if not open_:
                return
            dispute = open_[pick % len(open_)]
            stripe_emulator.close_dispute(dispute.stripe_dispute_id, outcome)
            deliver(client, stripe_emulator.events("charge.dispute.closed")[-1])

        @rule()
        def fund(self):  # the platform's other payments: available funds for restore transfers
            dashboard(stripe_emulator).v1.payment_intents.create(params={
                "amount": 50000, "currency": "usd", "confirm": True, "payment_method": "pm_card_bypassPending"})

        @rule()
        def pay_out(self):
            run = payouts.pay_out_teachers()
            assert not run.failed  # a restore may wait for available funds (pending)

        @invariant()
        def balances(self):
            report = ledger.check()
            assert report.ok, report.differences

        def teardown(self):
            self.fund()
            payouts.pay_out_teachers()
            report = ledger.check()
            ledger.compare_with_stripe(report)
            assert report.ok, report.differences

    run_state_machine_as_test(LedgerMachine, settings=settings(
        max_examples=30, stateful_step_count=15, deadline=None, database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]))
