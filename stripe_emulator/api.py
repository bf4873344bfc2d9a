"""The /v1 operations: Stripe's behaviour for the resources the project uses.

Every operation is ``fn(state, ctx, params, *path_ids) -> object`` and runs under
``state.lock``. It returns the stored object (the server expands and serializes it) or raises
:class:`StripeError`. State changes made before a card error is raised are kept, as at Stripe
(a declined PaymentIntent stays declined, with its failed charge).
"""

from __future__ import annotations

import re
from typing import Callable, Optional

from . import cards, objects
from .cards import BEHAVIOURS, TEST_PAYMENT_METHODS, CardSummary
from .errors import StripeError, invalid, missing, param_missing, unknown_param
from .params import check_card_fields, get_bool, get_dict, get_enum, get_int, get_list, get_str, merge_metadata
from .store import Context, IdList, State, snapshot

CURRENCIES = ("usd",)
MIN_AMOUNT = 50
MAX_AMOUNT = 99_999_999
CANCELLATION_REASONS = ("duplicate", "fraudulent", "requested_by_customer", "abandoned")
REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")

AUTH_FAILURE_MESSAGE = (
    "The provided PaymentMethod has failed authentication. You can provide payment_method_data "
    "or a new PaymentMethod to attempt to fulfill this {what} again."
)


def _list_params(p: dict) -> tuple[int, Optional[str], Optional[str]]:
    limit = get_int(p, "limit", 10)
    if not 1 <= limit <= 100:
        raise invalid("Invalid limit: must be between 1 and 100", param="limit",
                      code="parameter_invalid_integer")
    return limit, get_str(p, "starting_after"), get_str(p, "ending_before")


_CREATED_OPS = ("gt", "gte", "lt", "lte")


def _timestamp(raw, param: str) -> Optional[int]:
    if raw is None or raw == "":
        return None
    if isinstance(raw, str):
        try:
            return int(raw)
        except ValueError:
            pass
    raise invalid(f"Invalid integer: {raw}", param=param, code="parameter_invalid_integer")


def _created_range(p: dict) -> Optional[tuple[Optional[int], Optional[int]]]:
    """The ``created`` filter of a list call as inclusive bounds (None: unbounded), or None
    without one: ``created=T`` (exactly), or ``created[gt|gte|lt|lte]=T``, Unix seconds."""
    value = p.get("created")
    if not isinstance(value, dict):
        exact = _timestamp(value, "created")
        return None if exact is None else (exact, exact)
    lo = hi = None
    for op, raw in value.items():
        if op not in _CREATED_OPS:
            raise unknown_param(f"created[{op}]")
        bound = _timestamp(raw, f"created[{op}]")
        if bound is None:
            continue
        if op in ("gt", "gte"):
            bound += op == "gt"
            lo = bound if lo is None else max(lo, bound)
        else:
            bound -= op == "lt"
            hi = bound if hi is None else min(hi, bound)
    return lo, hi


def _page(st: State, idlist, url: str, p: dict, keep=None) -> dict:
    """One page of a list, newest first: ``limit``, ``starting_after``, ``ending_before`` and
    ``created`` (see ``_created_range``) as at Stripe; ``keep`` filters further."""
    limit, after, before = _list_params(p)
    created = _created_range(p)
    if idlist is None:
        return objects.list_object(url, [], False)
    window = None
    if created is not None:
        lo, hi = created
        window = idlist.window(lo, hi)
        if window is None:  # the list cannot bisect: check each object
            outer = keep

            def keep(i: str) -> bool:
                obj = st.objects.get(i)
                if obj is None or (outer is not None and not outer(i)):
                    return False
                stamp = obj.get("created", 0)
                return (lo is None or stamp >= lo) and (hi is None or stamp <= hi)
    ids, has_more = idlist.page(limit, after, before, keep, window)
    return objects.list_object(url, [st.objects[i] for i in ids], has_more)


def _require(st: State, kind: str, oid: str, param: Optional[str] = None) -> dict:
    obj = st.get(kind, oid)
    if obj is None:
        raise missing(kind, oid, param=param)
    return obj


