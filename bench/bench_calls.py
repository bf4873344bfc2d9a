"""Benchmark: Stripe calls and SQL statements per operation (counts, not timings).

    .venv/bin/python bench/bench_calls.py [--quick] [--no-write] [--sqlite]

Runs in-process, with production settings (``linguaflex.settings.production``, DEBUG off, no
Celery broker, so webhook events are applied in the request), on a throwaway PostgreSQL database
``linguaflex_bench_calls`` (127.0.0.1:5432, user postgres; created, migrated and dropped at the
end) or, when PostgreSQL is not reachable (or with ``--sqlite``), on SQLite in a temporary
directory. Stripe is the in-process emulator (``stripe_emulator.testing.start_emulator``, as the
test fixtures start it), its webhooks signed with the app's ``STRIPE_WEBHOOK_SECRET``.

The app is driven through ``rest_framework.test.APIClient`` with JWTs (the student's from the login
endpoint, the teacher's and the admin's minted as the tests' ``client_for`` does), in
real transactions (nothing wraps a request in a test transaction), with an ``Idempotency-Key`` on
the POSTs that docs/API.md says take one (add-payment-method, process-payment, refund requests).
For each operation:

- Stripe calls: the requests the app made to the emulator meanwhile (its request log, /v1 only),
  by method and path;
- SQL: the statements the operation sent (``CaptureQueriesContext``), savepoints included and
  shown apart, transaction control not (BEGIN and COMMIT: Django logs them on SQLite; on
  PostgreSQL psycopg sends them implicitly). The e-mails an operation records leave the request (a
  Celery worker, or after the response without a broker): they are delivered after the count and
  their statements are given in the note.

Every event the emulator recorded during an operation is then delivered, in order and signed, to
``POST /stripe-payments/webhook/`` (as Stripe would deliver it), and counted the same way, one row
per event type. Lists (payments and bookings as admin, gigs) are counted at 10 and at 1,000 rows
(bench/seed.py ``seed()`` and ``bulk_create`` of gigs); each list is requested once first (warm-up).

Targets (issue 15), shown in the note column: process-payment with a saved card <= 10 SQL
statements; an approved refund <= 2 Stripe calls in all (request, approval, its webhook events);
queries per list equal at 10 and at 1,000 rows. A benchmark, not a test: it asserts nothing.

``run(quick)`` (for ``python -m bench``) does the same in a child process (Django is configured
once per process, with this benchmark's own database) and returns the table's rows.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import os
import platform
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.report import write_section  # noqa: E402  (ROOT on sys.path first)

DOC = ROOT / "docs" / "PERFORMANCE.md"
START, END = "<!-- bench_calls:start -->", "<!-- bench_calls:end -->"
PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
DB_NAME = "linguaflex_bench_calls"
WEBHOOK_SECRET = "whsec_bench_calls"
STRIPE_KEY = "sk_test_bench_calls"
PASSWORD = "bench-calls-Pa55word!"
EXP_YEAR = date.today().year + 3
VISA, MASTERCARD, AMEX, VISA_DEBIT = "4242424242424242", "5555555555554444", "378282246310005", "4000056655665556"

SAVED_CARD_SQL_TARGET = 10
REFUND_STRIPE_TARGET = 2
SAVEPOINT_PREFIXES = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")
TRANSACTION_STATEMENTS = ("BEGIN", "COMMIT", "ROLLBACK")

ADD_URL = "/stripe-payments/add-payment-method/"
PAY_URL = "/stripe-payments/process-payment/"
METHODS_URL = "/stripe-payments/payment-methods/"
PAYMENTS_URL = "/stripe-payments/payments/"
REFUNDS_URL = "/stripe-payments/refunds/"
WEBHOOK_URL = "/stripe-payments/webhook/"


# --- pure helpers ------------------------------------------------------------------------------------
@dataclass
class Count:
    """One operation's counts: the Stripe calls (``"METHOD /path"``, in order) and SQL statements."""

    operation: str
    stripe: list[str] | None = None  # None: not counted (register+login)
    sql: int = 0
    sql_no_savepoints: int = 0
    sql_data: int = 0  # neither savepoints nor BEGIN / COMMIT / ROLLBACK
    note: str = ""
    statements: list[str] = field(default_factory=list, repr=False)

    @property
    def stripe_calls(self) -> int:
        return len(self.stripe or [])


