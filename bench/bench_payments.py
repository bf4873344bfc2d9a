"""Benchmark: process-payment against Stripe called directly, CPU and memory per payment, lists
against /health/, each figure a ratio within one run.

    .venv/bin/python bench/bench_payments.py [--quick] [--no-write]

Starts gunicorn (production settings, 2 gthread workers x 4 threads, ``deploy/gunicorn.conf.py``)
on a throwaway PostgreSQL database with Redis and the Stripe emulator (bench/reliability/stack.py),
with the production Stripe timeouts and request deadline and THROTTLE_RATES raised out of the way.
A teacher, a gig and eight students with a saved card (4242 4242 4242 4242) are made through the
API. Then, in this order (fresh workers first, so the memory figure starts near their start):

7. worker RSS (VmRSS, summed over the workers) after 10,000 requests against after 100, a mix
   of list requests and saved-card payments from 8 client threads;
5. CPU (utime + stime, /proc/<pid>/stat) of the workers per sequential payment;
1. process-payment p50 and p95 with a saved card against the same PaymentIntent create made
   directly with the ``stripe`` SDK (amount, currency, customer, payment_method, confirm,
   off_session, metadata), sequential, alternating app and SDK, Stripe at 0 ms;
3. payments/s with 8 client threads (each its own student, a new Idempotency-Key each request)
   against SDK calls/s with 8 threads, Stripe at 0 ms;
6. each list endpoint's requests/s with 8 client threads against ``GET /health/``'s;
2. and 4. as 1. and 3. with the emulator answering 300 ms late (``latency_ms``).

Latency and rate figures are medians over 3 repetitions of ratios each computed within one
repetition (``--quick``: 1 repetition, small counts, for CI to prove it runs). Targets (issue 15):
p50 at 300 ms <= 1.05x; payments/s >= 0.40x at 0 ms and >= 0.90x at 300 ms; CPU <= 15 ms a
payment; lists >= 0.50x of /health/; RSS <= 1.20x. A benchmark, not a test: it asserts nothing.
The table goes into docs/PERFORMANCE.md between markers (not with --quick or --no-write).
Without PostgreSQL or Redis it says so and exits 0.

``run(quick, write=True)`` prints the table, writes the section (not with ``quick``) and returns
the rows ``(figure, compared to, value, target)`` for ``python -m bench``; without PostgreSQL or
Redis it prints why and returns []. One Stack per process (Django is configured once), so call it
once per process (``python -m bench`` runs each benchmark in a child).
"""

from __future__ import annotations

import datetime as _dt
import itertools
import os
import platform
import re
import secrets
import statistics
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import requests

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.reliability.stack import STRIPE_KEY, Stack, Unavailable  # noqa: E402  (ROOT on sys.path first)
from bench.report import standalone, write_section  # noqa: E402

__all__ = ["run", "main"]

DOC = ROOT / "docs" / "PERFORMANCE.md"
START, END = "<!-- bench_payments:start -->", "<!-- bench_payments:end -->"
HEADING = "Payments against Stripe called directly"

WORKERS, THREADS = 2, 4
CLIENTS = 8
SLOW_MS = 300
CARD = "4242424242424242"
PASSWORD = "bench-" + secrets.token_hex(8)
PRICE = "50.00"
PRICE_CENTS = 5000
# The app's own settings, not the reliability run's short fault timeouts (linguaflex/settings/base.py
# defaults), and throttles no benchmark client can reach.
BENCH_ENV = {
    "THROTTLE_RATES": "login_email=1000000/min,login_ip=1000000/min,register=1000000/min,payment=1000000/min",
    "STRIPE_MAX_NETWORK_RETRIES": "2",
    "STRIPE_READ_TIMEOUT": "20",
    "STRIPE_CONNECT_TIMEOUT": "5",
    "REQUEST_DEADLINE_SECONDS": "25",
}
STRIPE_ID = re.compile(r"[a-z]{2,10}_(?=[A-Za-z0-9]*[A-Z0-9])[A-Za-z0-9]+")  # pi_1Oj5..., not payment_intents
TOKEN_MAX_AGE = 20 * 60  # seconds; access tokens live 30 minutes

