"""Stripe Connect, driven through the official SDK: accounts with controller properties,
capabilities and onboarding (account links), destination charges with application fees,
separate charges and transfers, transfer reversals, application fee refunds, per-account
balances and payouts (the ``Stripe-Account`` header), disputes on the platform, and the state
file. Each test checks one behaviour of Stripe's Connect docs, with exact cents."""

from __future__ import annotations

import time

import pytest
import requests
import stripe

from stripe_emulator.errors import StripeError as EmulatorError

EXPRESS = {"fees": {"payer": "application"}, "losses": {"payments": "application"},
           "stripe_dashboard": {"type": "express"}}
BOTH = {"card_payments": {"requested": True}, "transfers": {"requested": True}}


def _account(client, controller=None, capabilities=None, **extra):
    params = {"controller": controller or EXPRESS, "capabilities": capabilities or BOTH,
              "country": "US", "email": "seller@example.com", **extra}
    return client.v1.accounts.create(params=params)


def _onboarded(client, emulator, **kwargs):
    acct = _account(client, **kwargs)
    emulator.complete_onboarding(acct.id)
    return client.v1.accounts.retrieve(acct.id)


def _destination_charge(client, acct_id, amount=5000, fee=500, pm="pm_card_visa", **extra):
    params = {"amount": amount, "currency": "usd", "confirm": True, "payment_method": pm,
              "transfer_data": {"destination": acct_id}, **extra}
    if fee is not None:
        params["application_fee_amount"] = fee
    pi = client.v1.payment_intents.create(params=params)
    assert pi.status == "succeeded"
    return pi, client.v1.charges.retrieve(pi.latest_charge)


def _charge(client, amount=5000, pm="pm_card_visa"):
    pi = client.v1.payment_intents.create(params={
        "amount": amount, "currency": "usd", "confirm": True, "payment_method": pm})
    return client.v1.charges.retrieve(pi.latest_charge)


def _on(acct_id):
    return {"stripe_account": acct_id}


def _totals(balance):
    return (sum(x.amount for x in balance.available), sum(x.amount for x in balance.pending))


def _ledger(client, acct_id=None, **params):
    options = _on(acct_id) if acct_id else {}
    return list(client.v1.balance_transactions.list(params={"limit": 100, **params},
                                                    options=options).data)


def _link(client, acct_id, **extra):
    params = {"account": acct_id, "type": "account_onboarding",
              "refresh_url": "https://platform.example/refresh",
              "return_url": "https://platform.example/return", **extra}
    return client.v1.account_links.create(params=params)


# --- 1. accounts with controller properties -----------------------------------------------------

def test_controller_properties_account_is_type_none_and_express_pays_application_express(client):
    acct = _account(client)
    assert acct.id.startswith("acct_")
    assert acct.type == "none"
    assert acct.controller.fees.payer == "application_express"
    assert acct.controller.losses.payments == "application"
    assert acct.controller.stripe_dashboard.type == "express"
    assert acct.controller.requirement_collection == "stripe"
    assert acct.controller.is_controller is True
    assert acct.controller.type == "application"
    assert client.v1.accounts.retrieve(acct.id).controller.fees.payer == "application_express"


def test_default_controller_is_stripe_carried_with_full_dashboard(client):
    acct = _account(client, controller={"stripe_dashboard": {"type": "full"}})
    assert acct.type == "none"
    assert acct.controller.fees.payer == "account"
    assert acct.controller.losses.payments == "stripe"
    assert acct.controller.stripe_dashboard.type == "full"


def test_type_together_with_controller_is_refused(client):
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.accounts.create(params={"type": "express", "controller": EXPRESS})
    assert exc.value.http_status == 400
    assert exc.value.param == "controller"


def test_losses_on_application_without_fees_on_application_is_refused(client):
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.accounts.create(params={"controller": {
            "fees": {"payer": "account"}, "losses": {"payments": "application"},
            "stripe_dashboard": {"type": "express"}}})
    assert exc.value.http_status == 400
    assert exc.value.param == "controller[losses][payments]"


def test_requirement_collection_application_needs_no_dashboard(client):
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.accounts.create(params={"controller": {
            "fees": {"payer": "application"}, "losses": {"payments": "application"},
            "requirement_collection": "application", "stripe_dashboard": {"type": "express"}}})
    assert exc.value.param == "controller[requirement_collection]"


def test_card_payments_without_transfers_is_refused(client):
    with pytest.raises(stripe.InvalidRequestError) as exc:
        _account(client, capabilities={"card_payments": {"requested": True}})
    assert exc.value.http_status == 400
    assert exc.value.param == "capabilities[transfers][requested]"
    assert list(client.v1.accounts.list().data) == []


def test_legacy_express_type_gets_its_controller_properties(client):
    acct = client.v1.accounts.create(params={"type": "express", "capabilities": BOTH})
    assert acct.type == "express"
    assert acct.controller.fees.payer == "application_express"
    assert acct.controller.losses.payments == "application"
    assert acct.controller.requirement_collection == "stripe"
    assert acct.controller.stripe_dashboard.type == "express"


def test_accounts_list_newest_first(client):
    first, second = _account(client), _account(client)
    assert [a.id for a in client.v1.accounts.list().data] == [second.id, first.id]


# --- 2. capabilities, requirements, onboarding ------------------------------------------------

def test_capabilities_inactive_and_requirements_due_before_onboarding(client):
    acct = _account(client)
    assert acct.capabilities.card_payments == "inactive"
    assert acct.capabilities.transfers == "inactive"
    assert acct.charges_enabled is False
    assert acct.payouts_enabled is False
    assert acct.details_submitted is False
    assert "external_account" in acct.requirements.currently_due
    assert acct.requirements.disabled_reason is not None


def test_onboarding_activates_capabilities_and_clears_requirements(client, emulator):
    acct = _onboarded(client, emulator)
    assert acct.capabilities.card_payments == "active"
    assert acct.capabilities.transfers == "active"
    assert acct.charges_enabled is True
    assert acct.payouts_enabled is True
    assert acct.details_submitted is True
    assert acct.requirements.currently_due == []
    assert acct.requirements.past_due == []
    assert acct.requirements.eventually_due == []
    assert acct.requirements.disabled_reason is None
    assert len(acct.external_accounts.data) == 1
    [event] = emulator.events("account.updated")
    assert event["account"] == acct.id
    assert event["data"]["previous_attributes"]["charges_enabled"] is False
    assert event["data"]["previous_attributes"]["capabilities"] == {
        "card_payments": "inactive", "transfers": "inactive"}


