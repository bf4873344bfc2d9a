"""Benchmark: PaymentIntent create+confirm per second against the Stripe emulator.

    .venv/bin/python bench/bench_emulator.py [--quick]

Four client threads, each with its own ``stripe.StripeClient`` over ``stripe.RequestsClient``
(keep-alive sessions), call ``payment_intents.create(amount, currency, confirm=true,
payment_method=pm_card_visa)`` for a fixed time against:

1. a trivial keep-alive HTTP server answering a fixed JSON PaymentIntent body: the limit of this
   client on this machine;
2. the emulator holding 10 PaymentIntents;
3. the emulator holding 100,000 PaymentIntents (with their charges and events).

Each server runs in a child process (as the emulator does under ``make run``); the emulator's
store is pre-filled there, in-process, through its state object. Webhooks are off. Everything
stays on 127.0.0.1. The table is printed and written to docs/PERFORMANCE.md between markers, so
a rerun replaces it. This is a benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.report import write_section  # noqa: E402  (ROOT on sys.path first)

DOC = ROOT / "docs" / "PERFORMANCE.md"
START, END = "<!-- bench_emulator:start -->", "<!-- bench_emulator:end -->"
THREADS = 4
PARAMS = {"amount": 5000, "currency": "usd", "confirm": True, "payment_method": "pm_card_visa"}


# --- servers (child processes) -------------------------------------------------------------------

def _fixed_body() -> bytes:
    """A realistic succeeded PaymentIntent body, built by the emulator's own builders."""
    from stripe_emulator import objects

    pi = objects.payment_intent(
        piid=objects.new_id("pi"), now=int(time.time()), amount=5000, currency="usd",
        capture_method="automatic_async", customer=None, description=None, metadata={},
        payment_method_types=None, receipt_email=None, setup_future_usage=None,
        transfer_data=None, application_fee_amount=None, on_behalf_of=None,
        transfer_group=None, statement_descriptor=None, statement_descriptor_suffix=None)
    pi.update(status="succeeded", amount_received=5000, payment_method=objects.new_id("pm"),
              latest_charge=objects.new_id("ch"))
    return json.dumps(pi, separators=(",", ":")).encode()


def serve_trivial() -> None:
    body = _fixed_body()

    class Fixed(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self):
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, *args):
            pass

        def _answer(self):
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: " + str(len(body)).encode() +
                             b"\r\nConnection: keep-alive\r\n\r\n" + body)

        do_GET = do_POST = _answer

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        block_on_close = False

    server = Server(("127.0.0.1", 0), Fixed)
    print(f"READY http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


def prefill(state, count: int) -> None:
    """Store ``count`` succeeded PaymentIntents with a charge and an event each, directly."""
    from stripe_emulator import cards, objects

    card = cards.summary_for_test_number("4242424242424242")
    pm = objects.payment_method(pmid=objects.new_id("pm"), now=state.now(), card=card)
    state.add(pm, meta={"behaviour": "success", "authenticated": False, "consumed": True})
    now = state.now()

    def objs():
        for _ in range(count):
            pi = objects.payment_intent(
                piid=objects.new_id("pi"), now=now, amount=5000, currency="usd",
                capture_method="automatic_async", customer=None, description=None, metadata={},
                payment_method_types=None, receipt_email=None, setup_future_usage=None,
                transfer_data=None, application_fee_amount=None, on_behalf_of=None,
                transfer_group=None, statement_descriptor=None, statement_descriptor_suffix=None)
            ch = objects.charge(chid=objects.new_id("ch"), now=now, pi=pi, pm=pm, captured=True,
                                paid=True, failure_code=None, failure_message=None,
                                decline_code=None, balance_transaction=None,
                                three_d_secure=False)
            pi.update(status="succeeded", amount_received=5000, payment_method=pm["id"],
                      latest_charge=ch["id"])
            yield pi
            yield ch
            yield objects.event(evid=objects.new_id("evt"), now=now,
                                type_="payment_intent.succeeded", obj=pi, request_id=None,
                                idempotency_key=None, previous_attributes=None,
                                pending_webhooks=0)

    state.bulk_add(objs())


def serve_emulator(count: int) -> None:
    from stripe_emulator.emulator import Emulator
    from stripe_emulator.server import EmulatorServer

    emulator = Emulator()
    started = time.perf_counter()
    prefill(emulator.state, count)
    fill_s = time.perf_counter() - started
    server = EmulatorServer(emulator, 0)
    stored = len(emulator.state.lists["payment_intent"])
    print(f"READY {server.base_url} {stored} {fill_s:.2f}", flush=True)
    server.serve_forever()


# --- client --------------------------------------------------------------------------------------

def start_child(*args: str) -> tuple[subprocess.Popen, list[str]]:
    proc = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE,
                            text=True, cwd=str(ROOT))
    line = proc.stdout.readline().split()
    if not line or line[0] != "READY":
        proc.kill()
        raise RuntimeError(f"server did not start: {line}")
    return proc, line[1:]


