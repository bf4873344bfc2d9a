"""One id per request, followed from the API call to Celery tasks and Stripe objects and back.

``RequestIdMiddleware`` takes the proxy's ``X-Request-ID`` when ``TRUST_X_REQUEST_ID`` is on (our
nginx always sets it itself, so a client cannot choose it) and well formed, or makes a new one;
returns it in the ``X-Request-ID`` response header; and keeps it in a context variable for the
request's thread. ``RequestIdLogFilter`` puts it on every log record, the error envelope carries it
(``linguaflex.errors.envelope``), Celery tasks receive it in their message headers
(``linguaflex.celery``), and rows that create Stripe objects freeze it (``Payment.request_id``) so
their metadata is the same on every keyed retry.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import re
import uuid
from typing import Iterator

from django.conf import settings

HEADER = "X-Request-ID"
META_KEY = "HTTP_X_REQUEST_ID"
# nginx's $request_id is 32 hex digits; other proxies send UUIDs or similar. Nothing that could
# break a log line or a header (spaces, quotes, newlines) is taken.
_VALID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{7,127}")

_current: contextvars.ContextVar[str | None] = contextvars.ContextVar("linguaflex_request_id", default=None)


def new() -> str:
    """A UUID in its canonical form: the hyphens keep every run of digits at 12 or fewer, so an id
    can never look like a card number (13-19 digits) to the log redaction, a DLP scanner or a check
    for card numbers in responses. (The bare 32-hex form had a run of 13+ digits in about 1 of 25.)"""
    return str(uuid.uuid4())


def get() -> str | None:
    """The id of the request (or task) this code runs for, or None outside of one."""
    return _current.get()


def current_or_blank() -> str:
    """A model field's default: rows freeze the id of the request (or task) that created them."""
    return _current.get() or ""


_origin: contextvars.ContextVar[str | None] = contextvars.ContextVar("linguaflex_origin_request_id", default=None)


def origin() -> str:
    """The id to put in the metadata of a Stripe object this request creates: the request that
    first used the client's Idempotency-Key when this one repeats it (a Stripe retry under the same
    key must send the same parameters), else this request's own id ("" outside a request)."""
    return _origin.get() or _current.get() or ""


@contextlib.contextmanager
def origin_bound(value: str | None) -> Iterator[None]:
    token = _origin.set(value or None)
    try:
        yield
    finally:
        _origin.reset(token)


def valid(value: str | None) -> bool:
    return bool(value) and _VALID.fullmatch(value) is not None


def push(request_id: str | None) -> contextvars.Token:
    """Bind ``request_id`` (or a new id when it is missing or malformed); ``pop`` the token after."""
    return _current.set(request_id if valid(request_id) else new())


def pop(token: contextvars.Token) -> None:
    _current.reset(token)


@contextlib.contextmanager
def bound(request_id: str | None) -> Iterator[str]:
    """Run a block (a task, a management command) under ``request_id``, or a new id."""
    token = push(request_id)
    try:
        yield _current.get()
    finally:
        pop(token)


def from_request(request) -> str:
    supplied = request.META.get(META_KEY, "")
    if getattr(settings, "TRUST_X_REQUEST_ID", False) and valid(supplied):
        return supplied
    return new()


class RequestIdMiddleware:
    """First in the chain, so every later layer (its errors included) runs under the id."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = from_request(request)
        request.request_id = request_id
        token = _current.set(request_id)
        try:
            response = self.get_response(request)
        except BaseException:
            _unbind(token)
            raise
        response[HEADER] = request_id
        # Unbound when the server closes the response, not here: Django logs a 4xx/5xx
        # ("Not Found: /path", django.request) after the middleware chain has returned, and that
        # line must carry the id too.
        response._resource_closers.append(lambda: _unbind(token))
        return response


def _unbind(token: contextvars.Token) -> None:
    try:
        _current.reset(token)
    except (ValueError, RuntimeError):  # already reset, or closed from another context
        pass


class RequestIdLogFilter(logging.Filter):
    """Every record gets ``request_id`` ("-" outside a request or task)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = _current.get() or "-"
        return True
