"""Prometheus metrics (prometheus-client), read at ``/metrics/`` by Prometheus only.

What is measured, and where it is recorded:

- ``linguaflex_http_request_duration_seconds{method,route,status}``: ``MetricsMiddleware``; the
  route is the URL pattern (``stripe-payments/payments/<int:pk>/``), never the raw path, so the
  label set stays bounded ("unmatched" for a path no pattern serves).
- ``linguaflex_payments_total{outcome,decline_code}``: a payment's move to succeeded, failed,
  requires_action or canceled, after its transaction commits (services/lifecycle.py).
- ``linguaflex_stripe_call_duration_seconds{operation}`` and
  ``linguaflex_stripe_call_errors_total{operation,error}``: every try in ``gateway._call``.
- ``linguaflex_webhook_events_total{type,outcome}`` and ``linguaflex_webhook_lag_seconds{type}``
  (Stripe's ``created`` to applied): ``webhook_event_process``.
- ``linguaflex_celery_tasks_total{task,state}``: Celery's task signals (linguaflex/celery.py).
- Read when Prometheus scrapes, from the shared state, so every instance reports the same values:
  ``linguaflex_webhook_events_unapplied`` and ``linguaflex_webhook_oldest_unapplied_age_seconds``
  (the database, stripe_payments/metrics.py; each app adds its own through
  ``METRICS_SCRAPE_COLLECTORS``), ``linguaflex_celery_queue_depth{queue}`` (the broker) and
  ``linguaflex_ledger_check_ok`` / ``_problems`` / ``_timestamp_seconds`` (the last check's result,
  kept in the cache: Redis in production).

Several processes: gunicorn's workers (and the Celery pool's children) each count on their own.
With ``PROMETHEUS_MULTIPROC_DIR`` set (an empty directory per instance, cleared before it starts),
prometheus-client keeps the counters in files there and ``/metrics/`` adds them up;
deploy/gunicorn.conf.py marks a dead worker's files. Without it (``make run``) the one process's
registry is served. The Celery worker serves its own counters on ``CELERY_METRICS_PORT``.

``/metrics/`` answers a request with ``Authorization: Bearer <METRICS_TOKEN>``; with no token set,
only a loopback caller that did not come through a proxy. deploy/nginx.conf does not pass it on.
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from typing import Iterable

from django.conf import settings
from django.core.cache import cache
from django.http import HttpResponse, JsonResponse
from django.utils.module_loading import import_string
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .errors import envelope

logger = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
LAG_BUCKETS = (0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
LEDGER_CACHE_KEY = "linguaflex:metrics:ledger_check"
LABEL_MAX = 60

HTTP_LATENCY = Histogram(
    "linguaflex_http_request_duration_seconds", "Time to answer a request, by route pattern.",
    ["method", "route", "status"], buckets=LATENCY_BUCKETS,
)
PAYMENTS = Counter(
    "linguaflex_payments", "Payments reaching an outcome, by outcome and Stripe decline code.",
    ["outcome", "decline_code"],
)
STRIPE_LATENCY = Histogram(
    "linguaflex_stripe_call_duration_seconds", "One try of a Stripe API call, by operation.",
    ["operation"], buckets=LATENCY_BUCKETS,
)
STRIPE_ERRORS = Counter(
    "linguaflex_stripe_call_errors", "Stripe API calls that failed, by operation and kind of error.",
    ["operation", "error"],
)
WEBHOOKS = Counter(
    "linguaflex_webhook_events", "Webhook events handled, by type and outcome.", ["type", "outcome"],
)
WEBHOOK_LAG = Histogram(
    "linguaflex_webhook_lag_seconds", "From the event's creation at Stripe to its effect applied here.",
    ["type"], buckets=LAG_BUCKETS,
)
TASKS = Counter(
    "linguaflex_celery_tasks", "Celery tasks finished, by task and state (succeeded, failed, retried).",
    ["task", "state"],
)


def _label(value: str | None) -> str:
    return (value or "")[:LABEL_MAX]


# --- recording ------------------------------------------------------------------------------------
# Each recorder swallows its own failure: a metric must never fail a payment.
def payment_outcome(outcome: str, decline_code: str | None = None) -> None:
    try:
        PAYMENTS.labels(_label(str(outcome)), _label(decline_code)).inc()
    except Exception:
        logger.exception("metrics: payment outcome not recorded")


def stripe_call(operation: str, seconds: float, error: str | None = None) -> None:
    try:
        STRIPE_LATENCY.labels(_label(operation)).observe(seconds)
        if error:
            STRIPE_ERRORS.labels(_label(operation), _label(error)).inc()
    except Exception:
        logger.exception("metrics: Stripe call not recorded")


def webhook_applied(event_type: str, lag_seconds: float | None, outcome: str) -> None:
    try:
        WEBHOOKS.labels(_label(event_type), _label(str(outcome))).inc()
        if lag_seconds is not None:
            WEBHOOK_LAG.labels(_label(event_type)).observe(lag_seconds)
    except Exception:
        logger.exception("metrics: webhook event not recorded")


def task_finished(task_name: str, state: str) -> None:
    try:
        TASKS.labels(_label(task_name), state).inc()
    except Exception:
        logger.exception("metrics: task state not recorded")


def ledger_checked(ok: bool, problems: int) -> None:
    """The ledger check's result, kept where every instance's scrape reads it."""
    try:
        cache.set(LEDGER_CACHE_KEY, {"ok": bool(ok), "problems": int(problems), "at": time.time()}, None)
    except Exception:
        logger.exception("metrics: ledger check result not kept")


# --- read at scrape time ----------------------------------------------------------------------------
def _queue_names() -> list[str]:
    from celery import current_app

    default = current_app.conf.task_default_queue or "celery"
    return [default]


def queue_depths() -> dict[str, int]:
    """Messages waiting in each queue the workers consume, asked of the broker itself."""
    url = settings.CELERY_BROKER_URL
    if not url:
        return {}
    depths: dict[str, int] = {}
    if url.startswith(("redis://", "rediss://")):
        import redis

        client = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        try:
            for queue in _queue_names():
                # kombu keeps one list per priority step: "celery", "celery\x06\x163", ...
                keys = [queue, *(f"{queue}\x06\x16{step}" for step in (1, 2, 3, 4, 5, 6, 7, 8, 9))]
                with client.pipeline(transaction=False) as pipe:
                    for key in keys:
                        pipe.llen(key)
                    depths[queue] = sum(pipe.execute())
        finally:
            client.close()
        return depths
    from .celery import app

    with app.connection_for_read() as conn:
        conn.ensure_connection(max_retries=1, timeout=1.0)
        channel = conn.channel()
        try:
            for queue in _queue_names():
                try:
                    depths[queue] = channel.queue_declare(queue=queue, passive=True).message_count
                except Exception:  # not declared yet: nothing waits in it
                    depths[queue] = 0
        finally:
            channel.close()
    return depths


class SharedStateCollector(Collector):
    """Gauges computed when Prometheus scrapes, from the database, the broker and the cache."""

    def collect(self) -> Iterable[GaugeMetricFamily]:
        yield from self._queues()
        yield from self._ledger()
        for path in settings.METRICS_SCRAPE_COLLECTORS:
            try:
                yield from import_string(path)().collect()
            except Exception:  # one failing source must not hide the others
                logger.exception("metrics: %s failed", path)

    def _queues(self):
        try:
            depths = queue_depths()
        except Exception as exc:  # the broker is down: readiness says so; the gauge is absent
            logger.warning("metrics: queue depth not read (%s)", type(exc).__name__)
            return
        if not depths:
            return
        depth = GaugeMetricFamily("linguaflex_celery_queue_depth", "Tasks waiting in the broker's queue.",
                                  labels=["queue"])
        for queue, value in depths.items():
            depth.add_metric([queue], value)
        yield depth

    def _ledger(self):
        try:
            result = cache.get(LEDGER_CACHE_KEY)
        except Exception:
            logger.exception("metrics: ledger check result not read")
            return
        if not result:
            return
        for name, help_text, value in (
            ("linguaflex_ledger_check_ok", "1 when the last ledger check found the books balanced.",
             1 if result["ok"] else 0),
            ("linguaflex_ledger_check_problems", "Differences the last ledger check found.", result["problems"]),
            ("linguaflex_ledger_check_timestamp_seconds", "When the last ledger check ran (Unix time).",
             result["at"]),
        ):
            family = GaugeMetricFamily(name, help_text)
            family.add_metric([], value)
            yield family


def multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip()


def scrape_registry(*, shared_state: bool = True) -> CollectorRegistry:
    """The counters of every process of this instance (or of this process), plus the shared gauges."""
    if multiprocess_dir():
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        registry.register(_ProcessRegistry())
    if shared_state:
        registry.register(SharedStateCollector())
    return registry


class _ProcessRegistry(Collector):
    """This process's own metrics (the default registry), inside a registry built per scrape."""

    def collect(self):
        yield from REGISTRY.collect()


