"""Type-check every body a full SDK-driven emulator run answers against stripe-node's types.

    python -m stripe_emulator.typecheck.check [--json REPORT] [--no-install]

What it does:

1. ``ensure_node_modules()``: ``npm ci`` in this directory when ``node_modules`` is missing or
   was installed from another ``package-lock.json`` (a stamp file in ``node_modules`` holds the
   lock file's SHA-256). ``package.json`` pins ``stripe`` 23.1.0, whose types carry
   ``ApiVersion = "2026-10-28.endive"`` (``cjs/apiVersion.d.ts``), the version the Python SDK
   (stripe 16.1.0) pins and the emulator answers; ``closed_types()`` refuses any other.
2. ``closed_types()``: a copy of stripe-node's ``.d.ts`` files in ``build/node_modules/stripe``
   with the SDK's open string unions closed (below).
3. ``drive()``: starts the emulator in-process (``stripe_emulator.testing.start_emulator``) and
   drives a full run with the Python SDK through a recording HTTP client: customers (create,
   update, list, delete, the deleted stub), PaymentMethods (create, test ids, update, attach,
   detach, both lists), SetupIntents (confirmed, 3-D Secure completed and failed on the
   emulator's page, declined, canceled, listed), PaymentIntents (every test card of
   ``stripe_emulator.cards.TEST_NUMBERS``: succeeded, declined, 3-D Secure completed or failed on
   the page; manual capture, cancel, update, search, expand, off-session, Connect destination
   charges), refunds (full, partial, by charge, updated, failed through the control route,
   listed), charges, balance transactions, disputes (the control route's trigger), events (every
   page, filtered, retrieved one by one), the webhook payloads of every event, Connect accounts and
   account links, and error bodies (card errors carrying their objects, 400/401/404, idempotency,
   injected 500 and 429 faults). Every JSON body is recorded with its type: its ``object``
   (``Stripe.PaymentIntent``...; a deleted customer is ``Stripe.DeletedCustomer``; an event is its
   own type, ``Stripe.PaymentIntentSucceededEvent``...), ``list`` as ``Stripe.ApiList<T>`` and
   ``search_result`` as ``Stripe.ApiSearchResult<T>`` with ``T`` the type of the listed resource,
   and ``{"error": ...}`` as ``{error: Stripe.StripeRawError}`` (stripe-node's raw error, which
   types the PaymentIntent, SetupIntent and PaymentMethod a card error carries).
4. ``typecheck()``: writes each body as ``const b17: Stripe.PaymentIntent = {...};`` to
   ``build/<run>/bodies.ts`` (``import type Stripe from 'stripe'``), and ``canaries()``, copies
   of a few bodies with one planted defect each, to ``canaries.ts``; runs ``tsc -p`` once on a
   tsconfig that extends ``tsconfig.json`` (strict, noEmit) and lists both, and maps each
   diagnostic to its body and to the JSON path of the line it points at. Every body must pass
   and every canary must fail. The last run is kept in ``build/last/`` with ``report.json``;
   ``node_modules/.bin/tsc -p .`` here checks its ``bodies.ts`` again.

Object literals assigned to a declared type get TypeScript's excess property check, so an
unknown key fails, and so does a missing required key; under ``strict`` a ``null`` where the type
says ``field?: string`` (absent, never null) fails too.

How stripe-node 23 declares enums (read from its ``.d.ts`` files): a closed enum is a plain union
of string literals (``object: 'payment_intent'``, ``Stripe.RawErrorType``); an open enum, one
Stripe may extend at an older API version, is the literal union joined with ``OtherString``, e.g.
``type Status = 'canceled' | ... | 'succeeded' | OtherString;``, where ``cjs/shared.d.ts`` says
``export type OtherString = string & Record<never, never>;`` (a ``string`` that keeps the editor's
completions). 2,897 unions end in ``| OtherString`` and the name appears nowhere else, so every
open enum accepts any string. Fields that are not enums at all (``currency``, ``country``,
``description``...) are plain ``string``. There are no ``(string & {})`` unions, and the only
``| string`` ones are not enums (``TokenCreateParams.card``, ``PlanCreateParams.product``, a
response event's ``body``). The copy in ``build/`` therefore replaces that one line with
``export type OtherString = never;``: each open union becomes its literals alone, and a value the
types do not list fails. ``closed_types()`` fails loudly if that line is not found exactly once
(a newer stripe-node laid out differently).
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from stripe_emulator import objects as _emulator_objects

HERE = Path(__file__).resolve().parent
BUILD = HERE / "build"
NODE_MODULES = HERE / "node_modules"
LOCK = HERE / "package-lock.json"
STAMP = NODE_MODULES / ".typecheck-lock.sha256"
CLOSED = BUILD / "node_modules" / "stripe"
CLOSED_STAMP = CLOSED / ".typecheck-closed.sha256"

# The emulator's version; stripe-node's types and the Python SDK must both be at it.
API_VERSION = _emulator_objects.API_VERSION
OPEN_UNION_LINE = "export type OtherString = string & Record<never, never>;"
CLOSED_UNION_LINE = "export type OtherString = never;"

API_KEY = "sk_test_typecheck_run"


class ToolMissing(RuntimeError):
    """node or npm is not installed."""


# --- node_modules and the closed types -----------------------------------------------------------

def _lock_hash() -> str:
    return hashlib.sha256(LOCK.read_bytes()).hexdigest()


class _FileLock:
    """An exclusive lock on a file in build/, so that concurrent runs (two engineers, or the
    test suite and the command line) never install or copy over one another."""

    def __init__(self, name: str) -> None:
        BUILD.mkdir(exist_ok=True)
        self.path = BUILD / name

    def __enter__(self):
        self._fh = open(self.path, "w")
        fcntl.flock(self._fh, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self._fh, fcntl.LOCK_UN)
        self._fh.close()


def node_tools() -> tuple[str, str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise ToolMissing("node and npm are needed to type-check the emulator's bodies "
                          "(Debian: apt-get install nodejs npm); found "
                          f"node={node or 'none'}, npm={npm or 'none'}")
    return node, npm


def node_modules_fresh() -> bool:
    return ((NODE_MODULES / "typescript" / "bin" / "tsc").is_file()
            and (NODE_MODULES / "stripe" / "package.json").is_file()
            and STAMP.is_file() and STAMP.read_text().strip() == _lock_hash())


def ensure_node_modules(log: Callable[[str], None] = print) -> bool:
    """``npm ci`` unless node_modules matches package-lock.json. True if it installed."""
    _, npm = node_tools()
    with _FileLock(".npm.lock"):
        if node_modules_fresh():
            return False
        log("typecheck: npm ci (node_modules missing or from another package-lock.json)")
        proc = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                              cwd=HERE, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"npm ci failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        STAMP.write_text(_lock_hash() + "\n")
        return True


def closed_types() -> Path:
    """build/node_modules/stripe: stripe-node's .d.ts files with ``OtherString = never``."""
    src = NODE_MODULES / "stripe"
    want = _lock_hash()
    with _FileLock(".closed.lock"):
        if CLOSED_STAMP.is_file() and CLOSED_STAMP.read_text().strip() == want:
            return CLOSED
        api = (src / "cjs" / "apiVersion.d.ts").read_text()
        if f'ApiVersion = "{API_VERSION}"' not in api:
            raise RuntimeError(f"node_modules/stripe is not for API version {API_VERSION}: {api!r}")
        tmp = BUILD / f".stripe-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)

        def ignore(directory: str, names: list[str]) -> list[str]:
            base = Path(directory)
            return [n for n in names
                    if (base == src and n not in ("cjs", "package.json"))
                    or ((base / n).is_file() and not n.endswith(".d.ts") and n != "package.json")]

        shutil.copytree(src, tmp, ignore=ignore)
        shared = tmp / "cjs" / "shared.d.ts"
        text = shared.read_text()
        if text.count(OPEN_UNION_LINE) != 1:
            raise RuntimeError(f"{OPEN_UNION_LINE!r} not found exactly once in stripe's "
                               f"cjs/shared.d.ts: the open unions cannot be closed")
        shared.write_text(text.replace(OPEN_UNION_LINE, CLOSED_UNION_LINE))
        (tmp / CLOSED_STAMP.name).write_text(want + "\n")
        shutil.rmtree(CLOSED, ignore_errors=True)
        CLOSED.parent.mkdir(parents=True, exist_ok=True)
        tmp.rename(CLOSED)
        return CLOSED


