"""Settle payments left processing or requires_action from Stripe's own state. Cron: every 10 minutes."""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from stripe_payments.reconciliation import reconcile


class Command(BaseCommand):
    help = "Settle payments unsettled for longer than --older-than-minutes (default 15) from Stripe's state."

    def add_arguments(self, parser):
        parser.add_argument("--older-than-minutes", type=float, default=15.0)

    def handle(self, *args, **options):
        report = reconcile(older_than=timedelta(minutes=options["older_than_minutes"]))
        for line in report.changes:
            self.stdout.write(line)
        for line in report.errors:
            self.stderr.write(line)
        self.stdout.write(f"{len(report.changes)} change(s), {len(report.errors)} error(s)")
        if report.errors:
            raise CommandError("Some payments could not be reconciled; run again later.")
