"""Benchmark: the seed's payment flow under load, 50 simulated students with Locust (headless).

    .venv/bin/python bench/bench_load.py [--quick] [--no-write] [--users N] [--seconds S]
                                         [--spawn-rate R] [--stripe-latency-ms MS] [--register]

Needs locust (``pip install -r requirements-bench.txt``). Starts gunicorn (production settings,
2 workers x 4 threads, ``deploy/gunicorn.conf.py``) on a throwaway PostgreSQL database with Redis
and the emulator (bench/reliability/stack.py, whose throttle rates are generous), creates teachers
and their gigs, and one account a student, with the ORM, then runs ``bench/locustfile.py`` headless
as a subprocess: each student logs in with e-mail and password (``--register``: registers first,
through the API), lists the gigs, saves the card 4242 4242 4242 4242, then over and over
lists the gigs, pays for one with the saved card (a fresh Idempotency-Key a payment) and lists its
payments and bookings. It prints, per request: count, failures, p50, p95 and requests/s, then
payments/s and the failures; it cross-checks the payments and bookings in the database against the
payments Locust saw succeed. Default 50 users for 60 s (spawned 10/s); ``--quick``: 10 users for
15 s (CI: proves it runs). The table goes into docs/PERFORMANCE.md between markers unless
``--no-write``. A benchmark, not a test: it asserts nothing; the exit status is 0 whatever the
figures. Without PostgreSQL or Redis (or locust) it says so and exits 0.

``run(quick)`` (for ``python -m bench``) returns the figures as (figure, value, note) rows.
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import importlib.util
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.reliability.stack import Stack, StackError, Unavailable  # noqa: E402  (ROOT on sys.path first)
from bench.report import write_section  # noqa: E402

DOC = ROOT / "docs" / "PERFORMANCE.md"
START, END = "<!-- bench_load:start -->", "<!-- bench_load:end -->"
HEADING = "Load: the seed's flow, 50 students (Locust)"
LOCUSTFILE = ROOT / "bench" / "locustfile.py"

TEACHERS = 10
GIGS_PER_TEACHER = 2
WAIT = "0.1,0.5"  # seconds between a student's rounds (BENCH_LOAD_WAIT of the locustfile)
PAY_NAME = "POST /stripe-payments/process-payment/"
PASSWORD = "Load-bench-pw-7391"  # the accounts' (BENCH_LOAD_PASSWORD of the locustfile)


def account_email(index: int) -> str:
    """As bench/locustfile.py's account_email (the tests hold them equal)."""
    return f"load-student-{index}@load.linguaflex.test"


@dataclass
class Config:
    users: int
    seconds: int
    spawn_rate: float
    stripe_latency_ms: float = 0.0
    quick: bool = False
    register: bool = False  # the students register through the API (else: accounts made beforehand)

    @classmethod
    def default(cls, quick: bool) -> Config:
        return cls(users=10, seconds=15, spawn_rate=10, quick=True) if quick else cls(users=50, seconds=60,
                                                                                      spawn_rate=10)


@dataclass
class Row:
    name: str
    count: int
    failures: int
    p50: str
    p95: str
    rps: float


def log(text: str) -> None:
    print(f"bench_load: {text}", flush=True)


# --- set-up ---------------------------------------------------------------------------------------
def create_gigs(stack: Stack) -> int:
    """TEACHERS teachers with GIGS_PER_TEACHER active gigs each, prices 20.00 to 58.50 USD."""
    count = 0
    for t in range(TEACHERS):
        teacher = stack.new_user("teacher", f"load-teacher-{t}")
        for g in range(GIGS_PER_TEACHER):
            stack.new_gig(teacher, 2000 + 150 * count + 25 * g, title=f"Load lesson {t}.{g}")
            count += 1
    return count


def create_students(count: int) -> None:
    """``count`` student accounts, account_email(0..count-1), password PASSWORD (hashed once)."""
    from django.contrib.auth.hashers import make_password

    from accounts.models import User

    hashed = make_password(PASSWORD)
    User.objects.bulk_create([User(email=account_email(i), password=hashed, role="student", first_name="Load",
                                   last_name=f"Student {i}") for i in range(count)])


