"""Benchmark: list endpoints at 1,000 and at 100,000 payments, each as a ratio within one run.

    .venv/bin/python bench/bench_lists.py [--quick] [--no-write]

Starts gunicorn (production settings, 2 workers x 4 threads, ``deploy/gunicorn.conf.py``) on a
throwaway PostgreSQL database with Redis and the emulator (bench/reliability/stack.py), loads 1,000
consistent payments with bench/seed.py, times each list (the median of N sequential requests after
a warm-up, and ``/health/`` in the same server for scale), loads 99,000 more and times them again.
The teacher and the student are each time the ones with the most payments (about 50 and 5 at
1,000; 5,000 and 500 at 100,000). Targets (issue 15): each list at 100,000 within 1.5x of itself
at 1,000. The table goes into docs/PERFORMANCE.md between markers. A benchmark, not a test: it
asserts nothing. Without PostgreSQL or Redis it says so and exits 0.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.reliability.stack import Stack, Unavailable  # noqa: E402  (ROOT on sys.path first)
from bench.report import standalone, write_section  # noqa: E402

DOC = ROOT / "docs" / "PERFORMANCE.md"
START, END = "<!-- bench_lists:start -->", "<!-- bench_lists:end -->"

# (label, who, path)
LISTS = [
    ("payments, admin", "admin", "/stripe-payments/payments/"),
    ("refunds, admin", "admin", "/stripe-payments/refunds/"),
    ("payments, admin, ?status=refunded", "admin", "/stripe-payments/payments/?status=refunded"),
    ("bookings, admin, ?status=confirmed", "admin", "/bookings/?status=confirmed"),
    ("payments, the busiest teacher", "teacher", "/stripe-payments/payments/"),
    ("payments, the busiest teacher, ?status=refunded", "teacher", "/stripe-payments/payments/?status=refunded"),
    ("bookings, the busiest student", "student", "/bookings/"),
]


def busiest(role: str):
    """The student or teacher with the most payments."""
    from django.db.models import Count

    from accounts.models import User
    from stripe_payments.models import Payment

    top = Payment.objects.values(role).annotate(n=Count("id")).order_by("-n").first()
    return User.objects.get(pk=top[role])


def settle_database() -> None:
    """After a bulk load, bring PostgreSQL to the steady state a live table is in before timing:
    VACUUM (ANALYZE) sets the visibility map (index-only scans) and the statistics, CHECKPOINT
    writes the load's dirty pages now. Without it autovacuum and the checkpointer run during the
    100,000-row measurements: /health/ itself, which reads no table, measured 1.8x slower then."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    from accounts.models import User
    from bookings.models import Booking
    from stripe_payments.models import LedgerEntry, Payment, RefundRequest

    with connection.cursor() as cursor:
        for model in (User, Payment, Booking, RefundRequest, LedgerEntry):
            cursor.execute(f"VACUUM (ANALYZE) {connection.ops.quote_name(model._meta.db_table)}")
        try:
            cursor.execute("CHECKPOINT")
        except Exception:  # CHECKPOINT needs a superuser (or pg_checkpoint): then only wait
            pass
    time.sleep(2)


def timed(session: requests.Session, url: str, token: str | None, rounds: int) -> float:
    headers = {"Accept": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    for _ in range(3):
        session.get(url, headers=headers, timeout=60).raise_for_status()
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        session.get(url, headers=headers, timeout=60).raise_for_status()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def measure(stack: Stack, rounds: int) -> dict[str, float]:
    from accounts.models import User

    tokens = {"admin": stack.token(User.objects.filter(role="admin").first()),
              "teacher": stack.token(busiest("teacher")), "student": stack.token(busiest("student"))}
    session = requests.Session()
    figures = {"/health/": timed(session, stack.base_url + "/health/", None, rounds)}
    for label, who, path in LISTS:
        figures[label] = timed(session, stack.base_url + path, tokens[who], rounds)
    return figures


def table(small: dict[str, float], large: dict[str, float], rows: tuple[int, int]) -> str:
    lines = [f"| request (gunicorn, PostgreSQL) | {rows[0]:,} payments, ms | {rows[1]:,} payments, ms | ratio | target |",
             "|---|---|---|---|---|"]
    for label in small:
        ratio = large[label] / small[label]
        target = "" if label == "/health/" else "<= 1.5x"
        lines.append(f"| {label} | {small[label] * 1000:.1f} | {large[label] * 1000:.1f} | {ratio:.2f}x | {target} |")
    lines += ["", f"Run {_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.node()} "
              f"({os.cpu_count()} cores, Python {platform.python_version()}); medians of sequential requests, "
              "one client, 20 rows a page."]
    return "\n".join(lines)


def write_doc(text: str) -> None:
    write_section(DOC, START, END, text, heading="Lists at 1,000 and 100,000 payments")


def summary(small: dict[str, float], large: dict[str, float], rows: tuple[int, int]) -> list[tuple[str, str, str, str]]:
    """The issue's table rows: (figure, compared to, value, target)."""
    return [(f"GET {label}, {rows[1]:,} payments", f"the same at {rows[0]:,}",
             f"{large[label] / small[label]:.2f}x ({large[label] * 1000:.1f} ms)", "<= 1.5x")
            for label in small if label != "/health/"]


def run(quick: bool, write: bool = True) -> list[tuple[str, str, str, str]]:
    small_rows, large_rows = (1000, 10_000) if quick else (1000, 100_000)
    rounds = 10 if quick else 30
    try:
        stack = Stack(workers=2, threads=4, log=lambda text: print(f"bench_lists: {text}", flush=True))
        stack.__enter__()
    except Unavailable as exc:
        print(f"bench_lists: skipped, {exc}")
        return []
    try:
        from bench.seed import seed

        seed(small_rows, teachers=20, students=200, seed=1)
        settle_database()
        small = measure(stack, rounds)
        seed(large_rows - small_rows, teachers=20, students=200, seed=2)
        settle_database()
        large = measure(stack, rounds)
    finally:
        stack.stop()
    text = table(small, large, (small_rows, large_rows))
    print(text)
    if write and not quick:
        write_doc(text)
    return summary(small, large, (small_rows, large_rows))


def main() -> int:
    return standalone(__doc__, run, quick_help="1,000 and 10,000 payments, 10 requests a row")


if __name__ == "__main__":
    sys.exit(main())
