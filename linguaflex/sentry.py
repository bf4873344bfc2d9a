"""Optional error reporting to Sentry (``SENTRY_DSN``), with card data removed before an event leaves.

``scrub_event`` is the SDK's ``before_send`` (and ``before_send_transaction``): every string in the
event (messages, exception values, stack frames' local variables, request data, breadcrumbs) is
masked with the log filter's patterns, and card fields (``number``, ``cvc``, ``card[...]``) are
replaced whatever their value. Request bodies and personal data are not sent at all
(``send_default_pii=False``, ``max_request_body_size="never"``). Each event carries the request id
as a tag, so a report leads to the log lines of the same request.
"""

from __future__ import annotations

import os
import re
from typing import Any

from .logging import MASK, redact

CARD_KEY_RE = re.compile(r"(^|[\[_.-])(number|cvc|cvv|card_?number|pan)(\]|$)", re.IGNORECASE)
MAX_DEPTH = 20


def _scrub(value: Any, depth: int = 0) -> Any:
    if depth > MAX_DEPTH:
        return MASK
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: (MASK if isinstance(key, str) and CARD_KEY_RE.search(key) and value[key] not in (None, "")
                      else _scrub(item, depth + 1))
                for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub(item, depth + 1) for item in value]
    return value


def scrub_event(event: dict, hint: dict | None = None) -> dict:
    """``before_send``: the event with every card number and CVC masked; its request id tagged."""
    from . import request_id

    scrubbed = _scrub(event)
    current = request_id.get()
    if current:
        scrubbed.setdefault("tags", {})
        if isinstance(scrubbed["tags"], dict):
            scrubbed["tags"].setdefault("request_id", current)
    return scrubbed


def init_from_env() -> None:
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=os.environ["SENTRY_DSN"].strip(),
        environment=os.environ.get("SENTRY_ENVIRONMENT", "production"),
        release=os.environ.get("SENTRY_RELEASE") or None,
        traces_sample_rate=float(os.environ.get("SENTRY_TRACES_SAMPLE_RATE", "0") or 0),
        send_default_pii=False,
        max_request_body_size="never",
        include_local_variables=True,
        before_send=scrub_event,
        before_send_transaction=scrub_event,
        integrations=[DjangoIntegration(), CeleryIntegration()],
    )