def test_capabilities_list_and_retrieve(client, emulator):
    acct = _account(client)
    caps = client.v1.accounts.capabilities.list(acct.id).data
    assert [(c.id, c.status, c.requested, c.account) for c in caps] == [
        ("card_payments", "inactive", True, acct.id), ("transfers", "inactive", True, acct.id)]
    cap = client.v1.accounts.capabilities.retrieve(acct.id, "transfers")
    assert cap.object == "capability"
    assert cap.status == "inactive"
    assert cap.requirements.currently_due != []
    emulator.complete_onboarding(acct.id)
    cap = client.v1.accounts.capabilities.retrieve(acct.id, "transfers")
    assert cap.status == "active"
    assert cap.requirements.currently_due == []
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.accounts.capabilities.retrieve(acct.id, "bank_transfer_payments")
    assert exc.value.http_status == 404


def test_capability_update_requests_and_unrequests(client, emulator):
    acct = _account(client, capabilities={"transfers": {"requested": True}})
    assert acct.capabilities.to_dict() == {"transfers": "inactive"}
    cap = client.v1.accounts.capabilities.update(acct.id, "card_payments",
                                                 params={"requested": True})
    assert cap.requested is True
    assert cap.status == "inactive"
    assert client.v1.accounts.retrieve(acct.id).capabilities.to_dict() == {
        "card_payments": "inactive", "transfers": "inactive"}
    cap = client.v1.accounts.capabilities.update(acct.id, "card_payments",
                                                 params={"requested": False})
    assert cap.requested is False
    assert client.v1.accounts.retrieve(acct.id).capabilities.to_dict() == {
        "transfers": "inactive"}


def test_account_update_metadata_records_account_updated(client, emulator):
    acct = _account(client, metadata={"seller": "1"})
    updated = client.v1.accounts.update(acct.id, params={"metadata": {"tier": "gold"}})
    assert updated.metadata.to_dict() == {"seller": "1", "tier": "gold"}
    [event] = emulator.events("account.updated")
    assert event["account"] == acct.id
    assert event["data"]["object"]["id"] == acct.id
    assert event["data"]["previous_attributes"] == {"metadata": {"seller": "1"}}


def test_restrict_account_disables_charges_and_payouts(client, emulator):
    acct = _onboarded(client, emulator)
    emulator.restrict_account(acct.id)
    acct = client.v1.accounts.retrieve(acct.id)
    assert acct.capabilities.transfers == "inactive"
    assert acct.charges_enabled is False
    assert acct.payouts_enabled is False
    assert acct.requirements.past_due == ["individual.verification.document"]
    events = emulator.events("account.updated")
    assert len(events) == 2
    assert events[-1]["account"] == acct.id
    assert events[-1]["data"]["previous_attributes"]["payouts_enabled"] is True


# --- 3. account links -------------------------------------------------------------------------

def test_account_link_onboarding_then_reuse_redirects_to_refresh(client, emulator):
    acct = _account(client)
    link = _link(client, acct.id)
    assert link.object == "account_link"
    assert link.expires_at - link.created == 300
    page = requests.get(link.url, timeout=5, allow_redirects=False)
    assert page.status_code == 200
    done = requests.post(link.url + "/complete", timeout=5, allow_redirects=False)
    assert done.status_code == 302
    assert done.headers["Location"] == "https://platform.example/return"
    assert client.v1.accounts.retrieve(acct.id).charges_enabled is True
    again = requests.get(link.url, timeout=5, allow_redirects=False)
    assert again.status_code == 302
    assert again.headers["Location"] == "https://platform.example/refresh"
    reused = requests.post(link.url + "/complete", timeout=5, allow_redirects=False)
    assert reused.status_code == 302
    assert reused.headers["Location"] == "https://platform.example/refresh"
    assert len(emulator.events("account.updated")) == 1


def test_expired_account_link_redirects_to_refresh(client, emulator):
    acct = _account(client)
    now = [time.time()]
    emulator.set_clock(lambda: now[0])
    link = _link(client, acct.id)
    now[0] += 301
    page = requests.get(link.url, timeout=5, allow_redirects=False)
    assert page.status_code == 302
    assert page.headers["Location"] == "https://platform.example/refresh"
    done = requests.post(link.url + "/complete", timeout=5, allow_redirects=False)
    assert done.status_code == 302
    assert done.headers["Location"] == "https://platform.example/refresh"
    assert client.v1.accounts.retrieve(acct.id).details_submitted is False


def test_account_link_without_return_url_is_refused(client):
    acct = _account(client)
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.account_links.create(params={
            "account": acct.id, "type": "account_onboarding",
            "refresh_url": "https://platform.example/refresh"})
    assert exc.value.http_status == 400
    assert exc.value.param == "return_url"


def test_account_link_for_unknown_account_is_refused(client):
    with pytest.raises(stripe.InvalidRequestError) as exc:
        _link(client, "acct_doesnotexist00")
    assert exc.value.http_status == 400
    assert exc.value.param == "account"


# --- 4. destination charges -------------------------------------------------------------------

def test_destination_charge_links_transfer_and_application_fee(client, emulator):
    acct = _onboarded(client, emulator)
    pi, ch = _destination_charge(client, acct.id)
    assert ch.transfer.startswith("tr_")
    assert ch.application_fee.startswith("fee_")
    assert ch.transfer_group == pi.transfer_group
    tr = client.v1.transfers.retrieve(ch.transfer)
    assert tr.amount == 5000
    assert tr.destination == acct.id
    assert tr.source_transaction == ch.id
    assert tr.destination_payment.startswith("py_")
    assert tr.amount_reversed == 0
    assert tr.reversed is False


def test_destination_payment_lives_on_the_connected_account(client, emulator):
    acct = _onboarded(client, emulator)
    _, ch = _destination_charge(client, acct.id)
    tr = client.v1.transfers.retrieve(ch.transfer)
    py = client.v1.charges.retrieve(tr.destination_payment, options=_on(acct.id))
    assert py.amount == 5000
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.charges.retrieve(tr.destination_payment)
    assert exc.value.http_status == 404
    assert exc.value.code == "resource_missing"
    bt = client.v1.balance_transactions.retrieve(py.balance_transaction, options=_on(acct.id))
    assert (bt.type, bt.amount, bt.fee, bt.net) == ("payment", 5000, 500, 4500)
    assert [d.type for d in bt.fee_details] == ["application_fee"]
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.balance_transactions.retrieve(py.balance_transaction)


def test_destination_charge_application_fee_object(client, emulator):
    acct = _onboarded(client, emulator)
    _, ch = _destination_charge(client, acct.id)
    tr = client.v1.transfers.retrieve(ch.transfer)
    fee = client.v1.application_fees.retrieve(ch.application_fee)
    assert fee.amount == 500
    assert fee.amount_refunded == 0
    assert fee.account == acct.id
    assert fee.charge == tr.destination_payment
    assert fee.originating_transaction == ch.id
    platform_bt = client.v1.balance_transactions.retrieve(fee.balance_transaction)
    assert (platform_bt.type, platform_bt.amount, platform_bt.net) == ("application_fee", 500, 500)
    fee_txns = _ledger(client, type="application_fee")
    assert [t.id for t in fee_txns] == [platform_bt.id]


