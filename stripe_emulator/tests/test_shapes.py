"""Every object the emulator returns has exactly the top-level keys of Stripe's example."""

from __future__ import annotations

import pytest
import requests
import stripe

from .helpers import API_KEY, card


def _raw(emulator, path: str) -> dict:
    response = requests.get(f"{emulator.base_url}{path}",
                            headers={"Authorization": f"Bearer {API_KEY}"}, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def everything(client, emulator):
    """One object of each type, in the states the project meets."""
    cus = client.v1.customers.create(params={"email": "shape@example.com"})
    pm = client.v1.payment_methods.create(params=card("4242424242424242"))
    client.v1.payment_methods.attach(pm.id, params={"customer": cus.id})
    si = client.v1.setup_intents.create(params={"customer": cus.id, "confirm": True,
                                                "payment_method": "pm_card_visa"})
    pi = client.v1.payment_intents.create(params={
        "amount": 5000, "currency": "usd", "confirm": True, "customer": cus.id,
        "payment_method": pm.id})
    with pytest.raises(stripe.CardError) as declined:
        client.v1.payment_intents.create(params={
            "amount": 5000, "currency": "usd", "confirm": True,
            "payment_method": "pm_card_visa_chargeDeclined"})
    action = client.v1.payment_intents.create(params={
        "amount": 5000, "currency": "usd", "confirm": True,
        "payment_method": "pm_card_authenticationRequired", "return_url": "http://x.test/"})
    refund = client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 100})
    dispute = emulator.trigger_dispute(pi.latest_charge)
    acct = client.v1.accounts.create(params={"type": "express"})
    link = client.v1.account_links.create(params={
        "account": acct.id, "type": "account_onboarding", "return_url": "http://x.test/r",
        "refresh_url": "http://x.test/f"})
    charge = client.v1.charges.retrieve(pi.latest_charge)
    return {
        "customer": [_raw(emulator, f"/v1/customers/{cus.id}")],
        "payment_method": [_raw(emulator, f"/v1/payment_methods/{pm.id}")],
        "setup_intent": [_raw(emulator, f"/v1/setup_intents/{si.id}")],
        "payment_intent": [_raw(emulator, f"/v1/payment_intents/{pi.id}"),
                           _raw(emulator, f"/v1/payment_intents/{action.id}"),
                           declined.value.json_body["error"]["payment_intent"]],
        "charge": [_raw(emulator, f"/v1/charges/{pi.latest_charge}"),
                   _raw(emulator, f"/v1/charges/{declined.value.error.charge}")],
        "refund": [_raw(emulator, f"/v1/refunds/{refund.id}")],
        "balance_transaction": [_raw(emulator,
                                     f"/v1/balance_transactions/{charge.balance_transaction}")],
        "dispute": [_raw(emulator, f"/v1/disputes/{dispute['id']}")],
        "event": _raw(emulator, "/v1/events?limit=100")["data"],
        "account": [_raw(emulator, f"/v1/accounts/{acct.id}")],
        "account_link": [link.to_dict()],
    }


def test_every_object_type_has_exactly_stripes_top_level_keys(everything, fixtures3):
    for kind, samples in everything.items():
        expected = set(fixtures3[kind])
        for sample in samples:
            assert sample["object"] == kind
            assert set(sample) == expected, (kind, set(sample) ^ expected)


def test_event_payloads_have_the_keys_of_their_object(everything, fixtures3):
    for event in everything["event"]:
        obj = event["data"]["object"]
        assert set(obj) == set(fixtures3[obj["object"]]), event["type"]


def test_lists_have_stripes_list_shape(client, emulator):
    client.v1.customers.create()
    body = _raw(emulator, "/v1/customers")
    assert set(body) == {"object", "data", "has_more", "url"}
    assert body["object"] == "list" and body["url"] == "/v1/customers"


def test_error_shape(client):
    with pytest.raises(stripe.CardError) as info:
        client.v1.payment_intents.create(params={
            "amount": 5000, "currency": "usd", "confirm": True,
            "payment_method": "pm_card_visa_chargeDeclinedLostCard"})
    error = info.value.json_body["error"]
    assert {"type", "code", "decline_code", "message", "charge", "payment_intent",
            "payment_method", "doc_url"} <= set(error)
    assert error["payment_intent"]["last_payment_error"]["decline_code"] == "lost_card"
