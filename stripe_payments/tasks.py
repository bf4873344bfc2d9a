"""Celery tasks: applying stored webhook events, and the scheduled jobs (CELERY_BEAT_SCHEDULE).

Every task is idempotent and safe to run twice or at once: the work is done by the services,
under row locks and unique constraints (a webhook event is applied under its row's lock and once
``processed`` is never applied again; a booking expires under its lock; a teacher share is paid
under its ``TeacherTransfer`` row's key). A task sent outside any request runs under an id of its
own (linguaflex/celery.py), which its log lines and the Stripe objects it creates carry.
"""

from __future__ import annotations

import io
import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from linguaflex import metrics

from .idempotency import purge_expired
from .models import WebhookEvent, WebhookEventStatus
from .services import ledger, payouts, refunds, webhooks

logger = logging.getLogger(__name__)

# A webhook event's handler failing (Stripe unreachable, a lock timeout) is retried with backoff:
# 10 s, 20 s, 40 s ... capped at 10 min, 10 times (about an hour); then it stays ``failed`` in the
# admin, which can replay it.
WEBHOOK_MAX_RETRIES = 10


def requeue_after() -> timedelta:
    """A ``received`` event older than this has lost its task message (the broker or a worker died
    holding it) and is sent again. WEBHOOK_REQUEUE_AFTER_SECONDS: 300 by default, well above a busy
    queue's normal lag, so a backlog is not fed duplicates of what it already holds."""
    return timedelta(seconds=settings.WEBHOOK_REQUEUE_AFTER_SECONDS)


class JobProblem(RuntimeError):
    """A scheduled job ran and found something an admin must look at (the task counts as failed)."""


def webhook_retry_countdown(retries: int) -> int:
    return min(600, 10 * 2 ** retries)


@shared_task(bind=True, max_retries=WEBHOOK_MAX_RETRIES, acks_late=True)
def process_webhook_event(self, event_id: int) -> str:
    try:
        return webhooks.webhook_event_process(event_id=event_id).status
    except Exception as exc:
        if self.request.is_eager:
            raise  # in-process (no broker): the webhook view answers 500 and Stripe delivers again
        raise self.retry(exc=exc, countdown=webhook_retry_countdown(self.request.retries)) from None


@shared_task
def requeue_webhook_events() -> int:
    """Beat: send again the events still ``received`` requeue_after() after they were stored, unless
    tasks are waiting in the queue (then theirs are most likely among them, and duplicates would
    only lengthen the backlog)."""
    from linguaflex.metrics import queue_depths

    try:
        waiting = sum(queue_depths().values())
    except Exception:  # the depth is unknown: send them (a duplicate is harmless, a loss is not)
        waiting = 0
    if waiting:
        logger.info("requeue of webhook events skipped: %d task(s) waiting in the queue", waiting)
        return 0
    cutoff = timezone.now() - requeue_after()
    ids = list(WebhookEvent.objects.filter(status=WebhookEventStatus.RECEIVED, received_at__lt=cutoff)
               .order_by("received_at").values_list("pk", flat=True)[:500])
    for event_id in ids:
        process_webhook_event.delay(event_id)
    if ids:
        logger.warning("%d webhook event(s) were still unapplied after %ss: sent again", len(ids),
                       int(requeue_after().total_seconds()))
    return len(ids)


@shared_task
def expire_pending_bookings() -> int:
    run = refunds.bookings_expire_overdue(hours=settings.BOOKING_CONFIRMATION_HOURS)
    for line in run.lines:
        logger.info("%s", line)
    if run.failures:
        raise JobProblem(f"{len(run.failures)} expiry refund(s) could not reach Stripe (they stay owed): "
                         + "; ".join(run.failures[:5]))
    return run.expired


@shared_task
def reconcile_payments() -> str:
    """The ``reconcile_payments`` command: settle what the API could not, then compare with Stripe
    and repair. Its report goes to the log."""
    out = io.StringIO()
    try:
        call_command("reconcile_payments", "--older-than-minutes", "15", stdout=out, stderr=out)
    finally:
        for line in out.getvalue().splitlines():
            logger.info("reconcile: %s", line)
    return out.getvalue().splitlines()[-1] if out.getvalue() else ""


@shared_task
def purge_idempotency_keys() -> int:
    removed = purge_expired()
    logger.info("%d idempotency key(s) removed", removed)
    return removed


@shared_task
def pay_out_teachers() -> int:
    run = payouts.pay_out_teachers()
    logger.info("paid %d teacher transfer(s) (%d cents), %d pending, %d refused, %d reversal(s)",
                len(run.paid), run.paid_cents, len(run.pending), len(run.failed), run.reversals)
    if run.failed:
        raise JobProblem(f"Stripe refused teacher transfer(s) {run.failed}: see the admin.")
    return len(run.paid)


@shared_task
def check_ledger(stripe: bool = False) -> bool:
    report = ledger.check()
    if stripe:
        ledger.compare_with_stripe(report)
    metrics.ledger_checked(report.ok, len(report.differences))
    for line in report.differences:
        logger.error("ledger: %s", line)
    if not report.ok:
        raise JobProblem(f"{len(report.differences)} difference(s) in the ledger")
    return True
