"""Idempotency keys, as Stripe documents them.

A key is scoped to the API key that sent it. The first request's result (status and body) is
saved once the endpoint has started executing and replayed for later requests with the same key
and the same parameters; other parameters answer 400 ``idempotency_error``; a request arriving
while the first is still running answers 409 ``idempotency_key_in_use``. Keys expire after 24
hours; at most ``capacity`` keys are kept (oldest dropped first), so memory stays bounded.

Parameters are compared through an HMAC of the canonical request under a per-process random key:
the body itself, which may hold card data, is never stored.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
import time
from collections import OrderedDict
from typing import Callable, Optional

TTL_SECONDS = 24 * 3600
DEFAULT_CAPACITY = 200_000

NEW, REPLAY, CONFLICT, IN_USE = "new", "replay", "conflict", "in_use"


class Entry:
    __slots__ = ("fingerprint", "created", "status", "body", "request_id", "done")

    def __init__(self, fingerprint: bytes, created: float) -> None:
        self.fingerprint = fingerprint
        self.created = created
        self.status = 0
        self.body = b""
        self.request_id = ""
        self.done = False


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
        mac = hmac.new(self._key, digestmod=hashlib.sha256)
        mac.update(method.encode())
        mac.update(b"\0")
        mac.update(path.encode())
        mac.update(b"\0")
        mac.update(body)
        return mac.digest()

    def begin(self, scope: str, key: str, fingerprint: bytes) -> tuple[str, Optional[Entry]]:
        now = self.clock()
        with self._lock:
            self._expire(now)
            entry = self._entries.get((scope, key))
            if entry is not None and now - entry.created >= self.ttl:
                del self._entries[(scope, key)]
                entry = None
            if entry is None:
                entry = Entry(fingerprint, now)
                self._entries[(scope, key)] = entry
                while len(self._entries) > self.capacity:
                    self._entries.popitem(last=False)
                return NEW, entry
            if not hmac.compare_digest(entry.fingerprint, fingerprint):
                return CONFLICT, entry
            if not entry.done:
                return IN_USE, entry
            return REPLAY, entry

    def finish(self, scope: str, key: str, entry: Entry, status: int, body: bytes,
               request_id: str, save: bool) -> None:
        with self._lock:
            if not save:
                if self._entries.get((scope, key)) is entry:
                    del self._entries[(scope, key)]
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