def _amount(p: dict, name: str = "amount") -> int:
    if p.get(name) in (None, ""):
        raise param_missing(name)
    amount = get_int(p, name)
    if amount < MIN_AMOUNT:
        raise invalid("Amount must be at least $0.50 usd", param=name, code="amount_too_small")
    if amount > MAX_AMOUNT:
        raise invalid("Amount must be no more than $999,999.99", param=name,
                      code="amount_too_large")
    return amount


def _currency(p: dict) -> str:
    currency = get_str(p, "currency")
    if currency is None:
        raise param_missing("currency")
    currency = currency.lower()
    if currency not in CURRENCIES:
        raise invalid(f"Invalid currency: {currency}. The emulator supports usd only.",
                      param="currency")
    return currency


# --- customers -----------------------------------------------------------------------------------

def customers_create(st: State, ctx: Context, p: dict) -> dict:
    cus = objects.customer(
        cid=objects.new_id("cus", 14), now=st.now(), email=get_str(p, "email"),
        name=get_str(p, "name"), description=get_str(p, "description"),
        phone=get_str(p, "phone"), metadata=merge_metadata({}, p),
    )
    pm_id = get_str(p, "payment_method")
    pm = None
    if pm_id:
        pm = _resolve_pm(st, pm_id, "payment_method", customer=None)
        _check_attachable(st, pm)
    st.add(cus)
    if pm is not None:
        _attach(st, ctx, pm, cus["id"])
    _update_invoice_settings(st, cus, p)
    return cus


def customers_retrieve(st: State, ctx: Context, p: dict, cid: str) -> dict:
    if cid in st.deleted_customers:
        return {"deleted": True, "id": cid, "object": "customer"}
    return _require(st, "customer", cid)


def customers_update(st: State, ctx: Context, p: dict, cid: str) -> dict:
    cus = _require(st, "customer", cid)
    for field in ("email", "name", "description", "phone"):
        if field in p:
            cus[field] = get_str(p, field)
    if cus["email"] and "email" in p:
        st.customers_by_email.setdefault(cus["email"], IdList()).append(cid, cus["created"])
    cus["metadata"] = merge_metadata(cus["metadata"], p)
    _update_invoice_settings(st, cus, p)
    return cus


def _update_invoice_settings(st: State, cus: dict, p: dict) -> None:
    settings = get_dict(p, "invoice_settings")
    if "default_payment_method" not in settings:
        return
    pm_id = settings["default_payment_method"] or None
    if pm_id is not None:
        pm = st.get("payment_method", pm_id)
        if pm is None or pm["customer"] != cus["id"]:
            raise invalid(
                f"No such PaymentMethod: '{pm_id}'; It must be attached to the customer "
                f"'{cus['id']}'.", param="invoice_settings[default_payment_method]",
                code="resource_missing")
    cus["invoice_settings"]["default_payment_method"] = pm_id


def customers_delete(st: State, ctx: Context, p: dict, cid: str) -> dict:
    _require(st, "customer", cid)
    for pm_id in list(st.customer_pms.get(cid, {})):
        pm = st.objects[pm_id]
        pm["customer"] = None
        st.pm_meta[pm_id]["consumed"] = True
    st.customer_pms.pop(cid, None)
    del st.objects[cid]
    st.deleted_customers.add(cid)
    return {"deleted": True, "id": cid, "object": "customer"}


def customers_list(st: State, ctx: Context, p: dict) -> dict:
    email = get_str(p, "email")
    if email is not None:
        return _page(st, st.customers_by_email.get(email), "/v1/customers", p,
                     keep=lambda i: i in st.objects and st.objects[i]["email"] == email)
    return _page(st, st.lists["customer"], "/v1/customers", p, keep=lambda i: i in st.objects)


def customers_list_payment_methods(st: State, ctx: Context, p: dict, cid: str) -> dict:
    _require(st, "customer", cid)
    return _pm_page(st, cid, f"/v1/customers/{cid}/payment_methods", p)


