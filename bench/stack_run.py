"""``make stack-test``: the production stack (deploy/stack.py) under load while its parts die.

Starts ``make stack`` from nothing (``up --fresh``), then 10 students make 300 payments through
nginx (each payment with its own Idempotency-Key; a connection error or a 502/503/504 is retried
with the same key, as a client should). A third of the way in, one app instance is killed (SIGKILL
to its process group) and started again; two thirds in, the Celery worker is. Then it waits for
every webhook event and e-mail to be applied and checks, from both sides:

- every payment was answered, in the end with 200 succeeded;
- every PaymentIntent Stripe (the emulator) charged has exactly one payment and one booking here,
  and the other way round;
- every webhook event the emulator sent is stored once and applied (processed or ignored), none
  unapplied or failed;
- no e-mail was sent twice (each message's ``X-LinguaFlex-Email-Key`` is unique in ``.stack/mail/``)
  and none is left pending;
- one payment's request id is in an app instance's log, in the Celery worker's log (its receipt's
  task), in the PaymentIntent's metadata at the emulator, and on the payment's admin page;
- ``/metrics/`` of the instances and the worker moved: payments, requests, Stripe calls, webhook
  events, tasks;
- ``check_stripe_consistency`` finds nothing.

It prints the figures and exits 1 if any of these fails. The stack is stopped at the end (``--keep``
leaves it running for a look).
"""

from __future__ import annotations

import argparse
import email
import importlib.util
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("linguaflex_deploy_stack", ROOT / "deploy" / "stack.py")
stack = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(stack)

BASE = f"http://127.0.0.1:{stack.NGINX_PORT}"
PAY = "/stripe-payments/process-payment/"
PASSWORD = "Stack-run-password-42"
RETRYABLE = {502, 503, 504}
GENEROUS_RATES = "login_email=10000/min,login_ip=10000/min,register=10000/min,payment=10000/min"


@dataclass
class Outcome:
    key: str
    status: int | None = None
    body: dict = field(default_factory=dict)
    tries: int = 0
    seconds: float = 0.0
    transient: Counter = field(default_factory=Counter)


@dataclass
class Run:
    outcomes: list[Outcome] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    figures: dict[str, object] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, text: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        with self.lock:
            self.events.append(f"{stamp} {text}")
        print(f"stack-run: {text}", flush=True)

    def check(self, ok: bool, problem: str) -> bool:
        if not ok:
            self.problems.append(problem)
            print(f"stack-run: FAIL {problem}", flush=True)
        return ok


# --- the app, over HTTP ------------------------------------------------------------------------------
def call(session: requests.Session, method: str, path: str, *, token: str | None = None, json_body=None,
         headers: dict | None = None, timeout: float = 60.0) -> requests.Response:
    sent = {"Accept": "application/json", **(headers or {})}
    if token:
        sent["Authorization"] = f"Bearer {token}"
    return session.request(method, BASE + path, json=json_body, headers=sent, timeout=timeout)


def user(session: requests.Session, role: str, label: str) -> tuple[str, int]:
    email = f"{label}-{secrets.token_hex(4)}@stack.linguaflex.test"
    made = call(session, "POST", "/accounts/register/", json_body={"email": email, "password": PASSWORD,
                                                                   "role": role, "first_name": label})
    made.raise_for_status()
    login = call(session, "POST", "/accounts/login/", json_body={"email": email, "password": PASSWORD})
    login.raise_for_status()
    return login.json()["access"], made.json()["id"]


def card(number: str = "4242424242424242") -> dict:
    return {"card_number": number, "exp_month": 12, "exp_year": time.gmtime().tm_year + 3, "cvc": "123",
            "cardholder_name": "Stack Run"}


