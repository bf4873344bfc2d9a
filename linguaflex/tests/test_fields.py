"""AllErrorsSerializer (linguaflex/fields.py): field errors and cross-field errors in one answer."""

from __future__ import annotations

import pytest
from rest_framework import serializers

from linguaflex.fields import AllErrorsSerializer


class Window(AllErrorsSerializer):
    start = serializers.IntegerField(min_value=0)
    end = serializers.IntegerField(min_value=0)
    label = serializers.CharField(max_length=5)

    def cross_field_errors(self, attrs):
        if "start" in attrs and "end" in attrs and attrs["end"] < attrs["start"]:
            return {"end": ["end must not be before start."]}
        return {}


def errors_of(data) -> dict:
    serializer = Window(data=data)
    assert not serializer.is_valid()
    return {name: [str(message) for message in messages] for name, messages in serializer.errors.items()}


def test_valid_data_passes_both_layers():
    serializer = Window(data={"start": 1, "end": 2, "label": "a"})
    assert serializer.is_valid(), serializer.errors
    assert serializer.validated_data == {"start": 1, "end": 2, "label": "a"}


def test_a_cross_field_error_alone_is_reported():
    assert errors_of({"start": 5, "end": 2, "label": "a"}) == {"end": ["end must not be before start."]}


def test_a_cross_field_error_is_reported_beside_a_field_error():
    errors = errors_of({"start": 5, "end": 2, "label": "too long"})

    assert set(errors) == {"label", "end"}


def test_a_field_that_failed_keeps_its_own_error_and_is_not_cross_checked():
    errors = errors_of({"start": 5, "end": -1, "label": "a"})

    assert errors == {"end": ["Ensure this value is greater than or equal to 0."]}


@pytest.mark.parametrize("data", [[1, 2], "text", None])
def test_data_that_is_not_an_object_is_refused_as_drf_does(data):
    serializer = Window(data=data)

    assert not serializer.is_valid()
    assert "non_field_errors" in serializer.errors