# --- payment methods -------------------------------------------------------------------------------

def _store_pm(st: State, card: CardSummary, billing=None, metadata=None,
              allow_redisplay: str = "unspecified") -> dict:
    pm = objects.payment_method(pmid=objects.new_id("pm"), now=st.now(), card=card,
                                billing=billing, metadata=metadata,
                                allow_redisplay=allow_redisplay)
    return st.add(pm, meta={"behaviour": card.behaviour, "authenticated": False,
                            "consumed": False})


def _pm_from_data(st: State, data: dict, prefix: str) -> dict:
    """A new PaymentMethod from payment_method_data / POST /v1/payment_methods parameters."""
    pm_type = get_str(data, "type")
    if pm_type is None:
        raise param_missing(f"{prefix}type")
    if pm_type != "card":
        raise invalid(f"The emulator supports payment methods of type card only, not "
                      f"{pm_type}.", param=f"{prefix}type")
    if "card" not in data:
        raise param_missing(f"{prefix}card")
    card_prefix = f"{prefix[:-1]}[card]" if prefix else "card"
    raw = check_card_fields(data["card"], card_prefix)
    summary = cards.summarize(raw, card_prefix)
    return _store_pm(st, summary, billing=data.get("billing_details"),
                     metadata=merge_metadata({}, data),
                     allow_redisplay=get_str(data, "allow_redisplay", "unspecified"))


def _resolve_pm(st: State, pm_id: str, param: str, customer: Optional[str]) -> dict:
    """The PaymentMethod an id names; a test id (pm_card_visa ...) clones a fresh one."""
    number = TEST_PAYMENT_METHODS.get(pm_id)
    if number is not None:
        return _store_pm(st, cards.summary_for_test_number(number))
    pm = st.get("payment_method", pm_id)
    if pm is None:
        raise missing("PaymentMethod", pm_id, param=param)
    return pm


def _check_usable(st: State, pm: dict, customer: Optional[str], param: str) -> None:
    """Stripe's rules for using a PaymentMethod with an intent of this customer."""
    owner = pm["customer"]
    if owner is not None and customer is None:
        raise invalid(
            f"The provided PaymentMethod belongs to a Customer, but you did not provide a "
            f"Customer. Provide the Customer '{owner}' to use this PaymentMethod.", param=param)
    if owner is not None and owner != customer:
        raise invalid(
            "The provided PaymentMethod was previously attached to a different Customer.",
            param=param)
    if owner is None and st.pm_meta[pm["id"]]["consumed"]:
        raise invalid(
            "This PaymentMethod was previously used without being attached to a Customer or "
            "was detached from a Customer, and may not be used again.", param=param)


def _check_attachable(st: State, pm: dict) -> None:
    meta = st.pm_meta[pm["id"]]
    if pm["customer"] is not None:
        raise invalid("The payment method you provided has already been attached to a "
                      "customer.", param="payment_method")
    if meta["consumed"]:
        raise invalid(
            "This PaymentMethod was previously used without being attached to a Customer or "
            "was detached from a Customer, and may not be used again.",
            param="payment_method")
    decline = BEHAVIOURS[meta["behaviour"]].decline
    if decline:
        raise StripeError(402, "card_error", cards.DECLINE_MESSAGES[decline],
                          code=cards.decline_error_code(decline), decline_code=decline)


def _attach(st: State, ctx: Context, pm: dict, customer: str) -> None:
    pm["customer"] = customer
    st.index_customer("payment_method", pm)
    st.record_event(ctx, "payment_method.attached", pm)


def payment_methods_create(st: State, ctx: Context, p: dict) -> dict:
    if get_str(p, "customer") or get_str(p, "payment_method"):
        # Cloning a connected customer's PaymentMethod: not emulated.
        raise invalid("The emulator does not support cloning PaymentMethods.",
                      param="payment_method")
    return _pm_from_data(st, p, "")


