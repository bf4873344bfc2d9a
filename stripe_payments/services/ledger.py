"""The ledger: every money movement of a payment as double-entry rows (``LedgerEntry``), written by
the workflow that moves the money, in the same transaction as its state change.

Accounts (``LedgerAccount``): ``student`` (negative: paid in), ``platform_fees``, ``teacher_owed``
(a share still on the platform's balance), ``teacher_paid`` (on the teacher's connected account),
``disputes``. Movements, each summing to zero and written once (named after the row that causes
it, under a unique constraint):

- ``charge:<payment>``: student −amount, platform_fees +fee, teacher_owed +share;
- ``transfer:<teacher transfer>``: teacher_owed −x, teacher_paid +x (a destination charge's share
  at once, a platform charge's when ``pay_out_teachers`` pays it);
- ``refund:<refund request>``: student +refund, platform_fees −its fee part, and the share part
  from teacher_owed (kind ``refund``) or, once paid out, from teacher_paid (kind ``refund`` where
  Stripe's refund call reversed the transfer itself, ``reversal`` where the payout run reverses
  it): the contract's cumulative split, so a full refund returns exactly the fee and the share;
  ``refund-undone:<refund request>`` when Stripe reports a counted refund failed.

``check`` verifies the invariants (``check_ledger`` runs it, with Stripe's balance transactions
when asked).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.db.models import Sum

from ..models import (
    LedgerAccount,
    LedgerEntry,
    LedgerKind,
    Payment,
    RefundRequest,
    TeacherTransfer,
    TeacherTransferStatus,
)

A, K = LedgerAccount, LedgerKind
TEACHER_ACCOUNTS = (A.TEACHER_OWED, A.TEACHER_PAID)


def _post(movement: str, payment: Payment, rows: list[tuple[str, str, int]], stripe_object_id: str = "",
          *, fresh: bool = False) -> bool:
    """Write one movement's rows (account, kind, cents) once; False if it was written before.
    A zero row is kept beside non-zero ones: its account and kind still say who moved what (a
    1-cent refund's share part of 0 still says whether Stripe reversed the transfer).
    ``fresh``: the movement's cause was made in the caller's transaction, so it cannot exist yet:
    one INSERT, no lookup and no savepoint; a conflict raises (the caller rolls back)."""
    if sum(cents for _, _, cents in rows) != 0:
        raise ValueError(f"ledger movement {movement} does not balance: {rows}")
    if not any(cents for _, _, cents in rows):
        return False
    entries = [LedgerEntry(movement=movement, account=account, kind=kind, amount_cents=cents, payment=payment,
                           teacher_id=payment.teacher_id, stripe_object_id=stripe_object_id[:255])
               for account, kind, cents in rows]
    if fresh:
        LedgerEntry.objects.bulk_create(entries)
        return True
    if LedgerEntry.objects.filter(movement=movement).exists():
        return False
    try:
        with transaction.atomic():
            LedgerEntry.objects.bulk_create(entries)
    except IntegrityError:  # a concurrent writer of the same movement won
        return False
    return True


def post_movement(movement: str, payment: Payment, rows: list[tuple[str, str, int]],
                  stripe_object_id: str = "") -> bool:
    """Write a movement another workflow names (disputes): rows (account, kind, cents) summing to 0."""
    return _post(movement, payment, rows, stripe_object_id)


def movement_exists(movement: str) -> bool:
    return LedgerEntry.objects.filter(movement=movement).exists()


def post_charge(*, payment: Payment, fresh: bool = False) -> None:
    """The student paid: the fee to the platform, the share owed to the teacher. ``fresh``: the
    payment became succeeded in the caller's transaction (``_post``)."""
    _post(f"charge:{payment.pk}", payment, [
        (A.STUDENT, K.CHARGE, -payment.amount_cents),
        (A.PLATFORM_FEES, K.FEE, payment.admin_fee_cents),
        (A.TEACHER_OWED, K.TEACHER_SHARE, payment.teacher_amount_cents),
    ], payment.stripe_charge_id, fresh=fresh)


def post_transfer(*, transfer: TeacherTransfer, payment: Payment, fresh: bool = False) -> None:
    """The share reached the teacher's connected account. ``fresh``: the transfer row was made in
    the caller's transaction (``_post``)."""
    _post(f"transfer:{transfer.pk}", payment, [
        (A.TEACHER_OWED, K.TRANSFER, -transfer.amount_cents),
        (A.TEACHER_PAID, K.TRANSFER, transfer.amount_cents),
    ], transfer.stripe_transfer_id or "", fresh=fresh)


def share_paid_out(payment: Payment) -> bool:
    """The payment's share is (being) paid to the teacher: refunds take it back from there."""
    transfer = TeacherTransfer.objects.filter(payment_id=payment.pk).first()
    return transfer is not None and transfer.status in (TeacherTransferStatus.PAID, TeacherTransferStatus.PENDING)


def post_refund(*, payment: Payment, refund: RefundRequest, fee_cents: int, share_cents: int, sign: int = 1,
                reversed_by_stripe: bool = False) -> None:
    """A refund counted (sign=1) into the payment, or uncounted (-1) when Stripe reported it failed:
    ``fee_cents`` and ``share_cents`` are its parts of the cumulative split. A paid-out share is
    taken from teacher_paid: kind ``refund`` where Stripe's refund reversed the transfer itself
    (``reversed_by_stripe``), kind ``reversal`` where the payout run must (an uncount mirrors the
    count)."""
    movement = f"refund:{refund.pk}" if sign > 0 else f"refund-undone:{refund.pk}"
    if sign < 0:
        counted = LedgerEntry.objects.filter(movement=f"refund:{refund.pk}", account__in=TEACHER_ACCOUNTS).first()
        teacher_account, teacher_kind = (counted.account, counted.kind) if counted else (A.TEACHER_OWED, K.REFUND)
    elif share_paid_out(payment):
        teacher_account, teacher_kind = A.TEACHER_PAID, (K.REFUND if reversed_by_stripe else K.REVERSAL)
    else:
        teacher_account, teacher_kind = A.TEACHER_OWED, K.REFUND
    _post(movement, payment, [
        (A.STUDENT, K.REFUND, sign * (fee_cents + share_cents)),
        (A.PLATFORM_FEES, K.REFUND, -sign * fee_cents),
        (teacher_account, teacher_kind, -sign * share_cents),
    ], refund.stripe_refund_id or "")


# --- reading it -------------------------------------------------------------------------------------------
def balance(*, account: str, payment_id: int | None = None, teacher_id: int | None = None) -> int:
    qs = LedgerEntry.objects.filter(account=account)
    if payment_id is not None:
        qs = qs.filter(payment_id=payment_id)
    if teacher_id is not None:
        qs = qs.filter(teacher_id=teacher_id)
    return int(qs.aggregate(total=Sum("amount_cents"))["total"] or 0)


def disputed_for_payment(payment_id: int) -> int:
    """What disputes have taken of a payment so far, net of those won."""
    return int(LedgerEntry.objects.filter(payment_id=payment_id, account=A.STUDENT,
                                          kind__in=[K.DISPUTE, K.DISPUTE_WON])
               .aggregate(total=Sum("amount_cents"))["total"] or 0)


def to_reverse_for_payment(payment_id: int) -> int:
    """What the platform itself must reverse at Stripe of a share on the teacher's account: the
    ``reversal`` rows (refunds whose Stripe call did not reverse the transfer) and disputes."""
    return -int(LedgerEntry.objects.filter(payment_id=payment_id, account=A.TEACHER_PAID,
                                           kind__in=[K.REVERSAL, K.DISPUTE])
                .aggregate(total=Sum("amount_cents"))["total"] or 0)


def owed_for_payment(payment_id: int) -> int:
    return balance(account=A.TEACHER_OWED, payment_id=payment_id)


@dataclass
class Figures:
    """The money of a set of ledger rows, in cents (what earnings and the revenue page show)."""

    gross_cents: int = 0  # students paid
    fees_charged_cents: int = 0  # the platform's fee of those charges
    shares_cents: int = 0  # the teachers' share of those charges
    refunded_cents: int = 0  # given back to students
    refunded_fee_cents: int = 0  # of which the platform's fee
    refunded_share_cents: int = 0  # of which the teachers' share
    disputed_cents: int = 0  # taken by disputes, net of those won
    disputed_share_cents: int = 0
    transferred_cents: int = 0  # moved from owed to paid
    paid_out_cents: int = 0  # balance of teacher_paid
    owed_cents: int = 0  # balance of teacher_owed

    @property
    def platform_fee_cents(self) -> int:
        """The fees the platform keeps: charged less refunded (and disputed) fee parts."""
        return self.fees_charged_cents - self.refunded_fee_cents - (self.disputed_cents - self.disputed_share_cents)

    @property
    def net_cents(self) -> int:
        """The teachers' earnings: their shares less what refunds and disputes took back."""
        return self.shares_cents - self.refunded_share_cents - self.disputed_share_cents


def figures(rows) -> Figures:
    """Sum ledger rows (an iterable of (account, kind, cents)) into ``Figures``."""
    f = Figures()
    for account, kind, cents in rows:
        if account == A.STUDENT and kind == K.CHARGE:
            f.gross_cents -= cents
        elif account == A.STUDENT and kind == K.REFUND:
            f.refunded_cents += cents
        elif account == A.STUDENT and kind in (K.DISPUTE, K.DISPUTE_WON):
            f.disputed_cents += cents
        elif account == A.PLATFORM_FEES and kind == K.FEE:
            f.fees_charged_cents += cents
        elif account == A.PLATFORM_FEES and kind == K.REFUND:
            f.refunded_fee_cents -= cents
        elif account in TEACHER_ACCOUNTS:
            if kind == K.TEACHER_SHARE:
                f.shares_cents += cents
            elif kind in (K.REFUND, K.REVERSAL):
                f.refunded_share_cents -= cents
            elif kind in (K.DISPUTE, K.DISPUTE_WON):
                f.disputed_share_cents -= cents
            elif kind == K.TRANSFER and account == A.TEACHER_PAID:
                f.transferred_cents += cents
        if account == A.TEACHER_PAID:
            f.paid_out_cents += cents
        elif account == A.TEACHER_OWED:
            f.owed_cents += cents
    return f


# --- the invariants ---------------------------------------------------------------------------------------
@dataclass
class LedgerReport:
    differences: list[str] = field(default_factory=list)
    movements: int = 0
    teachers: int = 0
    payments: int = 0
    total: Figures = field(default_factory=Figures)

    @property
    def ok(self) -> bool:
        return not self.differences


def _invariants(label: str, f: Figures, out: list[str]) -> None:
    if f.gross_cents != f.fees_charged_cents + f.shares_cents:
        out.append(f"{label}: students paid {f.gross_cents} != platform fees {f.fees_charged_cents} "
                   f"+ teacher shares {f.shares_cents}")
    accounted = f.paid_out_cents + f.owed_cents + f.refunded_share_cents + f.disputed_share_cents
    if f.shares_cents != accounted:
        out.append(f"{label}: teacher shares {f.shares_cents} != paid out {f.paid_out_cents} + owed "
                   f"{f.owed_cents} + refunded {f.refunded_share_cents} + disputes {f.disputed_share_cents}")


def check() -> LedgerReport:
    """Every invariant over the whole ledger, and the ledger against the payments it describes."""
    report = LedgerReport()
    rows = list(LedgerEntry.objects.values_list("movement", "account", "kind", "amount_cents", "payment_id",
                                                "teacher_id"))
    sums: dict[str, int] = defaultdict(int)
    by_teacher: dict[int, list] = defaultdict(list)
    by_payment: dict[int, list] = defaultdict(list)
    for movement, account, kind, cents, payment_id, teacher_id in rows:
        sums[movement] += cents
        by_teacher[teacher_id].append((account, kind, cents))
        by_payment[payment_id].append((account, kind, cents))
    report.movements = len(sums)
    for movement, total in sorted(sums.items()):
        if total != 0:
            report.differences.append(f"movement {movement} does not balance: {total:+d}")
    report.total = figures((a, k, c) for _, a, k, c, _, _ in rows)
    _invariants("total", report.total, report.differences)
    report.teachers = len(by_teacher)
    for teacher_id, teacher_rows in sorted(by_teacher.items()):
        _invariants(f"teacher {teacher_id}", figures(teacher_rows), report.differences)
    # The ledger against the payments: what moved is what the rows of the payments say.
    payments = Payment.objects.charged().values_list(
        "pk", "amount_cents", "admin_fee_cents", "teacher_amount_cents", "refunded_cents",
        "refunded_admin_fee_cents", "refunded_teacher_cents")
    seen = set()
    for pk, amount, fee, share, refunded, refunded_fee, refunded_share in payments:
        seen.add(pk)
        f = figures(by_payment.get(pk, []))
        expected = (amount, fee, share, refunded, refunded_fee, refunded_share)
        got = (f.gross_cents, f.fees_charged_cents, f.shares_cents, f.refunded_cents, f.refunded_fee_cents,
               f.refunded_share_cents)
        if expected != got:
            report.differences.append(
                f"payment {pk}: the payment says amount/fee/share/refunded/refunded fee/refunded share "
                f"{expected}, the ledger {got}")
    for pk in sorted(set(by_payment) - seen):
        if figures(by_payment[pk]).gross_cents:
            report.differences.append(f"payment {pk}: the ledger has a charge, the payment was never charged")
    report.payments = len(seen)
    for transfer in TeacherTransfer.objects.filter(status=TeacherTransferStatus.PAID).values_list("pk", "payment_id"):
        if not LedgerEntry.objects.filter(movement=f"transfer:{transfer[0]}").exists():
            report.differences.append(f"teacher transfer {transfer[0]} (payment {transfer[1]}) is paid, "
                                      f"the ledger has no transfer")
    return report


# Balance transaction types of a connected account that are not the teacher's earnings moving
# (the teacher's own payouts to the bank).
_PAYOUT_TYPES = frozenset({"payout", "payout_cancel", "payout_failure"})
_FEE_TYPES = frozenset({"application_fee", "application_fee_refund"})


def compare_with_stripe(report: LedgerReport) -> None:
    """Add to ``report`` where the ledger and Stripe's balance transactions disagree: each connected
    account's balance (its payouts to the bank aside) must equal what the ledger says was paid to
    that teacher, and the application fees the platform collected (net of fee refunds) must equal
    the ledger's fees of destination charges."""
    from .. import gateway
    from ..models import ConnectedAccount

    for account in ConnectedAccount.objects.order_by("pk"):
        txns = gateway.balance_transactions_all(account_id=account.stripe_account_id)
        at_stripe = sum(t.net for t in txns if t.type not in _PAYOUT_TYPES)
        in_ledger = balance(account=A.TEACHER_PAID, teacher_id=account.teacher_id)
        if at_stripe != in_ledger:
            report.differences.append(
                f"teacher {account.teacher_id} ({account.stripe_account_id}): Stripe's balance transactions "
                f"{at_stripe}, the ledger's paid to the teacher {in_ledger}")
    txns = gateway.balance_transactions_all()
    fees_at_stripe = sum(t.net for t in txns if t.type == "application_fee")
    fee_refunds_at_stripe = -sum(t.net for t in txns if t.type == "application_fee_refund")
    destination_rows = list(LedgerEntry.objects.exclude(payment__destination_account_id="").filter(
        kind__in=[K.FEE, K.REFUND]).values_list("movement", "account", "kind", "amount_cents"))
    # Refunds whose Stripe call refunded the fee too (refund_application_fee): their teacher row
    # says Stripe reversed the share (teacher_paid, kind refund).
    by_stripe = {m for m, account, kind, _ in destination_rows if account == A.TEACHER_PAID and kind == K.REFUND}
    fees_in_ledger = sum(c for _, account, kind, c in destination_rows if account == A.PLATFORM_FEES and kind == K.FEE)
    fee_refunds_in_ledger = -sum(c for m, account, kind, c in destination_rows
                                 if account == A.PLATFORM_FEES and kind == K.REFUND and m in by_stripe)
    if (fees_at_stripe, fee_refunds_at_stripe) != (fees_in_ledger, fee_refunds_in_ledger):
        report.differences.append(
            f"application fees: Stripe collected {fees_at_stripe} and refunded {fee_refunds_at_stripe}; the ledger's "
            f"destination charges {fees_in_ledger} and {fee_refunds_in_ledger}")
