"""Faults armed by tests: the next N matching requests time out, fail, are refused, or lose their
answer.

- ``timeout``: the request is held ``seconds`` (default 30) without being executed, then the
  connection is closed. ``release_all()`` (called by reset and stop) frees held requests at once.
- ``error_500``: answers 500 ``api_error`` without executing, with ``Stripe-Should-Retry: false``
  as Stripe sends it (the SDK then does not retry).
- ``rate_limit``: answers 429 ``rate_limit`` without executing.
- ``lock_timeout``: answers 429 ``lock_timeout`` without executing (another request holds the
  object), with ``Stripe-Should-Retry: true``: the SDK retries it.
- ``drop_after_work``: executes the request (state changes, events, idempotent result saved) and
  closes the connection without answering: Stripe did the work, the client never heard.
- ``reset_mid_body``: executes the request, sends the answer's head and half its body, then resets
  the connection: Stripe did the work, the client read a broken answer.
- ``refused``: the request is not executed (its idempotency key stays unused) and the connection
  is reset at once (``SO_LINGER`` 0, then close: the client reads a TCP RST, not an answer), so
  the SDK raises ``APIConnectionError`` immediately, as when Stripe cannot be reached.

``KINDS`` is the one list of fault kinds (a fault matrix can iterate over it);
``EXECUTED_KINDS`` are those whose request is executed all the same.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Optional

KINDS: tuple[str, ...] = ("timeout", "error_500", "rate_limit", "lock_timeout", "drop_after_work",
                          "reset_mid_body", "refused")
EXECUTED_KINDS: frozenset[str] = frozenset({"drop_after_work", "reset_mid_body"})


@dataclass
class Fault:
    method: str
    path: str
    kind: str
    remaining: int
    seconds: float = 30.0

    def as_dict(self) -> dict:
        return {"method": self.method, "path": self.path, "kind": self.kind,
                "remaining": self.remaining, "seconds": self.seconds}


def _path_matches(pattern: str, path: str) -> bool:
    if pattern.startswith("^"):
        return re.search(pattern, path) is not None
    return path.startswith(pattern)


class FaultTable:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._release = threading.Event()

    def arm(self, method: str, path: str, kind: str, count: int = 1,
            seconds: float = 30.0) -> Fault:
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {', '.join(KINDS)}")
        if count < 1:
            raise ValueError("count must be at least 1")
        if path.startswith("^"):
            try:
                re.compile(path)
            except re.error as exc:
                raise ValueError(f"invalid path pattern {path!r}: {exc}") from None
        fault = Fault(method.upper(), path, kind, int(count), float(seconds))
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, method: str, path: str) -> Optional[Fault]:
        """The first armed fault matching this request, if any (using up one of its count).

        ``path`` of a fault matches the request path exactly or as a prefix, or, when it starts
        with "^", as a regular expression (``^/v1/payment_intents$`` is the create call alone, not
        ``/v1/payment_intents/pi_1/cancel``); method "*" matches any method.
        """
        if not self._faults:
            return None
        with self._lock:
            for fault in self._faults:
                if fault.method in ("*", method) and _path_matches(fault.path, path):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def hold(self, seconds: float) -> None:
        """Hold a timed-out request until ``seconds`` pass or the faults are released."""
        self._release.wait(seconds)

    def release_all(self) -> None:
        self._release.set()
        self._release = threading.Event()

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
        self.release_all()

    def armed(self) -> list[dict]:
        with self._lock:
            return [f.as_dict() for f in self._faults]
