"""Serializer fields that accept what the OpenAPI schema states, and a schema that states what they accept.

DRF's ``IntegerField`` hands a string to ``int()``, which also takes "٣" (Arabic-Indic 3), " 3 ",
"3_000" and "3.0"; ``AsciiIntegerField`` takes a JSON number as DRF does and a string only when it is
ASCII digits. ``QuerySerializer`` validates a query string as its schema says: ``?status=`` is an
empty value to refuse, where DRF would treat it as absent. ``DocumentedCharField`` states in the
schema a pattern or a length that is checked later, with its own message (``card_errors``, Django's
password validators), and ``schema_extra`` may be a callable, evaluated when the schema is built.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Callable

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from rest_framework import serializers
from rest_framework.fields import SkipField, empty

ASCII_INTEGER = re.compile(r"-?[0-9]+")

SchemaExtra = dict[str, Any] | Callable[[], dict[str, Any]] | None


class SchemaExtraMixin:
    """``schema_extra``: keys merged into the field's OpenAPI schema (a dict, or a callable run when
    the schema is generated, for values that must not be read at import time)."""

    def __init__(self, *args, schema_extra: SchemaExtra = None, **kwargs):
        self.schema_extra = schema_extra
        super().__init__(*args, **kwargs)


class AsciiIntegerField(SchemaExtraMixin, serializers.IntegerField):
    """An integer given as a JSON number, or as a string of ASCII digits (an optional leading "-")."""

    def to_internal_value(self, data):
        if isinstance(data, str):
            if len(data) > self.MAX_STRING_LENGTH:
                self.fail("max_string_length")
            if not ASCII_INTEGER.fullmatch(data):
                self.fail("invalid")
        return super().to_internal_value(data)


# The largest id a BigAutoField holds: a larger one is a 400, not an overflow in the database driver.
MAX_ID = 2**63 - 1


class IdField(AsciiIntegerField):
    """A database id: 1 to 2**63 - 1."""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)


class DocumentedCharField(SchemaExtraMixin, serializers.CharField):
    """A CharField whose schema states more than DRF can infer (see ``SchemaExtraMixin``)."""


class QuerySerializer(serializers.Serializer):
    """Query-string parameters, validated as the schema states them.

    DRF reads a ``QueryDict`` as form input, where an optional field given empty (``?status=``) is
    taken as absent; the schema says such a value is too short or not in the enum, so it is a 400
    with the field named. The last value of a repeated parameter wins, as in ``request.GET.get``.
    """

    def __init__(self, instance=None, data=empty, **kwargs):
        if data is not empty and hasattr(data, "dict"):
            data = data.dict()
        super().__init__(instance, data=data, **kwargs)


class _SchemaExtraFieldExtension(OpenApiSerializerFieldExtension):
    target_class = SchemaExtraMixin
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        extra = self.target.schema_extra
        if callable(extra):
            extra = extra()
        return {**schema, **(extra or {})}


class AllErrorsSerializer(serializers.Serializer):
    """A serializer that reports its field errors and its cross-field errors in one answer.

    DRF runs ``validate()`` only when every field parsed, so a client that sent several mistakes
    learnt them one layer at a time (``exp_month: 13`` hid a failing Luhn check and a past year).
    Subclasses put their cross-field checks in ``cross_field_errors(attrs)``, which sees only the
    fields that parsed; it runs after a field error too, and its errors join the field errors.
    """

    def cross_field_errors(self, attrs: dict[str, Any]) -> dict[str, list[str]]:
        return {}

    def to_internal_value(self, data):
        try:
            return super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if not isinstance(data, Mapping) or not isinstance(exc.detail, dict):
                raise
            errors = dict(exc.detail)
            for name, messages in self.cross_field_errors(self._parsed_fields(data, skip=errors)).items():
                errors.setdefault(name, messages)
            raise serializers.ValidationError(errors) from None

    def validate(self, attrs):
        errors = self.cross_field_errors(attrs)
        if errors:
            raise serializers.ValidationError(errors)
        return attrs

    def _parsed_fields(self, data: Mapping, *, skip: Mapping[str, Any]) -> dict[str, Any]:
        """The fields of ``data`` that parse on their own, by source name, leaving out those in ``skip``."""
        parsed: dict[str, Any] = {}
        for field in self._writable_fields:
            if field.field_name in skip:
                continue
            try:
                value = field.run_validation(field.get_value(data))
            except (serializers.ValidationError, DjangoValidationError, SkipField):
                continue
            parsed[field.source] = value
        return parsed
