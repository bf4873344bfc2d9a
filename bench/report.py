"""Benchmarks write their tables into docs/PERFORMANCE.md between their own markers, so a rerun
replaces its table and leaves the others alone."""

from __future__ import annotations

from pathlib import Path


def write_section(doc: Path, start: str, end: str, text: str, *, heading: str = "") -> None:
    """Put ``text`` between ``start`` and ``end`` in ``doc``: in place of the block already there,
    or at the end (under ``heading``, when given) the first time."""
    block = f"{start}\n{text}\n{end}"
    current = doc.read_text() if doc.exists() else "# Performance\n"
    if start in current and end in current:
        head, rest = current.split(start, 1)
        current = head + block + rest.split(end, 1)[1]
    else:
        current = current.rstrip() + "\n\n" + (f"## {heading}\n\n" if heading else "") + block + "\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(current)