# --- the run -------------------------------------------------------------------------------------

@dataclass
class Body:
    id: str
    method: str
    path: str
    status: int
    source: str  # sdk / control / raw / webhook
    json: Any
    kind: str = ""  # payment_intent, list, search_result, error, ...
    ts_type: str = ""
    errors: list = field(default_factory=list)
    expect: str = ""  # a canary: the defect it carries, which tsc must report


def _pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[._]", name) if part)


# The resource a list's URL names (its last segment) -> the object type of its items.
_LIST_ITEMS = {
    "customers": "customer", "payment_methods": "payment_method", "setup_intents": "setup_intent",
    "payment_intents": "payment_intent", "charges": "charge", "refunds": "refund",
    "disputes": "dispute", "events": "event", "accounts": "account",
    "balance_transactions": "balance_transaction", "transfers": "transfer",
    "reversals": "transfer_reversal", "application_fees": "application_fee",
    "capabilities": "capability", "payouts": "payout",
}


def _item_type(obj_type: str) -> str:
    return "Stripe.Event" if obj_type == "event" else f"Stripe.{_pascal(obj_type)}"


def classify(body: Any) -> tuple[str, str]:
    """(kind, TypeScript type) of a response body; kind '' when the body is no Stripe object."""
    if not isinstance(body, dict):
        return "", ""
    if set(body) == {"error"}:
        return "error", "{ error: Stripe.StripeRawError }"
    obj = body.get("object")
    if obj in ("list", "search_result"):
        url = str(body.get("url") or "")
        segment = url.rstrip("/").split("/")[-1]
        if segment == "search":
            segment = url.rstrip("/").split("/")[-2]
        items = {o.get("object") for o in body.get("data") or [] if isinstance(o, dict)}
        if segment == "refunds" and "/application_fees/" in url:
            segment = "fee_refunds"  # /v1/application_fees/{id}/refunds lists fee refunds
        item = ({"fee_refunds": "fee_refund"}.get(segment) or _LIST_ITEMS.get(segment)
                or (items.pop() if len(items) == 1 else None))
        inner = _item_type(item) if item else "never"
        outer = "Stripe.ApiList" if obj == "list" else "Stripe.ApiSearchResult"
        return obj, f"{outer}<{inner}>"
    if not isinstance(obj, str):
        return "", ""
    if body.get("deleted") is True:
        return obj, f"Stripe.Deleted{_pascal(obj)}"
    if obj == "event":
        return obj, f"Stripe.{_pascal(str(body.get('type')))}Event"
    return obj, f"Stripe.{_pascal(obj)}"


class Recorder:
    def __init__(self) -> None:
        self.bodies: list[Body] = []

    def add(self, method: str, path: str, status: int, content, source: str) -> None:
        if isinstance(content, (bytes, bytearray)):
            content = content.decode("utf-8", "replace")
        if isinstance(content, str):
            try:
                content = json.loads(content)
            except ValueError:
                return
        kind, ts_type = classify(content)
        if not kind:
            return
        self.bodies.append(Body(id=f"b{len(self.bodies) + 1}", method=method, path=path,
                                status=status, source=source, json=content, kind=kind,
                                ts_type=ts_type))


def _recording_http_client(recorder: Recorder):
    import stripe

    class RecordingClient(stripe.RequestsClient):
        def request(self, method, url, headers, post_data=None):
            content, status, rheaders = super().request(method, url, headers, post_data)
            path = url.split("://", 1)[-1]
            path = path[path.find("/"):] if "/" in path else "/"
            recorder.add(method.upper(), path.split("?", 1)[0], status, content, "sdk")
            return content, status, rheaders

    return RecordingClient(timeout=30)


