"""Health checks: ``/health/`` for liveness (and the seed's database check), ``/health/ready/`` for
readiness (the database, Redis and the broker: what the app needs to take traffic). nginx, compose
and the load balancer use them."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connection
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from .errors import envelope
from .openapi import error_responses

logger = logging.getLogger(__name__)

OK, ERROR, NOT_CONFIGURED = "ok", "error", "not_configured"
CHECK_TIMEOUT_SECONDS = 2.0


def database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        return False
    return True


def redis_state() -> str:
    if not settings.REDIS_URL:
        return NOT_CONFIGURED  # the cache is in-process (make run, tests)
    try:
        cache.set("linguaflex:health", "1", timeout=10)
        return OK if cache.get("linguaflex:health") == "1" else ERROR
    except Exception as exc:  # any client or network error: not ready
        logger.warning("readiness: Redis unreachable (%s)", type(exc).__name__)
        return ERROR


def broker_state() -> str:
    if not settings.CELERY_BROKER_URL:
        return NOT_CONFIGURED  # tasks run in-process
    from .celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=CHECK_TIMEOUT_SECONDS)
    except Exception as exc:  # kombu raises the transport's own errors
        logger.warning("readiness: broker unreachable (%s)", type(exc).__name__)
        return ERROR
    return OK


class HealthView(APIView):
    """Liveness and database check for load balancers and `make run`'s smoke test."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="health",
        responses={
            200: inline_serializer("Health", {"status": serializers.CharField(), "database": serializers.CharField()}),
            **error_responses(503),
        },
    )
    def get(self, request):
        if not database_ok():
            return Response(
                {**envelope("database_unavailable", "The database is unreachable."), "status": ERROR,
                 "database": ERROR},
                status=503,
            )
        return Response({"status": OK, "database": OK})


class ReadinessView(APIView):
    """Ready to take traffic: the database, Redis (when configured) and the broker (when configured)
    answer. 503 with each part's state otherwise."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="health_ready",
        responses={
            200: inline_serializer("Readiness", {
                "status": serializers.CharField(), "database": serializers.CharField(),
                "redis": serializers.CharField(help_text="ok, error or not_configured"),
                "broker": serializers.CharField(help_text="ok, error or not_configured"),
            }),
            **error_responses(503),
        },
    )
    def get(self, request):
        parts = {"database": OK if database_ok() else ERROR, "redis": redis_state(), "broker": broker_state()}
        if ERROR in parts.values():
            failing = ", ".join(name for name, state in parts.items() if state == ERROR)
            return Response({**envelope("not_ready", f"Not ready: {failing} unreachable."), "status": ERROR,
                             **parts}, status=503)
        return Response({"status": OK, **parts})
