"""``GET /``: where to go next. JSON by default, a small self-contained HTML page for a browser."""

from django.conf import settings
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer, TemplateHTMLRenderer
from rest_framework.response import Response
from rest_framework.views import APIView


class IndexOutputSerializer(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.CharField()
    docs = serializers.CharField()
    redoc = serializers.CharField()
    schema = serializers.CharField()
    health = serializers.CharField()
    admin = serializers.CharField()


class IndexView(APIView):
    """Public, and ignores any Authorization header, stale or not. JSON first, so a client that
    sends no Accept (or */*) gets JSON; a browser's ``text/html`` gets the page."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    renderer_classes = [JSONRenderer, TemplateHTMLRenderer]
    template_name = "linguaflex/index.html"

    # Left out of the schema on purpose: a navigation aid for people, not part of the API contract.
    @extend_schema(exclude=True)
    def get(self, request):
        index = {
            "name": settings.SPECTACULAR_SETTINGS["TITLE"],
            "version": settings.SPECTACULAR_SETTINGS["VERSION"],
            "docs": reverse("docs"),
            "redoc": reverse("redoc"),
            "schema": reverse("schema"),
            "health": reverse("health"),
            "admin": reverse("admin:index"),
        }
        return Response(IndexOutputSerializer(index).data)
