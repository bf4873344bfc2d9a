"""SetupIntents: create, retrieve, confirm (a card that needs it goes to ``requires_action`` for
3-D Secure; a declining card is a 402), cancel and list. Success marks the card as authenticated
(later off-session payments need no authentication) and attaches it to the intent's customer.
``complete_si_authentication`` is what the 3-D Secure page does.
"""

from __future__ import annotations

from typing import Optional

from .. import objects
from ..cards import BEHAVIOURS
from ..errors import invalid
from ..params import get_bool, get_enum, get_str, merge_metadata
from ..store import Context, State
from ._common import Route, _page, _require
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
    si = _confirmable(st, "setup_intent", si_id, p)
    _confirm_si(st, ctx, si, _return_url(p, si))
    return si


def _confirm_si(st: State, ctx: Context, si: dict, return_url: Optional[str]) -> None:
    if si["payment_method"] is None:
        raise invalid("You cannot confirm this SetupIntent because it's missing a payment "
                      "method.", code="setup_intent_unexpected_state", param="payment_method")
    pm = st.objects[si["payment_method"]]
    behaviour = BEHAVIOURS[st.pm_meta[pm["id"]]["behaviour"]]
    if behaviour.decline:
        _decline(st, ctx, si, pm, behaviour.decline)
    if behaviour.auth != "none":
        _requires_action(st, ctx, si, return_url)
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
    """What the 3-D Secure page's buttons do to a SetupIntent in requires_action."""
    _complete_authentication(st, ctx, si, succeed, lambda pm: _succeed_si(st, ctx, si, pm))


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


ROUTES: list[Route] = [
    ("POST", "/v1/setup_intents", "setup_intents.create", setup_intents_create),
    ("GET", "/v1/setup_intents", "setup_intents.list", setup_intents_list),
    ("GET", "/v1/setup_intents/{id}", "setup_intents.retrieve", setup_intents_retrieve),
    ("POST", "/v1/setup_intents/{id}/confirm", "setup_intents.confirm", setup_intents_confirm),
    ("POST", "/v1/setup_intents/{id}/cancel", "setup_intents.cancel", setup_intents_cancel),
]
