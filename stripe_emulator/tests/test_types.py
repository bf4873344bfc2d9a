"""Every body of a full SDK-driven run matches the pinned API version's types.

``stripe_emulator/typecheck/check.py`` drives the emulator with the Python SDK through every
resource it serves, writes each JSON body as a typed TypeScript constant
(``const b17: Stripe.PaymentIntent = {...}``) and compiles them with ``tsc --strict`` against
stripe-node 23.1.0's ``.d.ts`` files (API version 2026-10-28.endive, as the Python SDK pins),
with the SDK's open string unions closed, so an unknown key, a missing key, a null where the
field may only be absent and an enum value the types do not list all fail. Planted defects
(canaries) compiled alongside prove that each of those is caught.

Needs Node.js and npm: ``npm ci`` runs in ``stripe_emulator/typecheck/`` (pinned by its
``package-lock.json``) when ``node_modules`` is missing or from another lock file. Without node
or npm the test is skipped on a laptop and fails under ``CI=true``.
"""

from __future__ import annotations

import os
import time

import pytest

from stripe_emulator.typecheck import check

pytestmark = pytest.mark.emulator

IN_CI = os.environ.get("CI", "").lower() == "true"

# At least this many bodies of each main kind (top-level bodies; a list counts as one "list").
MIN_BODIES = {
    "payment_intent": 20, "setup_intent": 5, "payment_method": 5, "customer": 4, "charge": 4,
    "refund": 4, "dispute": 2, "event": 20, "list": 10, "search_result": 1, "error": 10,
    "account": 2, "balance_transaction": 2,
}


@pytest.fixture(scope="module")
def report():
    try:
        check.node_tools()
    except check.ToolMissing as exc:
        if IN_CI:
            pytest.fail(f"{exc} (CI=true: the type check must run)", pytrace=False)
        pytest.skip(str(exc))
    check.ensure_node_modules(log=lambda message: None)  # npm ci when missing or stale
    started = time.monotonic()
    result = check.run(install=False, log=lambda message: None)
    result.seconds["total"] = time.monotonic() - started
    return result


def test_every_body_of_a_full_run_matches_stripe_nodes_types(report):
    assert report.bodies
    assert not report.failures, "\n" + report.summary()


def test_the_planted_defects_are_caught(report):
    """Unknown open-enum values, unknown keys, missing keys and null-for-absent each fail."""
    assert len(report.canaries) >= 8
    assert not report.canaries_missed, "\n" + report.summary()


def test_the_run_covers_every_main_object_type(report):
    kinds = report.kinds
    short = {k: (kinds.get(k, 0), n) for k, n in MIN_BODIES.items() if kinds.get(k, 0) < n}
    assert not short, f"kind: (bodies, at least): {short}"
    # Lists of each listed resource, and the objects inside them.
    list_types = {b.ts_type for b in report.bodies if b.kind == "list"}
    for item in ("Customer", "PaymentMethod", "SetupIntent", "PaymentIntent", "Charge", "Refund",
                 "Event"):
        assert f"Stripe.ApiList<Stripe.{item}>" in list_types, item
    assert report.objects["dispute"] >= 2 and report.objects["event"] >= 40
    # The SDK-driven run, the control routes (dispute, failed refund, onboarding) and webhooks.
    assert {b.source for b in report.bodies} >= {"sdk", "control", "raw", "webhook"}


def test_the_check_is_fast_enough(report):
    assert report.seconds["total"] < 120, report.seconds


def test_bodies_are_typed_by_their_object():
    assert check.classify({"object": "payment_intent"}) == ("payment_intent",
                                                            "Stripe.PaymentIntent")
    assert check.classify({"object": "customer", "deleted": True, "id": "cus_1"}) == (
        "customer", "Stripe.DeletedCustomer")
    assert check.classify({"object": "event", "type": "charge.dispute.created"}) == (
        "event", "Stripe.ChargeDisputeCreatedEvent")
    assert check.classify({"object": "list", "url": "/v1/customers/cus_1/payment_methods",
                           "data": []}) == ("list", "Stripe.ApiList<Stripe.PaymentMethod>")
    assert check.classify({"object": "list", "url": "/v1/events", "data": []}) == (
        "list", "Stripe.ApiList<Stripe.Event>")
    assert check.classify({"object": "search_result", "url": "/v1/payment_intents/search",
                           "data": []}) == ("search_result",
                                            "Stripe.ApiSearchResult<Stripe.PaymentIntent>")
    assert check.classify({"error": {"type": "card_error"}}) == (
        "error", "{ error: Stripe.StripeRawError }")
    assert check.classify({"status": "ok"}) == ("", "")