def measure(base_url: str, seconds: float, warmup: float) -> tuple[float, int, int]:
    """Requests per second from THREADS clients over ``seconds`` (after ``warmup``)."""
    import stripe

    stop_at = [0.0]
    counting = threading.Event()
    done = threading.Event()
    counts = [0] * THREADS
    errors = [0] * THREADS

    def worker(i: int) -> None:
        client = stripe.StripeClient("sk_test_bench", base_addresses={"api": base_url},
                                     http_client=stripe.RequestsClient(),
                                     max_network_retries=0)
        while not done.is_set():
            try:
                client.v1.payment_intents.create(params=PARAMS)
            except stripe.StripeError:
                errors[i] += 1
                continue
            if counting.is_set() and time.perf_counter() < stop_at[0]:
                counts[i] += 1

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(THREADS)]
    for t in threads:
        t.start()
    time.sleep(warmup)
    start = time.perf_counter()
    stop_at[0] = start + seconds
    counting.set()
    time.sleep(seconds)
    done.set()
    for t in threads:
        t.join(timeout=10)
    return sum(counts) / seconds, sum(counts), sum(errors)


def write_doc(text: str) -> None:
    write_section(DOC, START, END, text)


def run(quick: bool, write: bool) -> None:
    seconds, warmup = (3.0, 1.0) if quick else (10.0, 2.0)
    rows = []
    proc, info = start_child("--serve", "trivial")
    try:
        limit, n, errs = measure(info[0], seconds, warmup)
        rows.append(("trivial fixed-JSON server (limit)", "-", limit, n, errs))
    finally:
        proc.kill()
        proc.wait()
    results = {}
    for count in (10, 100_000):
        proc, info = start_child("--serve", "emulator", "--prefill", str(count))
        try:
            rate, n, errs = measure(info[0], seconds, warmup)
            results[count] = rate
            rows.append((f"emulator, {int(info[1]):,} intents stored (filled in {info[2]} s)",
                         f"{count:,}", rate, n, errs))
        finally:
            proc.kill()
            proc.wait()

    pct_small = 100 * results[10] / limit
    pct_large = 100 * results[100_000] / limit
    drift = 100 * (results[100_000] - results[10]) / results[10]
    lines = [
        f"Run {_dt.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')} on "
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{THREADS} client threads, {seconds:.0f} s per row after {warmup:.0f} s warm-up"
        f"{' (--quick)' if quick else ''}.",
        "",
        "| server | stored intents | create+confirm / s | requests | errors |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [f"| {name} | {stored} | {rate:,.0f} | {n:,} | {errs} |"
              for name, stored, rate, n, errs in rows]
    lines += [
        "",
        f"- Emulator at 10 intents: **{pct_small:.0f}%** of the limit; at 100,000: "
        f"**{pct_large:.0f}%** (goal: at least 50%).",
        f"- 100,000 vs 10 intents: **{drift:+.1f}%** (goal: within ±20%).",
    ]
    table = "\n".join(lines)
    print(table)
    if write:
        write_doc(table)
        print(f"\nwritten to {DOC.relative_to(ROOT)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 s per row instead of 10 s")
    parser.add_argument("--no-write", action="store_true", help="do not update PERFORMANCE.md")
    parser.add_argument("--serve", choices=("trivial", "emulator"), help=argparse.SUPPRESS)
    parser.add_argument("--prefill", type=int, default=10, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve == "trivial":
        serve_trivial()
    elif args.serve == "emulator":
        serve_emulator(args.prefill)
    else:
        run(args.quick, not args.no_write)


if __name__ == "__main__":
    main()