def test_destination_charge_records_transfer_and_fee_events(client, emulator):
    acct = _onboarded(client, emulator)
    _, ch = _destination_charge(client, acct.id)
    [tr_event] = emulator.events("transfer.created")
    assert tr_event["data"]["object"]["id"] == ch.transfer
    assert tr_event["data"]["object"]["amount"] == 5000
    [fee_event] = emulator.events("application_fee.created")
    assert fee_event["data"]["object"]["id"] == ch.application_fee
    assert fee_event["data"]["object"]["amount"] == 500


def test_destination_charge_without_fee_transfers_whole_amount(client, emulator):
    acct = _onboarded(client, emulator)
    _, ch = _destination_charge(client, acct.id, amount=2500, fee=None)
    assert ch.application_fee is None
    tr = client.v1.transfers.retrieve(ch.transfer)
    py = client.v1.charges.retrieve(tr.destination_payment, options=_on(acct.id))
    bt = client.v1.balance_transactions.retrieve(py.balance_transaction, options=_on(acct.id))
    assert (tr.amount, bt.amount, bt.fee, bt.net) == (2500, 2500, 0, 2500)


def test_destination_charge_with_transfer_data_amount(client, emulator):
    acct = _onboarded(client, emulator)
    pi = client.v1.payment_intents.create(params={
        "amount": 5000, "currency": "usd", "confirm": True, "payment_method": "pm_card_visa",
        "transfer_data": {"destination": acct.id, "amount": 4200}})
    ch = client.v1.charges.retrieve(pi.latest_charge)
    assert client.v1.transfers.retrieve(ch.transfer).amount == 4200
    assert ch.application_fee is None


def test_manual_capture_destination_charge_transfers_at_capture(client, emulator):
    acct = _onboarded(client, emulator)
    pi = client.v1.payment_intents.create(params={
        "amount": 5000, "currency": "usd", "confirm": True, "payment_method": "pm_card_visa",
        "capture_method": "manual", "transfer_data": {"destination": acct.id},
        "application_fee_amount": 500})
    assert pi.status == "requires_capture"
    assert emulator.events("transfer.created") == []
    pi = client.v1.payment_intents.capture(pi.id)
    ch = client.v1.charges.retrieve(pi.latest_charge)
    assert client.v1.transfers.retrieve(ch.transfer).amount == 5000
    assert client.v1.application_fees.retrieve(ch.application_fee).amount == 500


# --- 5. refused destination charges -----------------------------------------------------------

def test_destination_without_transfers_capability_is_refused(client):
    acct = _account(client)  # not onboarded: transfers inactive
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.payment_intents.create(params={
            "amount": 5000, "currency": "usd", "transfer_data": {"destination": acct.id},
            "application_fee_amount": 500})
    assert exc.value.code == "insufficient_capabilities_for_transfer"
    assert exc.value.param == "transfer_data[destination]"
    assert list(client.v1.payment_intents.list().data) == []


def test_restricted_account_is_refused_at_create_and_at_confirm(client, emulator):
    acct = _onboarded(client, emulator)
    pi = client.v1.payment_intents.create(params={
        "amount": 5000, "currency": "usd", "payment_method": "pm_card_visa",
        "transfer_data": {"destination": acct.id}, "application_fee_amount": 500})
    emulator.restrict_account(acct.id)
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.payment_intents.confirm(pi.id)
    assert exc.value.code == "insufficient_capabilities_for_transfer"
    assert client.v1.payment_intents.retrieve(pi.id).status != "succeeded"
    assert emulator.events("transfer.created") == []
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.payment_intents.create(params={
            "amount": 5000, "currency": "usd", "transfer_data": {"destination": acct.id}})
    assert exc.value.code == "insufficient_capabilities_for_transfer"


def test_application_fee_without_transfer_data_is_refused(client):
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.payment_intents.create(params={
            "amount": 5000, "currency": "usd", "application_fee_amount": 500})
    assert exc.value.param == "application_fee_amount"


def test_application_fee_above_amount_is_refused(client, emulator):
    acct = _onboarded(client, emulator)
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.payment_intents.create(params={
            "amount": 5000, "currency": "usd", "transfer_data": {"destination": acct.id},
            "application_fee_amount": 5001})
    assert exc.value.param == "application_fee_amount"


def test_application_fee_equal_to_amount_is_accepted(client, emulator):
    acct = _onboarded(client, emulator)
    _, ch = _destination_charge(client, acct.id, amount=5000, fee=5000)
    assert client.v1.application_fees.retrieve(ch.application_fee).amount == 5000


def test_application_fee_with_transfer_data_amount_is_refused(client, emulator):
    acct = _onboarded(client, emulator)
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.payment_intents.create(params={
            "amount": 5000, "currency": "usd",
            "transfer_data": {"destination": acct.id, "amount": 4000},
            "application_fee_amount": 500})
    assert exc.value.param == "application_fee_amount"


def test_on_behalf_of_another_account_is_refused(client, emulator):
    acct, other = _onboarded(client, emulator), _onboarded(client, emulator)
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.payment_intents.create(params={
            "amount": 5000, "currency": "usd", "transfer_data": {"destination": acct.id},
            "on_behalf_of": other.id})
    assert exc.value.param == "on_behalf_of"


def test_on_behalf_of_the_destination_is_accepted(client, emulator):
    acct = _onboarded(client, emulator)
    pi, ch = _destination_charge(client, acct.id, on_behalf_of=acct.id)
    assert pi.on_behalf_of == acct.id
    assert client.v1.transfers.retrieve(ch.transfer).amount == 5000


def test_unknown_destination_is_refused(client):
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.payment_intents.create(params={
            "amount": 5000, "currency": "usd",
            "transfer_data": {"destination": "acct_doesnotexist00"}})
    assert exc.value.code == "resource_missing"
    assert exc.value.param == "transfer_data[destination]"


# --- 6. refunds of destination charges --------------------------------------------------------

def _refund(client, pi_id, amount=None, **flags):
    params = {"payment_intent": pi_id, **flags}
    if amount is not None:
        params["amount"] = amount
    return client.v1.refunds.create(params=params)


