#!/usr/bin/env python3
"""Run the curl examples of docs/BACKEND_PAYMENT_FLOW_GUIDE.md against a live server.

    python3 docs/run_guide_curls.py [--base-url http://127.0.0.1:8000] [--stripe-url URL] [--list]

Every ```bash block of the guide that contains `curl` runs, in the guide's order, in ONE bash
process under `set -euo pipefail`, so the shell variables a block sets (TOKEN, GIG_ID, ...) carry
over to the next. `http://127.0.0.1:8000` is replaced by --base-url and `http://127.0.0.1:12111`
(the Stripe emulator of `make run`) by --stripe-url. A block right after an HTML comment
`<!-- guide-runner: skip REASON -->` is not run (the runner prints it and its reason); one after
`<!-- guide-runner: emulator-only -->` is not run with --no-emulator (a server on real Stripe).
A block after `<!-- guide-runner: manage -->` runs on the server's machine: its `python manage.py …`
lines run this repository's manage.py (with .venv's Python when there is one, in the repository's
directory, with the runner's environment: the server's DATABASE_URL and Stripe settings under
`make qa`; without STRIPE_API_BASE and unless --no-emulator, pointed at --stripe-url with the
emulator's key, as `make run` does). --no-manage skips such blocks (a server on another machine).

The run fails, naming the block and its line in the guide, when any command of a block fails.
A 429 (the server's throttle rates too low for the guide; `make run` has generous ones) stops the
run at once with one line naming THROTTLE_RATES: `curl` is a shell function that records each
answer's status line, and on a 429 it ends the run before the block's JSON helpers read an empty
answer. The blocks run in a fresh temporary directory. Standard library only; needs bash, curl,
python3.
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
MANAGE = re.compile(r"<!--\s*guide-runner:\s*manage\s*-->\s*$")
MANAGE_CALL = re.compile(r"^(\s*)python3? manage\.py\b", re.MULTILINE)
ROOT = Path(__file__).resolve().parent.parent
EMULATOR_KEY = "sk_test_linguaflex_local_emulator"  # linguaflex/devserver.py's key for the emulator
GENEROUS_RATES = "login_email=1000/min,login_ip=1000/min,register=1000/min,payment=1000/min"

# Every curl of the guide dumps its response headers; a 429 is written to the status file and the
# whole run (its own process group) is stopped, so no JSON helper reads the empty answer.
CURL_WRAPPER = r'''
curl() {
  local __hdr __rc=0
  __hdr=$(mktemp "${TMPDIR:-/tmp}/guide-curl-headers.XXXXXX")
  command curl -D "$__hdr" "$@" || __rc=$?
  if grep -qE '^HTTP/[0-9.]+ 429' "$__hdr"; then
    rm -f "$__hdr"
    echo "throttled $__guide_block $*" >> "$__guide_status"
    kill -TERM 0
  fi
  rm -f "$__hdr"
  return $__rc
}
'''


@dataclass
class Block:
    number: int
    line: int
    code: str
    heading: str
    skip: str | None
    emulator_only: bool = False
    manage: bool = False


def extract(text: str, *, emulator: bool = True, manage: bool = True) -> list[Block]:
    blocks: list[Block] = []
    for match in FENCE.finditer(text):
        code = match.group(1)
        before = text[: match.start()]
        previous = before.rstrip().rsplit("\n", 1)[-1]
        is_manage = bool(MANAGE.search(previous))
        if not re.search(r"\bcurl\b", code) and not is_manage:
            continue
        line = before.count("\n") + 1
        headings = re.findall(r"^#{1,6} (.+)$", before, re.MULTILINE)
        skip = SKIP.search(previous)
        emulator_only = bool(EMULATOR_ONLY.search(previous))
        reason = (skip.group(1) or "no reason given") if skip else None
        if emulator_only and not emulator:
            reason = "needs the local Stripe emulator (--no-emulator)"
        if is_manage and not manage:
            reason = "runs manage.py on the server's machine (--no-manage, or no manage.py here)"
        blocks.append(Block(len(blocks) + 1, line, code, headings[-1] if headings else "", reason, emulator_only,
                            is_manage))
    return blocks


def manage_function(stripe_url: str, emulator: bool) -> str:
    """`__guide_manage ARGS`: this repository's manage.py, in its directory, for manage blocks."""
    venv = ROOT / ".venv" / "bin" / "python"
    python = str(venv) if venv.exists() else sys.executable
    env = []
    if emulator and not os.environ.get("STRIPE_API_BASE"):
        env = [f"STRIPE_API_BASE={shlex.quote(stripe_url)}",
               f"STRIPE_SECRET_KEY={EMULATOR_KEY}"]
    prefix = ("env " + " ".join(env) + " ") if env else ""
    return (f"__guide_manage() {{ (cd {shlex.quote(str(ROOT))} && {prefix}{shlex.quote(python)} manage.py \"$@\"); }}")