def throttle_note(stack: Stack) -> str:
    """Empty when every throttle scope of the settings has a generous rate in the Stack's env, else
    a warning (those scopes may answer 429 under load, which then shows as failures)."""
    from django.conf import settings

    configured = dict(pair.split("=", 1) for pair in (stack.env.get("THROTTLE_RATES") or "").split(",") if "=" in pair)
    scopes = getattr(settings, "DEFAULT_THROTTLE_RATES", {}) or {}
    tight = sorted(scope for scope in scopes if scope not in configured)
    return f"throttle scopes at their default rates: {', '.join(tight)}" if tight else ""


# --- Locust -----------------------------------------------------------------------------------------
def run_locust(stack: Stack, config: Config, workdir: Path) -> tuple[int, str, float]:
    """Run the locustfile headless; (exit status, the tail of its output, wall seconds)."""
    prefix = workdir / "load"
    argv = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
            "-u", str(config.users), "-r", str(config.spawn_rate), "--run-time", f"{config.seconds}s",
            "--host", stack.base_url, "--csv", str(prefix), "--only-summary",
            "--stop-timeout", "15",  # a round in flight finishes (so the database matches the stats)
            "--exit-code-on-error", "0", "--loglevel", "WARNING"]
    env = {**os.environ, "BENCH_LOAD_WAIT": WAIT, "BENCH_LOAD_FINAL_CSV": str(workdir / "final"),
           "BENCH_LOAD_ACCOUNTS": "0" if config.register else str(config.users), "BENCH_LOAD_PASSWORD": PASSWORD,
           "PYTHONUNBUFFERED": "1"}
    out_path = workdir / "locust.log"
    started = time.monotonic()
    with open(out_path, "wb") as out:
        proc = subprocess.run(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out,
                              stderr=subprocess.STDOUT, timeout=config.seconds + 120)
    elapsed = time.monotonic() - started
    tail = "\n".join(out_path.read_text(errors="replace").splitlines()[-25:])
    return proc.returncode, tail, elapsed


def parse_stats(path: Path) -> tuple[list[Row], Row | None]:
    """Locust's <prefix>_stats.csv: the per-request rows and the Aggregated row."""
    rows: list[Row] = []
    total = None
    with open(path, newline="") as fh:
        for rec in csv.DictReader(fh):
            # Named by the locustfile's request names, which carry the method ("GET /gigs/").
            row = Row(name=rec["Name"], count=int(rec["Request Count"]), failures=int(rec["Failure Count"]),
                      p50=_ms(rec["50%"]), p95=_ms(rec["95%"]), rps=float(rec["Requests/s"] or 0))
            if rec["Name"] == "Aggregated":
                total = row
            else:
                rows.append(row)
    return rows, total


def _ms(value: str) -> str:
    return value if value and value != "N/A" else "-"


def parse_failures(path: Path) -> list[tuple[str, str, int]]:
    """Locust's <prefix>_failures.csv: (name, error, occurrences)."""
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        return [(rec["Name"], rec["Error"], int(rec["Occurrences"])) for rec in csv.DictReader(fh)]


def count_exceptions(path: Path) -> int:
    """Locust's <prefix>_exceptions.csv: how many exceptions the user code raised."""
    if not path.exists():
        return 0
    with open(path, newline="") as fh:
        return sum(int(rec.get("Count") or 0) for rec in csv.DictReader(fh))


def database_figures() -> dict[str, int]:
    from accounts.models import User
    from bookings.models import Booking
    from stripe_payments.models import Payment

    by_status: dict[str, int] = {}
    for status in Payment.objects.values_list("status", flat=True):
        by_status[status] = by_status.get(status, 0) + 1
    return {"students": User.objects.filter(role="student").count(), "bookings": Booking.objects.count(),
            **{f"payments {status}": n for status, n in sorted(by_status.items())}}


def steady_payments() -> tuple[float | None, float]:
    """Payments/s once every student was in: from the last saved card (the end of the last
    student's registration, login and card) to the last payment; (rate or None, window seconds).
    The log-ins' password hashing weighs on the ramp-up, so this is the journey's own rate."""
    from django.db.models import Max

    from stripe_payments.models import Payment, SavedPaymentMethod

    start = SavedPaymentMethod.objects.aggregate(at=Max("created_at"))["at"]
    end = Payment.objects.aggregate(at=Max("created_at"))["at"]
    if start is None or end is None or (end - start).total_seconds() < 2:
        return None, 0.0
    window = (end - start).total_seconds()
    count = Payment.objects.filter(created_at__gt=start, status="succeeded").count()
    return count / window, window