def test_partial_then_full_refund_reverses_and_refunds_fee_exactly(client, emulator):
    acct = _onboarded(client, emulator)
    pi, ch = _destination_charge(client, acct.id)
    flags = {"reverse_transfer": True, "refund_application_fee": True}
    first = _refund(client, pi.id, 1999, **flags)
    second = _refund(client, pi.id, **flags)
    assert second.amount == 3001
    tr = client.v1.transfers.retrieve(ch.transfer)
    reversals = {r.id: r for r in client.v1.transfers.reversals.list(tr.id).data}
    assert reversals[first.transfer_reversal].amount == 1999
    assert reversals[second.transfer_reversal].amount == 3001
    assert reversals[first.transfer_reversal].source_refund == first.id
    assert tr.amount_reversed == 5000
    assert tr.reversed is True
    fee = client.v1.application_fees.retrieve(ch.application_fee)
    fee_refunds = client.v1.application_fees.refunds.list(fee.id).data
    assert sorted(r.amount for r in fee_refunds) == [200, 300]
    assert fee.amount_refunded == 500
    assert fee.refunded is True


def test_refund_reversal_refunds_the_connected_payment(client, emulator):
    acct = _onboarded(client, emulator)
    pi, ch = _destination_charge(client, acct.id)
    _refund(client, pi.id, 1999, reverse_transfer=True, refund_application_fee=True)
    tr = client.v1.transfers.retrieve(ch.transfer)
    py = client.v1.charges.retrieve(tr.destination_payment, options=_on(acct.id))
    assert py.amount_refunded == 1999
    assert py.refunded is False
    refunds = _ledger(client, acct.id, type="payment_refund")
    assert [t.amount for t in refunds] == [-1999]
    fee_back = _ledger(client, acct.id, type="application_fee_refund")
    assert [t.amount for t in fee_back] == [200]
    _refund(client, pi.id, reverse_transfer=True, refund_application_fee=True)
    py = client.v1.charges.retrieve(tr.destination_payment, options=_on(acct.id))
    assert py.amount_refunded == 5000
    assert py.refunded is True
    # everything given back: the connected account's ledger sums to zero
    assert sum(t.net for t in _ledger(client, acct.id)) == 0


def test_odd_split_refunds_add_up_exactly(client, emulator):
    acct = _onboarded(client, emulator)
    pi, ch = _destination_charge(client, acct.id, amount=3333, fee=333)
    flags = {"reverse_transfer": True, "refund_application_fee": True}
    refunds = [_refund(client, pi.id, 1000, **flags), _refund(client, pi.id, 1000, **flags),
               _refund(client, pi.id, **flags)]
    assert [r.amount for r in refunds] == [1000, 1000, 1333]
    tr = client.v1.transfers.retrieve(ch.transfer)
    reversal_amounts = [client.v1.transfers.reversals.retrieve(tr.id, r.transfer_reversal).amount
                        for r in refunds]
    assert reversal_amounts == [1000, 1000, 1333]
    assert tr.amount_reversed == 3333
    fee = client.v1.application_fees.retrieve(ch.application_fee)
    fee_amounts = sorted(r.amount for r in client.v1.application_fees.refunds.list(fee.id).data)
    # 333 * 1000/3333 = 99.9 -> 100; cumulative 2000 -> 199.8 -> 200; the rest 133
    assert fee_amounts == sorted([100, 100, 133])
    assert sum(fee_amounts) == 333
    assert fee.amount_refunded == 333


def test_refund_with_transfer_data_amount_reverses_proportionally(client, emulator):
    acct = _onboarded(client, emulator)
    pi = client.v1.payment_intents.create(params={
        "amount": 3000, "currency": "usd", "confirm": True, "payment_method": "pm_card_visa",
        "transfer_data": {"destination": acct.id, "amount": 1000}})
    ch = client.v1.charges.retrieve(pi.latest_charge)
    first = _refund(client, pi.id, 1000, reverse_transfer=True)
    rest = _refund(client, pi.id, reverse_transfer=True)
    tr = client.v1.transfers.retrieve(ch.transfer)
    assert client.v1.transfers.reversals.retrieve(tr.id, first.transfer_reversal).amount == 333
    assert client.v1.transfers.reversals.retrieve(tr.id, rest.transfer_reversal).amount == 667
    assert tr.amount_reversed == 1000


def test_reverse_transfer_on_a_plain_charge_is_refused(client):
    ch = _charge(client)
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.refunds.create(params={"charge": ch.id, "reverse_transfer": True})
    assert exc.value.http_status == 400
    assert exc.value.param == "reverse_transfer"
    assert client.v1.charges.retrieve(ch.id).amount_refunded == 0


def test_refund_without_flags_leaves_transfer_and_fee(client, emulator):
    acct = _onboarded(client, emulator)
    pi, ch = _destination_charge(client, acct.id)
    re = _refund(client, pi.id, 2000)
    assert re.transfer_reversal is None
    tr = client.v1.transfers.retrieve(ch.transfer)
    assert tr.amount_reversed == 0
    assert list(client.v1.transfers.reversals.list(tr.id).data) == []
    assert client.v1.application_fees.retrieve(ch.application_fee).amount_refunded == 0
    py = client.v1.charges.retrieve(tr.destination_payment, options=_on(acct.id))
    assert py.amount_refunded == 0
    assert emulator.events("transfer.reversed") == []
    # the platform bears the refund alone: its ledger shows it
    assert [t.amount for t in _ledger(client, type="refund")] == [-2000]


def test_reverse_transfer_only_keeps_the_fee(client, emulator):
    acct = _onboarded(client, emulator)
    pi, ch = _destination_charge(client, acct.id)
    re = _refund(client, pi.id, 2500, reverse_transfer=True)
    assert client.v1.transfers.reversals.retrieve(ch.transfer, re.transfer_reversal).amount == 2500
    assert client.v1.application_fees.retrieve(ch.application_fee).amount_refunded == 0


# --- 7. transfers -----------------------------------------------------------------------------

def test_transfer_from_pending_balance_is_refused(client, emulator):
    acct = _onboarded(client, emulator)
    _charge(client, 10000)
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.transfers.create(params={"amount": 1000, "currency": "usd",
                                           "destination": acct.id})
    assert exc.value.http_status == 400
    assert exc.value.code == "balance_insufficient"
    assert list(client.v1.transfers.list().data) == []


def test_transfer_from_available_balance_bypass_pending(client, emulator):
    acct = _onboarded(client, emulator)
    _charge(client, 10000, pm="pm_card_bypassPending")
    tr = client.v1.transfers.create(params={"amount": 7000, "currency": "usd",
                                            "destination": acct.id, "transfer_group": "ord_1"})
    assert (tr.amount, tr.destination, tr.source_transaction) == (7000, acct.id, None)
    platform_bt = client.v1.balance_transactions.retrieve(tr.balance_transaction)
    assert (platform_bt.type, platform_bt.amount) == ("transfer", -7000)
    assert _totals(client.v1.balance.retrieve())[0] == sum(
        t.net for t in _ledger(client) if t.status == "available")
    py = client.v1.charges.retrieve(tr.destination_payment, options=_on(acct.id))
    assert py.amount == 7000
    [event] = emulator.events("transfer.created")
    assert event["data"]["object"]["id"] == tr.id


