#!/usr/bin/env python3
"""Schema fuzzing: schemathesis against GET /api/schema/ of a live server, once per role.

    python .ci/fuzz.py [--base-url http://127.0.0.1:8000] [--roles student,teacher,admin]
                       [--max-examples 100] [--seed N] [--report-dir DIR]

For each role it logs in as the demo user (password123), runs every operation of the schema with
a fresh access JWT in the Authorization header and the four checks the QA issue names, then
prints the failures of that role, one line per operation and failure, with schemathesis's own
"Reproduce with" curl line. Exits 1 when any role has a failure or schemathesis could not run.

Every operation is kept, public ones included:
- the webhook (POST /stripe-payments/webhook/) cannot be given a valid Stripe-Signature by a
  fuzzer, so it answers 400, which its schema documents; that still checks the envelope, the
  content type and that no input makes it fail with a 5xx;
- the 3-D Secure return (GET /stripe-payments/payment-return/) answers HTML unless JSON is asked
  for; schemathesis checks its content types against what the schema documents.

Environment: FUZZ_MAX_EXAMPLES (default 100; smaller for local runs), FUZZ_SEED, FUZZ_WORKERS
(default 1: several workers trip a CPython 3.11 ast thread-safety bug inside hypothesis),
FUZZ_TIMEOUT (seconds per role, default 1800), FUZZ_PASSWORD (default password123).
Needs schemathesis in the same interpreter's environment (requirements-qa.txt).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE_HOME = ROOT / "reports" / "schemathesis-cache"
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
ROLES = {
    "student": "student@example.com",
    "teacher": "teacher@example.com",
    "admin": "admin@example.com",
}


def login(base_url: str, email: str, password: str) -> str:
    body = json.dumps({"email": email, "password": password}).encode()
    request = urllib.request.Request(f"{base_url}/accounts/login/", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)["access"]


def schemathesis_binary() -> list[str]:
    here = Path(sys.executable).parent
    for name in ("schemathesis", "st"):
        candidate = here / name
        if candidate.exists():
            return [str(candidate)]
    found = shutil.which("schemathesis")
    if found:
        return [found]
    raise SystemExit("fuzz: schemathesis is not installed (pip install -r requirements-qa.txt)")


def parse_junit(path: Path) -> list[dict]:
    """One entry per failing operation: the operation, the failure codes and titles, a curl."""
    failures = []
    root = ET.parse(path).getroot()
    for case in root.iter("testcase"):
        for node in list(case.findall("failure")) + list(case.findall("error")):
            text = node.text or ""
            checks = sorted(set(re.findall(r"^- (ST\d+ [^\n]+|[A-Z][^\n]*)$", text, re.MULTILINE)))
            curls = re.findall(r"^\s+(curl [^\n]+)$", text, re.MULTILINE)
            statuses = re.findall(r"^\[(\d{3})\] ", text, re.MULTILINE)
            failures.append({
                "operation": case.get("name"),
                "kind": node.tag,
                "checks": checks or [node.get("message") or node.tag],
                "statuses": statuses,
                "reproduce": curls,
                "text": text,
            })
    return failures


def run_role(*, role: str, email: str, args, binary: list[str]) -> tuple[int, list[dict], str]:
    try:
        token = login(args.base_url, email, args.password)
    except (urllib.error.URLError, KeyError, ValueError) as exc:
        return 2, [{"operation": "(login)", "kind": "error", "checks": [f"login as {email} failed: {exc}"],
                    "statuses": [], "reproduce": [], "text": ""}], ""
    report_dir = (Path(args.report_dir) / role).resolve()
    if report_dir.exists():
        shutil.rmtree(report_dir)
    report_dir.mkdir(parents=True)
    junit = report_dir / "junit.xml"
    command = binary + [
        "run", f"{args.base_url}/api/schema/",
        "--url", args.base_url,
        "--checks", CHECKS,
        "--max-examples", str(args.max_examples),
        "--seed", str(args.seed),
        "--workers", str(args.workers),
        "--request-timeout", "60",
        "--header", f"Authorization: Bearer {token}",
        "--report", "junit,json",
        "--report-dir", str(report_dir),
        "--report-junit-path", str(junit),
        "--report-json-path", str(report_dir / "report.json"),
        "--output-truncate", "true",
        "--continue-on-failure",  # every distinct failure of an operation, not just its first
        # The card-number pattern states exactly what the API accepts (13 to 19 digits, separators
        # anywhere), and with its maxLength hypothesis discards many drafts: a generation-speed
        # warning, not a finding, that failed the run by chance of the seed.
        "--suppress-health-check", "filter_too_much",
    ]
    log_path = report_dir / "schemathesis.log"
    started = time.monotonic()
    env = dict(os.environ, NO_COLOR="1", PYTHONUNBUFFERED="1")
    with open(log_path, "w") as log:
        try:
            # schemathesis keeps a cache of the failures it found (replayed first next time) in
            # ./.schemathesis: keep it under the git-ignored reports/ directory, not the repo root.
            CACHE_HOME.mkdir(parents=True, exist_ok=True)
            proc = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, timeout=args.timeout, env=env,
                                  cwd=CACHE_HOME)
            code = proc.returncode
        except subprocess.TimeoutExpired:
            code = 124
    elapsed = time.monotonic() - started
    failures = parse_junit(junit) if junit.exists() else []
    summary = ""
    try:
        report = json.loads((report_dir / "report.json").read_text())
        cases = report.get("test_cases", {})
        ops = report.get("operations", {})
        summary = (f"{ops.get('tested', '?')}/{ops.get('total', '?')} operations tested, "
                   f"{cases.get('generated', '?')} test cases, {elapsed:.0f}s")
    except (OSError, ValueError):
        summary = f"{elapsed:.0f}s"
    if code not in (0, 1) or (code == 1 and not failures):
        failures.append({"operation": "(schemathesis)", "kind": "error",
                         "checks": [f"schemathesis exited {code}; see {log_path}"],
                         "statuses": [], "reproduce": [], "text": ""})
    return code, failures, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", default=os.environ.get("QA_BASE_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--roles", default="student,teacher,admin")
    parser.add_argument("--max-examples", type=int, default=int(os.environ.get("FUZZ_MAX_EXAMPLES", "100")))
    parser.add_argument("--seed", type=int, default=int(os.environ.get("FUZZ_SEED") or random.randrange(1, 2**31)))
    parser.add_argument("--workers", default=os.environ.get("FUZZ_WORKERS", "1"))
    parser.add_argument("--timeout", type=float, default=float(os.environ.get("FUZZ_TIMEOUT", "1800")))
    parser.add_argument("--password", default=os.environ.get("FUZZ_PASSWORD", "password123"))
    parser.add_argument("--report-dir", default=os.environ.get("FUZZ_REPORT_DIR", str(ROOT / "reports" / "schemathesis")))
    parser.add_argument("--verbose", action="store_true", help="print each failure's full text")
    args = parser.parse_args(argv)
    args.base_url = args.base_url.rstrip("/")
    binary = schemathesis_binary()
    roles = [r.strip() for r in args.roles.split(",") if r.strip()]
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        parser.error(f"unknown role(s): {', '.join(unknown)}")

    print(f"fuzz: {args.base_url}/api/schema/, checks {CHECKS}, up to {args.max_examples} examples per "
          f"operation, seed {args.seed} (FUZZ_SEED={args.seed} to repeat)", flush=True)
    totals: dict[str, int] = {}
    for role in roles:
        print(f"\n-- schemathesis as {role} ({ROLES[role]})", flush=True)
        code, failures, summary = run_role(role=role, email=ROLES[role], args=args, binary=binary)
        totals[role] = len(failures)
        print(f"   {summary}; exit {code}; {len(failures)} failing operation(s)")
        for failure in failures:
            statuses = f" [{', '.join(sorted(set(failure['statuses'])))}]" if failure["statuses"] else ""
            print(f"   FAIL {failure['operation']}{statuses}: {'; '.join(failure['checks'])}")
            for curl in failure["reproduce"][:3]:
                print(f"        {curl}")
            if args.verbose and failure["text"]:
                print("        " + failure["text"].replace("\n", "\n        "))
        print(f"   report: {Path(args.report_dir) / role}", flush=True)

    print("\nfuzz summary: " + ", ".join(f"{role} {count} failure(s)" for role, count in totals.items()))
    return 1 if any(totals.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
