"""Charges (retrieve; list by PaymentIntent or customer) and disputes (retrieve; list by charge
or PaymentIntent). Charges are made by the PaymentIntent operations and changed by refunds; a
dispute exists only through the emulator's triggers: ``create_dispute`` (funds withdrawn,
``charge.dispute.created``) and ``close_dispute`` (won or lost, ``charge.dispute.closed``).
"""

from __future__ import annotations

from .. import objects
from ..errors import invalid, missing
from ..params import get_str
from ..store import Context, State
from ._common import Route, _page, _require
from .balance import book


def charges_retrieve(st: State, ctx: Context, p: dict, ch_id: str) -> dict:
    ch = st.owned("charge", ch_id, ctx.account)  # a connected account's py_ with its header
    if ch is None:
        raise missing("charge", ch_id)
    return ch


def charges_list(st: State, ctx: Context, p: dict) -> dict:
    pi_id = get_str(p, "payment_intent")
    if pi_id is not None:
        return _page(st, st.by_parent.get(("charge", pi_id)), "/v1/charges", p)
    customer = get_str(p, "customer")
    if customer is not None:
        return _page(st, st.by_customer.get(("charge", customer)), "/v1/charges", p)
    return _page(st, st.lists["charge"], "/v1/charges", p)


def disputes_retrieve(st: State, ctx: Context, p: dict, dp_id: str) -> dict:
    return _require(st, "dispute", dp_id)


def disputes_list(st: State, ctx: Context, p: dict) -> dict:
    """Newest first; ``charge`` / ``payment_intent`` filters (a scan: disputes are few)."""
    charge, pi = get_str(p, "charge"), get_str(p, "payment_intent")
    keep = None
    if charge or pi:
        def keep(i: str) -> bool:
            dp = st.objects[i]
            return (charge is None or dp["charge"] == charge) and (pi is None or dp["payment_intent"] == pi)
    return _page(st, st.lists["dispute"], "/v1/disputes", p, keep)


def create_dispute(st: State, ctx: Context, ch_id: str, reason: str = "fraudulent") -> dict:
    ch = st.get("charge", ch_id)
    if ch is None:
        raise missing("charge", ch_id)
    if not ch["paid"] or not ch["captured"]:
        raise invalid(f"Charge {ch_id} was not captured; it cannot be disputed.")
    if ch["disputed"]:
        raise invalid(f"Charge {ch_id} is already disputed.")
    dp = objects.dispute(dpid=objects.new_id("dp"), now=st.now(), ch=ch, reason=reason)
    # The disputed amount and Stripe's dispute fee leave the platform's balance at once (on a
    # destination charge too: the platform is liable, Stripe's "Disputes on Connect platforms").
    txn = book(st, None, amount=-dp["amount"], type_="adjustment", source=dp["id"],
               description=f"Chargeback withdrawal for {ch_id}", currency=ch["currency"],
               fee_details=[{"amount": DISPUTE_FEE, "application": None,
                             "currency": ch["currency"], "description": "Dispute fee",
                             "type": "stripe_fee"}])
    txn["reporting_category"] = "dispute"
    dp["balance_transactions"] = [txn]
    st.add(dp)
    ch["disputed"] = True
    st.record_event(ctx, "charge.dispute.created", dp)
    st.record_event(ctx, "charge.dispute.funds_withdrawn", dp)
    return dp


DISPUTE_FEE = 1500


def close_dispute(st: State, ctx: Context, dp_id: str, outcome: str) -> dict:
    """Emulator-only: the card network decides. ``won``: the amount comes back
    (``charge.dispute.funds_reinstated``; the fee does not); ``lost``: it stays with the card
    holder. Either way ``charge.dispute.closed``."""
    dp = st.get("dispute", dp_id)
    if dp is None:
        raise missing("dispute", dp_id)
    if outcome not in ("won", "lost"):
        raise invalid(f"Invalid outcome: {outcome!r} (won or lost).", param="outcome")
    if dp["status"] in ("won", "lost", "warning_closed"):
        raise invalid(f"Dispute {dp_id} is already closed ({dp['status']}).")
    previous = {"status": dp["status"]}
    dp["status"] = outcome
    dp["evidence_details"]["submission_count"] = max(dp["evidence_details"]["submission_count"], 1)
    if outcome == "won":
        txn = book(st, None, amount=dp["amount"], type_="adjustment", source=dp_id,
                   description=f"Chargeback reversal for {dp['charge']}", at_once=True,
                   currency=dp["currency"])
        txn["reporting_category"] = "dispute_reversal"
        dp["balance_transactions"] = dp["balance_transactions"] + [txn]
        st.record_event(ctx, "charge.dispute.funds_reinstated", dp, previous_attributes=previous)
    st.record_event(ctx, "charge.dispute.closed", dp, previous_attributes=previous)
    return dp


ROUTES: list[Route] = [
    ("GET", "/v1/charges", "charges.list", charges_list),
    ("GET", "/v1/charges/{id}", "charges.retrieve", charges_retrieve),
    ("GET", "/v1/disputes", "disputes.list", disputes_list),
    ("GET", "/v1/disputes/{id}", "disputes.retrieve", disputes_retrieve),
]
