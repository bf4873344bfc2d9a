"""Balances, balance transactions and payouts, per account: the platform's, or a connected
account's with the ``Stripe-Account`` header (Stripe's "Making API calls for connected
accounts"), each with its own ledger.

- ``book``: every money movement writes one balance transaction on the account it moves on
  (charges, refunds and their failures, transfers and their reversals, the payment ``py_`` and
  payment refunds on the connected account, application fees and their refunds, disputes,
  payouts). A transaction is ``pending`` until its ``available_on`` (two days after, as for a new
  US account; at once for the 4000000000000077 test card and for debits), then ``available``.
- ``GET /v1/balance``: ``available`` and ``pending`` summed from that ledger, as Stripe's balance
  is; ``release_funds`` (the control route) makes pending funds available now.
- ``GET /v1/balance_transactions`` (``type``, ``source``, ``payout``, ``created`` filters) and
  ``/{id}``; another account's transaction is ``resource_missing``, as at Stripe.
- Payouts (create, retrieve, list, update, cancel) from the available balance to the account's
  bank account: ``balance_insufficient`` beyond it, refused while the account's payouts are
  disabled. A payout is ``pending`` until ``settle_payout`` (the control route) marks it ``paid``
  or ``failed`` (``account_closed``, the funds come back), with ``payout.paid`` /
  ``payout.failed``; ``cancel`` gives a pending one back (``payout_cancel``).
"""

from __future__ import annotations

from typing import Optional

from .. import objects
from ..errors import invalid, missing
from ..params import get_str, merge_metadata
from ..store import Context, State
from ._common import Route, _amount, _currency, _page

INSUFFICIENT = ("You have insufficient available funds in your Stripe account. Try adding funds "
                "directly to your available balance by creating Charges using the "
                "4000000000000077 test card. See: https://stripe.com/docs/testing#available-balance")
PAYOUT_FAILURES = {
    "account_closed": "The bank account has been closed.",
    "insufficient_funds": "Your Stripe account has insufficient funds to cover the payout.",
    "no_account": "The bank account details on file are probably incorrect.",
}


def book(st: State, account: Optional[str], *, amount: int, type_: str, source: str,
         description: Optional[str] = None, fee_details: Optional[list] = None,
         at_once: bool = False, currency: str = "usd",
         available_on: Optional[int] = None) -> dict:
    """Write one balance transaction on ``account`` (None: the platform) and return it. Debits
    are available at once; credits after two days unless ``at_once`` or ``available_on``."""
    now = st.now()
    if available_on is None and (at_once or amount < 0):
        available_on = now
    txn = objects.balance_transaction(txnid=objects.new_id("txn"), now=now, amount=amount,
                                      currency=currency, source=source, type_=type_,
                                      description=description, fee_details=fee_details,
                                      available_on=available_on)
    return st.add(txn, account=account)


def _ledger(st: State, account: Optional[str]) -> list[dict]:
    ids = st.scoped_list("balance_transaction", account)
    return [st.objects[i] for i in ids.ids] if ids is not None else []


def totals(st: State, account: Optional[str]) -> tuple[int, int]:
    """(available, pending) of an account's ledger now; marks transactions that became
    available meanwhile."""
    now = st.now()
    available = pending = 0
    for txn in _ledger(st, account):
        if txn["available_on"] <= now:
            if txn["status"] != "available":
                txn["status"] = "available"
            available += txn["net"]
        else:
            pending += txn["net"]
    return available, pending


def release_funds(st: State, ctx: Context, account: Optional[str]) -> dict:
    """Emulator-only: every pending transaction of the account becomes available now (Stripe's
    two-day wait, skipped)."""
    now = st.now()
    for txn in _ledger(st, account):
        if txn["available_on"] > now:
            txn["available_on"] = now
            txn["status"] = "available"
    return balance_retrieve(st, ctx, {}) if ctx.account == account else _balance(st, account)


def _balance(st: State, account: Optional[str]) -> dict:
    available, pending = totals(st, account)
    return objects.balance(available=available, pending=pending,
                           connect_reserved=0)


def balance_retrieve(st: State, ctx: Context, p: dict) -> dict:
    return _balance(st, ctx.account)


def balance_transactions_retrieve(st: State, ctx: Context, p: dict, txn_id: str) -> dict:
    txn = st.owned("balance_transaction", txn_id, ctx.account)
    if txn is None:
        raise missing("balance_transaction", txn_id)
    return txn


def balance_transactions_list(st: State, ctx: Context, p: dict) -> dict:
    type_, source, payout = get_str(p, "type"), get_str(p, "source"), get_str(p, "payout")
    keep = None
    if type_ or source or payout:
        paid_out: Optional[set] = None
        if payout is not None:
            po = st.owned("payout", payout, ctx.account)
            paid_out = set(st.payout_txns.get(payout, ())) if po is not None else set()

        def keep(i: str) -> bool:
            txn = st.objects[i]
            return ((type_ is None or txn["type"] == type_)
                    and (source is None or txn["source"] == source)
                    and (paid_out is None or i in paid_out))
    return _page(st, st.scoped_list("balance_transaction", ctx.account),
                 "/v1/balance_transactions", p, keep)


# --- payouts ----------------------------------------------------------------------------------

def _payout_destination(st: State, account: Optional[str]) -> Optional[str]:
    if account is None:
        return "ba_platformtestbank000000"
    acct = st.objects[account]
    externals = acct["external_accounts"]["data"]
    return externals[0]["id"] if externals else None