# --- the endpoint ---------------------------------------------------------------------------------
def _allowed(request) -> bool:
    token = settings.METRICS_TOKEN
    if token:
        given = request.META.get("HTTP_AUTHORIZATION", "")
        return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())
    # No token: only this machine, asking directly (a proxied request carries X-Forwarded-For).
    return (request.META.get("REMOTE_ADDR") in ("127.0.0.1", "::1")
            and "HTTP_X_FORWARDED_FOR" not in request.META)


def metrics_view(request):
    if request.method not in ("GET", "HEAD"):
        return JsonResponse(envelope("method_not_allowed", f'Method "{request.method}" not allowed.'), status=405)
    if not _allowed(request):
        return JsonResponse(envelope("permission_denied", "The metrics are for Prometheus only."), status=403)
    return HttpResponse(generate_latest(scrape_registry()), content_type=CONTENT_TYPE_LATEST)


class MetricsMiddleware:
    """Times every request by its route pattern."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        try:
            match = getattr(request, "resolver_match", None)
            route = match.route if match is not None and match.route else "unmatched"
            HTTP_LATENCY.labels(request.method if request.method in _METHODS else "other", _label(route),
                                str(response.status_code)).observe(time.perf_counter() - started)
        except Exception:
            logger.exception("metrics: request not timed")
        return response


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


# --- the Celery worker ----------------------------------------------------------------------------
def install_celery_metrics() -> None:
    """Serve the worker's counters (its pool's children's, with PROMETHEUS_MULTIPROC_DIR) on
    ``CELERY_METRICS_ADDR:CELERY_METRICS_PORT`` (127.0.0.1:9808; port 0 turns it off)."""
    port = int(os.environ.get("CELERY_METRICS_PORT", "9808") or 0)
    if not port:
        return
    from prometheus_client import start_http_server

    if not multiprocess_dir():
        logger.warning("metrics: PROMETHEUS_MULTIPROC_DIR is not set; a prefork pool's children's "
                       "counters will not be served")
    address = os.environ.get("CELERY_METRICS_ADDR", "127.0.0.1")
    start_http_server(port, addr=address, registry=scrape_registry(shared_state=False))
    logger.info("metrics: worker metrics on http://%s:%d/metrics", address, port)
