"""Every Celery task (stripe_payments/tasks.py, linguaflex/tasks.py) run twice ends like once, and
the ones that can race, run at once on PostgreSQL, apply their work once."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.core import mail as django_mail
from django.utils import timezone

from bookings.models import Booking, BookingStatus
from linguaflex import mail
from linguaflex import tasks as mail_tasks
from linguaflex.models import OutboundEmail, OutboundEmailStatus
from linguaflex.testing.concurrency import run_at_once
from stripe_payments import tasks
from stripe_payments.models import (
    ConnectedAccount,
    IdempotencyRecord,
    Payment,
    PaymentStatus,
    RefundKind,
    RefundRequest,
    TeacherTransfer,
    WebhookEvent,
    WebhookEventStatus,
)
from stripe_payments.services import webhooks

from .conftest import PAY_URL, THREE_DS, card, onboard, refund_posts, stripe_calls

RENDER_SLOW = "stripe_payments.tests.test_tasks.render_slow"


def render_slow(object_id: int, variant: str) -> list[mail.Email]:
    """A renderer that takes a while: two deliveries at once overlap inside it."""
    time.sleep(0.3)
    return [mail.Email(f"race{object_id}@example.test", "Race", "body")]


def run(task, *args, **kwargs):
    """Run a task as a worker would (eager apply: request.is_eager), propagating its exception."""
    return task.apply(args=args, kwargs=kwargs, throw=True).result  # .get() refuses to run inside another task


def age_booking(booking: Booking, hours: float) -> None:
    Booking.objects.filter(pk=booking.pk).update(created_at=timezone.now() - timedelta(hours=hours))


def enable(emulator, account: ConnectedAccount) -> None:
    emulator.complete_onboarding(account.stripe_account_id)
    ConnectedAccount.objects.filter(pk=account.pk).update(transfers_active=True, charges_enabled=True,
                                                          payouts_enabled=True)


def transfers_at(emulator) -> list[dict]:
    with emulator.state.lock:
        return [dict(o) for o in emulator.state.objects.values() if o.get("object") == "transfer"]


def refunds_at(emulator) -> list[dict]:
    with emulator.state.lock:
        return [dict(o) for o in emulator.state.objects.values() if o.get("object") == "refund"]


def stored_event(type_: str, object_id: str = "", *, seconds_ago: float = 0, **fields) -> WebhookEvent:
    event = WebhookEvent.objects.create(stripe_event_id=f"evt_{type_}_{object_id}_{time.time_ns()}", type=type_,
                                        object_id=object_id, payment_intent_id=fields.pop("payment_intent_id", ""),
                                        **fields)
    if seconds_ago:
        WebhookEvent.objects.filter(pk=event.pk).update(received_at=timezone.now() - timedelta(seconds=seconds_ago))
    return event


@pytest.fixture
def succeeded_3ds(stripe_emulator, client_for, student, gig):
    """A 3-D Secure payment completed at Stripe, whose payment_intent.succeeded is not yet applied here."""
    response = client_for(student).post(PAY_URL, {"gig_id": gig.pk, "card_details": card(THREE_DS)}, format="json")
    assert response.status_code == 402, response.content
    payment = Payment.objects.get(pk=response.json()["error"]["payment_id"])
    stripe_emulator.complete_3ds(payment.stripe_payment_intent_id)
    stripe_emulator.clear_requests()
    return payment


# --- each task twice -----------------------------------------------------------------------------------
@pytest.mark.django_db
@pytest.mark.emulator
def test_process_webhook_event_twice_applies_the_handler_once(succeeded_3ds, stripe_emulator):
    pi = succeeded_3ds.stripe_payment_intent_id
    event = stored_event("payment_intent.succeeded", pi, payment_intent_id=pi)

    assert run(tasks.process_webhook_event, event.pk) == WebhookEventStatus.PROCESSED
    assert run(tasks.process_webhook_event, event.pk) == WebhookEventStatus.PROCESSED

    event.refresh_from_db()
    assert (event.status, event.attempts, event.error) == (WebhookEventStatus.PROCESSED, 1, "")
    assert event.processed_at is not None
    succeeded_3ds.refresh_from_db()
    assert succeeded_3ds.status == PaymentStatus.SUCCEEDED
    assert Booking.objects.filter(payment=succeeded_3ds).count() == 1
    assert len(stripe_calls(stripe_emulator, "GET", "/v1/payment_intents/")) == 1  # the handler ran once


@pytest.mark.django_db
def test_process_webhook_event_of_an_unhandled_type_is_ignored_once():
    event = stored_event("customer.created", "cus_1")
    assert run(tasks.process_webhook_event, event.pk) == WebhookEventStatus.IGNORED
    assert run(tasks.process_webhook_event, event.pk) == WebhookEventStatus.IGNORED
    event.refresh_from_db()
    assert (event.status, event.attempts) == (WebhookEventStatus.IGNORED, 1)


@pytest.mark.django_db
def test_a_failing_handler_in_process_is_recorded_and_reraised(monkeypatch):
    def broken(event):
        raise RuntimeError("handler bug")

    monkeypatch.setitem(webhooks.HANDLERS, "refund.created", broken)
    event = stored_event("refund.created", "re_1")
    with pytest.raises(RuntimeError):
        run(tasks.process_webhook_event, event.pk)
    event.refresh_from_db()
    assert (event.status, event.attempts, event.error) == (WebhookEventStatus.FAILED, 1,
                                                           "RuntimeError: handler bug")


@pytest.mark.django_db
def test_requeue_webhook_events_sends_only_old_unapplied_events(monkeypatch):
    lost = stored_event("customer.created", "cus_lost", seconds_ago=tasks.requeue_after().total_seconds() + 1)
    older = stored_event("customer.created", "cus_older", seconds_ago=3600)
    stored_event("customer.created", "cus_recent", seconds_ago=tasks.requeue_after().total_seconds() - 30)
    stored_event("customer.created", "cus_done", seconds_ago=3600, status=WebhookEventStatus.PROCESSED)
    stored_event("customer.created", "cus_ignored", seconds_ago=3600, status=WebhookEventStatus.IGNORED)
    stored_event("customer.created", "cus_failed", seconds_ago=3600, status=WebhookEventStatus.FAILED)
    sent: list[int] = []
    monkeypatch.setattr(tasks.process_webhook_event, "delay", sent.append)

    assert run(tasks.requeue_webhook_events) == 2
    assert sent == [older.pk, lost.pk]
    # Their messages were lost again: a second run sends the same two, nothing else.
    assert run(tasks.requeue_webhook_events) == 2
    assert sent == [older.pk, lost.pk] * 2


@pytest.mark.django_db
def test_requeue_webhook_events_twice_in_process_applies_each_event_once():
    lost = stored_event("customer.created", "cus_lost", seconds_ago=tasks.requeue_after().total_seconds() + 60)
    assert run(tasks.requeue_webhook_events) == 1
    lost.refresh_from_db()
    assert (lost.status, lost.attempts) == (WebhookEventStatus.IGNORED, 1)
    assert run(tasks.requeue_webhook_events) == 0
    lost.refresh_from_db()
    assert lost.attempts == 1


@pytest.mark.django_db
@pytest.mark.emulator
def test_expire_pending_bookings_twice_refunds_an_overdue_booking_once(paid, stripe_emulator, settings):
    settings.BOOKING_CONFIRMATION_HOURS = 48
    old, fresh = paid(), paid()
    age_booking(Booking.objects.get(payment=old), 49)
    age_booking(Booking.objects.get(payment=fresh), 47)

    assert run(tasks.expire_pending_bookings) == 1
    assert run(tasks.expire_pending_bookings) == 0

    assert Booking.objects.get(payment=old).status == BookingStatus.DECLINED
    assert Booking.objects.get(payment=fresh).status == BookingStatus.PENDING_CONFIRMATION
    old.refresh_from_db()
    assert (old.status, old.refunded_cents) == (PaymentStatus.REFUNDED, old.amount_cents)
    assert RefundRequest.objects.filter(payment=old, kind=RefundKind.EXPIRY).count() == 1
    assert len(refund_posts(stripe_emulator)) == 1
    assert len(refunds_at(stripe_emulator)) == 1


@pytest.mark.django_db
def test_purge_idempotency_keys_twice(student):
    old = IdempotencyRecord.objects.create(user=student, key="old", scope="payment", request_hash="x",
                                           in_flight=False, response_status=200, response_body={})
    IdempotencyRecord.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=25))
    IdempotencyRecord.objects.create(user=student, key="recent", scope="payment", request_hash="y")

    assert run(tasks.purge_idempotency_keys) == 1
    assert run(tasks.purge_idempotency_keys) == 0
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["recent"]


@pytest.mark.django_db
@pytest.mark.emulator
def test_pay_out_teachers_twice_creates_one_transfer(paid, stripe_emulator, teacher):
    payment = paid()
    enable(stripe_emulator, onboard(stripe_emulator, teacher, complete=False))

    assert run(tasks.pay_out_teachers) == 1
    assert run(tasks.pay_out_teachers) == 0

    [transfer] = transfers_at(stripe_emulator)
    assert (transfer["amount"], transfer["source_transaction"]) == (payment.teacher_amount_cents,
                                                                    payment.stripe_charge_id)
    assert TeacherTransfer.objects.filter(payment=payment).count() == 1
    assert len(stripe_calls(stripe_emulator, "POST", "/v1/transfers")) == 1


@pytest.mark.django_db
@pytest.mark.emulator
def test_reconcile_payments_twice_ends_like_once(paid, stripe_emulator):
    payment = paid()
    Payment.objects.filter(pk=payment.pk).update(created_at=timezone.now() - timedelta(hours=1),
                                                 updated_at=timezone.now() - timedelta(hours=1))
    first = run(tasks.reconcile_payments)
    after_first = Payment.objects.values_list("pk", "status", "refunded_cents").get(pk=payment.pk)
    second = run(tasks.reconcile_payments)
    assert second == first, (first, second)
    assert second.endswith("0 difference(s), 0 repaired, 0 left unrepaired"), second
    assert Payment.objects.values_list("pk", "status", "refunded_cents").get(pk=payment.pk) == after_first
    assert after_first[1] == PaymentStatus.SUCCEEDED
    assert Booking.objects.filter(payment=payment).count() == 1


@pytest.mark.django_db
@pytest.mark.emulator
def test_check_ledger_twice(paid, stripe_emulator):
    paid()
    assert run(tasks.check_ledger) is True
    assert run(tasks.check_ledger) is True
    assert run(tasks.check_ledger, stripe=True) is True


@pytest.mark.django_db
@pytest.mark.emulator
def test_send_email_twice_sends_one_message(paid, student):
    payment = paid()
    # Without a commit (this test's transaction) the receipt was recorded, not sent.
    receipt = OutboundEmail.objects.get(renderer="stripe_payments.notifications.render_receipt", object_id=payment.pk)
    assert receipt.status == OutboundEmailStatus.PENDING
    django_mail.outbox.clear()

    assert run(mail_tasks.send_email, receipt.pk) == OutboundEmailStatus.SENT
    assert run(mail_tasks.send_email, receipt.pk) == OutboundEmailStatus.SENT

    assert [m.to for m in django_mail.outbox] == [[student.email]]
    receipt.refresh_from_db()
    assert (receipt.status, receipt.attempts, receipt.sent_to) == (OutboundEmailStatus.SENT, 1, [student.email])


@pytest.mark.django_db
@pytest.mark.emulator
def test_resend_pending_emails_twice_sends_each_lost_email_once(paid):
    paid()
    lost = list(OutboundEmail.objects.filter(status=OutboundEmailStatus.PENDING).values_list("pk", flat=True))
    assert lost
    OutboundEmail.objects.update(created_at=timezone.now() - mail.RESEND_AFTER - timedelta(seconds=1))
    django_mail.outbox.clear()

    assert run(mail_tasks.resend_pending_emails) == len(lost)
    sent = len(django_mail.outbox)
    assert sent >= len(lost)
    assert run(mail_tasks.resend_pending_emails) == 0

    assert len(django_mail.outbox) == sent
    assert set(OutboundEmail.objects.values_list("status", flat=True)) == {OutboundEmailStatus.SENT}
    keys = [m.extra_headers[mail.KEY_HEADER] for m in django_mail.outbox]
    assert len(keys) == len(set(keys))


# --- at once (PostgreSQL: SQLite's test database serialises, or refuses, the race) -------------------------
def at_once(count: int, target) -> list:
    return run_at_once([target] * count)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
class TestAtOnce:
    def test_two_processes_of_one_event_apply_its_handler_once(self, monkeypatch):
        applied: list[int] = []

        def slow_handler(event):
            applied.append(event.pk)
            time.sleep(0.3)

        monkeypatch.setitem(webhooks.HANDLERS, "test.race", slow_handler)
        event = stored_event("test.race", "obj_1")

        outcomes = at_once(2, lambda: webhooks.webhook_event_process(event_id=event.pk).status)

        assert outcomes == [WebhookEventStatus.PROCESSED] * 2
        assert applied == [event.pk]
        event.refresh_from_db()
        assert (event.status, event.attempts) == (WebhookEventStatus.PROCESSED, 1)

    @pytest.mark.emulator
    def test_two_processes_of_a_real_success_event_book_once(self, succeeded_3ds, stripe_emulator):
        pi = succeeded_3ds.stripe_payment_intent_id
        event = stored_event("payment_intent.succeeded", pi, payment_intent_id=pi)

        outcomes = at_once(2, lambda: webhooks.webhook_event_process(event_id=event.pk).status)

        assert outcomes == [WebhookEventStatus.PROCESSED] * 2
        assert Booking.objects.filter(payment=succeeded_3ds).count() == 1
        event.refresh_from_db()
        assert (event.status, event.attempts) == (WebhookEventStatus.PROCESSED, 1)

    def test_two_deliveries_of_one_email_send_one_message(self):
        email = OutboundEmail.objects.create(key="render_slow:1", renderer=RENDER_SLOW, object_id=1)
        django_mail.outbox.clear()

        outcomes = at_once(2, lambda: mail.deliver(email.pk))

        assert outcomes == [OutboundEmailStatus.SENT] * 2
        assert [m.to for m in django_mail.outbox] == [["race1@example.test"]]
        email.refresh_from_db()
        assert (email.status, email.attempts) == (OutboundEmailStatus.SENT, 1)

    @pytest.mark.emulator
    def test_two_expiry_runs_at_once_refund_once(self, paid, stripe_emulator, settings):
        settings.BOOKING_CONFIRMATION_HOURS = 48
        payment = paid()
        booking = Booking.objects.get(payment=payment)
        age_booking(booking, 49)
        stripe_emulator.set_latency(300)  # both runs inside the refund at once

        outcomes = at_once(2, lambda: run(tasks.expire_pending_bookings))

        assert all(isinstance(o, int) for o in outcomes), outcomes
        assert sum(outcomes) >= 1
        booking.refresh_from_db()
        assert booking.status == BookingStatus.DECLINED
        payment.refresh_from_db()
        assert (payment.status, payment.refunded_cents) == (PaymentStatus.REFUNDED, payment.amount_cents)
        assert RefundRequest.objects.filter(payment=payment, kind=RefundKind.EXPIRY).count() == 1
        assert len(refunds_at(stripe_emulator)) == 1


@pytest.mark.django_db
def test_requeue_webhook_events_waits_while_tasks_are_queued(monkeypatch):
    """A busy queue most likely holds the events' own messages: no duplicates on top of them."""
    from linguaflex import metrics

    stored_event("customer.created", "cus_waiting", seconds_ago=tasks.requeue_after().total_seconds() + 60)
    monkeypatch.setattr(metrics, "queue_depths", lambda: {"celery": 12})

    assert run(tasks.requeue_webhook_events) == 0
