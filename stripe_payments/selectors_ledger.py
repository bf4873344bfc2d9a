"""Reads of the ledger: a teacher's earnings (``GET /stripe-payments/earnings/``) and the staff
revenue report (Django admin, ``/admin/stripe_payments/revenue/``).

Both sum ``LedgerEntry`` rows in the database, grouped by account, kind and (for the per-period
figures) the calendar day or month of ``created_at`` in UTC, and hand the sums to
``services.ledger.figures``: it is linear, so summing the sums gives the figures of the rows.
A period's figures are the flows of that period; ``owed`` of the revenue report is the balance of
``teacher_owed`` at the end of each period (cumulative, from the first row of the ledger).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field

from django.db.models import Sum
from django.db.models.functions import TruncDay, TruncMonth

from linguaflex.errors import Forbidden, ValidationFailed

from .models import LedgerAccount, LedgerEntry
from .services.ledger import Figures, figures

UTC = dt.timezone.utc
PERIODS = ("day", "month")


@dataclass
class MonthFigures(Figures):
    """One calendar month (UTC) of a teacher's earnings: ``month`` is "YYYY-MM"."""

    month: str = ""


@dataclass
class Earnings:
    totals: Figures
    months: list[MonthFigures] = field(default_factory=list)  # newest month first


def _trunc(period: str):
    if period not in PERIODS:
        raise ValidationFailed(f"period must be one of {', '.join(PERIODS)}.", fields={"period": ["Invalid."]})
    return (TruncDay if period == "day" else TruncMonth)("created_at", tzinfo=UTC)


def _as_date(value) -> dt.date:
    """The start of a truncated period as a date (SQLite and PostgreSQL give a datetime, in UTC)."""
    if isinstance(value, dt.datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).date()
    return value


def _sums_by_period(qs, period: str) -> dict[dt.date, list[tuple[str, str, int]]]:
    """{period start: [(account, kind, cents), ...]} with one aggregate query (GROUP BY period, account, kind)."""
    grouped = (qs.annotate(period=_trunc(period)).order_by().values("period", "account", "kind")
               .annotate(cents=Sum("amount_cents")).values_list("period", "account", "kind", "cents"))
    out: dict[dt.date, list[tuple[str, str, int]]] = {}
    for start, account, kind, cents in grouped:
        out.setdefault(_as_date(start), []).append((account, kind, int(cents or 0)))
    return out


# --- a teacher's earnings -----------------------------------------------------------------------------------
def earnings_for_teacher(*, teacher) -> Earnings:
    """The teacher's own figures, in total and per calendar month in UTC (the flows of each month),
    newest month first. Teachers only: students and admins have no earnings (403)."""
    if not getattr(teacher, "is_teacher", False):
        raise Forbidden("Only teachers have earnings.")
    by_month = _sums_by_period(LedgerEntry.objects.filter(teacher=teacher), "month")
    months = [MonthFigures(month=f"{start:%Y-%m}", **asdict(figures(rows)))
              for start, rows in sorted(by_month.items(), reverse=True)]
    totals = figures(row for rows in by_month.values() for row in rows)
    return Earnings(totals=totals, months=months)


# --- the staff revenue report -------------------------------------------------------------------------------
@dataclass(frozen=True)
class RevenueRow:
    """One day or month of the whole platform, in cents."""

    start: dt.date  # the period's first day
    period: str  # "day" | "month"
    gross_cents: int = 0  # students paid
    platform_fee_cents: int = 0  # fees kept: charged less refunded and disputed fee parts
    refunded_cents: int = 0  # given back to students
    disputed_cents: int = 0  # taken by disputes, net of those won
    paid_out_cents: int = 0  # transfers to teachers in the period
    owed_cents: int = 0  # owed to teachers at the end of the period (cumulative balance)

    @property
    def label(self) -> str:
        return self.start.isoformat() if self.period == "day" else f"{self.start:%Y-%m}"


@dataclass
class RevenueReport:
    period: str
    since: dt.date | None
    until: dt.date | None
    rows: list[RevenueRow]  # oldest first, every period of the range (empty ones too)
    totals: RevenueRow | None  # the flows of the whole range; owed at its end

    def newest_first(self) -> list[RevenueRow]:
        return list(reversed(self.rows))


def _period_start(day: dt.date, period: str) -> dt.date:
    return day if period == "day" else day.replace(day=1)


def _next(start: dt.date, period: str) -> dt.date:
    if period == "day":
        return start + dt.timedelta(days=1)
    return (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=UTC)


def default_range(period: str, today: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """The admin page's range: the last 30 days, or the last 12 months (today's included)."""
    today = today or dt.datetime.now(UTC).date()
    if period == "day":
        return today - dt.timedelta(days=29), today
    start = today.replace(day=1)
    for _ in range(11):
        start = (start - dt.timedelta(days=1)).replace(day=1)
    return start, today


def revenue_report(*, period: str = "day", since: dt.date | None = None, until: dt.date | None = None) -> RevenueReport:
    """Per day or per month (UTC) over all teachers, ``since`` and ``until`` included (dates; None:
    from the ledger's first row / to its last): gross, platform fees, refunds, disputes, paid out
    and the end-of-period owed balance. Two aggregate queries: the rows of the range grouped by
    period, account and kind, and the owed balance before the range."""
    _trunc(period)  # validates
    if since is not None and until is not None and since > until:
        raise ValidationFailed("since must not be after until.", fields={"since": ["After until."]})
    qs = LedgerEntry.objects.all()
    if since is not None:
        since = _period_start(since, period)
        qs = qs.filter(created_at__gte=_midnight(since))
    if until is not None:
        qs = qs.filter(created_at__lt=_midnight(until + dt.timedelta(days=1)))
    by_period = _sums_by_period(qs, period)

    owed = 0
    if since is not None:
        owed = int(LedgerEntry.objects.filter(account=LedgerAccount.TEACHER_OWED, created_at__lt=_midnight(since))
                   .aggregate(total=Sum("amount_cents"))["total"] or 0)
    first = since if since is not None else min(by_period, default=None)
    last = _period_start(until, period) if until is not None else max(by_period, default=None)
    rows: list[RevenueRow] = []
    start = first
    while start is not None and last is not None and start <= last:
        f = figures(by_period.get(start, []))
        owed += f.owed_cents
        rows.append(RevenueRow(start=start, period=period, gross_cents=f.gross_cents,
                               platform_fee_cents=f.platform_fee_cents, refunded_cents=f.refunded_cents,
                               disputed_cents=f.disputed_cents, paid_out_cents=f.transferred_cents,
                               owed_cents=owed))
        start = _next(start, period)
    totals = None
    if rows:
        totals = RevenueRow(start=rows[0].start, period=period,
                            gross_cents=sum(r.gross_cents for r in rows),
                            platform_fee_cents=sum(r.platform_fee_cents for r in rows),
                            refunded_cents=sum(r.refunded_cents for r in rows),
                            disputed_cents=sum(r.disputed_cents for r in rows),
                            paid_out_cents=sum(r.paid_out_cents for r in rows),
                            owed_cents=rows[-1].owed_cents)
    return RevenueReport(period=period, since=since, until=until, rows=rows, totals=totals)
