"""``python -m bench.reliability [--bounded] [--report PATH]`` (``make reliability``).

Starts the stack (bench/reliability/stack.py: a throwaway PostgreSQL database, a Redis database,
the Stripe emulator and gunicorn with production settings), runs the fault matrix
(bench/reliability/matrix.py) and then the race scenarios (bench/reliability/scenarios.py), stops
everything it started (also on Ctrl-C, SIGTERM or a crash) and writes the report: docs/RELIABILITY.md
for a full run, reports/reliability/RELIABILITY.md (git-ignored) for a bounded or partial one,
unless --report names another file. The last line printed is "N passed, M failed"; the exit status
is 1 on any failure, including a matrix that could not run.

Without PostgreSQL or Redis it says so and exits 0, unless CI=true, where that is a failure.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import importlib.util
import os
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from .scenarios import BOUNDED, FULL, SCENARIOS, ScenarioResult, run_all
from .stack import APP_SETTINGS, ROOT, Stack, StackError, Unavailable, services_missing

FULL_REPORT = ROOT / "docs" / "RELIABILITY.md"
BOUNDED_REPORT = ROOT / "reports" / "reliability" / "RELIABILITY.md"


@dataclass
class MatrixCaseFailure:
    """A matrix case that crashed: shaped like the matrix's CaseResult."""

    case_id: str
    detail: str
    ok: bool = False
    requests: int = 0
    faults: int = 0
    lost: int = 0
    doubled: int = 0
    differences: int = 0
    elapsed_max_s: float = 0.0


MATRIX_DURATIONS: dict[int, float] = {}  # id(case result) -> seconds its case took, measured here


def log(message: str) -> None:
    print(message, flush=True)


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


# The worst answer time a matrix case may show: the app's request deadline plus slack for a busy
# 2-core machine (issue 9, item 4: the bound is the deadline, not every try's timeout added up).
ANSWER_BOUND_S = float(APP_SETTINGS["REQUEST_DEADLINE_SECONDS"]) + 3.0


def run_matrix(stack: Stack, *, bounded: bool) -> tuple[list | None, str]:
    """(the case results, or None when the matrix could not run; a line about it)."""
    if importlib.util.find_spec(f"{__package__}.matrix") is None:
        return None, "matrix not run: bench/reliability/matrix.py is missing"
    try:
        matrix = importlib.import_module(f"{__package__}.matrix")
    except Exception as exc:
        return None, f"matrix not run: importing bench.reliability.matrix failed: {type(exc).__name__}: {exc}"
    try:
        cases = list(matrix.cases(bounded))
    except Exception as exc:
        log(traceback.format_exc())
        return None, f"matrix not run: matrix.cases({bounded}) failed: {type(exc).__name__}: {exc}"
    log(f"matrix: {len(cases)} case(s)")
    results = []
    started = time.monotonic()
    for case in cases:
        case_id = str(getattr(case, "case_id", None) or getattr(case, "id", None) or case)
        case_started = time.monotonic()
        try:
            result = matrix.run_case(stack, case, bound_s=ANSWER_BOUND_S)
        except Exception as exc:
            log(traceback.format_exc())
            result = MatrixCaseFailure(case_id, f"crashed: {type(exc).__name__}: {exc}".replace("\n", " ")[:400])
        MATRIX_DURATIONS[id(result)] = time.monotonic() - case_started
        results.append(result)
        if not result.ok:
            log(f"  FAIL {result.case_id}: {result.detail}")
    passed = sum(1 for r in results if r.ok)
    return results, f"{len(results)} case(s), {passed} passed, {len(results) - passed} failed, " \
                    f"{time.monotonic() - started:.0f}s"


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _commit() -> str:
    sha = _git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return f"{sha}{' (with uncommitted changes)' if dirty else ''}"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def _result_cell(ok: bool) -> str:
    return "pass" if ok else "**FAIL**"


