"""Request parameters: Stripe's form encoding, the allowed parameters of each call, coercion.

The allowed parameters of a call are read from the installed ``stripe`` SDK's typed parameter
classes (``stripe/params/_<resource>_<action>_params.py``), minus the SDK's request options
(api_key, idempotency_key, ...), at every depth: a hash parameter (``payment_method_data``,
``payment_method_options[card]``, ``transfer_data``, ``created``, an item of a list of hashes)
may hold only the keys of the TypedDict that types it, as Stripe answers 400 parameter_unknown
with the full bracketed name (``payment_method_data[billing_details][colour]``). Free-form hashes
(``metadata``, typed ``Dict[str, str]``) are checked against Stripe's metadata limits instead. If
the SDK is missing or laid out differently, a short hand-written list of the top-level parameters
the emulator implements is used, and nested keys are not checked (but metadata still is).

Errors raised here are parameter validation: never saved under an idempotency key.
"""

from __future__ import annotations

import importlib
import re
import sys
from typing import Any, Iterable, Optional, get_args
from urllib.parse import parse_qsl

from .errors import invalid_param, unknown_param

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
    "account_capabilities.list": ("account_capability_list", "AccountCapabilityListParams"),
    "account_capabilities.retrieve": ("account_capability_retrieve",
                                      "AccountCapabilityRetrieveParams"),
    "account_capabilities.update": ("account_capability_update",
                                    "AccountCapabilityUpdateParams"),
}

_allowed_cache: dict[str, frozenset] = {}
_MISSING = object()
_class_cache: dict[str, Any] = {}


def _camel(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))


def _singular(resource: str) -> str:
    return {"balance_transactions": "balance_transaction", "balance": "balance"}.get(
        resource, resource[:-1])


def _sdk_class(operation: str) -> Optional[type]:
    """The SDK's TypedDict of a call's parameters, or None."""
    cls = _class_cache.get(operation, _MISSING)
    if cls is _MISSING:
        resource, action = operation.split(".")
        mod_suffix, cls_name = _SDK_NAMES.get(operation, (None, None))
        if mod_suffix is None:
            single = _singular(resource)
            mod_suffix = f"{single}_{action}"
            cls_name = f"{_camel(single)}{_camel(action)}Params"
        try:
            module = importlib.import_module(f"stripe.params._{mod_suffix}_params")
            cls = getattr(module, cls_name)
            if not getattr(cls, "__annotations__", None):
                cls = None
        except Exception:  # SDK missing or laid out differently: use the hand list.
            cls = None
        _class_cache[operation] = cls
    return cls


def _from_sdk(operation: str) -> Optional[set]:
    cls = _sdk_class(operation)
    if cls is None:
        return None
    try:
        from stripe._request_options import RequestOptions
    except Exception:
        return None
    return set(cls.__annotations__) - set(RequestOptions.__annotations__)


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


# --- Nested parameters: the SDK's TypedDicts, walked lazily ---------------------------------------

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _is_typeddict(obj: Any) -> bool:
    try:
        from typing_extensions import is_typeddict
    except ImportError:  # pragma: no cover - the SDK depends on typing_extensions
        from typing import is_typeddict
    return isinstance(obj, type) and is_typeddict(obj)


def _typeddicts(annotation: Any, namespace: dict) -> list:
    """The TypedDict classes an annotation names (through NotRequired, Union, List, Literal and
    the SDK's string forward references such as ``"Literal['']|XParamsCard"``)."""
    if isinstance(annotation, str):
        found = []
        for name in _IDENT.findall(annotation):
            obj = namespace.get(name)
            if _is_typeddict(obj) and obj not in found:
                found.append(obj)
        return found
    forward = getattr(annotation, "__forward_arg__", None)
    if isinstance(forward, str):
        return _typeddicts(forward, namespace)
    if _is_typeddict(annotation):
        return [annotation]
    found = []
    for arg in get_args(annotation):
        for obj in _typeddicts(arg, namespace):
            if obj not in found:
                found.append(obj)
    return found


