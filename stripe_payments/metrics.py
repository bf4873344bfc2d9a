"""Gauges of the payments app read when Prometheus scrapes ``/metrics/`` (listed in
``METRICS_SCRAPE_COLLECTORS``; see linguaflex/metrics.py for the rest)."""

from __future__ import annotations

import logging
import time

from django.db.models import Count, Min
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .models import WebhookEvent, WebhookEventStatus

logger = logging.getLogger(__name__)


class WebhookBacklogCollector(Collector):
    """Stored webhook events not applied yet, and how long the oldest has waited: the alert on
    unapplied events reads these (deploy/prometheus/alerts.yml)."""

    def collect(self):
        try:
            row = WebhookEvent.objects.filter(
                status__in=[WebhookEventStatus.RECEIVED, WebhookEventStatus.FAILED]
            ).aggregate(count=Count("id"), oldest=Min("received_at"))
        except Exception:
            logger.exception("metrics: unapplied webhook events not counted")
            return
        unapplied = GaugeMetricFamily("linguaflex_webhook_events_unapplied",
                                      "Stored webhook events not yet applied (received or failed).")
        unapplied.add_metric([], row["count"] or 0)
        yield unapplied
        age = GaugeMetricFamily("linguaflex_webhook_oldest_unapplied_age_seconds",
                                "Age of the oldest stored webhook event not yet applied (0 when none).")
        oldest = row["oldest"]
        age.add_metric([], max(0.0, time.time() - oldest.timestamp()) if oldest else 0.0)
        yield age

