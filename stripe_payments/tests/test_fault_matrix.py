"""The fault matrix (issue 9) on PostgreSQL: every workflow that calls Stripe × every Stripe call it
makes × every fault kind of the emulator × the first try or all of them, over HTTP to a live server.

The cases come from ``bench/reliability/matrix.py`` (``make reliability`` runs the same ones against
gunicorn); they are generated from the gateway's OPERATIONS, so a new Stripe call without a row
fails ``test_every_stripe_call_of_the_gateway_has_a_row``.
"""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from bench.reliability import matrix


class LiveStack:
    """The live server thread and the in-process emulator, as ``matrix.run_case`` drives a stack."""

    def __init__(self, live_server, emulator, webhook_secret: str):
        self.base_url = live_server.url
        self.emulator_url = emulator.base_url
        self.webhook_secret = webhook_secret

    def call_command(self, name: str, *args: str) -> tuple[int, str]:
        out = io.StringIO()
        try:
            with redirect_stdout(out), redirect_stderr(out):
                call_command(name, *args, stdout=out, stderr=out)
        except CommandError as exc:
            return 1, f"{out.getvalue()}\n{exc}"
        except SystemExit as exc:
            return int(exc.code or 0), out.getvalue()
        return 0, out.getvalue()


@pytest.fixture
def stack(live_server, stripe_emulator, settings):
    settings.STRIPE_MAX_NETWORK_RETRIES = 1
    settings.STRIPE_CONNECT_TIMEOUT = 0.5
    settings.STRIPE_READ_TIMEOUT = 0.5
    settings.REQUEST_DEADLINE_SECONDS = 3.0
    settings.PUBLIC_BASE_URL = live_server.url
    return LiveStack(live_server, stripe_emulator, settings.STRIPE_WEBHOOK_SECRET)


def test_every_stripe_call_of_the_gateway_has_a_row():
    assert matrix.uncovered_operations() == []


def test_every_fault_kind_of_the_emulator_has_a_contract_status():
    assert matrix.unknown_kinds() == []


def test_the_matrix_covers_every_workflow_call_and_kind():
    cases = matrix.cases()
    from stripe_emulator.faults import KINDS

    assert {(c.workflow, c.operation) for c in cases} == {
        (w.name, op) for w in matrix.WORKFLOWS for op in w.calls}
    assert {c.kind for c in cases} == set(KINDS)
    assert {c.phase for c in cases} == {"first", "all"}
    bounded = matrix.cases(bounded=True)
    assert {(c.workflow, c.operation, c.kind) for c in bounded} == {(c.workflow, c.operation, c.kind) for c in cases}


@pytest.mark.parametrize("workflow", matrix.WORKFLOWS, ids=lambda w: w.name)
@pytest.mark.emulator
@pytest.mark.django_db(transaction=True)
def test_each_workflow_makes_exactly_the_stripe_calls_it_declares(workflow, stack, stripe_emulator):
    """Clean run: the calls in the emulator's log are the workflow's declared row, so a new Stripe
    call inside a workflow cannot escape the matrix."""
    import re

    from stripe_payments.gateway import OPERATIONS

    run = matrix.Run(stack)
    run.state["retries"] = 1
    matrix._fresh(run)
    if workflow.setup is not None:
        workflow.setup(run)
    stripe_emulator.clear_requests()
    answer = workflow.act(run)
    assert answer.status == workflow.success, answer.body
    made = []
    for request in stripe_emulator.requests():
        if not request["path"].startswith("/v1/"):
            continue
        names = [name for name, (method, pattern) in OPERATIONS.items()
                 if method == request["method"] and re.search(pattern, request["path"])]
        assert names, f"{request['method']} {request['path']} is no gateway operation"
        made.extend(names)
    assert sorted(set(made)) == sorted(set(workflow.calls))


CASES = matrix.cases()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
@pytest.mark.postgres
@pytest.mark.emulator
@pytest.mark.django_db(transaction=True)
def test_fault_case_leaves_money_in_step_with_stripe(case, stack):
    result = matrix.run_case(stack, case)
    assert result.ok, result.detail
    assert (result.lost, result.doubled, result.differences) == (0, 0, 0)