def payment_methods_retrieve(st: State, ctx: Context, p: dict, pm_id: str) -> dict:
    number = TEST_PAYMENT_METHODS.get(pm_id)
    if number is not None:
        return _store_pm(st, cards.summary_for_test_number(number))
    return _require(st, "payment_method", pm_id)


def payment_methods_update(st: State, ctx: Context, p: dict, pm_id: str) -> dict:
    pm = _require(st, "payment_method", pm_id)
    pm["metadata"] = merge_metadata(pm["metadata"], p)
    if "billing_details" in p:
        pm["billing_details"] = objects.billing_details(get_dict(p, "billing_details"))
    card = get_dict(p, "card")
    for field in ("exp_month", "exp_year"):
        if field in card:
            pm["card"][field] = get_int(card, field)
    return pm


def payment_methods_attach(st: State, ctx: Context, p: dict, pm_id: str) -> dict:
    cid = get_str(p, "customer")
    if cid is None:
        raise param_missing("customer")
    _require(st, "customer", cid, param="customer")
    if pm_id in TEST_PAYMENT_METHODS:
        pm = _resolve_pm(st, pm_id, "payment_method", None)
    else:
        pm = _require(st, "payment_method", pm_id)
    _check_attachable(st, pm)
    _attach(st, ctx, pm, cid)
    return pm


def payment_methods_detach(st: State, ctx: Context, p: dict, pm_id: str) -> dict:
    pm = _require(st, "payment_method", pm_id)
    customer = pm["customer"]
    if customer is None:
        raise invalid("The payment method you provided is not attached to a customer so "
                      "detachment is impossible.", param="payment_method")
    pm["customer"] = None
    st.pm_meta[pm_id]["consumed"] = True
    st.unindex_pm(pm, customer)
    cus = st.get("customer", customer)
    if cus is not None and cus["invoice_settings"]["default_payment_method"] == pm_id:
        cus["invoice_settings"]["default_payment_method"] = None
    st.record_event(ctx, "payment_method.detached", pm,
                    previous_attributes={"customer": customer})
    return pm


def _pm_page(st: State, cid: str, url: str, p: dict) -> dict:
    pm_type = get_str(p, "type")
    if pm_type not in (None, "card"):
        return objects.list_object(url, [], False)
    ids = list(st.customer_pms.get(cid, {}))
    limit, after, before = _list_params(p)
    tmp = IdList()
    for i in ids:
        tmp.append(i)
    page, has_more = tmp.page(limit, after, before)
    return objects.list_object(url, [st.objects[i] for i in page], has_more)


def payment_methods_list(st: State, ctx: Context, p: dict) -> dict:
    cid = get_str(p, "customer")
    if cid is None:
        raise param_missing("customer")
    _require(st, "customer", cid, param="customer")
    return _pm_page(st, cid, "/v1/payment_methods", p)


# --- shared by intents -----------------------------------------------------------------------------

def _intent_pm(st: State, p: dict, customer: Optional[str]) -> Optional[dict]:
    """The PaymentMethod of a create/confirm call: payment_method or payment_method_data."""
    pm_id = get_str(p, "payment_method")
    data = p.get("payment_method_data")
    if pm_id and data:
        raise invalid("You cannot provide both payment_method and payment_method_data.",
                      param="payment_method_data")
    if data:
        if not isinstance(data, dict):
            raise invalid("Invalid object", param="payment_method_data")
        return _pm_from_data(st, data, "payment_method_data[")
    if pm_id:
        pm = _resolve_pm(st, pm_id, "payment_method", customer)
        _check_usable(st, pm, customer, "payment_method")
        return pm
    return None


def _pm_types(p: dict) -> Optional[list]:
    if p.get("payment_method_types") not in (None, "", [], {}):
        # Removed as a writable parameter in API version 2026-09-30.endive (the SDK's pinned one).
        raise invalid("payment_method_types is no longer supported. Use allowed_payment_method_types "
                      "(or dynamic payment methods) instead.", param="payment_method_types",
                      code="payment_method_types_no_longer_supported")
    types = get_list(p, "allowed_payment_method_types")
    for t in types:
        if t != "card":
            raise invalid(f"The emulator supports the card payment method type only, not {t}.",
                          param="allowed_payment_method_types")
    return types or None


