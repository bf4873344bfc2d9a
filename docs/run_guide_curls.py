#!/usr/bin/env python3
"""Run the curl examples of docs/BACKEND_PAYMENT_FLOW_GUIDE.md against a live server.

    python3 docs/run_guide_curls.py [--base-url http://127.0.0.1:8000] [--stripe-url URL] [--list]

Every ```bash block of the guide that contains `curl` runs, in the guide's order, in ONE bash
process under `set -euo pipefail`, so the shell variables a block sets (TOKEN, GIG_ID, ...) carry
over to the next. `http://127.0.0.1:8000` is replaced by --base-url and `http://127.0.0.1:12111`
(the Stripe emulator of `make run`) by --stripe-url. A block right after an HTML comment
`<!-- guide-runner: skip REASON -->` is not run (the runner prints it and its reason); one after
`<!-- guide-runner: emulator-only -->` is not run with --no-emulator (a server on real Stripe).

The run fails, naming the block and its line in the guide, when any command of a block fails.
The blocks run in a fresh temporary directory. Standard library only; needs bash, curl, python3.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

GUIDE = Path(__file__).resolve().parent / "BACKEND_PAYMENT_FLOW_GUIDE.md"
DOC_BASE = "http://127.0.0.1:8000"
DOC_STRIPE = "http://127.0.0.1:12111"
FENCE = re.compile(r"^```bash[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
SKIP = re.compile(r"<!--\s*guide-runner:\s*skip\b\s*(.*?)\s*-->\s*$", re.DOTALL)
EMULATOR_ONLY = re.compile(r"<!--\s*guide-runner:\s*emulator-only\s*-->\s*$")


@dataclass
class Block:
    number: int
    line: int
    code: str
    heading: str
    skip: str | None
    emulator_only: bool = False


def extract(text: str, *, emulator: bool = True) -> list[Block]:
    blocks: list[Block] = []
    for match in FENCE.finditer(text):
        code = match.group(1)
        if not re.search(r"\bcurl\b", code):
            continue
        before = text[: match.start()]
        line = before.count("\n") + 1
        headings = re.findall(r"^#{1,6} (.+)$", before, re.MULTILINE)
        previous = before.rstrip().rsplit("\n", 1)[-1]
        skip = SKIP.search(previous)
        emulator_only = bool(EMULATOR_ONLY.search(previous))
        reason = (skip.group(1) or "no reason given") if skip else None
        if emulator_only and not emulator:
            reason = "needs the local Stripe emulator (--no-emulator)"
        blocks.append(Block(len(blocks) + 1, line, code, headings[-1] if headings else "", reason, emulator_only))
    return blocks


def build_script(blocks: list[Block], base_url: str, stripe_url: str, status_file: str) -> str:
    parts = [
        "set -euo pipefail",
        f"__guide_status={shlex.quote(status_file)}",
        # Whatever stops the shell, the status file names the block that was running.
        'trap \'rc=$?; echo "exit $rc" >> "$__guide_status"\' EXIT',
    ]
    for block in blocks:
        if block.skip:
            continue
        code = block.code.replace(DOC_BASE, base_url).replace(DOC_STRIPE, stripe_url)
        parts.append(f'echo "start {block.number}" >> "$__guide_status"')
        parts.append(f'printf "\\n\\033[1m--- block {block.number} (guide line {block.line}): '
                     f'{_printf_safe(block.heading)}\\033[0m\\n"')
        parts.append(code.rstrip("\n"))
        parts.append(f'echo "end {block.number}" >> "$__guide_status"')
    return "\n".join(parts) + "\n"


def _printf_safe(text: str) -> str:
    return text.replace("\\", "").replace('"', "'").replace("%", "%%").replace("$", "").replace("`", "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the guide's curl blocks in order against a live server.")
    parser.add_argument("--base-url", default=DOC_BASE)
    parser.add_argument("--stripe-url", default=os.environ.get("GUIDE_STRIPE_URL", DOC_STRIPE),
                        help="the Stripe emulator's address (emulator-only blocks use it)")
    parser.add_argument("--no-emulator", action="store_true",
                        help="the server talks to real Stripe: skip the blocks marked emulator-only")
    parser.add_argument("--guide", default=str(GUIDE))
    parser.add_argument("--timeout", type=float, default=600, help="seconds for the whole run")
    parser.add_argument("--list", action="store_true", help="print the blocks and exit")
    args = parser.parse_args(argv)

    blocks = extract(Path(args.guide).read_text(encoding="utf-8"), emulator=not args.no_emulator)
    if not blocks:
        print(f"no ```bash blocks with curl in {args.guide}", file=sys.stderr)
        return 1
    if args.list:
        for block in blocks:
            state = f"SKIP ({block.skip})" if block.skip else ("run (emulator only)" if block.emulator_only else "run")
            print(f"block {block.number:2d}  line {block.line:4d}  {state:6}  {block.heading}")
        return 0

    with tempfile.TemporaryDirectory(prefix="guide-curls-") as workdir:
        status_file = os.path.join(workdir, ".status")
        script = build_script(blocks, args.base_url.rstrip("/"), args.stripe_url.rstrip("/"), status_file)
        Path(workdir, "guide.sh").write_text(script)
        started = time.monotonic()
        try:
            proc = subprocess.run(["bash", os.path.join(workdir, "guide.sh")], cwd=workdir, timeout=args.timeout)
            code = proc.returncode
        except subprocess.TimeoutExpired:
            code = 124
        elapsed = time.monotonic() - started
        events = Path(status_file).read_text().split("\n") if os.path.exists(status_file) else []

    finished = {int(e.split()[1]) for e in events if e.startswith("end ")}
    started_blocks = [int(e.split()[1]) for e in events if e.startswith("start ")]
    print()
    failed = 0
    for block in blocks:
        if block.skip:
            outcome = f"SKIP  {block.skip}"
        elif block.number in finished:
            outcome = "PASS"
        elif started_blocks and block.number == started_blocks[-1]:
            outcome = "FAIL" if code != 124 else "FAIL  (timed out)"
            failed += 1
        else:
            outcome = "not run"
        print(f"block {block.number:2d} (line {block.line:4d}) {outcome:5}  {block.heading}")
    ran = sum(1 for b in blocks if not b.skip)
    passed = len(finished)
    skipped = sum(1 for b in blocks if b.skip)
    if code != 0 and not failed:
        failed = 1
    print(f"\nguide curl blocks: {passed} passed, {ran - passed} failed or not run, {skipped} skipped "
          f"({elapsed:.1f}s, bash exit {code})")
    return 0 if code == 0 and passed == ran else 1


if __name__ == "__main__":
    sys.exit(main())