class _Receiver:
    """A local webhook endpoint that keeps every payload it is sent."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.payloads: list[bytes] = []
        lock = threading.Lock()
        payloads = self.payloads

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with lock:
                    payloads.append(body)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def drive(recorder: Recorder) -> dict:
    """The full run: every resource and state the emulator serves. Returns a few counters."""
    import datetime as _dt

    import requests
    import stripe

    from stripe_emulator import cards
    from stripe_emulator.testing import start_emulator

    receiver = _Receiver()
    handle = start_emulator(webhook_url=receiver.url, webhook_backoff=0.05)
    session = requests.Session()
    session.trust_env = False
    base = handle.base_url
    auth = {"Authorization": f"Bearer {API_KEY}"}
    year = _dt.date.today().year + 2
    client = stripe.StripeClient(API_KEY, base_addresses={"api": base}, max_network_retries=0,
                                 http_client=_recording_http_client(recorder))
    v1 = client.v1

    def control(path: str, data: Optional[dict] = None) -> requests.Response:
        response = session.post(f"{base}{path}", data=data or {}, allow_redirects=False,
                                timeout=30)
        if response.headers.get("Content-Type", "").startswith("application/json"):
            recorder.add("POST", path, response.status_code, response.content, "control")
        return response

    def raw(method: str, path: str, headers: Optional[dict] = None,
            data: Optional[dict] = None) -> None:
        response = session.request(method, f"{base}{path}", headers=headers or {}, data=data,
                                   timeout=30)
        recorder.add(method, path.split("?", 1)[0], response.status_code, response.content, "raw")

    def expect_error(fn: Callable[[], Any]) -> Optional[stripe.StripeError]:
        try:
            fn()
        except stripe.StripeError as err:
            return err
        raise AssertionError("the emulator answered a call the run expected to fail")

    def card(number: str, **extra) -> dict:
        cvc = "1234" if number.startswith(("34", "37")) else "123"
        return {"type": "card", "card": {"number": number, "exp_month": 12, "exp_year": year,
                                         "cvc": cvc}, **extra}

    def three_ds(intent_id: str, action: str = "complete") -> None:
        session.get(f"{base}/_emulator/3ds/{intent_id}", timeout=30)  # the page (HTML)
        control(f"/_emulator/3ds/{intent_id}/{action}")

    ret = "https://shop.example.test/return"
    try:
        # --- customers --------------------------------------------------------------------------
        cus = v1.customers.create(params={
            "email": "typecheck@example.com", "name": "Type Check", "phone": "+15555550100",
            "description": "typecheck run", "metadata": {"run": "typecheck"}})
        v1.customers.retrieve(cus.id)
        v1.customers.update(cus.id, params={"description": "updated", "metadata": {"k": "v"}})
        v1.customers.list(params={"limit": 3})
        v1.customers.list(params={"email": "typecheck@example.com"})
        other = v1.customers.create(params={"payment_method": "pm_card_mastercard",
                                             "email": "other@example.com"})

        # --- PaymentMethods ---------------------------------------------------------------------
        pm = v1.payment_methods.create(params=card("4242424242424242", billing_details={
            "name": "Type Check", "email": "typecheck@example.com", "phone": "+15555550100",
            "address": {"line1": "1 Main St", "city": "Springfield", "postal_code": "94107",
                        "state": "CA", "country": "US"}}, metadata={"pm": "1"}))
        v1.payment_methods.retrieve(pm.id)
        v1.payment_methods.retrieve("pm_card_visa")
        v1.payment_methods.update(pm.id, params={"metadata": {"k": "v"},
                                                 "card": {"exp_month": 11}})
        v1.payment_methods.attach(pm.id, params={"customer": cus.id})
        v1.customers.update(cus.id, params={"invoice_settings": {"default_payment_method": pm.id}})
        v1.customers.retrieve(cus.id, params={"expand": ["invoice_settings.default_payment_method"]})
        amex = v1.payment_methods.attach("pm_card_amex", params={"customer": cus.id})
        v1.payment_methods.list(params={"customer": cus.id})
        v1.customers.payment_methods.list(cus.id)
        v1.payment_methods.list(params={"customer": cus.id, "type": "card", "limit": 1})
        v1.payment_methods.detach(amex.id)
        expect_error(lambda: v1.payment_methods.detach(amex.id))
        expect_error(lambda: v1.payment_methods.attach("pm_card_visa_chargeDeclined",
                                                       params={"customer": cus.id}))
        for test_id in ("pm_card_visa_debit", "pm_card_discover", "pm_card_diners",
                        "pm_card_jcb", "pm_card_unionpay", "pm_card_mastercard_debit"):
            v1.payment_methods.retrieve(test_id)
        v1.payment_methods.create(params={"type": "card", "card": {"token": "tok_visa"}})

        # --- SetupIntents -----------------------------------------------------------------------
        si = v1.setup_intents.create(params={"customer": cus.id, "usage": "off_session",
                                             "metadata": {"si": "1"}})
        v1.setup_intents.retrieve(si.id)
        v1.setup_intents.confirm(si.id, params={"payment_method": "pm_card_visa"})
        v1.setup_intents.create(params={"customer": cus.id, "confirm": True,
                                        "payment_method": "pm_card_mastercard",
                                        "allowed_payment_method_types": ["card"]})
        si_3ds = v1.setup_intents.create(params={
            "customer": cus.id, "confirm": True, "return_url": ret,
            "payment_method": "pm_card_authenticationRequiredOnSetup"})
        three_ds(si_3ds.id)
        v1.setup_intents.retrieve(si_3ds.id)
        si_fail = v1.setup_intents.create(params={
            "customer": cus.id, "confirm": True, "payment_method": "pm_card_threeDSecure2Required"})
        three_ds(si_fail.id, "fail")
        v1.setup_intents.retrieve(si_fail.id)
        expect_error(lambda: v1.setup_intents.create(params={
            "customer": cus.id, "confirm": True, "payment_method": "pm_card_visa_chargeDeclined"}))
        si_cancel = v1.setup_intents.create(params={"customer": cus.id})
        v1.setup_intents.cancel(si_cancel.id, params={"cancellation_reason": "abandoned"})
        v1.setup_intents.list(params={"limit": 20})
        v1.setup_intents.list(params={"customer": cus.id})
        expect_error(lambda: v1.setup_intents.create(params={"payment_method_types": ["card"]}))

        # --- PaymentIntents: every test card -----------------------------------------------------
        declined = 0
        for number, behaviour in cards.TEST_NUMBERS.items():
            try:
                pi = v1.payment_intents.create(params={
                    "amount": 2000, "currency": "usd", "confirm": True, "return_url": ret,
                    "payment_method_data": card(number), "metadata": {"card": behaviour}})
            except stripe.CardError:
                pi = None
                declined += 1
            if pi is not None and pi.status == "requires_action":
                three_ds(pi.id)
                v1.payment_intents.retrieve(pi.id)
        for test_id in cards.TEST_PAYMENT_METHODS:
            try:
                v1.payment_intents.create(params={"amount": 1500, "currency": "usd",
                                                  "confirm": True, "payment_method": test_id,
                                                  "return_url": ret})
            except stripe.CardError:
                declined += 1

        # 3-D Secure failed on the page; off-session and error_on_requires_action declines.
        pi_3ds_fail = v1.payment_intents.create(params={
            "amount": 2500, "currency": "usd", "confirm": True,
            "payment_method": "pm_card_threeDSecure2Required"})
        three_ds(pi_3ds_fail.id, "fail")
        v1.payment_intents.retrieve(pi_3ds_fail.id)
        expect_error(lambda: v1.payment_intents.create(params={
            "amount": 2500, "currency": "usd", "confirm": True, "off_session": True,
            "payment_method": "pm_card_authenticationRequired"}))
        expect_error(lambda: v1.payment_intents.create(params={
            "amount": 2500, "currency": "usd", "confirm": True, "error_on_requires_action": True,
            "payment_method": "pm_card_authenticationRequired"}))

        # The states one by one: created, updated, confirmed, captured, canceled.
        pi_a = v1.payment_intents.create(params={
            "amount": 5000, "currency": "usd", "customer": cus.id, "description": "lesson",
            "receipt_email": "typecheck@example.com", "metadata": {"order": "A"},
            "statement_descriptor_suffix": "LESSON"})
        v1.payment_intents.update(pi_a.id, params={"metadata": {"step": "updated"},
                                                   "description": "lesson 1"})
        v1.payment_intents.update(pi_a.id, params={"payment_method": pm.id})
        v1.payment_intents.confirm(pi_a.id)
        pi_b = v1.payment_intents.create(params={
            "amount": 8000, "currency": "usd", "customer": cus.id, "confirm": True,
            "payment_method": pm.id, "allowed_payment_method_types": ["card"],
            "metadata": {"order": "B"}})
        pi_sfu = v1.payment_intents.create(params={
            "amount": 3000, "currency": "usd", "customer": cus.id, "confirm": True,
            "setup_future_usage": "off_session", "payment_method": "pm_card_visa"})
        v1.payment_intents.create(params={
            "amount": 3100, "currency": "usd", "customer": cus.id, "confirm": True,
            "off_session": True, "payment_method": pi_sfu.payment_method})
        pi_manual = v1.payment_intents.create(params={
            "amount": 6000, "currency": "usd", "confirm": True, "capture_method": "manual",
            "payment_method": "pm_card_visa"})
        v1.payment_intents.capture(pi_manual.id, params={"amount_to_capture": 4000})
        pi_void = v1.payment_intents.create(params={
            "amount": 6000, "currency": "usd", "confirm": True, "capture_method": "manual",
            "payment_method": "pm_card_visa"})
        v1.payment_intents.cancel(pi_void.id, params={"cancellation_reason": "abandoned"})
        pi_abandoned = v1.payment_intents.create(params={"amount": 900, "currency": "usd"})
        v1.payment_intents.cancel(pi_abandoned.id,
                                  params={"cancellation_reason": "requested_by_customer"})
        pi_pending = v1.payment_intents.create(params={
            "amount": 1200, "currency": "usd", "payment_method": "pm_card_visa",
            "capture_method": "automatic"})
        v1.payment_intents.retrieve(pi_pending.id)
        for expand in (["latest_charge"], ["customer", "payment_method"],
                       ["latest_charge.balance_transaction"]):
            v1.payment_intents.retrieve(pi_b.id, params={"expand": expand})
        v1.payment_intents.list(params={"limit": 100})
        v1.payment_intents.list(params={"customer": cus.id, "limit": 2})
        v1.payment_intents.search(params={"query": "metadata['order']:'B'"})
        v1.payment_intents.search(params={"query": f"status:'succeeded' AND customer:'{cus.id}'",
                                          "limit": 2})
        expect_error(lambda: v1.payment_intents.capture(pi_b.id))
        expect_error(lambda: v1.payment_intents.cancel(pi_b.id))
        expect_error(lambda: v1.payment_intents.confirm(pi_b.id))
        expect_error(lambda: v1.payment_intents.create(params={
            "amount": 1000, "currency": "usd", "payment_method_types": ["card"]}))
        # Idempotency: a replay answers the same body; other parameters, an idempotency error.
        opts = {"idempotency_key": "typecheck-key-1"}
        v1.payment_intents.create(params={"amount": 1000, "currency": "usd"}, options=opts)
        v1.payment_intents.create(params={"amount": 1000, "currency": "usd"}, options=opts)
        expect_error(lambda: v1.payment_intents.create(params={"amount": 1001, "currency": "usd"},
                                                       options=opts))

        # --- Connect ----------------------------------------------------------------------------
        acct = v1.accounts.create(params={"type": "express", "country": "US",
                                          "email": "teacher@example.com",
                                          "capabilities": {"card_payments": {"requested": True},
                                                           "transfers": {"requested": True}}})
        v1.accounts.create(params={"type": "standard"})
        v1.accounts.retrieve(acct.id)
        v1.account_links.create(params={"account": acct.id, "type": "account_onboarding",
                                         "refresh_url": "https://x.test/refresh",
                                         "return_url": "https://x.test/return"})
        control(f"/_emulator/accounts/{acct.id}/complete_onboarding")
        v1.accounts.retrieve(acct.id)
        pi_dest = v1.payment_intents.create(params={
            "amount": 10000, "currency": "usd", "confirm": True, "payment_method": "pm_card_visa",
            "application_fee_amount": 1000, "transfer_data": {"destination": acct.id},
            "transfer_group": "lesson-42"})
        _drive_connect(v1, control, expect_error)

        # --- charges, balance transactions ------------------------------------------------------
        for intent in (pi_a, pi_b, pi_manual, pi_void, pi_dest):
            ch_id = v1.payment_intents.retrieve(intent.id).latest_charge
            ch = v1.charges.retrieve(ch_id)
            if ch.balance_transaction:
                v1.balance_transactions.retrieve(ch.balance_transaction)
        v1.charges.retrieve(v1.payment_intents.retrieve(pi_b.id).latest_charge,
                            params={"expand": ["balance_transaction", "payment_intent"]})
        v1.charges.list(params={"limit": 100})
        v1.charges.list(params={"payment_intent": pi_b.id})
        v1.charges.list(params={"customer": cus.id})

        # --- refunds ----------------------------------------------------------------------------
        full = v1.refunds.create(params={"payment_intent": pi_a.id})
        part = v1.refunds.create(params={"payment_intent": pi_b.id, "amount": 500,
                                         "reason": "requested_by_customer",
                                         "metadata": {"why": "partial"}})
        ch_b = v1.payment_intents.retrieve(pi_b.id).latest_charge
        v1.refunds.create(params={"charge": ch_b, "amount": 300, "reason": "duplicate"})
        v1.refunds.update(part.id, params={"metadata": {"note": "updated"}})
        v1.refunds.retrieve(full.id)
        v1.refunds.retrieve(part.id, params={"expand": ["charge"]})
        control(f"/_emulator/refunds/{full.id}/fail")
        v1.refunds.retrieve(full.id)
        v1.refunds.list(params={"limit": 100})
        v1.refunds.list(params={"charge": ch_b})
        v1.refunds.list(params={"payment_intent": pi_b.id})
        v1.charges.retrieve(ch_b)
        expect_error(lambda: v1.refunds.create(params={"payment_intent": pi_b.id,
                                                       "amount": 99_999}))
        expect_error(lambda: v1.refunds.create(params={}))

        # --- disputes ---------------------------------------------------------------------------
        ch_manual = v1.payment_intents.retrieve(pi_manual.id).latest_charge
        dp = control(f"/_emulator/charges/{ch_manual}/dispute", {"reason": "fraudulent"}).json()
        ch_dest = v1.payment_intents.retrieve(pi_dest.id).latest_charge
        control(f"/_emulator/charges/{ch_dest}/dispute", {"reason": "product_not_received"})
        v1.disputes.retrieve(dp["id"])
        v1.disputes.retrieve(dp["id"], params={"expand": ["charge"]})
        v1.charges.retrieve(ch_manual)
        expect_error(lambda: v1.refunds.create(params={"charge": ch_manual}))

        # --- customers: delete ------------------------------------------------------------------
        v1.customers.delete(other.id)
        v1.customers.retrieve(other.id)

        # --- errors -----------------------------------------------------------------------------
        expect_error(lambda: v1.customers.retrieve("cus_doesnotexist"))
        expect_error(lambda: v1.payment_intents.create(params={"currency": "usd"}))
        expect_error(lambda: v1.payment_intents.create(params={"amount": 1000, "currency": "eur"}))
        expect_error(lambda: v1.payment_intents.create(params={"amount": 10, "currency": "usd"}))
        expect_error(lambda: v1.payment_methods.create(params=card("4242424242424241")))
        expect_error(lambda: v1.customers.list(params={"limit": 1000}))
        raw("POST", "/v1/customers", auth, {"colour": "red"})
        raw("GET", "/v1/customers", {"Authorization": "Bearer sk_live_nope"})
        raw("GET", "/v1/customers")
        raw("GET", "/v1/nothing_here", auth)
        handle.arm_fault("GET", "/v1/customers", "error_500")
        expect_error(lambda: v1.customers.list())
        handle.arm_fault("GET", "/v1/customers", "rate_limit")
        expect_error(lambda: v1.customers.list())

        # --- events -----------------------------------------------------------------------------
        handle.wait_for_deliveries(30)
        after = None
        pages = 0
        while True:
            params = {"limit": 100, **({"starting_after": after} if after else {})}
            page = v1.events.list(params=params)
            pages += 1
            if not page.data or not page.has_more:
                break
            after = page.data[-1].id
        first_of_type = {}
        for ev in handle.events():
            first_of_type.setdefault(ev["type"], ev["id"])
        for evt_id in first_of_type.values():
            v1.events.retrieve(evt_id)
        v1.events.list(params={"type": "payment_intent.succeeded", "limit": 5})
        v1.events.list(params={"type": "charge.*", "limit": 5})
        v1.events.list(params={"types": ["refund.created", "refund.updated"], "limit": 5})

        handle.wait_for_deliveries(30)
        for payload in list(receiver.payloads):
            recorder.add("POST", "(webhook)", 200, payload, "webhook")
        return {"declined": declined, "event_types": sorted(first_of_type),
                "events": len(handle.events()), "event_pages": pages}
    finally:
        handle.stop()
        receiver.close()
        session.close()


def _drive_connect(v1, control, expect_error) -> None:
    """Connect money movement: an account with controller properties onboarded on the hosted
    page, destination charges (refunded partly and wholly, with the transfer reversed and the
    fee refunded), separate charges and transfers, reversals, application fees and their refunds,
    balances and balance transactions per account, payouts (paid, failed, canceled), capabilities,
    a restricted account, a won and a lost dispute, and their errors."""
    acct = v1.accounts.create(params={
        "controller": {"fees": {"payer": "application"}, "losses": {"payments": "application"},
                       "stripe_dashboard": {"type": "express"}},
        "capabilities": {"card_payments": {"requested": True}, "transfers": {"requested": True}},
        "country": "US", "email": "teacher2@example.com", "metadata": {"user": "7"}})
    on = {"stripe_account": acct.id}
    v1.accounts.capabilities.list(acct.id)
    v1.accounts.capabilities.retrieve(acct.id, "transfers")
    expect_error(lambda: v1.payment_intents.create(params={
        "amount": 5000, "currency": "usd", "transfer_data": {"destination": acct.id}}))
    expect_error(lambda: v1.accounts.create(params={"type": "express", "controller": {
        "stripe_dashboard": {"type": "express"}}}))
    link = v1.account_links.create(params={"account": acct.id, "type": "account_onboarding",
                                           "refresh_url": "https://x.test/refresh",
                                           "return_url": "https://x.test/return"})
    path = "/" + link.url.split("/", 3)[3]
    control(path + "/complete")
    v1.accounts.retrieve(acct.id)
    v1.accounts.update(acct.id, params={"metadata": {"tier": "gold"}})
    v1.accounts.capabilities.update(acct.id, "card_payments", params={"requested": True})
    v1.accounts.list(params={"limit": 3})
    # A destination charge with the platform's fee; refunded partly, then wholly.
    pi = v1.payment_intents.create(params={
        "amount": 5000, "currency": "usd", "confirm": True, "payment_method": "pm_card_visa",
        "application_fee_amount": 500, "transfer_data": {"destination": acct.id},
        "on_behalf_of": acct.id, "metadata": {"payment_id": "9"}})
    ch = v1.charges.retrieve(pi.latest_charge, params={"expand": ["transfer", "application_fee"]})
    tr_id, fee_id = ch.transfer.id, ch.application_fee.id
    tr = v1.transfers.retrieve(tr_id)
    py = v1.charges.retrieve(tr.destination_payment, options=on)
    v1.balance_transactions.retrieve(py.balance_transaction, options=on)
    v1.application_fees.retrieve(fee_id)
    v1.application_fees.list(params={"charge": ch.id})
    v1.refunds.create(params={"payment_intent": pi.id, "amount": 1999,
                              "reverse_transfer": True, "refund_application_fee": True})
    v1.refunds.create(params={"payment_intent": pi.id, "reverse_transfer": True,
                              "refund_application_fee": True})
    v1.transfers.retrieve(tr_id)
    v1.transfers.reversals.list(tr_id)
    v1.application_fees.retrieve(fee_id)
    v1.application_fees.refunds.list(fee_id)
    expect_error(lambda: v1.refunds.create(params={"payment_intent": pi.id}))
    # Separate charge and transfer, tied to the charge; a reversal with its share of the fee.
    funded = v1.payment_intents.create(params={
        "amount": 8000, "currency": "usd", "confirm": True,
        "payment_method": "pm_card_bypassPending"})
    expect_error(lambda: v1.refunds.create(params={"payment_intent": funded.id,
                                                   "reverse_transfer": True}))
    tr2 = v1.transfers.create(params={"amount": 7200, "currency": "usd",
                                      "destination": acct.id,
                                      "source_transaction": funded.latest_charge,
                                      "transfer_group": "payment-10",
                                      "metadata": {"payment_id": "10"}})
    expect_error(lambda: v1.transfers.create(params={
        "amount": 900, "currency": "usd", "destination": acct.id,
        "source_transaction": funded.latest_charge}))
    expect_error(lambda: v1.transfers.create(params={"amount": 10**8, "currency": "usd",
                                                     "destination": acct.id}))
    v1.transfers.update(tr2.id, params={"metadata": {"note": "paid"}})
    trr = v1.transfers.reversals.create(tr2.id, params={"amount": 1000})
    v1.transfers.reversals.retrieve(tr2.id, trr.id)
    v1.transfers.list(params={"destination": acct.id})
    v1.transfers.list(params={"transfer_group": "payment-10"})
    # A manual fee refund.
    pi3 = v1.payment_intents.create(params={
        "amount": 3000, "currency": "usd", "confirm": True, "payment_method": "pm_card_visa",
        "application_fee_amount": 300, "transfer_data": {"destination": acct.id}})
    fee3 = v1.charges.retrieve(pi3.latest_charge).application_fee
    fr = v1.application_fees.refunds.create(fee3, params={"amount": 100})
    v1.application_fees.refunds.retrieve(fee3, fr.id)
    v1.application_fees.list(params={"limit": 10})
    # Balances, ledgers, payouts.
    v1.balance.retrieve()
    v1.balance.retrieve(options=on)
    control("/_emulator/balance/release", {"account": acct.id})
    v1.balance_transactions.list(params={"limit": 100})
    v1.balance_transactions.list(params={"limit": 100}, options=on)
    v1.balance_transactions.list(params={"type": "payment"}, options=on)
    po = v1.payouts.create(params={"amount": 1000, "currency": "usd",
                                   "metadata": {"run": "1"}}, options=on)
    control(f"/_emulator/payouts/{po.id}/settle", {"outcome": "paid"})
    v1.payouts.retrieve(po.id, options=on)
    v1.balance_transactions.list(params={"payout": po.id}, options=on)
    po2 = v1.payouts.create(params={"amount": 500, "currency": "usd"}, options=on)
    control(f"/_emulator/payouts/{po2.id}/settle", {"outcome": "failed"})
    po3 = v1.payouts.create(params={"amount": 500, "currency": "usd"}, options=on)
    v1.payouts.update(po3.id, params={"metadata": {"why": "test"}}, options=on)
    v1.payouts.cancel(po3.id, options=on)
    v1.payouts.list(options=on)
    expect_error(lambda: v1.payouts.create(params={"amount": 10**8, "currency": "usd"},
                                           options=on))
    expect_error(lambda: v1.payouts.retrieve(po.id))
    expect_error(lambda: v1.customers.list(options=on))
    expect_error(lambda: v1.balance.retrieve(options={"stripe_account": "acct_missing"}))
    # Disputes on destination charges: the platform is liable; one won, one lost.
    for outcome in ("won", "lost"):
        pi_d = v1.payment_intents.create(params={
            "amount": 4000, "currency": "usd", "confirm": True, "payment_method": "pm_card_visa",
            "application_fee_amount": 400, "transfer_data": {"destination": acct.id}})
        dp = control(f"/_emulator/charges/{pi_d.latest_charge}/dispute",
                     {"reason": "fraudulent"}).json()
        control(f"/_emulator/disputes/{dp['id']}/close", {"outcome": outcome})
        v1.disputes.retrieve(dp["id"])
        v1.disputes.list(params={"charge": pi_d.latest_charge})
    # The account loses its capabilities: destination charges to it are refused.
    control(f"/_emulator/accounts/{acct.id}/restrict")
    v1.accounts.retrieve(acct.id)
    expect_error(lambda: v1.payment_intents.create(params={
        "amount": 5000, "currency": "usd", "confirm": True, "payment_method": "pm_card_visa",
        "transfer_data": {"destination": acct.id}}))


# --- canaries ------------------------------------------------------------------------------------

def _first(bodies: list[Body], kind: str, ts_type: Optional[str] = None,
           test: Callable[[Any], bool] = lambda _: True) -> Optional[Body]:
    return next((b for b in bodies if b.kind == kind and (ts_type is None or b.ts_type == ts_type)
                 and test(b.json)), None)


def canaries(bodies: list[Body]) -> list[Body]:
    """Copies of recorded bodies, each with one defect the check exists to catch. They are
    compiled with the real bodies, in the same file, and each must fail: proof that the run
    checks what it claims (an open enum accepting any value would let the first one through).
    A list canary keeps only its defective item: tsc's report on a failing list of unions costs
    seconds per item."""
    made: list[Body] = []

    def add(source: Optional[Body], expect: str, mutate: Callable[[Any], None]) -> None:
        if source is None:
            raise RuntimeError(f"the run recorded no body to make the canary '{expect}' from")
        data = json.loads(json.dumps(source.json))
        mutate(data)
        made.append(Body(id=f"canary{len(made) + 1}", method=source.method, path=source.path,
                         status=source.status, source="canary", json=data, kind=source.kind,
                         ts_type=source.ts_type, expect=expect))

    pi = _first(bodies, "payment_intent")
    add(pi, "an unknown value of an open enum (PaymentIntent.status)",
        lambda d: d.update(status="not_a_status"))
    add(pi, "an unknown key (PaymentIntent.not_a_field)", lambda d: d.update(not_a_field=None))
    add(pi, "a missing required key (PaymentIntent.payment_record)",
        lambda d: d.pop("payment_record"))
    add(_first(bodies, "refund"), "null for a field that may only be absent "
        "(Refund.destination_details.card.reference)",
        lambda d: d["destination_details"]["card"].update(reference=None))
    add(_first(bodies, "list", "Stripe.ApiList<Stripe.Charge>", lambda j: bool(j["data"])),
        "an unknown enum value in a list item (Charge.outcome.advice_code)",
        lambda d: (d.update(data=d["data"][:1]),
                   d["data"][0]["outcome"].update(advice_code="not_an_advice_code")))
    add(_first(bodies, "event", "Stripe.PaymentIntentSucceededEvent"),
        "an unknown enum value in an event's object (PaymentIntent.capture_method)",
        lambda d: d["data"]["object"].update(capture_method="not_a_method"))
    add(_first(bodies, "list", "Stripe.ApiList<Stripe.Event>", lambda j: bool(j["data"])),
        "an unknown key in an object inside a list of events",
        lambda d: (d.update(data=d["data"][:1]),
                   d["data"][0]["data"]["object"].update(not_a_field=1)))
    add(_first(bodies, "error", test=lambda j: "payment_intent" in j["error"]),
        "an unknown enum value in the PaymentIntent of a card error",
        lambda d: d["error"]["payment_intent"].update(status="declined"))
    return made


# --- TypeScript ----------------------------------------------------------------------------------

def _emit(value: Any, path: str, prefix: str, indent: str, lines: list, paths: list,
          suffix: str) -> None:
    """Pretty-print ``value`` as a TypeScript literal, one key per line; ``paths[i]`` is the
    JSON path of ``lines[i]``, so that a diagnostic's line names the field it is about."""
    if isinstance(value, dict) and value:
        lines.append(f"{indent}{prefix}{{")
        paths.append(path or ".")
        items = list(value.items())
        for i, (k, v) in enumerate(items):
            _emit(v, f"{path}.{k}", f"{json.dumps(k)}: ", indent + "  ", lines, paths,
                  "," if i < len(items) - 1 else "")
        lines.append(f"{indent}}}{suffix}")
        paths.append(path or ".")
    elif isinstance(value, list) and value:
        lines.append(f"{indent}{prefix}[")
        paths.append(path or ".")
        for i, v in enumerate(value):
            _emit(v, f"{path}[{i}]", "", indent + "  ", lines, paths,
                  "," if i < len(value) - 1 else "")
        lines.append(f"{indent}]{suffix}")
        paths.append(path or ".")
    else:
        lines.append(f"{indent}{prefix}{json.dumps(value, ensure_ascii=False)}{suffix}")
        paths.append(path or ".")