def _next_action(ctx: Context, intent: dict, return_url: Optional[str]) -> dict:
    return {"type": "redirect_to_url",
            "redirect_to_url": {"url": f"{ctx.base_url}/_emulator/3ds/{intent['id']}",
                                "return_url": return_url}}


def _customer_param(st: State, p: dict) -> Optional[str]:
    cid = get_str(p, "customer")
    if cid is not None:
        _require(st, "customer", cid, param="customer")
    return cid


def _card_error_body(code: str, decline_code: Optional[str], message: str,
                     pm: dict, charge_id: Optional[str] = None, type_: str = "card_error") -> dict:
    body = {"type": type_, "code": code, "message": message,
            "doc_url": "https://stripe.com/docs/error-codes/" + code.replace("_", "-"),
            "payment_method": snapshot(pm)}
    if decline_code:
        body["decline_code"] = decline_code
    if charge_id:
        body["charge"] = charge_id
    return body


# --- payment intents -------------------------------------------------------------------------------

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


def _unexpected_state(intent: dict, action: str) -> StripeError:
    noun = "PaymentIntent" if intent["object"] == "payment_intent" else "SetupIntent"
    return invalid(f"You cannot {action} this {noun} because it has a status of "
                   f"{intent['status']}.", code=f"{intent['object']}_unexpected_state")


CONFIRMABLE = ("requires_payment_method", "requires_confirmation", "requires_action")


def payment_intents_confirm(st: State, ctx: Context, p: dict, pi_id: str) -> dict:
    pi = _require(st, "payment_intent", pi_id)
    if pi["status"] not in CONFIRMABLE:
        raise _unexpected_state(pi, "confirm")
    _pm_types(p)
    pm = _intent_pm(st, p, pi["customer"])
    if pm is not None:
        pi["payment_method"] = pm["id"]
    if "setup_future_usage" in p:
        pi["setup_future_usage"] = get_enum(p, "setup_future_usage",
                                            ("off_session", "on_session"))
    if "receipt_email" in p:
        pi["receipt_email"] = get_str(p, "receipt_email")
    if "capture_method" in p:
        pi["capture_method"] = get_enum(p, "capture_method",
                                        ("automatic", "automatic_async", "manual"))
    return_url = get_str(p, "return_url")
    if return_url is None and pi["next_action"]:
        return_url = pi["next_action"]["redirect_to_url"]["return_url"]
    _confirm_pi(st, ctx, pi, _off_session(p), return_url, get_bool(p, "error_on_requires_action"))
    return pi


def _confirm_pi(st: State, ctx: Context, pi: dict, off_session: bool,
                return_url: Optional[str], error_on_requires_action: bool = False) -> None:
    if pi["payment_method"] is None:
        raise invalid("You cannot confirm this PaymentIntent because it's missing a payment "
                      "method. To confirm the PaymentIntent with cus, provide a payment_method "
                      "or payment_method_data.", code="payment_intent_unexpected_state",
                      param="payment_method")
    pm = st.objects[pi["payment_method"]]
    meta = st.pm_meta[pm["id"]]
    behaviour = BEHAVIOURS[meta["behaviour"]]
    needs_auth = behaviour.auth == "always" or (
        behaviour.auth == "required" and not meta["authenticated"])
    if needs_auth:
        if off_session or error_on_requires_action:
            _decline_pi(st, ctx, pi, pm, "authentication_required")
        pi["status"] = "requires_action"
        pi["next_action"] = _next_action(ctx, pi, return_url)
        pi["last_payment_error"] = None
        st.record_event(ctx, "payment_intent.requires_action", pi)
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
                                          description=pi["description"])
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
    pi["last_payment_error"] = _card_error_body(code, decline, message, pm, ch["id"])
    pi["status"] = "requires_payment_method"
    pi["payment_method"] = None
    pi["next_action"] = None
    st.record_event(ctx, "payment_intent.payment_failed", pi)
    raise StripeError(402, "card_error", message, code=code, decline_code=decline,
                      extra={"charge": ch["id"], "payment_intent": snapshot(pi),
                             "payment_method": snapshot(pm)})


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
    txn = objects.balance_transaction(txnid=objects.new_id("txn"), now=st.now(), amount=amount,
                                      currency=pi["currency"], source=ch["id"], type_="charge",
                                      description=pi["description"])
    st.add(txn)
    ch["captured"] = True
    ch["amount_captured"] = amount
    ch["amount_refunded"] = ch["amount"] - amount
    ch["balance_transaction"] = txn["id"]
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
    if pi["status"] != "requires_action":
        raise _unexpected_state(pi, "authenticate")
    pm = st.objects[pi["payment_method"]]
    if succeed:
        _charge_pi(st, ctx, pi, pm, three_d_secure=True)
        return
    code = "payment_intent_authentication_failure"
    pi["last_payment_error"] = _card_error_body(
        code, None, AUTH_FAILURE_MESSAGE.format(what="PaymentIntent"), pm,
        type_="invalid_request_error")
    pi["status"] = "requires_payment_method"
    pi["payment_method"] = None
    pi["next_action"] = None
    st.record_event(ctx, "payment_intent.payment_failed", pi)


