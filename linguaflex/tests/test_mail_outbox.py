"""The e-mail outbox (linguaflex/mail.py): recorded with the change, sent after commit, each
message once, a partial failure resumed where it stopped, the same Message-ID on a resend."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail as django_mail
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from linguaflex import mail
from linguaflex.models import OutboundEmail, OutboundEmailStatus

pytestmark = [pytest.mark.django_db]

RENDER_TWO = "linguaflex.tests.test_mail_outbox.render_two"
RENDER_ONE = "linguaflex.tests.test_mail_outbox.render_one"
FAILING_BACKEND = "linguaflex.tests.test_mail_outbox.FailingBackend"

# Recipients the failing backend refuses (set by the tests, cleared by the fixture below).
REFUSED: set[str] = set()


def render_two(object_id: int, variant: str) -> list[mail.Email]:
    return [mail.Email("first@example.test", f"First {object_id} {variant}", "one"),
            mail.Email("second@example.test", f"Second {object_id} {variant}", "two")]


def render_one(object_id: int, variant: str) -> list[mail.Email]:
    return [mail.Email("only@example.test", f"Only {object_id} {variant}", "body")]


class FailingBackend(LocmemBackend):
    """locmem, except that a message to a recipient in REFUSED fails (the mail server is down)."""

    def send_messages(self, messages):
        for message in messages:
            if set(message.to) & REFUSED:
                raise ConnectionRefusedError("mail server down")
        return super().send_messages(messages)


@pytest.fixture(autouse=True)
def _refused_cleared():
    REFUSED.clear()
    yield
    REFUSED.clear()


def row(renderer: str = RENDER_TWO, object_id: int = 1, variant: str = "") -> OutboundEmail:
    return OutboundEmail.objects.create(key=mail._key(renderer, object_id, variant), renderer=renderer,
                                        object_id=object_id, variant=variant)


def recipients() -> list[str]:
    return [m.to[0] for m in django_mail.outbox]


# --- recording -------------------------------------------------------------------------------------------
def test_email_after_commit_records_one_row_and_sends_only_after_commit(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with transaction.atomic():
            mail.email_after_commit(RENDER_TWO, 7, "x")
            assert OutboundEmail.objects.count() == 1
            assert django_mail.outbox == []
        assert django_mail.outbox == []  # the outer (test) transaction has not committed yet
    assert len(callbacks) == 1
    email = OutboundEmail.objects.get()
    assert (email.key, email.renderer, email.object_id, email.variant) == (f"{RENDER_TWO}:7:x", RENDER_TWO, 7, "x")
    assert email.status == OutboundEmailStatus.SENT
    assert email.sent_to == ["first@example.test", "second@example.test"]
    assert recipients() == ["first@example.test", "second@example.test"]


@pytest.mark.django_db(transaction=True)
def test_email_after_commit_sends_after_a_real_commit():
    with transaction.atomic():
        mail.email_after_commit(RENDER_ONE, 3)
        assert OutboundEmail.objects.count() == 1
        assert django_mail.outbox == []
    assert recipients() == ["only@example.test"]
    assert OutboundEmail.objects.get().status == OutboundEmailStatus.SENT


def test_a_rolled_back_change_records_and_sends_nothing(django_capture_on_commit_callbacks):
    class Boom(Exception):
        pass

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(Boom), transaction.atomic():
            mail.email_after_commit(RENDER_TWO, 1)
            raise Boom
    assert callbacks == []
    assert not OutboundEmail.objects.exists()
    assert django_mail.outbox == []


def test_the_same_cause_twice_records_one_row_and_sends_one_message(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        mail.email_after_commit(RENDER_ONE, 5, "v")
        mail.email_after_commit(RENDER_ONE, 5, "v")
    assert len(callbacks) == 1
    assert OutboundEmail.objects.count() == 1
    assert recipients() == ["only@example.test"]
    # Another variant is another cause.
    with django_capture_on_commit_callbacks(execute=True):
        mail.email_after_commit(RENDER_ONE, 5, "w")
    assert OutboundEmail.objects.count() == 2
    assert len(django_mail.outbox) == 2


# --- delivering ------------------------------------------------------------------------------------------
def test_deliver_twice_sends_once():
    email = row(RENDER_ONE)
    assert mail.deliver(email.pk) == OutboundEmailStatus.SENT
    assert mail.deliver(email.pk) == OutboundEmailStatus.SENT
    assert len(django_mail.outbox) == 1
    email.refresh_from_db()
    assert (email.status, email.attempts, email.sent_to) == (OutboundEmailStatus.SENT, 1, ["only@example.test"])
    assert email.sent_at is not None


def test_deliver_of_a_missing_row_is_missing():
    assert mail.deliver(987654) == "missing"
    assert django_mail.outbox == []


@override_settings(EMAIL_BACKEND=FAILING_BACKEND)
def test_a_failure_on_the_second_recipient_keeps_the_first_and_the_next_run_sends_only_the_second():
    email = row(RENDER_TWO)
    REFUSED.add("second@example.test")

    with pytest.raises(ConnectionRefusedError):
        mail.deliver(email.pk)

    email.refresh_from_db()
    assert email.sent_to == ["first@example.test"]
    assert (email.status, email.attempts) == (OutboundEmailStatus.PENDING, 1)
    assert email.error == "ConnectionRefusedError: mail server down"
    assert recipients() == ["first@example.test"]

    REFUSED.clear()
    assert mail.deliver(email.pk) == OutboundEmailStatus.SENT
    assert recipients() == ["first@example.test", "second@example.test"]
    email.refresh_from_db()
    assert (email.status, email.attempts, email.error) == (OutboundEmailStatus.SENT, 2, "")
    assert email.sent_to == ["first@example.test", "second@example.test"]


def test_each_message_carries_its_key_and_a_message_id_that_a_resend_repeats():
    email = row(RENDER_TWO, 9, "v")
    mail.deliver(email.pk)
    first_round = {m.to[0]: m for m in django_mail.outbox}
    for recipient, message in first_round.items():
        key = f"{RENDER_TWO}:9:v:{recipient}"
        assert message.extra_headers[mail.KEY_HEADER] == key
        assert message.extra_headers["Message-ID"] == mail.message_id(key)
        assert message.message()["Message-ID"] == mail.message_id(key)
        assert message.message()[mail.KEY_HEADER] == key
    assert len({m.extra_headers["Message-ID"] for m in first_round.values()}) == 2

    # The row's commit was lost after the mail server accepted: the same messages go again, same ids.
    OutboundEmail.objects.filter(pk=email.pk).update(status=OutboundEmailStatus.PENDING, sent_to=[])
    mail.deliver(email.pk)
    assert len(django_mail.outbox) == 4
    for message in django_mail.outbox[2:]:
        assert message.extra_headers["Message-ID"] == first_round[message.to[0]].extra_headers["Message-ID"]


def test_message_id_is_stable_and_distinct_per_key():
    assert mail.message_id("a:1") == mail.message_id("a:1")
    assert mail.message_id("a:1") != mail.message_id("a:2")
    assert mail.message_id("a:1").startswith("<") and mail.message_id("a:1").endswith(">")


@override_settings(EMAIL_BACKEND=FAILING_BACKEND)
def test_after_max_attempts_failures_the_row_is_failed():
    email = row(RENDER_ONE)
    REFUSED.add("only@example.test")
    for attempt in range(1, mail.MAX_ATTEMPTS + 1):
        with pytest.raises(ConnectionRefusedError):
            mail.deliver(email.pk)
        email.refresh_from_db()
        assert email.attempts == attempt
        expected = OutboundEmailStatus.FAILED if attempt == mail.MAX_ATTEMPTS else OutboundEmailStatus.PENDING
        assert email.status == expected
    assert django_mail.outbox == []


# --- the beat job's selection ----------------------------------------------------------------------------
def test_pending_email_ids_are_the_old_pending_never_tried_rows_only():
    now = timezone.now()
    old = now - mail.RESEND_AFTER - timedelta(seconds=5)

    def make(n: int, *, status=OutboundEmailStatus.PENDING, attempts=0, created_at=old) -> int:
        email = row(RENDER_ONE, n)
        OutboundEmail.objects.filter(pk=email.pk).update(status=status, attempts=attempts, created_at=created_at)
        return email.pk

    lost = make(1)
    older_lost = make(2, created_at=old - timedelta(minutes=10))
    make(3, created_at=now - mail.RESEND_AFTER + timedelta(seconds=30))  # too recent
    make(4, attempts=1)  # tried: its own task retries it
    make(5, status=OutboundEmailStatus.SENT)
    make(6, status=OutboundEmailStatus.FAILED, attempts=mail.MAX_ATTEMPTS)

    assert mail.pending_email_ids(now=now) == [older_lost, lost]
    assert mail.pending_email_ids(now=old) == [older_lost]  # "lost" is not yet RESEND_AFTER old then


def test_a_row_that_failed_is_tried_again_by_the_beat_job_once_quiet_for_its_backoff():
    """No broker (or a lost retry message): nothing else would ever send it."""
    now = timezone.now()
    quiet = row(RENDER_ONE, 21)
    recent = row(RENDER_ONE, 22)
    OutboundEmail.objects.filter(pk=quiet.pk).update(
        attempts=2, last_attempt_at=now - mail.retry_after(2) - timedelta(seconds=1),
        created_at=now - timedelta(hours=1))
    OutboundEmail.objects.filter(pk=recent.pk).update(
        attempts=2, last_attempt_at=now - mail.retry_after(2) + timedelta(seconds=30),
        created_at=now - timedelta(hours=1))

    assert mail.pending_email_ids(now=now) == [quiet.pk]
    assert [mail.retry_after(n).total_seconds() / 60 for n in (1, 2, 3, 4, 5, 9)] == [4, 8, 16, 32, 64, 64]


def test_a_failed_row_is_not_sent_until_the_admin_makes_it_pending_again(mailoutbox):
    email = row(RENDER_ONE, 23)
    OutboundEmail.objects.filter(pk=email.pk).update(status=OutboundEmailStatus.FAILED, attempts=mail.MAX_ATTEMPTS)

    assert mail.deliver(email.pk) == OutboundEmailStatus.FAILED
    assert mailoutbox == []
    email.refresh_from_db()
    assert email.attempts == mail.MAX_ATTEMPTS
