"""Refunds: create (of a PaymentIntent's or a charge's captured amount, whole or partial, with
its balance transaction; ``charge.refunded`` and ``refund.created``), retrieve, update
(metadata; ``refund.updated``) and list (by charge or PaymentIntent). Refunds succeed at once,
except those of Stripe's refund test cards: 4000000000007726 (``pending``, then ``succeeded``)
and 4000000000005126 (``succeeded``, then ``failed`` with ``expired_or_canceled_card``). Those
settle later (``settle_refund``: by the emulator's timer, or ``/_emulator/refunds/{id}/settle``),
with ``refund.updated`` + ``charge.refund.updated`` (and ``refund.failed`` for a failure).
``fail_refund`` is the older trigger for one that fails later (``refund.updated`` only).
"""

from __future__ import annotations

from .. import objects
from ..cards import BEHAVIOURS
from ..errors import invalid, missing
from ..params import get_enum, get_int, get_str, merge_metadata
from ..store import Context, State
from ._common import Route, _page, _require
from .transfers import check_refund_options, refund_connect_shares

REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")
FAILURE_REASONS = ("expired_or_canceled_card", "lost_or_stolen_card", "unknown")


def refund_behaviour(st: State, ch: dict) -> str:
    """"succeed", "pending" or "fail_later": what the charge's test card does to refunds."""
    meta = st.pm_meta.get(ch.get("payment_method") or "") or {}
    behaviour = BEHAVIOURS.get(meta.get("behaviour") or "success")
    return behaviour.refund if behaviour is not None else "succeed"


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
    reverse_transfer, refund_app_fee = check_refund_options(ch, p)
    now = st.now()
    reid = objects.new_id("re")
    txn = objects.balance_transaction(txnid=objects.new_id("txn"), now=now, amount=-amount,
                                      currency=ch["currency"], source=reid, type_="refund",
                                      description="REFUND FOR CHARGE")
    st.add(txn)
    re = objects.refund(reid=reid, now=now, amount=amount, ch=ch, reason=reason,
                        metadata=merge_metadata({}, p), balance_transaction=txn["id"])
    later = refund_behaviour(st, ch)
    if later == "pending":
        re["status"] = "pending"
    st.add(re)
    previous = {"amount_refunded": ch["amount_refunded"], "refunded": ch["refunded"]}
    ch["amount_refunded"] += amount
    ch["refunded"] = ch["amount_refunded"] >= ch["amount_captured"]
    refund_connect_shares(st, ctx, ch, re, reverse_transfer, refund_app_fee)
    _charge_refund_list(st, ch)
    st.record_event(ctx, "charge.refunded", ch, previous_attributes=previous)
    st.record_event(ctx, "refund.created", re)
    if later != "succeed":
        scheduler = getattr(st, "refund_scheduler", None)  # set by control.Control
        if scheduler is not None:
            scheduler(reid)
    return re


def _charge_refund_list(st: State, ch: dict) -> None:
    ids = st.by_parent.get(("refund", ch["id"]))
    page, has_more = ids.page(10, None, None) if ids else ([], False)
    ch["refunds"] = objects.list_object(f"/v1/charges/{ch['id']}/refunds",
                                        [st.objects[i] for i in page], has_more)


def refunds_retrieve(st: State, ctx: Context, p: dict, re_id: str) -> dict:
    re = st.owned("refund", re_id, ctx.account)  # a connected account's pyr_ with its header
    if re is None:
        raise missing("refund", re_id)
    return re


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


def settle_refund(st: State, ctx: Context, re_id: str, outcome: str,
                  failure_reason: str | None = None) -> dict:
    """Emulator-only: a pending refund succeeds or fails, or a succeeded one fails, as Stripe's
    asynchronous refunds do. A failure gives the money back: the charge's ``amount_refunded``
    goes down and a ``refund_failure`` balance transaction (``failure_balance_transaction``)
    credits the balance. Events: ``refund.updated`` and ``charge.refund.updated`` (and, for a
    failure, ``refund.failed``), each with ``previous_attributes``."""
    re = st.get("refund", re_id)
    if re is None:
        raise missing("refund", re_id)
    if outcome not in ("succeeded", "failed"):
        raise invalid(f"Invalid outcome: {outcome!r} (succeeded or failed).", param="outcome")
    if outcome == "succeeded":
        if re["status"] != "pending":
            raise invalid(f"Refund {re_id} is {re['status']}, not pending; it cannot succeed.")
        previous: dict = {"status": "pending"}
        re["status"] = "succeeded"
    else:
        reason = failure_reason or "unknown"
        if reason not in FAILURE_REASONS:
            raise invalid(f"Invalid failure_reason: must be one of {', '.join(FAILURE_REASONS)}",
                          param="failure_reason")
        if re["status"] not in ("pending", "succeeded"):
            raise invalid(f"Refund {re_id} has already {re['status']}.")
        ch = st.objects[re["charge"]]
        txn = objects.balance_transaction(txnid=objects.new_id("txn"), now=st.now(),
                                          amount=re["amount"], currency=re["currency"],
                                          source=re_id, type_="refund_failure",
                                          description="REFUND FAILURE")
        st.add(txn)
        previous = {"failure_balance_transaction": None, "failure_reason": None,
                    "status": re["status"]}
        re["status"] = "failed"
        re["failure_balance_transaction"] = txn["id"]
        re["failure_reason"] = reason
        ch["amount_refunded"] -= re["amount"]
        ch["refunded"] = ch["amount_refunded"] >= ch["amount_captured"]
        _charge_refund_list(st, ch)
    st.record_event(ctx, "refund.updated", re, previous_attributes=previous)
    if outcome == "failed":
        st.record_event(ctx, "refund.failed", re, previous_attributes=previous)
    st.record_event(ctx, "charge.refund.updated", re, previous_attributes=previous)
    if outcome == "succeeded":
        _charge_refund_list(st, st.objects[re["charge"]])
    return re


def settle_due_refund(st: State, ctx: Context, re_id: str) -> dict | None:
    """What the emulator's timer does when a test card's refund comes due: a pending refund
    (4000000000007726) succeeds; a succeeded one of 4000000000005126 fails with
    ``expired_or_canceled_card``. Nothing when it was settled meanwhile (or reset)."""
    re = st.get("refund", re_id)
    if re is None:
        return None
    ch = st.objects.get(re["charge"])
    later = refund_behaviour(st, ch) if ch is not None else "succeed"
    if later == "pending" and re["status"] == "pending":
        return settle_refund(st, ctx, re_id, "succeeded")
    if later == "fail_later" and re["status"] == "succeeded":
        return settle_refund(st, ctx, re_id, "failed", "expired_or_canceled_card")
    return None


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
