"""One deadline for the whole request, across every Stripe call and retry, and every wait.

A per-try timeout is not a bound: three tries of 20 s answered a 504 after 61 s, past a proxy's
60 s, and a request queued behind busy threads waited on top of that. So each request gets one
budget, ``REQUEST_DEADLINE_SECONDS``, measured from when the proxy received it (nginx sends
``X-Request-Start: t=<epoch seconds>``, deploy/nginx.conf) or else from when Django saw it. The
gateway gives each Stripe try at most what is left, and calls Stripe no more once it is spent;
the idempotency wait for a twin stops there too. Outside a request (commands, workers) there is
no deadline: each call is bounded by its own timeouts and retries.
"""

from __future__ import annotations

import contextvars
import re
import time
from contextlib import contextmanager
from typing import Iterator

from django.conf import settings

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("linguaflex_deadline", default=None)

# nginx's ${msec}: seconds since the epoch with milliseconds, optionally prefixed "t=".
_REQUEST_START = re.compile(r"^\s*(?:t=)?(\d{9,11}(?:\.\d{1,6})?)\s*$")
# A proxy clock ahead of ours, or a forged header, never buys more than the full budget.
_MAX_QUEUE_SECONDS = 3600.0


def remaining() -> float | None:
    """Seconds left for this request (may be negative), or None when there is no deadline."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()


@contextmanager
def deadline(seconds: float, *, already_spent: float = 0.0) -> Iterator[None]:
    """Run a block under a deadline ``seconds`` from now, less ``already_spent``; an outer,
    earlier deadline still wins."""
    ends = time.monotonic() + seconds - max(0.0, already_spent)
    outer = _deadline.get()
    token = _deadline.set(ends if outer is None else min(outer, ends))
    try:
        yield
    finally:
        _deadline.reset(token)


def queued_seconds(header: str | None, *, now: float | None = None) -> float:
    """How long ago the proxy received the request, from ``X-Request-Start`` (0 if absent)."""
    if not header:
        return 0.0
    match = _REQUEST_START.match(header)
    if not match:
        return 0.0
    waited = (time.time() if now is None else now) - float(match.group(1))
    return min(max(0.0, waited), _MAX_QUEUE_SECONDS)


class RequestDeadlineMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        spent = queued_seconds(request.META.get("HTTP_X_REQUEST_START"))
        with deadline(float(settings.REQUEST_DEADLINE_SECONDS), already_spent=spent):
            return self.get_response(request)