def is_savepoint(sql: str) -> bool:
    return sql.lstrip().upper().startswith(SAVEPOINT_PREFIXES)


def is_transaction_control(sql: str) -> bool:
    words = sql.strip().upper().rstrip(";").split()
    return is_savepoint(sql) or (bool(words) and words[0] in TRANSACTION_STATEMENTS)


def _begin_commit(sql: str) -> bool:
    return is_transaction_control(sql) and not is_savepoint(sql)


def sql_counts(statements: list[str]) -> tuple[int, int, int]:
    """(statements sent, savepoints included: all but BEGIN / COMMIT / ROLLBACK, which Django logs
    on SQLite and psycopg sends implicitly on PostgreSQL; those that are not SAVEPOINT / RELEASE /
    ROLLBACK TO SAVEPOINT either; the same, the data statements)."""
    sent = [s for s in statements if not _begin_commit(s)]
    data = sum(1 for s in sent if not is_savepoint(s))
    return len(sent), data, data


_STRIPE_ID = re.compile(r"(?<=/)([a-z]{2,6})_[0-9A-Za-z]{14,}(?=/|$)")


def without_ids(call: str) -> str:
    """``"GET /v1/payment_intents/pi_…"`` for ``"GET /v1/payment_intents/pi_1MvZObBH…"``."""
    return _STRIPE_ID.sub(lambda m: f"{m.group(1)}_…", call)


def stripe_paths(log: list[dict]) -> list[str]:
    """``"METHOD /path"`` of the emulator's /v1 requests (no control routes), in order."""
    return [f"{r['method']} {r['path']}" for r in log if r["path"].startswith("/v1/")]


def describe_calls(calls: list[str] | None) -> str:
    """``"3: POST /v1/customers, POST /v1/setup_intents x2"``; ``"-"`` when not counted."""
    if calls is None:
        return "-"
    if not calls:
        return "0"
    seen = Counter(without_ids(c) for c in calls)
    parts = [name if n == 1 else f"{name} x{n}" for name, n in seen.items()]
    return f"{len(calls)}: " + ", ".join(parts)


def describe_sql(count: Count) -> str:
    if count.sql == count.sql_no_savepoints:
        return str(count.sql)
    return f"{count.sql} (incl. {count.sql - count.sql_no_savepoints} savepoint statements)"


def repeated_objects(calls: list[str]) -> list[str]:
    """Calls made more than once in one operation with the same method and path (one object read
    twice, say), as ``"GET /v1/payment_intents/pi_… x2"``."""
    return sorted(f"{without_ids(name)} x{n}" for name, n in Counter(calls).items() if n > 1)


def to_rows(counts: list[Count]) -> list[tuple[str, str, str, str]]:
    return [(c.operation, describe_calls(c.stripe), describe_sql(c), c.note) for c in counts]


def table(rows: list[tuple[str, str, str, str]], header: str) -> str:
    esc = [tuple(cell.replace("|", "\\|") for cell in row) for row in rows]
    lines = ["| operation | Stripe calls | SQL statements | note |", "|---|---|---|---|"]
    lines += [f"| {op} | {calls} | {sql} | {note} |" for op, calls, sql, note in esc]
    return "\n".join(lines + ["", header])


# --- the database ---------------------------------------------------------------------------------------
def _pg_reachable() -> bool:
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=1):
            return True
    except OSError:
        return False


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/postgres", autocommit=True,
                         connect_timeout=5) as conn:
        conn.execute(sql)


