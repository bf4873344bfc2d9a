"""Chunked request bodies (``Transfer-Encoding: chunked``, no Content-Length) for Django.

Django reads a body only as far as CONTENT_LENGTH says, and a chunked request has none, so its body
read as empty ("This field is required." for every field). gunicorn de-chunks the input and says so
with ``wsgi.input_terminated``; then the body is read here, up to DATA_UPLOAD_MAX_MEMORY_SIZE (one
byte more is the contract's 413), and handed on with its length. A server that does not de-chunk
(Django's runserver) would hand over the raw chunk framing: that is refused with a 400 instead.
"""

from __future__ import annotations

import io
import json
from http import HTTPStatus

from django.conf import settings

from .errors import envelope

_READ_SIZE = 64 * 1024


def _is_chunked(environ) -> bool:
    codings = environ.get("HTTP_TRANSFER_ENCODING", "")
    return "chunked" in (coding.strip().lower() for coding in codings.split(","))


def _read_at_most(stream, limit: int | None) -> bytes:
    """The whole input, or its first ``limit + 1`` bytes when it is longer than ``limit``."""
    parts: list[bytes] = []
    size = 0
    while limit is None or size <= limit:
        want = _READ_SIZE if limit is None else min(_READ_SIZE, limit + 1 - size)
        chunk = stream.read(want)
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts)


def _error(start_response, status: int, code: str, message: str):
    body = json.dumps(envelope(code, message)).encode()
    start_response(f"{status} {HTTPStatus(status).phrase}", [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
    ])
    return [body]


class ChunkedBodyMiddleware:
    """WSGI middleware: give a de-chunked body a CONTENT_LENGTH; refuse one no one de-chunked."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        if _is_chunked(environ) and not environ.get("CONTENT_LENGTH"):
            if not environ.get("wsgi.input_terminated"):
                return _error(start_response, 400, "invalid_request",
                              "Chunked request bodies are not supported by this server; send Content-Length.")
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            body = _read_at_most(environ["wsgi.input"], limit)
            if limit is not None and len(body) > limit:
                return _error(start_response, 413, "request_too_large",
                              f"The request body is larger than {limit // 1024} KiB.")
            environ["CONTENT_LENGTH"] = str(len(body))
            environ["wsgi.input"] = io.BytesIO(body)
        return self.app(environ, start_response)
