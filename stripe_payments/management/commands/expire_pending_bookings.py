"""Decline and refund bookings the teacher left unanswered, and finish expiry refunds whose Stripe
answer was lost. Cron: every 5 minutes."""

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from bookings.selectors import bookings_pending_confirmation_before
from linguaflex.errors import DomainError
from stripe_payments.models import RefundKind
from stripe_payments.services import refunds


class Command(BaseCommand):
    help = "Decline (and refund in full) bookings pending longer than BOOKING_CONFIRMATION_HOURS."

    def add_arguments(self, parser):
        parser.add_argument("--hours", type=float, default=None, help="Override BOOKING_CONFIRMATION_HOURS.")

    def handle(self, *args, **options):
        hours = options["hours"] if options["hours"] is not None else settings.BOOKING_CONFIRMATION_HOURS
        started = timezone.now()
        cutoff = started - timedelta(hours=hours)
        expired = failed = 0
        for booking_id in list(bookings_pending_confirmation_before(cutoff=cutoff).values_list("pk", flat=True)):
            try:
                refunds.booking_expire(booking_id=booking_id)
            except DomainError as exc:
                if exc.code == "invalid_state":
                    continue  # answered or cancelled meanwhile
                failed += 1
                self.stderr.write(f"booking {booking_id}: {exc.code}: {exc.message}")
                continue
            expired += 1
            self.stdout.write(f"booking {booking_id}: declined and refunded (no answer in {hours:g} h)")
        # Expired by an earlier run, but Stripe's answer to the refund was lost: finish those too.
        for refund_id in refunds.owed_booking_refund_ids(kind=RefundKind.EXPIRY, before=started):
            try:
                refund = refunds.refund_owed_finish(refund_request_id=refund_id)
            except DomainError as exc:
                failed += 1
                self.stderr.write(f"refund request {refund_id}: {exc.code}: {exc.message}")
                continue
            self.stdout.write(f"refund request {refund_id} (booking expired earlier): {refund.status}")
        self.stdout.write(f"{expired} expired, {failed} failed")
        if failed:
            raise CommandError(f"{failed} refund(s) could not reach Stripe; the bookings are declined and "
                               "their refunds stay owed for the next run (or reconcile_payments).")
