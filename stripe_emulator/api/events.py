"""Events: retrieve, and list, newest first, filtered by ``type`` (exact, or a prefix such as
``payment_intent.*``) or ``types[]``. The events themselves are recorded by the other
operations (``State.record_event``), with a snapshot of their object as it was.
"""

from __future__ import annotations

from ..errors import invalid
from ..params import get_list, get_str
from ..store import Context, State
from ._common import Route, _page, _require


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


ROUTES: list[Route] = [
    ("GET", "/v1/events", "events.list", events_list),
    ("GET", "/v1/events/{id}", "events.retrieve", events_retrieve),
]
