"""The webhook with a broker: the view stores the event and queues it (no Stripe call, no payment
lock in the request); a broker outage still answers 200, and the beat job sends the event later."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from kombu.exceptions import OperationalError

from stripe_payments import gateway, tasks
from stripe_payments.models import Payment, WebhookEvent, WebhookEventStatus
from stripe_payments.services import webhooks

from .conftest import post_event, stripe_calls

pytestmark = [pytest.mark.django_db, pytest.mark.emulator]

with_broker = override_settings(CELERY_TASK_ALWAYS_EAGER=False, CELERY_BROKER_URL="memory://")


def success_event(event_id: str = "evt_async_1", pi_id: str = "pi_async_1") -> dict:
    return {"id": event_id, "object": "event", "type": "payment_intent.succeeded", "created": int(time.time()),
            "livemode": False, "data": {"object": {"id": pi_id, "object": "payment_intent", "status": "succeeded"}}}


@pytest.fixture
def queued(monkeypatch):
    """process_webhook_event.delay records its calls instead of reaching a broker."""
    calls: list[int] = []
    monkeypatch.setattr(tasks.process_webhook_event, "delay", lambda event_id: calls.append(event_id))
    return calls


@pytest.fixture
def no_work_in_the_request(monkeypatch):
    """Any Stripe call, or a payment row lock, during the request fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("the webhook request did work it should leave to the task")

    monkeypatch.setattr(Payment.objects, "select_for_update", refuse)
    for name in ("payment_intent_retrieve", "refunds_list", "charge_retrieve", "dispute_retrieve",
                 "setup_intent_retrieve", "account_retrieve"):
        if hasattr(gateway, name):
            monkeypatch.setattr(gateway, name, refuse)


@with_broker
def test_with_a_broker_the_view_stores_and_queues_the_event_and_does_no_work(
        client, stripe_emulator, queued, no_work_in_the_request):
    stripe_emulator.clear_requests()

    response = post_event(client, success_event())

    assert response.status_code == 200, response.content
    assert response.json() == {"received": True, "status": "received"}
    event = WebhookEvent.objects.get(stripe_event_id="evt_async_1")
    assert (event.status, event.attempts, event.object_id) == (WebhookEventStatus.RECEIVED, 0, "pi_async_1")
    assert queued == [event.pk]
    assert stripe_calls(stripe_emulator) == []


@with_broker
def test_the_same_event_again_is_one_row_and_once_processed_is_not_queued_again(
        client, stripe_emulator, queued, monkeypatch):
    event_json = success_event("evt_async_2", "pi_async_2")
    assert post_event(client, event_json).status_code == 200
    [event] = WebhookEvent.objects.filter(stripe_event_id="evt_async_2")
    assert queued == [event.pk]

    # Delivered again before the worker ran: still one row; queued again (the task applies it once).
    assert post_event(client, event_json).status_code == 200
    assert WebhookEvent.objects.filter(stripe_event_id="evt_async_2").count() == 1
    assert queued == [event.pk, event.pk]

    # The worker applies it.
    applied: list[int] = []
    monkeypatch.setitem(webhooks.HANDLERS, "payment_intent.succeeded", lambda e: applied.append(e.pk))
    assert tasks.process_webhook_event.apply(args=[event.pk], throw=True).result == WebhookEventStatus.PROCESSED
    assert tasks.process_webhook_event.apply(args=[event.pk], throw=True).result == WebhookEventStatus.PROCESSED
    assert applied == [event.pk]

    response = post_event(client, event_json)
    assert response.status_code == 200
    assert response.json() == {"received": True, "status": "processed"}
    assert WebhookEvent.objects.filter(stripe_event_id="evt_async_2").count() == 1
    assert queued == [event.pk, event.pk]  # not queued again
    assert applied == [event.pk]


@with_broker
def test_a_broker_outage_still_answers_200_and_the_beat_job_sends_the_event_later(
        client, stripe_emulator, monkeypatch, no_work_in_the_request):
    attempts: list[int] = []

    def broker_down(event_id):
        attempts.append(event_id)
        raise OperationalError("Error 111 connecting to redis:6379. Connection refused.")

    monkeypatch.setattr(tasks.process_webhook_event, "delay", broker_down)
    stripe_emulator.clear_requests()

    response = post_event(client, success_event("evt_async_3", "pi_async_3"))

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "received"
    event = WebhookEvent.objects.get(stripe_event_id="evt_async_3")
    assert (event.status, event.attempts) == (WebhookEventStatus.RECEIVED, 0)
    assert attempts == [event.pk]
    assert stripe_calls(stripe_emulator) == []

    # The broker is back. Too recent for the beat job yet; a minute later it is sent.
    sent: list[int] = []
    monkeypatch.setattr(tasks.process_webhook_event, "delay", sent.append)
    assert tasks.requeue_webhook_events.apply(throw=True).result == 0
    assert sent == []
    WebhookEvent.objects.filter(pk=event.pk).update(received_at=timezone.now() - tasks.requeue_after()
                                                    - timedelta(seconds=1))
    assert tasks.requeue_webhook_events.apply(throw=True).result == 1
    assert sent == [event.pk]


def test_without_a_broker_the_view_applies_the_event_in_process(client, stripe_emulator, monkeypatch):
    """The contrast: eager (no broker), the handler runs during the request and the answer says so."""
    applied: list[int] = []
    monkeypatch.setitem(webhooks.HANDLERS, "payment_intent.succeeded", lambda e: applied.append(e.pk))
    response = post_event(client, success_event("evt_eager_1", "pi_eager_1"))
    assert response.status_code == 200
    assert response.json()["status"] == "processed"
    assert applied == [WebhookEvent.objects.get(stripe_event_id="evt_eager_1").pk]