@contextlib.contextmanager
def database(kind: str):
    """Yield a DATABASE_URL: ``postgres`` (the throwaway database, dropped afterwards), ``sqlite`` (a
    temporary directory) or ``auto`` (PostgreSQL when reachable)."""
    if kind == "auto":
        kind = "postgres" if _pg_reachable() else "sqlite"
    if kind == "postgres":
        _pg_admin(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        _pg_admin(f'CREATE DATABASE "{DB_NAME}"')
        try:
            yield f"postgres://{PG_USER}@{PG_HOST}:{PG_PORT}/{DB_NAME}"
        finally:
            with contextlib.suppress(Exception):  # Django may not be configured yet
                from django.db import connections

                connections.close_all()
            _pg_admin(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
    else:
        tmp = tempfile.mkdtemp(prefix="bench_calls_")
        try:
            yield f"sqlite:///{tmp}/db.sqlite3"
        finally:
            with contextlib.suppress(Exception):
                from django.db import connections

                connections.close_all()
            shutil.rmtree(tmp, ignore_errors=True)


def _configure(database_url: str, emulator_url: str) -> None:
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "linguaflex.settings.production",
        "SECRET_KEY": "bench-calls-" + secrets.token_urlsafe(32),
        "DEBUG": "false",
        "ALLOWED_HOSTS": "testserver,127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",
        "DATABASE_URL": database_url,
        "REDIS_URL": "",  # the local-memory cache: the counts are the database's
        "CELERY_BROKER_URL": "",  # tasks run in-process, webhook events are applied in the request
        "STRIPE_SECRET_KEY": STRIPE_KEY,
        "STRIPE_PUBLISHABLE_KEY": "pk_test_bench_calls",
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_API_BASE": emulator_url,
        "THROTTLE_RATES": "login_email=100000/min,login_ip=100000/min,register=100000/min,payment=100000/min",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "LOG_LEVEL": "ERROR",
        "LOG_FORMAT": "plain",
    })
    os.environ.pop("STRIPE_LOG", None)
    import django
    from django.conf import settings

    if settings.configured:
        raise RuntimeError("bench_calls configures Django itself: run it in a fresh process (run() does)")
    django.setup()
    from django.core.management import call_command

    call_command("migrate", "--noinput", verbosity=0)


# --- the measurement --------------------------------------------------------------------------------------
class Meter:
    def __init__(self, emulator) -> None:
        from rest_framework.test import APIClient

        self.emulator = emulator
        self.counts: list[Count] = []
        self.webhook = APIClient()
        self._events_seen = 0

    @contextlib.contextmanager
    def count(self, operation: str, *, stripe: bool = True, note: str = ""):
        """Count what the block does; the Count is appended (and yielded, to add to its note)."""
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        from linguaflex import mail

        result = Count(operation, note=note)
        self.emulator.clear_requests()
        # E-mails leave the request (a worker, or after the response): delivered after the count,
        # and counted apart.
        deferred: list[int] = []
        enqueue, mail.enqueue = mail.enqueue, deferred.append
        try:
            with CaptureQueriesContext(connection) as captured:
                yield result
        finally:
            mail.enqueue = enqueue
        with CaptureQueriesContext(connection) as mailing:
            for email_id in deferred:
                mail.deliver(email_id)
        if deferred:
            sent, _, _ = sql_counts([q["sql"] for q in mailing.captured_queries])
            result.note = "; ".join(filter(None, [result.note, f"its {len(deferred)} e-mail(s), sent outside the "
                                                               f"request: {sent} more"]))
        result.statements = [q["sql"] for q in captured.captured_queries]
        result.sql, result.sql_no_savepoints, result.sql_data = sql_counts(result.statements)
        result.stripe = stripe_paths(self.emulator.requests()) if stripe else None
        if stripe and repeated_objects(result.stripe):
            result.note = "; ".join(filter(None, [result.note, "repeated: " + ", ".join(repeated_objects(result.stripe))]))
        self.counts.append(result)

    def new_events(self) -> list[dict]:
        events = self.emulator.events()
        fresh, self._events_seen = events[self._events_seen:], len(events)
        return fresh

    def deliver_events(self) -> list[Count]:
        """Deliver the events recorded since the last call, signed, one Count per event type (the
        counts of the events of a type added up, their number in the note)."""
        from stripe_emulator.webhooks import sign

        by_type: dict[str, Count] = {}
        n_of: Counter = Counter()
        statuses: dict[str, set] = {}
        for event in self.new_events():
            payload = json.dumps(event, indent=2).encode()
            kind = event["type"]
            with self.count(f"↳ webhook `{kind}`") as c:
                response = self.webhook.post(WEBHOOK_URL, data=payload, content_type="application/json",
                                             HTTP_STRIPE_SIGNATURE=sign(payload, self.emulator.webhook_secret))
            self.counts.pop()
            if response.status_code != 200:
                raise RuntimeError(f"webhook {kind}: {response.status_code} {response.content[:300]!r}")
            statuses.setdefault(kind, set()).add(response.json().get("status", "?"))
            n_of[kind] += 1
            if kind in by_type:
                total = by_type[kind]
                total.stripe = (total.stripe or []) + (c.stripe or [])
                total.sql += c.sql
                total.sql_no_savepoints += c.sql_no_savepoints
                total.sql_data += c.sql_data
                total.statements += c.statements
            else:
                by_type[kind] = c
        for kind, c in by_type.items():
            c.note = ", ".join(sorted(statuses[kind])) + (f"; {n_of[kind]} events, counts added up" if n_of[kind] > 1
                                                          else "")
            if repeated_objects(c.stripe or []):
                c.note += "; repeated: " + ", ".join(repeated_objects(c.stripe or []))
            self.counts.append(c)
        return list(by_type.values())