def server_errors(stack: Stack) -> int:
    """Tracebacks and ERROR lines in gunicorn's log (a 5xx or a crash the client may not show)."""
    text = stack.log_text("gunicorn")
    return sum(1 for line in text.splitlines() if "Traceback" in line or '"level": "ERROR"' in line
               or " ERROR " in line or "[CRITICAL]" in line)


# --- the report ----------------------------------------------------------------------------------
def table(config: Config, rows: list[Row], total: Row | None, failures: list[tuple[str, str, int]],
          db: dict[str, int], steady: tuple[float | None, float], errors_logged: int, wall: float,
          notes: list[str]) -> str:
    lines = ["| request (gunicorn 2x4, PostgreSQL, emulator) | count | failures | p50, ms | p95, ms | req/s |",
             "|---|---:|---:|---:|---:|---:|"]
    for row in rows:
        lines.append(f"| {row.name} | {row.count:,} | {row.failures:,} | {row.p50} | {row.p95} | {row.rps:.1f} |")
    if total is not None:
        lines.append(f"| **all** | {total.count:,} | {total.failures:,} | {total.p50} | {total.p95} | {total.rps:.1f} |")
    pay = next((row for row in rows if row.name == PAY_NAME), None)
    paid = (pay.count - pay.failures) if pay else 0
    payments_s = pay.rps * paid / pay.count if pay and pay.count else 0.0
    lines += ["", f"- payments/s: **{payments_s:.1f}** ({paid:,} succeeded payments); "
                  f"failures: **{total.failures if total else 0:,}** of {total.count if total else 0:,} requests"]
    rate, window = steady
    lines.append("- payments/s once every student was in (from the last saved card to the last payment, "
                 + (f"{window:.0f} s): **{rate:.1f}**" if rate is not None else "under 2 s): -"))
    for name, error, n in failures:
        lines.append(f"  - {n:,} x {name}: {error}")
    db_text = ", ".join(f"{key} {value:,}" for key, value in db.items())
    lines.append(f"- in the database afterwards: {db_text}; ERROR lines or tracebacks in gunicorn's log: "
                 f"{errors_logged}")
    lines += [f"- {note}" for note in notes]
    lines += ["", f"Run {_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.node()} "
              f"({os.cpu_count()} cores, shared by Locust, gunicorn, the emulator and PostgreSQL; Python "
              f"{platform.python_version()}, locust {_locust_version()}): {config.users} students spawned "
              f"{config.spawn_rate:g}/s for {config.seconds} s ({wall:.0f} s wall time, start and stop included), "
              f"{WAIT.replace(',', ' to ')} s between a student's rounds, emulator latency "
              f"{config.stripe_latency_ms:g} ms{' (--quick)' if config.quick else ''}. Once per student: "
              f"{'register, ' if config.register else ''}log in (PBKDF2, Django's default hasher), list gigs, "
              "add the card; each round: list gigs, pay with the saved card, "
              "list payments, list bookings. Percentiles are Locust's (rounded); req/s over the whole run, "
              "ramp-up included."]
    return "\n".join(lines)


def figures(config: Config, rows: list[Row], total: Row | None, db: dict[str, int],
            steady: tuple[float | None, float]) -> list[tuple[str, str, str]]:
    out = []
    for row in rows:
        out.append((f"load: {row.name}", f"p50 {row.p50} ms, p95 {row.p95} ms",
                    f"{row.count:,} requests, {row.failures:,} failures, {row.rps:.1f}/s"))
    pay = next((row for row in rows if row.name == PAY_NAME), None)
    paid = (pay.count - pay.failures) if pay else 0
    payments_s = pay.rps * paid / pay.count if pay and pay.count else 0.0
    setting = f"{config.users} students, {config.seconds} s, gunicorn 2x4{' (--quick)' if config.quick else ''}"
    out.append(("load: payments/s", f"{payments_s:.1f}", setting))
    rate, window = steady
    out.append(("load: payments/s, every student in", "-" if rate is None else f"{rate:.1f}",
                f"from the last saved card to the last payment, {window:.0f} s"))
    out.append(("load: failures", f"{total.failures if total else 0:,}",
                f"of {total.count if total else 0:,} requests"))
    out.append(("load: succeeded payments in the database", f"{db.get('payments succeeded', 0):,}",
                f"Locust saw {paid:,}"))
    return out


