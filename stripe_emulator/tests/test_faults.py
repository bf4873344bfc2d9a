"""Faults: timeout, 500, 429, and work done with the answer lost."""

from __future__ import annotations

import threading
import time

import pytest
import requests
import stripe

from .helpers import make_client

PARAMS = {"amount": 5000, "currency": "usd", "confirm": True, "payment_method": "pm_card_visa"}


def test_timeout_holds_the_request_past_the_client_timeout(emulator):
    client = make_client(emulator, http_client=stripe.RequestsClient(timeout=0.3))
    emulator.arm_fault("POST", "/v1/payment_intents", "timeout")
    with pytest.raises(stripe.APIConnectionError) as info:
        client.v1.payment_intents.create(params=PARAMS)
    # The client's read timeout ended it, not an answer (the fault holds for 30 s by default).
    assert isinstance(info.value.__cause__, requests.exceptions.ReadTimeout)
    # Not executed; the next request is served normally.
    assert client.v1.payment_intents.list().data == []
    assert client.v1.payment_intents.create(params=PARAMS).status == "succeeded"


def test_reset_releases_held_requests(emulator):
    emulator.arm_fault("*", "/v1/customers", "timeout", seconds=60)
    finished = threading.Event()

    def call():
        try:
            requests.post(f"{emulator.base_url}/v1/customers",
                          headers={"Authorization": "Bearer sk_test_1"}, timeout=30)
        except requests.RequestException:
            pass
        finished.set()

    threading.Thread(target=call, daemon=True).start()
    time.sleep(0.2)
    assert not finished.is_set()
    emulator.reset()
    assert finished.wait(5)


def test_error_500(client, emulator):
    emulator.arm_fault("POST", "/v1/payment_intents", "error_500")
    with pytest.raises(stripe.APIError) as info:
        client.v1.payment_intents.create(params=PARAMS)
    assert info.value.http_status == 500
    assert client.v1.payment_intents.list().data == []


def test_rate_limit(client, emulator):
    emulator.arm_fault("GET", "/v1/payment_intents", "rate_limit", count=2)
    for _ in range(2):
        with pytest.raises(stripe.RateLimitError) as info:
            client.v1.payment_intents.list()
        assert info.value.http_status == 429
    assert client.v1.payment_intents.list().data == []


def test_drop_after_work_does_the_work_and_a_retry_replays_it(client, emulator):
    emulator.arm_fault("POST", "/v1/payment_intents", "drop_after_work")
    options = {"idempotency_key": "dropped-once"}
    with pytest.raises(stripe.APIConnectionError):
        client.v1.payment_intents.create(params=PARAMS, options=options)
    (created,) = client.v1.payment_intents.list().data
    assert created.status == "succeeded"
    retried = client.v1.payment_intents.create(params=PARAMS, options=options)
    assert retried.id == created.id
    assert retried.last_response.headers.get("Idempotent-Replayed") == "true"


def test_fault_matches_method_and_path_prefix_only(client, emulator):
    emulator.arm_fault("POST", "/v1/refunds", "error_500")
    client.v1.payment_intents.create(params=PARAMS)  # other path: untouched
    client.v1.refunds.list()  # other method: untouched
    with pytest.raises(stripe.APIError):
        client.v1.refunds.create(params={"payment_intent": "pi_x"})


def test_faults_over_http(client, emulator):
    base = emulator.base_url
    response = requests.post(f"{base}/_emulator/faults", json={
        "method": "POST", "path": "/v1/payment_intents", "kind": "error_500", "count": 1},
        timeout=5)
    assert response.status_code == 200
    assert requests.get(f"{base}/_emulator/faults", timeout=5).json()["data"][0]["kind"] == \
        "error_500"
    with pytest.raises(stripe.APIError):
        client.v1.payment_intents.create(params=PARAMS)
    assert requests.get(f"{base}/_emulator/faults", timeout=5).json()["data"] == []
    bad = requests.post(f"{base}/_emulator/faults", json={"path": "/v1", "kind": "gremlins"},
                        timeout=5)
    assert bad.status_code == 400
