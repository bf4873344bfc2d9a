"""Webhook deliveries: signed, after the response, retried with backoff, resendable."""

from __future__ import annotations

import json

import pytest
import requests
import stripe

from stripe_emulator.webhooks import sign

SECRET = "whsec_test_suite_secret"
PARAMS = {"amount": 5000, "currency": "usd", "confirm": True, "payment_method": "pm_card_visa"}


def _verify(delivery: dict) -> stripe.Event:
    return stripe.Webhook.construct_event(
        delivery["body"].decode(), delivery["headers"]["Stripe-Signature"], SECRET)


def test_events_are_posted_signed_and_verifiable(client, emulator, receiver):
    emulator.configure_webhooks(receiver.url, SECRET)
    cus = client.v1.customers.create()
    pi = client.v1.payment_intents.create(params=dict(
        PARAMS, customer=cus.id, setup_future_usage="off_session"))
    got = receiver.wait_for(2)
    events = [_verify(d) for d in got]
    assert {e.type for e in events} == {"payment_method.attached", "payment_intent.succeeded"}
    succeeded = next(e for e in events if e.type == "payment_intent.succeeded")
    assert succeeded.data.object.id == pi.id
    assert succeeded.pending_webhooks == 1
    assert client.v1.events.retrieve(succeeded.id).type == "payment_intent.succeeded"
    assert emulator.wait_for_deliveries()
    deliveries = emulator.deliveries()
    assert [d["status"] for d in deliveries] == ["succeeded", "succeeded"]
    assert all(d["attempts"] == 1 for d in deliveries)


def test_a_tampered_or_wrongly_signed_body_is_rejected(client, emulator, receiver):
    emulator.configure_webhooks(receiver.url, SECRET)
    client.v1.payment_intents.create(params=PARAMS)
    delivery = receiver.wait_for(1)[0]
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(delivery["body"].decode().replace("5000", "5001"),
                                       delivery["headers"]["Stripe-Signature"], SECRET)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(delivery["body"].decode(),
                                       delivery["headers"]["Stripe-Signature"], "whsec_other")


def test_sign_matches_the_sdk():
    payload = b'{"id": "evt_1", "object": "event"}'
    header = sign(payload, SECRET, timestamp=1_700_000_000)
    assert stripe.WebhookSignature.verify_header(payload.decode(), header, SECRET,
                                                 tolerance=None)


def test_non_2xx_is_retried_with_backoff_until_it_succeeds(client, emulator, receiver):
    emulator.configure_webhooks(receiver.url, SECRET, max_attempts=4, backoff=0.05)
    receiver.statuses = [500, 503]
    client.v1.customers.create()
    client.v1.payment_methods.attach("pm_card_visa", params={
        "customer": client.v1.customers.list().data[0].id})
    got = receiver.wait_for(3)
    assert [d["status"] for d in got] == [500, 503, 200]
    assert len({_verify(d).id for d in got}) == 1  # the same event three times
    assert emulator.wait_for_deliveries()
    (delivery,) = emulator.deliveries()
    assert (delivery["status"], delivery["attempts"]) == ("succeeded", 3)
    assert [h["status_code"] for h in delivery["history"]] == [500, 503, 200]
    gap1 = delivery["history"][1]["at"] - delivery["history"][0]["at"]
    gap2 = delivery["history"][2]["at"] - delivery["history"][1]["at"]
    assert gap1 >= 0.04 and gap2 >= 0.09  # 0.05 s, then 0.1 s


def test_retries_are_bounded(client, emulator, receiver):
    emulator.configure_webhooks(receiver.url, SECRET, max_attempts=3, backoff=0.01)
    receiver.statuses = [500] * 10
    cus = client.v1.customers.create()
    client.v1.payment_methods.attach("pm_card_visa", params={"customer": cus.id})
    assert emulator.wait_for_deliveries()
    (delivery,) = emulator.deliveries()
    assert (delivery["status"], delivery["attempts"]) == ("failed", 3)
    assert len(receiver.received) == 3


def test_unreachable_endpoint_counts_as_a_failure(client, emulator):
    emulator.configure_webhooks("http://127.0.0.1:9/nowhere", SECRET, max_attempts=2,
                                backoff=0.01)
    client.v1.payment_intents.create(params=PARAMS)
    assert emulator.wait_for_deliveries()
    (delivery,) = emulator.deliveries()
    assert delivery["status"] == "failed" and delivery["last_error"]


def test_deliveries_can_be_listed_and_resent_over_http(client, emulator, receiver):
    emulator.configure_webhooks(receiver.url, SECRET)
    client.v1.payment_intents.create(params=PARAMS)
    receiver.wait_for(1)
    assert emulator.wait_for_deliveries()
    listed = requests.get(f"{emulator.base_url}/_emulator/deliveries", timeout=5).json()["data"]
    assert len(listed) == 1
    resent = requests.post(
        f"{emulator.base_url}/_emulator/deliveries/{listed[0]['id']}/resend", timeout=5)
    assert resent.status_code == 200
    got = receiver.wait_for(2)
    assert _verify(got[0]).id == _verify(got[1]).id
    missing = requests.post(f"{emulator.base_url}/_emulator/deliveries/whdel_x/resend", timeout=5)
    assert missing.status_code == 404


def test_webhooks_off_records_events_without_deliveries(client, emulator):
    client.v1.payment_intents.create(params=PARAMS)
    assert emulator.deliveries() == []
    event = client.v1.events.list().data[0]
    assert event.pending_webhooks == 0


def test_each_state_change_event_type_is_delivered(client, emulator, receiver):
    emulator.configure_webhooks(receiver.url, SECRET)
    cus = client.v1.customers.create()
    pm = client.v1.payment_methods.attach("pm_card_visa", params={"customer": cus.id})
    client.v1.payment_methods.detach(pm.id)
    si = client.v1.setup_intents.create(params={"customer": cus.id, "confirm": True,
                                                "payment_method": "pm_card_visa"})
    with pytest.raises(stripe.CardError):
        client.v1.setup_intents.create(params={"customer": cus.id, "confirm": True,
                                               "payment_method": "pm_card_visa_chargeDeclined"})
    paid = client.v1.payment_intents.create(params=dict(PARAMS, customer=cus.id,
                                                        payment_method=si.payment_method))
    with pytest.raises(stripe.CardError):
        client.v1.payment_intents.create(params=dict(
            PARAMS, payment_method="pm_card_visa_chargeDeclined"))
    action = client.v1.payment_intents.create(params=dict(
        PARAMS, payment_method="pm_card_authenticationRequired"))
    client.v1.payment_intents.cancel(action.id)
    refund = client.v1.refunds.create(params={"payment_intent": paid.id, "amount": 100})
    client.v1.refunds.update(refund.id, params={"metadata": {"a": "b"}})
    emulator.trigger_dispute(paid.latest_charge)
    expected = {
        "payment_intent.succeeded", "payment_intent.payment_failed",
        "payment_intent.requires_action", "payment_intent.canceled", "setup_intent.succeeded",
        "setup_intent.setup_failed", "payment_method.attached", "payment_method.detached",
        "charge.refunded", "refund.created", "refund.updated", "charge.dispute.created",
    }
    assert emulator.wait_for_deliveries()
    delivered = {json.loads(d["body"])["type"] for d in receiver.received}
    assert expected <= delivered
