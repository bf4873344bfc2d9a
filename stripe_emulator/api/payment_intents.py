"""PaymentIntents: create, retrieve, update, confirm (the card's test behaviour decides: charged,
``requires_action`` for 3-D Secure, or declined with a failed charge and a 402), cancel, capture
(manual capture, partial or whole), list and search (Stripe's query language, the part the
project uses, through the lagging search index). ``complete_pi_authentication`` is what the 3-D
Secure page does. Charges and balance transactions are created here, when money moves.
"""

from __future__ import annotations

import re
from typing import Optional

from .. import cards, objects
from ..cards import BEHAVIOURS
from ..errors import invalid, param_missing
from ..params import get_bool, get_dict, get_enum, get_int, get_str, merge_metadata
from ..store import Context, State
from ._common import Route, _amount, _currency, _page, _require
from ._intent_common import (
    CONFIRMABLE,
    _complete_authentication,
    _confirmable,
    _customer_param,
    _decline,
    _intent_pm,
    _pm_types,
    _requires_action,
    _return_url,
    _unexpected_state,
)
from ._pm_common import _attach
from .connect import require_transfers_capability
from .transfers import check_destination_charge, destination_charge_captured

CANCELLATION_REASONS = ("duplicate", "fraudulent", "requested_by_customer", "abandoned")


def payment_intents_create(st: State, ctx: Context, p: dict) -> dict:
    amount = _amount(p)
    currency = _currency(p)
    customer = _customer_param(st, p)
    confirm = get_bool(p, "confirm")
    off_session = _off_session(p)
    if off_session and not confirm:
        raise invalid("off_session may only be used with confirm=true.", param="off_session")
    capture_method = get_enum(p, "capture_method", ("automatic", "automatic_async", "manual"),
                              "automatic_async")
    sfu = get_enum(p, "setup_future_usage", ("off_session", "on_session"))
    transfer_data = None
    if "transfer_data" in p:
        td = get_dict(p, "transfer_data")
        destination = get_str(td, "destination")
        if destination is None:
            raise param_missing("transfer_data[destination]")
        _require(st, "account", destination, param="transfer_data[destination]")
        transfer_data = {"amount": get_int(td, "amount"), "destination": destination}
    check_destination_charge(st, p, amount)
    pm_types = _pm_types(p)
    pm = _intent_pm(st, p, customer)
    pi = objects.payment_intent(
        piid=objects.new_id("pi"), now=st.now(), amount=amount, currency=currency,
        capture_method=capture_method, customer=customer,
        description=get_str(p, "description"), metadata=merge_metadata({}, p),
        payment_method_types=pm_types, receipt_email=get_str(p, "receipt_email"),
        setup_future_usage=sfu, transfer_data=transfer_data,
        application_fee_amount=get_int(p, "application_fee_amount"),
        on_behalf_of=get_str(p, "on_behalf_of"), transfer_group=get_str(p, "transfer_group"),
        statement_descriptor=get_str(p, "statement_descriptor"),
        statement_descriptor_suffix=get_str(p, "statement_descriptor_suffix"),
    )
    if pm is not None:
        pi["payment_method"] = pm["id"]
        pi["status"] = "requires_confirmation"
    st.add(pi)
    if confirm:
        _confirm_pi(st, ctx, pi, off_session, get_str(p, "return_url"),
                    get_bool(p, "error_on_requires_action"))
    return pi


def _off_session(p: dict) -> bool:
    value = p.get("off_session")
    if value in ("one_off", "recurring"):
        return True
    return get_bool(p, "off_session")


def payment_intents_retrieve(st: State, ctx: Context, p: dict, pi_id: str) -> dict:
    return _require(st, "payment_intent", pi_id)


