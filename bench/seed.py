"""Bulk loader for list benchmarks at scale: N consistent payments, their bookings, some refunds and
the ledger rows of every money movement, in one transaction.

    python -m bench.seed --payments 100000 [--teachers 20] [--students 200] [--refund-share 0.1]
                         [--seed 1] [--bulk-create]

Django is configured from the environment (DJANGO_SETTINGS_MODULE, default
``linguaflex.settings.local``; DATABASE_URL). Other bench scripts call ``seed(...)`` after
``django.setup()``; it returns the figures (rows per table, payments per status, seconds).

What is written, and the invariants it keeps:

- users: one admin (decides the partial refunds), the teachers, the students; one password hash
  (``make_password`` once, reused: the password is ``bench-password``);
- gigs: one to three per teacher, prices in arbitrary cents (so the half-up rounding is exercised);
- payments: every one charged (``succeeded``, ``partially_refunded`` or ``refunded``), amount = the
  gig's price, fee = 10 % rounded half up and share = amount - fee (``stripe_payments.money``),
  refunded cents and their fee/share parts in the contract's cumulative split, currency usd, Stripe
  ids shaped like Stripe's (``pi_``, ``ch_``, ``pm_``; ``re_`` for refunds), unique across runs (a
  random tag per run); created_at spread over the last 365 days, ids in created_at order;
- bookings: exactly one per payment. ``pending_confirmation`` only for payments of the last
  BOOKING_CONFIRMATION_HOURS (about 5 % of them: an older one would be overdue for
  ``expire_pending_bookings``), ``confirmed`` while the lesson is ahead, then mostly ``completed``;
  a fully refunded payment's booking is ``declined`` or ``cancelled`` (the refund's kind);
- refund requests: ``succeeded`` and counted (``applied``), amounts summing to the payment's
  refunded cents: a full refund of kind decline/cancel, or one or two partial ones (kind requested,
  decided by the admin);
- ledger: ``charge:<payment>`` (student -amount, platform_fees +fee, teacher_owed +share) and
  ``refund:<refund>`` (student +refund, platform_fees -fee part, teacher_owed -share part), as the
  services and migration 0009 write them. No teacher transfer is made (platform charges, the shares
  stay owed), so ``manage.py check_ledger`` holds. Nothing exists at Stripe:
  ``check_stripe_consistency`` would report every payment missing there.

On PostgreSQL the rows go in by COPY with ids taken from the tables' sequences (``--bulk-create``
uses ``bulk_create`` instead); elsewhere (the tests' SQLite) by ``bulk_create`` with batch_size
5000, the created_at/updated_at fields' auto_now(_add) switched off for the call so the given
timestamps are kept. PostgreSQL's tables are ANALYZEd after the commit (the planner then knows).
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import string
import sys
import time
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

BATCH_SIZE = 5000
DAYS = 365
PASSWORD = "bench-password"
PENDING_SHARE = 0.05  # of the payments: made in the last BOOKING_CONFIRMATION_HOURS, still pending
TWO_PARTIAL_SHARE = 0.2  # of the partially refunded payments: refunded twice
LANGUAGES = ("English", "Spanish", "French", "German", "Italian", "Japanese", "Mandarin", "Portuguese")
_B62 = string.digits + string.ascii_letters


def _b62(n: int, width: int) -> str:
    out = []
    while n:
        n, r = divmod(n, 62)
        out.append(_B62[r])
    return "".join(reversed(out)).rjust(width, "0")


@contextmanager
def _explicit_timestamps(model):
    """bulk_create keeps the given created_at/updated_at: auto_now(_add) off for the call."""
    from django.db import models

    saved = []
    for f in model._meta.concrete_fields:
        if isinstance(f, models.DateField) and (f.auto_now or f.auto_now_add):
            saved.append((f, f.auto_now, f.auto_now_add))
            f.auto_now = f.auto_now_add = False
    try:
        yield
    finally:
        for f, auto_now, auto_now_add in saved:
            f.auto_now, f.auto_now_add = auto_now, auto_now_add


def _insert(model, rows: list[dict], *, copy: bool, now) -> list[int]:
    """Insert ``rows`` (attname -> value; the fields left out take their default) and return their
    ids, in order."""
    from django.db import connection, models

    if not rows:
        return []
    if not copy:
        objs = [model(**row) for row in rows]
        with _explicit_timestamps(model):
            model.objects.bulk_create(objs, batch_size=BATCH_SIZE)
        ids = [o.pk for o in objs]
        if None in ids:
            raise RuntimeError(f"{connection.vendor} returned no ids from bulk_create")
        return ids
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    defaults = {}
    for f in fields:
        if isinstance(f, models.DateField) and (f.auto_now or f.auto_now_add):
            defaults[f.attname] = now
        elif isinstance(f, models.JSONField):
            raise ValueError(f"{model.__name__}.{f.name}: a JSON field is not written by COPY here")
        else:
            defaults[f.attname] = f.get_default()
    table = model._meta.db_table
    q = connection.ops.quote_name
    columns = ", ".join([q(model._meta.pk.column)] + [q(f.column) for f in fields])
    with connection.cursor() as cur:
        cur.execute("SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                    [table, model._meta.pk.column, len(rows)])
        ids = sorted(r[0] for r in cur.fetchall())
        attnames = [f.attname for f in fields]
        with cur.copy(f"COPY {q(table)} ({columns}) FROM STDIN") as out:
            for pk, row in zip(ids, rows, strict=True):
                out.write_row([pk] + [row[a] if a in row else defaults[a] for a in attnames])
    return ids


def seed(payments: int, *, teachers: int = 20, students: int = 200, refund_share: float = 0.1, seed: int = 1,
         bulk_create: bool = False, analyze: bool = True, fk_checks: bool = True) -> dict:
    """Write ``payments`` consistent payments (and everything they imply, see the module's text) in
    one transaction; return the figures. Deterministic in ``seed`` but for the per-run tag in the
    e-mails and Stripe ids (so a second run adds rows instead of colliding)."""
    from django.conf import settings
    from django.contrib.auth.hashers import make_password
    from django.db import connection, transaction
    from django.utils import timezone

    from accounts.models import Role, User
    from bookings.models import Booking, BookingStatus
    from gigs.models import Gig
    from stripe_payments.models import (
        LedgerAccount,
        LedgerEntry,
        LedgerKind,
        Payment,
        PaymentStatus,
        RefundKind,
        RefundRequest,
        RefundRequestStatus,
    )
    from stripe_payments.money import split_amount, split_refunded

    if payments < 0 or teachers < 1 or students < 1 or not 0 <= refund_share <= 1:
        raise ValueError("payments >= 0, teachers >= 1, students >= 1 and 0 <= refund_share <= 1")
    started = time.perf_counter()
    copy = connection.vendor == "postgresql" and not bulk_create
    rng = random.Random(seed)
    tag = "".join(secrets.choice(_B62) for _ in range(8))
    now = timezone.now()
    start = now - timedelta(days=DAYS)
    pending_after = now - timedelta(hours=settings.BOOKING_CONFIRMATION_HOURS)
    counters = {"pi": 0, "ch": 0, "pm": 0, "re": 0}

    def stripe_id(prefix: str) -> str:
        counters[prefix] += 1
        return f"{prefix}_{tag}{_b62(counters[prefix], 16)}"  # 24 characters after the prefix, as Stripe's

    table_seconds: dict[str, float] = {}

    def insert(model, rows):
        t0 = time.perf_counter()
        ids = _insert(model, rows, copy=copy, now=now)
        name = model._meta.db_table
        table_seconds[name] = round(table_seconds.get(name, 0) + time.perf_counter() - t0, 2)
        return ids

    A, K, S, B = LedgerAccount, LedgerKind, PaymentStatus, BookingStatus
    figures: dict = {"method": "copy" if copy else "bulk_create", "tag": tag}
    with transaction.atomic():
        if not fk_checks and connection.vendor == "postgresql":
            # Superuser only: no trigger fires in this transaction, so PostgreSQL does not check the
            # foreign keys (at the commit: most of the time otherwise). The rows are built consistent.
            with connection.cursor() as cur:
                cur.execute("SET LOCAL session_replication_role = replica")
        # --- users and gigs ---------------------------------------------------------------------
        password = make_password(PASSWORD)

        def user(role: str, name: str, i: int) -> dict:
            joined = start - timedelta(days=30 * rng.random())
            return {"email": f"{name}{i}.{tag.lower()}@bench.linguaflex.test", "password": password,
                    "first_name": name.capitalize(), "last_name": f"{i}", "role": role,
                    "is_staff": role == Role.ADMIN, "is_active": True, "is_superuser": False,
                    "date_joined": joined, "last_login": None}

        admin_id, = insert(User, [user(Role.ADMIN, "admin", 1)])
        teacher_ids = insert(User, [user(Role.TEACHER, "teacher", i) for i in range(1, teachers + 1)])
        student_ids = insert(User, [user(Role.STUDENT, "student", i) for i in range(1, students + 1)])
        gig_rows = []
        for teacher_id in teacher_ids:
            for _ in range(rng.randint(1, 3)):
                language = rng.choice(LANGUAGES)
                made = start - timedelta(days=20 * rng.random())
                gig_rows.append({"teacher_id": teacher_id, "title": f"{language} lesson", "description": "",
                                 "language": language, "price_cents": rng.randrange(1000, 15001),
                                 "currency": "usd", "duration_minutes": rng.choice((30, 45, 60, 90)),
                                 "is_active": True, "created_at": made, "updated_at": made})
        gig_ids = insert(Gig, gig_rows)
        gigs = [(pk, row["teacher_id"], row["price_cents"], row["duration_minutes"])
                for pk, row in zip(gig_ids, gig_rows, strict=True)]

        # --- the plan of each payment (ids in created_at order) ---------------------------------
        pending = round(payments * PENDING_SHARE)
        old_span = (pending_after - start).total_seconds()
        new_span = (now - pending_after).total_seconds()
        created = sorted([start + timedelta(seconds=old_span * rng.random()) for _ in range(payments - pending)]
                         + [pending_after + timedelta(seconds=new_span * rng.random()) for _ in range(pending)])
        older = [i for i, at in enumerate(created) if at <= pending_after]
        refunded_idx = rng.sample(older, min(len(older), round(payments * refund_share)))
        full_idx = set(refunded_idx[: len(refunded_idx) // 2])
        partial_idx = set(refunded_idx[len(refunded_idx) // 2:])

        payment_rows, plans = [], []
        for i, at in enumerate(created):
            gig_id, teacher_id, amount, minutes = rng.choice(gigs)
            student_id = rng.choice(student_ids)
            split = split_amount(amount)
            scheduled = at + timedelta(seconds=rng.uniform(3600, 14 * 86400))
            refunds = []  # (kind, cents, at)
            if i in full_idx:
                kind = rng.choice((RefundKind.DECLINE, RefundKind.CANCEL))
                refunds.append((kind, amount, min(now, at + timedelta(seconds=rng.uniform(600, 36 * 3600)))))
                status = S.REFUNDED
                booking = B.DECLINED if kind == RefundKind.DECLINE else B.CANCELLED
            else:
                if i in partial_idx:
                    total = rng.randint(1, amount - 1)
                    parts = [total]
                    if total >= 2 and rng.random() < TWO_PARTIAL_SHARE:
                        first = rng.randint(1, total - 1)
                        parts = [first, total - first]
                    when = max(at, min(now, scheduled + timedelta(seconds=rng.uniform(3600, 5 * 86400))))
                    for n, cents in enumerate(parts):
                        refunds.append((RefundKind.REQUESTED, cents, min(now, when + timedelta(days=n))))
                    status = S.PARTIALLY_REFUNDED
                else:
                    status = S.SUCCEEDED
                if at > pending_after:
                    booking = B.PENDING_CONFIRMATION
                elif scheduled + timedelta(minutes=minutes) > now or rng.random() < 0.1:
                    booking = B.CONFIRMED
                else:
                    booking = B.COMPLETED
            refunded = sum(cents for _, cents, _ in refunds)
            rsplit = split_refunded(amount_cents=amount, admin_fee_cents=split.admin_fee_cents,
                                    refunded_cents=refunded)
            updated = max([at + timedelta(seconds=2)] + [r_at for _, _, r_at in refunds])
            payment_rows.append({
                "student_id": student_id, "teacher_id": teacher_id, "gig_id": gig_id, "amount_cents": amount,
                "admin_fee_cents": split.admin_fee_cents, "teacher_amount_cents": split.teacher_amount_cents,
                "currency": "usd", "status": status, "refunded_cents": refunded,
                "refunded_admin_fee_cents": rsplit.admin_fee_cents,
                "refunded_teacher_cents": rsplit.teacher_amount_cents,
                "stripe_payment_intent_id": stripe_id("pi"), "stripe_customer_id": "",
                "stripe_charge_id": stripe_id("ch"), "stripe_payment_method_id": stripe_id("pm"),
                "card_brand": "visa", "card_last4": "4242", "scheduled_at": scheduled, "idempotency_key": None,
                "destination_account_id": "", "request_id": "", "created_at": at, "updated_at": updated,
            })
            plans.append((booking, minutes, refunds))
        payment_ids = insert(Payment, payment_rows)

        # --- bookings, refunds, ledger ----------------------------------------------------------
        booking_rows, refund_rows, refund_plans, ledger_rows = [], [], [], []
        for pk, row, (booking, minutes, refunds) in zip(payment_ids, payment_rows, plans, strict=True):
            at, scheduled = row["created_at"], row["scheduled_at"]
            b = {"gig_id": row["gig_id"], "student_id": row["student_id"], "teacher_id": row["teacher_id"],
                 "payment_id": pk, "status": booking, "scheduled_at": scheduled, "created_at": at,
                 "updated_at": at, "confirmed_at": None, "completed_at": None, "closed_at": None}
            if booking in (B.CONFIRMED, B.COMPLETED):
                b["confirmed_at"] = at + timedelta(seconds=rng.uniform(300, 24 * 3600))
                b["updated_at"] = b["confirmed_at"]
            if booking == B.COMPLETED:
                b["completed_at"] = b["updated_at"] = max(b["confirmed_at"], scheduled + timedelta(minutes=minutes))
            if booking in (B.DECLINED, B.CANCELLED):
                b["closed_at"] = b["updated_at"] = refunds[0][2]
            booking_rows.append(b)
            teacher_id = row["teacher_id"]
            ledger_rows += [
                {"movement": f"charge:{pk}", "account": A.STUDENT, "kind": K.CHARGE,
                 "amount_cents": -row["amount_cents"], "payment_id": pk, "teacher_id": teacher_id,
                 "stripe_object_id": row["stripe_charge_id"], "created_at": at},
                {"movement": f"charge:{pk}", "account": A.PLATFORM_FEES, "kind": K.FEE,
                 "amount_cents": row["admin_fee_cents"], "payment_id": pk, "teacher_id": teacher_id,
                 "stripe_object_id": row["stripe_charge_id"], "created_at": at},
                {"movement": f"charge:{pk}", "account": A.TEACHER_OWED, "kind": K.TEACHER_SHARE,
                 "amount_cents": row["teacher_amount_cents"], "payment_id": pk, "teacher_id": teacher_id,
                 "stripe_object_id": row["stripe_charge_id"], "created_at": at},
            ]
            refunded = fee_before = 0
            for kind, cents, r_at in refunds:
                refunded += cents
                fee_after = split_refunded(amount_cents=row["amount_cents"], admin_fee_cents=row["admin_fee_cents"],
                                           refunded_cents=refunded).admin_fee_cents
                requested = kind == RefundKind.REQUESTED
                refund_rows.append({
                    "payment_id": pk, "amount_cents": cents, "status": RefundRequestStatus.SUCCEEDED, "kind": kind,
                    "reason": "Part of the lesson was missed" if requested else f"Booking {kind}",
                    "decision_note": "", "failure_reason": "",
                    "requested_by_id": teacher_id if kind == RefundKind.DECLINE else row["student_id"],
                    "decided_by_id": admin_id if requested else None, "decided_at": r_at,
                    "stripe_refund_id": stripe_id("re"), "applied": True, "request_id": "",
                    "created_at": max(at, r_at - timedelta(hours=2)) if requested else r_at, "updated_at": r_at,
                })
                refund_plans.append((pk, teacher_id, cents, fee_after - fee_before, r_at))
                fee_before = fee_after
        insert(Booking, booking_rows)
        refund_ids = insert(RefundRequest, refund_rows)
        for rid, row, (pk, teacher_id, cents, fee_part, r_at) in zip(refund_ids, refund_rows, refund_plans,
                                                                     strict=True):
            common = {"movement": f"refund:{rid}", "kind": K.REFUND, "payment_id": pk, "teacher_id": teacher_id,
                      "stripe_object_id": row["stripe_refund_id"], "created_at": r_at}
            ledger_rows += [{**common, "account": A.STUDENT, "amount_cents": cents},
                            {**common, "account": A.PLATFORM_FEES, "amount_cents": -fee_part},
                            {**common, "account": A.TEACHER_OWED, "amount_cents": -(cents - fee_part)}]
        insert(LedgerEntry, ledger_rows)
        built = time.perf_counter()

    written = time.perf_counter()
    if analyze and connection.vendor == "postgresql":
        with connection.cursor() as cur:
            for model in (User, Gig, Payment, Booking, RefundRequest, LedgerEntry):
                cur.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
    by_status: dict[str, int] = {}
    for row in payment_rows:
        by_status[row["status"]] = by_status.get(row["status"], 0) + 1
    bookings_by_status: dict[str, int] = {}
    for row in booking_rows:
        bookings_by_status[row["status"]] = bookings_by_status.get(row["status"], 0) + 1
    figures.update({
        "rows": {"users": 1 + teachers + students, "gigs": len(gig_ids), "payments": len(payment_ids),
                 "bookings": len(booking_rows), "refund_requests": len(refund_ids),
                 "ledger_entries": len(ledger_rows)},
        "payments_by_status": dict(sorted(by_status.items())),
        "bookings_by_status": dict(sorted(bookings_by_status.items())),
        "insert_seconds": table_seconds,
        "commit_seconds": round(written - built, 2),  # the deferred foreign-key checks run here
        "seconds": round(written - started, 2),
        "analyze_seconds": round(time.perf_counter() - written, 2),
    })
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--payments", type=int, default=100_000)
    parser.add_argument("--teachers", type=int, default=20)
    parser.add_argument("--students", type=int, default=200)
    parser.add_argument("--refund-share", type=float, default=0.1, help="share of the payments refunded (0-1)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the figures")
    parser.add_argument("--bulk-create", action="store_true", help="bulk_create even on PostgreSQL (no COPY)")
    parser.add_argument("--no-fk-checks", action="store_true",
                        help="PostgreSQL, as a superuser: skip the foreign-key checks (session_replication_role)")
    parser.add_argument("--no-analyze", action="store_true", help="do not ANALYZE the tables afterwards")
    args = parser.parse_args(argv)

    root = Path(__file__).resolve().parents[1]
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "linguaflex.settings.local")
    import django

    django.setup()
    from django.db import connection

    figures = seed(args.payments, teachers=args.teachers, students=args.students, refund_share=args.refund_share,
                   seed=args.seed, bulk_create=args.bulk_create, analyze=not args.no_analyze,
                   fk_checks=not args.no_fk_checks)
    print(f"database: {connection.vendor} {connection.settings_dict.get('NAME')} ({figures['method']}, "
          f"run tag {figures['tag']})")
    for table, count in figures["rows"].items():
        print(f"  {table:<16} {count:>9,}")
    print("  payments by status: " + ", ".join(f"{k} {v:,}" for k, v in figures["payments_by_status"].items()))
    print("  bookings by status: " + ", ".join(f"{k} {v:,}" for k, v in figures["bookings_by_status"].items()))
    print("  insert seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in figures["insert_seconds"].items()))
    print(f"  {figures['seconds']:.2f} s in one transaction, {figures['commit_seconds']:.2f} s of it the commit "
          f"(+ {figures['analyze_seconds']:.2f} s ANALYZE)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
