"""Request parameters: Stripe's form encoding, the allowed parameters of each call, coercion.

The allowed top-level parameters of a call are read from the installed ``stripe`` SDK's typed
parameter classes (``stripe/params/_<resource>_<action>_params.py``), minus the SDK's request
options (api_key, idempotency_key, ...). If the SDK is missing or laid out differently, a short
hand-written list of the parameters the emulator implements is used instead.
"""

from __future__ import annotations

import importlib
import re
from typing import Any, Iterable, Optional
from urllib.parse import parse_qsl

from .errors import invalid, unknown_param

_KEY_PART = re.compile(r"\[([^\]]*)\]")

# `payment_method_types` is no longer a writable parameter at the SDK's pinned API version
# (2026-09-30.endive and later): Stripe answers 400 payment_method_types_no_longer_supported, and so
# does the emulator (api._intent_common._pm_types), so it is let through here to reach that check.
EXTRA_ALLOWED = {
    "payment_intents.create": {"payment_method_types"},
    "payment_intents.confirm": {"payment_method_types"},
    "payment_intents.update": {"payment_method_types"},
    "setup_intents.create": {"payment_method_types"},
    "setup_intents.confirm": {"payment_method_types"},
}

_LIST = {"limit", "starting_after", "ending_before", "expand", "created"}
FALLBACK_ALLOWED = {
    "customers.create": {"email", "name", "description", "metadata", "phone", "payment_method",
                         "invoice_settings", "address", "shipping", "expand"},
    "customers.retrieve": {"expand"},
    "customers.update": {"email", "name", "description", "metadata", "phone", "invoice_settings",
                         "address", "shipping", "expand"},
    "customers.list": _LIST | {"email"},
    "customers.delete": set(),
    "payment_methods.create": {"type", "card", "billing_details", "metadata", "customer",
                               "payment_method", "allow_redisplay", "expand"},
    "payment_methods.retrieve": {"expand"},
    "payment_methods.update": {"billing_details", "metadata", "card", "allow_redisplay", "expand"},
    "payment_methods.attach": {"customer", "expand"},
    "payment_methods.detach": {"expand"},
    "payment_methods.list": _LIST | {"customer", "type"},
    "setup_intents.create": {"confirm", "customer", "payment_method", "payment_method_data",
                             "usage", "return_url", "allowed_payment_method_types", "metadata",
                             "description", "expand", "automatic_payment_methods",
                             "payment_method_options"},
    "setup_intents.retrieve": {"expand", "client_secret"},
    "setup_intents.confirm": {"payment_method", "payment_method_data", "return_url", "expand",
                              "allowed_payment_method_types", "payment_method_options"},
    "setup_intents.cancel": {"cancellation_reason", "expand"},
    "setup_intents.list": _LIST | {"customer", "payment_method"},
    "payment_intents.search": {"query", "limit", "page", "expand"},
    "payment_intents.create": {"amount", "currency", "confirm", "customer", "payment_method",
                               "payment_method_data", "allowed_payment_method_types",
                               "setup_future_usage", "off_session", "metadata", "capture_method",
                               "return_url", "description", "receipt_email", "expand",
                               "automatic_payment_methods", "payment_method_options",
                               "transfer_data", "application_fee_amount", "on_behalf_of",
                               "transfer_group", "statement_descriptor",
                               "statement_descriptor_suffix", "error_on_requires_action"},
    "payment_intents.retrieve": {"expand", "client_secret"},
    "payment_intents.update": {"amount", "metadata", "description", "receipt_email", "customer",
                               "payment_method", "setup_future_usage", "expand"},
    "payment_intents.confirm": {"payment_method", "payment_method_data", "return_url",
                                "off_session", "setup_future_usage", "receipt_email", "expand",
                                "capture_method", "payment_method_options",
                                "error_on_requires_action"},
    "payment_intents.cancel": {"cancellation_reason", "expand"},
    "payment_intents.capture": {"amount_to_capture", "metadata", "expand",
                                "application_fee_amount"},
    "payment_intents.list": _LIST | {"customer"},
    "charges.retrieve": {"expand"},
    "charges.list": _LIST | {"customer", "payment_intent"},
    "refunds.create": {"payment_intent", "charge", "amount", "reason", "metadata", "expand"},
    "refunds.retrieve": {"expand"},
    "refunds.update": {"metadata", "expand"},
    "refunds.list": _LIST | {"charge", "payment_intent"},
    "events.retrieve": {"expand"},
    "events.list": _LIST | {"type", "types"},
    "disputes.retrieve": {"expand"},
    "balance_transactions.retrieve": {"expand"},
    "accounts.create": {"type", "country", "email", "capabilities", "business_type", "metadata",
                        "controller", "business_profile", "expand"},
    "accounts.retrieve": {"expand"},
    "account_links.create": {"account", "refresh_url", "return_url", "type", "collect", "expand"},
}

# operation -> (module suffix, class name) when the SDK's naming differs from the default.
_SDK_NAMES = {
    "customers.update": ("customer_update", "CustomerUpdateParams"),
}

_allowed_cache: dict[str, frozenset] = {}


def _camel(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))


def _singular(resource: str) -> str:
    return {"balance_transactions": "balance_transaction"}.get(resource, resource[:-1])


