"""Card data never reaches a log line or an error report.

``CardDataRedactingFilter`` masks anything shaped like a card number (13-19 digits, optionally
separated by spaces or dashes) and CVC-like form fields in every record, including the ``stripe``
SDK's DEBUG lines that print request bodies. ``CardDataExceptionReporterFilter`` hides card fields
in Django's error reports, where ``sensitive_post_parameters`` does nothing for JSON bodies.
"""

from __future__ import annotations

import logging
import re

from django.views.debug import SafeExceptionReporterFilter

# 13 to 19 digits, possibly split by single spaces or dashes.
CARD_NUMBER_RE = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
# cvc values in form bodies (card[cvc]=123, payment_method_data[card][cvc]=123) and JSON ("cvc": "123").
CVC_RE = re.compile(r"""(cvc(?:%5D|\])?["']?\s*[:=]\s*["']?)(\d{3,4})""", re.IGNORECASE)
MASK = "[REDACTED]"


def luhn_valid(number: str) -> bool:
    """The Luhn check of a string of ASCII digits (every payment card number passes it)."""
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = ord(char) - 48
        if index % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def redact(text: str) -> str:
    text = CARD_NUMBER_RE.sub(MASK, text)
    return CVC_RE.sub(lambda m: m.group(1) + MASK, text)


def _holds_card_data(value) -> bool:
    try:
        text = repr(value)
    except Exception:  # a broken __repr__: the report shows Django's own placeholder
        return False
    return redact(text) != text


class CardDataRedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not hide the record
            message = str(record.msg)
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg = cleaned
            record.args = None
        return True


class CardDataExceptionReporterFilter(SafeExceptionReporterFilter):
    hidden_settings = re.compile(
        "API|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|CARD|CVC|WHSEC", flags=re.IGNORECASE
    )

    def get_post_parameters(self, request):
        params = super().get_post_parameters(request)
        if request is None:
            return params
        cleaned = params.copy() if hasattr(params, "copy") else dict(params)
        for key in list(cleaned.keys()):
            if re.search("card|cvc|number", key, re.IGNORECASE):
                cleaned[key] = self.cleansed_substitute
        return cleaned

    def get_traceback_frame_variables(self, request, tb_frame):
        variables = super().get_traceback_frame_variables(request, tb_frame)
        cleaned = []
        for name, value in variables:
            if re.search("card|cvc|number|raw|body|data", str(name), re.IGNORECASE):
                value = self.cleansed_substitute
            elif isinstance(value, str):
                value = redact(value)
            elif _holds_card_data(value):
                # A dict, list or object whose repr shows a card number or CVC: hide it whole.
                value = self.cleansed_substitute
            cleaned.append((name, value))
        return cleaned