# --- setup intents -------------------------------------------------------------------------------

def setup_intents_create(st: State, ctx: Context, p: dict) -> dict:
    customer = _customer_param(st, p)
    usage = get_enum(p, "usage", ("off_session", "on_session"), "off_session")
    pm_types = _pm_types(p)
    pm = _intent_pm(st, p, customer)
    si = objects.setup_intent(siid=objects.new_id("seti"), now=st.now(), customer=customer,
                              description=get_str(p, "description"),
                              metadata=merge_metadata({}, p), payment_method_types=pm_types,
                              usage=usage)
    if pm is not None:
        si["payment_method"] = pm["id"]
        si["status"] = "requires_confirmation"
    st.add(si)
    if get_bool(p, "confirm"):
        _confirm_si(st, ctx, si, get_str(p, "return_url"))
    return si


def setup_intents_retrieve(st: State, ctx: Context, p: dict, si_id: str) -> dict:
    return _require(st, "setup_intent", si_id)


def setup_intents_confirm(st: State, ctx: Context, p: dict, si_id: str) -> dict:
    si = _require(st, "setup_intent", si_id)
    if si["status"] not in CONFIRMABLE:
        raise _unexpected_state(si, "confirm")
    _pm_types(p)
    pm = _intent_pm(st, p, si["customer"])
    if pm is not None:
        si["payment_method"] = pm["id"]
    return_url = get_str(p, "return_url")
    if return_url is None and si["next_action"]:
        return_url = si["next_action"]["redirect_to_url"]["return_url"]
    _confirm_si(st, ctx, si, return_url)
    return si


def _confirm_si(st: State, ctx: Context, si: dict, return_url: Optional[str]) -> None:
    if si["payment_method"] is None:
        raise invalid("You cannot confirm this SetupIntent because it's missing a payment "
                      "method.", code="setup_intent_unexpected_state", param="payment_method")
    pm = st.objects[si["payment_method"]]
    behaviour = BEHAVIOURS[st.pm_meta[pm["id"]]["behaviour"]]
    if behaviour.decline:
        decline = behaviour.decline
        message = cards.DECLINE_MESSAGES[decline]
        code = cards.decline_error_code(decline)
        si["last_setup_error"] = _card_error_body(code, decline, message, pm)
        si["status"] = "requires_payment_method"
        si["payment_method"] = None
        si["next_action"] = None
        st.record_event(ctx, "setup_intent.setup_failed", si)
        raise StripeError(402, "card_error", message, code=code, decline_code=decline,
                          extra={"setup_intent": snapshot(si), "payment_method": snapshot(pm)})
    if behaviour.auth != "none":
        si["status"] = "requires_action"
        si["next_action"] = _next_action(ctx, si, return_url)
        si["last_setup_error"] = None
        st.record_event(ctx, "setup_intent.requires_action", si)
        return
    _succeed_si(st, ctx, si, pm)


