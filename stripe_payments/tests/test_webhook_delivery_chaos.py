"""Webhooks delivered the way Stripe says they may be (late, out of order, twice, concurrently), with
Stripe's search lag on: the app must end in the same state as with orderly delivery.

Each test runs the same scenarios twice against the in-process emulator, with fresh users and gigs per
run: first with orderly delivery (the emulator's deterministic defaults), then with deliveries delayed
(50 ms ± 50%), shuffled (100 ms windows), doubled (rate 0.5), four in flight at once and a two-minute
search lag. The end states (payments: status, amounts, refunded cents and split; bookings: status;
refund requests: kind, status, amount, applied; saved cards; the app's answers) are normalized by
scenario (each scenario has its own student and gig, no raw pks or Stripe ids) and must be equal.

Scenarios: the seed's flow (pay with a new card, saved, teacher confirms), a card added on its own,
3-D Secure completed on the page (and the return page), 3-D Secure completed at Stripe and known only
from the webhook, 3-D Secure failed, each decline card, a refund requested by the student and approved by
an admin, a teacher's decline (refunded in full), a dashboard refund (known only from the webhook), a
dispute (webhook only), and a create whose answer was lost, settled by reconciliation under search lag.

How deliveries reach the app:

- on SQLite (``test_..._relayed``): the emulator POSTs each delivery over HTTP, with every chaos option,
  to a relay in this test; the relay hands it to the app through Django's test client in the test
  thread (between the scenario's steps, and until the emulator is idle at the end) and answers Stripe
  with the app's status, so an app error is retried by the emulator. The app sees the late, shuffled,
  doubled deliveries interleaved with the scenario's own requests, one at a time: pytest-django's
  SQLite test database cannot be shared with other threads.
- on PostgreSQL (``test_..._live_server``, ``make test-postgres``): the emulator POSTs to
  pytest-django's live server, so four deliveries really run at once, in threads of their own, against
  each other and the scenario's requests.
"""

from __future__ import annotations

import json
import queue
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.test import Client
from django.utils import timezone

from bookings.models import Booking
from stripe_emulator.testing import DELIVERY_DEFAULTS
from stripe_payments.models import (
    Payment,
    RefundRequest,
    SavedPaymentMethod,
    WebhookEvent,
    WebhookEventStatus,
)

from .conftest import (
    ADD_URL,
    CHARGE_FAIL,
    DECLINED,
    INSUFFICIENT,
    LOST,
    MASTERCARD,
    PAY_URL,
    REFUNDS_URL,
    THREE_DS,
    VISA,
    WEBHOOK_SECRET,
    WEBHOOK_URL,
    card,
    dashboard,
    run_command,
    through_3ds_page,
)

pytestmark = [pytest.mark.emulator]

CHAOS = {"delay_ms": 50, "jitter": 0.5, "shuffle_window_ms": 100, "duplicate_rate": 0.5,
         "concurrency": 4, "seed": 12}
SEARCH_LAG_MS = 120_000
DECLINE_CARDS = {"declined": DECLINED, "insufficient": INSUFFICIENT, "lost": LOST, "charge_fail": CHARGE_FAIL}