def _ok(response, *expected: int) -> dict:
    if response.status_code not in (expected or (200,)):
        raise RuntimeError(f"{response.request['REQUEST_METHOD']} {response.request['PATH_INFO']}: "
                           f"{response.status_code} {response.content[:400]!r}")
    return response.json() if response.content else {}


def _card(number: str) -> dict:
    return {"card_number": number, "exp_month": 12, "exp_year": EXP_YEAR,
            "cvc": "1234" if number.startswith(("34", "37")) else "123"}


def _key() -> dict:
    return {"HTTP_IDEMPOTENCY_KEY": f"bench-calls-{uuid.uuid4()}"}


def _login(email: str):
    from rest_framework.test import APIClient

    client = APIClient()
    body = _ok(client.post("/accounts/login/", {"email": email, "password": PASSWORD}, format="json"))
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {body['access']}")
    return client


def _token_client(user):
    """A client with an access JWT minted for ``user`` (as the tests' ``client_for``): no password hash to check."""
    from rest_framework.test import APIClient
    from rest_framework_simplejwt.tokens import RefreshToken

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


def operations(meter: Meter) -> None:
    from rest_framework.test import APIClient

    from accounts.models import User
    from gigs.models import Gig

    run_tag = secrets.token_hex(4)
    teacher = User.objects.create_user(f"teacher.{run_tag}@bench.test", None, role="teacher",
                                       first_name="Tea", last_name="Cher")
    admin_user = User.objects.create_superuser(f"admin.{run_tag}@bench.test", None)
    gig = Gig.objects.create(teacher=teacher, title="Spanish conversation", language="Spanish",
                             price_cents=5000, duration_minutes=60)
    APIClient().get("/health/")  # warm-up: the first request's one-off work is nobody's

    email = f"student.{run_tag}@bench.test"
    anonymous = APIClient()
    with meter.count("register + login (student)", stripe=False) as c:
        with meter.count("register") as register:
            _ok(anonymous.post("/accounts/register/", {"email": email, "password": PASSWORD, "first_name": "Stu",
                                                       "last_name": "Dent", "role": "student"}, format="json"), 201)
        with meter.count("login") as login:
            student = _login(email)
    meter.counts.remove(register)
    meter.counts.remove(login)
    c.note = f"register {register.sql}, login {login.sql}"
    meter.new_events()

    def op(name: str, fn, *, note: str = "") -> tuple[dict, Count]:
        with meter.count(name, note=note) as c:
            body = fn()
        meter.deliver_events()
        return body, c

    first, _ = op("add first card (creates the Stripe customer)", lambda: _ok(
        student.post(ADD_URL, _card(VISA), format="json", **_key())))
    second, _ = op("add another card", lambda: _ok(student.post(ADD_URL, _card(MASTERCARD), format="json", **_key())))
    op("list cards", lambda: _ok(student.get(METHODS_URL)))
    op("delete a card", lambda: _ok(student.delete(f"{METHODS_URL}{second['payment_method_id']}/delete/")))
    op("pay with a new card, saved", lambda: _ok(student.post(
        PAY_URL, {"gig_id": gig.pk, "card_details": _card(AMEX), "save_card": True}, format="json", **_key())))
    unsaved, _ = op("pay with a new card, not saved", lambda: _ok(student.post(
        PAY_URL, {"gig_id": gig.pk, "card_details": _card(VISA_DEBIT), "save_card": False}, format="json", **_key())))
    saved, saved_count = op("pay with a saved card", lambda: _ok(student.post(
        PAY_URL, {"gig_id": gig.pk, "saved_payment_method_id": first["payment_method_id"]}, format="json", **_key())))
    met = saved_count.sql <= SAVED_CARD_SQL_TARGET
    saved_count.note = "; ".join(filter(None, [
        f"target <= {SAVED_CARD_SQL_TARGET} SQL: {'met' if met else 'NOT met'}", saved_count.note]))
    op("list payments (student)", lambda: _ok(student.get(PAYMENTS_URL)))

    # A refund: the student asks, an admin approves, Stripe's events arrive.
    admin = _token_client(admin_user)
    refund_start = len(meter.counts)
    request, _ = op("request a refund (student)", lambda: _ok(student.post(
        REFUNDS_URL, {"payment_id": saved["payment_id"], "reason": "The lesson did not happen"}, format="json",
        **_key()), 201))
    op("approve the refund (admin)", lambda: _ok(admin.post(f"{REFUNDS_URL}{request['id']}/approve/",
                                                            {"note": "ok"}, format="json")))
    parts = meter.counts[refund_start:]
    calls = [call for part in parts for call in (part.stripe or [])]
    total = Count("approved refund, in all (request + approval + its webhook events)", stripe=calls,
                  sql=sum(p.sql for p in parts), sql_no_savepoints=sum(p.sql_no_savepoints for p in parts),
                  sql_data=sum(p.sql_data for p in parts))
    total.note = (f"target <= {REFUND_STRIPE_TARGET} Stripe calls: "
                  f"{'met' if total.stripe_calls <= REFUND_STRIPE_TARGET else 'NOT met'}")
    if repeated_objects(calls):
        total.note += "; repeated: " + ", ".join(repeated_objects(calls))
    meter.counts.append(total)

    teacher_client = _token_client(teacher)
    op("teacher declines a booking (full refund)", lambda: _ok(teacher_client.post(
        f"/bookings/{unsaved['booking_id']}/decline/", {}, format="json")))


