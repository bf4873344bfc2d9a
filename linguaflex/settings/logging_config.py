"""The LOGGING dict: card numbers masked and the request id on every record, plain lines in
development and one JSON object per line in production (``LOG_FORMAT``)."""

from __future__ import annotations

FORMATTERS = {
    "plain": {"format": "%(asctime)s %(levelname)s %(name)s request_id=%(request_id)s %(message)s"},
    "json": {"()": "linguaflex.jsonlog.JsonFormatter"},
}
FORMATS = tuple(FORMATTERS)


def logging_config(*, level: str, stripe_level: str, fmt: str) -> dict:
    if fmt not in FORMATS:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(f"LOG_FORMAT must be one of {', '.join(FORMATS)}, not {fmt!r}.")
    filters = ["request_id", "redact_cards"]
    handler = {"class": "logging.StreamHandler", "formatter": fmt, "filters": filters}
    # The filters sit on the loggers too, not only on the handler: a record is masked before any
    # handler sees it, including ones added later (a file, a test's capture). django.server is the
    # runserver request log ("GET /path?query" 400), django.request the 4xx/5xx log.
    quiet = {"handlers": ["console"], "level": level, "filters": filters, "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "redact_cards": {"()": "linguaflex.logging.CardDataRedactingFilter"},
            "request_id": {"()": "linguaflex.request_id.RequestIdLogFilter"},
        },
        # Only the chosen one: dictConfig builds every formatter it is given.
        "formatters": {fmt: FORMATTERS[fmt]},
        "handlers": {"console": handler},
        "root": {"handlers": ["console"], "level": level, "filters": filters},
        "loggers": {
            "django": dict(quiet),
            "django.server": dict(quiet),
            "django.request": dict(quiet),
            "celery": dict(quiet),
            "stripe": {**quiet, "level": stripe_level},
        },
    }
