"""Idempotency keys: replay, conflict, in-use, expiry, bounded memory."""

from __future__ import annotations

import threading
import time

import pytest
import requests
import stripe

from stripe_emulator.idempotency import CONFLICT, IN_USE, NEW, REPLAY, IdempotencyStore

PARAMS = {"amount": 5000, "currency": "usd", "confirm": True, "payment_method": "pm_card_visa"}


def test_same_key_same_params_replays_the_first_response(client, emulator):
    options = {"idempotency_key": "order-1"}
    first = client.v1.payment_intents.create(params=PARAMS, options=options)
    second = client.v1.payment_intents.create(params=PARAMS, options=options)
    assert second.id == first.id
    assert second.last_response.headers.get("Idempotent-Replayed") == "true"
    assert first.last_response.headers.get("Idempotent-Replayed") is None
    assert second.last_response.body == first.last_response.body
    assert len(client.v1.payment_intents.list().data) == 1
    assert len(emulator.events("payment_intent.succeeded")) == 1


def test_a_card_error_is_replayed_too(client):
    params = dict(PARAMS, payment_method="pm_card_visa_chargeDeclinedInsufficientFunds")
    options = {"idempotency_key": "declined-1"}
    errors = []
    for _ in range(2):
        with pytest.raises(stripe.CardError) as info:
            client.v1.payment_intents.create(params=params, options=options)
        errors.append(info.value)
    assert errors[0].http_body == errors[1].http_body
    assert errors[1].headers.get("Idempotent-Replayed") == "true"
    assert len(client.v1.payment_intents.list().data) == 1


def test_same_key_other_params_is_400_idempotency_error(client):
    options = {"idempotency_key": "order-2"}
    client.v1.payment_intents.create(params=PARAMS, options=options)
    with pytest.raises(stripe.IdempotencyError) as info:
        client.v1.payment_intents.create(params=dict(PARAMS, amount=6000), options=options)
    assert info.value.http_status == 400
    assert info.value.error.type == "idempotency_error"


def test_keys_are_scoped_to_the_api_key(emulator):
    a = stripe.StripeClient("sk_test_a", base_addresses={"api": emulator.base_url})
    b = stripe.StripeClient("sk_test_b", base_addresses={"api": emulator.base_url})
    options = {"idempotency_key": "shared"}
    assert (a.v1.customers.create(options=options).id
            != b.v1.customers.create(options=options).id)


def test_a_validation_error_is_not_saved(client):
    options = {"idempotency_key": "fix-and-retry"}
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.create(params=dict(PARAMS, colour="red"), options=options)
    pi = client.v1.payment_intents.create(params=PARAMS, options=options)
    assert pi.status == "succeeded"


def test_concurrent_request_with_the_same_key_is_409(client, emulator):
    url = f"{emulator.base_url}/v1/customers"
    headers = {"Authorization": "Bearer sk_test_x", "Idempotency-Key": "busy"}
    first = {}
    with emulator.state.lock:  # the first request starts, then waits for the state lock
        thread = threading.Thread(target=lambda: first.update(
            response=requests.post(url, data={"email": "a@b.test"}, headers=headers, timeout=10)))
        thread.start()
        deadline = time.monotonic() + 5
        while len(emulator.requests()) < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)
        second = requests.post(url, data={"email": "a@b.test"}, headers=headers, timeout=10)
    thread.join(10)
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "idempotency_key_in_use"
    assert first["response"].status_code == 200


def test_keys_expire_after_24_hours(client, emulator):
    now = [time.time()]
    emulator.set_clock(lambda: now[0])
    options = {"idempotency_key": "daily"}
    first = client.v1.payment_intents.create(params=PARAMS, options=options)
    now[0] += 24 * 3600 - 5
    assert client.v1.payment_intents.create(params=PARAMS, options=options).id == first.id
    now[0] += 10
    later = client.v1.payment_intents.create(params=PARAMS, options=options)
    assert later.id != first.id
    assert later.last_response.headers.get("Idempotent-Replayed") is None


def test_store_is_bounded_and_expires():
    now = [1000.0]
    store = IdempotencyStore(clock=lambda: now[0], capacity=3, ttl=100)
    for key in "abcd":
        outcome, entry = store.begin("sk", key, b"fp")
        assert outcome == NEW
        store.finish("sk", key, entry, 200, b"{}", "req", save=True)
    assert len(store) == 3
    assert store.begin("sk", "a", b"fp")[0] == NEW  # "a" was evicted, oldest first
    assert store.begin("sk", "d", b"fp")[0] == REPLAY
    assert store.begin("sk", "d", b"other")[0] == CONFLICT
    assert store.begin("sk", "a", b"fp")[0] == IN_USE  # begun, not finished
    now[0] += 101
    assert store.begin("sk", "d", b"fp")[0] == NEW
    assert len(store) == 1
