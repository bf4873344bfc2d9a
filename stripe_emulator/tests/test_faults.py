"""Faults: timeout, 500, 429, refused, and work done with the answer lost."""

from __future__ import annotations

import re
import socket
import threading
import time
from pathlib import Path

import pytest
import requests
import stripe

from stripe_emulator import faults as faults_module
from stripe_emulator.faults import EXECUTED_KINDS, KINDS, FaultTable
from stripe_emulator.testing import EmulatorHandle

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


# --- refused, and every kind in faults.KINDS -----------------------------------------------------

def _customers(emulator) -> list[dict]:
    with emulator.state.lock:
        return [o for o in emulator.state.objects.values() if o["object"] == "customer"]


def test_kinds_is_the_one_list_of_fault_kinds():
    assert KINDS == ("timeout", "error_500", "rate_limit", "lock_timeout", "drop_after_work", "reset_mid_body",
                     "refused")
    assert EXECUTED_KINDS == {"drop_after_work", "reset_mid_body"} and EXECUTED_KINDS <= set(KINDS)
    with pytest.raises(ValueError, match="refused"):  # the error names the valid kinds
        FaultTable().arm("*", "/v1", "gremlins")


def test_refused_raises_api_connection_error_at_once_and_executes_nothing(emulator):
    client = make_client(emulator, http_client=stripe.RequestsClient(timeout=5))
    client.v1.customers.list()  # a kept-alive connection: the reset must end it too
    emulator.arm_fault("POST", "/v1/customers", "refused")
    started = time.monotonic()
    with pytest.raises(stripe.APIConnectionError) as info:
        client.v1.customers.create(params={"email": "a@example.com"},
                                   options={"idempotency_key": "refused-once"})
    elapsed = time.monotonic() - started
    assert elapsed < 1.0, elapsed  # a reset, not a timeout (the client waits up to 5 s)
    cause = info.value.__cause__
    assert isinstance(cause, requests.exceptions.ConnectionError)
    assert not isinstance(cause, requests.exceptions.Timeout)
    # Not executed: no object, no event, and the idempotency key was never used ...
    assert _customers(emulator) == [] and emulator.events() == []
    assert len(emulator.emulator.idempotency) == 0
    # ... but the request reached the emulator and is in the log.
    assert emulator.requests()[-1] == {"method": "POST", "path": "/v1/customers",
                                       "idempotency_key": "refused-once"}
    # The same key again runs the request for the first time: one customer, not a replay.
    retried = client.v1.customers.create(params={"email": "a@example.com"},
                                         options={"idempotency_key": "refused-once"})
    assert retried.last_response.headers.get("Idempotent-Replayed") is None
    again = client.v1.customers.create(params={"email": "a@example.com"},
                                       options={"idempotency_key": "refused-once"})
    assert again.id == retried.id
    assert again.last_response.headers.get("Idempotent-Replayed") == "true"
    assert [c["id"] for c in _customers(emulator)] == [retried.id]


def test_refused_is_retried_by_the_sdk_with_its_own_idempotency_key(emulator):
    client = make_client(emulator, max_network_retries=1)
    emulator.arm_fault("POST", "/v1/payment_intents", "refused")
    pi = client.v1.payment_intents.create(params=PARAMS)
    assert pi.status == "succeeded"
    posts = [r for r in emulator.requests() if r["method"] == "POST"]
    assert len(posts) == 2 and posts[0]["idempotency_key"] == posts[1]["idempotency_key"]
    assert [p.id for p in client.v1.payment_intents.list().data] == [pi.id]


def _raw_post(emulator) -> bytes:
    """One raw HTTP request; what the socket reads back (b"" on an orderly close)."""
    port = int(emulator.base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"POST /v1/customers HTTP/1.1\r\nHost: x\r\n"
                     b"Authorization: Bearer sk_test_raw\r\nContent-Length: 0\r\n\r\n")
        return sock.recv(65536)


def test_refused_resets_the_connection_where_drop_after_work_closes_it(emulator):
    emulator.arm_fault("POST", "/v1/customers", "refused")
    with pytest.raises(ConnectionResetError):  # RST (SO_LINGER 0), not FIN
        _raw_post(emulator)
    emulator.arm_fault("POST", "/v1/customers", "drop_after_work")
    assert _raw_post(emulator) == b""  # FIN: an orderly close with no answer
    assert len(_customers(emulator)) == 1  # only drop_after_work did the work
    assert _raw_post(emulator).startswith(b"HTTP/1.1 200 ")


EXPECTED_ERROR = {"timeout": stripe.APIConnectionError, "error_500": stripe.APIError,
                  "rate_limit": stripe.RateLimitError, "lock_timeout": stripe.RateLimitError,
                  "drop_after_work": stripe.APIConnectionError, "reset_mid_body": stripe.APIConnectionError,
                  "refused": stripe.APIConnectionError}


