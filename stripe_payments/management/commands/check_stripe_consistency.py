"""Compare every PaymentIntent, charge and refund at Stripe with the database, repair what can be
repaired, and exit 1 with a line for each difference that needs a person. Cron: nightly (or run by
reconcile_payments)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from stripe_payments import gateway
from stripe_payments.services.consistency import SETTLE_GRACE, check_stripe_consistency


def check_and_write(command: BaseCommand, *, repair: bool, since: datetime | None,
                    grace: timedelta) -> str | None:
    """Run the check and write one line per difference and a summary. Returns why the command must
    exit 1 (something left unrepaired, or Stripe unreadable), or None."""
    try:
        report = check_stripe_consistency(repair=repair, since=since, grace=grace)
    except gateway.GatewayError as exc:
        command.stderr.write(f"Stripe could not be read, nothing was compared: {exc.code}: {exc.message}")
        return "The Stripe consistency check could not read Stripe; run again later."
    for difference in report.differences:
        command.stdout.write(difference.line())
    command.stdout.write(report.summary())
    unrepaired = report.unrepaired
    if not unrepaired:
        return None
    if any(not d.repairable for d in unrepaired):
        return f"{len(unrepaired)} Stripe difference(s) left unrepaired; the NEEDS A PERSON lines need a person."
    return f"{len(unrepaired)} Stripe difference(s) left unrepaired."


class Command(BaseCommand):
    help = ("Compare Stripe's PaymentIntents, charges and refunds with the database; repair what can be "
            "repaired and exit 1 if anything is left.")

    def add_arguments(self, parser):
        parser.add_argument("--no-repair", action="store_true", help="report the differences, repair none")
        parser.add_argument("--since-days", type=float, default=None,
                            help="only Stripe objects and payments created in the last N days (default: all)")
        parser.add_argument("--grace-minutes", type=float, default=SETTLE_GRACE.total_seconds() / 60,
                            help="leave out payments with work younger than this, still settling (default 15)")

    def handle(self, *args, **options):
        since = None
        if options["since_days"] is not None:
            since = timezone.now() - timedelta(days=options["since_days"])
        failure = check_and_write(self, repair=not options["no_repair"], since=since,
                                  grace=timedelta(minutes=options["grace_minutes"]))
        if failure:
            raise CommandError(failure)