def _raw_card_shape() -> "Optional[_Shape]":
    """``payment_method_data[card]``: raw card data, which Stripe accepts from accounts allowed to
    send it and the SDK types only on PaymentMethod create (``PaymentMethodCreateParamsCard``)."""
    try:
        module = importlib.import_module("stripe.params._payment_method_create_params")
        return _shape((module.PaymentMethodCreateParamsCard,))
    except Exception:
        return _HandShape({key: None for key in RAW_CARD_FIELDS})


# TypedDict name suffix -> {key: shape factory}: keys the emulator implements that the SDK omits.
_NESTED_EXTRA = {
    "PaymentMethodData": {"card": _raw_card_shape},
}


class _Shape:
    """The keys a hash parameter may hold: the fields of the TypedDicts that type it, each with
    the shape of its own value (None: a scalar, a list of scalars, or a free-form hash)."""

    __slots__ = ("classes", "_fields")

    def __init__(self, classes: tuple) -> None:
        self.classes = classes
        self._fields: Optional[dict] = None

    def fields(self) -> dict:
        fields = self._fields
        if fields is None:  # a race only computes the same dict twice
            refs: dict[str, list] = {}
            for cls in self.classes:
                namespace = vars(sys.modules[cls.__module__])
                for name, annotation in getattr(cls, "__annotations__", {}).items():
                    found = _typeddicts(annotation, namespace)
                    if name not in refs:
                        refs[name] = found
                    elif refs[name] and found:
                        refs[name] = refs[name] + [c for c in found if c not in refs[name]]
                    else:
                        refs[name] = []  # a scalar in one member of a union: not checked
            fields = {name: _shape(tuple(found)) if found else None
                      for name, found in refs.items()}
            for cls in self.classes:
                for suffix, extra in _NESTED_EXTRA.items():
                    if cls.__name__.endswith(suffix):
                        for name, factory in extra.items():
                            if name not in fields:
                                fields[name] = factory()
            self._fields = fields
        return fields


class _HandShape(_Shape):
    """A shape written by hand (when the SDK cannot say)."""

    __slots__ = ()

    def __init__(self, fields: dict) -> None:
        super().__init__(())
        self._fields = fields


_shape_cache: dict[tuple, _Shape] = {}


def _shape(classes: tuple) -> _Shape:
    shape = _shape_cache.get(classes)
    if shape is None:
        shape = _shape_cache.setdefault(classes, _Shape(classes))
    return shape


def _check_value(value: Any, shape: Optional[_Shape], param: str) -> None:
    if shape is None:
        return
    if isinstance(value, list):  # a list of hashes: a[0][b]
        for i, item in enumerate(value):
            _check_value(item, shape, f"{param}[{i}]")
        return
    if not isinstance(value, dict):
        return
    fields = shape.fields()
    for key, sub in value.items():
        name = f"{param}[{key}]"
        if key not in fields:
            raise unknown_param(name)
        child = fields[key]
        if child is None:
            if key == "metadata":
                check_metadata(sub, name)
        else:
            _check_value(sub, child, name)


def check_unknown(operation: str, params: dict) -> None:
    """Refuse unknown parameters at any depth and metadata over Stripe's limits (400)."""
    allowed = allowed_params(operation)
    cls = _sdk_class(operation)
    fields = _shape((cls,)).fields() if cls is not None else {}
    for key, value in params.items():
        if key not in allowed:
            raise unknown_param(key)
        shape = fields.get(key)
        if shape is None:
            if key == "metadata":
                check_metadata(value, key)
        else:
            _check_value(value, shape, key)


# --- Metadata --------------------------------------------------------------------------------------
# https://docs.stripe.com/metadata: 50 keys, keys up to 40 characters without square brackets,
# values up to 500 characters. The messages are the ones Stripe answers.

METADATA_MAX_KEYS = 50
METADATA_MAX_KEY_LENGTH = 40
METADATA_MAX_VALUE_LENGTH = 500


def _too_many_keys(count: int, param: str):
    return invalid_param(f"Metadata can have up to {METADATA_MAX_KEYS} keys, but you've set "
                         f"{count}.", param=param)


