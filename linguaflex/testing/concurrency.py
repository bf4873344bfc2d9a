"""Run calls at the same moment in threads (a barrier releases them together), for the race tests
that need PostgreSQL's row locks. Each thread closes its own database connection."""

from __future__ import annotations

import threading
from typing import Any, Callable, Iterable

from django.db import connection


def _error(exc: Exception) -> str:
    return f"error: {exc!r}"


def run_at_once(calls: Iterable[Callable[[], Any]], *, describe: Callable[[Exception], Any] = _error,
                timeout: float = 60.0) -> list:
    """Each call's result (or ``describe(exception)``), in the order they finished."""
    calls = list(calls)
    barrier = threading.Barrier(len(calls))
    outcomes: list = []
    lock = threading.Lock()

    def run(call):
        try:
            barrier.wait(timeout=10)
            result = call()
        except Exception as exc:  # noqa: BLE001 - reported by the caller's assertion
            result = describe(exc)
        finally:
            connection.close()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    stuck = sum(thread.is_alive() for thread in threads)
    assert not stuck, f"{stuck} of {len(threads)} racing calls did not finish in {timeout} s"
    return outcomes