def _row(name: str, r, *, duration: float | None = None) -> str:
    cells = [name, str(r.requests), str(r.faults), str(r.lost), str(r.doubled), str(r.differences),
             f"{r.elapsed_max_s:.2f}"]
    if duration is not None:
        cells.append(f"{duration:.1f}")
    cells.append(_result_cell(r.ok))
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def _takeover_line(results: list[ScenarioResult]) -> str:
    for r in results:
        if "stale_in_flight_s" in r.extra:
            stale = r.extra["stale_in_flight_s"]
            base = (f"`stripe_payments.idempotency.stale_in_flight()` = {stale:.0f} s (twice "
                    f"REQUEST_DEADLINE_SECONDS, never under 2 minutes): a twin of a request whose worker was "
                    f"killed answers 409 `idempotency_in_progress` until then, and takes the key over after")
            if r.extra.get("waited") and r.extra.get("takeover_s") is not None:
                return base + f"; measured here: the last twin took over {r.extra['takeover_s']:.0f} s after its kill."
            return base + ("; this bounded run did not wait: it set the dead holder's `updated_at` back past the "
                           "stale time with the ORM, then sent the twin.")
    return "stale-key takeover: not measured (scenario 6 did not run)."


def write_report(path: Path, *, bounded: bool, partial: bool, started_at: _dt.datetime, duration: float,
                 settings: dict[str, str], matrix_results: list | None, matrix_note: str,
                 scenario_results: list[ScenarioResult], passed: int, failed: int, app_tracebacks: int) -> None:
    kind = "bounded run (`make reliability RELIABILITY_BOUNDED=1`, as CI runs it)" if bounded else \
        "full run (`make reliability`)"
    if partial:
        kind += ", partial (--only)"
    lines = [
        "# Reliability: the fault matrix and race scenarios",
        "",
        "Generated by `python -m bench.reliability` (bench/reliability/); do not edit by hand, run it again.",
        "",
        f"- **Run**: {kind}",
        f"- **Date**: {started_at:%Y-%m-%d %H:%M} UTC",
        f"- **Commit**: {_commit()}",
        f"- **Duration**: {_duration(duration)} (start of the stack to the end of the last check)",
        f"- **Result**: {passed} passed, {failed} failed",
        f"- **Stale-key takeover**: {_takeover_line(scenario_results)}",
        "",
        "## The stack",
        "",
    ]
    for key, value in settings.items():
        lines.append(f"- `{key}`: {value}" if key.isupper() else f"- {key}: {value}")
    lines += [
        "",
        "Each run gets fresh loopback ports, a new database and an empty Redis database; all of it is removed at "
        "the end. Users and gigs are made with the ORM and tokens minted with the app's key; everything else goes "
        "over HTTP to gunicorn.",
        "",
        "**lost**: money taken without its payment and booking, a payment the app shows as paid with no charge at "
        "Stripe, a refund owed and not made, a payment asked for and never made, or a webhook event not stored. "
        "**doubled**: charges, refunds, payments or bookings beyond what was asked for. **different**: the "
        "database and Stripe disagreeing on an amount, status or refund total, an inexact fee split, or an "
        "unrepaired difference of `check_stripe_consistency --no-repair` (run after every scenario over what it "
        "created). **faults**: in the matrix, the emulator faults the case's requests met; in the scenarios, the "
        "replayed (duplicate, shuffled) webhook deliveries of 5 and the SIGKILLed workers of 6; the races inject "
        "none. **max answer**: the slowest HTTP answer, in seconds.",
        "",
        "## Fault matrix",
        "",
    ]
    if matrix_results is None:
        counted = "" if "not selected" in matrix_note else " (counted as one failure)"
        lines += [f"**{matrix_note}**{counted}.", ""]
    else:
        lines += [f"{matrix_note}. Case ids are workflow-Stripe call-fault kind-phase (\"first\": only the "
                  f"first try meets the fault, \"all\": every try does).", "",
                  "| case | requests | faults | lost | doubled | different | max answer (s) | duration (s) | result |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
        lines += [_row(f"`{r.case_id}`", r, duration=MATRIX_DURATIONS.get(id(r), 0.0)) for r in matrix_results]
        totals = [sum(getattr(r, f) for r in matrix_results) for f in ("requests", "faults", "lost", "doubled",
                                                                        "differences")]
        lines.append(f"| **all {len(matrix_results)}** | " + " | ".join(str(t) for t in totals)
                     + f" | {max((r.elapsed_max_s for r in matrix_results), default=0):.2f} | "
                     f"{sum(MATRIX_DURATIONS.get(id(r), 0.0) for r in matrix_results):.0f} | "
                     f"{sum(1 for r in matrix_results if r.ok)} passed |")
        failures = [r for r in matrix_results if not r.ok]
        if failures:
            lines += ["", "Failed cases:", ""]
            lines += [f"- `{r.case_id}`: {r.detail}" for r in failures]
        lines.append("")
    lines += [
        "## Race scenarios",
        "",
        "| scenario | requests | faults | lost | doubled | different | max answer (s) | duration (s) | result |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    lines += [_row(r.name, r, duration=r.duration_s) for r in scenario_results]
    lines += ["", "What each scenario found:", ""]
    lines += [f"- **{r.name}**: {r.detail}" for r in scenario_results]
    lines += ["", f"Server-side tracebacks in the app's log: {app_tracebacks}.", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reliability", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bounded", action="store_true",
                        help="fewer requests and rounds, no real wait for the stale-key takeover (CI)")
    parser.add_argument("--report", type=Path, default=None,
                        help=f"where to write the report (default: {FULL_REPORT.relative_to(ROOT)} for a full run, "
                             f"{BOUNDED_REPORT.relative_to(ROOT)} otherwise)")
    parser.add_argument("--only", action="append", default=[], metavar="PART",
                        help="run only this part: 'matrix', 'scenarios' or a scenario function name "
                             f"({', '.join(s.__name__ for s in SCENARIOS)}); repeatable")
    args = parser.parse_args(argv)
    known = {"matrix", "scenarios"} | {s.__name__ for s in SCENARIOS}
    unknown = [part for part in args.only if part not in known]
    if unknown:
        parser.error(f"unknown --only part(s): {', '.join(unknown)}; one of {', '.join(sorted(known))}")
    # Ctrl-C too, even where SIGINT was ignored (a background job): everything started is stopped.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)

    ci = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
    missing = services_missing()
    if missing:
        if ci:
            log(f"reliability: FAIL: {', '.join(missing)} not reachable; CI must run the reliability checks.")
            log("0 passed, 1 failed")
            return 1
        log(f"reliability: skipped: {', '.join(missing)} not reachable (with CI=true this is a failure).")
        log("0 passed, 0 failed")
        return 0

    sizes = BOUNDED if args.bounded else FULL
    run_matrix_part = not args.only or "matrix" in args.only
    chosen = [s for s in SCENARIOS if not args.only or "scenarios" in args.only or s.__name__ in args.only]
    started_at = _dt.datetime.now(_dt.timezone.utc)
    t0 = time.monotonic()
    matrix_results: list | None = []
    matrix_note = "matrix not run: not selected (--only)"
    scenario_results: list[ScenarioResult] = []
    settings: dict[str, str] = {}
    app_tracebacks = 0
    log(f"reliability: {'bounded' if args.bounded else 'full'} run")
    try:
        with Stack(log=log) as stack:
            settings = stack.settings_summary()
            if run_matrix_part:
                matrix_results, matrix_note = run_matrix(stack, bounded=args.bounded)
                log(f"matrix: {matrix_note}")
            else:
                matrix_results = None
            scenario_results = run_all(stack, sizes, log=log, scenarios=chosen)
            app_tracebacks = stack.log_text("gunicorn").count("Traceback")
            if not stack.alive():
                scenario_results.append(ScenarioResult("the servers stayed up", ok=False,
                                                       detail="gunicorn or the emulator died during the run"))
    except KeyboardInterrupt:
        log("reliability: interrupted; everything it started is stopped.")
        return 130
    except Unavailable as exc:
        log(f"reliability: {'FAIL' if ci else 'skipped'}: {exc}")
        log("0 passed, 1 failed" if ci else "0 passed, 0 failed")
        return 1 if ci else 0
    except StackError as exc:
        log(f"reliability: FAIL: the stack did not start or died: {exc}")
        log("0 passed, 1 failed")
        return 1
    except Exception:
        log(traceback.format_exc())
        log("reliability: FAIL: the run crashed (above); everything it started is stopped.")
        log("0 passed, 1 failed")
        return 1
    duration = time.monotonic() - t0

    matrix_ran = matrix_results is not None
    results_ok = [r.ok for r in (matrix_results or [])] + [r.ok for r in scenario_results]
    passed = sum(results_ok)
    failed = len(results_ok) - passed
    if run_matrix_part and not matrix_ran:
        failed += 1
        log(f"reliability: {matrix_note}")
    partial = bool(args.only)
    report = args.report or (BOUNDED_REPORT if args.bounded or partial else FULL_REPORT)
    write_report(report, bounded=args.bounded, partial=partial, started_at=started_at, duration=duration,
                 settings=settings, matrix_results=matrix_results if matrix_ran else None,
                 matrix_note=matrix_note, scenario_results=scenario_results, passed=passed, failed=failed,
                 app_tracebacks=app_tracebacks)
    log(f"reliability: report written to {report}; {_duration(duration)}")
    log(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
