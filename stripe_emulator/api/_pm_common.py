"""PaymentMethod handling that customers, payment methods and both kinds of intent share:
storing a card as a PaymentMethod (from raw card fields, or a test id such as ``pm_card_visa``,
which clones a fresh one), whether one may be attached to a customer, the attachment itself
(``payment_method.attached``), and the page of a customer's PaymentMethods. The numbers and CVCs
never reach the state: ``cards.summarize`` keeps only what Stripe shows.
"""

from __future__ import annotations

from typing import Optional

from .. import cards, objects
from ..cards import BEHAVIOURS, TEST_PAYMENT_METHODS, CardSummary
from ..errors import StripeError, invalid, missing, param_missing
from ..params import check_card_fields, get_str, merge_metadata
from ..store import Context, IdList, State
from ._common import _list_params


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