def payment_intents_update(st: State, ctx: Context, p: dict, pi_id: str) -> dict:
    pi = _require(st, "payment_intent", pi_id)
    if pi["status"] in ("succeeded", "canceled", "processing", "requires_capture"):
        if set(p) - {"metadata", "description", "receipt_email", "expand"}:
            raise _unexpected_state(pi, "update")
    if "amount" in p:
        pi["amount"] = _amount(p)
    if "customer" in p:
        pi["customer"] = _customer_param(st, p)
        if pi["customer"]:
            st.index_customer("payment_intent", pi)
    if "payment_method" in p or "payment_method_data" in p:
        pm = _intent_pm(st, p, pi["customer"])
        pi["payment_method"] = pm["id"] if pm else None
        pi["status"] = "requires_confirmation" if pm else "requires_payment_method"
    if "setup_future_usage" in p:
        pi["setup_future_usage"] = get_enum(p, "setup_future_usage",
                                            ("off_session", "on_session"))
    for field in ("description", "receipt_email"):
        if field in p:
            pi[field] = get_str(p, field)
    pi["metadata"] = merge_metadata(pi["metadata"], p)
    return pi


def payment_intents_confirm(st: State, ctx: Context, p: dict, pi_id: str) -> dict:
    pi = _confirmable(st, "payment_intent", pi_id, p)
    if "setup_future_usage" in p:
        pi["setup_future_usage"] = get_enum(p, "setup_future_usage",
                                            ("off_session", "on_session"))
    if "receipt_email" in p:
        pi["receipt_email"] = get_str(p, "receipt_email")
    if "capture_method" in p:
        pi["capture_method"] = get_enum(p, "capture_method",
                                        ("automatic", "automatic_async", "manual"))
    _confirm_pi(st, ctx, pi, _off_session(p), _return_url(p, pi),
                get_bool(p, "error_on_requires_action"))
    return pi


def _confirm_pi(st: State, ctx: Context, pi: dict, off_session: bool,
                return_url: Optional[str], error_on_requires_action: bool = False) -> None:
    if pi["payment_method"] is None:
        raise invalid("You cannot confirm this PaymentIntent because it's missing a payment "
                      "method. To confirm the PaymentIntent with cus, provide a payment_method "
                      "or payment_method_data.", code="payment_intent_unexpected_state",
                      param="payment_method")
    destination = (pi.get("transfer_data") or {}).get("destination")
    if destination is not None:  # it may have lost the capability since the intent was made
        require_transfers_capability(st, destination, "transfer_data[destination]")
    pm = st.objects[pi["payment_method"]]
    meta = st.pm_meta[pm["id"]]
    behaviour = BEHAVIOURS[meta["behaviour"]]
    needs_auth = behaviour.auth == "always" or (
        behaviour.auth == "required" and not meta["authenticated"])
    if needs_auth:
        if off_session or error_on_requires_action:
            _decline_pi(st, ctx, pi, pm, "authentication_required")
        _requires_action(st, ctx, pi, return_url)
        return
    _charge_pi(st, ctx, pi, pm, three_d_secure=False)


def _charge_pi(st: State, ctx: Context, pi: dict, pm: dict, three_d_secure: bool) -> None:
    """Authorize (and, unless capture is manual, capture) the PaymentIntent's amount."""
    meta = st.pm_meta[pm["id"]]
    behaviour = BEHAVIOURS[meta["behaviour"]]
    decline = behaviour.decline or behaviour.charge_decline
    if decline:
        _decline_pi(st, ctx, pi, pm, decline)
    capture = pi["capture_method"] != "manual"
    now = st.now()
    chid = objects.new_id("ch")
    txn_id = None
    if capture:
        txn = objects.balance_transaction(txnid=objects.new_id("txn"), now=now,
                                          amount=pi["amount"], currency=pi["currency"],
                                          source=chid, type_="charge",
                                          description=pi["description"],
                                          available_on=now if behaviour.available_at_once
                                          else None)
        st.add(txn)
        txn_id = txn["id"]
    ch = objects.charge(chid=chid, now=now, pi=pi, pm=pm, captured=capture, paid=True,
                        failure_code=None, failure_message=None, decline_code=None,
                        balance_transaction=txn_id, three_d_secure=three_d_secure)
    st.add(ch)
    pi["latest_charge"] = chid
    pi["last_payment_error"] = None
    pi["next_action"] = None
    if three_d_secure:
        meta["authenticated"] = True
    if pi["setup_future_usage"] and pi["customer"] and pm["customer"] is None:
        meta["authenticated"] = meta["authenticated"] or three_d_secure
        _attach(st, ctx, pm, pi["customer"])
    if pm["customer"] is None:
        meta["consumed"] = True
    if capture:
        destination_charge_captured(st, ctx, pi, ch)
        pi["status"] = "succeeded"
        pi["amount_received"] = pi["amount"]
        st.record_event(ctx, "payment_intent.succeeded", pi)
    else:
        pi["status"] = "requires_capture"
        pi["amount_capturable"] = pi["amount"]
        st.record_event(ctx, "payment_intent.amount_capturable_updated", pi)


