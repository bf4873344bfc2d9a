"""The ledger's invariants over random sequences of payments (to teachers with and without a ready
connected account), partial and full refunds, onboarding and payout runs (Hypothesis, stateful),
against the emulator: after every step the ledger balances and agrees with the payments, and at
the end with Stripe's balance transactions of the platform and of each connected account."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from stripe_payments import gateway
from stripe_payments.models import ConnectedAccount, Payment
from stripe_payments.services import ledger, payouts, refunds

pytestmark = [pytest.mark.django_db, pytest.mark.emulator]

_keys = itertools.count()


def test_ledger_invariants_hold_over_random_sequences(stripe_emulator, paid, make_gig, teacher, other_teacher,
                                                      admin_user):
    teachers = [teacher, other_teacher]

    class LedgerMachine(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.payments: list[int] = []

        @rule(who=st.integers(0, 1), price=st.sampled_from([50, 99, 3333, 5000, 12345]))
        def pay(self, who, price):
            payment = paid(target=make_gig(teachers[who], price_cents=price))
            self.payments.append(payment.pk)

        @rule(who=st.integers(0, 1))
        def onboard(self, who):
            if ConnectedAccount.objects.filter(teacher=teachers[who]).exists():
                return
            acct = gateway.account_create(email=teachers[who].email, teacher_id=teachers[who].pk,
                                          idempotency_key=f"stateful-{teachers[who].pk}-{next(_keys)}")
            stripe_emulator.complete_onboarding(acct.id)
            ConnectedAccount.objects.create(teacher=teachers[who], stripe_account_id=acct.id, transfers_active=True,
                                            charges_enabled=True, payouts_enabled=True)

        @precondition(lambda self: self.payments)
        @rule(pick=st.integers(0, 10_000), part=st.sampled_from([None, 1, 3, 2]))
        def refund(self, pick, part):
            payment = Payment.objects.get(pk=self.payments[pick % len(self.payments)])
            left = payment.refundable_cents
            if left <= 0:
                return
            amount = None if part is None else max(1, left // part) if part > 1 else 1
            refunds.admin_refund_create(admin=admin_user, payment=payment, amount_cents=amount, reason="stateful")

        @rule()
        def pay_out(self):
            run = payouts.pay_out_teachers()
            assert not run.failed and not run.pending

        @invariant()
        def balances(self):
            report = ledger.check()
            assert report.ok, report.differences

        def teardown(self):
            payouts.pay_out_teachers()
            report = ledger.check()
            ledger.compare_with_stripe(report)
            assert report.ok, report.differences

    run_state_machine_as_test(LedgerMachine, settings=settings(
        max_examples=6, stateful_step_count=12, deadline=None, database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]))
