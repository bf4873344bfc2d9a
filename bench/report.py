"""Benchmarks write their tables into docs/PERFORMANCE.md between their own markers, so a rerun
replaces its table and leaves the others alone."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable


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


def standalone(doc: str, run: Callable[..., object], *, quick_help: str) -> int:
    """A bench's own command line: ``--quick`` (``quick_help``) and ``--no-write``, then
    ``run(quick, write=...)``; ``python -m bench`` calls ``run`` itself."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--no-write", action="store_true", help="do not update PERFORMANCE.md")
    args = parser.parse_args()
    run(args.quick, write=not args.no_write)
    return 0
