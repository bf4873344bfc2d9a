"""Helpers every resource module uses: the paging and ``created`` parameters of list calls and
the page they select (``_page``), the look-up of an id that must exist (``_require``), and the
checks of ``amount`` and ``currency``. Nothing here knows about a particular resource; what
several resources share about PaymentMethods or intents is in ``_pm_common`` and
``_intent_common``.
"""

from __future__ import annotations

from typing import Callable, Optional

from .. import objects
from ..errors import invalid, missing, param_missing, unknown_param
from ..params import get_int, get_str
from ..store import State

CURRENCIES = ("usd",)
MIN_AMOUNT = 50
MAX_AMOUNT = 99_999_999


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


Operation = Callable[..., dict]
Route = tuple[str, str, str, Operation]  # (method, path pattern, operation name, function)