# --- how deliveries reach the app ----------------------------------------------------------------------------
class Relay:
    """A webhook endpoint for the emulator that hands each delivery to the app in the test thread (``pump``)
    and answers the emulator with the app's status."""

    holds_deliveries = True  # nothing reaches the app until pumped

    def __init__(self) -> None:
        self.pending: queue.Queue = queue.Queue()
        self.arrivals: list[str] = []  # event ids, in the order the app was handed them
        self.chaos_from = 0  # arrivals[chaos_from:] came during the chaotic run
        relay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                item = {"body": self.rfile.read(int(self.headers.get("Content-Length") or 0)),
                        "signature": self.headers.get("Stripe-Signature", ""), "status": 503,
                        "done": threading.Event()}
                relay.pending.put(item)
                item["done"].wait(30)
                self.send_response(item["status"])
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.client = Client()

    def pump(self) -> None:
        """Hand every delivery that has arrived so far to the app, in arrival order."""
        while True:
            try:
                item = self.pending.get_nowait()
            except queue.Empty:
                return
            try:
                response = self.client.post(WEBHOOK_URL, data=item["body"], content_type="application/json",
                                            HTTP_STRIPE_SIGNATURE=item["signature"])
                item["status"] = response.status_code
                self.arrivals.append(json.loads(item["body"])["id"])
            finally:
                item["done"].set()

    def drain(self, emulator, timeout: float = 30.0) -> None:
        deadline = timezone.now() + timedelta(seconds=timeout)
        while True:
            self.pump()
            if emulator.wait_webhooks_idle(timeout=0.05) and self.pending.empty():
                return
            assert timezone.now() < deadline, "webhook deliveries did not finish"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class LiveServer:
    """Deliveries go straight to the live server: nothing to pump."""

    holds_deliveries = False

    def __init__(self, live_server) -> None:
        self.url = f"{live_server.url}{WEBHOOK_URL}"

    def pump(self) -> None:
        pass

    def drain(self, emulator, timeout: float = 30.0) -> None:
        assert emulator.wait_webhooks_idle(timeout=timeout), "webhook deliveries did not finish"

    def close(self) -> None:
        pass


@pytest.fixture
def delivery_settings_restored(stripe_emulator):
    yield
    stripe_emulator.set_webhook_delivery(**DELIVERY_DEFAULTS)
    stripe_emulator.configure_webhooks(None)
    stripe_emulator.set_search_lag(0)


