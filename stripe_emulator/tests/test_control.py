"""The /_emulator/ routes over HTTP, and the in-process handle."""

from __future__ import annotations

import requests

PARAMS = {"amount": 5000, "currency": "usd", "confirm": True, "payment_method": "pm_card_visa"}


def test_reset_and_request_log_over_http(client, emulator):
    base = emulator.base_url
    client.v1.customers.create(options={"idempotency_key": "k1"})
    client.v1.customers.list()
    log = requests.get(f"{base}/_emulator/requests", timeout=5).json()["data"]
    assert log == [{"method": "POST", "path": "/v1/customers", "idempotency_key": "k1"},
                   {"method": "GET", "path": "/v1/customers", "idempotency_key": None}]
    assert requests.delete(f"{base}/_emulator/requests", timeout=5).status_code == 200
    assert emulator.requests() == []
    assert requests.post(f"{base}/_emulator/reset", timeout=5).json() == {"reset": True}
    assert client.v1.customers.list().data == []


def test_dispute_trigger_and_refund_failure_over_http(client, emulator):
    pi = client.v1.payment_intents.create(params=PARAMS)
    refund = client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 100})
    failed = requests.post(f"{emulator.base_url}/_emulator/refunds/{refund.id}/fail", timeout=5)
    assert failed.json()["status"] == "failed"
    dispute = requests.post(f"{emulator.base_url}/_emulator/charges/{pi.latest_charge}/dispute",
                            json={"reason": "product_not_received"}, timeout=5)
    assert dispute.status_code == 200
    assert dispute.json()["reason"] == "product_not_received"
    unknown = requests.post(f"{emulator.base_url}/_emulator/charges/ch_nope/dispute", timeout=5)
    assert unknown.status_code == 404


def test_webhook_configuration_and_latency_over_http(emulator, receiver):
    base = emulator.base_url
    answer = requests.post(f"{base}/_emulator/webhooks", json={
        "url": receiver.url, "secret": "whsec_x", "max_attempts": 2, "backoff": 0.01},
        timeout=5).json()
    assert answer == {"url": receiver.url, "max_attempts": 2, "backoff": 0.01}
    assert emulator.webhook_secret == "whsec_x"
    assert requests.post(f"{base}/_emulator/config", json={"latency_ms": 5},
                         timeout=5).json() == {"latency_ms": 5.0}


def test_health_and_unknown_routes(emulator):
    assert requests.get(f"{emulator.base_url}/_emulator/health", timeout=5).json() == {
        "status": "ok"}
    assert requests.get(f"{emulator.base_url}/_emulator/nope", timeout=5).status_code == 404
    assert requests.get(f"{emulator.base_url}/elsewhere", timeout=5).status_code == 404


def test_3ds_page_for_unknown_intent_is_404(emulator):
    assert requests.get(f"{emulator.base_url}/_emulator/3ds/pi_nope", timeout=5).status_code == 404
