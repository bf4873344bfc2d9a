"""Pay teachers the shares the platform owes them (platform charges made before their connected
account could receive transfers), one transfer per payment, then reverse at Stripe what refunds
took back from paid-out shares. Safe to run twice, at once, or again after a crash: each share is
paid once. Cron: every hour."""

from django.core.management.base import BaseCommand, CommandError

from linguaflex.money import format_dollars_and_cents
from stripe_payments.services.payouts import pay_out_teachers


class Command(BaseCommand):
    help = "Transfer every owed teacher share that can be paid now; reverse what refunds took back."

    def handle(self, *args, **options):
        run = pay_out_teachers()
        self.stdout.write(f"paid {len(run.paid)} transfer(s), {format_dollars_and_cents(run.paid_cents)}; "
                          f"{len(run.pending)} pending, {len(run.failed)} refused; "
                          f"{run.reversals} reversal(s), {format_dollars_and_cents(run.reversed_cents)}")
        if run.failed:
            raise CommandError(f"Stripe refused teacher transfer(s) {run.failed}: see the admin.")
        if run.pending:
            raise CommandError(f"Teacher transfer(s) {run.pending} got no answer from Stripe; run again later.")
