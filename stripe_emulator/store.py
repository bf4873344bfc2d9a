"""The emulator's state: every object by id, with the indexes the list calls need.

All reads and writes happen under ``State.lock`` (one re-entrant lock; each operation is a few
dict look-ups, so contention is low). Every look-up is a dict access and every list call walks
only the page it returns (a ``created`` filter first narrows the list by bisection), so a request
costs the same at 100,000 stored objects as at 10. Search (``search.SearchIndex``) is the
exception: a scan, as it is for reconciliation, not the hot path.

Card numbers and CVCs never reach this module: a payment method keeps brand, last4, expiry,
fingerprint and, in ``pm_meta``, the name of its test-card behaviour.

The saved idempotent results (``idempotency.IdempotencyStore``, fingerprints and answers, never
request bodies) belong to the state: ``reset`` forgets them, ``dump``/``load`` and the state file
keep those less than 24 hours old, so a retry after a restart is still replayed.
"""

from __future__ import annotations

import gc
import json
import os
import tempfile
import threading
import time
from bisect import bisect_left, bisect_right
from collections import deque
from typing import Callable, Iterable, Optional

from . import objects
from .errors import invalid
from .idempotency import IdempotencyStore
from .search import SEARCHABLE, SearchIndex, Tracked

STATE_FORMAT = 1


class IdList:
    """Ids in creation order with their positions: pages newest first, in O(page size).

    While every id was appended with its ``created`` and those never decrease (the usual case:
    ids are appended as objects are created), ``created`` is kept alongside, so ``window`` finds
    the positions of a ``created`` range by bisection; otherwise ``created`` is None.
    """

    __slots__ = ("ids", "pos", "created")

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.pos: dict[str, int] = {}
        self.created: Optional[list[int]] = []

    def append(self, obj_id: str, created: Optional[int] = None) -> None:
        if obj_id not in self.pos:
            self.pos[obj_id] = len(self.ids)
            self.ids.append(obj_id)
            stamps = self.created
            if stamps is not None:
                if created is None or (stamps and created < stamps[-1]):
                    self.created = None
                else:
                    stamps.append(created)

    def __len__(self) -> int:
        return len(self.ids)

    def window(self, lo: Optional[int], hi: Optional[int]) -> Optional[tuple[int, int]]:
        """Positions [start, stop) of the ids created in [lo, hi] (None: unbounded), or None
        when the list cannot tell (then filter each id instead)."""
        stamps = self.created
        if stamps is None:
            return None
        start = 0 if lo is None else bisect_left(stamps, lo)
        stop = len(stamps) if hi is None else bisect_right(stamps, hi)
        return start, max(start, stop)

    def page(self, limit: int, starting_after: Optional[str], ending_before: Optional[str],
             keep: Optional[Callable[[str], bool]] = None,
             window: Optional[tuple[int, int]] = None) -> tuple[list[str], bool]:
        """Up to ``limit`` ids newest first, and whether more follow; ``window``: only positions
        in [start, stop)."""
        ids = self.ids
        start, stop = window if window is not None else (0, len(ids))
        out: list[str] = []
        if ending_before is not None:
            i = max(self._position(ending_before, "ending_before") + 1, start)
            while i < stop and len(out) <= limit:
                if keep is None or keep(ids[i]):
                    out.append(ids[i])
                i += 1
            has_more = len(out) > limit
            return list(reversed(out[:limit])), has_more
        i = (self._position(starting_after, "starting_after") - 1 if starting_after is not None
             else len(ids) - 1)
        i = min(i, stop - 1)
        while i >= start and len(out) <= limit:
            if keep is None or keep(ids[i]):
                out.append(ids[i])
            i -= 1
        return out[:limit], len(out) > limit

    def _position(self, obj_id: str, param: str) -> int:
        try:
            return self.pos[obj_id]
        except KeyError:
            raise invalid(f"No such object: '{obj_id}'", param=param,
                          code="resource_missing") from None


def snapshot(value):
    """A deep copy of JSON-like data (faster than copy.deepcopy)."""
    if isinstance(value, dict):
        return {k: snapshot(v) for k, v in value.items()}
    if isinstance(value, list):
        return [snapshot(v) for v in value]
    return value


class Context:
    """What an operation needs to know about the request that triggered it."""

    __slots__ = ("request_id", "idempotency_key", "events", "base_url", "account")

    def __init__(self, base_url: str, request_id: Optional[str] = None,
                 idempotency_key: Optional[str] = None, account: Optional[str] = None) -> None:
        self.request_id = request_id
        self.idempotency_key = idempotency_key
        self.events: list[dict] = []
        self.base_url = base_url
        self.account = account  # the Stripe-Account header: the connected account acted on