def lists(meter: Meter, large: int) -> None:
    """Queries per list request at 10 and at ``large`` rows."""
    from django.utils import timezone

    from accounts.models import User
    from bench.seed import seed
    from bookings.models import Booking
    from gigs.models import Gig
    from stripe_payments.models import Payment

    def top_up_gigs(n: int) -> None:
        missing = n - Gig.objects.filter(is_active=True).count()
        teacher = User.objects.filter(role="teacher").first()
        now = timezone.now()
        Gig.objects.bulk_create([Gig(teacher=teacher, title=f"Lesson {i}", language="French", price_cents=4000,
                                     duration_minutes=45, created_at=now, updated_at=now)
                                 for i in range(max(0, missing))], batch_size=1000)

    requests = [("payments list, admin", "admin", PAYMENTS_URL, Payment),
                ("bookings list, admin", "admin", "/bookings/", Booking),
                ("gigs list, student", "student", "/gigs/", Gig)]
    seen: dict[str, list[tuple[int, Count]]] = {}
    for rows in (10, large):
        have = Payment.objects.count()
        seed(rows - have, teachers=2 if rows == 10 else 20, students=5 if rows == 10 else 200, seed=rows)
        top_up_gigs(rows)
        clients = {role: _token_client(User.objects.filter(role=role).first()) for role in ("admin", "student")}
        for label, who, path, model in requests:
            _ok(clients[who].get(path))  # warm-up
            n = model.objects.count() if model is not Gig else Gig.objects.filter(is_active=True).count()
            with meter.count(f"{label} at {n:,} rows") as c:
                body = _ok(clients[who].get(path))
            c.note = f"{len(body.get('results', []))} on the page"
            seen.setdefault(label, []).append((n, c))
    for small, big in seen.values():
        same = small[1].sql == big[1].sql
        big[1].note += f"; target equal to {small[0]:,} rows: {'met' if same else 'NOT met'}"


