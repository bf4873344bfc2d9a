"""Work that waits until the response has gone out: ``after_response(fn)``.

Inside a request, ``fn`` runs when the server closes the response, after the client has it (under
gunicorn, once the body is written to the socket; Django's test client closes it before returning).
Outside a request (a task, a command), or with ``DEFER_AFTER_RESPONSE`` off (the test settings: a
test's in-process live server would still be working when the test tears its database down), it
runs at once. ``make run`` and other deployments with no
Celery broker send their e-mails this way (linguaflex/mail.py), so the student's answer does not
wait for the mail server. A failure is logged, never raised into the server.
"""

from __future__ import annotations

import contextvars
import logging
from typing import Callable

logger = logging.getLogger(__name__)

_pending: contextvars.ContextVar[list[Callable[[], object]] | None] = contextvars.ContextVar(
    "linguaflex_after_response", default=None)


def after_response(fn: Callable[[], object]) -> None:
    from django.conf import settings

    pending = _pending.get()
    if pending is None or not settings.DEFER_AFTER_RESPONSE:
        _run(fn)
    else:
        pending.append(fn)


def _run(fn: Callable[[], object]) -> None:
    try:
        fn()
    except Exception:  # the response is out: log it; what it was for stays recorded (the outbox)
        logger.exception("work after the response failed")


class AfterResponseMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        pending: list[Callable[[], object]] = []
        token = _pending.set(pending)
        try:
            response = self.get_response(request)
        except BaseException:
            _pending.reset(token)
            raise
        _pending.reset(token)

        def run_pending():
            while pending:
                _run(pending.pop(0))

        # Closers run in order: this one before RequestIdMiddleware's (outside it), so the work
        # still logs under the request's id.
        response._resource_closers.append(run_pending)
        return response