def payouts_create(st: State, ctx: Context, p: dict) -> dict:
    amount = _amount(p)
    currency = _currency(p)
    if get_str(p, "method", "standard") != "standard":
        raise invalid("Instant payouts are not supported by the emulator: use method=standard.",
                      param="method")
    account = ctx.account
    destination = _payout_destination(st, account)
    if account is not None:
        acct = st.objects[account]
        if not acct["payouts_enabled"] or destination is None:
            raise invalid("Payouts are disabled on this account: it has requirements past due "
                          "or no bank account.", code="payouts_not_allowed")
    available, _ = totals(st, account)
    if amount > available:
        raise invalid(INSUFFICIENT, code="balance_insufficient", param="amount")
    poid = objects.new_id("po")
    txn = book(st, account, amount=-amount, type_="payout", source=poid,
               description=get_str(p, "description", "STRIPE PAYOUT"))
    po = objects.payout(poid=poid, now=st.now(), amount=amount, currency=currency,
                        destination=destination, balance_transaction=txn["id"],
                        description=get_str(p, "description", "STRIPE PAYOUT"),
                        metadata=merge_metadata({}, p),
                        statement_descriptor=get_str(p, "statement_descriptor"))
    st.add(po, account=account)
    # The payout's transactions: what it paid out (the available ones before it) and itself.
    st.payout_txns[poid] = [t["id"] for t in _ledger(st, account)
                            if t["status"] == "available" and t["type"] != "payout"] + [txn["id"]]
    st.record_event(ctx, "payout.created", po, account=account)
    return po


def _payout(st: State, ctx: Context, po_id: str) -> dict:
    po = st.owned("payout", po_id, ctx.account)
    if po is None:
        raise missing("payout", po_id)
    return po


def payouts_retrieve(st: State, ctx: Context, p: dict, po_id: str) -> dict:
    return _payout(st, ctx, po_id)


def payouts_update(st: State, ctx: Context, p: dict, po_id: str) -> dict:
    po = _payout(st, ctx, po_id)
    previous = {"metadata": dict(po["metadata"] or {})}
    po["metadata"] = merge_metadata(po["metadata"] or {}, p)
    st.record_event(ctx, "payout.updated", po, previous_attributes=previous,
                    account=ctx.account)
    return po


def payouts_list(st: State, ctx: Context, p: dict) -> dict:
    status = get_str(p, "status")
    keep = (lambda i: st.objects[i]["status"] == status) if status else None
    return _page(st, st.scoped_list("payout", ctx.account), "/v1/payouts", p, keep)


def payouts_cancel(st: State, ctx: Context, p: dict, po_id: str) -> dict:
    po = _payout(st, ctx, po_id)
    if po["status"] != "pending":
        raise invalid(f"Payout {po_id} is {po['status']}; only pending payouts can be canceled.")
    book(st, ctx.account, amount=po["amount"], type_="payout_cancel", source=po_id,
         at_once=True)
    previous = {"status": po["status"]}
    po["status"] = "canceled"
    st.record_event(ctx, "payout.canceled", po, previous_attributes=previous,
                    account=ctx.account)
    return po


def settle_payout(st: State, ctx: Context, po_id: str, outcome: str,
                  failure_code: Optional[str] = None) -> dict:
    """Emulator-only: the bank answers. ``paid``: ``payout.paid``; ``failed``: the funds come
    back (``payout_failure``), ``failure_code`` (``account_closed`` by default),
    ``payout.failed``."""
    po = st.get("payout", po_id)
    if po is None:
        raise missing("payout", po_id)
    if po["status"] not in ("pending", "in_transit"):
        raise invalid(f"Payout {po_id} is {po['status']}; it cannot settle again.")
    account = st.owner.get(po_id)
    previous = {"status": po["status"]}
    if outcome == "paid":
        po["status"] = "paid"
        po["reconciliation_status"] = "completed"
        po["trace_id"] = {"status": "supported", "value": objects.new_id("trace", 12)}
        st.record_event(ctx, "payout.paid", po, previous_attributes=previous, account=account)
        return po
    if outcome != "failed":
        raise invalid(f"Invalid outcome: {outcome!r} (paid or failed).", param="outcome")
    code = failure_code or "account_closed"
    if code not in PAYOUT_FAILURES:
        raise invalid(f"Invalid failure_code: must be one of {', '.join(PAYOUT_FAILURES)}",
                      param="failure_code")
    txn = book(st, account, amount=po["amount"], type_="payout_failure", source=po_id,
               at_once=True)
    po.update(status="failed", failure_code=code, failure_message=PAYOUT_FAILURES[code],
              failure_balance_transaction=txn["id"])
    st.record_event(ctx, "payout.failed", po, previous_attributes=previous, account=account)
    return po


ROUTES: list[Route] = [
    ("GET", "/v1/balance", "balance.retrieve", balance_retrieve),
    ("GET", "/v1/balance_transactions", "balance_transactions.list", balance_transactions_list),
    ("GET", "/v1/balance_transactions/{id}", "balance_transactions.retrieve",
     balance_transactions_retrieve),
    ("POST", "/v1/payouts", "payouts.create", payouts_create),
    ("GET", "/v1/payouts", "payouts.list", payouts_list),
    ("GET", "/v1/payouts/{id}", "payouts.retrieve", payouts_retrieve),
    ("POST", "/v1/payouts/{id}", "payouts.update", payouts_update),
    ("POST", "/v1/payouts/{id}/cancel", "payouts.cancel", payouts_cancel),
]

# The operations that act on the account the Stripe-Account header names; any other refuses it.
ACCOUNT_SCOPED = frozenset({
    "balance.retrieve", "balance_transactions.list", "balance_transactions.retrieve",
    "payouts.create", "payouts.list", "payouts.retrieve", "payouts.update", "payouts.cancel",
    "charges.retrieve", "refunds.retrieve",
})