def measure(quick: bool, db: str = "auto") -> tuple[list[Count], str]:
    """Configure Django (this process: once), count, clean up. The counts and a line saying where."""
    from stripe_emulator.testing import start_emulator

    emulator = start_emulator(port=0, webhook_secret=WEBHOOK_SECRET)
    try:
        with database(db) as url:
            _configure(url, emulator.base_url)
            from django.db import connection

            vendor = connection.vendor
            meter = Meter(emulator)
            lists(meter, 100 if quick else 1000)
            operations(meter)
            connection.close()
    finally:
        emulator.stop()
    where = (f"Run {_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.node()}, "
             f"Python {platform.python_version()}, {vendor} ({'quick: 10 and 100 rows' if quick else 'full'}); "
             "in-process, production settings, no Celery broker (webhooks applied in the request), "
             "the in-process Stripe emulator. Stripe calls: the emulator's request log; SQL: "
             "CaptureQueriesContext, every statement sent (savepoints included), not BEGIN/COMMIT; "
             "e-mails delivered after each count (note).")
    return meter.counts, where


def run_counts(quick: bool, db: str = "auto") -> tuple[list[Count], str]:
    """``measure`` in a child process (Django is configured once per process)."""
    with tempfile.TemporaryDirectory(prefix="bench_calls_") as tmp:
        out = Path(tmp) / "counts.json"
        argv = [sys.executable, str(Path(__file__).resolve()), "--json-out", str(out), "--db", db]
        if quick:
            argv.append("--quick")
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=900,
                              env={k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"})
        if done.returncode != 0 or not out.exists():
            raise RuntimeError(f"bench_calls child failed ({done.returncode}):\n{done.stdout[-2000:]}\n"
                               f"{done.stderr[-4000:]}")
        data = json.loads(out.read_text())
    return [Count(**c) for c in data["counts"]], data["where"]


def run(quick: bool, write: bool = False, db: str = "auto") -> list[tuple[str, str, str, str]]:
    """(operation, Stripe calls, SQL statements, note) rows, for ``python -m bench``; with ``write``
    (and not ``quick``), the table goes into docs/PERFORMANCE.md too."""
    counts, where = run_counts(quick, db)
    if write and not quick:
        write_section(DOC, START, END, table(to_rows(counts), where),
                      heading="Stripe calls and SQL statements per operation")
    return to_rows(counts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="lists at 10 and 100 rows (not 1,000)")
    parser.add_argument("--no-write", action="store_true", help="do not update PERFORMANCE.md")
    parser.add_argument("--sqlite", action="store_true", help="SQLite even when PostgreSQL is reachable")
    parser.add_argument("--statements", metavar="TEXT",
                        help="also print the SQL of the operations whose name contains TEXT")
    parser.add_argument("--db", choices=("auto", "postgres", "sqlite"), default="auto", help=argparse.SUPPRESS)
    parser.add_argument("--json-out", help=argparse.SUPPRESS)  # run()'s child process
    args = parser.parse_args(argv)
    db = "sqlite" if args.sqlite else args.db
    counts, where = measure(args.quick, db)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({
            "counts": [{k: v for k, v in asdict(c).items() if k != "statements"} for c in counts], "where": where}))
        return 0
    text = table(to_rows(counts), where)
    print(text)
    for c in counts:
        if args.statements and args.statements in c.operation:
            print(f"\n-- {c.operation}: {c.sql} statements")
            for sql in c.statements:
                print(f"   {sql[:220]}")
    if not args.no_write and not args.quick:
        write_section(DOC, START, END, text, heading="Stripe calls and SQL statements per operation")
    return 0


if __name__ == "__main__":
    sys.exit(main())