def _from_sdk(operation: str) -> Optional[set]:
    resource, action = operation.split(".")
    mod_suffix, cls_name = _SDK_NAMES.get(operation, (None, None))
    if mod_suffix is None:
        single = _singular(resource)
        mod_suffix = f"{single}_{action}"
        cls_name = f"{_camel(single)}{_camel(action)}Params"
    try:
        from stripe._request_options import RequestOptions

        module = importlib.import_module(f"stripe.params._{mod_suffix}_params")
        cls = getattr(module, cls_name)
        keys = set(getattr(cls, "__annotations__", {}))
    except Exception:  # SDK missing or laid out differently: use the hand list.
        return None
    if not keys:
        return None
    return keys - set(RequestOptions.__annotations__)


def allowed_params(operation: str) -> frozenset:
    cached = _allowed_cache.get(operation)
    if cached is None:
        keys = _from_sdk(operation)
        if keys is None:
            keys = set(FALLBACK_ALLOWED.get(operation, ()))
        keys |= EXTRA_ALLOWED.get(operation, set())
        keys.add("expand")
        cached = _allowed_cache[operation] = frozenset(keys)
    return cached


def check_unknown(operation: str, params: dict) -> None:
    allowed = allowed_params(operation)
    for key in params:
        if key not in allowed:
            raise unknown_param(key)


# --- Form decoding -----------------------------------------------------------------------------

def _listify(node: Any) -> Any:
    if isinstance(node, dict):
        for k, v in node.items():
            node[k] = _listify(v)
        if node and all(k.isdigit() for k in node):
            return [node[k] for k in sorted(node, key=int)]
    return node


def decode_form(pairs: Iterable[tuple[str, str]]) -> dict:
    """Turn ``a[b][0][c]=v`` pairs into nested dicts and lists, as Stripe reads them."""
    root: dict = {}
    for key, value in pairs:
        bracket = key.find("[")
        if bracket <= 0:
            parts = [key]
        else:
            parts = [key[:bracket]] + _KEY_PART.findall(key[bracket:])
        node = root
        for part in parts[:-1]:
            nxt = node.get(part)
            if not isinstance(nxt, dict):
                nxt = node[part] = {}
            node = nxt
        last = parts[-1]
        if last == "":  # a[]=v appends
            last = str(len(node))
        node[last] = value
    return _listify(root)


def parse_body(raw: bytes) -> dict:
    if not raw:
        return {}
    return decode_form(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))


def parse_query(query: str) -> dict:
    if not query:
        return {}
    return decode_form(parse_qsl(query, keep_blank_values=True))


# --- Coercion ------------------------------------------------------------------------------------

def get_str(params: dict, name: str, default: Optional[str] = None) -> Optional[str]:
    value = params.get(name)
    if value is None or value == "":
        return default
    if not isinstance(value, str):
        raise invalid(f"Invalid string: {name} must be a string.", param=name,
                      code="parameter_invalid_string")
    return value


def get_int(params: dict, name: str, default: Optional[int] = None) -> Optional[int]:
    value = params.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise invalid(f"Invalid integer: {value}", param=name,
                      code="parameter_invalid_integer") from None


def get_bool(params: dict, name: str, default: bool = False) -> bool:
    value = params.get(name)
    if value is None or value == "":
        return default
    if value in ("true", True):
        return True
    if value in ("false", False):
        return False
    raise invalid(f"Invalid boolean: {value}", param=name)


def get_dict(params: dict, name: str) -> dict:
    value = params.get(name)
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise invalid(f"Invalid object: {name} must be an object.", param=name)
    return value


def get_list(params: dict, name: str) -> list:
    value = params.get(name)
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise invalid(f"Invalid array: {name} must be an array.", param=name)
    return value


def get_enum(params: dict, name: str, choices: Iterable[str],
             default: Optional[str] = None) -> Optional[str]:
    value = get_str(params, name, default)
    if value is not None and value not in choices:
        options = ", ".join(choices)
        raise invalid(f"Invalid {name}: must be one of {options}", param=name)
    return value


def merge_metadata(current: dict, params: dict) -> dict:
    """metadata[key]=value sets, metadata[key]= (empty) unsets; metadata= clears all."""
    if "metadata" not in params:
        return current
    value = params["metadata"]
    if value == "":
        return {}
    if not isinstance(value, dict):
        raise invalid("Invalid object", param="metadata")
    merged = dict(current)
    for k, v in value.items():
        if v == "" or v is None:
            merged.pop(k, None)
        elif not isinstance(v, str):
            raise invalid("Invalid metadata value", param=f"metadata[{k}]")
        else:
            merged[k] = v
    return merged


RAW_CARD_FIELDS = {"number", "exp_month", "exp_year", "cvc", "networks", "token"}


def check_card_fields(card: Any, prefix: str) -> dict:
    if not isinstance(card, dict):
        raise invalid(f"Invalid object: {prefix} must be an object.", param=prefix)
    for key in card:
        if key not in RAW_CARD_FIELDS:
            raise unknown_param(f"{prefix}[{key}]")
    return card


__all__ = [
    "allowed_params", "check_unknown", "decode_form", "parse_body", "parse_query",
    "get_str", "get_int", "get_bool", "get_dict", "get_list", "get_enum", "merge_metadata",
    "check_card_fields",
]
