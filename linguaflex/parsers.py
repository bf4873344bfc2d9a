"""A JSON parser that turns every malformed body into a 400, never a 500: bad syntax, NaN, nesting
deeper than MAX_JSON_DEPTH, and text that is not valid Unicode (a lone surrogate)."""

from __future__ import annotations

import json
import re

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

# A lone UTF-16 surrogate: JSON's "\ud800" decodes to one, and no UTF-8 text can hold it, so a
# renderer echoing it ("... is not a valid choice"), a cache key or a database driver would fail.
_SURROGATE = re.compile("[\ud800-\udfff]")


def _first_problem(value, limit: int) -> str | None:
    """"depth" when ``value`` nests deeper than ``limit``, "surrogate" when a key or a string holds
    a lone surrogate, else None. One walk over every container, key and string, iterative: no
    recursion, however deep the document."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return "surrogate"
            continue
        if isinstance(item, dict):
            if any(_SURROGATE.search(key) for key in item):
                return "surrogate"
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return "depth"
        stack.extend((child, depth + 1) for child in children)
    return None


class SafeJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        raw = stream.read() if stream is not None else b""
        if not raw:
            return {}
        try:
            text = raw.decode(encoding)
            data = json.loads(text, parse_constant=_reject_constant)
        except RecursionError:
            raise ParseError("JSON parse error - the document is nested too deeply.") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        problem = _first_problem(data, settings.MAX_JSON_DEPTH)
        if problem == "depth":
            raise ParseError("JSON parse error - the document is nested too deeply.")
        if problem == "surrogate":
            raise ParseError("JSON parse error - a string holds a lone UTF-16 surrogate (\\ud800 to \\udfff), "
                             "which is not valid Unicode text.")
        return data


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")
