"""Settle payments left processing or requires_action from Stripe's own state, then run the Stripe
consistency check (``check_stripe_consistency``). Cron: every 10 minutes."""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from stripe_payments.management.commands.check_stripe_consistency import check_and_write
from stripe_payments.services.reconciliation import reconcile


class Command(BaseCommand):
    help = ("Settle payments unsettled for longer than --older-than-minutes (default 15) from Stripe's state, "
            "then compare Stripe with the database (unless --skip-consistency).")

    def add_arguments(self, parser):
        parser.add_argument("--older-than-minutes", type=float, default=15.0)
        parser.add_argument("--skip-consistency", action="store_true",
                            help="do not run the Stripe consistency check afterwards")
        parser.add_argument("--consistency-since-days", type=float, default=None,
                            help="the check compares only what was created in the last N days (default: all)")

    def handle(self, *args, **options):
        older_than = timedelta(minutes=options["older_than_minutes"])
        report = reconcile(older_than=older_than)
        for line in report.changes:
            self.stdout.write(line)
        for line in report.errors:
            self.stderr.write(line)
        self.stdout.write(f"{len(report.changes)} change(s), {len(report.errors)} error(s)")
        failures = []
        if report.errors:
            failures.append("Some payments could not be reconciled; run again later.")
        if not options["skip_consistency"]:
            since = None
            if options["consistency_since_days"] is not None:
                since = timezone.now() - timedelta(days=options["consistency_since_days"])
            # The same window as reconciliation: younger payments may still be settling.
            failure = check_and_write(self, repair=True, since=since, grace=older_than)
            if failure:
                failures.append(failure)
        if failures:
            raise CommandError(" ".join(failures))