def test_transfer_after_release_funds(client, emulator):
    acct = _onboarded(client, emulator)
    _charge(client, 10000)
    emulator.release_funds()
    available, _ = _totals(client.v1.balance.retrieve())
    tr = client.v1.transfers.create(params={"amount": available, "currency": "usd",
                                            "destination": acct.id})
    assert tr.amount == available
    assert _totals(client.v1.balance.retrieve())[0] == 0
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.transfers.create(params={"amount": 1, "currency": "usd",
                                           "destination": acct.id})
    assert exc.value.code == "balance_insufficient"


def test_transfer_with_source_transaction_up_to_the_charge(client, emulator):
    acct = _onboarded(client, emulator)
    ch = _charge(client, 5000)  # pending funds: a source_transaction can still use them
    tr = client.v1.transfers.create(params={"amount": 4500, "currency": "usd",
                                            "destination": acct.id,
                                            "source_transaction": ch.id})
    assert tr.source_transaction == ch.id
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.transfers.create(params={"amount": 501, "currency": "usd",
                                           "destination": acct.id,
                                           "source_transaction": ch.id})
    assert exc.value.code == "amount_too_large"
    assert exc.value.param == "amount"
    last = client.v1.transfers.create(params={"amount": 500, "currency": "usd",
                                              "destination": acct.id,
                                              "source_transaction": ch.id})
    assert last.amount == 500


def test_source_transaction_limit_counts_refunds(client, emulator):
    acct = _onboarded(client, emulator)
    ch = _charge(client, 5000)
    client.v1.refunds.create(params={"charge": ch.id, "amount": 1000})
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.transfers.create(params={"amount": 4001, "currency": "usd",
                                           "destination": acct.id,
                                           "source_transaction": ch.id})
    assert exc.value.code == "amount_too_large"
    assert client.v1.transfers.create(params={"amount": 4000, "currency": "usd",
                                              "destination": acct.id,
                                              "source_transaction": ch.id}).amount == 4000


def test_transfer_to_account_without_transfers_capability_is_refused(client, emulator):
    acct = _account(client)
    _charge(client, 10000, pm="pm_card_bypassPending")
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.transfers.create(params={"amount": 1000, "currency": "usd",
                                           "destination": acct.id})
    assert exc.value.code == "insufficient_capabilities_for_transfer"
    assert exc.value.param == "destination"


def test_transfers_list_by_destination_and_group(client, emulator):
    a, b = _onboarded(client, emulator), _onboarded(client, emulator)
    _charge(client, 10000, pm="pm_card_bypassPending")

    def transfer(dest, amount, group):
        return client.v1.transfers.create(params={"amount": amount, "currency": "usd",
                                                  "destination": dest,
                                                  "transfer_group": group})
    t1, t2, t3 = transfer(a.id, 1000, "ord_1"), transfer(b.id, 2000, "ord_1"), \
        transfer(a.id, 3000, "ord_2")
    assert [t.id for t in client.v1.transfers.list(params={"destination": a.id}).data] == [
        t3.id, t1.id]
    assert [t.id for t in client.v1.transfers.list(params={"transfer_group": "ord_1"}).data] == [
        t2.id, t1.id]
    assert [t.id for t in client.v1.transfers.list(
        params={"destination": a.id, "transfer_group": "ord_1"}).data] == [t1.id]
    assert [t.id for t in client.v1.transfers.list().data] == [t3.id, t2.id, t1.id]


def test_transfer_update_metadata_records_transfer_updated(client, emulator):
    acct = _onboarded(client, emulator)
    _charge(client, 10000, pm="pm_card_bypassPending")
    tr = client.v1.transfers.create(params={"amount": 1000, "currency": "usd",
                                            "destination": acct.id, "metadata": {"a": "1"}})
    updated = client.v1.transfers.update(tr.id, params={"metadata": {"b": "2"}})
    assert updated.metadata.to_dict() == {"a": "1", "b": "2"}
    assert client.v1.transfers.retrieve(tr.id).metadata.to_dict() == {"a": "1", "b": "2"}
    [event] = emulator.events("transfer.updated")
    assert event["data"]["previous_attributes"] == {"metadata": {"a": "1"}}


def test_transfer_idempotency_key_replays_the_same_transfer(client, emulator):
    acct = _onboarded(client, emulator)
    _charge(client, 10000, pm="pm_card_bypassPending")
    params = {"amount": 1000, "currency": "usd", "destination": acct.id}
    first = client.v1.transfers.create(params=params, options={"idempotency_key": "tr-1"})
    again = client.v1.transfers.create(params=params, options={"idempotency_key": "tr-1"})
    assert again.id == first.id
    assert len(client.v1.transfers.list().data) == 1
    assert len(emulator.events("transfer.created")) == 1
    assert sum(t.amount for t in _ledger(client, type="transfer")) == -1000


def test_transfer_retrieve_unknown_is_404(client):
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.transfers.retrieve("tr_doesnotexist")
    assert exc.value.http_status == 404


# --- 8. transfer reversals --------------------------------------------------------------------

def _separate_transfer(client, acct_id, amount=4000):
    ch = _charge(client, 5000, pm="pm_card_bypassPending")
    return client.v1.transfers.create(params={"amount": amount, "currency": "usd",
                                              "destination": acct_id,
                                              "source_transaction": ch.id})


def test_partial_and_full_reversal(client, emulator):
    acct = _onboarded(client, emulator)
    tr = _separate_transfer(client, acct.id)
    first = client.v1.transfers.reversals.create(tr.id, params={"amount": 1500})
    assert first.amount == 1500
    assert first.transfer == tr.id
    assert first.destination_payment_refund.startswith("pyr_")
    tr = client.v1.transfers.retrieve(tr.id)
    assert (tr.amount_reversed, tr.reversed) == (1500, False)
    rest = client.v1.transfers.reversals.create(tr.id)
    assert rest.amount == 2500
    tr = client.v1.transfers.retrieve(tr.id)
    assert (tr.amount_reversed, tr.reversed) == (4000, True)
    platform_back = _ledger(client, type="transfer_refund")
    assert sorted(t.amount for t in platform_back) == [1500, 2500]
    py = client.v1.charges.retrieve(tr.destination_payment, options=_on(acct.id))
    assert (py.amount_refunded, py.refunded) == (4000, True)
    events = emulator.events("transfer.reversed")
    assert [e["data"]["object"]["amount_reversed"] for e in events] == [1500, 4000]


def test_reversal_beyond_remaining_is_refused(client, emulator):
    acct = _onboarded(client, emulator)
    tr = _separate_transfer(client, acct.id)
    client.v1.transfers.reversals.create(tr.id, params={"amount": 3000})
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.transfers.reversals.create(tr.id, params={"amount": 1001})
    assert exc.value.http_status == 400
    assert exc.value.param == "amount"
    assert client.v1.transfers.retrieve(tr.id).amount_reversed == 3000
    client.v1.transfers.reversals.create(tr.id, params={"amount": 1000})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.transfers.reversals.create(tr.id, params={"amount": 1})


