"""Webhook deliveries: signed, after the response, retried with backoff, resendable."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import stripe

from stripe_emulator.testing import DELIVERY_DEFAULTS
from stripe_emulator.webhooks import STRIPE_RETRY_DELAYS, sign

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


# --- delivery like Stripe's: late, out of order, twice, concurrently; Stripe's retry schedule ----------

@pytest.fixture(autouse=True)
def _delivery_defaults(emulator):
    yield
    emulator.set_webhook_delivery(**DELIVERY_DEFAULTS)


class GatedReceiver:
    """A webhook endpoint that records arrivals (time, event id, body, signature) and how many
    requests are in its handler at once; ``gate`` (set by default) holds each request until set;
    ``statuses`` are answered in order, then 200."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.statuses: list[int] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.gate = threading.Event()
        self.gate.set()
        self.cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.cond:
                    receiver.in_flight += 1
                    receiver.max_in_flight = max(receiver.max_in_flight, receiver.in_flight)
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.received.append({
                        "at": time.monotonic(), "event_id": json.loads(body)["id"],
                        "body": body, "signature": self.headers["Stripe-Signature"],
                        "status": status})
                    receiver.cond.notify_all()
                receiver.gate.wait(10)
                with receiver.cond:
                    receiver.in_flight -= 1
                    receiver.cond.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_until(self, predicate, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
            return True

    def event_ids(self) -> list[str]:
        with self.cond:
            return [r["event_id"] for r in self.received]

    def close(self) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gated():
    r = GatedReceiver()
    yield r
    r.close()


def _pay(client, order: str) -> str:
    """A confirmed PaymentIntent: one event, payment_intent.succeeded. Returns its event id."""
    pi = client.v1.payment_intents.create(params=dict(PARAMS, metadata={"order": order}))
    [event] = [e for e in client.v1.events.list(params={"limit": 100}).data
               if e.data.object.id == pi.id]
    return event.id


def test_delivery_defaults_are_deterministic(emulator):
    assert emulator.webhook_delivery == DELIVERY_DEFAULTS
    assert DELIVERY_DEFAULTS["concurrency"] == 1 and DELIVERY_DEFAULTS["duplicate_rate"] == 0


def test_delay_holds_each_event_before_its_first_try(client, emulator, gated):
    emulator.configure_webhooks(gated.url, SECRET)
    emulator.set_webhook_delivery(delay_ms=400, jitter=0)
    answered = time.monotonic()
    event_id = _pay(client, "late")
    assert gated.wait_until(lambda: gated.received)
    assert gated.received[0]["event_id"] == event_id
    assert gated.received[0]["at"] - answered >= 0.39
    assert emulator.wait_webhooks_idle()


def test_delay_jitter_stays_within_its_bounds(emulator):
    hooks = emulator.emulator.webhooks
    emulator.set_webhook_delivery(delay_ms=1000, jitter=0.5, seed=7)
    delays = [hooks._first_delay() for _ in range(200)]
    assert all(0.5 <= d <= 1.5 for d in delays)
    assert max(delays) - min(delays) > 0.5  # it does vary


def test_wait_webhooks_idle_waits_for_delayed_deliveries(client, emulator, gated):
    emulator.configure_webhooks(gated.url, SECRET)
    emulator.set_webhook_delivery(delay_ms=300, jitter=0)
    _pay(client, "a")
    assert not emulator.wait_webhooks_idle(timeout=0.05)  # still delayed
    assert emulator.wait_webhooks_idle(timeout=5)
    assert len(gated.received) == 1


def _shuffled_run(client, emulator, gated, seed: int) -> list[int]:
    """Eight events inside one shuffle window: their arrival order, as creation positions."""
    emulator.reset()
    with gated.cond:
        gated.received.clear()
    emulator.configure_webhooks(gated.url, SECRET)
    emulator.set_webhook_delivery(shuffle_window_ms=1500, seed=seed)
    for i in range(8):  # one event each, well inside the window
        client.v1.payment_intents.create(params=dict(PARAMS, metadata={"order": f"o{i}"}))
    created = [e["id"] for e in emulator.events()]
    assert len(created) == 8
    assert emulator.wait_webhooks_idle(timeout=10)
    arrived = gated.event_ids()
    assert sorted(arrived) == sorted(created)  # every event, once
    return [created.index(e) for e in arrived]


def test_shuffle_reorders_within_the_window_delivers_all_and_is_seeded(client, emulator, gated):
    first = _shuffled_run(client, emulator, gated, seed=12)
    assert first != list(range(8))
    assert _shuffled_run(client, emulator, gated, seed=12) == first  # reproducible
    assert _shuffled_run(client, emulator, gated, seed=13) != first


def test_without_shuffle_events_arrive_in_order(client, emulator, gated):
    emulator.configure_webhooks(gated.url, SECRET)
    created = [_pay(client, f"o{i}") for i in range(5)]
    assert emulator.wait_webhooks_idle()
    assert gated.event_ids() == created


def test_duplicate_rate_1_delivers_every_event_twice_same_id_same_body(client, emulator, gated):
    emulator.configure_webhooks(gated.url, SECRET)
    emulator.set_webhook_delivery(duplicate_rate=1.0, seed=1)
    created = [_pay(client, f"o{i}") for i in range(3)]
    assert emulator.wait_webhooks_idle()
    arrived = gated.event_ids()
    assert sorted(arrived) == sorted(created * 2)
    for event_id in created:
        bodies = [r for r in gated.received if r["event_id"] == event_id]
        assert bodies[0]["body"] == bodies[1]["body"]
        for r in bodies:  # each copy is signed at its own attempt, and verifies
            stripe.Webhook.construct_event(r["body"].decode(), r["signature"], SECRET)
    deliveries = emulator.deliveries()
    assert sorted(d["duplicate"] for d in deliveries) == [False] * 3 + [True] * 3
    assert all(d["status"] == "succeeded" for d in deliveries)


def test_duplicate_rate_0_never_duplicates(client, emulator, gated):
    emulator.configure_webhooks(gated.url, SECRET)
    emulator.set_webhook_delivery(duplicate_rate=0.0, seed=1)
    created = [_pay(client, f"o{i}") for i in range(5)]
    assert emulator.wait_webhooks_idle()
    assert gated.event_ids() == created
    assert not any(d["duplicate"] for d in emulator.deliveries())


def test_concurrency_n_puts_n_deliveries_in_flight_never_more(client, emulator, gated):
    emulator.configure_webhooks(gated.url, SECRET)
    emulator.set_webhook_delivery(concurrency=3)
    gated.gate.clear()  # hold every request in the receiver
    created = [_pay(client, f"o{i}") for i in range(6)]
    assert gated.wait_until(lambda: gated.in_flight == 3)
    # a fourth cannot start while three are held (no timing in the passing direction)
    assert not gated.wait_until(lambda: gated.in_flight > 3, timeout=0.3)
    assert len(gated.received) == 3
    gated.gate.set()
    assert emulator.wait_webhooks_idle(timeout=10)
    assert sorted(gated.event_ids()) == sorted(created)
    assert gated.max_in_flight == 3
    assert emulator.webhook_max_in_flight == 3


def test_concurrency_1_delivers_one_at_a_time(client, emulator, gated):
    emulator.configure_webhooks(gated.url, SECRET)
    gated.gate.clear()
    [_pay(client, f"o{i}") for i in range(3)]
    assert gated.wait_until(lambda: gated.in_flight == 1)
    assert not gated.wait_until(lambda: gated.in_flight > 1, timeout=0.3)
    gated.gate.set()
    assert emulator.wait_webhooks_idle()
    assert gated.max_in_flight == 1 and len(gated.received) == 3


def test_all_options_together_deliver_every_event_at_least_once(client, emulator, gated):
    emulator.configure_webhooks(gated.url, SECRET)
    emulator.set_webhook_delivery(delay_ms=50, shuffle_window_ms=100, duplicate_rate=0.5,
                                  concurrency=4, seed=3)
    created = [_pay(client, f"o{i}") for i in range(10)]
    assert emulator.wait_webhooks_idle(timeout=10)
    arrived = gated.event_ids()
    assert set(arrived) == set(created)
    assert len(arrived) == len(emulator.deliveries()) > len(created)  # some twice (seed 3)


@pytest.mark.parametrize("schedule, attempts", [("test", 4), ("live", 13)])
def test_retries_follow_stripes_schedule_compressed(client, emulator, gated, schedule, attempts):
    emulator.configure_webhooks(gated.url, SECRET)
    emulator.set_webhook_delivery(retry_schedule=schedule, retry_compression=1_000_000)
    gated.statuses = [500] * 100
    event_id = _pay(client, "retried")
    assert emulator.wait_webhooks_idle(timeout=10)
    (delivery,) = emulator.deliveries()
    assert (delivery["status"], delivery["attempts"]) == ("failed", attempts)
    assert gated.event_ids() == [event_id] * attempts


def test_a_retry_on_stripes_schedule_stops_once_answered_2xx(client, emulator, gated):
    emulator.configure_webhooks(gated.url, SECRET)
    emulator.set_webhook_delivery(retry_schedule="live", retry_compression=1_000_000)
    gated.statuses = [500, 502, 503]
    _pay(client, "retried")
    assert emulator.wait_webhooks_idle(timeout=10)
    (delivery,) = emulator.deliveries()
    assert (delivery["status"], delivery["attempts"]) == ("succeeded", 4)
    assert [h["status_code"] for h in delivery["history"]] == [500, 502, 503, 200]


def test_stripes_retry_schedules_span_what_stripe_documents():
    live, sandbox = STRIPE_RETRY_DELAYS["live"], STRIPE_RETRY_DELAYS["test"]
    assert 2.5 * 86400 < sum(live) <= 3 * 86400  # "up to three days", exponential
    assert all(b == 2 * a for a, b in zip(live, live[1:], strict=False))
    assert len(sandbox) == 3 and 3600 < sum(sandbox) < 6 * 3600  # "three times over a few hours"


def test_retry_delays_are_divided_by_the_compression(emulator):
    hooks = emulator.emulator.webhooks
    emulator.set_webhook_delivery(retry_schedule="test", retry_compression=100)
    assert [hooks.retry_delay(n) for n in (1, 2, 3, 4)] == [9.0, 36.0, 72.0, None]
    emulator.set_webhook_delivery(retry_schedule=None)
    emulator.configure_webhooks(None, max_attempts=3, backoff=0.5)
    assert [hooks.retry_delay(n) for n in (1, 2, 3)] == [0.5, 1.0, None]


@pytest.mark.parametrize("options", [
    {"delay_ms": -1}, {"jitter": 1.5}, {"shuffle_window_ms": -5}, {"duplicate_rate": 1.01},
    {"duplicate_rate": -0.1}, {"concurrency": 0}, {"concurrency": 1.5},
    {"retry_schedule": "weekly"}, {"retry_compression": 0}, {"speed": 2},
])
def test_bad_delivery_options_are_refused_and_change_nothing(emulator, options):
    before = emulator.webhook_delivery
    with pytest.raises(ValueError):
        emulator.set_webhook_delivery(**{"concurrency": 2, **options})
    assert emulator.webhook_delivery == before


def test_delivery_options_over_http(emulator):
    url = f"{emulator.base_url}/_emulator/webhooks/delivery"
    answer = requests.post(url, json={"delay_ms": 25, "shuffle_window_ms": 100,
                                      "duplicate_rate": 0.25, "concurrency": 2, "seed": 9,
                                      "retry_schedule": "test"}, timeout=5)
    assert answer.status_code == 200
    assert answer.json() == dict(DELIVERY_DEFAULTS, delay_ms=25.0, shuffle_window_ms=100.0,
                                 duplicate_rate=0.25, concurrency=2, seed=9,
                                 retry_schedule="test")
    assert requests.get(url, timeout=5).json() == answer.json()
    assert requests.post(url, json={"concurrency": 0}, timeout=5).status_code == 400
    assert requests.post(url, json={"nope": 1}, timeout=5).status_code == 400
    assert requests.get(url, timeout=5).json() == answer.json()


def test_reset_keeps_the_delivery_options_and_forgets_queued_deliveries(client, emulator, gated):
    emulator.configure_webhooks(gated.url, SECRET)
    emulator.set_webhook_delivery(delay_ms=5000, concurrency=2)
    _pay(client, "forgotten")
    emulator.reset()
    assert emulator.wait_webhooks_idle(timeout=1)
    assert emulator.deliveries() == [] and gated.received == []
    assert emulator.webhook_delivery["concurrency"] == 2
