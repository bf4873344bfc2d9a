from django.db import DatabaseError, connection
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from .openapi import error_responses


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
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchone()
        except DatabaseError:
            return Response(
                {"success": False, "error": {"code": "database_unavailable", "message": "The database is unreachable."},
                 "status": "error", "database": "error"},
                status=503,
            )
        return Response({"status": "ok", "database": "ok"})