def pay(session: requests.Session, token: str, gig_id: int, body: dict, *, attempts: int = 30) -> Outcome:
    outcome = Outcome(key="stack-" + secrets.token_hex(12))
    started = time.perf_counter()
    for attempt in range(attempts):
        outcome.tries += 1
        try:
            answer = call(session, "POST", PAY, token=token, json_body={"gig_id": gig_id, **body},
                          headers={"Idempotency-Key": outcome.key})
        except requests.RequestException as exc:
            outcome.transient[type(exc).__name__] += 1
            time.sleep(min(2.0, 0.2 * (attempt + 1)))
            continue
        if answer.status_code in RETRYABLE or (answer.status_code == 409 and _in_progress(answer)):
            outcome.transient[str(answer.status_code)] += 1
            time.sleep(min(2.0, 0.2 * (attempt + 1)))
            continue
        outcome.status = answer.status_code
        try:
            outcome.body = answer.json()
        except ValueError:
            outcome.body = {"raw": answer.text[:200]}
        break
    outcome.seconds = time.perf_counter() - started
    return outcome


def _in_progress(answer: requests.Response) -> bool:
    """The contract's 409 for a key whose first request is still running: try again later."""
    try:
        return answer.json()["error"]["code"] == "idempotency_in_progress"
    except (ValueError, KeyError, TypeError):
        return False


# --- the stack's database and emulator ------------------------------------------------------------
def db():
    import psycopg

    return psycopg.connect(stack.database_url(), autocommit=True)


def scalar(sql: str, *params):
    with db() as conn:
        return conn.execute(sql, params).fetchone()[0]


def emulator_list(path: str) -> list[dict]:
    items, after = [], None
    while True:
        params = {"limit": 100, **({"starting_after": after} if after else {})}
        page = requests.get(f"http://127.0.0.1:{stack.EMULATOR_PORT}{path}", params=params, timeout=30,
                            headers={"Authorization": "Bearer sk_test_linguaflex_stack"}).json()
        items += page["data"]
        if not page.get("has_more"):
            return items
        after = page["data"][-1]["id"]


