"""The fault matrix (issue 9): every workflow that calls Stripe × every Stripe call it makes × every
fault kind the emulator has × the first try or every try.

The rows come from ``stripe_payments.gateway.OPERATIONS`` and ``stripe_emulator.faults.KINDS``:
``uncovered_operations()`` names any Stripe call that no workflow here makes, and the suite fails on
it, so a new Stripe call without its row of faults cannot land. Each workflow also declares the
calls a clean run of it makes, and a test checks the declaration against the emulator's log.

One case, against a ``Stack`` (the in-process live server in pytest, gunicorn in ``make reliability``):
1. a clean database and emulator (webhooks off: nothing heals but retries and reconciliation);
2. the workflow's setup, without faults;
3. the fault armed on the call (its count 1 for the first try, or every try), then the workflow's
   request, once: the answer must be the workflow's success or the contract's code for that fault;
4. faults cleared, the same request again (the same Idempotency-Key where the endpoint takes one):
   the workflow's success (or, where the first already succeeded, the contract's answer to a repeat);
5. ``reconcile_payments`` then ``check_stripe_consistency --no-repair``: zero differences;
6. the money, counted from both sides: nothing charged or refunded twice, nothing expected missing.

Everything goes over HTTP to the app and the emulator, except what only an operator does
(management commands, aging a booking): those go through the ORM of the same database.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Callable
from urllib.parse import urlsplit

import requests

HTTP_TIMEOUT = 30
EMULATOR_KEY = "sk_test_linguaflex_matrix"

# The contract's answer once every try of a call met the fault (API_CONTRACT.md, error table).
FAULT_STATUS = {
    "timeout": 504,          # payment_provider_timeout
    "error_500": 502,        # payment_provider_error
    "rate_limit": 503,       # payment_provider_unavailable
    "lock_timeout": 503,     # payment_provider_unavailable (the SDK retried the 429 first)
    "refused": 503,          # payment_provider_unavailable
    "drop_after_work": 503,  # the connection closed before any answer: unavailable
    "reset_mid_body": 503,   # the answer broke off half-way: unavailable, the work done
}
PHASES = ("first", "all")
EXP_YEAR = date.today().year + 3
VISA, THREE_DS = "4242424242424242", "4000002500003155"


def _card(number: str = VISA) -> dict:
    return {"card_number": number, "exp_month": 12, "exp_year": EXP_YEAR, "cvc": "123"}


# --- one run of a workflow -----------------------------------------------------------------------------
@dataclass
class Answer:
    status: int
    body: Any

    @property
    def code(self) -> str | None:
        if isinstance(self.body, dict):
            return (self.body.get("error") or {}).get("code")
        return None


@dataclass
class Run:
    """What one case works with: the stack, its users, and what the setup left for the request."""

    stack: Any
    key: str = field(default_factory=lambda: f"matrix-{uuid.uuid4().hex}")
    users: dict[str, Any] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    gig: Any = None
    state: dict[str, Any] = field(default_factory=dict)
    requests_made: int = 0

    # HTTP to the app
    def call(self, method: str, path: str, *, as_: str | None = "student", body: Any = None,
             key: bool = False, query: dict | None = None) -> Answer:
        headers = {"Accept": "application/json"}
        if as_:
            headers["Authorization"] = f"Bearer {self.tokens[as_]}"
        if key:
            headers["Idempotency-Key"] = self.key
        self.requests_made += 1
        response = requests.request(method, f"{self.stack.base_url}{path}", json=body, headers=headers,
                                    params=query, timeout=HTTP_TIMEOUT)
        try:
            payload = response.json()
        except ValueError:
            payload = response.text
        return Answer(response.status_code, payload)

    # HTTP to the emulator: its Stripe API (as a client SDK or Stripe's dashboard would) and its controls
    def stripe(self, method: str, path: str, *, account: str | None = None, **params) -> dict:
        headers = {"Authorization": f"Bearer {EMULATOR_KEY}"}
        if account:
            headers["Stripe-Account"] = account
        response = requests.request(method, f"{self.stack.emulator_url}{path}",
                                    data=_form(params) if method != "GET" else None,
                                    params=_form(params) if method == "GET" else None,
                                    headers=headers, timeout=HTTP_TIMEOUT)
        response.raise_for_status()
        return response.json()

    def stripe_all(self, resource: str, *, account: str | None = None) -> list[dict]:
        found, after = [], None
        for _ in range(100):
            params = {"limit": 100, **({"starting_after": after} if after else {})}
            page = self.stripe("GET", f"/v1/{resource}", account=account, **params)
            found.extend(page["data"])
            if not page.get("has_more") or not page["data"]:
                return found
            after = page["data"][-1]["id"]
        raise RuntimeError(f"/v1/{resource} never ended")

    def control(self, verb: str, route: str, /, **body) -> dict:
        response = requests.request(verb, f"{self.stack.emulator_url}/_emulator/{route}", json=body or None,
                                    timeout=HTTP_TIMEOUT)
        response.raise_for_status()
        return response.json()

    def command(self, name: str, *args: str) -> Answer:
        status, output = self.stack.call_command(name, *args)
        return Answer(200 if status == 0 else COMMAND_FAILED, output)


def _form(params: dict, prefix: str = "") -> dict:
    """Stripe's form encoding of nested parameters (card[number]=...)."""
    flat: dict[str, Any] = {}
    for name, value in params.items():
        key = f"{prefix}[{name}]" if prefix else name
        if isinstance(value, dict):
            flat.update(_form(value, key))
        else:
            flat[key] = value
    return flat


