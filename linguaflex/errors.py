"""The one error contract (API_CONTRACT.md, "Error envelope").

Domain code raises ``DomainError`` subclasses carrying ``status_code``, ``code`` and ``message``;
``exception_handler`` renders them, and DRF's own exceptions, as
``{"success": false, "error": {"code", "message", ...}}``. ``json_404`` and ``json_500`` give
errors raised outside DRF the same shape.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from . import request_id as request_ids


class DomainError(Exception):
    """An error the API answers with its own status and code."""

    status_code = 400
    code = "invalid_request"
    message = "The request is invalid."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        status_code: int | None = None,
        fields: dict[str, list[str]] | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.message
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code
        self.fields = fields
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})
        super().__init__(self.message)

    def payload(self) -> dict[str, Any]:
        return envelope(self.code, self.message, fields=self.fields, **self.extra)


class ValidationFailed(DomainError):
    status_code = 400
    code = "invalid_request"
    message = "The request is invalid."


class NotFound(DomainError):
    status_code = 404
    code = "not_found"
    message = "Not found."


class Forbidden(DomainError):
    status_code = 403
    code = "permission_denied"
    message = "You do not have permission to perform this action."


class InvalidState(DomainError):
    status_code = 409
    code = "invalid_state"
    message = "This action is not allowed in the object's current state."


class InvalidCredentials(DomainError):
    status_code = 401
    code = "invalid_credentials"
    message = "No active account found with the given email and password."


def envelope(code: str, message: str, *, fields: dict | None = None, **extra: Any) -> dict:
    error: dict[str, Any] = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    for key, value in extra.items():
        if value is not None:
            error[key] = value
    # The id a support request can quote: the same as the X-Request-ID header and the log lines.
    current_request_id = request_ids.get()
    if current_request_id and "request_id" not in error:
        error["request_id"] = current_request_id
    return {"success": False, "error": error}


# DRF exception class -> (code, default message). Order matters: subclasses first.
_DRF_CODES: list[tuple[type[Exception], str]] = [
    (drf_exceptions.NotAuthenticated, "not_authenticated"),
    (drf_exceptions.AuthenticationFailed, "invalid_token"),
    (drf_exceptions.PermissionDenied, "permission_denied"),
    (drf_exceptions.NotFound, "not_found"),
    (drf_exceptions.MethodNotAllowed, "method_not_allowed"),
    (drf_exceptions.NotAcceptable, "not_acceptable"),
    (drf_exceptions.UnsupportedMediaType, "unsupported_media_type"),
    (drf_exceptions.Throttled, "throttled"),
    (drf_exceptions.ParseError, "invalid_request"),
    (drf_exceptions.ValidationError, "invalid_request"),
]


def _flatten_message(detail: Any) -> str:
    if isinstance(detail, list) and detail:
        return _flatten_message(detail[0])
    if isinstance(detail, dict) and detail:
        return _flatten_message(next(iter(detail.values())))
    return str(detail)


def _fields(detail: Any) -> dict[str, Any]:
    if isinstance(detail, dict):
        return {key: value if isinstance(value, (list, dict)) else [value] for key, value in detail.items()}
    if isinstance(detail, list):
        return {"non_field_errors": detail}
    return {"non_field_errors": [detail]}


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, DomainError):
        response = Response(exc.payload(), status=exc.status_code)
        for name, value in exc.headers.items():
            response[name] = value
        return response

    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf_exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # an unexpected error: Django's handler500 answers (json_500)

    code = "error"
    for klass, klass_code in _DRF_CODES:
        if isinstance(exc, klass):
            code = klass_code
            break
    detail = getattr(exc, "detail", "")
    if isinstance(exc, drf_exceptions.ValidationError):
        message = "Invalid input."
        fields = _fields(detail)
        first = _flatten_message(detail)
        if first:
            message = f"Invalid input: {first}"
        response.data = envelope(code, message, fields=fields)
    else:
        message = _flatten_message(detail) or "Error."
        response.data = envelope(code, message)
        if isinstance(exc, drf_exceptions.Throttled) and "Retry-After" not in response:
            response["Retry-After"] = str(int(exc.wait or 1))
    return response


def json_404(request, exception=None):
    return JsonResponse(envelope("not_found", "Not found."), status=404)


def json_500(request):
    return JsonResponse(envelope("server_error", "An unexpected error occurred."), status=500)


def json_400(request, exception=None):
    return JsonResponse(envelope("invalid_request", "Bad request."), status=400)


def json_403(request, exception=None):
    return JsonResponse(envelope("permission_denied", "Forbidden."), status=403)