def metric_sum(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        if head.split("{", 1)[0] != name:
            continue
        if all(f'{key}="{val}"' in head for key, val in labels.items()):
            total += float(value)
    return total


def scrape(state: dict) -> dict[str, str]:
    texts = {}
    for port in stack.APP_PORTS:
        try:
            texts[f"web-{port}"] = requests.get(f"http://127.0.0.1:{port}/metrics/", timeout=10, headers={
                "Authorization": f"Bearer {state['metrics_token']}"}).text
        except requests.RequestException:
            texts[f"web-{port}"] = ""
    try:
        texts["worker"] = requests.get(f"http://127.0.0.1:{stack.WORKER_METRICS_PORT}/metrics", timeout=10).text
    except requests.RequestException:
        texts["worker"] = ""
    return texts


def kill(name: str, run: Run) -> None:
    state = stack.read_state()
    pid = state["pids"][name]
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while stack.alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    run.note(f"killed {name} (SIGKILL to process group {pid})")


def wait_until(predicate, seconds: float, pause: float = 1.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(pause)
    return predicate()


# --- the run ---------------------------------------------------------------------------------------
def load(run: Run, *, students: int, payments: int) -> None:
    session = requests.Session()
    teacher_token, _ = user(session, "teacher", "teacher")
    gig = call(session, "POST", "/gigs/", token=teacher_token, json_body={
        "title": "Stack run lesson", "language": "English", "price": "42.50", "duration_minutes": 60})
    gig.raise_for_status()
    gig_id = gig.json()["id"]
    tokens = [user(session, "student", f"student{n}")[0] for n in range(students)]
    run.note(f"{students} students and gig {gig_id} (42.50 USD) made; {payments} payments begin")

    per_student = [payments // students + (1 if n < payments % students else 0) for n in range(students)]
    done = Counter()
    kills = {payments // 3: "web-8101", (2 * payments) // 3: "worker"}
    fired: set[str] = set()

    def chaos() -> None:
        for threshold, name in sorted(kills.items()):
            while True:
                with run.lock:
                    reached = done["n"] >= threshold
                if reached:
                    break
                time.sleep(0.05)
            kill(name, run)
            fired.add(name)
            time.sleep(2.0)  # requests meet the dead part meanwhile
            started = time.perf_counter()
            stack.restart(name)
            run.note(f"restarted {name} in {time.perf_counter() - started:.1f} s")

    def student(index: int) -> None:
        own = requests.Session()
        saved_pm = None
        for n in range(per_student[index]):
            if n == 0:
                body = {"card_details": card(), "save_card": True}
            elif saved_pm:
                body = {"saved_payment_method_id": saved_pm}
            else:
                body = {"card_details": card()}
            outcome = pay(own, tokens[index], gig_id, body)
            if n == 0 and outcome.status == 200:
                saved_pm = outcome.body.get("payment_method_id")
            with run.lock:
                run.outcomes.append(outcome)
                done["n"] += 1

    chaos_thread = threading.Thread(target=chaos, daemon=True)
    chaos_thread.start()
    started = time.perf_counter()
    threads = [threading.Thread(target=student, args=(n,)) for n in range(students)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    run.figures["load seconds"] = round(time.perf_counter() - started, 1)
    chaos_thread.join(timeout=60)
    run.check(fired == set(kills.values()), f"not every planned kill happened: {sorted(fired)}")


def audit(run: Run, state: dict, *, payments: int, before: dict[str, str]) -> None:
    outcomes = run.outcomes
    answered = [o for o in outcomes if o.status is not None]
    succeeded = [o for o in outcomes if o.status == 200 and o.body.get("status") == "succeeded"]
    run.figures["payments asked"] = len(outcomes)
    run.figures["answered"] = len(answered)
    run.figures["succeeded"] = len(succeeded)
    run.figures["retried with the same key"] = sum(1 for o in outcomes if o.tries > 1)
    run.figures["transient answers seen"] = dict(sum((o.transient for o in outcomes), Counter()))
    seconds = sorted(o.seconds for o in outcomes)
    if seconds:
        run.figures["payment seconds p50 / p95 / max"] = (
            round(statistics.median(seconds), 3), round(seconds[int(0.95 * (len(seconds) - 1))], 3),
            round(seconds[-1], 3))
    run.check(len(outcomes) == payments and len(answered) == payments,
              f"{payments - len(answered)} of {payments} payments never answered")
    run.check(len(succeeded) == payments, "not every payment succeeded: "
              + str(Counter((o.status, o.body.get("error", {}).get("code")) for o in outcomes if o not in succeeded)))

    # Stripe's side against ours, PaymentIntent by PaymentIntent.
    intents = [pi for pi in emulator_list("/v1/payment_intents") if pi["status"] == "succeeded"]
    with db() as conn:
        rows = conn.execute(
            "SELECT p.stripe_payment_intent_id, count(*), count(b.id) FROM stripe_payments_payment p "
            "LEFT JOIN bookings_booking b ON b.payment_id = p.id WHERE p.status = 'succeeded' "
            "GROUP BY p.stripe_payment_intent_id").fetchall()
    ours = {row[0]: (row[1], row[2]) for row in rows}
    charged = {pi["id"] for pi in intents}
    run.figures["PaymentIntents succeeded at Stripe"] = len(charged)
    run.figures["payments succeeded here"] = len(ours)
    run.check(charged == set(ours), f"Stripe and the database differ: {len(charged - set(ours))} charges with "
              f"no payment, {len(set(ours) - charged)} payments with no charge")
    run.check(all(counts == (1, 1) for counts in ours.values()),
              "a charge with more than one payment or not exactly one booking: "
              + str([pi for pi, counts in ours.items() if counts != (1, 1)][:5]))

    # Webhook events: everything sent is stored once and applied.
    def settled() -> bool:
        return scalar("SELECT count(*) FROM stripe_payments_webhookevent WHERE status IN ('received', 'failed')") == 0

    run.check(wait_until(settled, 180), "webhook events still unapplied after 180 s: " + str(scalar(
        "SELECT count(*) FROM stripe_payments_webhookevent WHERE status IN ('received', 'failed')")))
    sent_events = {event["id"] for event in emulator_list("/v1/events")}
    with db() as conn:
        stored = Counter(dict(conn.execute(
            "SELECT status, count(*) FROM stripe_payments_webhookevent GROUP BY status").fetchall()))
        stored_ids = {row[0] for row in conn.execute("SELECT stripe_event_id FROM stripe_payments_webhookevent")}
        retried = conn.execute("SELECT count(*) FROM stripe_payments_webhookevent WHERE attempts > 1").fetchone()[0]
    run.figures["webhook events at Stripe / stored / by status"] = (len(sent_events), len(stored_ids), dict(stored))
    run.figures["webhook events applied after a retry"] = retried
    run.check(sent_events <= stored_ids, f"{len(sent_events - stored_ids)} events Stripe sent are not stored")

    # E-mails: each once.
    def mails_done() -> bool:
        return scalar("SELECT count(*) FROM linguaflex_outboundemail WHERE status = 'pending'") == 0

    run.check(wait_until(mails_done, 240, 2.0), "e-mails still pending after 240 s: "
              + str(scalar("SELECT count(*) FROM linguaflex_outboundemail WHERE status = 'pending'")))
    keys = Counter()
    for path in stack.MAIL_DIR.glob("*"):
        # The file backend writes each message after the other, separated by a line of dashes.
        for text in path.read_text(errors="replace").split("\n" + "-" * 79 + "\n"):
            if text.strip():
                key = email.message_from_string(text.lstrip())["X-LinguaFlex-Email-Key"]
                keys[" ".join((key or "").split())] += 1
    doubled = {key: n for key, n in keys.items() if n > 1}
    run.figures["e-mails sent / distinct"] = (sum(keys.values()), len(keys))
    run.check(not doubled, f"e-mails sent twice: {list(doubled.items())[:5]}")
    run.check(len(keys) >= payments, f"only {len(keys)} e-mails for {payments} payments (a receipt each)")

    trace(run, state)
    metrics_moved(run, state, before)

    status = subprocess.run([sys.executable, "manage.py", "check_stripe_consistency"], cwd=ROOT,
                            env=stack.app_env(state), capture_output=True, text=True, timeout=600)
    run.figures["check_stripe_consistency"] = "clean" if status.returncode == 0 else "differences"
    run.check(status.returncode == 0, "check_stripe_consistency: " + (status.stdout + status.stderr)[-800:])


def trace(run: Run, state: dict) -> None:
    """One payment's request id: app log, worker log, Stripe metadata, admin page."""
    with db() as conn:
        payment_id, intent_id, request_id = conn.execute(
            "SELECT id, stripe_payment_intent_id, request_id FROM stripe_payments_payment "
            "WHERE status = 'succeeded' AND request_id <> '' ORDER BY id LIMIT 1").fetchone()
    run.figures["traced payment / request id"] = (payment_id, request_id)

    def logged(name: str) -> bool:
        path = stack.LOG_DIR / f"{name}.log"
        return path.exists() and f'"request_id": "{request_id}"' in path.read_text(errors="replace")

    run.check(any(logged(f"web-{port}") for port in stack.APP_PORTS), "request id not in an app instance's log")
    run.check(wait_until(lambda: logged("worker"), 60), "request id not in the Celery worker's log")
    intent = requests.get(f"http://127.0.0.1:{stack.EMULATOR_PORT}/v1/payment_intents/{intent_id}", timeout=30,
                          headers={"Authorization": "Bearer sk_test_linguaflex_stack"}).json()
    run.check(intent.get("metadata", {}).get("request_id") == request_id,
              f"PaymentIntent {intent_id} metadata has {intent.get('metadata')}")
    admin_email = f"admin-{secrets.token_hex(4)}@stack.linguaflex.test"
    subprocess.run([sys.executable, "manage.py", "createsuperuser", "--noinput", "--email", admin_email], cwd=ROOT,
                   env={**stack.app_env(state), "DJANGO_SUPERUSER_PASSWORD": PASSWORD}, check=True,
                   capture_output=True, timeout=120)
    # Production cookies are Secure; this stack is plain HTTP on loopback (a browser allows that
    # on localhost, requests does not), so the cookies are passed on by hand.
    login_page = requests.get(f"{BASE}/admin/login/", timeout=30)
    csrf = login_page.cookies.get("csrftoken")
    logged_in = requests.post(f"{BASE}/admin/login/?next=/admin/", timeout=30, allow_redirects=False,
                              headers={"Cookie": f"csrftoken={csrf}", "Referer": f"{BASE}/admin/login/"},
                              data={"username": admin_email, "password": PASSWORD, "csrfmiddlewaretoken": csrf})
    session_id = logged_in.cookies.get("sessionid")
    page = requests.get(f"{BASE}/admin/stripe_payments/payment/{payment_id}/change/", timeout=30,
                        headers={"Cookie": f"sessionid={session_id}; csrftoken={csrf}"})
    run.check(page.status_code == 200 and request_id in page.text,
              f"request id not on the payment's admin page (HTTP {page.status_code})")


def metrics_moved(run: Run, state: dict, before: dict[str, str]) -> None:
    after = scrape(state)
    web_after = "\n".join(after[f"web-{port}"] for port in stack.APP_PORTS)
    web_before = "\n".join(before[f"web-{port}"] for port in stack.APP_PORTS)
    figures = {
        "payments succeeded": (metric_sum(web_before, "linguaflex_payments_total", outcome="succeeded"),
                               metric_sum(web_after, "linguaflex_payments_total", outcome="succeeded")),
        "requests": (metric_sum(web_before, "linguaflex_http_request_duration_seconds_count"),
                     metric_sum(web_after, "linguaflex_http_request_duration_seconds_count")),
        "Stripe calls": (metric_sum(web_before, "linguaflex_stripe_call_duration_seconds_count"),
                         metric_sum(web_after, "linguaflex_stripe_call_duration_seconds_count")),
        "webhook events (worker)": (metric_sum(before["worker"], "linguaflex_webhook_events_total"),
                                    metric_sum(after["worker"], "linguaflex_webhook_events_total")),
        "tasks (worker)": (metric_sum(before["worker"], "linguaflex_celery_tasks_total"),
                           metric_sum(after["worker"], "linguaflex_celery_tasks_total")),
    }
    run.figures["metrics before -> after"] = figures
    for name, (was, now) in figures.items():
        run.check(now > was, f"/metrics: {name} did not move ({was} -> {now})")
    for gauge in ("linguaflex_webhook_events_unapplied", "linguaflex_celery_queue_depth"):
        run.check(gauge in web_after, f"/metrics has no {gauge}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--payments", type=int, default=300)
    parser.add_argument("--students", type=int, default=10)
    parser.add_argument("--keep", action="store_true", help="leave the stack running at the end")
    args = parser.parse_args(argv)
    os.environ.setdefault("STACK_THROTTLE_RATES", GENEROUS_RATES)
    run = Run()
    try:
        state = stack.up(fresh=True, latency_ms=0)
    except stack.StackError as exc:
        if os.environ.get("CI", "").lower() == "true":
            print(f"stack-run: FAIL the stack did not start: {exc}", file=sys.stderr)
            return 1
        print(f"stack-run: skipped, the stack cannot start here: {exc}", file=sys.stderr)
        return 0
    try:
        before = scrape(state)
        load(run, students=args.students, payments=args.payments)
        audit(run, state, payments=args.payments, before=before)
    except Exception as exc:  # the figures so far, and the reason
        run.check(False, f"{type(exc).__name__}: {exc}")
    finally:
        if not args.keep:
            stack.down()
    print("\n== stack run: figures")
    for name, value in run.figures.items():
        print(f"  {name}: {json.dumps(value) if isinstance(value, (dict, list, tuple)) else value}")
    print("== events")
    for line in run.events:
        print(f"  {line}")
    if run.problems:
        print(f"== {len(run.problems)} problem(s)")
        for problem in run.problems:
            print(f"  - {problem}")
        return 1
    print("== every invariant held")
    return 0


if __name__ == "__main__":
    sys.exit(main())
