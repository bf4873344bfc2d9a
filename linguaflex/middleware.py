"""Request guards that must run before any view, or any parser, sees the request."""

from __future__ import annotations

import re

from django.conf import settings
from django.http import JsonResponse

from .errors import envelope
from .logging import luhn_valid

# Parameter names (or parts of names: card[number], card_details[cvc]) that only card data has.
_CARD_PARAMETER_PARTS = frozenset({
    "card", "card_number", "cardnumber", "number", "pan", "cvc", "cvc2", "cvv", "cvv2", "cvn", "csc",
    "card_details", "expiry", "exp",
})
_NAME_PARTS = re.compile(r"[\[\].]+")
# 13 to 19 digits, possibly split by single spaces or dashes, not inside a longer run of digits.
_DIGIT_RUN = re.compile(r"(?<![0-9])(?:[0-9][ -]?){12,18}[0-9](?![0-9])")
CARD_IN_URL_MESSAGE = "Card data must never be sent in a URL. Send it in the JSON body of a POST request."


def _is_card_parameter(name: str) -> bool:
    parts = [part for part in _NAME_PARTS.split(name.lower()) if part]
    return any(part in _CARD_PARAMETER_PARTS or part.startswith("exp_") for part in parts)


def holds_card_number(text: str) -> bool:
    """True when ``text`` holds 13 to 19 digits that pass the Luhn check and start as a payment
    card does (2 to 9: a run starting 0 or 1 is a millisecond timestamp, not a card)."""
    for match in _DIGIT_RUN.finditer(text):
        digits = match.group().replace(" ", "").replace("-", "")
        if 13 <= len(digits) <= 19 and digits[0] not in "01" and luhn_valid(digits):
            return True
    return False


class CardDataInQueryStringMiddleware:
    """Refuse, with 400 and before anything logs or reads it, a query string that carries card data:
    a parameter named like a card field (card_number, number, cvc, cvv, card[...], exp_*), or a
    name or value holding a card number. URLs end up in access logs, proxies and browser
    histories; the answer never repeats what was sent."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.META.get("QUERY_STRING") and self._carries_card_data(request):
            return JsonResponse(envelope("invalid_request", CARD_IN_URL_MESSAGE), status=400)
        return self.get_response(request)

    @staticmethod
    def _carries_card_data(request) -> bool:
        for name, values in request.GET.lists():
            if _is_card_parameter(name) or holds_card_number(name):
                return True
            if any(holds_card_number(value) for value in values):
                return True
        return False


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
    and bypasses handler404); the admin keeps its HTML pages, and so does a view that answers a
    404 page of its own on purpose (``response.json_404_exempt = True``: the 3-D Secure return
    page's "this link is not valid")."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (response.status_code == 404 and not request.path.startswith("/admin/")
                and not getattr(response, "json_404_exempt", False)
                and not response.get("Content-Type", "").startswith("application/json")):
            return JsonResponse(envelope("not_found", "Not found."), status=404)
        return response
