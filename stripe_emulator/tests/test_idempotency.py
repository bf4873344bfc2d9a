"""Idempotency keys: replay (errors of execution included), conflict, in-use, expiry, bounded
memory, key length, GET and DELETE, the state file."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time

import pytest
import requests
import stripe

from stripe_emulator.idempotency import CONFLICT, IN_USE, NEW, REPLAY, IdempotencyStore

from .helpers import card, free_port, start_cli

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


# --- what is saved: results of execution, not validation failures ---------------------------------

def _fails(call) -> stripe.StripeError:
    with pytest.raises(stripe.StripeError) as info:
        call()
    return info.value


def _assert_replayed(first: stripe.StripeError, second: stripe.StripeError) -> None:
    assert second.http_status == first.http_status
    assert second.http_body == first.http_body
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert first.headers.get("Idempotent-Replayed") is None
    assert second.headers.get("Original-Request") == first.request_id


def test_a_400_from_execution_is_replayed_even_once_the_request_would_succeed(client):
    pi = client.v1.payment_intents.create(params={"amount": 5000, "currency": "usd"})
    options = {"idempotency_key": "confirm-too-early"}
    first = _fails(lambda: client.v1.payment_intents.confirm(pi.id, options=options))
    assert (first.http_status, first.code) == (400, "payment_intent_unexpected_state")
    client.v1.payment_intents.update(pi.id, params={"payment_method": "pm_card_visa"})
    second = _fails(lambda: client.v1.payment_intents.confirm(pi.id, options=options))
    _assert_replayed(first, second)
    assert client.v1.payment_intents.retrieve(pi.id).status == "requires_confirmation"


def test_a_refund_over_the_amount_is_replayed(client):
    pi = client.v1.payment_intents.create(params=PARAMS)
    params = {"payment_intent": pi.id, "amount": 6000}
    options = {"idempotency_key": "refund-too-much"}
    first = _fails(lambda: client.v1.refunds.create(params=params, options=options))
    assert (first.http_status, first.code, first.param) == (400, "amount_too_large", "amount")
    _assert_replayed(first, _fails(lambda: client.v1.refunds.create(params=params,
                                                                    options=options)))


def test_a_404_is_replayed(client):
    options = {"idempotency_key": "confirm-missing"}
    first = _fails(lambda: client.v1.payment_intents.confirm("pi_missing", options=options))
    assert (first.http_status, first.code) == (404, "resource_missing")
    _assert_replayed(first, _fails(lambda: client.v1.payment_intents.confirm(
        "pi_missing", options=options)))


def test_a_402_is_replayed_with_its_status(client):
    params = {"amount": 5000, "currency": "usd", "confirm": True,
              "payment_method_data": card("4000000000000002")}
    options = {"idempotency_key": "declined-402"}
    first = _fails(lambda: client.v1.payment_intents.create(params=params, options=options))
    assert first.http_status == 402
    _assert_replayed(first, _fails(lambda: client.v1.payment_intents.create(params=params,
                                                                            options=options)))


def test_a_500_is_replayed(client, emulator):
    routes = emulator.emulator._routes["POST"]
    index = next(i for i, (_, op, _fn) in enumerate(routes) if op == "customers.create")
    regex, op, fn = routes[index]

    def broken(st, ctx, params):
        raise RuntimeError("an emulator bug")

    options = {"idempotency_key": "bug-once"}
    routes[index] = (regex, op, broken)
    try:
        first = _fails(lambda: client.v1.customers.create(options=options))
    finally:
        routes[index] = (regex, op, fn)
    assert (first.http_status, first.error.type) == (500, "api_error")
    _assert_replayed(first, _fails(lambda: client.v1.customers.create(options=options)))
    assert client.v1.customers.create(options={"idempotency_key": "bug-fixed"}).id


@pytest.mark.parametrize("bad", [
    {"colour": "red"},
    {"payment_method_options": {"card": {"colour": "red"}}},
    {"metadata": {"note": "v" * 501}},
    {"metadata": {f"k{i}": "v" for i in range(51)}},
    {"amount": "fifty"},
])
def test_a_validation_400_is_not_saved(client, bad):
    options = {"idempotency_key": "validate-first"}
    for _ in range(2):  # the same invalid request runs again: nothing was saved
        err = _fails(lambda: client.v1.payment_intents.create(params={**PARAMS, **bad},
                                                              options=options))
        assert err.http_status == 400 and err.code != "idempotency_error"
        assert err.headers.get("Idempotent-Replayed") is None
    pi = client.v1.payment_intents.create(params=PARAMS, options=options)  # corrected
    assert pi.status == "succeeded"
    assert pi.last_response.headers.get("Idempotent-Replayed") is None


# --- keys: length, methods ------------------------------------------------------------------------

def test_a_key_over_255_characters_is_refused(client):
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.customers.create(options={"idempotency_key": "k" * 256})
    assert info.value.http_status == 400
    assert info.value.error.type == "invalid_request_error"
    assert "255 characters" in str(info.value.user_message)
    assert client.v1.customers.list().data == []


def test_a_key_of_255_characters_is_accepted(client):
    options = {"idempotency_key": "k" * 255}
    first = client.v1.customers.create(params={"email": "a@b.test"}, options=options)
    second = client.v1.customers.create(params={"email": "a@b.test"}, options=options)
    assert second.id == first.id
    assert second.last_response.headers.get("Idempotent-Replayed") == "true"


def test_get_ignores_the_key(client, emulator):
    cus = client.v1.customers.create(params={"email": "old@b.test"})
    options = {"idempotency_key": "read-1"}
    assert client.v1.customers.retrieve(cus.id, options=options).email == "old@b.test"
    client.v1.customers.update(cus.id, params={"email": "new@b.test"})
    again = client.v1.customers.retrieve(cus.id, options=options)
    assert again.email == "new@b.test"
    assert again.last_response.headers.get("Idempotent-Replayed") is None
    # Other parameters under the same key: no idempotency_error either.
    listed = client.v1.customers.list(params={"limit": 1}, options=options)
    assert [c.id for c in listed.data] == [cus.id]
    gets = [r for r in emulator.requests() if r["method"] == "GET"]
    assert {r["idempotency_key"] for r in gets} == {"read-1"}  # the SDK did send it
    # The key was never taken: a POST may use it.
    created = client.v1.customers.create(options=options)
    assert created.last_response.headers.get("Idempotent-Replayed") is None


def test_delete_ignores_the_key(client, emulator):
    cus = client.v1.customers.create()
    options = {"idempotency_key": "delete-1"}
    assert client.v1.customers.delete(cus.id, options=options).deleted is True
    second = _fails(lambda: client.v1.customers.delete(cus.id, options=options))
    assert (second.http_status, second.code) == (404, "resource_missing")  # ran again
    assert second.headers.get("Idempotent-Replayed") is None
    deletes = [r for r in emulator.requests() if r["method"] == "DELETE"]
    assert [r["idempotency_key"] for r in deletes] == ["delete-1", "delete-1"]
    other = client.v1.customers.create(options=options)
    assert other.id != cus.id
    assert other.last_response.headers.get("Idempotent-Replayed") is None


# --- keys survive a restart with the state file ---------------------------------------------------




def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0


def test_keys_survive_a_restart_with_the_state_file(tmp_path):
    port = free_port()
    state_file = tmp_path / "stripe.json"
    client = stripe.StripeClient("sk_test_restart", max_network_retries=0,
                                 base_addresses={"api": f"http://127.0.0.1:{port}"})
    params = {"amount": 5000, "currency": "usd", "confirm": True,
              "payment_method_data": card("4242424242424242", cvc="987")}
    declined = dict(params, payment_method_data=card("4000000000000002", cvc="987"))
    options = {"idempotency_key": "before-restart"}
    proc = start_cli(port, "--state-file", str(state_file))
    try:
        first = client.v1.payment_intents.create(params=params, options=options)
        refused = _fails(lambda: client.v1.payment_intents.create(
            params=declined, options={"idempotency_key": "declined-before"}))
    finally:
        _stop(proc)
    text = state_file.read_text()
    assert "4242424242424242" not in text and "4000000000000002" not in text
    assert '"987"' not in text and "sk_test_restart" not in text
    assert len(json.loads(text)["idempotency"]) == 2

    proc = start_cli(port, "--state-file", str(state_file))
    try:
        again = client.v1.payment_intents.create(params=params, options=options)
        assert again.id == first.id
        assert again.last_response.headers.get("Idempotent-Replayed") == "true"
        assert again.last_response.body == first.last_response.body
        _assert_replayed(refused, _fails(lambda: client.v1.payment_intents.create(
            params=declined, options={"idempotency_key": "declined-before"})))
        with pytest.raises(stripe.IdempotencyError):
            client.v1.payment_intents.create(params=dict(params, amount=6000), options=options)
        other = stripe.StripeClient("sk_test_other", max_network_retries=0,
                                    base_addresses={"api": f"http://127.0.0.1:{port}"})
        assert other.v1.payment_intents.create(params=params, options=options).id != first.id
    finally:
        _stop(proc)


def test_a_reloaded_state_keeps_keys_until_they_expire(client, emulator, tmp_path):
    now = [time.time()]
    emulator.set_clock(lambda: now[0])
    options = {"idempotency_key": "reloaded"}
    first = client.v1.customers.create(params={"email": "a@b.test"}, options=options)
    path = tmp_path / "state.json"
    emulator.state.save_file(str(path))
    emulator.reset()
    emulator.state.load_file(str(path))
    assert client.v1.customers.create(params={"email": "a@b.test"}, options=options).id == first.id
    now[0] += 24 * 3600 + 1
    emulator.state.load_file(str(path))  # expired by now: not loaded
    assert len(emulator.emulator.idempotency) == 0
    assert client.v1.customers.create(params={"email": "a@b.test"}, options=options).id != first.id


def test_dump_and_load_keep_the_newest_within_capacity():
    now = [1000.0]
    store = IdempotencyStore(clock=lambda: now[0], capacity=2, ttl=100)
    for i, key in enumerate("abc"):
        now[0] += 1
        outcome, entry = store.begin("sk_test_secret", key, store.fingerprint("POST", "/v1/x", b""))
        store.finish("sk_test_secret", key, entry, 200, b'{"n":%d}' % i, f"req_{i}", save=True)
    rows = store.dump()
    assert [r["key"] for r in rows] == ["b", "c"]
    assert "sk_test_secret" not in json.dumps(rows)
    fresh = IdempotencyStore(clock=lambda: now[0], capacity=1, ttl=100)
    fresh.load(rows)
    assert len(fresh) == 1
    outcome, entry = fresh.begin("sk_test_secret", "c", fresh.fingerprint("POST", "/v1/x", b""))
    assert (outcome, entry.body, entry.request_id) == (REPLAY, b'{"n":2}', "req_2")
    assert fresh.begin("sk_test_secret", "c", fresh.fingerprint("POST", "/v1/y", b""))[0] == CONFLICT