# --- the scenarios -------------------------------------------------------------------------------------------
def run_scenarios(run: str, *, hooks, emulator, make_user, make_gig, client_for, settings) -> dict:
    """Every scenario once, for users named after ``run``; the app's answers by scenario."""
    teacher = make_user("teacher", email=f"{run}.teacher@example.test")
    admin = make_user("admin", email=f"{run}.admin@example.test")
    answers: dict[str, list] = {}

    def student(label: str, price_cents: int = 5000):
        user = make_user("student", email=f"{run}.{label}@example.test")
        return user, client_for(user), make_gig(teacher, price_cents=price_cents, title=label)

    def step(label: str, response, expected: int):
        answers.setdefault(label, []).append(response.status_code)
        assert response.status_code == expected, (run, label, response.content)
        hooks.pump()
        return response.json() if response.content and response.headers.get("Content-Type", "").startswith(
            "application/json") else None

    def pay(label, client, gig, number, expected, **extra):
        return step(label, client.post(PAY_URL, {"gig_id": gig.pk, "card_details": card(number), **extra},
                                       format="json"), expected)

    def booking_of(payment_id) -> Booking:
        return Booking.objects.get(payment_id=payment_id)

    # the seed's flow: a new card, saved, a booking, the teacher confirms
    _, c, g = student("seed")
    paid = pay("seed", c, g, VISA, 200, save_card=True)
    step("seed", client_for(teacher).post(f"/bookings/{booking_of(paid['payment_id']).pk}/confirm/"), 200)

    # a card added on its own, then paid with as a saved card
    _, c, g = student("saved_card")
    step("saved_card", c.post(ADD_URL, card(MASTERCARD), format="json"), 200)
    saved = SavedPaymentMethod.objects.get(user__email=f"{run}.saved_card@example.test")
    step("saved_card", c.post(PAY_URL, {"gig_id": g.pk, "saved_payment_method_id": saved.stripe_payment_method_id},
                              format="json"), 200)

    # 3-D Secure completed on the page, then the browser comes back to the return page
    _, c, g = student("3ds_page")
    error = pay("3ds_page", c, g, THREE_DS, 402)["error"]
    step("3ds_page", Client().get(through_3ds_page(error["redirect_url"]), HTTP_ACCEPT="text/html"), 200)

    # 3-D Secure completed at Stripe; the app learns it from the webhook only
    _, c, g = student("3ds_webhook")
    error = pay("3ds_webhook", c, g, THREE_DS, 402)["error"]
    emulator.complete_3ds(error["payment_intent_id"])
    hooks.pump()

    # 3-D Secure failed on the page
    _, c, g = student("3ds_failed")
    error = pay("3ds_failed", c, g, THREE_DS, 402)["error"]
    step("3ds_failed", Client().get(through_3ds_page(error["redirect_url"], succeed=False),
                                    HTTP_ACCEPT="text/html"), 200)

    # each decline card
    for name, number in DECLINE_CARDS.items():
        _, c, g = student(f"decline_{name}")
        pay(f"decline_{name}", c, g, number, 402)

    # a refund requested by the student, approved by an admin
    _, c, g = student("refund_requested", 8000)
    paid = pay("refund_requested", c, g, VISA, 200)
    request = step("refund_requested", c.post(REFUNDS_URL, {"payment_id": paid["payment_id"], "reason": "sick",
                                                            "amount": "20.00"}, format="json"), 201)
    step("refund_requested", client_for(admin).post(f"{REFUNDS_URL}{request['id']}/approve/", {}, format="json"), 200)

    # the teacher declines: refunded in full
    _, c, g = student("teacher_decline")
    paid = pay("teacher_decline", c, g, VISA, 200)
    step("teacher_decline",
         client_for(teacher).post(f"/bookings/{booking_of(paid['payment_id']).pk}/decline/"), 200)

    # a refund made in Stripe's dashboard: known from the webhooks only
    _, c, g = student("dashboard_refund")
    paid = pay("dashboard_refund", c, g, VISA, 200)
    pi = Payment.objects.get(pk=paid["payment_id"]).stripe_payment_intent_id
    dashboard(emulator).v1.refunds.create(params={"payment_intent": pi, "amount": 1234})
    hooks.pump()

    # a dispute: known from the webhook only
    _, c, g = student("dispute")
    paid = pay("dispute", c, g, VISA, 200)
    emulator.trigger_dispute(Payment.objects.get(pk=paid["payment_id"]).stripe_charge_id)
    hooks.pump()

    # the answer to the create is lost; reconciliation settles it (search lags in the chaotic run)
    _, c, g = student("lost_answer")
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    emulator.arm_fault("POST", "/v1/payment_intents", "drop_after_work")
    response = c.post(PAY_URL, {"gig_id": g.pk, "card_details": card(VISA)}, format="json")  # no pump yet
    answers["lost_answer"] = [response.status_code]
    assert response.status_code == 503, (run, response.content)
    lost = Payment.objects.get(student__email=f"{run}.lost_answer@example.test")
    Payment.objects.filter(pk=lost.pk).update(updated_at=timezone.now() - timedelta(minutes=20))
    out = run_command("reconcile_payments", "--older-than-minutes", "15", "--skip-consistency")
    if hooks.holds_deliveries:  # payment_intent.succeeded is held in the relay: reconciliation settles it
        assert f"payment {lost.pk}: processing -> succeeded with its booking" in out, (run, out)
    # else the webhook may settle it first, concurrently: either way, one booking (end_state)
    hooks.pump()

    hooks.drain(emulator)
    return answers


def end_state(run: str, answers: dict) -> dict:
    """The app's state for ``run``, by scenario, without pks or Stripe ids."""
    state = {}
    for label, codes in answers.items():
        email = f"{run}.{label}@example.test"
        payments = Payment.objects.filter(student__email=email).order_by("pk")
        state[label] = {
            "answers": codes,
            "payments": [(p.status, p.amount_cents, p.admin_fee_cents, p.teacher_amount_cents, p.refunded_cents,
                          p.refunded_admin_fee_cents, p.refunded_teacher_cents, p.card_brand, p.card_last4,
                          p.failure_code, p.decline_code, bool(p.stripe_payment_intent_id),
                          bool(p.stripe_charge_id)) for p in payments],
            "bookings": [b.status for b in Booking.objects.filter(payment__in=payments).order_by("pk")],
            "refunds": [(r.kind, r.status, r.amount_cents, r.applied, r.failure_reason, bool(r.stripe_refund_id))
                        for r in RefundRequest.objects.filter(payment__in=payments).order_by("pk")],
            "saved_cards": sorted((s.brand, s.last4, s.exp_month, s.exp_year, s.is_default)
                                  for s in SavedPaymentMethod.objects.filter(user__email=email)),
        }
    return state