LISTS = [
    ("GET /gigs/", "/gigs/"),
    ("GET /stripe-payments/payments/", "/stripe-payments/payments/"),
    ("GET /bookings/", "/bookings/"),
    ("GET /stripe-payments/payment-methods/", "/stripe-payments/payment-methods/"),
]


@dataclass(frozen=True)
class Sizes:
    reps: int
    warmup: int  # sequential payments (each way) before the first repetition of a latency
    sequential: int  # sequential payments (each way) a repetition
    window: float  # seconds of a throughput window
    list_window: float
    cpu_payments: int
    rss_base: int  # requests of the mix before the first RSS reading
    rss_total: int


FULL = Sizes(reps=3, warmup=10, sequential=40, window=8.0, list_window=5.0, cpu_payments=100,
             rss_base=100, rss_total=10_000)
QUICK = Sizes(reps=1, warmup=3, sequential=15, window=2.0, list_window=1.5, cpu_payments=15,
              rss_base=100, rss_total=300)


# --- pure helpers (linguaflex/tests/test_bench_payments.py) ------------------------------------------
def percentile(samples: list[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between closest ranks (numpy's default)."""
    if not samples:
        raise ValueError("no samples")
    if not 0 <= q <= 100:
        raise ValueError("q must be within 0..100")
    ordered = sorted(samples)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator; inf for a zero denominator (nan when both are zero)."""
    if denominator == 0:
        return float("nan") if numerator == 0 else float("inf")
    return numerator / denominator


def cpu_ticks_from_stat(text: str) -> int:
    """utime + stime (clock ticks, all threads) from the text of /proc/<pid>/stat. The command
    name (field 2) is in parentheses and may hold spaces or parentheses: split after the last ')'."""
    rest = text.rsplit(")", 1)[1].split()
    # rest[0] is field 3 (state); utime and stime are fields 14 and 15.
    return int(rest[11]) + int(rest[12])


def vmrss_kb_from_status(text: str) -> int:
    """VmRSS in kB from the text of /proc/<pid>/status (0 when absent: a zombie or a kernel thread)."""
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pids: list[int]) -> float:
    """Summed user + system CPU seconds of ``pids``."""
    ticks = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as fh:
            ticks += cpu_ticks_from_stat(fh.read())
    return ticks / os.sysconf("SC_CLK_TCK")


def rss_kb(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as fh:
            total += vmrss_kb_from_status(fh.read())
    return total


def fmt_ratio(value: float) -> str:
    return f"{value:.2f}x"


def meets(value: float, target: str) -> bool | None:
    """Whether ``value`` meets a target written "<= 1.05x", ">= 0.40x" or "<= 15 ms" (None: no target)."""
    target = target.strip()
    if not target or target == "-":
        return None
    op, number = target[:2], target[2:].strip().split()[0].rstrip("x")
    bound = float(number)
    if op == "<=":
        return value <= bound
    if op == ">=":
        return value >= bound
    raise ValueError(f"unknown target {target!r}")


def markdown_table(rows: list[tuple[str, str, str, str]]) -> str:
    lines = ["| figure | compared to | value | target |", "|---|---|---|---|"]
    lines += [f"| {' | '.join(row)} |" for row in rows]
    return "\n".join(lines)


# --- the stack -------------------------------------------------------------------------------------
class BenchStack(Stack):
    """bench/reliability/stack.py's Stack with BENCH_ENV over its environment (before Django and
    the servers start)."""

    def _setup_django(self) -> None:
        self.env.update(BENCH_ENV)
        super()._setup_django()


@dataclass
class Student:
    email: str
    user_id: int
    token: str
    token_at: float
    pm: str = ""  # the saved card
    customer: str = ""  # its Stripe customer


@dataclass
class World:
    stack: Stack
    gig_id: int
    students: list[Student]
    errors: Counter = field(default_factory=Counter)  # "phase: status" -> count
    notes: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def error(self, phase: str, what: str) -> None:
        with self.lock:
            self.errors[f"{phase}: {what}"] += 1


def _must(answer, what: str, status: int = 200):
    if answer.status != status:
        raise RuntimeError(f"{what}: expected {status}, got {answer.brief()}: {str(answer.body)[:300]}")
    return answer.body


def _login(stack: Stack, email: str) -> str:
    body = _must(stack.app("POST", "/accounts/login/", json={"email": email, "password": PASSWORD}), "login")
    return body["access"]


def _register(stack: Stack, role: str, n: int) -> tuple[str, int]:
    email = f"bench-{role}-{n}-{secrets.token_hex(4)}@bench.linguaflex.test"
    body = _must(stack.app("POST", "/accounts/register/", json={
        "email": email, "password": PASSWORD, "first_name": role.title(), "last_name": f"Bench {n}",
        "role": role}), f"register {role}", 201)
    return email, body["id"]


def token_of(world: World, student: Student) -> str:
    if time.monotonic() - student.token_at > TOKEN_MAX_AGE:
        with world.lock:
            if time.monotonic() - student.token_at > TOKEN_MAX_AGE:
                student.token, student.token_at = _login(world.stack, student.email), time.monotonic()
    return student.token


def set_up(stack: Stack) -> World:
    """A teacher, a gig and CLIENTS students with a saved card, all through the API."""
    email, _ = _register(stack, "teacher", 0)
    teacher_token = _login(stack, email)
    gig = _must(stack.app("POST", "/gigs/", token=teacher_token, json={
        "title": "Benchmark lesson", "description": "", "language": "English", "price": PRICE,
        "duration_minutes": 60}), "create gig", 201)
    students = []
    year = _dt.date.today().year + 3
    for n in range(CLIENTS):
        email, user_id = _register(stack, "student", n)
        student = Student(email, user_id, _login(stack, email), time.monotonic())
        card = _must(stack.app("POST", "/stripe-payments/add-payment-method/", token=student.token,
                               headers={"Idempotency-Key": str(uuid.uuid4())},
                               json={"card_number": CARD, "exp_month": 12, "exp_year": year, "cvc": "123",
                                     "cardholder_name": f"Bench Student {n}", "save_for_future": True}),
                     "add card")
        student.pm = card["payment_method_id"]
        student.customer = stack.stripe_get(f"/v1/payment_methods/{student.pm}")["customer"] or ""
        if not student.customer:
            raise RuntimeError(f"saved card {student.pm} has no customer at the emulator")
        students.append(student)
    return World(stack, gig["id"], students)


# --- one payment, each way -------------------------------------------------------------------------
def app_payment(world: World, student: Student, session: requests.Session, phase: str) -> float | None:
    """One process-payment with the saved card: seconds it took, None if it did not succeed."""
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    token = token_of(world, student)
    started = time.perf_counter()
    answer = world.stack.app("POST", "/stripe-payments/process-payment/", token=token, headers=headers,
                             session=session, json={"gig_id": world.gig_id, "saved_payment_method_id": student.pm})
    elapsed = time.perf_counter() - started
    if answer.status != 200 or not isinstance(answer.body, dict) or answer.body.get("status") != "succeeded":
        status = answer.body.get("status") if answer.status == 200 and isinstance(answer.body, dict) else None
        world.error(phase, f"process-payment {answer.brief()}{f' {status}' if status else ''}")
        return None
    return elapsed


def sdk_client(stack: Stack):
    import stripe

    return stripe.StripeClient(STRIPE_KEY, base_addresses={"api": stack.emulator_url}, max_network_retries=0,
                               http_client=stripe.RequestsClient())


def direct_payment(world: World, student: Student, client, n: int, phase: str) -> float | None:
    """The same PaymentIntent create, straight to Stripe (the emulator) with the SDK."""
    params = {"amount": PRICE_CENTS, "currency": "usd", "customer": student.customer, "payment_method": student.pm,
              "confirm": True, "off_session": True,
              "metadata": {"payment_id": str(n), "gig_id": str(world.gig_id), "student_id": str(student.user_id),
                           "request_id": secrets.token_hex(16)}}
    started = time.perf_counter()
    try:
        intent = client.v1.payment_intents.create(params=params, options={"idempotency_key": str(uuid.uuid4())})
    except Exception as exc:  # a benchmark counts failures, it does not stop at one
        world.error(phase, f"direct SDK {type(exc).__name__}")
        return None
    elapsed = time.perf_counter() - started
    if intent.status != "succeeded":
        world.error(phase, f"direct SDK status {intent.status}")
        return None
    return elapsed


_direct_numbers = itertools.count(1)


# --- phases ----------------------------------------------------------------------------------------
def sequential(world: World, sizes: Sizes, latency_ms: int) -> list[dict]:
    """Per repetition: p50 / p95 of app and direct, alternating one of each (order swapped every step)."""
    phase = f"sequential, Stripe {latency_ms} ms"
    student = world.students[0]
    session, client = requests.Session(), sdk_client(world.stack)
    for _ in range(sizes.warmup):
        app_payment(world, student, session, phase + " (warm-up)")
        direct_payment(world, student, client, next(_direct_numbers), phase + " (warm-up)")
    reps = []
    for _ in range(sizes.reps):
        app, direct = [], []
        for i in range(sizes.sequential):
            steps = [("app", lambda: app_payment(world, student, session, phase)),
                     ("direct", lambda: direct_payment(world, student, client, next(_direct_numbers), phase))]
            for name, step in steps if i % 2 == 0 else steps[::-1]:
                seconds = step()
                if seconds is not None:
                    (app if name == "app" else direct).append(seconds)
        if not app or not direct:
            continue
        reps.append({"app_p50": percentile(app, 50), "app_p95": percentile(app, 95),
                     "direct_p50": percentile(direct, 50), "direct_p95": percentile(direct, 95)})
    return reps


def concurrent_rate(make_call: Callable[[int], Callable[[], float | None]], clients: int, seconds: float) -> float:
    """Successful calls per second of ``clients`` threads calling for ``seconds`` (each thread's
    call is ``make_call(i)``; one untimed call per thread first, so connections are open)."""
    calls = [make_call(i) for i in range(clients)]
    barrier = threading.Barrier(clients + 1)
    done = [0] * clients
    finished = [0.0] * clients
    box = {}

    def loop(i: int) -> None:
        calls[i]()
        barrier.wait()
        deadline = box["start"] + seconds
        while time.perf_counter() < deadline:
            if calls[i]() is not None:
                done[i] += 1
        finished[i] = time.perf_counter()

    threads = [threading.Thread(target=loop, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    box["start"] = time.perf_counter() + 0.05  # set before the barrier releases anyone
    barrier.wait()
    for thread in threads:
        thread.join()
    return sum(done) / (max(finished) - box["start"])


def throughput(world: World, sizes: Sizes, latency_ms: int) -> list[dict]:
    phase = f"concurrent payments, Stripe {latency_ms} ms"

    def app_maker(i: int):
        student, session = world.students[i], requests.Session()
        return lambda: app_payment(world, student, session, phase)

    def direct_maker(i: int):
        student, client = world.students[i], sdk_client(world.stack)
        return lambda: direct_payment(world, student, client, next(_direct_numbers), phase)

    reps = []
    for rep in range(sizes.reps):
        order = [("app", app_maker), ("direct", direct_maker)]
        figures = {name: concurrent_rate(maker, CLIENTS, sizes.window) for name, maker in
                   (order if rep % 2 == 0 else order[::-1])}
        reps.append(figures)
    return reps


def cpu_per_payment(world: World, sizes: Sizes) -> float:
    """Worker CPU milliseconds per sequential payment (Stripe at 0 ms)."""
    stack, student, session = world.stack, world.students[0], requests.Session()
    app_payment(world, student, session, "cpu (warm-up)")
    pids = stack.worker_pids()
    stack.emulator("POST", "/_emulator/requests/clear")
    before = cpu_seconds(pids)
    ok = sum(app_payment(world, student, session, "cpu") is not None for _ in range(sizes.cpu_payments))
    after = cpu_seconds(pids)
    if stack.worker_pids() != pids:
        world.notes.append("a worker was replaced during the CPU measurement (the figure is low)")
    calls = Counter(f"{r['method']} {stripe_path(r['path'])}" for r in stack.emulator("GET", "/_emulator/requests")["data"])
    world.notes.append(f"Stripe calls per sequential payment: {sum(calls.values()) / max(ok, 1):.2f} ("
                       + ", ".join(f"{name} x{n / max(ok, 1):.2f}" for name, n in calls.most_common()) + ")")
    return (after - before) * 1000 / max(ok, 1)


def stripe_path(path: str) -> str:
    """/v1/payment_intents/pi_123/confirm -> /v1/payment_intents/{id}/confirm (the query dropped)."""
    parts = path.split("?", 1)[0].split("/")
    return "/".join("{id}" if STRIPE_ID.fullmatch(part) else part for part in parts)


def list_call(world: World, student: Student, session: requests.Session, path: str, phase: str):
    def call() -> float | None:
        token = None if path == "/health/" else token_of(world, student)
        answer = world.stack.app("GET", path, token=token, session=session)
        if answer.status != 200:
            world.error(phase, f"GET {path} {answer.brief()}")
            return None
        return answer.elapsed
    return call


def lists(world: World, sizes: Sizes) -> list[dict]:
    phase = "lists"
    reps = []
    for _ in range(sizes.reps):
        figures = {}
        for label, path in [("/health/", "/health/"), *LISTS]:
            figures[label] = concurrent_rate(
                lambda i, path=path: list_call(world, world.students[i], requests.Session(), path, phase),
                CLIENTS, sizes.list_window)
        reps.append(figures)
    return reps


def rss_growth(world: World, sizes: Sizes) -> tuple[int, int]:
    """Worker RSS (kB) after ``rss_base`` requests of the mix and after ``rss_total``: every fifth
    a payment, the others the four lists in turn, from CLIENTS threads."""
    phase = "memory mix"
    sessions = [requests.Session() for _ in range(CLIENTS)]

    def request(i: int, k: int) -> None:
        student = world.students[i]
        if k % 5 == 0:
            app_payment(world, student, sessions[i], phase)
        else:
            list_call(world, student, sessions[i], LISTS[k % 5 - 1][1], phase)()

    def drive(first: int, stop: int) -> None:
        counter = itertools.count(first)  # next() on a count is atomic under the GIL

        def loop(i: int) -> None:
            while (k := next(counter)) < stop:
                request(i, k)

        threads = [threading.Thread(target=loop, args=(i,), daemon=True) for i in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    pids = world.stack.worker_pids()
    drive(0, sizes.rss_base)
    base = rss_kb(world.stack.worker_pids())
    drive(sizes.rss_base, sizes.rss_total)
    end = rss_kb(world.stack.worker_pids())
    if world.stack.worker_pids() != pids:
        world.notes.append("a worker was replaced during the memory measurement")
    return base, end


def set_latency(stack: Stack, ms: int) -> None:
    stack.emulator("POST", "/_emulator/config", latency_ms=ms)


# --- rows ------------------------------------------------------------------------------------------
def _median(reps: list[dict], key: str) -> float:
    return statistics.median(rep[key] for rep in reps)


def _ratio_median(reps: list[dict], num: str, den: str) -> float:
    return statistics.median(ratio(rep[num], rep[den]) for rep in reps)


def latency_rows(reps: list[dict], latency_ms: int, target: str) -> list[tuple[str, str, str, str]]:
    compared = "the same PaymentIntent create with the stripe SDK, sequential"
    if not reps:
        return [(f"process-payment p50, saved card, Stripe {latency_ms} ms", compared, "no successful repetition", target)]
    rows = []
    for q, row_target in (("p50", target), ("p95", "-")):
        value = (f"{fmt_ratio(_ratio_median(reps, f'app_{q}', f'direct_{q}'))} "
                 f"(app {_median(reps, f'app_{q}') * 1000:.1f} ms, direct {_median(reps, f'direct_{q}') * 1000:.1f} ms)")
        rows.append((f"process-payment {q}, saved card, Stripe {latency_ms} ms", compared, value, row_target))
    return rows


def throughput_row(reps: list[dict], latency_ms: int, target: str) -> tuple[str, str, str, str]:
    value = (f"{fmt_ratio(_ratio_median(reps, 'app', 'direct'))} "
             f"(app {_median(reps, 'app'):.1f}/s, direct {_median(reps, 'direct'):.1f}/s)")
    return (f"payments/s, {CLIENTS} clients, Stripe {latency_ms} ms", f"stripe SDK calls/s, {CLIENTS} threads",
            value, target)


def list_rows(reps: list[dict]) -> list[tuple[str, str, str, str]]:
    rows = []
    for label, _ in LISTS:
        value = (f"{fmt_ratio(_ratio_median(reps, label, '/health/'))} "
                 f"({_median(reps, label):.0f} vs {_median(reps, '/health/'):.0f} req/s)")
        rows.append((f"{label} req/s, {CLIENTS} clients", f"GET /health/ req/s, {CLIENTS} clients", value, ">= 0.50x"))
    return rows


@dataclass
class Result:
    rows: list[tuple[str, str, str, str]]
    notes: list[str]
    started: _dt.datetime
    seconds: float
    quick: bool


def _log(text: str) -> None:
    print(f"bench_payments: {text}", flush=True)


def _server_problems(stack: Stack) -> list[str]:
    log = stack.log_text("gunicorn")
    fives = sum(1 for line in log.splitlines() if " status=5" in line)
    problems = []
    if fives:
        problems.append(f"{fives} 5xx answer(s) in gunicorn's access log")
    for marker in ("WORKER TIMEOUT", "Traceback", "Worker exiting", "was sent SIGKILL"):
        count = log.count(marker)
        if count:
            problems.append(f"gunicorn log: {count} x {marker!r}")
    return problems


def measure(quick: bool) -> Result:
    sizes = QUICK if quick else FULL
    started, clock = _dt.datetime.now(_dt.timezone.utc), time.monotonic()
    stack = BenchStack(workers=WORKERS, threads=THREADS, log=_log, celery=True)
    stack.__enter__()  # Unavailable, or the stack is stopped again before this raises
    try:
        if stack.env.get("THROTTLE_RATES") != BENCH_ENV["THROTTLE_RATES"]:
            _log(f"note: THROTTLE_RATES is {stack.env.get('THROTTLE_RATES')!r} (Stack's), not the bench's")
        set_latency(stack, 0)
        _log("setting up a teacher, a gig and students with saved cards through the API")
        world = set_up(stack)
        load = os.getloadavg()
        _log(f"memory: {sizes.rss_total:,} requests of the mix")
        rss_base, rss_end = rss_growth(world, sizes)
        _log(f"CPU: {sizes.cpu_payments} sequential payments")
        cpu_ms = cpu_per_payment(world, sizes)
        _log("latency and throughput, Stripe at 0 ms")
        seq_fast = sequential(world, sizes, 0)
        thr_fast = throughput(world, sizes, 0)
        _log("lists against /health/")
        list_reps = lists(world, sizes)
        _log(f"latency and throughput, Stripe at {SLOW_MS} ms")
        set_latency(stack, SLOW_MS)
        try:
            seq_slow = sequential(world, sizes, SLOW_MS)
            thr_slow = throughput(world, sizes, SLOW_MS)
        finally:
            set_latency(stack, 0)
        problems = _server_problems(stack)
        workers_now = stack.worker_pids()
    finally:
        stack.stop()

    rows = [
        *latency_rows(seq_fast, 0, "-"),
        *latency_rows(seq_slow, SLOW_MS, "<= 1.05x"),
        throughput_row(thr_fast, 0, ">= 0.40x"),
        throughput_row(thr_slow, SLOW_MS, ">= 0.90x"),
        ("worker CPU per payment (utime+stime)", "-",
         f"{cpu_ms:.1f} ms ({sizes.cpu_payments} sequential payments, {WORKERS} workers)", "<= 15 ms"),
        *list_rows(list_reps),
        (f"worker RSS after {sizes.rss_total:,} requests", f"after {sizes.rss_base:,} (lists and payments, 4:1)",
         f"{fmt_ratio(ratio(rss_end, rss_base))} ({rss_base / 1024:.1f} MB -> {rss_end / 1024:.1f} MB, {WORKERS} workers)",
         "<= 1.20x"),
    ]
    notes = list(world.notes)
    errors = sorted(world.errors.items())
    notes.append("client-side failures: " + ("none" if not errors else "; ".join(f"{k} x{v}" for k, v in errors)))
    notes.append("server: " + ("no 5xx, no worker timeout or traceback in gunicorn's log" if not problems
                               else "; ".join(problems)))
    if len(workers_now) != WORKERS:
        notes.append(f"{len(workers_now)} workers alive at the end (expected {WORKERS})")
    notes.append(f"load average at the start of the measurements: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    return Result(rows, notes, started, time.monotonic() - clock, quick)


def run(quick: bool, write: bool = True) -> list[tuple[str, str, str, str]]:
    """Measure, print the table, write its section of PERFORMANCE.md (``write`` and not ``quick``)
    and return the rows (figure, compared to, value, target); [] without PostgreSQL or Redis."""
    try:
        result = measure(quick)
    except Unavailable as exc:
        print(f"bench_payments: skipped, {exc}")
        return []
    text = report(result)
    print(text)
    if write and not quick:
        write_section(DOC, START, END, text, heading=HEADING)
    return result.rows


def report(result: Result) -> str:
    sizes = QUICK if result.quick else FULL
    table = markdown_table(result.rows)
    met = [meets(float(row[2].split()[0].rstrip("x")), row[3]) for row in result.rows
           if row[3] not in ("", "-") and row[2][:1].isdigit()]
    lines = [
        table, "",
        f"Targets met: {sum(1 for m in met if m)} of {len(met)}.", "",
        f"Run {result.started:%Y-%m-%d %H:%M} UTC on {platform.node()} ({platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}), {result.seconds:.0f} s{', --quick' if result.quick else ''}. "
        f"gunicorn with production settings, {WORKERS} gthread workers x {THREADS} threads, PostgreSQL, Redis, "
        f"the Stripe emulator (latency_ms 0 or {SLOW_MS}); production Stripe timeouts, THROTTLE_RATES raised, "
        "e-mail to the dummy backend. The clients run on the same machine as the servers.",
        f"Latency: {sizes.sequential} sequential payments each way a repetition (after {sizes.warmup} warm-up), "
        f"app and SDK alternating; rates: {sizes.window:g} s windows ({sizes.list_window:g} s for lists) of "
        f"{CLIENTS} client threads; medians over {sizes.reps} repetition(s) of ratios computed within one. "
        f"Lists are read as students (their own payments, bookings and cards), 20 rows a page.",
    ]
    lines += [f"- {note}" for note in result.notes]
    return "\n".join(lines)


def main() -> int:
    return standalone(__doc__, run, quick_help="small counts, 1 repetition (proves it runs)")


if __name__ == "__main__":
    sys.exit(main())