_DIAG = re.compile(r"^(?P<file>.+?)\((?P<line>\d+),(?P<col>\d+)\): error (?P<code>TS\d+): "
                   r"(?P<msg>.*)$")


def _ts_file(bodies: list[Body], title: str) -> tuple[list, list, list]:
    """The lines of one .ts file of typed constants, with each line's JSON path and body."""
    lines = [f"// Written by stripe_emulator/typecheck/check.py: {title}.",
             "import type Stripe from 'stripe';", ""]
    paths = ["", "", ""]
    owner: list[Optional[Body]] = [None, None, None]
    for b in bodies:
        lines.append(f"// {b.id}: {b.kind} {b.method} {b.path} -> {b.status} ({b.source})"
                     + (f"; must fail: {b.expect}" if b.expect else ""))
        paths.append("")
        owner.append(b)
        start = len(lines)
        _emit(b.json, "", f"const {b.id}: {b.ts_type} = ", "", lines, paths, ";")
        owner.extend([b] * (len(lines) - start))
    lines.append("export {};")
    paths.append("")
    owner.append(None)
    return lines, paths, owner


def typecheck(bodies: list[Body], run_dir: Path, node: str) -> str:
    """Write bodies.ts (the run's bodies), canaries.ts (the planted defects) and their tsconfig
    in ``run_dir``, run tsc once on both, attach diagnostics to bodies. Returns tsc's output."""
    files = {
        "bodies.ts": _ts_file([b for b in bodies if not b.expect],
                              "every body of one emulator run"),
        "canaries.ts": _ts_file([b for b in bodies if b.expect],
                                "copies of bodies with one defect each, which must all fail"),
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    for name, (lines, _, _) in files.items():
        (run_dir / name).write_text("\n".join(lines) + "\n")
    rel = os.path.relpath(HERE / "tsconfig.json", run_dir)
    (run_dir / "tsconfig.json").write_text(json.dumps(
        {"extends": rel, "files": list(files)}, indent=2) + "\n")
    tsc = NODE_MODULES / "typescript" / "bin" / "tsc"
    proc = subprocess.run([node, str(tsc), "-p", str(run_dir)], cwd=HERE, capture_output=True,
                          text=True, timeout=600)
    output = proc.stdout + proc.stderr
    current = None
    unattached = []
    for text in output.splitlines():
        m = _DIAG.match(text)
        if m:
            line = int(m["line"]) - 1
            _, paths, owner = files.get(Path(m["file"]).name, ([], [], []))
            body = owner[line] if line < len(owner) else None
            current = {"file": Path(m["file"]).name, "line": line + 1,
                       "path": paths[line] if line < len(paths) else "",
                       "code": m["code"], "message": m["msg"]}
            (body.errors if body is not None else unattached).append(current)
        elif current is not None and text.startswith(" "):
            current["message"] += "\n" + text.rstrip()
        elif text.strip():
            unattached.append({"message": text})
            current = None
    if proc.returncode not in (0, 1, 2) or unattached:
        raise RuntimeError(f"tsc failed outside the bodies (exit {proc.returncode}):\n{output}")
    if proc.returncode == 0 and any(b.expect for b in bodies):
        raise RuntimeError(f"tsc passed bodies built to fail:\n{output}")
    if proc.returncode != 0 and not any(b.errors for b in bodies):
        raise RuntimeError(f"tsc exited {proc.returncode} with no diagnostic on a body:\n{output}")
    return output


@dataclass
class Report:
    bodies: list
    info: dict
    seconds: dict
    canaries: list = field(default_factory=list)

    @property
    def failures(self) -> list:
        return [b for b in self.bodies if b.errors]

    @property
    def canaries_missed(self) -> list:
        """Canaries tsc let through: the check itself is broken."""
        return [c for c in self.canaries if not c.errors]

    @property
    def kinds(self) -> Counter:
        """Top-level bodies by kind (their ``object``, or error)."""
        return Counter(b.kind for b in self.bodies)

    @property
    def objects(self) -> Counter:
        """Every Stripe object in every body, nested ones included, by ``object``."""
        found: Counter = Counter()

        def walk(value):
            if isinstance(value, dict):
                if isinstance(value.get("object"), str):
                    found[value["object"]] += 1
                for v in value.values():
                    walk(v)
            elif isinstance(value, list):
                for v in value:
                    walk(v)

        for b in self.bodies:
            walk(b.json)
        return found

    def as_dict(self) -> dict:
        return {
            "api_version": API_VERSION, "bodies": len(self.bodies),
            "failed": len(self.failures), "kinds": dict(sorted(self.kinds.items())),
            "objects": dict(sorted(self.objects.items())), "run": self.info,
            "seconds": self.seconds,
            "canaries": [{"id": c.id, "expect": c.expect, "caught": bool(c.errors),
                          "errors": c.errors} for c in self.canaries],
            "failures": [{"id": b.id, "kind": b.kind, "type": b.ts_type, "method": b.method,
                          "path": b.path, "status": b.status, "source": b.source,
                          "errors": b.errors} for b in self.failures],
        }

    def summary(self) -> str:
        out = [f"typecheck: {len(self.bodies)} bodies against stripe-node types at "
               f"{API_VERSION}, open unions closed: {len(self.failures)} failed"]
        out.append("  bodies by kind: " + ", ".join(f"{k} {n}" for k, n in
                                                    sorted(self.kinds.items())))
        out.append(f"  canaries caught: {len(self.canaries) - len(self.canaries_missed)} of "
                   f"{len(self.canaries)}")
        for c in self.canaries_missed:
            out.append(f"  CANARY NOT CAUGHT {c.id}: {c.expect} ({c.ts_type})")
        out.append("  seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in self.seconds.items()))
        for b in self.failures:
            out.append(f"  FAIL {b.id} {b.ts_type} {b.method} {b.path} -> {b.status} "
                       f"({b.source})")
            for e in b.errors:
                first = e["message"].splitlines()
                out.append(f"    at {e.get('path') or '.'} (line {e.get('line')}): "
                           f"{e.get('code', '')} {first[0] if first else ''}")
                out.extend(f"      {x.strip()}" for x in first[1:6])
        return "\n".join(out)


def run(install: bool = True, log: Callable[[str], None] = print) -> Report:
    """The whole check; the report lists each failing body with tsc's diagnostics."""
    import stripe

    if stripe.api_version != API_VERSION:
        raise RuntimeError(f"the Python SDK is at {stripe.api_version}, the emulator at "
                           f"{API_VERSION}: pin stripe-node to the SDK's version")
    node, _ = node_tools()
    seconds = {}
    t0 = time.monotonic()
    if install:
        ensure_node_modules(log)
    elif not node_modules_fresh():
        raise RuntimeError("node_modules is missing or stale: run without --no-install")
    closed_types()
    seconds["setup"] = time.monotonic() - t0
    t1 = time.monotonic()
    recorder = Recorder()
    info = drive(recorder)
    seconds["run"] = time.monotonic() - t1
    t2 = time.monotonic()
    run_dir = BUILD / f"run-{os.getpid()}-{int(time.time() * 1000)}"
    planted = canaries(recorder.bodies)
    try:
        typecheck(recorder.bodies + planted, run_dir, node)
        seconds["tsc"] = time.monotonic() - t2
        report = Report(recorder.bodies, info, seconds, planted)
        (run_dir / "report.json").write_text(json.dumps(report.as_dict(), indent=2) + "\n")
        last = BUILD / "last"
        with _FileLock(".last.lock"):
            shutil.rmtree(last, ignore_errors=True)
            run_dir.rename(last)
            # tsconfig.json's "extends" is relative: the same depth, so still right.
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    return report


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="also write the report here")
    parser.add_argument("--no-install", action="store_true",
                        help="do not run npm ci (fail if node_modules is stale)")
    args = parser.parse_args(argv)
    try:
        report = run(install=not args.no_install)
    except ToolMissing as exc:
        print(f"typecheck: {exc}", file=sys.stderr)
        return 2
    print(report.summary())
    print(f"bodies and diagnostics: {BUILD / 'last'}")
    if args.json:
        args.json.write_text(json.dumps(report.as_dict(), indent=2) + "\n")
    return 1 if report.failures or report.canaries_missed else 0


if __name__ == "__main__":
    sys.exit(main())