# --- setups -------------------------------------------------------------------------------------------
def _pay(run: Run, number: str = VISA, **extra) -> Answer:
    answer = run.call("POST", "/stripe-payments/process-payment/",
                      body={"gig_id": run.gig.pk, "card_details": _card(number), **extra})
    if answer.status == 200:
        run.state["payment_id"] = answer.body["payment_id"]
        run.state["booking_id"] = answer.body["booking_id"]
    return answer


def _paid(run: Run) -> None:
    answer = _pay(run)
    assert answer.status == 200, f"setup payment: {answer.status} {answer.body}"


def _saved_card(run: Run) -> None:
    answer = run.call("POST", "/stripe-payments/add-payment-method/", body=_card())
    assert answer.status == 200, f"setup card: {answer.status} {answer.body}"
    run.state["pm_id"] = answer.body["payment_method_id"]


def _through_3ds(run: Run, redirect_url: str) -> str:
    """The browser on Stripe's 3-D Secure page: press the button, keep where it sends us back."""
    answer = requests.post(f"{redirect_url}/complete", allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert answer.status_code == 302, f"3-D Secure page: {answer.status_code}"
    location = urlsplit(answer.headers["Location"])
    return f"{location.path}?{location.query}"


def _paid_3ds(run: Run) -> None:
    answer = _pay(run, THREE_DS)
    assert answer.status == 402 and answer.code == "authentication_required", f"setup 3DS: {answer.body}"
    run.state["payment_id"] = answer.body["error"]["payment_id"]
    run.state["return_path"] = _through_3ds(run, answer.body["error"]["redirect_url"])


def _card_3ds(run: Run) -> None:
    answer = run.call("POST", "/stripe-payments/add-payment-method/", body=_card(THREE_DS))
    assert answer.status == 402 and answer.code == "authentication_required", f"setup 3DS card: {answer.body}"
    run.state["return_path"] = _through_3ds(run, answer.body["error"]["redirect_url"])


def _client_payment_method(run: Run) -> None:
    pm = run.stripe("POST", "/v1/payment_methods", type="card",
                    card={"number": VISA, "exp_month": 12, "exp_year": EXP_YEAR, "cvc": "123"})
    run.state["pm_id"] = pm["id"]


def _client_intent_confirmed(run: Run) -> None:
    answer = run.call("POST", "/stripe-payments/create-payment-intent/", body={"gig_id": run.gig.pk})
    assert answer.status == 200, f"setup intent: {answer.body}"
    run.state["payment_id"] = answer.body["payment_id"]
    run.state["intent_id"] = answer.body["payment_intent_id"]
    run.stripe("POST", f"/v1/payment_intents/{answer.body['payment_intent_id']}/confirm", payment_method="pm_card_visa")


def _refund_requested(run: Run) -> None:
    _paid(run)
    answer = run.call("POST", "/stripe-payments/refunds/", body={"payment_id": run.state["payment_id"],
                                                                 "reason": "matrix"})
    assert answer.status == 201, f"setup refund request: {answer.body}"
    run.state["refund_id"] = answer.body["id"]


def _aged_booking(run: Run) -> None:
    from bookings.models import Booking

    _paid(run)
    Booking.objects.filter(pk=run.state["booking_id"]).update(
        created_at=Booking.objects.get(pk=run.state["booking_id"]).created_at - timedelta(hours=49))


def _event(run: Run, type_: str) -> None:
    """The newest stored event of a type, to deliver as Stripe would (webhooks are off)."""
    events = run.stripe("GET", "/v1/events", type=type_, limit=1)["data"]
    assert events, f"setup: no {type_} event at the emulator"
    run.state["event"] = json.dumps(events[0])


def _webhook_payment_intent(run: Run) -> None:
    _paid_3ds(run)  # authenticated at Stripe; the return page never visited
    _event(run, "payment_intent.succeeded")


def _webhook_setup_intent(run: Run) -> None:
    _card_3ds(run)
    _event(run, "setup_intent.succeeded")


def _webhook_refund(run: Run) -> None:
    _paid(run)
    from stripe_payments.models import Payment

    intent = Payment.objects.get(pk=run.state["payment_id"]).stripe_payment_intent_id
    run.stripe("POST", "/v1/refunds", payment_intent=intent, amount=1000)  # from Stripe's dashboard
    _event(run, "refund.created")


def _webhook_dispute(run: Run) -> None:
    _paid(run)
    from stripe_payments.models import Payment

    charge = Payment.objects.get(pk=run.state["payment_id"]).stripe_charge_id
    run.control("POST", f"charges/{charge}/dispute")
    _event(run, "charge.dispute.created")


def _lost_payment(run: Run) -> None:
    retries = int(run.state["retries"])
    run.control("POST", "faults", method="POST", path="^/v1/payment_intents$", kind="drop_after_work",
                count=retries + 1)
    answer = _pay(run)
    run.control("DELETE", "faults")
    assert answer.status == 503, f"setup lost payment: {answer.status} {answer.body}"


def _abandoned_3ds(run: Run) -> None:
    answer = _pay(run, THREE_DS)
    assert answer.status == 402, f"setup abandoned 3DS: {answer.body}"
    run.state["payment_id"] = answer.body["error"]["payment_id"]


def _owed_refund(run: Run) -> None:
    _paid(run)
    run.control("POST", "faults", method="POST", path="^/v1/refunds$", kind="error_500", count=100)
    answer = run.call("POST", f"/bookings/{run.state['booking_id']}/decline/", as_="teacher")
    run.control("DELETE", "faults")
    assert answer.status == 502, f"setup owed refund: {answer.status} {answer.body}"


# Connect: the teacher onboards through the API and the emulator's hosted page.
def _onboarded(run: Run) -> None:
    answer = run.call("POST", "/stripe-payments/connect/onboard/", as_="teacher")
    assert answer.status == 200, f"setup onboard: {answer.status} {answer.body}"
    run.state["account_id"] = answer.body["account_id"]
    run.state["onboarding_url"] = answer.body["onboarding_url"]


def _onboarding_completed(run: Run) -> None:
    """Onboarded, and the teacher finished Stripe's page: it sends the browser to our return URL."""
    _onboarded(run)
    answer = requests.post(f"{run.state['onboarding_url']}/complete", allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert answer.status_code == 302, f"onboarding page: {answer.status_code}"
    location = urlsplit(answer.headers["Location"])
    run.state["return_path"] = f"{location.path}?{location.query}"


def _ready_account(run: Run) -> None:
    _onboarding_completed(run)
    answer = run.call("GET", run.state["return_path"], as_=None)
    assert answer.status == 200, f"setup onboarding return: {answer.status} {answer.body}"


def _webhook_account_updated(run: Run) -> None:
    _onboarding_completed(run)  # the return page never visited: only the webhook tells us
    _event(run, "account.updated")


def _owed_share(run: Run) -> None:
    _paid(run)  # a platform charge: the teacher had no account yet
    _ready_account(run)


def _destination_paid(run: Run) -> None:
    _ready_account(run)
    _paid(run)  # a destination charge


def _destination_disputed(run: Run) -> None:
    """A destination charge disputed, the webhook handled: the share is to be taken back."""
    _destination_paid(run)
    from stripe_payments.models import Payment

    charge = Payment.objects.get(pk=run.state["payment_id"]).stripe_charge_id
    run.control("POST", f"charges/{charge}/dispute")
    _event(run, "charge.dispute.created")
    answer = _deliver(run)
    assert answer.status == 200, f"setup dispute webhook: {answer.status} {answer.body}"


def _destination_disputed_unheard(run: Run) -> None:
    """A destination charge disputed at Stripe, and no webhook ever came."""
    _destination_paid(run)
    from stripe_payments.models import Payment

    charge = Payment.objects.get(pk=run.state["payment_id"]).stripe_charge_id
    run.control("POST", f"charges/{charge}/dispute")


def _paid_out_then_refunded(run: Run) -> None:
    _owed_share(run)
    assert run.command("pay_out_teachers").status == 200, "setup payout"
    answer = run.call("POST", "/stripe-payments/admin-refunds/", as_="admin",
                      body={"payment_id": run.state["payment_id"], "amount": "10.00", "reason": "matrix"})
    assert answer.status == 201, f"setup refund: {answer.status} {answer.body}"


def _old_pending_payout(run: Run) -> None:
    """A payout whose answer was lost more than a day ago: Stripe's key for it may have expired."""
    from stripe_payments.models import TeacherTransfer

    _owed_share(run)
    retries = int(run.state["retries"])
    run.control("POST", "faults", method="POST", path="^/v1/transfers$", kind="drop_after_work", count=retries + 1)
    answer = run.command("pay_out_teachers")
    run.control("DELETE", "faults")
    assert answer.status == COMMAND_FAILED, f"setup lost payout: {answer.status} {answer.body}"
    transfer = TeacherTransfer.objects.get()
    TeacherTransfer.objects.filter(pk=transfer.pk).update(created_at=transfer.created_at - timedelta(hours=30))


def _signed(run: Run, payload: str) -> str:
    ts = int(time.time())
    mac = hmac.new(run.stack.webhook_secret.encode(), f"{ts}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def _deliver(run: Run) -> Answer:
    payload = run.state["event"]
    run.requests_made += 1
    response = requests.post(f"{run.stack.base_url}/stripe-payments/webhook/", data=payload.encode(),
                             headers={"Content-Type": "application/json", "Stripe-Signature": _signed(run, payload)},
                             timeout=HTTP_TIMEOUT)
    return Answer(response.status_code, response.text)


# --- the workflows ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Expect:
    """The money a case must end with, counted at Stripe and in the database."""

    charges: int = 0             # succeeded PaymentIntents
    refunded: str | int = 0      # cents refunded at Stripe: a number, or "full" (the whole payment)
    saved_cards: int | None = None
    booking: str | None = None   # the booking's final status
    payment: str | tuple[str, ...] | None = None   # the payment's final status (or any of several)
    accounts: int | None = None  # connected accounts, at Stripe and in the database
    account_ready: bool | None = None  # the database knows the account can receive transfers
    teacher_paid: int | None = None  # cents on the teacher's connected account (its payouts aside)
    ledger_paid: int | None = None  # what the ledger says was paid to the teacher, when not teacher_paid


COMMAND_WORKFLOWS = frozenset({"expiry", "reconcile_lost_payment", "reconcile_abandoned_3ds", "reconcile_owed_refund",
                               "consistency_check", "pay_out_teachers", "pay_out_old_pending", "reverse_paid_share",
                               "reverse_disputed_share", "reconcile_unrecorded_dispute", "check_ledger"})
COMMAND_FAILED = 500  # what Run.command answers for an exit status of 1


@dataclass(frozen=True)
class Workflow:
    name: str
    calls: tuple[str, ...]                 # gateway operations a clean run makes, in order
    act: Callable[[Run], Answer]
    expect: Expect
    setup: Callable[[Run], None] | None = None
    success: int = 200
    # Answers a repeat may give once the first attempt already succeeded (e.g. 409 for a decided refund).
    repeat_ok: tuple[int, ...] = ()

    @property
    def is_command(self) -> bool:
        """An operator's command: it answers by its exit status (0, or 1 with a report), not HTTP."""
        return self.name in COMMAND_WORKFLOWS


WORKFLOWS: tuple[Workflow, ...] = (
    Workflow("add_card", ("customers.create", "setup_intents.create"),
             lambda r: r.call("POST", "/stripe-payments/add-payment-method/", key=True, body=_card()),
             Expect(saved_cards=1)),
    Workflow("add_card_unsaved", ("setup_intents.create",),
             lambda r: r.call("POST", "/stripe-payments/add-payment-method/", key=True,
                              body=_card() | {"save_for_future": False}),
             Expect(saved_cards=0)),
    Workflow("pay_new_card", ("payment_intents.create",),
             lambda r: r.call("POST", "/stripe-payments/process-payment/", key=True,
                              body={"gig_id": r.gig.pk, "card_details": _card()}),
             Expect(charges=1, booking="pending_confirmation", payment="succeeded")),
    Workflow("pay_new_card_and_save", ("customers.create", "payment_intents.create"),
             lambda r: r.call("POST", "/stripe-payments/process-payment/", key=True,
                              body={"gig_id": r.gig.pk, "card_details": _card(), "save_card": True}),
             Expect(charges=1, saved_cards=1, booking="pending_confirmation", payment="succeeded")),
    Workflow("pay_saved_card", ("payment_intents.create",),
             lambda r: r.call("POST", "/stripe-payments/process-payment/", key=True,
                              body={"gig_id": r.gig.pk, "saved_payment_method_id": r.state["pm_id"]}),
             Expect(charges=1, saved_cards=1, booking="pending_confirmation", payment="succeeded"),
             setup=_saved_card),
    Workflow("pay_client_created_card", ("payment_methods.retrieve", "payment_intents.create"),
             lambda r: r.call("POST", "/stripe-payments/process-payment/", key=True,
                              body={"gig_id": r.gig.pk, "payment_method_id": r.state["pm_id"]}),
             Expect(charges=1, booking="pending_confirmation", payment="succeeded"),
             setup=_client_payment_method),
    Workflow("payment_3ds_return", ("payment_intents.retrieve",),
             lambda r: r.call("GET", r.state["return_path"], as_=None),
             Expect(charges=1, booking="pending_confirmation", payment="succeeded"), setup=_paid_3ds),
    Workflow("card_3ds_return", ("setup_intents.retrieve",),
             lambda r: r.call("GET", r.state["return_path"], as_=None),
             Expect(saved_cards=1), setup=_card_3ds),
    Workflow("create_payment_intent", ("payment_intents.create",),
             lambda r: r.call("POST", "/stripe-payments/create-payment-intent/", key=True,
                              body={"gig_id": r.gig.pk}),
             # Never confirmed by a client: reconciliation (run with no grace) cancels it as abandoned.
             Expect(payment="failed")),
    Workflow("confirm_payment", ("payment_intents.retrieve",),
             lambda r: r.call("POST", "/stripe-payments/confirm-payment/",
                              body={"payment_intent_id": r.state["intent_id"]}),
             Expect(charges=1, booking="pending_confirmation", payment="succeeded"),
             setup=_client_intent_confirmed),
    Workflow("approve_refund", ("refunds.create",),
             lambda r: r.call("POST", f"/stripe-payments/refunds/{r.state['refund_id']}/approve/", as_="admin",
                              body={}),
             Expect(charges=1, refunded="full", booking="refunded", payment="refunded"),
             setup=_refund_requested, repeat_ok=(409,)),
    Workflow("admin_refund", ("refunds.create",),
             lambda r: r.call("POST", "/stripe-payments/admin-refunds/", as_="admin", key=True,
                              body={"payment_id": r.state["payment_id"], "reason": "matrix"}),
             Expect(charges=1, refunded="full", booking="refunded", payment="refunded"),
             setup=_paid, success=201),
    Workflow("decline", ("refunds.create",),
             lambda r: r.call("POST", f"/bookings/{r.state['booking_id']}/decline/", as_="teacher"),
             Expect(charges=1, refunded="full", booking="declined", payment="refunded"),
             setup=_paid, repeat_ok=(409,)),
    Workflow("cancel", ("refunds.create",),
             lambda r: r.call("POST", f"/bookings/{r.state['booking_id']}/cancel/", as_="student"),
             Expect(charges=1, refunded="full", booking="cancelled", payment="refunded"),
             setup=_paid, repeat_ok=(409,)),
    Workflow("expiry", ("refunds.create",),
             lambda r: r.command("expire_pending_bookings"),
             Expect(charges=1, refunded="full", booking="declined", payment="refunded"), setup=_aged_booking),
    Workflow("webhook_payment_intent", ("payment_intents.retrieve",), _deliver,
             Expect(charges=1, booking="pending_confirmation", payment="succeeded"), setup=_webhook_payment_intent),
    Workflow("webhook_setup_intent", ("setup_intents.retrieve",), _deliver,
             Expect(saved_cards=1), setup=_webhook_setup_intent),
    Workflow("webhook_refund", ("refunds.list",), _deliver,  # the payment is charged: no intent read
             Expect(charges=1, refunded=1000, booking="pending_confirmation", payment="partially_refunded"),
             setup=_webhook_refund),
    Workflow("webhook_dispute", ("disputes.retrieve",), _deliver,  # the payment is charged: no intent read
             Expect(charges=1, booking="disputed", payment="disputed"), setup=_webhook_dispute),
    Workflow("reconcile_lost_payment", ("payment_intents.search", "payment_intents.retrieve"),
             lambda r: r.command("reconcile_payments", "--older-than-minutes", "0", "--skip-consistency"),
             Expect(charges=1, booking="pending_confirmation", payment="succeeded"), setup=_lost_payment),
    Workflow("reconcile_abandoned_3ds", ("payment_intents.retrieve", "payment_intents.cancel"),
             lambda r: r.command("reconcile_payments", "--older-than-minutes", "0", "--skip-consistency"),
             # Canceled at Stripe either way; "failed" when our cancel's answer came back, "canceled"
             # when it was lost and the next run read the canceled intent. No money in both.
             Expect(payment=("failed", "canceled")), setup=_abandoned_3ds),
    Workflow("reconcile_owed_refund", ("refunds.list", "refunds.create"),
             lambda r: r.command("reconcile_payments", "--older-than-minutes", "0", "--skip-consistency"),
             Expect(charges=1, refunded="full", booking="declined", payment="refunded"), setup=_owed_refund),
    Workflow("delete_card", ("payment_methods.detach",),
             lambda r: r.call("DELETE", f"/stripe-payments/payment-methods/{r.state['pm_id']}/delete/"),
             Expect(saved_cards=0), setup=_saved_card, repeat_ok=(404,)),
    Workflow("consistency_check", ("payment_intents.list", "refunds.list", "charges.list"),
             lambda r: r.command("check_stripe_consistency", "--no-repair", "--grace-minutes", "0"),
             Expect(charges=1, booking="pending_confirmation", payment="succeeded"), setup=_paid),
    # Connect (issue 13): onboarding, the account kept in step, paying teachers, the ledger against Stripe.
    Workflow("connect_onboard", ("accounts.create", "account_links.create"),
             lambda r: r.call("POST", "/stripe-payments/connect/onboard/", as_="teacher"),
             Expect(accounts=1, account_ready=False)),
    Workflow("connect_return", ("accounts.retrieve",),
             lambda r: r.call("GET", r.state["return_path"], as_=None),
             Expect(accounts=1, account_ready=True), setup=_onboarding_completed),
    Workflow("webhook_account_updated", ("accounts.retrieve",), _deliver,
             Expect(accounts=1, account_ready=True), setup=_webhook_account_updated),
    Workflow("destination_payment", ("payment_intents.create",),
             lambda r: r.call("POST", "/stripe-payments/process-payment/", key=True,
                              body={"gig_id": r.gig.pk, "card_details": _card()}),
             Expect(charges=1, booking="pending_confirmation", payment="succeeded", accounts=1, teacher_paid=4500),
             setup=_ready_account),
    Workflow("pay_out_teachers", ("transfers.create",), lambda r: r.command("pay_out_teachers"),
             Expect(charges=1, booking="pending_confirmation", payment="succeeded", accounts=1, teacher_paid=4500),
             setup=_owed_share),
    Workflow("pay_out_old_pending", ("transfers.list",), lambda r: r.command("pay_out_teachers"),
             Expect(charges=1, booking="pending_confirmation", payment="succeeded", accounts=1, teacher_paid=4500),
             setup=_old_pending_payout),
    Workflow("reverse_paid_share", ("transfers.reversals.create", "transfers.retrieve"),
             lambda r: r.command("pay_out_teachers"),
             Expect(charges=1, refunded=1000, booking="pending_confirmation", payment="partially_refunded",
                    accounts=1, teacher_paid=4500 - 900), setup=_paid_out_then_refunded),
    Workflow("reverse_disputed_share", ("charges.retrieve", "transfers.reversals.create", "transfers.retrieve"),
             lambda r: r.command("pay_out_teachers"),
             # The platform is liable: the disputed $50.00 left its balance; the teacher's $45.00 share
             # is taken back from their account.
             Expect(charges=1, booking="disputed", payment="disputed", accounts=1, teacher_paid=0),
             setup=_destination_disputed),
    Workflow("reconcile_unrecorded_dispute", ("payment_intents.list", "refunds.list", "charges.list",
                                              "payment_intents.retrieve", "charges.retrieve", "disputes.list"),
             lambda r: r.command("check_stripe_consistency", "--grace-minutes", "0"),
             # Recorded by the repair: the share is to be taken back by the next payout run.
             Expect(charges=1, booking="disputed", payment="disputed", accounts=1, teacher_paid=4500, ledger_paid=0),
             setup=_destination_disputed_unheard),
    Workflow("check_ledger", ("balance_transactions.list",), lambda r: r.command("check_ledger", "--stripe"),
             Expect(charges=1, booking="pending_confirmation", payment="succeeded", accounts=1, teacher_paid=4500),
             setup=_destination_paid),
)
WORKFLOWS_BY_NAME = {w.name: w for w in WORKFLOWS}


# --- the cases -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    workflow: str
    operation: str
    kind: str
    phase: str  # "first": only the first try meets the fault; "all": every try does

    @property
    def id(self) -> str:
        return f"{self.workflow}-{self.operation}-{self.kind}-{self.phase}"


def _kinds() -> tuple[str, ...]:
    from stripe_emulator.faults import KINDS

    return tuple(KINDS)


def uncovered_operations() -> list[str]:
    """Stripe calls of the gateway that no workflow makes: each needs a workflow (a row) here."""
    from stripe_payments.gateway import OPERATIONS

    covered = {call for workflow in WORKFLOWS for call in workflow.calls}
    return sorted(set(OPERATIONS) - covered)


def unknown_kinds() -> list[str]:
    return sorted(set(_kinds()) - set(FAULT_STATUS))


def cases(bounded: bool = False) -> list[Case]:
    """Every workflow × its calls × every fault kind × both phases. Bounded (CI): every workflow and
    call and kind still appears, but each (workflow, call) meets only the worst phase ("all") of
    each kind, and "first" once per call for the kinds the gateway retries."""
    found = []
    for workflow in WORKFLOWS:
        for operation in workflow.calls:
            for kind in _kinds():
                for phase in PHASES:
                    if bounded and phase == "first" and kind not in ("drop_after_work", "reset_mid_body", "timeout"):
                        continue
                    found.append(Case(workflow.name, operation, kind, phase))
    return found


@dataclass
class CaseResult:
    case_id: str
    ok: bool
    requests: int = 0
    faults: int = 0
    lost: int = 0
    doubled: int = 0
    differences: int = 0
    elapsed_max_s: float = 0.0
    detail: str = ""


APP_LABELS = ("accounts", "gigs", "bookings", "stripe_payments", "token_blacklist")


def _clear_database() -> None:
    """Empty the project's own tables (one TRUNCATE), not Django's: ``flush`` would also rebuild
    content types and permissions after every case, at 0.4 s each on PostgreSQL."""
    from django.apps import apps
    from django.core.management.color import no_style
    from django.db import connection

    tables = [model._meta.db_table for label in APP_LABELS for model in apps.get_app_config(label).get_models()]
    statements = connection.ops.sql_flush(no_style(), tables, allow_cascade=True)
    connection.ops.execute_sql_flush(statements)


def _fresh(run: Run) -> None:
    """An empty database and emulator, webhooks off, and the case's users and gig."""
    from django.contrib.auth import get_user_model
    from rest_framework_simplejwt.tokens import RefreshToken

    from gigs.models import Gig

    _clear_database()
    run.control("POST", "reset")
    run.control("DELETE", "faults")
    run.control("POST", "webhooks", url="")
    User = get_user_model()
    suffix = uuid.uuid4().hex[:8]
    for role in ("student", "teacher", "admin"):
        user = User(email=f"{role}-{suffix}@matrix.test", role=role, first_name=role.title(), last_name="Matrix",
                    is_staff=role == "admin", is_superuser=role == "admin")
        user.set_unusable_password()
        user.save()
        run.users[role] = user
        run.tokens[role] = str(RefreshToken.for_user(user).access_token)
    run.gig = Gig.objects.create(teacher=run.users["teacher"], title="Matrix lesson", description="", language="Spanish",
                                 price_cents=5000, duration_minutes=60, is_active=True)


def _retries() -> int:
    from django.conf import settings

    return max(0, int(settings.STRIPE_MAX_NETWORK_RETRIES))


def _money(run: Run, workflow: Workflow) -> tuple[int, int, list[str]]:
    """(lost, doubled, notes): the case's end state at Stripe and in the database against Expect."""
    from bookings.models import Booking
    from stripe_payments.models import Payment, SavedPaymentMethod

    expect, notes = workflow.expect, []
    lost = doubled = 0
    intents = run.stripe_all("payment_intents")
    charged = [i for i in intents if i["status"] == "succeeded"]
    if len(charged) > expect.charges:
        doubled += len(charged) - expect.charges
        notes.append(f"{len(charged)} charges at Stripe, expected {expect.charges}")
    elif len(charged) < expect.charges:
        lost += expect.charges - len(charged)
        notes.append(f"{len(charged)} charges at Stripe, expected {expect.charges}")
    by_payment: dict[str, int] = {}
    for intent in charged:
        pid = (intent.get("metadata") or {}).get("payment_id", "?")
        by_payment[pid] = by_payment.get(pid, 0) + 1
    for pid, count in by_payment.items():
        if count > 1:
            doubled += count - 1
            notes.append(f"payment {pid} charged {count} times")
    refunds = [r for r in run.stripe_all("refunds") if r["status"] in ("succeeded", "pending")]
    refunded = sum(r["amount"] for r in refunds)
    want = sum(i["amount"] for i in charged) if expect.refunded == "full" else int(expect.refunded)
    if refunded > want:
        doubled += 1
        notes.append(f"{refunded} cents refunded at Stripe, expected {want}")
    elif refunded < want:
        lost += 1
        notes.append(f"{refunded} cents refunded at Stripe, expected {want}")
    payments = list(Payment.objects.all())
    db_refunded = sum(p.refunded_cents for p in payments)
    if db_refunded != refunded:
        lost += 1
        notes.append(f"the database records {db_refunded} cents refunded, Stripe {refunded}")
    if expect.payment is not None:
        statuses = [p.status for p in payments]
        accepted = (expect.payment,) if isinstance(expect.payment, str) else expect.payment
        if len(statuses) != 1 or statuses[0] not in accepted:
            lost += 1
            notes.append(f"payments {statuses}, expected one payment, {' or '.join(accepted)}")
    bookings = list(Booking.objects.values_list("status", flat=True))
    want_bookings = [expect.booking] if expect.booking else []
    if sorted(bookings) != want_bookings:
        if len(bookings) > len(want_bookings):
            doubled += len(bookings) - len(want_bookings)
        else:
            lost += 1
        notes.append(f"bookings {sorted(bookings)}, expected {want_bookings}")
    lost, doubled = _connect_money(run, expect, notes, lost, doubled)
    if expect.saved_cards is not None:
        saved = SavedPaymentMethod.objects.count()
        if saved != expect.saved_cards:
            if saved > expect.saved_cards:
                doubled += saved - expect.saved_cards
            else:
                lost += 1
            notes.append(f"{saved} saved cards, expected {expect.saved_cards}")
    return lost, doubled, notes


def _connect_money(run: Run, expect: Expect, notes: list[str], lost: int, doubled: int) -> tuple[int, int]:
    """Connected accounts and the teacher's money, at Stripe and in the database, and the ledger's
    invariants (every case: a payment, a refund or a payout that broke them is money out of step)."""
    from stripe_payments.models import ConnectedAccount
    from stripe_payments.services import ledger

    report = ledger.check()
    if not report.ok:
        lost += 1
        notes.append(f"ledger: {'; '.join(report.differences)[:500]}")
    if expect.accounts is not None:
        at_stripe = len(run.stripe_all("accounts"))
        in_db = ConnectedAccount.objects.count()
        if at_stripe != expect.accounts or in_db != expect.accounts:
            if max(at_stripe, in_db) > expect.accounts:
                doubled += max(at_stripe, in_db) - expect.accounts
            else:
                lost += 1
            notes.append(f"{at_stripe} connected account(s) at Stripe, {in_db} in the database, "
                         f"expected {expect.accounts}")
    if expect.account_ready is not None:
        ready = list(ConnectedAccount.objects.values_list("transfers_active", flat=True))
        if ready != [expect.account_ready]:
            lost += 1
            notes.append(f"accounts ready {ready}, expected [{expect.account_ready}]")
    if expect.teacher_paid is not None:
        account = run.state.get("account_id")
        txns = run.stripe_all("balance_transactions", account=account) if account else []
        at_stripe = sum(t["net"] for t in txns if t["type"] not in ("payout", "payout_cancel", "payout_failure"))
        from stripe_payments.models import LedgerAccount

        in_ledger = ledger.balance(account=LedgerAccount.TEACHER_PAID)
        want_ledger = expect.teacher_paid if expect.ledger_paid is None else expect.ledger_paid
        if at_stripe != expect.teacher_paid or in_ledger != want_ledger:
            if at_stripe > expect.teacher_paid or in_ledger > want_ledger:
                doubled += 1
            else:
                lost += 1
            notes.append(f"the teacher has {at_stripe} cents at Stripe (expected {expect.teacher_paid}), "
                         f"the ledger says {in_ledger} (expected {want_ledger})")
    return lost, doubled


def run_case(stack, case: Case, *, bound_s: float | None = None) -> CaseResult:
    """Run one case. ``bound_s``: the worst answer time allowed for an HTTP request (the request
    deadline plus slack); checked by ``make reliability``, not by the test suite, which asserts what
    ended a call instead of how long it took (linguaflex/tests/test_deadline.py)."""
    from stripe_payments.gateway import OPERATIONS

    workflow = WORKFLOWS_BY_NAME[case.workflow]
    run = Run(stack)
    run.state["retries"] = _retries()
    result = CaseResult(case.id, ok=False)
    notes: list[str] = []
    try:
        _fresh(run)
        if workflow.setup is not None:
            workflow.setup(run)
        method, path = OPERATIONS[case.operation]
        count = 1 if case.phase == "first" else 100
        run.control("POST", "faults", method=method, path=path, kind=case.kind, count=count, seconds=3)

        started = time.monotonic()
        first = workflow.act(run)
        elapsed = time.monotonic() - started
        allowed = {workflow.success, COMMAND_FAILED if workflow.is_command else FAULT_STATUS[case.kind]}
        if first.status not in allowed:
            notes.append(f"first answer {first.status} {first.code or ''}, expected one of {sorted(allowed)}")
        armed = run.control("GET", "faults")["data"]
        result.faults = count - sum(f["remaining"] for f in armed)  # the tries that met the fault
        if result.faults < 1:
            notes.append(f"the workflow never made the {case.operation} call its row declares")
        run.control("DELETE", "faults")

        started = time.monotonic()
        again = workflow.act(run)
        elapsed = max(elapsed, time.monotonic() - started)
        allowed_again = {workflow.success} | (set(workflow.repeat_ok) if first.status == workflow.success else set())
        if workflow.repeat_ok and first.status != workflow.success:
            # The first answer was a fault but the work may have been done (drop after work): a
            # repeat that finds it done answers as it would to any repeat.
            allowed_again |= set(workflow.repeat_ok)
        if again.status not in allowed_again:
            notes.append(f"retry answered {again.status} {again.code or ''} {str(again.body)[:200]}")
        if first.status == workflow.success and again.status == workflow.success and workflow.act is not _deliver \
                and isinstance(first.body, dict) and first.body != again.body and "payment_id" in first.body:
            notes.append("the retry's answer differs from the first")
        result.elapsed_max_s = round(elapsed, 3)
        if bound_s is not None and not workflow.is_command and elapsed > bound_s:
            notes.append(f"an answer took {elapsed:.1f} s, over the {bound_s:.1f} s bound")

        status, output = stack.call_command("reconcile_payments", "--older-than-minutes", "0")
        status, output = stack.call_command("check_stripe_consistency", "--no-repair", "--grace-minutes", "0")
        if status != 0:
            result.differences = max(1, output.count("NEEDS A PERSON") + output.count("DIFFERENCE"))
            notes.append(f"consistency: {output.strip()[-500:]}")
        result.lost, result.doubled, money_notes = _money(run, workflow)
        notes.extend(money_notes)
    except Exception as exc:  # noqa: BLE001 - a case that breaks is a failed case, with its reason
        notes.append(f"{type(exc).__name__}: {exc}")
    finally:
        try:
            run.control("DELETE", "faults")
        except requests.RequestException:
            pass
    result.requests = run.requests_made
    result.detail = "; ".join(notes)
    result.ok = not notes
    return result