def _decline_pi(st: State, ctx: Context, pi: dict, pm: dict, decline: str) -> None:
    """A failed charge, the intent back to requires_payment_method, and a 402 card error."""
    message = cards.DECLINE_MESSAGES[decline]
    code = cards.decline_error_code(decline)
    ch = objects.charge(chid=objects.new_id("ch"), now=st.now(), pi=pi, pm=pm, captured=False,
                        paid=False, failure_code=code, failure_message=message,
                        decline_code=decline, balance_transaction=None, three_d_secure=False)
    st.add(ch)
    pi["latest_charge"] = ch["id"]
    _decline(st, ctx, pi, pm, decline, ch["id"])


def payment_intents_cancel(st: State, ctx: Context, p: dict, pi_id: str) -> dict:
    pi = _require(st, "payment_intent", pi_id)
    if pi["status"] not in CONFIRMABLE + ("requires_capture", "processing"):
        raise invalid(f"You cannot cancel this PaymentIntent because it has a status of "
                      f"{pi['status']}. Only a PaymentIntent with one of the following "
                      f"statuses may be canceled: requires_payment_method, requires_capture, "
                      f"requires_confirmation, requires_action, processing.",
                      code="payment_intent_unexpected_state")
    reason = get_enum(p, "cancellation_reason", CANCELLATION_REASONS)
    if pi["status"] == "requires_capture":
        ch = st.objects[pi["latest_charge"]]
        ch["amount_refunded"] = ch["amount"]
        ch["refunded"] = True
        pi["amount_capturable"] = 0
    pi["status"] = "canceled"
    pi["canceled_at"] = st.now()
    pi["cancellation_reason"] = reason
    pi["next_action"] = None
    st.record_event(ctx, "payment_intent.canceled", pi)
    return pi


def payment_intents_capture(st: State, ctx: Context, p: dict, pi_id: str) -> dict:
    pi = _require(st, "payment_intent", pi_id)
    if pi["status"] != "requires_capture":
        raise invalid(f"This PaymentIntent could not be captured because it has a status of "
                      f"{pi['status']}. Only a PaymentIntent with one of the following statuses "
                      f"may be captured: requires_capture.",
                      code="payment_intent_unexpected_state")
    amount = get_int(p, "amount_to_capture", pi["amount_capturable"])
    if amount <= 0 or amount > pi["amount_capturable"]:
        raise invalid("The amount to capture must be positive and no more than the amount "
                      "capturable.", param="amount_to_capture", code="amount_too_large")
    ch = st.objects[pi["latest_charge"]]
    meta = st.pm_meta.get(ch["payment_method"]) or {}
    at_once = BEHAVIOURS[meta.get("behaviour") or "success"].available_at_once
    now = st.now()
    txn = objects.balance_transaction(txnid=objects.new_id("txn"), now=now, amount=amount,
                                      currency=pi["currency"], source=ch["id"], type_="charge",
                                      description=pi["description"],
                                      available_on=now if at_once else None)
    st.add(txn)
    ch["captured"] = True
    ch["amount_captured"] = amount
    ch["amount_refunded"] = ch["amount"] - amount
    ch["balance_transaction"] = txn["id"]
    if "application_fee_amount" in p:
        pi["application_fee_amount"] = get_int(p, "application_fee_amount")
        check_destination_charge(st, {"transfer_data": pi["transfer_data"],
                                      "application_fee_amount": pi["application_fee_amount"]},
                                 amount)
        ch["application_fee_amount"] = pi["application_fee_amount"]
    destination_charge_captured(st, ctx, pi, ch)
    pi["metadata"] = merge_metadata(pi["metadata"], p)
    pi["amount_received"] = amount
    pi["amount_capturable"] = 0
    pi["status"] = "succeeded"
    st.record_event(ctx, "payment_intent.succeeded", pi)
    return pi


