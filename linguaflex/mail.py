"""E-mail sent after the transaction commits: never for a rolled-back change, and a mail outage
never fails (or undoes) a money movement that has committed."""

from __future__ import annotations

import logging
from typing import Callable

from django.db import transaction

logger = logging.getLogger(__name__)


def send_after_commit(what: str, send: Callable[[], None]) -> None:
    def run():
        try:
            send()
        except Exception:  # logged with its traceback; the committed change stands
            logger.exception("could not send the %s e-mail", what)

    transaction.on_commit(run)