def test_reversals_list_and_retrieve(client, emulator):
    acct = _onboarded(client, emulator)
    tr = _separate_transfer(client, acct.id)
    r1 = client.v1.transfers.reversals.create(tr.id, params={"amount": 100,
                                                             "metadata": {"why": "x"}})
    r2 = client.v1.transfers.reversals.create(tr.id, params={"amount": 200})
    assert [r.id for r in client.v1.transfers.reversals.list(tr.id).data] == [r2.id, r1.id]
    got = client.v1.transfers.reversals.retrieve(tr.id, r1.id)
    assert (got.amount, got.metadata.to_dict()) == (100, {"why": "x"})
    other = _separate_transfer(client, acct.id, 1000)
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.transfers.reversals.retrieve(other.id, r1.id)
    assert exc.value.http_status == 404
    embedded = client.v1.transfers.retrieve(tr.id).reversals
    assert sorted(r.amount for r in embedded.data) == [100, 200]


def test_reversal_with_refund_application_fee_refunds_proportionally(client, emulator):
    acct = _onboarded(client, emulator)
    _, ch = _destination_charge(client, acct.id, amount=5000, fee=500)
    client.v1.transfers.reversals.create(ch.transfer, params={
        "amount": 1000, "refund_application_fee": True})
    fee = client.v1.application_fees.retrieve(ch.application_fee)
    assert fee.amount_refunded == 100
    client.v1.transfers.reversals.create(ch.transfer, params={"refund_application_fee": True})
    fee = client.v1.application_fees.retrieve(ch.application_fee)
    assert fee.amount_refunded == 500
    assert sorted(r.amount for r in fee.refunds.data) == [100, 400]


def test_reversal_without_refund_application_fee_keeps_the_fee(client, emulator):
    acct = _onboarded(client, emulator)
    _, ch = _destination_charge(client, acct.id)
    client.v1.transfers.reversals.create(ch.transfer, params={"amount": 1000})
    assert client.v1.application_fees.retrieve(ch.application_fee).amount_refunded == 0


# --- 9. application fees ----------------------------------------------------------------------

def test_application_fees_list_by_charge(client, emulator):
    acct = _onboarded(client, emulator)
    _, ch1 = _destination_charge(client, acct.id, fee=500)
    _, ch2 = _destination_charge(client, acct.id, fee=700)
    assert [f.id for f in client.v1.application_fees.list(params={"charge": ch1.id}).data] == [
        ch1.application_fee]
    assert [f.amount for f in client.v1.application_fees.list().data] == [700, 500]
    py = client.v1.transfers.retrieve(ch2.transfer).destination_payment
    assert [f.id for f in client.v1.application_fees.list(params={"charge": py}).data] == [
        ch2.application_fee]


def test_fee_refunds_create_list_retrieve(client, emulator):
    acct = _onboarded(client, emulator)
    _, ch = _destination_charge(client, acct.id)
    fee_id = ch.application_fee
    fr1 = client.v1.application_fees.refunds.create(fee_id, params={"amount": 120})
    assert (fr1.amount, fr1.fee, fr1.object) == (120, fee_id, "fee_refund")
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.application_fees.refunds.create(fee_id, params={"amount": 381})
    assert exc.value.http_status == 400
    assert exc.value.param == "amount"
    fr2 = client.v1.application_fees.refunds.create(fee_id)
    assert fr2.amount == 380
    assert [r.id for r in client.v1.application_fees.refunds.list(fee_id).data] == [
        fr2.id, fr1.id]
    assert client.v1.application_fees.refunds.retrieve(fee_id, fr1.id).amount == 120
    fee = client.v1.application_fees.retrieve(fee_id)
    assert (fee.amount_refunded, fee.refunded) == (500, True)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.application_fees.refunds.create(fee_id, params={"amount": 1})
    # the platform gave the fee back; the connected account got it
    assert sorted(t.amount for t in _ledger(client, type="application_fee_refund")) == [
        -380, -120]
    assert sorted(t.amount for t in _ledger(client, acct.id, type="application_fee_refund")) == [
        120, 380]


def test_fee_refund_records_application_fee_refunded(client, emulator):
    acct = _onboarded(client, emulator)
    _, ch = _destination_charge(client, acct.id)
    client.v1.application_fees.refunds.create(ch.application_fee, params={"amount": 200})
    [event] = emulator.events("application_fee.refunded")
    assert event["data"]["object"]["id"] == ch.application_fee
    assert event["data"]["object"]["amount_refunded"] == 200
    assert event["data"]["previous_attributes"] == {"amount_refunded": 0, "refunded": False}


def test_application_fee_retrieve_unknown_is_404(client):
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.application_fees.retrieve("fee_doesnotexist")
    assert exc.value.http_status == 404


# --- 10. balances per account -----------------------------------------------------------------

def test_platform_and_connected_balances_are_their_ledgers(client, emulator):
    acct = _onboarded(client, emulator)
    _destination_charge(client, acct.id, amount=5000, fee=500)
    platform = client.v1.balance.retrieve()
    connected = client.v1.balance.retrieve(options=_on(acct.id))
    p_avail, p_pending = _totals(platform)
    c_avail, c_pending = _totals(connected)
    assert p_avail + p_pending == sum(t.net for t in _ledger(client))
    assert c_avail + c_pending == sum(t.net for t in _ledger(client, acct.id))
    assert (c_avail, c_pending) == (0, 4500)
    # platform: the charge (less Stripe's fee), the transfer out, the application fee in
    charge_bt = [t for t in _ledger(client) if t.type == "charge"][0]
    assert p_avail + p_pending == charge_bt.net - 5000 + 500


def test_pending_until_release_funds(client, emulator):
    acct = _onboarded(client, emulator)
    _destination_charge(client, acct.id)
    assert _totals(client.v1.balance.retrieve(options=_on(acct.id))) == (0, 4500)
    emulator.release_funds(acct.id)
    assert _totals(client.v1.balance.retrieve(options=_on(acct.id))) == (4500, 0)
    assert all(t.status == "available" for t in _ledger(client, acct.id))
    # the platform's own pending funds were not released
    assert _totals(client.v1.balance.retrieve())[1] > 0


def test_bypass_pending_destination_charge_is_available_at_once(client, emulator):
    acct = _onboarded(client, emulator)
    _destination_charge(client, acct.id, pm="pm_card_bypassPending")
    assert _totals(client.v1.balance.retrieve(options=_on(acct.id))) == (4500, 0)


