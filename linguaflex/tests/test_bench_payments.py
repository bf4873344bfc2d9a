"""bench/bench_payments.py's pure helpers (no network, no database): percentiles, ratios, the
/proc parsing behind the CPU and memory figures, target checks and the table."""

from __future__ import annotations

import math
import os

import pytest

from bench import bench_payments as bp


def test_percentile_interpolates_like_numpy():
    samples = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert bp.percentile(samples, 50) == 3.0
    assert bp.percentile(samples, 0) == 1.0
    assert bp.percentile(samples, 100) == 5.0
    assert bp.percentile(samples, 95) == pytest.approx(4.8)
    assert bp.percentile([1.0, 2.0], 50) == 1.5
    assert bp.percentile([7.0], 95) == 7.0
    assert bp.percentile(list(range(1, 41)), 95) == pytest.approx(38.05)


def test_percentile_refuses_nothing_and_out_of_range():
    with pytest.raises(ValueError):
        bp.percentile([], 50)
    with pytest.raises(ValueError):
        bp.percentile([1.0], 101)


def test_ratio():
    assert bp.ratio(3, 2) == 1.5
    assert bp.ratio(1, 0) == math.inf
    assert math.isnan(bp.ratio(0, 0))
    assert bp.fmt_ratio(1.0449) == "1.04x"


# A real /proc/<pid>/stat line, with a command name holding spaces and a parenthesis.
STAT = ("12345 (gunicorn: worker) [x)) S 12000 12000 12000 0 -1 4194560 5000 0 0 0 "
        "731 269 0 0 20 0 5 0 100 200000000 30000 18446744073709551615 1 1 0 0 0 0 0 16781312 17003 0 0 0 17 1 0 0 0 0 0")


def test_cpu_ticks_from_stat_sums_utime_and_stime():
    assert bp.cpu_ticks_from_stat(STAT) == 731 + 269


def test_cpu_ticks_of_this_process_from_proc():
    if not os.path.exists("/proc/self/stat"):
        pytest.skip("no /proc")
    with open("/proc/self/stat") as fh:
        ticks = bp.cpu_ticks_from_stat(fh.read())
    assert ticks >= 0
    assert bp.cpu_seconds([os.getpid()]) >= ticks / os.sysconf("SC_CLK_TCK")


def test_vmrss_from_status():
    status = "Name:\tgunicorn\nState:\tS (sleeping)\nVmPeak:\t  200000 kB\nVmRSS:\t   81234 kB\nThreads:\t5\n"
    assert bp.vmrss_kb_from_status(status) == 81234
    assert bp.vmrss_kb_from_status("Name:\tkthreadd\nState:\tS (sleeping)\n") == 0


@pytest.mark.parametrize(("value", "target", "expected"), [
    (1.04, "<= 1.05x", True), (1.06, "<= 1.05x", False), (0.40, ">= 0.40x", True), (0.39, ">= 0.40x", False),
    (14.9, "<= 15 ms", True), (15.1, "<= 15 ms", False), (2.0, "-", None), (2.0, "", None),
])
def test_meets(value, target, expected):
    assert bp.meets(value, target) is expected


def test_rows_and_table():
    reps = [{"app_p50": 0.02, "app_p95": 0.03, "direct_p50": 0.01, "direct_p95": 0.02},
            {"app_p50": 0.04, "app_p95": 0.05, "direct_p50": 0.01, "direct_p95": 0.01},
            {"app_p50": 0.03, "app_p95": 0.04, "direct_p50": 0.01, "direct_p95": 0.02}]
    p50, p95 = bp.latency_rows(reps, 300, "<= 1.05x")
    assert p50[2] == "3.00x (app 30.0 ms, direct 10.0 ms)" and p50[3] == "<= 1.05x"
    assert p95[2].startswith("2.00x ") and p95[3] == "-"
    row = bp.throughput_row([{"app": 10.0, "direct": 20.0}], 0, ">= 0.40x")
    assert row[2] == "0.50x (app 10.0/s, direct 20.0/s)"
    table = bp.markdown_table([p50, row]).splitlines()
    assert table[0] == "| figure | compared to | value | target |"
    assert len(table) == 4 and all(line.count("|") == 5 for line in table)


@pytest.mark.parametrize(("path", "expected"), [
    ("/v1/payment_intents", "/v1/payment_intents"),
    ("/v1/payment_intents/pi_1Oj5y2Zotqlrr97GsZIMlrfG/confirm", "/v1/payment_intents/{id}/confirm"),
    ("/v1/payment_methods/pm_abc123XYZ?expand[]=customer", "/v1/payment_methods/{id}"),
    ("/v1/setup_intents", "/v1/setup_intents"),
])
def test_stripe_path_names_ids(path, expected):
    assert bp.stripe_path(path) == expected
