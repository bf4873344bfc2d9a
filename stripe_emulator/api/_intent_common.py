"""What PaymentIntents and SetupIntents share: the ``customer`` of a create call, the
PaymentMethod of a create or confirm call (``payment_method`` or ``payment_method_data``) and
Stripe's rules for using it with that customer, ``allowed_payment_method_types`` (and the refusal
of ``payment_method_types``), the start of a confirm call and its ``return_url``, and the
transitions both kinds make the same way: to ``requires_action`` (3-D Secure, with the emulator's
page as ``next_action``: ``redirect_to_url`` with a ``return_url``, else ``use_stripe_sdk``), back
to ``requires_payment_method`` after a decline (a 402 card error) or a failed authentication, and
the error for an intent in the wrong status.
"""

from __future__ import annotations

from typing import Callable, NoReturn, Optional

from .. import cards
from ..errors import StripeError, invalid
from ..params import get_list, get_str
from ..store import Context, State, snapshot
from ._common import _require
from ._pm_common import _pm_from_data, _resolve_pm

AUTH_FAILURE_MESSAGE = (
    "The provided PaymentMethod has failed authentication. You can provide payment_method_data "
    "or a new PaymentMethod to attempt to fulfill this {what} again."
)

CONFIRMABLE = ("requires_payment_method", "requires_confirmation", "requires_action")


def _customer_param(st: State, p: dict) -> Optional[str]:
    cid = get_str(p, "customer")
    if cid is not None:
        _require(st, "customer", cid, param="customer")
    return cid


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
    """3-D Secure's next action, as Stripe shapes it: confirmed with a ``return_url``,
    ``redirect_to_url`` (a page to open, which sends the browser back to ``return_url``);
    without one, ``use_stripe_sdk``, a hash only Stripe's client SDKs read (Stripe documents its
    content as subject to change). Here it is the form of a 3-D Secure redirect: its ``stripe_js``
    is the same emulator page, which a test opens to complete or fail the authentication."""
    page = f"{ctx.base_url}/_emulator/3ds/{intent['id']}"
    if return_url is not None:
        return {"type": "redirect_to_url",
                "redirect_to_url": {"url": page, "return_url": return_url}}
    return {"type": "use_stripe_sdk",
            "use_stripe_sdk": {"type": "three_d_secure_redirect", "stripe_js": page,
                               "source": "src_" + intent["id"].split("_", 1)[1]}}


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


# Per kind of intent: the noun in messages, the key of its last error, its failure event.
_NOUN = {"payment_intent": "PaymentIntent", "setup_intent": "SetupIntent"}
_LAST_ERROR = {"payment_intent": "last_payment_error", "setup_intent": "last_setup_error"}
_FAILED_EVENT = {"payment_intent": "payment_intent.payment_failed",
                 "setup_intent": "setup_intent.setup_failed"}


def _unexpected_state(intent: dict, action: str) -> StripeError:
    noun = _NOUN[intent["object"]]
    return invalid(f"You cannot {action} this {noun} because it has a status of "
                   f"{intent['status']}.", code=f"{intent['object']}_unexpected_state")


def _confirmable(st: State, kind: str, intent_id: str, p: dict) -> dict:
    """The start of a confirm call: the intent, which must be in a confirmable status, with the
    call's PaymentMethod (if it names one) set on it."""
    intent = _require(st, kind, intent_id)
    if intent["status"] not in CONFIRMABLE:
        raise _unexpected_state(intent, "confirm")
    _pm_types(p)
    pm = _intent_pm(st, p, intent["customer"])
    if pm is not None:
        intent["payment_method"] = pm["id"]
    return intent


def _return_url(p: dict, intent: dict) -> Optional[str]:
    """A confirm call's ``return_url``, else the one of the intent's pending 3-D Secure."""
    return_url = get_str(p, "return_url")
    if return_url is None and intent["next_action"]:
        return_url = (intent["next_action"].get("redirect_to_url") or {}).get("return_url")
    return return_url


def _requires_action(st: State, ctx: Context, intent: dict, return_url: Optional[str]) -> None:
    """The card needs 3-D Secure: ``requires_action``, with the emulator's page as next action."""
    intent["status"] = "requires_action"
    intent["next_action"] = _next_action(ctx, intent, return_url)
    intent[_LAST_ERROR[intent["object"]]] = None
    st.record_event(ctx, f"{intent['object']}.requires_action", intent)


def _failed(st: State, ctx: Context, intent: dict, error: dict) -> None:
    """Back to ``requires_payment_method`` with ``error`` as the last error, without the
    PaymentMethod; records ``payment_intent.payment_failed`` / ``setup_intent.setup_failed``."""
    intent[_LAST_ERROR[intent["object"]]] = error
    intent["status"] = "requires_payment_method"
    intent["payment_method"] = None
    intent["next_action"] = None
    st.record_event(ctx, _FAILED_EVENT[intent["object"]], intent)


def _decline(st: State, ctx: Context, intent: dict, pm: dict, decline: str,
             charge_id: Optional[str] = None) -> NoReturn:
    """The card is declined: the intent fails (``_failed``) and the call answers a 402 card
    error carrying the failed charge (if any), the intent and the PaymentMethod."""
    message = cards.DECLINE_MESSAGES[decline]
    code = cards.decline_error_code(decline)
    _failed(st, ctx, intent, _card_error_body(code, decline, message, pm, charge_id))
    extra = {"charge": charge_id} if charge_id else {}
    extra[intent["object"]] = snapshot(intent)
    extra["payment_method"] = snapshot(pm)
    raise StripeError(402, "card_error", message, code=code, decline_code=decline, extra=extra)


def _complete_authentication(st: State, ctx: Context, intent: dict, succeed: bool,
                             proceed: Callable[[dict], None]) -> None:
    """What the 3-D Secure page's buttons do to an intent in ``requires_action``: on success
    ``proceed(pm)`` carries on with its PaymentMethod; on failure the intent fails with
    ``{payment_intent|setup_intent}_authentication_failure``."""
    if intent["status"] != "requires_action":
        raise _unexpected_state(intent, "authenticate")
    pm = st.objects[intent["payment_method"]]
    if succeed:
        proceed(pm)
        return
    code = f"{intent['object']}_authentication_failure"
    _failed(st, ctx, intent, _card_error_body(
        code, None, AUTH_FAILURE_MESSAGE.format(what=_NOUN[intent["object"]]), pm,
        type_="invalid_request_error"))
