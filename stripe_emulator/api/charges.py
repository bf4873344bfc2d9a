"""Charges (retrieve; list by PaymentIntent or customer), balance transactions and disputes
(retrieve). Charges are made by the PaymentIntent operations and changed by refunds; a dispute
exists only through the emulator's trigger, ``create_dispute`` (``charge.dispute.created``).
"""

from __future__ import annotations

from .. import objects
from ..errors import invalid, missing
from ..params import get_str
from ..store import Context, State
from ._common import Route, _page, _require


def charges_retrieve(st: State, ctx: Context, p: dict, ch_id: str) -> dict:
    return _require(st, "charge", ch_id)


def charges_list(st: State, ctx: Context, p: dict) -> dict:
    pi_id = get_str(p, "payment_intent")
    if pi_id is not None:
        return _page(st, st.by_parent.get(("charge", pi_id)), "/v1/charges", p)
    customer = get_str(p, "customer")
    if customer is not None:
        return _page(st, st.by_customer.get(("charge", customer)), "/v1/charges", p)
    return _page(st, st.lists["charge"], "/v1/charges", p)


def balance_transactions_retrieve(st: State, ctx: Context, p: dict, txn_id: str) -> dict:
    return _require(st, "balance_transaction", txn_id)


def disputes_retrieve(st: State, ctx: Context, p: dict, dp_id: str) -> dict:
    return _require(st, "dispute", dp_id)


def create_dispute(st: State, ctx: Context, ch_id: str, reason: str = "fraudulent") -> dict:
    ch = st.get("charge", ch_id)
    if ch is None:
        raise missing("charge", ch_id)
    if not ch["paid"] or not ch["captured"]:
        raise invalid(f"Charge {ch_id} was not captured; it cannot be disputed.")
    if ch["disputed"]:
        raise invalid(f"Charge {ch_id} is already disputed.")
    dp = objects.dispute(dpid=objects.new_id("dp"), now=st.now(), ch=ch, reason=reason)
    st.add(dp)
    ch["disputed"] = True
    st.record_event(ctx, "charge.dispute.created", dp)
    return dp


ROUTES: list[Route] = [
    ("GET", "/v1/charges", "charges.list", charges_list),
    ("GET", "/v1/charges/{id}", "charges.retrieve", charges_retrieve),
    ("GET", "/v1/balance_transactions/{id}", "balance_transactions.retrieve",
     balance_transactions_retrieve),
    ("GET", "/v1/disputes/{id}", "disputes.retrieve", disputes_retrieve),
]
