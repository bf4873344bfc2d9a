"""Stripe idempotency keys derived from committed rows.

A key names the row by its id *and* its creation instant: ids restart when a database is reset
(``make run`` after deleting db.sqlite3) while Stripe, or the emulator's state file, remembers
keys for 24 hours; the pair (id, created) never repeats, so a reset can never replay an old
PaymentIntent or collide with one.
"""

from __future__ import annotations

from datetime import datetime


def _instant(value: datetime) -> int:
    return int(value.timestamp() * 1_000_000)


def row_key(kind: str, pk: int, created: datetime, step: str = "") -> str:
    key = f"lf-{kind}-{pk}-{_instant(created)}"
    return f"{key}-{step}" if step else key


def payment_key(payment, step: str = "create") -> str:
    return row_key("payment", payment.pk, payment.created_at, step)


def customer_key(user) -> str:
    return row_key("customer", user.pk, user.date_joined)


def user_scoped_key(user, kind: str, part: str) -> str:
    return row_key(kind, user.pk, user.date_joined, part)
