"""Stripe's asynchronous refund test cards (4000000000007726: pending, then succeeded;
4000000000005126: succeeded, then failed with expired_or_canceled_card), the emulator's timer
(``refund_settle_ms``) and its settle route, driven through the official SDK."""

from __future__ import annotations

import datetime
import time

import pytest
import requests

PENDING_CARD = "4000000000007726"
FAIL_LATER_CARD = "4000000000005126"


def _pay(client, number, amount=5000):
    return client.v1.payment_intents.create(params={
        "amount": amount, "currency": "usd", "confirm": True,
        "payment_method_data": {"type": "card", "card": {
            "number": number, "exp_month": 12, "exp_year": datetime.date.today().year + 3,
            "cvc": "123"}}})


def _config(emulator, value):
    answer = requests.post(f"{emulator.base_url}/_emulator/refunds/config",
                           json={"refund_settle_ms": value}, timeout=5)
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.fixture
def manual(emulator):
    """Refunds of the test cards settle only by the settle route during the test."""
    _config(emulator, None)
    yield
    _config(emulator, 200)


def _settle(emulator, refund_id, **body):
    return requests.post(f"{emulator.base_url}/_emulator/refunds/{refund_id}/settle", json=body,
                         timeout=5)


def _wait_for(emulator, type_, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = emulator.events(type_)
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError(f"no {type_} event within {timeout}s")


def test_both_cards_charge_successfully(client):
    for number in (PENDING_CARD, FAIL_LATER_CARD):
        pi = _pay(client, number)
        assert pi.status == "succeeded"


def test_pending_card_refund_is_pending_then_succeeds_by_itself(client, emulator):
    assert _config(emulator, 50) == {"refund_settle_ms": 50.0}
    try:
        pi = _pay(client, PENDING_CARD)
        refund = client.v1.refunds.create(params={"payment_intent": pi.id})
        assert refund.status == "pending"
        assert "reference" not in refund.destination_details.card
        # a pending refund counts on the charge at once, as Stripe's do
        assert client.v1.charges.retrieve(pi.latest_charge).amount_refunded == 5000
        [updated] = _wait_for(emulator, "refund.updated")
    finally:
        _config(emulator, 200)
    assert updated["data"]["object"]["status"] == "succeeded"
    assert updated["data"]["previous_attributes"] == {"status": "pending"}
    assert client.v1.refunds.retrieve(refund.id).status == "succeeded"
    [charge_event] = emulator.events("charge.refund.updated")
    assert charge_event["data"]["previous_attributes"] == {"status": "pending"}
    assert emulator.events("refund.failed") == []
    assert client.v1.charges.retrieve(pi.latest_charge).amount_refunded == 5000


def test_pending_card_refund_settled_by_the_control_route(client, emulator, manual):
    pi = _pay(client, PENDING_CARD)
    refund = client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 1200})
    assert refund.status == "pending"
    time.sleep(0.3)
    assert client.v1.refunds.retrieve(refund.id).status == "pending"  # no timer when manual
    answer = _settle(emulator, refund.id, outcome="succeeded")
    assert answer.status_code == 200 and answer.json()["status"] == "succeeded"
    assert [e["type"] for e in emulator.events()][-2:] == ["refund.updated",
                                                            "charge.refund.updated"]
    again = _settle(emulator, refund.id, outcome="succeeded")
    assert again.status_code == 400  # not pending any more


def test_fail_later_card_refund_succeeds_then_fails_with_expired_or_canceled_card(client,
                                                                                  emulator):
    _config(emulator, 50)
    try:
        pi = _pay(client, FAIL_LATER_CARD, amount=3000)
        refund = client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 1000})
        assert refund.status == "succeeded"
        assert client.v1.charges.retrieve(pi.latest_charge).amount_refunded == 1000
        [failed_event] = _wait_for(emulator, "refund.failed")
    finally:
        _config(emulator, 200)
    previous = {"failure_balance_transaction": None, "failure_reason": None,
                "status": "succeeded"}
    assert failed_event["data"]["previous_attributes"] == previous
    [updated] = emulator.events("refund.updated")
    assert updated["data"]["previous_attributes"] == previous
    assert updated["data"]["object"]["failure_reason"] == "expired_or_canceled_card"
    [charge_event] = emulator.events("charge.refund.updated")
    assert charge_event["data"]["object"]["status"] == "failed"
    after = client.v1.refunds.retrieve(refund.id)
    assert (after.status, after.failure_reason) == ("failed", "expired_or_canceled_card")
    txn = client.v1.balance_transactions.retrieve(after.failure_balance_transaction) \
        if hasattr(client.v1, "balance_transactions") else None
    if txn is not None:
        assert (txn.amount, txn.type) == (1000, "refund_failure")
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert (charge.amount_refunded, charge.refunded) == (0, False)


@pytest.mark.parametrize("reason", ["expired_or_canceled_card", "lost_or_stolen_card", "unknown"])
def test_the_control_route_fails_a_pending_refund_with_each_failure_reason(client, emulator,
                                                                          manual, reason):
    pi = _pay(client, PENDING_CARD)
    refund = client.v1.refunds.create(params={"payment_intent": pi.id})
    answer = _settle(emulator, refund.id, outcome="failed", failure_reason=reason)
    assert answer.status_code == 200, answer.text
    assert (answer.json()["status"], answer.json()["failure_reason"]) == ("failed", reason)
    types = [e["type"] for e in emulator.events()][-3:]
    assert types == ["refund.updated", "refund.failed", "charge.refund.updated"]
    for event in emulator.events()[-3:]:
        assert event["data"]["previous_attributes"] == {
            "failure_balance_transaction": None, "failure_reason": None, "status": "pending"}
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert (charge.amount_refunded, charge.refunded) == (0, False)
    # the money is back: the whole charge can be refunded again
    assert client.v1.refunds.create(params={"payment_intent": pi.id}).amount == 5000


def test_the_control_route_fails_any_succeeded_refund_and_refuses_bad_input(client, emulator):
    pi = client.v1.payment_intents.create(params={
        "amount": 2000, "currency": "usd", "confirm": True, "payment_method": "pm_card_visa"})
    refund = client.v1.refunds.create(params={"payment_intent": pi.id})
    assert refund.status == "succeeded"  # other cards: at once, as before
    assert _settle(emulator, refund.id, outcome="failed", failure_reason="nope").status_code == 400
    assert _settle(emulator, refund.id, outcome="maybe").status_code == 400
    assert _settle(emulator, "re_missing", outcome="failed").status_code == 404
    answer = _settle(emulator, refund.id, failure_reason="lost_or_stolen_card")
    assert answer.json()["status"] == "failed"
    assert _settle(emulator, refund.id, outcome="failed").status_code == 400  # already failed
    assert requests.post(f"{emulator.base_url}/_emulator/refunds/config",
                         json={"refund_settle_ms": -1}, timeout=5).status_code == 400


def test_other_cards_refunds_never_settle_later(client, emulator):
    _config(emulator, 20)
    try:
        pi = client.v1.payment_intents.create(params={
            "amount": 2000, "currency": "usd", "confirm": True, "payment_method": "pm_card_visa"})
        client.v1.refunds.create(params={"payment_intent": pi.id})
        time.sleep(0.2)
    finally:
        _config(emulator, 200)
    assert emulator.events("refund.updated") == []
    assert emulator.events("refund.failed") == []
