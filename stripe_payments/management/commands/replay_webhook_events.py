"""Process stored webhook events again: the failed ones, or those given by Stripe event id."""

from django.core.management.base import BaseCommand, CommandError

from stripe_payments.models import WebhookEvent
from stripe_payments.services.webhooks import webhook_events_replay


class Command(BaseCommand):
    help = "Replay failed webhook events (or the given Stripe event ids)."

    def add_arguments(self, parser):
        parser.add_argument("event_ids", nargs="*", help="Stripe event ids (evt_...); default: every failed event")

    def handle(self, *args, **options):
        ids = None
        if options["event_ids"]:
            found = dict(WebhookEvent.objects.filter(stripe_event_id__in=options["event_ids"])
                         .values_list("stripe_event_id", "pk"))
            missing = sorted(set(options["event_ids"]) - set(found))
            if missing:
                raise CommandError(f"unknown event id(s): {', '.join(missing)}")
            ids = list(found.values())
        outcomes = webhook_events_replay(event_ids=ids)
        for event, outcome in outcomes:
            self.stdout.write(f"{event.stripe_event_id} {event.type}: {outcome}")
        self.stdout.write(f"{len(outcomes)} event(s) replayed")
        if any(outcome.startswith("failed") for _, outcome in outcomes):
            raise CommandError("Some events failed again; see the errors in Django admin.")