def _succeed_si(st: State, ctx: Context, si: dict, pm: dict) -> None:
    st.pm_meta[pm["id"]]["authenticated"] = True
    si["status"] = "succeeded"
    si["next_action"] = None
    si["last_setup_error"] = None
    if si["customer"] and pm["customer"] is None:
        _attach(st, ctx, pm, si["customer"])
    st.record_event(ctx, "setup_intent.succeeded", si)


def complete_si_authentication(st: State, ctx: Context, si: dict, succeed: bool) -> None:
    if si["status"] != "requires_action":
        raise _unexpected_state(si, "authenticate")
    pm = st.objects[si["payment_method"]]
    if succeed:
        _succeed_si(st, ctx, si, pm)
        return
    code = "setup_intent_authentication_failure"
    si["last_setup_error"] = _card_error_body(
        code, None, AUTH_FAILURE_MESSAGE.format(what="SetupIntent"), pm,
        type_="invalid_request_error")
    si["status"] = "requires_payment_method"
    si["payment_method"] = None
    si["next_action"] = None
    st.record_event(ctx, "setup_intent.setup_failed", si)


def setup_intents_cancel(st: State, ctx: Context, p: dict, si_id: str) -> dict:
    si = _require(st, "setup_intent", si_id)
    if si["status"] not in CONFIRMABLE:
        raise _unexpected_state(si, "cancel")
    si["cancellation_reason"] = get_enum(p, "cancellation_reason",
                                         ("abandoned", "requested_by_customer", "duplicate"))
    si["status"] = "canceled"
    si["next_action"] = None
    st.record_event(ctx, "setup_intent.canceled", si)
    return si


def setup_intents_list(st: State, ctx: Context, p: dict) -> dict:
    customer = get_str(p, "customer")
    if customer is not None:
        return _page(st, st.by_customer.get(("setup_intent", customer)), "/v1/setup_intents", p)
    return _page(st, st.lists["setup_intent"], "/v1/setup_intents", p)


# --- charges, balance transactions, disputes -----------------------------------------------------

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


# --- refunds -------------------------------------------------------------------------------------

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


# --- events --------------------------------------------------------------------------------------

def events_retrieve(st: State, ctx: Context, p: dict, evt_id: str) -> dict:
    return _require(st, "event", evt_id)


def events_list(st: State, ctx: Context, p: dict) -> dict:
    types = get_list(p, "types")
    type_ = get_str(p, "type")
    if type_ and types:
        raise invalid("You may only specify one of these parameters: type, types.",
                      param="types")
    if type_ and "*" not in type_:
        return _page(st, st.events_by_type.get(type_), "/v1/events", p)
    patterns = types or ([type_] if type_ else [])
    if not patterns:
        return _page(st, st.lists["event"], "/v1/events", p)

    def keep(evt_id: str) -> bool:
        t = st.objects[evt_id]["type"]
        return any(t == pat or (pat.endswith("*") and t.startswith(pat[:-1]))
                   for pat in patterns)

    return _page(st, st.lists["event"], "/v1/events", p, keep=keep)


# --- Connect (basics) ------------------------------------------------------------------------------

def accounts_create(st: State, ctx: Context, p: dict) -> dict:
    type_ = get_enum(p, "type", ("standard", "express", "custom"), "standard")
    capabilities = {name: "inactive" for name in get_dict(p, "capabilities")}
    acct = objects.account(acctid=objects.new_id("acct", 16), now=st.now(), type_=type_,
                           country=get_str(p, "country", "US"), email=get_str(p, "email"),
                           metadata=merge_metadata({}, p), capabilities=capabilities)
    return st.add(acct)


def accounts_retrieve(st: State, ctx: Context, p: dict, acct_id: str) -> dict:
    return _require(st, "account", acct_id)


