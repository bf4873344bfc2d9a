"""E-mail through an outbox: recorded with the change that causes it, sent by a task after commit,
each one once.

``email_after_commit(renderer, object_id)`` writes one ``OutboundEmail`` row in the caller's
transaction (none for a rolled-back change) and, once it commits, sends the ``send_email`` task
(linguaflex/tasks.py; in-process after the response when there is no broker). The task calls ``deliver``: under the
row's lock it asks the renderer for the messages (from the rows as they are now), sends those not
sent yet, and records each recipient. A mail outage never fails (or undoes) a committed change: the
task retries, and a beat job sends again what a lost message left pending.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable, Iterator

from django.core.mail import EmailMessage
from django.core.mail.utils import DNS_NAME
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

KEY_HEADER = "X-LinguaFlex-Email-Key"
# A pending row older than this, whose task message may be lost, is sent again by the beat job.
RESEND_AFTER = timedelta(minutes=2)
MAX_ATTEMPTS = 8


@dataclass(frozen=True)
class Email:
    recipient: str
    subject: str
    body: str


Renderer = Callable[[int, str], list[Email]]


def _key(renderer: str, object_id: int, variant: str) -> str:
    # The renderer's whole dotted path: two renderers of one name in different apps stay apart.
    return f"{renderer}:{object_id}:{variant}" if variant else f"{renderer}:{object_id}"


def message_id(key: str) -> str:
    """The same Message-ID for every send of one message: if a worker dies between the mail
    server's acceptance and the row's commit, the task's second send is the same message, which
    mail systems collapse by its id."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"<{digest}@{DNS_NAME}>"


# Inside ``recorded_together()``: the e-mails asked for so far, recorded at the block's end.
_together: ContextVar[list | None] = ContextVar("linguaflex_mail_together", default=None)


@contextmanager
def recorded_together() -> Iterator[None]:
    """Record every e-mail the block asks for in one INSERT at its end (a payment's receipt and the
    teacher's notice: one statement, not two, and no savepoints). Only for e-mails whose causes the
    caller's transaction has just created, so none of their keys can exist yet: a conflict raises
    IntegrityError, and the caller's transaction rolls back. An exception inside records nothing."""
    from .models import OutboundEmail

    pending: list[OutboundEmail] = []
    token = _together.set(pending)
    try:
        yield
    finally:
        _together.reset(token)
    if not pending:
        return
    rows = OutboundEmail.objects.bulk_create(pending)
    if any(row.pk is None for row in rows):  # a backend that cannot return the new ids
        ids = dict(OutboundEmail.objects.filter(key__in=[row.key for row in rows]).values_list("key", "pk"))
        for row in rows:
            row.pk = ids[row.key]
    for row in rows:
        transaction.on_commit(functools.partial(enqueue, row.pk))


def email_after_commit(renderer: str, object_id: int, variant: str = "") -> None:
    """Record the notification ``renderer(object_id, variant)`` writes; send it after commit.
    The same (renderer, object, variant) a second time records and sends nothing."""
    from .models import OutboundEmail

    together = _together.get()
    if together is not None:
        together.append(OutboundEmail(key=_key(renderer, object_id, variant)[:255], renderer=renderer,
                                      object_id=object_id, variant=variant))
        return
    try:
        with transaction.atomic():
            email = OutboundEmail.objects.create(key=_key(renderer, object_id, variant)[:255], renderer=renderer,
                                                 object_id=object_id, variant=variant)
    except IntegrityError:
        return  # already recorded for this cause
    transaction.on_commit(lambda: enqueue(email.pk))


def enqueue(email_id: int) -> None:
    """Send the task once the response has gone out (linguaflex/after_response.py): a payment's
    answer waits neither for the mail server (with no broker the task runs in-process, there) nor
    for the broker's round trip. A process that dies in between leaves the row pending, and the
    beat job sends it (RESEND_AFTER), as after a broker outage."""
    from .after_response import after_response
    from .tasks import send_email

    def send() -> None:
        try:
            send_email.delay(email_id)
        except Exception:  # the broker is down: the row stays pending, the beat job sends it later
            logger.exception("e-mail %s not sent now; it stays pending for the beat job", email_id)

    after_response(send)


def deliver(email_id: int) -> str:
    """Send what the row's renderer writes to the recipients not sent to yet. Returns the row's
    status; re-raises a send failure (after recording it) so the task retries."""
    from .models import OutboundEmail, OutboundEmailStatus

    failure: Exception | None = None
    with transaction.atomic():
        email = OutboundEmail.objects.select_for_update().filter(pk=email_id).first()
        if email is None or email.status != OutboundEmailStatus.PENDING:
            # Sent, or given up on (the admin's "send again" makes it pending first).
            return email.status if email else "missing"
        render: Renderer = import_string(email.renderer)
        email.attempts += 1
        email.last_attempt_at = timezone.now()
        for message in render(email.object_id, email.variant):
            if message.recipient in email.sent_to:
                continue
            try:
                key = f"{email.key}:{message.recipient}"
                EmailMessage(subject=message.subject, body=message.body, to=[message.recipient],
                             headers={KEY_HEADER: key, "Message-ID": message_id(key)}).send()
            except Exception as exc:  # recorded below; what was sent stays recorded
                failure = exc
                break
            email.sent_to = [*email.sent_to, message.recipient]
        if failure is None:
            email.status = OutboundEmailStatus.SENT
            email.sent_at = timezone.now()
            email.error = ""
        else:
            email.error = f"{type(failure).__name__}: {failure}"[:2000]
            if email.attempts >= MAX_ATTEMPTS:
                email.status = OutboundEmailStatus.FAILED
        email.save(update_fields=["sent_to", "attempts", "last_attempt_at", "status", "sent_at", "error"])
    if failure is not None:
        logger.warning("e-mail %s (%s) not sent: %s", email.pk, email.key, type(failure).__name__)
        raise failure
    logger.info("e-mail %s (%s) sent", email.pk, email.key)
    return email.status


def retry_after(attempts: int) -> timedelta:
    """How long a row that failed ``attempts`` times waits before the beat job tries it again: 4, 8,
    16, 32, then 64 minutes (its own task retries sooner, with a broker; a second try is harmless)."""
    return RESEND_AFTER * 2 ** min(max(attempts, 1), 5)


def pending_email_ids(*, now=None) -> list[int]:
    """Rows the beat job sends again: never tried and older than RESEND_AFTER (their message was
    lost), or failed before and quiet for longer than ``retry_after`` (no task retries them: no
    broker, or the retry's message was lost too)."""
    from django.db.models import Q

    from .models import OutboundEmail, OutboundEmailStatus

    now = now or timezone.now()
    candidates = (OutboundEmail.objects.filter(status=OutboundEmailStatus.PENDING)
                  .filter(Q(attempts=0, created_at__lt=now - RESEND_AFTER)
                          | Q(attempts__gt=0, last_attempt_at__lt=now - retry_after(1)))
                  .order_by("created_at").values_list("pk", "attempts", "last_attempt_at")[:500])
    return [pk for pk, attempts, last in candidates
            if attempts == 0 or last is None or last < now - retry_after(attempts)]