def payment_intents_list(st: State, ctx: Context, p: dict) -> dict:
    customer = get_str(p, "customer")
    if customer is not None:
        return _page(st, st.by_customer.get(("payment_intent", customer)),
                     "/v1/payment_intents", p)
    return _page(st, st.lists["payment_intent"], "/v1/payment_intents", p)


_SEARCH_CLAUSE = re.compile(r"""^\s*(metadata\[['"]([^'"]+)['"]\]|status|customer)\s*:\s*['"]([^'"]*)['"]\s*$""")


def payment_intents_search(st: State, ctx: Context, p: dict) -> dict:
    """Stripe's Search Query Language, the part the project uses: clauses ``metadata['k']:'v'``,
    ``status:'v'`` and ``customer:'v'`` joined by AND. Newest first; a scan (search is for
    reconciliation, not the hot path). Reads the search index (``st.search``), which lags the live
    state by the configured search lag, as Stripe's eventually consistent search does: it matches
    and returns each intent as it was ``lag`` ago, and leaves out those created since."""
    query = get_str(p, "query")
    if not query:
        raise param_missing("query")
    clauses = []
    for part in re.split(r"\s+AND\s+", query.strip()):
        match = _SEARCH_CLAUSE.match(part)
        if match is None:
            raise invalid(f"Unsupported or malformed search clause: {part!r}", param="query")
        field, meta_key, value = match.group(1), match.group(2), match.group(3)
        clauses.append((meta_key, field, value))
    limit = get_int(p, "limit", 10)
    if not 1 <= limit <= 100:
        raise invalid("Invalid limit: must be between 1 and 100", param="limit")

    def matches(pi: dict) -> bool:
        for meta_key, field, value in clauses:
            if meta_key is not None:
                if (pi.get("metadata") or {}).get(meta_key) != value:
                    return False
            elif pi.get(field) != value:
                return False
        return True

    index = st.search
    index.commit()
    found = []
    for i in reversed(st.lists["payment_intent"].ids):  # newest first, also within a second
        pi = st.objects.get(i)
        seen = index.view(pi) if pi is not None else None
        if seen is not None and matches(seen):
            found.append(seen)
    found.sort(key=lambda pi: pi.get("created", 0), reverse=True)
    return {"object": "search_result", "data": found[:limit], "has_more": len(found) > limit,
            "next_page": None, "url": "/v1/payment_intents/search", "total_count": len(found)}


def complete_pi_authentication(st: State, ctx: Context, pi: dict, succeed: bool) -> None:
    """What the 3-D Secure page's buttons do to a PaymentIntent in requires_action."""
    _complete_authentication(st, ctx, pi, succeed,
                             lambda pm: _charge_pi(st, ctx, pi, pm, three_d_secure=True))


# /search before /{id}: the first route that matches is taken.
ROUTES: list[Route] = [
    ("POST", "/v1/payment_intents", "payment_intents.create", payment_intents_create),
    ("GET", "/v1/payment_intents", "payment_intents.list", payment_intents_list),
    ("GET", "/v1/payment_intents/search", "payment_intents.search", payment_intents_search),
    ("GET", "/v1/payment_intents/{id}", "payment_intents.retrieve", payment_intents_retrieve),
    ("POST", "/v1/payment_intents/{id}", "payment_intents.update", payment_intents_update),
    ("POST", "/v1/payment_intents/{id}/confirm", "payment_intents.confirm",
     payment_intents_confirm),
    ("POST", "/v1/payment_intents/{id}/cancel", "payment_intents.cancel",
     payment_intents_cancel),
    ("POST", "/v1/payment_intents/{id}/capture", "payment_intents.capture",
     payment_intents_capture),
]