class State:
    KINDS = {
        "customer": "cus", "payment_method": "pm", "setup_intent": "seti",
        "payment_intent": "pi", "charge": "ch", "refund": "re", "balance_transaction": "txn",
        "dispute": "dp", "event": "evt", "account": "acct", "transfer": "tr",
        "transfer_reversal": "trr", "application_fee": "fee", "fee_refund": "fr", "payout": "po",
    }

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.webhooks_enabled = False
        self.request_log: deque = deque(maxlen=200_000)
        self.search = SearchIndex(lambda: self.clock())
        # Saved idempotent results: part of the state, so the state file keeps them too.
        self.idempotency = IdempotencyStore(clock=lambda: self.clock())
        self.reset()

    # --- lifecycle -----------------------------------------------------------------------------

    def reset(self) -> None:
        with self.lock:
            self.objects: dict[str, dict] = {}
            self.lists: dict[str, IdList] = {kind: IdList() for kind in self.KINDS}
            self.pm_meta: dict[str, dict] = {}
            self.account_links: dict[str, dict] = {}
            self.deleted_customers: set[str] = set()
            self.customer_pms: dict[str, dict[str, None]] = {}
            self.by_customer: dict[tuple[str, str], IdList] = {}
            self.by_parent: dict[tuple[str, str], IdList] = {}
            self.customers_by_email: dict[str, IdList] = {}
            self.events_by_type: dict[str, IdList] = {}
            # Connect: objects that live on a connected account (its balance transactions,
            # payments ``py_``, their refunds, payouts) -> that account's id; they are indexed in
            # ``account_lists`` only, never in the platform's ``lists``.
            self.owner: dict[str, str] = {}
            self.account_lists: dict[tuple[str, str], IdList] = {}
            # account id -> capability name -> when it was requested
            self.capability_requested_at: dict[str, dict[str, int]] = {}
            self.payout_txns: dict[str, list[str]] = {}  # payout id -> the txns it paid out
            # "what:id" -> cents: what refunds of a charge have reversed of its transfer and
            # refunded of its fee, and reversals of a transfer of its fee (api.transfers)
            self.connect_totals: dict[str, int] = {}
            self.request_log.clear()
            self.search.clear()
            self.idempotency.clear()

    def now(self) -> int:
        return int(self.clock())

    # --- objects -------------------------------------------------------------------------------

    def add(self, obj: dict, meta: Optional[dict] = None, *, new: bool = True,
            account: Optional[str] = None) -> dict:
        """Store an object and index it. ``new``: just created (False: loaded, old);
        ``account``: it lives on that connected account, not on the platform."""
        self.objects[obj["id"]] = obj
        if meta is not None:
            self.pm_meta[obj["id"]] = meta
        if account is not None:
            self.owner[obj["id"]] = account
            self._index_on_account(obj, account)
            return obj
        self._index(obj)
        self.search.watch(obj, new=new)
        return obj

    def _index_on_account(self, obj: dict, account: str) -> None:
        kind, oid, created = obj["object"], obj["id"], obj.get("created")
        self.account_lists.setdefault((account, kind), IdList()).append(oid, created)
        if kind == "refund":
            self.by_parent.setdefault(("refund", obj["charge"]), IdList()).append(oid, created)

    def owned(self, kind: str, oid: str, account: Optional[str]) -> Optional[dict]:
        """The object if it exists and lives where the request is scoped (``account``: the
        ``Stripe-Account`` header, None: the platform), as Stripe scopes every read."""
        obj = self.get(kind, oid)
        if obj is None or self.owner.get(oid) != account:
            return None
        return obj

    def scoped_list(self, kind: str, account: Optional[str]) -> Optional[IdList]:
        return self.lists[kind] if account is None else self.account_lists.get((account, kind))

    def _index(self, obj: dict) -> None:
        kind, oid = obj["object"], obj["id"]
        created = obj.get("created")
        self.lists[kind].append(oid, created)
        customer = obj.get("customer") if kind != "event" else None
        if kind == "payment_method":
            if customer:
                self.customer_pms.setdefault(customer, {})[oid] = None
        elif customer and kind in ("payment_intent", "setup_intent", "charge"):
            self.by_customer.setdefault((kind, customer), IdList()).append(oid, created)
        if kind == "customer" and obj.get("email"):
            self.customers_by_email.setdefault(obj["email"], IdList()).append(oid, created)
        elif kind == "charge":
            self.by_parent.setdefault(("charge", obj["payment_intent"]), IdList()).append(
                oid, created)
        elif kind == "refund":
            self.by_parent.setdefault(("refund", obj["charge"]), IdList()).append(oid, created)
            if obj.get("payment_intent"):
                self.by_parent.setdefault(("refund", obj["payment_intent"]),
                                          IdList()).append(oid, created)
        elif kind == "event":
            self.events_by_type.setdefault(obj["type"], IdList()).append(oid, created)

    def get(self, kind: str, oid: str) -> Optional[dict]:
        obj = self.objects.get(oid) if isinstance(oid, str) else None
        if obj is None or obj["object"] != kind:
            return None
        return obj

    def index_customer(self, kind: str, obj: dict) -> None:
        """Index an existing object under its (newly set) customer."""
        if kind == "payment_method":
            self.customer_pms.setdefault(obj["customer"], {})[obj["id"]] = None
        else:
            self.by_customer.setdefault((kind, obj["customer"]), IdList()).append(
                obj["id"], obj.get("created"))

    def unindex_pm(self, pm: dict, customer: str) -> None:
        self.customer_pms.get(customer, {}).pop(pm["id"], None)

    # --- events --------------------------------------------------------------------------------

    def record_event(self, ctx: Context, type_: str, obj: dict,
                     previous_attributes: Optional[dict] = None,
                     account: Optional[str] = None) -> dict:
        """Record an event; ``account``: a Connect event, about an object of that connected
        account (or the account itself), which carries ``account`` as Stripe's do."""
        ev = objects.event(
            evid=objects.new_id("evt"), now=self.now(), type_=type_, obj=snapshot(obj),
            request_id=ctx.request_id, idempotency_key=ctx.idempotency_key,
            previous_attributes=previous_attributes,
            pending_webhooks=1 if self.webhooks_enabled else 0, account=account,
        )
        self.add(ev)
        ctx.events.append(ev)
        return ev

    # --- request log ---------------------------------------------------------------------------

    def log_request(self, method: str, path: str, idempotency_key: Optional[str]) -> None:
        self.request_log.append(
            {"method": method, "path": path, "idempotency_key": idempotency_key})

    def requests(self) -> list[dict]:
        return [dict(r) for r in list(self.request_log)]

    # --- persistence ---------------------------------------------------------------------------

    def dump(self) -> dict:
        with self.lock:
            return {
                "format": STATE_FORMAT,
                "objects": list(self.objects.values()),
                "pm_meta": self.pm_meta,
                "account_links": self.account_links,
                "deleted_customers": sorted(self.deleted_customers),
                "owner": self.owner,
                "capability_requested_at": self.capability_requested_at,
                "payout_txns": self.payout_txns,
                "connect_totals": self.connect_totals,
                "idempotency": self.idempotency.dump(),
            }

    def load(self, data: dict) -> None:
        if data.get("format") != STATE_FORMAT:
            raise ValueError("unsupported state file format")
        with self.lock:
            self.reset()
            owner = data.get("owner", {})
            for obj in data.get("objects", []):
                if obj.get("object") in SEARCHABLE:
                    obj = Tracked(obj)
                self.add(obj, new=False, account=owner.get(obj.get("id")))
            self.pm_meta.update(data.get("pm_meta", {}))
            self.account_links.update(data.get("account_links", {}))
            self.capability_requested_at.update(data.get("capability_requested_at", {}))
            self.payout_txns.update(data.get("payout_txns", {}))
            self.connect_totals.update(data.get("connect_totals", {}))
            self.deleted_customers.update(data.get("deleted_customers", []))
            self.idempotency.load(data.get("idempotency", []))
        _freeze()

    def save_file(self, path: str) -> None:
        """Write the state atomically: a temporary file in the same directory, then rename."""
        data = json.dumps(self.dump(), separators=(",", ":"))
        directory = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(prefix=".stripe-emulator-", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    def load_file(self, path: str) -> bool:
        if not os.path.exists(path):
            return False
        with open(path, encoding="utf-8") as fh:
            self.load(json.load(fh))
        return True

    # --- bulk ----------------------------------------------------------------------------------

    def bulk_add(self, objs: Iterable[dict]) -> int:
        """Store many ready-made objects at once (benchmarks pre-fill the store with this)."""
        n = 0
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            with self.lock:
                for obj in objs:
                    self.add(obj)
                    n += 1
        finally:
            if was_enabled:
                gc.enable()
        _freeze()
        return n


def _freeze() -> None:
    """Move the objects loaded so far out of the cyclic garbage collector's sight.

    Stored objects are acyclic JSON data that is never garbage, so a full collection gains
    nothing by walking them; after a large load (a state file, a benchmark's pre-fill) it would
    otherwise walk hundreds of thousands of dicts now and then and stall every request.
    """
    gc.collect()
    gc.freeze()