def build_script(blocks: list[Block], base_url: str, stripe_url: str, status_file: str,
                 emulator: bool = True) -> str:
    parts = [
        "set -euo pipefail",
        f"__guide_status={shlex.quote(status_file)}",
        # Whatever stops the shell, the status file names the block that was running.
        'trap \'rc=$?; echo "exit $rc" >> "$__guide_status"\' EXIT',
        CURL_WRAPPER.strip("\n"),
    ]
    if any(block.manage and not block.skip for block in blocks):
        parts.append(manage_function(stripe_url, emulator))
    for block in blocks:
        if block.skip:
            continue
        code = block.code.replace(DOC_BASE, base_url).replace(DOC_STRIPE, stripe_url)
        if block.manage:
            code = MANAGE_CALL.sub(r"\1__guide_manage", code)
        parts.append(f'echo "start {block.number}" >> "$__guide_status"; __guide_block={block.number}')
        parts.append(f'printf "\\n\\033[1m--- block {block.number} (guide line {block.line}): '
                     f'{_printf_safe(block.heading)}\\033[0m\\n"')
        parts.append(code.rstrip("\n"))
        parts.append(f'echo "end {block.number}" >> "$__guide_status"')
    return "\n".join(parts) + "\n"


def throttle_line(block: Block, request: str) -> str:
    return (f"block {block.number} (guide line {block.line}): HTTP 429 Too Many Requests{request}: the server's "
            f"throttle rates are too low for the guide; restart it with THROTTLE_RATES={GENEROUS_RATES} "
            "(make run has such rates)")


def _request_summary(curl_args: str) -> str:
    """`` on POST http://...`` from a curl command line, without headers or bodies (tokens, cards)."""
    url = next((word for word in curl_args.split() if word.startswith(("http://", "https://"))), "")
    method = re.search(r"-X\s+([A-Z]+)", curl_args)
    if not url:
        return ""
    return f" on {method.group(1) if method else 'GET'} {url.split('?', 1)[0]}"


def _printf_safe(text: str) -> str:
    return text.replace("\\", "").replace('"', "'").replace("%", "%%").replace("$", "").replace("`", "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the guide's curl blocks in order against a live server.")
    parser.add_argument("--base-url", default=DOC_BASE)
    parser.add_argument("--stripe-url", default=os.environ.get("GUIDE_STRIPE_URL", DOC_STRIPE),
                        help="the Stripe emulator's address (emulator-only blocks use it)")
    parser.add_argument("--no-emulator", action="store_true",
                        help="the server talks to real Stripe: skip the blocks marked emulator-only")
    parser.add_argument("--no-manage", action="store_true",
                        help="the server runs elsewhere: skip the blocks marked manage (manage.py commands)")
    parser.add_argument("--guide", default=str(GUIDE))
    parser.add_argument("--timeout", type=float, default=600, help="seconds for the whole run")
    parser.add_argument("--list", action="store_true", help="print the blocks and exit")
    args = parser.parse_args(argv)

    manage = not args.no_manage and (ROOT / "manage.py").exists()
    blocks = extract(Path(args.guide).read_text(encoding="utf-8"), emulator=not args.no_emulator, manage=manage)
    if not blocks:
        print(f"no ```bash blocks with curl in {args.guide}", file=sys.stderr)
        return 1
    if args.list:
        for block in blocks:
            state = (f"SKIP ({block.skip})" if block.skip else "run (emulator only)" if block.emulator_only
                     else "run (manage.py)" if block.manage else "run")
            print(f"block {block.number:2d}  line {block.line:4d}  {state:6}  {block.heading}")
        return 0

    with tempfile.TemporaryDirectory(prefix="guide-curls-") as workdir:
        status_file = os.path.join(workdir, ".status")
        script = build_script(blocks, args.base_url.rstrip("/"), args.stripe_url.rstrip("/"), status_file,
                              emulator=not args.no_emulator)
        Path(workdir, "guide.sh").write_text(script)
        started = time.monotonic()
        try:
            # Its own process group: a 429 stops the whole run (kill 0), not this runner.
            proc = subprocess.run(["bash", os.path.join(workdir, "guide.sh")], cwd=workdir, timeout=args.timeout,
                                  start_new_session=True)
            code = proc.returncode
        except subprocess.TimeoutExpired:
            code = 124
        elapsed = time.monotonic() - started
        events = Path(status_file).read_text().split("\n") if os.path.exists(status_file) else []

    throttled = next((e.split(" ", 2) for e in events if e.startswith("throttled ")), None)
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
            outcome = "FAIL  (timed out)" if code == 124 else ("FAIL  (HTTP 429)" if throttled else "FAIL")
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
    if throttled:
        number = int(throttled[1])
        block = next(b for b in blocks if b.number == number)
        request = throttled[2] if len(throttled) > 2 else ""
        print(throttle_line(block, _request_summary(request)), file=sys.stderr)
        return 1
    return 0 if code == 0 and passed == ran else 1


if __name__ == "__main__":
    sys.exit(main())
