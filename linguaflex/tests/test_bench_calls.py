"""bench/bench_calls.py: its pure helpers, and one quick run on SQLite (a child process, about 10 s)
whose table has every operation with non-negative integer counts. No count is asserted: the
benchmark reports them, the targets are in its note column."""

from __future__ import annotations

import pytest

from bench import bench_calls as bc

OPERATIONS = [
    "register + login (student)",
    "add first card (creates the Stripe customer)",
    "add another card",
    "list cards",
    "delete a card",
    "pay with a new card, saved",
    "pay with a new card, not saved",
    "pay with a saved card",
    "list payments (student)",
    "request a refund (student)",
    "approve the refund (admin)",
    "approved refund, in all (request + approval + its webhook events)",
    "teacher declines a booking (full refund)",
]
LISTS = ["payments list, admin", "bookings list, admin", "gigs list, student"]


def test_sql_counts_leave_out_transaction_control_then_savepoints():
    statements = ['SAVEPOINT "s1_x1"', "SELECT 1", 'RELEASE SAVEPOINT "s1_x1"', "BEGIN", "BEGIN IMMEDIATE",
                  "INSERT INTO t VALUES (1)", 'ROLLBACK TO SAVEPOINT "s1_x2"', "COMMIT", "  update t set a = 1"]
    assert bc.sql_counts(statements) == (6, 3, 3)
    assert bc.sql_counts([]) == (0, 0, 0)


def test_stripe_paths_keep_v1_requests_in_order():
    log = [{"method": "POST", "path": "/v1/customers", "idempotency_key": "k"},
           {"method": "POST", "path": "/_emulator/reset", "idempotency_key": None},
           {"method": "GET", "path": "/v1/payment_intents/pi_1MvZObBHWR19cttNuc7OLtQ5", "idempotency_key": None}]
    assert bc.stripe_paths(log) == ["POST /v1/customers", "GET /v1/payment_intents/pi_1MvZObBHWR19cttNuc7OLtQ5"]


def test_ids_are_hidden_but_resource_names_kept():
    assert bc.without_ids("GET /v1/setup_intents/seti_12FPY3NvZkF7jd0K5fkN1bUG") == "GET /v1/setup_intents/seti_…"
    assert (bc.without_ids("POST /v1/payment_methods/pm_1b8ugRXUGIfIOircYmlOwG1C/detach")
            == "POST /v1/payment_methods/pm_…/detach")
    assert bc.without_ids("POST /v1/payment_intents") == "POST /v1/payment_intents"


def test_describe_and_repeats():
    pi = "GET /v1/payment_intents/pi_1MvZObBHWR19cttNuc7OLtQ5"
    other = "GET /v1/payment_intents/pi_1uoMmy38XmCvmkXZfEoqKvpy"
    calls = ["POST /v1/refunds", pi, "GET /v1/refunds", pi]
    assert bc.describe_calls(None) == "-"
    assert bc.describe_calls([]) == "0"
    assert bc.describe_calls(calls) == "4: POST /v1/refunds, GET /v1/payment_intents/pi_… x2, GET /v1/refunds"
    assert bc.repeated_objects(calls) == ["GET /v1/payment_intents/pi_… x2"]
    assert bc.repeated_objects([pi, other]) == []  # two objects read once each


def test_rows_and_table():
    counts = [bc.Count("list cards", stripe=[], sql=3, sql_no_savepoints=3, sql_data=3),
              bc.Count("pay | x", stripe=["POST /v1/payment_intents"], sql=26, sql_no_savepoints=24, sql_data=16,
                       note="n")]
    rows = bc.to_rows(counts)
    assert rows == [("list cards", "0", "3", ""),
                    ("pay | x", "1: POST /v1/payment_intents", "26 (incl. 2 savepoint statements)", "n")]
    text = bc.table(rows, "footer")
    assert text.splitlines()[0] == "| operation | Stripe calls | SQL statements | note |"
    assert "pay \\| x" in text and text.endswith("\n\nfooter")


@pytest.fixture(scope="module")
def quick_counts():
    counts, where = bc.run_counts(quick=True, db="sqlite")
    return counts, where


def test_quick_run_on_sqlite_has_every_operation(quick_counts):
    counts, where = quick_counts
    assert "sqlite" in where
    names = [c.operation for c in counts]
    for operation in OPERATIONS:
        assert operation in names, operation
    for label in LISTS:
        assert f"{label} at 10 rows" in names
        assert f"{label} at 100 rows" in names
    assert any(name.startswith("↳ webhook `") for name in names)
    for c in counts:
        assert all(isinstance(n, int) and n >= 0 for n in (c.sql, c.sql_no_savepoints, c.sql_data)), c
        assert c.sql >= c.sql_no_savepoints >= c.sql_data
        assert c.stripe is None or all(isinstance(call, str) and call.split(" ", 1)[1].startswith("/v1/")
                                       for call in c.stripe), c
        assert (c.stripe is None) == (c.operation == "register + login (student)")


def test_run_rows_are_four_strings():
    # The rows run() returns are to_rows() of the counts (checked without a second run).
    rows = bc.to_rows([bc.Count("x", stripe=["GET /v1/refunds"], sql=1, sql_no_savepoints=1, sql_data=1)])
    assert all(len(row) == 4 and all(isinstance(cell, str) for cell in row) for row in rows)
