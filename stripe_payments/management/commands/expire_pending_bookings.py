"""Decline and refund bookings the teacher left unanswered, and finish expiry refunds whose Stripe
answer was lost. Celery beat runs it every 5 minutes (stripe_payments.tasks.expire_pending_bookings);
without a worker, cron can run this command."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from stripe_payments.services import refunds


class Command(BaseCommand):
    help = "Decline (and refund in full) bookings pending longer than BOOKING_CONFIRMATION_HOURS."

    def add_arguments(self, parser):
        parser.add_argument("--hours", type=float, default=None, help="Override BOOKING_CONFIRMATION_HOURS.")

    def handle(self, *args, **options):
        hours = options["hours"] if options["hours"] is not None else settings.BOOKING_CONFIRMATION_HOURS
        run = refunds.bookings_expire_overdue(hours=hours)
        for line in run.lines:
            self.stdout.write(line)
        for line in run.failures:
            self.stderr.write(line)
        self.stdout.write(f"{run.expired} expired, {len(run.failures)} failed")
        if run.failures:
            raise CommandError(f"{len(run.failures)} refund(s) could not reach Stripe; the bookings are declined "
                               "and their refunds stay owed for the next run (or reconcile_payments).")
