"""Race scenarios against the live stack, each verified from both sides.

Every scenario makes its own students, teachers and gigs (through the ORM), drives the app over
HTTP only, then compares the app's database (ORM) with the emulator's objects (``GET
/v1/payment_intents``, ``/v1/refunds``, ``/v1/events``) and runs ``check_stripe_consistency
--no-repair`` over what it created. Counts in a result:

- lost: money taken without its payment and booking, a payment or booking the app shows as paid
  with no charge at Stripe, a refund the app recorded that Stripe does not have, or a payment asked
  for and never made;
- doubled: charges, refunds, payments or bookings beyond what the requests asked for;
- differences: the database and Stripe disagreeing on an amount, a status or a refund total, a
  fee split that is not exact, plus the consistency check's unrepaired differences.

Every HTTP call has a timeout, every wait a bound; sizes come from ``Sizes`` (full or bounded).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import os
import random
import secrets
import signal
import threading
import time
import traceback
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Callable

from .stack import Answer, Stack

PAY = "/stripe-payments/process-payment/"
WEBHOOK = "/stripe-payments/webhook/"
FEE_PERCENT = 10
CHARGED = ("succeeded", "partially_refunded", "refunded", "disputed")
POOL_TIMEOUT = 300.0  # seconds: the longest any batch of concurrent requests may take


@dataclass(frozen=True)
class Sizes:
    racing_key: int  # requests sharing one Idempotency-Key
    payments: int  # concurrent payments ...
    students: int  # ... by this many students
    payment_threads: int
    approvals: int  # concurrent approvals of one refund request
    rounds: int  # confirm-vs-decline rounds
    replays: int  # times each webhook event is posted again
    wait_for_stale: bool  # scenario 6 waits the real stale-key time (else backdates updated_at)


FULL = Sizes(racing_key=50, payments=100, students=10, payment_threads=20, approvals=20, rounds=20, replays=20,
             wait_for_stale=True)
BOUNDED = Sizes(racing_key=10, payments=20, students=10, payment_threads=10, approvals=5, rounds=5, replays=5,
                wait_for_stale=False)


@dataclass
class ScenarioResult:
    name: str
    requests: int = 0
    faults: int = 0
    lost: int = 0
    doubled: int = 0
    differences: int = 0
    ok: bool = False
    detail: str = ""
    elapsed_max_s: float = 0.0
    duration_s: float = 0.0
    consistency: str = ""
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


class Recorder:
    """Counts requests and the slowest answer of one scenario; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.elapsed_max = 0.0

    def add(self, answer: Answer) -> Answer:
        with self._lock:
            self.requests += 1
            self.elapsed_max = max(self.elapsed_max, answer.elapsed)
        return answer


# --- helpers ----------------------------------------------------------------------------------------
def card(number: str = "4242424242424242", cvc: str = "123") -> dict:
    return {"card_number": number, "exp_month": 12, "exp_year": time.gmtime().tm_year + 3, "cvc": cvc,
            "cardholder_name": "Reliability Run"}


