"""``make bench``: every figure of issue 15's table in one run, side by side.

    .venv/bin/python -m bench [--quick] [--no-write] [--only NAME ...]

Runs, one after the other and each in a child process of its own (each configures Django for
its own throwaway database, which a process can do once):
- ``payments``: process-payment against the direct SDK call at Stripe 0 and 300 ms, payments/s with
  8 clients, CPU per payment in the web workers, list req/s against ``/health/``, worker RSS after
  10,000 requests against after 100 (bench_payments.py);
- ``lists``: each list at 100,000 payments against itself at 1,000 (bench_lists.py, bench/seed.py);
- ``calls``: Stripe calls (from the emulator's request log) and SQL statements per operation and
  per webhook event, and queries per list at 10 and 1,000 rows (bench_calls.py);
- ``webhook``: the webhook endpoint's p95 against ``/health/``'s through nginx, Stripe at 300 ms
  (bench_webhook.py);
- ``load``: Locust, headless, the seed's flow by 50 simulated students (bench_load.py).
Each writes its own section of docs/PERFORMANCE.md; this runner prints every row together and
writes them as the summary at the top, with the machine they ran on. ``--quick`` (CI): small
sizes, proves each one runs; nothing here asserts a speed. A bench whose services (PostgreSQL,
Redis, nginx) are missing says so and is left out.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.report import write_section  # noqa: E402  (ROOT on sys.path first)

DOC = ROOT / "docs" / "PERFORMANCE.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"
BENCHES = {
    "payments": "bench.bench_payments",
    "lists": "bench.bench_lists",
    "calls": "bench.bench_calls",
    "webhook": "bench.bench_webhook",
    "load": "bench.bench_load",
}
# Run in the child: the module's run(quick, write) -> rows, dumped as JSON for this process.
CHILD = ("import json, sys; from importlib import import_module; "
         "rows = import_module(sys.argv[1]).run(sys.argv[2] == 'quick', write=sys.argv[3] == 'write'); "
         "json.dump([[str(cell) for cell in row] for row in rows], open(sys.argv[4], 'w'))")


def machine() -> str:
    """The machine, in one line: host, CPU model and cores, memory, Python, PostgreSQL."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split("MemTotal:", 1)[1].split()[0])
        memory = f", {kib / 1024 / 1024:.1f} GiB RAM"
    except (OSError, IndexError, ValueError):
        pass
    postgres = ""
    try:
        postgres = subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-Atc", "show server_version"],
                                  capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return (f"{platform.node()}: {cpu or platform.machine()}, {os.cpu_count()} cores{memory}, "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
            + (f", PostgreSQL {postgres.split()[0]}" if postgres else ""))


def run_one(name: str, *, quick: bool, write: bool) -> tuple[list[list[str]], float, int]:
    """One bench in a child process: (rows, seconds, exit code)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rows.json"
        started = time.monotonic()
        code = subprocess.call([sys.executable, "-c", CHILD, BENCHES[name], "quick" if quick else "full",
                                "write" if write else "no-write", str(out)], cwd=ROOT)
        seconds = time.monotonic() - started
        rows = json.loads(out.read_text()) if out.exists() else []
    return rows, seconds, code


def table(results: dict[str, list[list[str]]]) -> str:
    lines = ["| bench | figure | compared to | value | target |", "|---|---|---|---|---|"]
    for name, rows in results.items():
        for row in rows:
            # (figure, compared to, value, target), or (figure, value, note) from the load run
            cells = [row[0], "", *row[1:]] if len(row) == 3 else [*row, "", "", "", ""][:4]
            lines.append(f"| {name} | " + " | ".join(cell.replace("|", "/") for cell in cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: prove every bench runs (CI)")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/PERFORMANCE.md")
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHES), help="run only these")
    args = parser.parse_args()
    write = not args.no_write and not args.quick
    results: dict[str, list[list[str]]] = {}
    failed = []
    for name in args.only or list(BENCHES):
        print(f"== bench {name}", flush=True)
        rows, seconds, code = run_one(name, quick=args.quick, write=write)
        print(f"== bench {name}: {len(rows)} row(s) in {seconds:.0f} s, exit {code}", flush=True)
        if code != 0:
            failed.append(name)
        results[name] = rows
    text = table(results)
    stamp = f"{_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC"
    summary = (f"{text}\n\nOne `make bench` run{' (--quick)' if args.quick else ''}, {stamp}, on {machine()}. "
               "Each ratio is taken within one run of its bench; the sections below hold each bench's "
               "full table and how it measures.")
    print()
    print(summary)
    if write and not args.only:
        write_section(DOC, START, END, summary, heading="Issue 15's table, one run")
    if failed:
        print(f"bench: failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