def check_metadata(value: Any, param: str = "metadata") -> None:
    """A metadata hash as sent: ``""`` (unset all), or string keys to string values (``""``
    unsets one key)."""
    if value is None or value == "":
        return
    if not isinstance(value, dict):
        raise invalid_param(f"Invalid object: {param} must be an object.", param=param)
    count = 0
    for key, item in value.items():
        name = f"{param}[{key}]"
        if len(key) > METADATA_MAX_KEY_LENGTH:
            raise invalid_param(
                f"Metadata keys can have up to {METADATA_MAX_KEY_LENGTH} characters, but you "
                f"passed in a key that is {len(key)} characters. Invalid key: {key}", param=name)
        if "[" in key or "]" in key:
            raise invalid_param(f"Metadata keys can't contain square brackets ([ or ]). "
                                f"Invalid key: {key}", param=name)
        if not isinstance(item, str):
            raise invalid_param(f"Invalid string: {name} must be a string (metadata values "
                                f"are strings, not hashes or lists).", param=name)
        if len(item) > METADATA_MAX_VALUE_LENGTH:
            raise invalid_param(
                f"Metadata values can have up to {METADATA_MAX_VALUE_LENGTH} characters, but you "
                f"passed in a value that is {len(item)} characters. Invalid value: {item}",
                param=name)
        if item != "":
            count += 1
    if count > METADATA_MAX_KEYS:
        raise _too_many_keys(count, param)


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
        raise invalid_param(f"Invalid string: {name} must be a string.", param=name,
                      code="parameter_invalid_string")
    return value


def get_int(params: dict, name: str, default: Optional[int] = None) -> Optional[int]:
    value = params.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise invalid_param(f"Invalid integer: {value}", param=name,
                      code="parameter_invalid_integer") from None


def get_bool(params: dict, name: str, default: bool = False, *,
             param: Optional[str] = None) -> bool:
    """``param``: the full (bracketed) name to report, for a nested parameter."""
    value = params.get(name)
    if value is None or value == "":
        return default
    if value in ("true", True):
        return True
    if value in ("false", False):
        return False
    raise invalid_param(f"Invalid boolean: {value}", param=param or name)


def get_dict(params: dict, name: str) -> dict:
    value = params.get(name)
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise invalid_param(f"Invalid object: {name} must be an object.", param=name)
    return value


def get_list(params: dict, name: str) -> list:
    value = params.get(name)
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise invalid_param(f"Invalid array: {name} must be an array.", param=name)
    return value


def get_enum(params: dict, name: str, choices: Iterable[str],
             default: Optional[str] = None, *, param: Optional[str] = None) -> Optional[str]:
    """``param``: the full (bracketed) name to report, for a nested parameter."""
    value = get_str(params, name, default)
    if value is not None and value not in choices:
        options = ", ".join(choices)
        raise invalid_param(f"Invalid {param or name}: must be one of {options}",
                            param=param or name)
    return value


def merge_metadata(current: dict, params: dict) -> dict:
    """metadata[key]=value sets, metadata[key]= (empty) unsets; metadata= clears all. At most
    50 keys once merged (an update adding keys to an object's counts them all)."""
    if "metadata" not in params:
        return current
    value = params["metadata"]
    check_metadata(value)
    if value == "":
        return {}
    merged = dict(current)
    for k, v in value.items():
        if v == "" or v is None:
            merged.pop(k, None)
        else:
            merged[k] = v
    if len(merged) > METADATA_MAX_KEYS:
        raise _too_many_keys(len(merged), "metadata")
    return merged


RAW_CARD_FIELDS = {"number", "exp_month", "exp_year", "cvc", "networks", "token"}


def check_card_fields(card: Any, prefix: str) -> dict:
    if not isinstance(card, dict):
        raise invalid_param(f"Invalid object: {prefix} must be an object.", param=prefix)
    for key in card:
        if key not in RAW_CARD_FIELDS:
            raise unknown_param(f"{prefix}[{key}]")
    return card


__all__ = [
    "allowed_params", "check_unknown", "check_metadata", "decode_form", "parse_body",
    "parse_query", "get_str", "get_int", "get_bool", "get_dict", "get_list", "get_enum",
    "merge_metadata", "check_card_fields", "METADATA_MAX_KEYS", "METADATA_MAX_KEY_LENGTH",
    "METADATA_MAX_VALUE_LENGTH",
]