def test_balance_transactions_are_scoped_by_the_header(client, emulator):
    acct = _onboarded(client, emulator)
    _destination_charge(client, acct.id)
    platform = _ledger(client)
    connected = _ledger(client, acct.id)
    assert sorted(t.type for t in platform) == ["application_fee", "charge", "transfer"]
    assert [t.type for t in connected] == ["payment"]
    assert not {t.id for t in platform} & {t.id for t in connected}
    assert [t.type for t in _ledger(client, acct.id, type="payment")] == ["payment"]
    assert _ledger(client, acct.id, type="charge") == []
    assert [t.amount for t in _ledger(client, type="transfer")] == [-5000]
    platform_txn = [t for t in platform if t.type == "charge"][0]
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.balance_transactions.retrieve(platform_txn.id, options=_on(acct.id))
    assert exc.value.http_status == 404


# --- 11. payouts on the connected account -----------------------------------------------------

def _funded(client, emulator):
    acct = _onboarded(client, emulator)
    _destination_charge(client, acct.id)
    emulator.release_funds(acct.id)
    return acct


def test_payout_beyond_available_is_refused(client, emulator):
    acct = _onboarded(client, emulator)
    _destination_charge(client, acct.id)  # 4500 pending
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.payouts.create(params={"amount": 1000, "currency": "usd"},
                                 options=_on(acct.id))
    assert exc.value.code == "balance_insufficient"
    emulator.release_funds(acct.id)
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.payouts.create(params={"amount": 4501, "currency": "usd"},
                                 options=_on(acct.id))
    assert exc.value.code == "balance_insufficient"


def test_payout_paid_records_payout_paid_with_account(client, emulator):
    acct = _funded(client, emulator)
    po = client.v1.payouts.create(params={"amount": 4000, "currency": "usd"},
                                  options=_on(acct.id))
    assert po.status == "pending"
    assert po.amount == 4000
    assert po.destination == client.v1.accounts.retrieve(acct.id).external_accounts.data[0].id
    assert _totals(client.v1.balance.retrieve(options=_on(acct.id))) == (500, 0)
    emulator.settle_payout(po.id, "paid")
    assert client.v1.payouts.retrieve(po.id, options=_on(acct.id)).status == "paid"
    [created] = emulator.events("payout.created")
    assert created["account"] == acct.id
    [paid] = emulator.events("payout.paid")
    assert paid["account"] == acct.id
    assert paid["data"]["object"]["id"] == po.id
    assert paid["data"]["previous_attributes"] == {"status": "pending"}
    assert _totals(client.v1.balance.retrieve(options=_on(acct.id))) == (500, 0)
    assert [t.amount for t in _ledger(client, acct.id, type="payout")] == [-4000]
    assert [p.id for p in client.v1.payouts.list(options=_on(acct.id)).data] == [po.id]
    assert list(client.v1.payouts.list().data) == []


def test_failed_payout_returns_the_funds(client, emulator):
    acct = _funded(client, emulator)
    po = client.v1.payouts.create(params={"amount": 4500, "currency": "usd"},
                                  options=_on(acct.id))
    assert _totals(client.v1.balance.retrieve(options=_on(acct.id))) == (0, 0)
    emulator.settle_payout(po.id, "failed")
    po = client.v1.payouts.retrieve(po.id, options=_on(acct.id))
    assert po.status == "failed"
    assert po.failure_code == "account_closed"
    failure = client.v1.balance_transactions.retrieve(po.failure_balance_transaction,
                                                      options=_on(acct.id))
    assert (failure.type, failure.amount) == ("payout_failure", 4500)
    assert _totals(client.v1.balance.retrieve(options=_on(acct.id))) == (4500, 0)
    [event] = emulator.events("payout.failed")
    assert event["account"] == acct.id


def test_cancel_pending_payout_gives_funds_back(client, emulator):
    acct = _funded(client, emulator)
    po = client.v1.payouts.create(params={"amount": 3000, "currency": "usd"},
                                  options=_on(acct.id))
    canceled = client.v1.payouts.cancel(po.id, options=_on(acct.id))
    assert canceled.status == "canceled"
    assert _totals(client.v1.balance.retrieve(options=_on(acct.id))) == (4500, 0)
    assert [t.amount for t in _ledger(client, acct.id, type="payout_cancel")] == [3000]
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payouts.cancel(po.id, options=_on(acct.id))
    [event] = emulator.events("payout.canceled")
    assert event["account"] == acct.id


def test_payout_update_metadata(client, emulator):
    acct = _funded(client, emulator)
    po = client.v1.payouts.create(params={"amount": 100, "currency": "usd"},
                                  options=_on(acct.id))
    updated = client.v1.payouts.update(po.id, params={"metadata": {"k": "v"}},
                                       options=_on(acct.id))
    assert updated.metadata.to_dict() == {"k": "v"}
    [event] = emulator.events("payout.updated")
    assert event["account"] == acct.id


def test_payout_of_a_restricted_account_is_refused(client, emulator):
    acct = _funded(client, emulator)
    emulator.restrict_account(acct.id)
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.payouts.create(params={"amount": 1000, "currency": "usd"},
                                 options=_on(acct.id))
    assert exc.value.http_status == 400
    assert exc.value.code == "payouts_not_allowed"
    assert _totals(client.v1.balance.retrieve(options=_on(acct.id))) == (4500, 0)


def test_payout_retrieval_without_the_header_is_404(client, emulator):
    acct = _funded(client, emulator)
    po = client.v1.payouts.create(params={"amount": 1000, "currency": "usd"},
                                  options=_on(acct.id))
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.payouts.retrieve(po.id)
    assert exc.value.http_status == 404
    assert exc.value.code == "resource_missing"
    other = _onboarded(client, emulator)
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.payouts.retrieve(po.id, options=_on(other.id))
    assert exc.value.http_status == 404


def test_unknown_stripe_account_is_403(client):
    with pytest.raises(stripe.PermissionError) as exc:
        client.v1.balance.retrieve(options=_on("acct_doesnotexist00"))
    assert exc.value.http_status == 403
    assert exc.value.json_body["error"]["code"] == "account_invalid"


def test_unsupported_operation_with_the_header_is_400(client, emulator):
    acct = _onboarded(client, emulator)
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.customers.list(options=_on(acct.id))
    assert exc.value.http_status == 400
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.customers.create(params={"email": "x@example.com"}, options=_on(acct.id))
    assert exc.value.http_status == 400
    assert list(client.v1.customers.list().data) == []


def test_platform_payout_from_its_own_balance(client, emulator):
    _charge(client, 10000, pm="pm_card_bypassPending")
    available, _ = _totals(client.v1.balance.retrieve())
    po = client.v1.payouts.create(params={"amount": available, "currency": "usd"})
    assert po.status == "pending"
    assert _totals(client.v1.balance.retrieve())[0] == 0
    assert client.v1.payouts.retrieve(po.id).id == po.id


