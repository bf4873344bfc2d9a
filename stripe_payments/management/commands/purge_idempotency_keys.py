"""Remove Idempotency-Key records older than 24 hours. Cron: hourly."""

from django.core.management.base import BaseCommand

from stripe_payments.idempotency import purge_expired


class Command(BaseCommand):
    help = "Delete idempotency keys older than IDEMPOTENCY_KEY_TTL_HOURS (24)."

    def handle(self, *args, **options):
        self.stdout.write(f"{purge_expired()} idempotency key(s) removed")