def test_reset_mid_body_sends_half_an_answer_then_resets(emulator):
    emulator.arm_fault("POST", "/v1/customers", "reset_mid_body")
    port = int(emulator.base_url.rsplit(":", 1)[1])
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"POST /v1/customers HTTP/1.1\r\nHost: x\r\n"
                     b"Authorization: Bearer sk_test_raw\r\nContent-Length: 0\r\n\r\n")
        with pytest.raises(ConnectionResetError):
            while chunk := sock.recv(65536):
                received += chunk
            raise ConnectionResetError  # an orderly close would mean the answer was not cut
    head, _, body = received.partition(b"\r\n\r\n")
    length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
    assert head.startswith(b"HTTP/1.1 200 ") and 0 < len(body) < length
    assert len(_customers(emulator)) == 1  # the work was done


@pytest.mark.parametrize("kind,retried", [("lock_timeout", True), ("error_500", False)])
def test_the_sdk_reads_stripe_should_retry_as_stripe_sends_it(emulator, kind, retried):
    client = make_client(emulator, max_network_retries=1)
    emulator.arm_fault("POST", "/v1/customers", kind)
    if retried:
        customer = client.v1.customers.create(params={"email": "r@example.com"})
        assert [c["id"] for c in _customers(emulator)] == [customer.id]
    else:
        with pytest.raises(stripe.APIError):
            client.v1.customers.create(params={"email": "r@example.com"})
        assert _customers(emulator) == []
    header = {"lock_timeout": "true", "error_500": "false"}[kind]
    emulator.arm_fault("POST", "/v1/customers", kind)
    answer = requests.post(f"{emulator.base_url}/v1/customers", headers={"Authorization": "Bearer sk_test_x"},
                           timeout=5)
    assert answer.headers["Stripe-Should-Retry"] == header


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_fails_the_call_and_a_retry_with_the_same_key_makes_one_object(emulator,
                                                                                    kind):
    assert set(EXPECTED_ERROR) == set(KINDS)  # a new kind needs its expectation here
    client = make_client(emulator, http_client=stripe.RequestsClient(timeout=5))
    emulator.arm_fault("POST", "/v1/customers", kind, seconds=0.2)
    options = {"idempotency_key": f"matrix-{kind}"}
    with pytest.raises(EXPECTED_ERROR[kind]):
        client.v1.customers.create(params={"email": "m@example.com"}, options=options)
    assert len(_customers(emulator)) == (1 if kind in EXECUTED_KINDS else 0)
    retried = client.v1.customers.create(params={"email": "m@example.com"}, options=options)
    assert [c["id"] for c in _customers(emulator)] == [retried.id]
    replayed = retried.last_response.headers.get("Idempotent-Replayed") == "true"
    assert replayed == (kind in EXECUTED_KINDS)


def test_refused_over_http(client, emulator):
    base = emulator.base_url
    armed = requests.post(f"{base}/_emulator/faults", json={
        "method": "POST", "path": "/v1/payment_intents", "kind": "refused"}, timeout=5)
    assert armed.status_code == 200 and armed.json()["kind"] == "refused"
    with pytest.raises(stripe.APIConnectionError):
        client.v1.payment_intents.create(params=PARAMS)
    assert client.v1.payment_intents.list().data == []
    form = requests.post(f"{base}/_emulator/faults",
                         data={"path": "/v1/customers", "kind": "refused", "count": "2"},
                         timeout=5)
    assert form.json()["remaining"] == 2


def test_docs_and_the_handle_describe_every_kind():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "STRIPE_EMULATOR.md").read_text()
    for kind in KINDS:
        assert f"| `{kind}` |" in doc, kind
        assert f'"{kind}"' in EmulatorHandle.arm_fault.__doc__, kind
        assert f"``{kind}``" in faults_module.__doc__, kind


def test_a_fault_path_starting_with_a_caret_is_a_regular_expression():
    from stripe_emulator.faults import FaultTable

    table = FaultTable()
    table.arm("POST", r"^/v1/payment_intents$", "error_500", count=5)
    assert table.take("POST", "/v1/payment_intents/pi_1/cancel") is None  # a prefix would have matched
    assert table.take("POST", "/v1/payment_intents") is not None
    table.arm("POST", r"^/v1/payment_intents/[^/]+/cancel$", "error_500")
    assert table.take("POST", "/v1/payment_intents/pi_1/confirm") is None
    assert table.take("POST", "/v1/payment_intents/pi_1/cancel").path.endswith("cancel$")
    import pytest

    with pytest.raises(ValueError):
        table.arm("POST", "^(unclosed", "error_500")