# --- 12. disputes -----------------------------------------------------------------------------

def test_dispute_withdraws_amount_and_fee_from_the_platform(client, emulator):
    acct = _onboarded(client, emulator)
    _, ch = _destination_charge(client, acct.id)
    before = sum(_totals(client.v1.balance.retrieve()))
    connected_before = _totals(client.v1.balance.retrieve(options=_on(acct.id)))
    dp = emulator.trigger_dispute(ch.id)
    assert sum(_totals(client.v1.balance.retrieve())) == before - 5000 - 1500
    assert _totals(client.v1.balance.retrieve(options=_on(acct.id))) == connected_before
    [txn] = dp["balance_transactions"]
    assert (txn["amount"], txn["fee"], txn["net"]) == (-5000, 1500, -6500)
    [withdrawn] = emulator.events("charge.dispute.funds_withdrawn")
    assert withdrawn["data"]["object"]["id"] == dp["id"]
    assert len(emulator.events("charge.dispute.created")) == 1


def test_won_dispute_reinstates_the_amount(client, emulator):
    acct = _onboarded(client, emulator)
    _, ch = _destination_charge(client, acct.id)
    dp = emulator.trigger_dispute(ch.id)
    after_withdrawal = sum(_totals(client.v1.balance.retrieve()))
    closed = emulator.close_dispute(dp["id"], "won")
    assert closed["status"] == "won"
    assert sum(_totals(client.v1.balance.retrieve())) == after_withdrawal + 5000
    assert [t["amount"] for t in closed["balance_transactions"]] == [-5000, 5000]
    assert len(emulator.events("charge.dispute.funds_reinstated")) == 1
    [event] = emulator.events("charge.dispute.closed")
    assert event["data"]["object"]["status"] == "won"


def test_lost_dispute_does_not_reinstate(client, emulator):
    acct = _onboarded(client, emulator)
    _, ch = _destination_charge(client, acct.id)
    dp = emulator.trigger_dispute(ch.id)
    after_withdrawal = sum(_totals(client.v1.balance.retrieve()))
    closed = emulator.close_dispute(dp["id"], "lost")
    assert closed["status"] == "lost"
    assert sum(_totals(client.v1.balance.retrieve())) == after_withdrawal
    assert emulator.events("charge.dispute.funds_reinstated") == []
    [event] = emulator.events("charge.dispute.closed")
    assert event["data"]["object"]["status"] == "lost"
    with pytest.raises(EmulatorError):  # a closed dispute does not close again
        emulator.close_dispute(dp["id"], "won")


# --- 13. the state file -----------------------------------------------------------------------

def test_connect_objects_and_ownership_survive_dump_and_load(client, emulator, tmp_path):
    acct = _onboarded(client, emulator)
    pi, ch = _destination_charge(client, acct.id)
    _refund(client, pi.id, 1999, reverse_transfer=True, refund_application_fee=True)
    tr = client.v1.transfers.retrieve(ch.transfer)
    balance_before = _totals(client.v1.balance.retrieve(options=_on(acct.id)))
    platform_before = _totals(client.v1.balance.retrieve())
    path = tmp_path / "state.json"
    emulator.state.save_file(str(path))
    emulator.reset()
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.accounts.retrieve(acct.id)
    emulator.state.load_file(str(path))

    assert client.v1.accounts.retrieve(acct.id).charges_enabled is True
    py = client.v1.charges.retrieve(tr.destination_payment, options=_on(acct.id))
    assert py.amount_refunded == 1999
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.charges.retrieve(tr.destination_payment)
    assert exc.value.http_status == 404
    assert _totals(client.v1.balance.retrieve(options=_on(acct.id))) == balance_before
    assert _totals(client.v1.balance.retrieve()) == platform_before
    assert [t.type for t in _ledger(client, acct.id, type="payment")] == ["payment"]
    assert not {t.id for t in _ledger(client)} & {t.id for t in _ledger(client, acct.id)}
    # the cumulative split carries on after the reload: the rest adds up exactly
    _refund(client, pi.id, reverse_transfer=True, refund_application_fee=True)
    tr = client.v1.transfers.retrieve(ch.transfer)
    assert sorted(r.amount for r in client.v1.transfers.reversals.list(tr.id).data) == [
        1999, 3001]
    fee = client.v1.application_fees.retrieve(ch.application_fee)
    assert fee.amount_refunded == 500
    assert sorted(r.amount for r in fee.refunds.data) == [200, 300]
    assert [t.id for t in client.v1.transfers.list(params={"destination": acct.id}).data] == [
        tr.id]
    assert [f.id for f in client.v1.application_fees.list(params={"charge": ch.id}).data] == [
        fee.id]


def test_dump_and_load_keep_payouts_and_links_scoped(client, emulator):
    acct = _funded(client, emulator)
    po = client.v1.payouts.create(params={"amount": 1000, "currency": "usd"},
                                  options=_on(acct.id))
    other = _account(client)
    link = _link(client, other.id)
    data = emulator.state.dump()
    emulator.reset()
    emulator.state.load(data)
    assert client.v1.payouts.retrieve(po.id, options=_on(acct.id)).status == "pending"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payouts.retrieve(po.id)
    assert [p.id for p in client.v1.payouts.list(options=_on(acct.id)).data] == [po.id]
    emulator.settle_payout(po.id, "paid")
    assert emulator.events("payout.paid")[-1]["account"] == acct.id
    page = requests.get(link.url, timeout=5, allow_redirects=False)
    assert page.status_code == 200
    caps = client.v1.accounts.capabilities.list(other.id).data
    assert [(c.id, c.status) for c in caps] == [("card_payments", "inactive"),
                                                ("transfers", "inactive")]


def test_source_transaction_limit_holds_after_load(client, emulator):
    acct = _onboarded(client, emulator)
    ch = _charge(client, 5000)
    tr = client.v1.transfers.create(params={"amount": 4000, "currency": "usd",
                                            "destination": acct.id, "source_transaction": ch.id})
    client.v1.transfers.reversals.create(tr.id, params={"amount": 1000})
    data = emulator.state.dump()
    emulator.reset()
    emulator.state.load(data)
    # 4000 of the 5000 went out (1000 of it came back): 2001 is beyond the charge either way
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.transfers.create(params={"amount": 2001, "currency": "usd",
                                           "destination": acct.id, "source_transaction": ch.id})
    assert exc.value.code == "amount_too_large"
    assert [t.id for t in client.v1.transfers.list(params={"destination": acct.id}).data] == [
        tr.id]
    client.v1.transfers.reversals.create(tr.id, params={"amount": 500})
    tr = client.v1.transfers.retrieve(tr.id)
    assert tr.amount_reversed == 1500
    assert sorted(r.amount for r in tr.reversals.data) == [500, 1000]
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.transfers.reversals.create(tr.id, params={"amount": 2501})