def assert_orderly_outcomes(state: dict) -> None:
    """What the scenarios must end in (checked on the orderly run; the chaotic run must equal it)."""
    def only(label, key):
        [value] = state[label][key]
        return value

    assert only("seed", "bookings") == "confirmed" and len(state["seed"]["saved_cards"]) == 1
    assert only("saved_card", "payments")[0] == "succeeded" and len(state["saved_card"]["saved_cards"]) == 1
    for label in ("3ds_page", "3ds_webhook", "lost_answer"):
        assert (only(label, "payments")[0], only(label, "bookings")) == ("succeeded", "pending_confirmation"), label
    assert only("3ds_failed", "payments")[0] == "failed" and not state["3ds_failed"]["bookings"]
    for name in DECLINE_CARDS:
        assert only(f"decline_{name}", "payments")[0] == "failed" and not state[f"decline_{name}"]["bookings"]
    assert only("refund_requested", "payments")[:5] == ("partially_refunded", 8000, 800, 7200, 2000)
    assert only("refund_requested", "refunds")[:4] == ("requested", "succeeded", 2000, True)
    assert only("teacher_decline", "payments")[0] == "refunded" and only("teacher_decline", "bookings") == "declined"
    assert only("dashboard_refund", "payments")[:5] == ("partially_refunded", 5000, 500, 4500, 1234)
    assert (only("dispute", "payments")[0], only("dispute", "bookings")) == ("disputed", "disputed")


def orderly_then_chaotic(hooks, emulator, **env) -> tuple[dict, dict]:
    emulator.configure_webhooks(hooks.url, WEBHOOK_SECRET, max_attempts=5, backoff=0.2, timeout=20)
    emulator.set_webhook_delivery(**DELIVERY_DEFAULTS)
    orderly = end_state("orderly", run_scenarios("orderly", hooks=hooks, emulator=emulator, **env))
    assert emulator.webhook_max_in_flight == 1

    assert_orderly_outcomes(orderly)

    emulator.set_webhook_delivery(**CHAOS)
    emulator.set_search_lag(SEARCH_LAG_MS)
    before = len(emulator.deliveries())
    hooks.chaos_from = len(getattr(hooks, "arrivals", []))
    chaotic = end_state("chaotic", run_scenarios("chaotic", hooks=hooks, emulator=emulator, **env))
    chaotic_deliveries = emulator.deliveries()[before:]
    assert any(d["duplicate"] for d in chaotic_deliveries), "the chaotic run delivered nothing twice"
    assert all(d["status"] == "succeeded" for d in emulator.deliveries()), [
        (d["event_type"], d["history"]) for d in emulator.deliveries() if d["status"] != "succeeded"]
    events = WebhookEvent.objects.all()
    assert events.count() == len({d["event_id"] for d in emulator.deliveries()})  # each event stored once
    assert not events.filter(status=WebhookEventStatus.FAILED).exists()
    return orderly, chaotic


# --- the runs ------------------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_chaotic_delivery_and_search_lag_end_like_orderly_delivery_relayed(
        stripe_emulator, delivery_settings_restored, make_user, make_gig, client_for, settings):
    relay = Relay()
    try:
        orderly, chaotic = orderly_then_chaotic(relay, stripe_emulator, make_user=make_user, make_gig=make_gig,
                                                client_for=client_for, settings=settings)
    finally:
        relay.close()
    assert chaotic == orderly
    # the app did see the chaos: deliveries out of the order the events were made
    created = [e["id"] for e in stripe_emulator.events()]
    chaotic_arrivals = relay.arrivals[relay.chaos_from:]
    firsts = list(dict.fromkeys(chaotic_arrivals))
    assert firsts != sorted(firsts, key=created.index)
    assert len(chaotic_arrivals) > len(firsts)  # and some twice


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_chaotic_delivery_and_search_lag_end_like_orderly_delivery_live_server(
        live_server, stripe_emulator, delivery_settings_restored, make_user, make_gig, client_for, settings):
    orderly, chaotic = orderly_then_chaotic(LiveServer(live_server), stripe_emulator, make_user=make_user,
                                            make_gig=make_gig, client_for=client_for, settings=settings)
    assert chaotic == orderly
    assert stripe_emulator.webhook_max_in_flight > 1
