"""E-mail tasks (linguaflex/mail.py): send one notification; send again what a lost message left."""

from __future__ import annotations

import logging

from celery import shared_task

from . import mail

logger = logging.getLogger(__name__)


# Hard limits above EMAIL_TIMEOUT (a hung send ends in a retry, its row lock released).
@shared_task(bind=True, max_retries=mail.MAX_ATTEMPTS, acks_late=True, soft_time_limit=60, time_limit=90)
def send_email(self, email_id: int) -> str:
    """Idempotent: the row's lock and its record of recipients make a second run, or a concurrent
    one, send nothing more. A mail server failure retries with backoff (30 s, 60 s, ... 30 min)."""
    try:
        return mail.deliver(email_id)
    except Exception as exc:
        if self.request.is_eager:
            # In-process (no broker): the change has committed; the row stays pending.
            logger.warning("e-mail %s not sent in-process (%s); it stays pending", email_id, type(exc).__name__)
            return "pending"
        raise self.retry(exc=exc, countdown=min(1800, 30 * 2 ** self.request.retries)) from None


@shared_task
def resend_pending_emails() -> int:
    """Beat: send again the notifications still pending after a few minutes (their message was
    lost with a worker, or the broker was down when they were recorded)."""
    ids = mail.pending_email_ids()
    for email_id in ids:
        send_email.delay(email_id)
    return len(ids)
