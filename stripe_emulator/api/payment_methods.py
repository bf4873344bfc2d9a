"""PaymentMethods (cards only): create from card fields or a token, retrieve (a test id such as
``pm_card_visa`` gives a fresh clone), update (metadata, billing details, expiry), attach to and
detach from a customer (``payment_method.attached`` / ``.detached``; a detached one is spent),
and list a customer's. The shared handling of cards is in ``_pm_common``.
"""

from __future__ import annotations

from .. import cards, objects
from ..cards import TEST_PAYMENT_METHODS
from ..errors import invalid, param_missing
from ..params import get_dict, get_int, get_str, merge_metadata
from ..store import Context, State
from ._common import Route, _require
from ._pm_common import _attach, _check_attachable, _pm_from_data, _pm_page, _resolve_pm, _store_pm


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


def payment_methods_list(st: State, ctx: Context, p: dict) -> dict:
    cid = get_str(p, "customer")
    if cid is None:
        raise param_missing("customer")
    _require(st, "customer", cid, param="customer")
    return _pm_page(st, cid, "/v1/payment_methods", p)


ROUTES: list[Route] = [
    ("POST", "/v1/payment_methods", "payment_methods.create", payment_methods_create),
    ("GET", "/v1/payment_methods", "payment_methods.list", payment_methods_list),
    ("GET", "/v1/payment_methods/{id}", "payment_methods.retrieve", payment_methods_retrieve),
    ("POST", "/v1/payment_methods/{id}", "payment_methods.update", payment_methods_update),
    ("POST", "/v1/payment_methods/{id}/attach", "payment_methods.attach",
     payment_methods_attach),
    ("POST", "/v1/payment_methods/{id}/detach", "payment_methods.detach",
     payment_methods_detach),
]