def account_links_create(st: State, ctx: Context, p: dict) -> dict:
    acct_id = get_str(p, "account")
    if acct_id is None:
        raise param_missing("account")
    _require(st, "account", acct_id, param="account")
    get_enum(p, "type", ("account_onboarding", "account_update"), "account_onboarding")
    token = objects.new_id("link")
    st.account_links[token] = {"account": acct_id, "return_url": get_str(p, "return_url"),
                               "refresh_url": get_str(p, "refresh_url")}
    return objects.account_link(now=st.now(),
                                url=f"{ctx.base_url}/_emulator/connect/onboard/{token}")


def complete_onboarding(st: State, ctx: Context, acct_id: str) -> dict:
    acct = st.get("account", acct_id)
    if acct is None:
        raise missing("account", acct_id)
    acct["charges_enabled"] = acct["payouts_enabled"] = acct["details_submitted"] = True
    acct["capabilities"] = {k: "active" for k in acct["capabilities"]} or {
        "card_payments": "active", "transfers": "active"}
    req = acct["requirements"]
    req["currently_due"], req["eventually_due"], req["past_due"] = [], [], []
    req["disabled_reason"] = None
    st.record_event(ctx, "account.updated", acct)
    return acct


# --- routing table -------------------------------------------------------------------------------

Operation = Callable[..., dict]

ROUTES: list[tuple[str, str, str, Operation]] = [
    ("POST", "/v1/customers", "customers.create", customers_create),
    ("GET", "/v1/customers", "customers.list", customers_list),
    ("GET", "/v1/customers/{id}", "customers.retrieve", customers_retrieve),
    ("POST", "/v1/customers/{id}", "customers.update", customers_update),
    ("DELETE", "/v1/customers/{id}", "customers.delete", customers_delete),
    ("GET", "/v1/customers/{id}/payment_methods", "customers.list_payment_methods",
     customers_list_payment_methods),
    ("POST", "/v1/payment_methods", "payment_methods.create", payment_methods_create),
    ("GET", "/v1/payment_methods", "payment_methods.list", payment_methods_list),
    ("GET", "/v1/payment_methods/{id}", "payment_methods.retrieve", payment_methods_retrieve),
    ("POST", "/v1/payment_methods/{id}", "payment_methods.update", payment_methods_update),
    ("POST", "/v1/payment_methods/{id}/attach", "payment_methods.attach",
     payment_methods_attach),
    ("POST", "/v1/payment_methods/{id}/detach", "payment_methods.detach",
     payment_methods_detach),
    ("POST", "/v1/setup_intents", "setup_intents.create", setup_intents_create),
    ("GET", "/v1/setup_intents", "setup_intents.list", setup_intents_list),
    ("GET", "/v1/setup_intents/{id}", "setup_intents.retrieve", setup_intents_retrieve),
    ("POST", "/v1/setup_intents/{id}/confirm", "setup_intents.confirm", setup_intents_confirm),
    ("POST", "/v1/setup_intents/{id}/cancel", "setup_intents.cancel", setup_intents_cancel),
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
    ("GET", "/v1/charges", "charges.list", charges_list),
    ("GET", "/v1/charges/{id}", "charges.retrieve", charges_retrieve),
    ("POST", "/v1/refunds", "refunds.create", refunds_create),
    ("GET", "/v1/refunds", "refunds.list", refunds_list),
    ("GET", "/v1/refunds/{id}", "refunds.retrieve", refunds_retrieve),
    ("POST", "/v1/refunds/{id}", "refunds.update", refunds_update),
    ("GET", "/v1/events", "events.list", events_list),
    ("GET", "/v1/events/{id}", "events.retrieve", events_retrieve),
    ("GET", "/v1/balance_transactions/{id}", "balance_transactions.retrieve",
     balance_transactions_retrieve),
    ("GET", "/v1/disputes/{id}", "disputes.retrieve", disputes_retrieve),
    ("POST", "/v1/accounts", "accounts.create", accounts_create),
    ("GET", "/v1/accounts/{id}", "accounts.retrieve", accounts_retrieve),
    ("POST", "/v1/account_links", "account_links.create", account_links_create),
]
