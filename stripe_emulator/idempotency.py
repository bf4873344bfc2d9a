"""Idempotency keys, as Stripe documents them (https://docs.stripe.com/api/idempotent_requests).

A key (at most 255 characters) is scoped to the API key that sent it and counts on POST only:
GET and DELETE are idempotent by definition and ignore it. The first request's result (status
and body) is saved once the endpoint has started executing, errors included (a card error, an
unknown id, a state error, a 500), and replayed with ``Idempotent-Replayed: true`` for later
requests with the same key and the same parameters; a request whose parameters fail validation
is not saved. Other parameters answer 400 ``idempotency_error``; a request arriving while the
first is still running answers 409 ``idempotency_key_in_use``. Keys expire after 24 hours; at most
``capacity`` keys are kept (oldest dropped first), so memory stays bounded. The saved results
travel with the state file (``dump``/``load``), so keys survive a restart.

Parameters are compared through a fingerprint, never the body itself, which may hold card data:
an HMAC of the canonical request under a per-process random key, followed by a SHA-256 of the
request with card numbers and CVCs blanked. Only the second part is written to the state file,
so after a restart two requests that differ only in the card number count as the same one. API
keys are kept only as a hash.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
import time
from collections import OrderedDict
from typing import Callable, Optional
from urllib.parse import unquote_plus

from .errors import StripeError

TTL_SECONDS = 24 * 3600
DEFAULT_CAPACITY = 200_000
MAX_KEY_LENGTH = 255
METHODS = frozenset({"POST"})

NEW, REPLAY, CONFLICT, IN_USE = "new", "replay", "conflict", "in_use"

_SECRET_FIELDS = frozenset({"number", "cvc"})
_DIGEST = 32  # bytes of each fingerprint half


def applies(method: str) -> bool:
    """Whether an Idempotency-Key counts on this method (Stripe: POST; GET and DELETE ignore it)."""
    return method in METHODS


def key_error(key: str) -> Optional[StripeError]:
    """The 400 for a key Stripe refuses (longer than 255 characters), or None."""
    if len(key) <= MAX_KEY_LENGTH:
        return None
    return StripeError(400, "invalid_request_error",
                       f"Keys for idempotent requests can only be up to {MAX_KEY_LENGTH} "
                       f"characters long, but the Idempotency-Key header you provided is "
                       f"{len(key)} characters long.", cacheable=False)


def _scope_id(scope: str) -> str:
    return hashlib.sha256(scope.encode()).hexdigest()[:32]


def _redacted(body: bytes) -> bytes:
    """The canonical body with the values of card numbers and CVCs blanked."""
    pairs = []
    for pair in body.split(b"&") if body else ():
        name, sep, value = pair.partition(b"=")
        field = unquote_plus(name.decode("latin-1")).rstrip("]").rpartition("[")[2]
        if field in _SECRET_FIELDS:
            value = b""
        pairs.append(name + sep + value)
    return b"&".join(sorted(pairs))


class Entry:
    __slots__ = ("fingerprint", "created", "status", "body", "request_id", "done", "loaded")

    def __init__(self, fingerprint: bytes, created: float) -> None:
        self.fingerprint = fingerprint
        self.created = created
        self.status = 0
        self.body = b""
        self.request_id = ""
        self.done = False
        self.loaded = False  # read from a state file: only the card-blind half of the fingerprint

    def matches(self, fingerprint: bytes) -> bool:
        probe = fingerprint[-len(self.fingerprint):] if self.loaded else fingerprint
        return hmac.compare_digest(self.fingerprint, probe)


class IdempotencyStore:
    def __init__(self, clock: Callable[[], float] = time.time,
                 capacity: int = DEFAULT_CAPACITY, ttl: float = TTL_SECONDS) -> None:
        self.clock = clock
        self.capacity = capacity
        self.ttl = ttl
        self._key = os.urandom(32)
        self._lock = threading.Lock()
        self._entries: "OrderedDict[tuple[str, str], Entry]" = OrderedDict()

    def fingerprint(self, method: str, path: str, body: bytes) -> bytes:
        head = method.encode() + b"\0" + path.encode() + b"\0"
        full = hmac.new(self._key, head + body, digestmod=hashlib.sha256).digest()
        blind = hashlib.sha256(head + _redacted(body)).digest()
        return full + blind

    def begin(self, scope: str, key: str, fingerprint: bytes) -> tuple[str, Optional[Entry]]:
        now = self.clock()
        ident = (_scope_id(scope), key)
        with self._lock:
            self._expire(now)
            entry = self._entries.get(ident)
            if entry is not None and now - entry.created >= self.ttl:
                del self._entries[ident]
                entry = None
            if entry is None:
                entry = Entry(fingerprint, now)
                self._entries[ident] = entry
                while len(self._entries) > self.capacity:
                    self._entries.popitem(last=False)
                return NEW, entry
            if not entry.matches(fingerprint):
                return CONFLICT, entry
            if not entry.done:
                return IN_USE, entry
            return REPLAY, entry

    def finish(self, scope: str, key: str, entry: Entry, status: int, body: bytes,
               request_id: str, save: bool) -> None:
        ident = (_scope_id(scope), key)
        with self._lock:
            if not save:
                if self._entries.get(ident) is entry:
                    del self._entries[ident]
                return
            entry.status, entry.body, entry.request_id = status, body, request_id
            entry.done = True

    def _expire(self, now: float) -> None:
        entries = self._entries
        while entries:
            first = next(iter(entries.values()))
            if now - first.created < self.ttl:
                break
            entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    # --- persistence (the state file) ------------------------------------------------------------

    def dump(self) -> list[dict]:
        """The saved results still in force, oldest first, as JSON-ready dicts."""
        now = self.clock()
        with self._lock:
            return [{"scope": scope, "key": key, "fingerprint": e.fingerprint[-_DIGEST:].hex(),
                     "created": e.created, "status": e.status,
                     "body": e.body.decode("utf-8", "replace"), "request_id": e.request_id}
                    for (scope, key), e in self._entries.items()
                    if e.done and now - e.created < self.ttl]

    def load(self, rows: list) -> None:
        """Replace the keys with those of ``dump()``; expired and malformed rows are skipped."""
        now = self.clock()
        entries: list[tuple[tuple[str, str], Entry]] = []
        for row in rows or ():
            try:
                entry = Entry(bytes.fromhex(row["fingerprint"]), float(row["created"]))
                entry.status = int(row["status"])
                entry.body = str(row["body"]).encode("utf-8")
                entry.request_id = str(row.get("request_id") or "")
                ident = (str(row["scope"]), str(row["key"]))
            except (KeyError, TypeError, ValueError):
                continue
            if now - entry.created >= self.ttl:
                continue
            entry.done = entry.loaded = True
            entries.append((ident, entry))
        entries.sort(key=lambda item: item[1].created)
        with self._lock:
            self._entries.clear()
            for ident, entry in entries[-self.capacity:] if self.capacity else ():
                self._entries[ident] = entry
