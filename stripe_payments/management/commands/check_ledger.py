"""Check the ledger: every movement balances; for every teacher and in total, students paid =
platform fees + teacher shares, and teacher shares = paid out + owed + refunded + lost to
disputes; the ledger agrees with the payments; with --stripe, also with Stripe's balance
transactions of the platform and of each connected account. Exit 1 and a report on any
difference."""

from django.core.management.base import BaseCommand, CommandError

from stripe_payments import gateway
from stripe_payments.services import ledger


class Command(BaseCommand):
    help = "Verify the ledger's invariants (and, with --stripe, the ledger against Stripe)."

    def add_arguments(self, parser):
        parser.add_argument("--stripe", action="store_true",
                            help="also compare with Stripe's balance transactions (API calls)")

    def handle(self, *args, **options):
        report = ledger.check()
        if options["stripe"]:
            try:
                ledger.compare_with_stripe(report)
            except gateway.GatewayError as exc:
                report.differences.append(f"Stripe could not be read ({type(exc).__name__}): nothing compared; "
                                          f"run again later")
        t = report.total
        self.stdout.write(
            f"{report.movements} movement(s), {report.payments} charged payment(s), {report.teachers} teacher(s): "
            f"students paid {t.gross_cents}c, platform fees {t.platform_fee_cents}c, refunded {t.refunded_cents}c, "
            f"paid to teachers {t.paid_out_cents}c, owed {t.owed_cents}c")
        for line in report.differences:
            self.stderr.write(line)
        if not report.ok:
            raise CommandError(f"{len(report.differences)} difference(s) in the ledger")
        self.stdout.write("ledger OK")