def round_half_up(numerator: int, denominator: int) -> int:
    return int((Decimal(numerator) / Decimal(denominator)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def expected_fee(amount_cents: int) -> int:
    return round_half_up(amount_cents * FEE_PERCENT, 100)


def concurrently(count: int, fn: Callable[[int], Any], *, threads: int | None = None) -> list[Any]:
    """Run fn(0..count-1) on ``threads`` threads (default: all at once, released together)."""
    threads = min(threads or count, count)
    barrier = threading.Barrier(threads) if threads == count else None

    def run(i: int):
        if barrier is not None:
            try:
                barrier.wait(timeout=30)
            except threading.BrokenBarrierError:
                pass
        return fn(i)

    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="rel")
    try:
        futures = [pool.submit(run, i) for i in range(count)]
        deadline = time.monotonic() + POOL_TIMEOUT
        return [f.result(timeout=max(1.0, deadline - time.monotonic())) for f in futures]
    finally:
        # On an interrupt or a timeout: start nothing more, release any thread at the barrier.
        if barrier is not None:
            barrier.abort()
        pool.shutdown(wait=False, cancel_futures=True)


def body_key(answer: Answer) -> str:
    return f"{answer.status} {json.dumps(answer.body, sort_keys=True)}"


def sign(secret: str, payload: bytes, timestamp: int | None = None) -> str:
    """Stripe's scheme: t=<ts>,v1=<hex HMAC-SHA256(secret, "<ts>.<payload>")>."""
    ts = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def reset_emulator_knobs(stack: Stack) -> None:
    """No faults, no latency, webhooks off: what every scenario starts from."""
    stack.emulator("DELETE", "/_emulator/faults")
    stack.emulator("POST", "/_emulator/config", latency_ms=0)
    stack.emulator("POST", "/_emulator/webhooks", url="")


def pay(stack: Stack, rec: Recorder, token: str, gig_id: int, *, key: str | None = None, number: str = "4242424242424242",
        save_card: bool = False) -> Answer:
    headers = {"Idempotency-Key": key} if key else {}
    body: dict[str, Any] = {"gig_id": gig_id, "card_details": card(number)}
    if save_card:
        body["save_card"] = True
    return rec.add(stack.app("POST", PAY, token=token, json=body, headers=headers))


# --- the two-sided audit ------------------------------------------------------------------------------
@dataclass
class Audit:
    lost: int = 0
    doubled: int = 0
    differences: int = 0
    problems: list[str] = field(default_factory=list)
    charges: int = 0
    charged_cents: int = 0
    refunds: int = 0
    refunded_cents: int = 0
    payments: int = 0
    bookings: int = 0
    db_charged_cents: int = 0
    intents: dict[str, dict] = field(default_factory=dict)
    refunds_by_intent: dict[str, list[dict]] = field(default_factory=dict)

    def summary(self) -> str:
        return (f"Stripe: {self.charges} charge(s) {self.charged_cents}c, {self.refunds} refund(s) "
                f"{self.refunded_cents}c; app: {self.payments} payment(s), {self.bookings} booking(s), "
                f"{self.db_charged_cents}c charged")


def audit(stack: Stack, students, *, charges: int, payments: int | None = None, refunds: int = 0) -> Audit:
    """Compare the students' payments and bookings with their PaymentIntents and refunds at Stripe."""
    from bookings.models import Booking
    from stripe_payments.models import Payment

    payments = charges if payments is None else payments
    student_ids = {str(s.pk) for s in students}
    intents = [pi for pi in stack.stripe_list("/v1/payment_intents")
               if (pi.get("metadata") or {}).get("student_id") in student_ids]
    by_id = {pi["id"]: pi for pi in intents}
    succeeded = [pi for pi in intents if pi["status"] == "succeeded"]
    stripe_refunds = [r for r in stack.stripe_list("/v1/refunds")
                      if r.get("payment_intent") in by_id and r.get("status") in ("succeeded", "pending")]
    refunds_by_intent: dict[str, list[dict]] = defaultdict(list)
    for refund in stripe_refunds:
        refunds_by_intent[refund["payment_intent"]].append(refund)
    rows = list(Payment.objects.filter(student_id__in=[s.pk for s in students]).order_by("pk"))
    bookings = {b.payment_id: b for b in Booking.objects.filter(payment_id__in=[p.pk for p in rows])}
    by_intent = {p.stripe_payment_intent_id: p for p in rows if p.stripe_payment_intent_id}

    a = Audit(charges=len(succeeded), charged_cents=sum(pi["amount_received"] for pi in succeeded),
              refunds=len(stripe_refunds), refunded_cents=sum(r["amount"] for r in stripe_refunds),
              payments=len(rows), bookings=len(bookings), intents=by_id, refunds_by_intent=refunds_by_intent)
    for pi in succeeded:
        row = by_intent.get(pi["id"])
        if row is None:
            a.lost += 1
            a.problems.append(f"{pi['id']} charged {pi['amount_received']}c at Stripe; no payment records it "
                              f"(metadata payment_id {pi.get('metadata', {}).get('payment_id')})")
        elif row.status not in CHARGED:
            a.lost += 1
            a.problems.append(f"{pi['id']} charged at Stripe; payment {row.pk} is {row.status}")
        elif row.pk not in bookings:
            a.lost += 1
            a.problems.append(f"{pi['id']} charged at Stripe; payment {row.pk} has no booking")
    for row in rows:
        fee = expected_fee(row.amount_cents)
        if row.admin_fee_cents != fee or row.teacher_amount_cents != row.amount_cents - fee:
            a.differences += 1
            a.problems.append(f"payment {row.pk}: split {row.admin_fee_cents}+{row.teacher_amount_cents} of "
                              f"{row.amount_cents}c, expected {fee}+{row.amount_cents - fee}")
        if row.status not in CHARGED:
            continue
        a.db_charged_cents += row.amount_cents
        pi = by_id.get(row.stripe_payment_intent_id or "")
        if pi is None or pi["status"] != "succeeded":
            a.lost += 1
            a.problems.append(f"payment {row.pk} is {row.status} but Stripe has "
                              f"{'no intent' if pi is None else pi['id'] + ' ' + pi['status']}")
            continue
        if pi["amount"] != row.amount_cents or pi["amount_received"] != row.amount_cents:
            a.differences += 1
            a.problems.append(f"payment {row.pk}: {row.amount_cents}c, Stripe {pi['id']} amount {pi['amount']}c "
                              f"received {pi['amount_received']}c")
        at_stripe = sum(r["amount"] for r in refunds_by_intent.get(pi["id"], []))
        if at_stripe != row.refunded_cents:
            a.differences += 1
            a.problems.append(f"payment {row.pk}: refunded {row.refunded_cents}c in the app, {at_stripe}c at Stripe")
        if row.refunded_cents:
            fee_back = round_half_up(row.admin_fee_cents * row.refunded_cents, row.amount_cents)
            if row.refunded_admin_fee_cents != fee_back or row.refunded_teacher_cents != row.refunded_cents - fee_back:
                a.differences += 1
                a.problems.append(f"payment {row.pk}: refund split {row.refunded_admin_fee_cents}+"
                                  f"{row.refunded_teacher_cents}, expected {fee_back}+{row.refunded_cents - fee_back}")
        if row.status != "disputed":
            want = ("refunded" if row.refunded_cents == row.amount_cents
                    else "partially_refunded" if row.refunded_cents else "succeeded")
            if row.status != want:
                a.differences += 1
                a.problems.append(f"payment {row.pk} is {row.status}, refunded {row.refunded_cents}c: expected {want}")
    if a.charged_cents != a.db_charged_cents and not a.problems:
        a.differences += 1
        a.problems.append(f"Stripe charged {a.charged_cents}c in all, the app recorded {a.db_charged_cents}c")
    a.doubled += max(0, len(succeeded) - charges) + max(0, len(rows) - payments)
    a.doubled += max(0, len(bookings) - charges) + max(0, len(stripe_refunds) - refunds)
    if len(succeeded) < charges:
        a.lost += charges - len(succeeded)
        a.problems.append(f"{charges} charge(s) asked for, {len(succeeded)} made at Stripe")
    if len(stripe_refunds) < refunds:
        a.lost += refunds - len(stripe_refunds)
        a.problems.append(f"{refunds} refund(s) owed, {len(stripe_refunds)} made at Stripe")
    for what, have, want in (("payment(s)", len(rows), payments), ("charge(s)", len(succeeded), charges),
                             ("booking(s)", len(bookings), charges), ("refund(s)", len(stripe_refunds), refunds)):
        if have > want:
            a.problems.append(f"{have} {what} where {want} were asked for")
    return a


def _finish(stack: Stack, result: ScenarioResult, rec: Recorder, a: Audit | None, unexpected: list[str],
            started: float) -> ScenarioResult:
    result.requests += rec.requests
    result.elapsed_max_s = max(result.elapsed_max_s, rec.elapsed_max)
    if a is not None:
        result.lost += a.lost
        result.doubled += a.doubled
        result.differences += a.differences
        result.problems += a.problems
        result.notes.append(a.summary())
    unrepaired, output = stack.consistency(since_seconds=time.time() - started + 30)
    if unrepaired is None:
        result.consistency = "consistency check unavailable" if "unavailable" in output else "consistency check failed"
        if result.consistency == "consistency check failed":
            unexpected.append("check_stripe_consistency could not compare: " + output.strip().splitlines()[-1][:200]
                              if output.strip() else "check_stripe_consistency failed")
    else:
        result.consistency = f"consistency check: {unrepaired} unrepaired"
        result.differences += unrepaired
        result.problems += [line for line in output.splitlines() if line.startswith(("NOT REPAIRED", "NEEDS A PERSON"))]
    result.problems += unexpected
    result.ok = not (result.lost or result.doubled or result.differences or unexpected)
    parts = [result.consistency] + result.notes
    if result.problems:
        parts = ["; ".join(result.problems[:8]) + (" ..." if len(result.problems) > 8 else "")] + parts
    result.detail = "; ".join(p for p in parts if p)
    return result


def _people(stack: Stack, label: str, *, students: int = 1, price_cents: int = 2500):
    teacher = stack.new_user("teacher", f"{label}-teacher")
    gig = stack.new_gig(teacher, price_cents, title=f"{label} lesson")
    learners = [stack.new_user("student", f"{label}-student{i}") for i in range(students)]
    return teacher, gig, learners


# --- 1. one Idempotency-Key, many racing requests -------------------------------------------------------
def racing_key(stack: Stack, sizes: Sizes) -> ScenarioResult:
    from stripe_payments.models import IdempotencyRecord

    started = time.time()
    n = sizes.racing_key
    result = ScenarioResult(f"1. {n} racing requests, one Idempotency-Key")
    rec = Recorder()
    _, gig, (student,) = _people(stack, "race-key", price_cents=2345)
    token = stack.token(student)
    key = "rel-race-" + secrets.token_hex(8)
    body = {"gig_id": gig.pk, "card_details": card()}
    answers = concurrently(n, lambda i: rec.add(stack.app("POST", PAY, token=token, json=body,
                                                          headers={"Idempotency-Key": key})))
    unexpected = []
    finals = Counter(body_key(a) for a in answers if not (a.status == 409 and a.code == "idempotency_in_progress"))
    in_progress = sum(1 for a in answers if a.status == 409 and a.code == "idempotency_in_progress")
    if len(finals) != 1:
        unexpected.append(f"{len(finals)} different answers: " + ", ".join(f"{k[:60]}... x{c}" for k, c in finals.items()))
    elif not next(iter(finals)).startswith("200 "):
        unexpected.append(f"the answer was {next(iter(finals))[:120]}")
    records = IdempotencyRecord.objects.filter(user=student, key=key)
    if records.count() != 1 or records.first().response_status != 200:
        unexpected.append(f"{records.count()} idempotency record(s), answer {getattr(records.first(), 'response_status', None)}")
    result.notes.append(f"{sum(finals.values())} identical 200 answers, {in_progress} x 409 idempotency_in_progress")
    a = audit(stack, [student], charges=1)
    return _finish(stack, result, rec, a, unexpected, started)


# --- 2. many concurrent payments ------------------------------------------------------------------------
PRICES = (1005, 1015, 55, 999, 12345, 2500, 50, 1999, 333, 7777)  # fees that round half up, and the minimum


def many_payments(stack: Stack, sizes: Sizes) -> ScenarioResult:
    started = time.time()
    n, s = sizes.payments, sizes.students
    result = ScenarioResult(f"2. {n} concurrent payments by {s} students")
    rec = Recorder()
    teachers = [stack.new_user("teacher", f"many-teacher{i}") for i in range(2)]
    gigs = [stack.new_gig(teachers[i % 2], price, title=f"many lesson {price}") for i, price in enumerate(PRICES)]
    students = [stack.new_user("student", f"many-student{i}") for i in range(s)]
    tokens = [stack.token(u) for u in students]
    cards = ("4242424242424242", "5555555555554444")

    def one(i: int) -> Answer:
        who = i % s
        gig = gigs[(i // s + who) % len(gigs)]
        return pay(stack, rec, tokens[who], gig.pk, key=f"rel-many-{i}-{secrets.token_hex(4)}",
                   number=cards[i % 2], save_card=(i % 5 == 0))

    answers = concurrently(n, one, threads=sizes.payment_threads)
    bad = [a for a in answers if not (a.status == 200 and isinstance(a.body, dict) and a.body.get("status") == "succeeded"
                                      and a.body.get("booking_id"))]
    unexpected = [f"{len(bad)} payment(s) not answered 200 succeeded with a booking: "
                  + ", ".join(sorted({a.brief() for a in bad}))] if bad else []
    a = audit(stack, students, charges=n)
    answered_cents = sum(a_.body.get("amount_cents", 0) for a_ in answers if a_.status == 200 and isinstance(a_.body, dict))
    if answered_cents != a.charged_cents:
        a.differences += 1
        a.problems.append(f"answers total {answered_cents}c, Stripe charged {a.charged_cents}c")
    result.notes.append(f"answers total {answered_cents}c")
    return _finish(stack, result, rec, a, unexpected, started)


# --- 3. concurrent approvals of one refund request ---------------------------------------------------------
def racing_approvals(stack: Stack, sizes: Sizes) -> ScenarioResult:
    from stripe_payments.models import RefundRequest

    started = time.time()
    n = sizes.approvals
    result = ScenarioResult(f"3. {n} concurrent approvals of one refund request")
    rec = Recorder()
    _, gig, (student,) = _people(stack, "approve", price_cents=2005)
    admin = stack.new_user("admin", "approve-admin")
    s_token, a_token = stack.token(student), stack.token(admin)
    unexpected: list[str] = []
    paid = pay(stack, rec, s_token, gig.pk, key="rel-approve-" + secrets.token_hex(6))
    if paid.status != 200:
        unexpected.append(f"payment answered {paid.brief()}")
        return _finish(stack, result, rec, audit(stack, [student], charges=1), unexpected, started)
    asked = rec.add(stack.app("POST", "/stripe-payments/refunds/", token=s_token,
                              json={"payment_id": paid.body["payment_id"], "amount": 10.03, "reason": "race"},
                              headers={"Idempotency-Key": "rel-refund-" + secrets.token_hex(6)}))
    if asked.status != 201:
        unexpected.append(f"refund request answered {asked.brief()}")
        return _finish(stack, result, rec, audit(stack, [student], charges=1), unexpected, started)
    refund_id = asked.body["id"]
    answers = concurrently(n, lambda i: rec.add(stack.app(
        "POST", f"/stripe-payments/refunds/{refund_id}/approve/", token=a_token, json={"note": f"approval {i}"})))
    wins = [a for a in answers if a.status == 200]
    others = Counter(a.brief() for a in answers if a.status != 200)
    result.notes.append(f"{len(wins)} x 200, " + ", ".join(f"{k} x{c}" for k, c in others.items()))
    if len(wins) != 1 or (wins and wins[0].body.get("status") != "succeeded"):
        unexpected.append(f"{len(wins)} approvals answered 200 (expected exactly 1, status succeeded)")
    if any(a.status != 409 for a in answers if a.status != 200):
        unexpected.append("a losing approval was not answered 409: " + ", ".join(others))
    refund = RefundRequest.objects.get(pk=refund_id)
    a = audit(stack, [student], charges=1, refunds=1)
    at_stripe = [r for rs in a.refunds_by_intent.values() for r in rs]
    if refund.status != "succeeded" or refund.amount_cents != 1003 or not refund.applied:
        a.differences += 1
        a.problems.append(f"refund request {refund.pk}: {refund.status} {refund.amount_cents}c applied={refund.applied}")
    if len(at_stripe) == 1 and (at_stripe[0]["id"] != refund.stripe_refund_id or at_stripe[0]["amount"] != 1003):
        a.differences += 1
        a.problems.append(f"Stripe refund {at_stripe[0]['id']} {at_stripe[0]['amount']}c, the request records "
                          f"{refund.stripe_refund_id}")
    return _finish(stack, result, rec, a, unexpected, started)


# --- 4. confirm vs decline ----------------------------------------------------------------------------------
def confirm_vs_decline(stack: Stack, sizes: Sizes) -> ScenarioResult:
    from bookings.models import Booking

    started = time.time()
    rounds = sizes.rounds
    result = ScenarioResult(f"4. confirm vs decline, {rounds} rounds")
    rec = Recorder()
    teacher, gig, (student,) = _people(stack, "confirm-decline", price_cents=3015)
    t_token, s_token = stack.token(teacher), stack.token(student)
    unexpected: list[str] = []
    winners = Counter()
    declined = 0
    paid_rounds = 0
    for r in range(rounds):
        paid = pay(stack, rec, s_token, gig.pk, key=f"rel-cvd-{r}-{secrets.token_hex(4)}")
        if paid.status != 200 or not paid.body.get("booking_id"):
            unexpected.append(f"round {r}: payment answered {paid.brief()}")
            continue
        paid_rounds += 1
        booking_id = paid.body["booking_id"]
        actions = ["confirm", "decline"] if r % 2 == 0 else ["decline", "confirm"]
        answers = concurrently(2, lambda i, b=booking_id, acts=actions: rec.add(
            stack.app("POST", f"/bookings/{b}/{acts[i]}/", token=t_token)))
        won = [actions[i] for i, a in enumerate(answers) if a.status == 200]
        lost_answers = [a for a in answers if a.status != 200]
        booking = Booking.objects.select_related("payment").get(pk=booking_id)
        if len(won) != 1 or any(a.status != 409 for a in lost_answers):
            unexpected.append(f"round {r}: answers " + ", ".join(f"{actions[i]} {a.brief()}" for i, a in enumerate(answers)))
        if won:
            winners[won[0]] += 1
        want = {"confirm": "confirmed", "decline": "declined"}.get(won[0] if len(won) == 1 else "", "?")
        if booking.status != want:
            result.differences += 1
            result.problems.append(f"round {r}: booking {booking_id} is {booking.status}, the winner was {won}")
        if booking.status == "declined":
            declined += 1
            if booking.payment.status != "refunded" or booking.payment.refunded_cents != booking.payment.amount_cents:
                result.differences += 1
                result.problems.append(f"round {r}: declined booking {booking_id}, payment {booking.payment.status} "
                                       f"refunded {booking.payment.refunded_cents}c")
        elif booking.status == "confirmed" and booking.payment.refunded_cents:
            result.differences += 1
            result.problems.append(f"round {r}: confirmed booking {booking_id} refunded {booking.payment.refunded_cents}c")
    result.notes.append(f"confirm won {winners['confirm']}, decline won {winners['decline']}")
    a = audit(stack, [student], charges=paid_rounds, refunds=declined)
    full_refunds = sum(1 for rs in a.refunds_by_intent.values() for r in rs
                       if r["amount"] == a.intents[r["payment_intent"]]["amount"])
    if full_refunds != declined:
        a.differences += 1
        a.problems.append(f"{declined} declined booking(s), {full_refunds} full refund(s) at Stripe")
    return _finish(stack, result, rec, a, unexpected, started)


# --- 5. webhook replay and out-of-order delivery ---------------------------------------------------------------
def _wait_deliveries(stack: Stack, before: set[str], seconds: float = 30.0) -> list[dict]:
    """Wait until every event since ``before`` has a delivery that is no longer pending."""
    deadline = time.monotonic() + seconds
    data: list[dict] = []
    while time.monotonic() < deadline:
        events = {e["id"] for e in stack.stripe_list("/v1/events") if e["id"] not in before}
        data = stack.emulator("GET", "/_emulator/deliveries").get("data") or []
        done = {d.get("event_id") for d in data if d.get("status") != "pending"}
        pending = {d.get("event_id") for d in data if d.get("status") == "pending"}
        if events and events <= done and not pending & events:
            return data
        time.sleep(0.2)
    return data


def webhook_replay(stack: Stack, sizes: Sizes) -> ScenarioResult:
    import requests

    from bookings.models import Booking
    from stripe_payments.models import Payment, WebhookEvent

    started = time.time()
    n = sizes.replays
    result = ScenarioResult(f"5. webhook replay x{n}, shuffled: a 3-D Secure payment and a refund")
    rec = Recorder()
    unexpected: list[str] = []
    _, gig, (student,) = _people(stack, "webhook", price_cents=4010)
    token = stack.token(student)
    before = {e["id"] for e in stack.stripe_list("/v1/events")}
    stack.emulator("POST", "/_emulator/webhooks", url=stack.base_url + WEBHOOK, secret=stack.webhook_secret)
    try:
        first = pay(stack, rec, token, gig.pk, key="rel-3ds-" + secrets.token_hex(6), number="4000002500003155")
        redirect = (first.body or {}).get("error", {}).get("redirect_url") if isinstance(first.body, dict) else None
        if first.status != 402 or first.code != "authentication_required" or not redirect:
            unexpected.append(f"the 3-D Secure payment answered {first.brief()}, expected 402 authentication_required")
            return _finish(stack, result, rec, audit(stack, [student], charges=0, payments=1), unexpected, started)
        completed = requests.post(redirect + "/complete", allow_redirects=False, timeout=15)
        rec.requests += 1
        if completed.status_code not in (302, 303):
            unexpected.append(f"3-D Secure completion answered {completed.status_code}")
        _wait_deliveries(stack, before)
        # A partial refund too, so refund events join the replay (and may arrive before the payment's).
        admin = stack.new_user("admin", "webhook-admin")
        refunded = rec.add(stack.app("POST", "/stripe-payments/admin-refunds/", token=stack.token(admin),
                                     json={"payment_id": first.body["error"].get("payment_id"), "amount": 15.05,
                                           "reason": "replay"},
                                     headers={"Idempotency-Key": "rel-admin-refund-" + secrets.token_hex(6)}))
        if refunded.status != 201 or refunded.body.get("status") != "succeeded":
            unexpected.append(f"the admin refund answered {refunded.brief()}")
        deliveries = _wait_deliveries(stack, before)
    finally:
        stack.emulator("POST", "/_emulator/webhooks", url="")
    events = [e for e in stack.stripe_list("/v1/events") if e["id"] not in before]
    failed = [d for d in deliveries if d.get("event_id") in {e["id"] for e in events} and d.get("status") != "succeeded"]
    if failed:
        unexpected.append(f"{len(failed)} emulator deliveries not accepted: "
                          + ", ".join(f"{d['event_type']} {d.get('last_status_code')}" for d in failed))
    payment = Payment.objects.filter(student=student).first()
    booked_by_webhook = payment is not None and Booking.objects.filter(payment=payment).exists()
    result.notes.append(f"{len(events)} event(s): {', '.join(sorted(Counter(e['type'] for e in events)))}; "
                        f"booking by the webhook: {'yes' if booked_by_webhook else 'no'}")
    if not booked_by_webhook:
        unexpected.append("the delivered webhooks did not book the payment")
    posts = [e for e in events for _ in range(n)]
    random.Random(len(posts)).shuffle(posts)
    result.faults = len(posts)

    def replay(i: int) -> Answer:
        payload = json.dumps(posts[i]).encode()
        return rec.add(stack.app("POST", WEBHOOK, data=payload, headers={
            "Content-Type": "application/json", "Stripe-Signature": sign(stack.webhook_secret, payload)}))

    answers = concurrently(len(posts), replay, threads=8)
    refused = Counter(a.brief() for a in answers if a.status != 200)
    if refused:
        unexpected.append("replays not answered 200: " + ", ".join(f"{k} x{c}" for k, c in refused.items()))
    stored = Counter(WebhookEvent.objects.filter(stripe_event_id__in=[e["id"] for e in events])
                     .values_list("stripe_event_id", flat=True))
    missing = [e["id"] for e in events if stored[e["id"]] != 1]
    if missing:
        result.lost += len(missing)
        result.problems.append(f"{len(missing)} event(s) not stored exactly once: {missing[:5]}")
    statuses = Counter(WebhookEvent.objects.filter(stripe_event_id__in=[e["id"] for e in events])
                       .values_list("status", flat=True))
    if statuses.get("failed") or statuses.get("received"):
        unexpected.append(f"stored events' statuses: {dict(statuses)}")
    result.notes.append(f"stored {sum(stored.values())} event row(s) for {len(events)} event(s): {dict(statuses)}")
    a = audit(stack, [student], charges=1, refunds=1)
    if payment is not None:
        payment.refresh_from_db()
        if payment.refunded_cents != 1505:
            a.differences += 1
            a.problems.append(f"payment {payment.pk} refunded {payment.refunded_cents}c after the replays, expected 1505c")
    return _finish(stack, result, rec, a, unexpected, started)


# --- 6. a worker killed mid-payment ------------------------------------------------------------------------------
@dataclass
class Kill:
    name: str
    mode: str  # "held": Stripe never executes the call; "executed": Stripe executes it after the kill
    reconcile_first: bool
    student: Any = None
    token: str = ""
    key: str = ""
    payment_id: int | None = None
    killed_at: float = 0.0  # time.monotonic()
    takeover_s: float | None = None
    twin: Answer | None = None
    problem: str = ""


def _stripe_call_seen(stack: Stack) -> bool:
    data = stack.emulator("GET", "/_emulator/requests").get("data") or []
    return any(r.get("method") == "POST" and r.get("path") == "/v1/payment_intents" for r in data)


def _kill_mid_payment(stack: Stack, rec: Recorder, gig, kill: Kill) -> bool:
    """Send the payment, SIGKILL the worker holding it while Stripe holds or delays the call.
    True if the kill landed between the Payment commit and Stripe's answer."""
    from stripe_payments.models import IdempotencyRecord, Payment

    kill.killed_at = 0.0
    stack.emulator("DELETE", "/_emulator/requests")
    if kill.mode == "held":
        stack.emulator("POST", "/_emulator/faults", method="POST", path="/v1/payment_intents", kind="timeout",
                       count=5, seconds=8)
    else:
        stack.emulator("POST", "/_emulator/config", latency_ms=2500)
    body = json.dumps({"gig_id": gig.pk, "card_details": card()}).encode()
    conn = http.client.HTTPConnection("127.0.0.1", stack.app_port, timeout=20)
    box: dict[str, Any] = {}
    try:
        conn.connect()
        client_port = conn.sock.getsockname()[1]
        conn.request("POST", PAY, body=body, headers={
            "Content-Type": "application/json", "Authorization": f"Bearer {kill.token}", "Idempotency-Key": kill.key})
        rec.requests += 1

        def read() -> None:
            try:
                response = conn.getresponse()
                box["status"] = response.status
                box["body"] = response.read()[:300]
            except (OSError, http.client.HTTPException) as exc:
                box["error"] = type(exc).__name__

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not _stripe_call_seen(stack) and "status" not in box:
            time.sleep(0.02)
        pid = stack.worker_holding(client_port)
        if pid is None or "status" in box:
            kill.problem = f"no worker found holding the request (answer: {box.get('status')})"
            return False
        os.kill(pid, signal.SIGKILL)
        kill.killed_at = time.monotonic()
        reader.join(timeout=10)
    finally:
        conn.close()
        if kill.mode == "held":
            stack.emulator("DELETE", "/_emulator/faults")  # releases the held call, unexecuted
        else:
            if kill.killed_at:
                time.sleep(3.0)  # the delayed call runs at Stripe, answering a dead worker
            stack.emulator("POST", "/_emulator/config", latency_ms=0)
    stack.wait_workers(stack.workers, timeout=30)
    if "status" in box:
        kill.problem = f"the request was answered {box['status']} before the kill"
        return False
    payment = Payment.objects.filter(student=kill.student).first()
    record = IdempotencyRecord.objects.filter(user=kill.student, key=kill.key).first()
    linked = getattr(record, "payment_id", None) in (None, getattr(payment, "pk", None))  # where the key names it
    if payment is None or payment.status != "processing" or record is None or not record.in_flight or not linked:
        kill.problem = (f"after the kill: payment {getattr(payment, 'status', None)}, key in flight "
                        f"{getattr(record, 'in_flight', None)}")
        return False
    kill.payment_id = payment.pk
    if kill.mode == "executed":
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            found = [pi for pi in stack.stripe_list("/v1/payment_intents")
                     if (pi.get("metadata") or {}).get("payment_id") == str(payment.pk)]
            if found:
                break
            time.sleep(0.2)
        else:
            kill.problem = "Stripe never executed the delayed call"
            return False
    return True


def _twin(stack: Stack, rec: Recorder, gig, kill: Kill) -> Answer:
    return rec.add(stack.app("POST", PAY, token=kill.token, json={"gig_id": gig.pk, "card_details": card()},
                             headers={"Idempotency-Key": kill.key}))


def stale_in_flight() -> timedelta:
    """The app's stale-key takeover time, from the module that defines it."""
    import importlib

    for name in ("stripe_payments.idempotency", "stripe_payments.services.idempotency"):
        try:
            return importlib.import_module(name).stale_in_flight()
        except (ImportError, AttributeError):
            continue
    raise RuntimeError("stale_in_flight() not found in stripe_payments.idempotency")


def killed_worker(stack: Stack, sizes: Sizes) -> ScenarioResult:
    from stripe_payments.models import IdempotencyRecord

    started = time.time()
    stale = stale_in_flight()
    result = ScenarioResult("6. worker SIGKILLed mid-payment, twin after the stale-key takeover")
    rec = Recorder()
    unexpected: list[str] = []
    teacher = stack.new_user("teacher", "kill-teacher")
    gig = stack.new_gig(teacher, 5025, title="kill lesson")
    kills = [Kill("C: Stripe never got the call, reconcile first", "held", True),
             Kill("D: Stripe did the work, reconcile first", "executed", True),
             Kill("A: Stripe never got the call, twin first", "held", False),
             Kill("B: Stripe did the work, twin first", "executed", False)]
    students = []
    reconciled_early = False
    for kill in kills:
        if not kill.reconcile_first and not reconciled_early:
            # C and D are dead-worker payments: reconciliation settles them from Stripe's state
            # while their keys are still held; A and B are not killed yet.
            status, output = stack.call_command("reconcile_payments", "--older-than-minutes", "0")
            result.notes.append(f"reconcile before A/B: exit {status}, " + _last_line(output))
            if status != 0:
                unexpected.append("reconcile_payments (before A/B) exited 1: " + _last_line(output))
            reconciled_early = True
        for attempt in range(2):  # a kill that lands too late (after the answer) is tried once more
            kill.student = stack.new_user("student", f"kill-student-{kill.name[0]}{attempt}")
            students.append(kill.student)
            kill.token = stack.token(kill.student)
            kill.key = f"rel-kill-{kill.name[0]}-{secrets.token_hex(6)}"
            kill.problem = ""
            if _kill_mid_payment(stack, rec, gig, kill):
                result.faults += 1
                break
            result.notes.append(f"{kill.name}: attempt {attempt + 1} not a mid-payment kill ({kill.problem})")
        else:
            unexpected.append(f"{kill.name}: could not kill a worker mid-payment ({kill.problem})")
    live = [k for k in kills if k.payment_id is not None]
    # The twins: 409 idempotency_in_progress while the dead holder's key is fresh, then a takeover.
    for kill in live:
        early = _twin(stack, rec, gig, kill)
        if not (early.status == 409 and early.code == "idempotency_in_progress"):
            unexpected.append(f"{kill.name}: a twin before the stale time answered {early.brief()}, "
                              f"expected 409 idempotency_in_progress")
    if sizes.wait_for_stale:
        deadline = time.monotonic() + stale.total_seconds() + 60
        pending = list(live)
        while pending and time.monotonic() < deadline:
            batch = list(pending)
            answers = concurrently(len(batch), lambda i, b=batch: _twin(stack, rec, gig, b[i]))
            now = time.monotonic()
            pending = []
            for kill, answer in zip(batch, answers, strict=True):
                if answer.status == 409 and answer.code == "idempotency_in_progress":
                    pending.append(kill)
                else:
                    kill.twin = answer
                    kill.takeover_s = now - kill.killed_at
            if pending:
                time.sleep(2.0)
        for kill in pending:
            unexpected.append(f"{kill.name}: still 409 idempotency_in_progress {stale.total_seconds() + 60:.0f}s after the kill")
        result.notes.append("stale-key takeover waited for in real time")
    else:
        for kill in live:
            IdempotencyRecord.objects.filter(user=kill.student, key=kill.key).update(
                updated_at=IdempotencyRecord.objects.get(user=kill.student, key=kill.key).updated_at
                - stale - timedelta(seconds=1))
            kill.twin = _twin(stack, rec, gig, kill)
            kill.takeover_s = None
        result.notes.append(f"bounded: the dead holder's key was aged past the stale time ({stale.total_seconds():.0f}s) "
                            f"with the ORM (updated_at set back) instead of waiting")
    for kill in live:
        twin = kill.twin
        if twin is None:
            continue
        if twin.status != 200 or not isinstance(twin.body, dict) or twin.body.get("payment_id") != kill.payment_id \
                or twin.body.get("status") != "succeeded":
            unexpected.append(f"{kill.name}: the twin answered {twin.brief()} "
                              f"{(twin.body or {}).get('payment_id') if isinstance(twin.body, dict) else ''}, "
                              f"expected 200 succeeded for payment {kill.payment_id}")
        took = f", takeover {kill.takeover_s:.1f}s after the kill" if kill.takeover_s is not None else ""
        result.notes.append(f"{kill.name}: twin {twin.brief()}{took}")
    status, output = stack.call_command("reconcile_payments", "--older-than-minutes", "0")
    result.notes.append(f"reconcile after the twins: exit {status}, " + _last_line(output))
    if status != 0:
        unexpected.append("reconcile_payments exited 1: " + _last_line(output))
    takeovers = [k.takeover_s for k in live if k.takeover_s is not None]
    result.extra["stale_in_flight_s"] = stale.total_seconds()
    result.extra["takeover_s"] = max(takeovers) if takeovers else None
    result.extra["waited"] = sizes.wait_for_stale
    a = audit(stack, [k.student for k in live], charges=len(live))
    from stripe_payments.models import Payment

    for other in set(students) - {k.student for k in live}:  # an attempt that missed its kill: still no loss
        charged = Payment.objects.filter(student=other, status__in=CHARGED).count()
        extra = audit(stack, [other], charges=charged, payments=Payment.objects.filter(student=other).count())
        a.lost += extra.lost
        a.differences += extra.differences
        a.problems += extra.problems
    return _finish(stack, result, rec, a, unexpected, started)


def _last_line(output: str) -> str:
    """A command's changes ("payment 7: processing -> failed ...") and its last line."""
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    changes = [line for line in lines[:-1] if line.startswith(("payment ", "refund "))]
    return "; ".join(changes[:6] + lines[-1:])[:600]


SCENARIOS: tuple[Callable[[Stack, Sizes], ScenarioResult], ...] = (
    racing_key, many_payments, racing_approvals, confirm_vs_decline, webhook_replay, killed_worker,
)


def run_all(stack: Stack, sizes: Sizes, log=print, scenarios=SCENARIOS) -> list[ScenarioResult]:
    results = []
    for scenario in scenarios:
        started = time.monotonic()
        log(f"scenario {scenario.__name__} ...")
        try:
            reset_emulator_knobs(stack)
            result = scenario(stack, sizes)
        except Exception as exc:
            result = ScenarioResult(scenario.__name__, ok=False,
                                    detail=f"crashed: {type(exc).__name__}: {exc}".replace("\n", " ")[:500])
            log(traceback.format_exc())
        finally:
            try:
                reset_emulator_knobs(stack)
            except Exception as exc:
                log(f"could not reset the emulator's faults, latency and webhooks: {exc}")
        result.duration_s = time.monotonic() - started
        log(f"  {'PASS' if result.ok else 'FAIL'} {result.name}: {result.requests} requests, {result.faults} faults, "
            f"lost {result.lost}, doubled {result.doubled}, different {result.differences}, "
            f"max answer {result.elapsed_max_s:.2f}s, {result.duration_s:.1f}s; {result.detail}")
        results.append(result)
    return results
