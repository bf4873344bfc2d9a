"""Benchmark: the webhook endpoint's latency against ``/health/``'s, with Stripe slow (300 ms a call).

    .venv/bin/python bench/bench_webhook.py [--quick] [--no-write]

The webhook view verifies the signature, stores the event under its unique id and hands it to a
Celery task: it makes no Stripe call and takes no payment lock, so a slow Stripe does not slow it.
This starts the production stack (deploy/stack.py: nginx, two gunicorn instances, a Celery worker
and beat, PostgreSQL, Redis, the emulator with ``--latency-ms 300``), then, in the same run and
through nginx, alternates signed ``payment_intent.succeeded`` deliveries (each a new event id, for
a PaymentIntent the worker then reads from the slow emulator) with ``GET /health/`` from four
client threads, and prints p50/p95 of each and the ratio of the p95s (the target is under 3x).
The table goes into docs/PERFORMANCE.md between markers. A benchmark, not a test: it asserts
nothing. Without PostgreSQL, Redis or nginx it says so and exits 0.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import json
import os
import platform
import secrets
import statistics
import sys
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.report import standalone, write_section  # noqa: E402
from bench.stack_run import BASE, stack  # noqa: E402  (ROOT on sys.path first)

DOC = ROOT / "docs" / "PERFORMANCE.md"
START, END = "<!-- bench_webhook:start -->", "<!-- bench_webhook:end -->"
LATENCY_MS = 300
THREADS = 4


def signed(secret: str, payload: bytes) -> str:
    ts = int(time.time())
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def event_payload(n: int) -> bytes:
    intent = f"pi_bench_{secrets.token_hex(8)}"
    return json.dumps({
        "id": f"evt_bench_{n}_{secrets.token_hex(6)}", "object": "event", "api_version": "2025-03-31.basil",
        "created": int(time.time()), "livemode": False, "pending_webhooks": 1, "type": "payment_intent.succeeded",
        "request": {"id": None, "idempotency_key": None},
        "data": {"object": {"id": intent, "object": "payment_intent", "amount": 5000, "currency": "usd",
                            "status": "succeeded", "metadata": {}}},
    }).encode()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def measure(secret: str, rounds: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"webhook": [], "health": []}
    errors: list[str] = []
    lock = threading.Lock()
    counter = iter(range(10**9))

    def client() -> None:
        session = requests.Session()
        for _ in range(rounds):
            n = next(counter)
            payload = event_payload(n)
            started = time.perf_counter()
            answer = session.post(f"{BASE}/stripe-payments/webhook/", data=payload, timeout=30, headers={
                "Content-Type": "application/json", "Stripe-Signature": signed(secret, payload)})
            webhook = time.perf_counter() - started
            started = time.perf_counter()
            health = session.get(f"{BASE}/health/", timeout=30)
            health_seconds = time.perf_counter() - started
            with lock:
                if answer.status_code != 200 or health.status_code != 200:
                    errors.append(f"webhook {answer.status_code}, health {health.status_code}")
                times["webhook"].append(webhook)
                times["health"].append(health_seconds)

    for _ in range(3):  # warm-up: connections, the workers' first requests
        requests.get(f"{BASE}/health/", timeout=30)
    threads = [threading.Thread(target=client) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        print(f"bench_webhook: {len(errors)} non-200 answers, e.g. {errors[:3]}")
    return times


def table(times: dict[str, list[float]]) -> str:
    webhook95, health95 = percentile(times["webhook"], 0.95), percentile(times["health"], 0.95)
    rows = [
        "| endpoint (through nginx, Stripe at 300 ms) | requests | p50 ms | p95 ms |",
        "|---|---|---|---|",
        *(f"| `{name}` | {len(values)} | {statistics.median(values) * 1000:.1f} | "
          f"{percentile(values, 0.95) * 1000:.1f} |"
          for name, values in (("POST /stripe-payments/webhook/", times["webhook"]),
                               ("GET /health/", times["health"]))),
        "",
        f"Webhook p95 / health p95: **{webhook95 / health95:.2f}x** (target: under 3x).",
        "",
        f"Run {_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.node()} ({os.cpu_count()} cores, "
        f"Python {platform.python_version()}); {THREADS} client threads, each alternating one delivery and one "
        "health check; two gunicorn instances (2 workers x 4 threads) behind nginx, a Celery worker applying "
        "the events meanwhile.",
    ]
    return "\n".join(rows)


def write_doc(text: str) -> None:
    write_section(DOC, START, END, text, heading="Webhook endpoint vs /health/ (Stripe at 300 ms)")


def run(quick: bool, write: bool = True) -> list[tuple[str, str, str, str]]:
    """Measure; returns the issue's table row (figure, compared to, value, target)."""
    try:
        state = stack.up(fresh=True, latency_ms=LATENCY_MS)
    except stack.StackError as exc:
        print(f"bench_webhook: skipped, the stack cannot start here: {exc}")
        return []
    try:
        times = measure(state["webhook_secret"], 25 if quick else 100)
    finally:
        stack.down()
    text = table(times)
    print(text)
    if write and not quick:
        write_doc(text)
    webhook95, health95 = percentile(times["webhook"], 0.95), percentile(times["health"], 0.95)
    return [(f"webhook p95 through nginx, Stripe at {LATENCY_MS} ms", "/health/ p95, same run",
             f"{webhook95 / health95:.2f}x ({webhook95 * 1000:.1f} vs {health95 * 1000:.1f} ms)", "< 3x")]


def main() -> int:
    return standalone(__doc__, run, quick_help="25 rounds a thread instead of 100")


if __name__ == "__main__":
    sys.exit(main())