def _locust_version() -> str:
    try:
        from importlib.metadata import version

        return version("locust")
    except Exception:
        return "?"


# --- entry points ----------------------------------------------------------------------------------
def measure(config: Config) -> tuple[list[tuple[str, str, str]], str]:
    """One run: (figures, the report's text). Raises Unavailable without PostgreSQL/Redis/locust."""
    if importlib.util.find_spec("locust") is None:
        raise Unavailable("locust is not installed (pip install -r requirements-bench.txt)")
    stack = Stack(workers=2, threads=4, log=log, celery=True)
    stack.__enter__()  # Unavailable, or StackError; stops what it started
    try:
        notes = []
        if config.stripe_latency_ms:
            stack.emulator("POST", "/_emulator/config", latency_ms=config.stripe_latency_ms)
        gigs = create_gigs(stack)
        if not config.register:
            create_students(config.users)
        log(f"{TEACHERS} teachers, {gigs} gigs{'' if config.register else f', {config.users} students'}; "
            f"locust: {config.users} users for {config.seconds} s")
        warning = throttle_note(stack)
        if warning:
            notes.append(warning)
        with tempfile.TemporaryDirectory(prefix="linguaflex-load-") as tmp:
            workdir = Path(tmp)
            status, tail, wall = run_locust(stack, config, workdir)
            # The locustfile's final files (complete); Locust's own --csv ones lag up to a second.
            prefix = "final" if (workdir / "final_stats.csv").exists() else "load"
            stats = workdir / f"{prefix}_stats.csv"
            if not stats.exists():
                raise StackError(f"locust wrote no statistics (exit {status}):\n{tail}")
            if prefix == "load":
                notes.append("the locustfile's final statistics are missing: Locust's --csv files, "
                             "which may miss the last second")
            if status != 0:
                notes.append(f"locust exited {status}:\n\n```\n{tail}\n```")
            rows, total = parse_stats(stats)
            failures = parse_failures(workdir / f"{prefix}_failures.csv")
            exceptions = count_exceptions(workdir / f"{prefix}_exceptions.csv")
            if exceptions:
                notes.append(f"{exceptions} exception(s) in the locustfile's own code (see locust's output)")
        if not stack.alive():
            notes.append("a server died during the run")
        db = database_figures()
        steady = steady_payments()
        errors_logged = server_errors(stack)
    finally:
        stack.stop()
    text = table(config, rows, total, failures, db, steady, errors_logged, wall, notes)
    return figures(config, rows, total, db, steady), text


def run(quick: bool, *, write: bool = False) -> list[tuple[str, str, str]]:
    """For ``python -m bench``: the figures as (figure, value, note) rows; the section of
    PERFORMANCE.md is written only with ``write=True``. Without the services: one row saying so."""
    config = Config.default(quick)
    try:
        rows, text = measure(config)
    except Unavailable as exc:
        return [("load", "skipped", str(exc))]
    print(text)
    if write:
        write_doc(text)
    return rows


def write_doc(text: str) -> None:
    write_section(DOC, START, END, text, heading=HEADING)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 users for 15 s (CI: proves it runs)")
    parser.add_argument("--no-write", action="store_true", help="do not update PERFORMANCE.md")
    parser.add_argument("--users", type=int, help="simulated students (default 50, --quick 10)")
    parser.add_argument("--seconds", type=int, help="run time (default 60, --quick 15)")
    parser.add_argument("--spawn-rate", type=float, help="students started a second (default 10)")
    parser.add_argument("--stripe-latency-ms", type=float, default=0.0,
                        help="the emulator's added latency per Stripe call (default 0)")
    parser.add_argument("--register", action="store_true",
                        help="the students register through the API first (two password hashings each)")
    args = parser.parse_args(argv)
    config = Config.default(args.quick)
    config.users = args.users or config.users
    config.seconds = args.seconds or config.seconds
    config.spawn_rate = args.spawn_rate or config.spawn_rate
    config.stripe_latency_ms = args.stripe_latency_ms
    config.register = args.register
    try:
        _, text = measure(config)
    except Unavailable as exc:
        print(f"bench_load: skipped, {exc}")
        return 0
    print(text)
    if not args.no_write:
        write_doc(text)
        print(f"\nwritten to {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
