"""Refunds: create (of a PaymentIntent's or a charge's captured amount, whole or partial, with
its balance transaction; ``charge.refunded`` and ``refund.created``), retrieve, update
(metadata; ``refund.updated``) and list (by charge or PaymentIntent). Refunds succeed at once;
``fail_refund`` is the emulator's trigger for one that fails later.
"""

from __future__ import annotations

from .. import objects
from ..errors import invalid, missing
from ..params import get_enum, get_int, get_str, merge_metadata
from ..store import Context, State
from ._common import Route, _page, _require

REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")


def refunds_create(st: State, ctx: Context, p: dict) -> dict:
    pi_id, ch_id = get_str(p, "payment_intent"), get_str(p, "charge")
    if pi_id is None and ch_id is None:
        raise invalid("One of the following params should be provided for this request: "
                      "payment_intent or charge.", param="payment_intent",
                      code="parameter_missing")
    ch = None
    if pi_id is not None:
        pi = _require(st, "payment_intent", pi_id, param="payment_intent")
        if pi["status"] != "succeeded" or not pi["latest_charge"]:
            raise invalid(f"This PaymentIntent ({pi_id}) does not have a successful charge to "
                          f"refund.", param="payment_intent")
        ch = st.objects[pi["latest_charge"]]
    if ch_id is not None:
        by_id = _require(st, "charge", ch_id, param="charge")
        if ch is not None and by_id is not ch:
            raise invalid(f"Charge {ch_id} does not belong to PaymentIntent {pi_id}.",
                          param="charge")
        ch = by_id
    if not ch["paid"] or not ch["captured"]:
        raise invalid(f"Charge {ch['id']} has not been captured; it cannot be refunded.",
                      param="charge")
    if ch["disputed"]:
        raise invalid(f"Charge {ch['id']} has been charged back; cannot issue a refund.",
                      code="charge_disputed")
    remaining = ch["amount_captured"] - ch["amount_refunded"]
    if remaining <= 0:
        raise invalid(f"Charge {ch['id']} has already been refunded.",
                      code="charge_already_refunded")
    amount = get_int(p, "amount", remaining)
    if amount <= 0:
        raise invalid("Refund amount must be a positive integer.", param="amount",
                      code="parameter_invalid_integer")
    if amount > remaining:
        raise invalid(f"Refund amount (${amount / 100:.2f}) is greater than unrefunded amount on "
                      f"charge (${remaining / 100:.2f})", param="amount", code="amount_too_large")
    reason = get_enum(p, "reason", REFUND_REASONS)
    now = st.now()
    reid = objects.new_id("re")
    txn = objects.balance_transaction(txnid=objects.new_id("txn"), now=now, amount=-amount,
                                      currency=ch["currency"], source=reid, type_="refund",
                                      description="REFUND FOR CHARGE")
    st.add(txn)
    re = objects.refund(reid=reid, now=now, amount=amount, ch=ch, reason=reason,
                        metadata=merge_metadata({}, p), balance_transaction=txn["id"])
    st.add(re)
    previous = {"amount_refunded": ch["amount_refunded"], "refunded": ch["refunded"]}
    ch["amount_refunded"] += amount
    ch["refunded"] = ch["amount_refunded"] >= ch["amount_captured"]
    _charge_refund_list(st, ch)
    st.record_event(ctx, "charge.refunded", ch, previous_attributes=previous)
    st.record_event(ctx, "refund.created", re)
    return re


def _charge_refund_list(st: State, ch: dict) -> None:
    ids = st.by_parent.get(("refund", ch["id"]))
    page, has_more = ids.page(10, None, None) if ids else ([], False)
    ch["refunds"] = objects.list_object(f"/v1/charges/{ch['id']}/refunds",
                                        [st.objects[i] for i in page], has_more)


def refunds_retrieve(st: State, ctx: Context, p: dict, re_id: str) -> dict:
    return _require(st, "refund", re_id)


def refunds_update(st: State, ctx: Context, p: dict, re_id: str) -> dict:
    re = _require(st, "refund", re_id)
    previous = {"metadata": dict(re["metadata"])}
    re["metadata"] = merge_metadata(re["metadata"], p)
    st.record_event(ctx, "refund.updated", re, previous_attributes=previous)
    return re


def fail_refund(st: State, ctx: Context, re_id: str) -> dict:
    """Emulator-only: a succeeded refund fails later (its money goes back to the balance)."""
    re = st.get("refund", re_id)
    if re is None:
        raise missing("refund", re_id)
    if re["status"] == "failed":
        raise invalid(f"Refund {re_id} has already failed.")
    ch = st.objects[re["charge"]]
    previous = {"status": re["status"]}
    re["status"] = "failed"
    ch["amount_refunded"] -= re["amount"]
    ch["refunded"] = ch["amount_refunded"] >= ch["amount_captured"]
    _charge_refund_list(st, ch)
    st.record_event(ctx, "refund.updated", re, previous_attributes=previous)
    return re


def refunds_list(st: State, ctx: Context, p: dict) -> dict:
    for parent in ("charge", "payment_intent"):
        value = get_str(p, parent)
        if value is not None:
            return _page(st, st.by_parent.get(("refund", value)), "/v1/refunds", p)
    return _page(st, st.lists["refund"], "/v1/refunds", p)


ROUTES: list[Route] = [
    ("POST", "/v1/refunds", "refunds.create", refunds_create),
    ("GET", "/v1/refunds", "refunds.list", refunds_list),
    ("GET", "/v1/refunds/{id}", "refunds.retrieve", refunds_retrieve),
    ("POST", "/v1/refunds/{id}", "refunds.update", refunds_update),
]
