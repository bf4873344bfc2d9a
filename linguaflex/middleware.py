"""Request guards that must run before any parser sees the body."""

from __future__ import annotations

from django.conf import settings
from django.http import JsonResponse

from .errors import envelope


class RequestSizeLimitMiddleware:
    """Answer 413 for bodies over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (64 KiB).

    DRF's parsers read ``request.stream`` directly and so ignore Django's own upload limit; the
    declared Content-Length is checked here, before anything reads the body.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw_length = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(raw_length)
        except ValueError:
            return JsonResponse(envelope("invalid_request", "Invalid Content-Length header."), status=400)
        if limit is not None and length > limit:
            return JsonResponse(
                envelope("request_too_large", f"The request body is larger than {limit // 1024} KiB."),
                status=413,
            )
        return self.get_response(request)


class JsonNotFoundMiddleware:
    """Unknown URLs answer the envelope even with DEBUG on (Django's technical 404 page is HTML
    and bypasses handler404); the admin keeps its HTML pages."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (response.status_code == 404 and not request.path.startswith("/admin/")
                and not response.get("Content-Type", "").startswith("application/json")):
            return JsonResponse(envelope("not_found", "Not found."), status=404)
        return response
