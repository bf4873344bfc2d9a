"""Every object the emulator returns has exactly the top-level keys of Stripe's example, plus
the keys the pinned API version added since that example (``PINNED_VERSION_KEYS``).

The field-by-field check against the pinned version's types is ``test_types.py`` (stripe-node's
``.d.ts`` files); this one needs no Node.js and compares key sets with ``fixtures3.json``.
"""

from __future__ import annotations

import pytest
import requests
import stripe

from .helpers import API_KEY, card

# Top-level keys that the types of the pinned API version (2026-10-28.endive: stripe-node 23.1.0,
# the same version as the Python SDK, stripe 16.1.0) declare required, and that the older
# edition of Stripe's example objects in fixtures3.json (2026-08-21) does not have yet. Each is a
# required key of the pinned type (without ``?``), so leaving it out fails test_types.py:
#   payment_intent.allowed_payment_method_types  Array<AllowedPaymentMethodType> | null
#   payment_intent.payment_record                string | PaymentRecord | null
#   setup_intent.allowed_payment_method_types    Array<AllowedPaymentMethodType> | null
#   dispute.intended_submission_method           IntendedSubmissionMethod | null
# When fixtures3.json is refreshed to an edition that has them, the test below says which to
# drop from here.
PINNED_VERSION_KEYS = {
    "payment_intent": {"allowed_payment_method_types", "payment_record"},
    "setup_intent": {"allowed_payment_method_types"},
    "dispute": {"intended_submission_method"},
}


# Keys the types declare optional (``?``) that Stripe sends only where they apply, so a sample
# may have them beyond the example's: a Connect event's ``account`` (``account?: string``) and a
# destination charge's ``transfer`` (``transfer?: string | Transfer``), and a bank account's
# owner keys: the example is a customer's (``customer?``), a connected account's external
# account has ``account?``, ``available_payout_methods?``, ``default_for_currency?`` and its
# ``requirements?`` / ``future_requirements?`` instead. Compared without them on both sides.
CONDITIONAL_KEYS = {"event": {"account"}, "charge": {"transfer"},
                    "bank_account": {"account", "available_payout_methods", "customer",
                                     "default_for_currency", "future_requirements",
                                     "requirements"}}


def _expected_keys(fixtures3, kind: str) -> set:
    return set(fixtures3[kind]) | PINNED_VERSION_KEYS.get(kind, set())


def _raw(emulator, path: str, account: str | None = None) -> dict:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    if account:
        headers["Stripe-Account"] = account
    response = requests.get(f"{emulator.base_url}{path}", headers=headers, timeout=5)
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
    # Connect: an onboarded account with controller properties, a destination charge partly
    # refunded with its transfer reversed and fee refunded, and a payout on the account.
    teacher = client.v1.accounts.create(params={
        "controller": {"fees": {"payer": "application"}, "losses": {"payments": "application"},
                       "stripe_dashboard": {"type": "express"}},
        "capabilities": {"card_payments": {"requested": True}, "transfers": {"requested": True}}})
    emulator.complete_onboarding(teacher.id)
    dest = client.v1.payment_intents.create(params={
        "amount": 5000, "currency": "usd", "confirm": True, "payment_method": "pm_card_visa",
        "transfer_data": {"destination": teacher.id}, "application_fee_amount": 500})
    dest_charge = client.v1.charges.retrieve(dest.latest_charge)
    dest_refund = client.v1.refunds.create(params={
        "payment_intent": dest.id, "amount": 1000, "reverse_transfer": True,
        "refund_application_fee": True})
    transfer = client.v1.transfers.retrieve(dest_charge.transfer)
    fee = client.v1.application_fees.retrieve(dest_charge.application_fee)
    emulator.release_funds(teacher.id)
    payout = client.v1.payouts.create(params={"amount": 100, "currency": "usd"},
                                      options={"stripe_account": teacher.id})
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
        "account": [_raw(emulator, f"/v1/accounts/{acct.id}"),
                    _raw(emulator, f"/v1/accounts/{teacher.id}")],
        "account_link": [link.to_dict()],
        "transfer": [_raw(emulator, f"/v1/transfers/{transfer.id}")],
        "transfer_reversal": [_raw(emulator, f"/v1/transfers/{transfer.id}/reversals/"
                                             f"{dest_refund.transfer_reversal}")],
        "application_fee": [_raw(emulator, f"/v1/application_fees/{fee.id}")],
        "fee_refund": [_raw(emulator, f"/v1/application_fees/{fee.id}/refunds/"
                                      f"{fee.refunds.data[0].id}")],
        "payout": [_raw(emulator, f"/v1/payouts/{payout.id}", teacher.id)],
        "capability": [_raw(emulator, f"/v1/accounts/{teacher.id}/capabilities/transfers")],
        "balance": [_raw(emulator, "/v1/balance"), _raw(emulator, "/v1/balance", teacher.id)],
        "bank_account": [_raw(emulator, f"/v1/accounts/{teacher.id}")
                         ["external_accounts"]["data"][0]],
    } | {"charge": [_raw(emulator, f"/v1/charges/{pi.latest_charge}"),
                    _raw(emulator, f"/v1/charges/{declined.value.error.charge}"),
                    _raw(emulator, f"/v1/charges/{dest_charge.id}"),
                    _raw(emulator, f"/v1/charges/{transfer.destination_payment}", teacher.id)]}


def test_the_pinned_version_allowance_names_only_keys_the_example_lacks(fixtures3):
    for kind, keys in PINNED_VERSION_KEYS.items():
        assert not keys & set(fixtures3[kind]), (
            f"fixtures3.json's {kind} now has {sorted(keys & set(fixtures3[kind]))}: drop them "
            f"from PINNED_VERSION_KEYS")


def test_every_object_type_has_exactly_stripes_top_level_keys(everything, fixtures3):
    for kind, samples in everything.items():
        expected = _expected_keys(fixtures3, kind)
        for sample in samples:
            assert sample["object"] == kind
            optional = CONDITIONAL_KEYS.get(kind, set())
            keys, wanted = set(sample) - optional, expected - optional
            assert keys == wanted, (kind, keys ^ wanted)


def test_event_payloads_have_the_keys_of_their_object(everything, fixtures3):
    for event in everything["event"]:
        obj = event["data"]["object"]
        keys = set(obj) - CONDITIONAL_KEYS.get(obj["object"], set())
        assert keys == _expected_keys(fixtures3, obj["object"]), (event["type"],
                                                                  keys ^ _expected_keys(
                                                                      fixtures3, obj["object"]))


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
