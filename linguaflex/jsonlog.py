"""One JSON object per log line (``LOG_FORMAT=json``, production's default), for a log shipper.

Each line has ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, ``request_id``, the
process and thread, and ``exc_info`` when there is a traceback. The record has been through
``CardDataRedactingFilter`` already; the finished line is masked once more, so a card number inside
a traceback or an ``extra`` field never leaves either.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from pythonjsonlogger.json import JsonFormatter as _BaseJsonFormatter

from .logging import redact

FIELDS = ("levelname", "name", "message", "request_id", "process", "threadName")
RENAMED = {"levelname": "level", "name": "logger", "threadName": "thread"}


class JsonFormatter(_BaseJsonFormatter):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("rename_fields", RENAMED)
        kwargs.setdefault("json_ensure_ascii", False)
        super().__init__(" ".join(f"%({name})s" for name in FIELDS), *args, **kwargs)

    def add_fields(self, log_data: dict, record: logging.LogRecord, message_dict: dict) -> None:
        super().add_fields(log_data, record, message_dict)
        log_data["time"] = datetime.fromtimestamp(record.created, tz=timezone.utc).isoformat(timespec="milliseconds")
        log_data["request_id"] = getattr(record, "request_id", None) or "-"

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))
