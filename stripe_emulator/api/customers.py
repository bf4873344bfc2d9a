"""Customers: create (optionally with a PaymentMethod to attach and
``invoice_settings[default_payment_method]``), retrieve (a deleted one answers Stripe's
``{"deleted": true}`` stub), update, delete (its PaymentMethods are detached and spent), list
(optionally by ``email``) and list a customer's PaymentMethods.
"""

from __future__ import annotations

from .. import objects
from ..errors import invalid
from ..params import get_dict, get_str, merge_metadata
from ..store import Context, IdList, State
from ._common import Route, _page, _require
from ._pm_common import _attach, _check_attachable, _pm_page, _resolve_pm


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


ROUTES: list[Route] = [
    ("POST", "/v1/customers", "customers.create", customers_create),
    ("GET", "/v1/customers", "customers.list", customers_list),
    ("GET", "/v1/customers/{id}", "customers.retrieve", customers_retrieve),
    ("POST", "/v1/customers/{id}", "customers.update", customers_update),
    ("DELETE", "/v1/customers/{id}", "customers.delete", customers_delete),
    ("GET", "/v1/customers/{id}/payment_methods", "customers.list_payment_methods",
     customers_list_payment_methods),
]
