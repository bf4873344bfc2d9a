"""docs/API.md and /api/schema/ name the same operations: each ``### `METHOD /path` `` section of the
reference is an operation of the schema, and each operation of the schema has its section."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.django_db

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "API.md"
METHODS = ("get", "post", "put", "patch", "delete")
SECTION = re.compile(r"^### `(GET|POST|PUT|PATCH|DELETE) (/\S*)`\s*$", re.MULTILINE)


def documented() -> list[tuple[str, str]]:
    return [(method, path) for method, path in SECTION.findall(REFERENCE.read_text(encoding="utf-8"))]


@pytest.fixture
def schema_operations(api_client) -> set[tuple[str, str]]:
    response = api_client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    return {(method.upper(), path) for path, item in response.json()["paths"].items()
            for method in item if method in METHODS}


def test_every_schema_operation_has_a_section_in_the_reference(schema_operations):
    missing = sorted(schema_operations - set(documented()))

    assert not missing, f"docs/API.md has no ### `METHOD /path` section for {missing}"


def test_every_section_of_the_reference_is_a_schema_operation(schema_operations):
    unknown = sorted(set(documented()) - schema_operations)

    assert not unknown, f"docs/API.md documents operations /api/schema/ does not have: {unknown}"


def test_each_operation_is_documented_once():
    sections = documented()

    assert len(sections) == len(set(sections)), sorted({s for s in sections if sections.count(s) > 1})
