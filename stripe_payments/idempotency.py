"""The client's ``Idempotency-Key`` (API_CONTRACT.md): replay, wait for a twin, 409 on another body.

A layer around a view (``@idempotent(scope)``), not a protocol inside the services: it stores and
replays answers only. The request is remembered only as a keyed hash (HMAC-SHA256 with SECRET_KEY)
of its canonical JSON: the body itself may hold card data and is never stored. The first answer
below 500 is stored and replayed, status and body, a 402 included. After a 5xx the key stays
without an answer, so a retry runs the view again; the services receive the same key and resume
what the first attempt left (a payment row holds its key), so Stripe sees the same idempotency key.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.response import Response

from linguaflex import deadline as request_deadline
from linguaflex import request_id as request_ids
from linguaflex.errors import DomainError

from .models import IdempotencyRecord

MAX_KEY_LENGTH = 255
MIN_STALE_IN_FLIGHT = timedelta(minutes=2)
POLL_SECONDS = 0.05


class IdempotencyConflict(DomainError):
    status_code = 409
    code = "idempotency_conflict"
    message = "This Idempotency-Key was already used with a different request body."


class IdempotencyInProgress(DomainError):
    status_code = 409
    code = "idempotency_in_progress"
    message = "A request with this Idempotency-Key is still being processed. Retry shortly."


@dataclass
class Outcome:
    status: int
    body: dict[str, Any]


def _without_cvc(data: Any) -> Any:
    """The body without any CVC: PCI DSS forbids keeping a card's CVC after authorization in any
    form, hashes included. (The card number stays in the keyed HMAC, which PCI DSS allows.)"""
    if isinstance(data, dict):
        return {k: _without_cvc(v) for k, v in data.items() if str(k).lower() not in ("cvc", "cvv")}
    if isinstance(data, list):
        return [_without_cvc(v) for v in data]
    return data


def stale_in_flight() -> timedelta:
    """How long a key whose holder vanished (a killed worker) stays held before a twin takes it
    over: twice the request deadline (``REQUEST_DEADLINE_SECONDS``, which bounds the holder's
    every Stripe call and retry), and never under two minutes, so a live holder is never
    overtaken (that could create a second payment). 2 minutes with the defaults."""
    return max(MIN_STALE_IN_FLIGHT, timedelta(seconds=2 * float(settings.REQUEST_DEADLINE_SECONDS)))


def request_hash(*, scope: str, data: Any) -> str:
    canonical = json.dumps(_without_cvc(data), sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                           default=str)
    return hmac.new(settings.SECRET_KEY.encode(), f"{scope}\n{canonical}".encode(), hashlib.sha256).hexdigest()


def validate_key(raw: str | None) -> str | None:
    if raw is None:
        return None
    key = raw.strip()
    if not key:
        return None
    if len(key) > MAX_KEY_LENGTH:
        raise DomainError(f"The Idempotency-Key header must be at most {MAX_KEY_LENGTH} characters.",
                          fields={"Idempotency-Key": [f"At most {MAX_KEY_LENGTH} characters."]})
    return key


def _claim(record_id: int) -> bool:
    """Take a key nobody holds (answered with a 5xx, or held by a vanished worker)."""
    stale_before = timezone.now() - stale_in_flight()
    return bool(
        IdempotencyRecord.objects.filter(pk=record_id, response_status__isnull=True)
        .filter(in_flight=False)
        .update(in_flight=True, updated_at=timezone.now())
        or IdempotencyRecord.objects.filter(pk=record_id, response_status__isnull=True, in_flight=True,
                                            updated_at__lt=stale_before)
        .update(updated_at=timezone.now())
    )


def run_idempotent(*, user, key: str | None, scope: str, data: Any, handler: Callable[[bool], Outcome]) -> Outcome:
    """Run ``handler`` once per (user, key); replay its answer to every twin. ``handler(first)``:
    ``first`` is True when this request has just recorded the key, so no earlier attempt under it
    can have left work to resume (the services then need not look for any)."""
    if key is None:
        return _run(handler, None)
    digest = request_hash(scope=scope, data=data)
    try:
        with transaction.atomic():
            record = IdempotencyRecord.objects.create(user=user, key=key, scope=scope, request_hash=digest)
    except IntegrityError:
        record = IdempotencyRecord.objects.get(user=user, key=key)
    else:
        # Outside the try: an IntegrityError of the handler's own writes is not a twin's key.
        return _run(handler, record, first=True)

    if record.scope != scope or not hmac.compare_digest(record.request_hash, digest):
        raise IdempotencyConflict()
    wait = float(settings.IDEMPOTENCY_WAIT_SECONDS)
    left = request_deadline.remaining()
    if left is not None:  # the twin's wait counts against this request's own deadline
        wait = max(0.0, min(wait, left - 1.0))
    deadline = time.monotonic() + wait
    while True:
        if record.response_status is not None:
            return Outcome(status=record.response_status, body=record.response_body or {})
        if _claim(record.pk):
            # Resuming the first request's work: Stripe objects get that request's id, as a retry
            # under the same Stripe key must send the same parameters.
            with request_ids.origin_bound(record.request_id):
                return _run(handler, record)
        if time.monotonic() >= deadline:
            raise IdempotencyInProgress()
        time.sleep(POLL_SECONDS)
        record.refresh_from_db()


def _run(handler: Callable[[bool], Outcome], record: IdempotencyRecord | None, *, first: bool = False) -> Outcome:
    try:
        outcome = handler(first)
    except DomainError as exc:
        if exc.status_code >= 500:
            _release(record)
            raise
        _store(record, Outcome(status=exc.status_code, body=exc.payload()))
        raise
    except BaseException:
        _release(record)
        raise
    _store(record, outcome)
    return outcome


def idempotency_key(request) -> str | None:
    """The request's ``Idempotency-Key`` header, checked (at most 255 characters), or None."""
    return validate_key(request.headers.get("Idempotency-Key"))


def key_is_new(request) -> bool:
    """Inside an ``@idempotent`` view: this request has just recorded its key (a first attempt, not a
    retry that resumes an earlier one's work)."""
    return getattr(request, "_idempotency_key_is_new", False)


def idempotent(scope: str):
    """Wrap an APIView method: one answer per (user, Idempotency-Key) and ``scope``, replayed, status
    and body, to every twin. The view reads the same key (``idempotency_key``) for its service."""

    def decorate(view_method):
        @functools.wraps(view_method)
        def wrapped(self, request, *args, **kwargs):
            def handler(first: bool) -> Outcome:
                request._idempotency_key_is_new = first
                response = view_method(self, request, *args, **kwargs)
                return Outcome(status=response.status_code, body=response.data)

            outcome = run_idempotent(user=request.user, key=idempotency_key(request), scope=scope,
                                     data=request.data, handler=handler)
            return Response(outcome.body, status=outcome.status)

        return wrapped

    return decorate


def _store(record: IdempotencyRecord | None, outcome: Outcome) -> None:
    if record is not None:
        IdempotencyRecord.objects.filter(pk=record.pk).update(
            in_flight=False, response_status=outcome.status, response_body=outcome.body, updated_at=timezone.now()
        )


def _release(record: IdempotencyRecord | None) -> None:
    if record is not None:
        IdempotencyRecord.objects.filter(pk=record.pk).update(in_flight=False, updated_at=timezone.now())


def purge_expired(*, now=None) -> int:
    cutoff = (now or timezone.now()) - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted
