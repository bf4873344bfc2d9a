"""Every test card of the contract through PaymentIntents and SetupIntents, 3-D Secure included."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
import stripe

from .helpers import card

# number -> (brand, PaymentIntent outcome, SetupIntent outcome); an outcome is "succeeded",
# "requires_action" or (code, decline_code).
CONTRACT = {
    "4242424242424242": ("visa", "succeeded", "succeeded"),
    "4000000000000002": ("visa", ("card_declined", "generic_decline"),
                         ("card_declined", "generic_decline")),
    "4000000000009995": ("visa", ("card_declined", "insufficient_funds"),
                         ("card_declined", "insufficient_funds")),
    "4000000000009987": ("visa", ("card_declined", "lost_card"),
                         ("card_declined", "lost_card")),
    "5555555555554444": ("mastercard", "succeeded", "succeeded"),
    "378282246310005": ("amex", "succeeded", "succeeded"),
    "4000002500003155": ("visa", "requires_action", "requires_action"),
    "4000000000000341": ("visa", ("card_declined", "generic_decline"), "succeeded"),
}

TEST_PM_IDS = {
    "pm_card_visa": ("visa", "succeeded"),
    "pm_card_mastercard": ("mastercard", "succeeded"),
    "pm_card_amex": ("amex", "succeeded"),
    "pm_card_visa_chargeDeclined": ("visa", ("card_declined", "generic_decline")),
    "pm_card_visa_chargeDeclinedInsufficientFunds": ("visa", ("card_declined",
                                                               "insufficient_funds")),
    "pm_card_visa_chargeDeclinedLostCard": ("visa", ("card_declined", "lost_card")),
    "pm_card_authenticationRequiredOnSetup": ("visa", "requires_action"),
    "pm_card_chargeCustomerFail": ("visa", ("card_declined", "generic_decline")),
    "pm_card_authenticationRequired": ("visa", "requires_action"),
}


def _pi_params(**extra):
    params = {"amount": 5000, "currency": "usd", "confirm": True,
              "return_url": "http://127.0.0.1:9/return"}
    params.update(extra)
    return params


def _check_pi_outcome(client, emulator, create, brand, outcome):
    if isinstance(outcome, tuple):
        with pytest.raises(stripe.CardError) as info:
            create()
        err = info.value
        assert err.http_status == 402
        assert (err.code, err.error.decline_code) == outcome
        assert err.error.type == "card_error"
        pi = err.error.payment_intent
        assert pi.status == "requires_payment_method"
        assert pi.last_payment_error.decline_code == outcome[1]
        assert pi.last_payment_error.payment_method.card.brand == brand
        charge = client.v1.charges.retrieve(err.error.charge)
        assert charge.status == "failed" and charge.paid is False
        assert charge.failure_code == outcome[0]
        assert charge.outcome.reason == outcome[1]
        assert pi.latest_charge == charge.id
        assert [e["type"] for e in emulator.events()][-1] == "payment_intent.payment_failed"
        return pi
    pi = create()
    assert pi.status == outcome
    pm = client.v1.payment_methods.retrieve(pi.payment_method)
    assert pm.card.brand == brand
    if outcome == "succeeded":
        charge = client.v1.charges.retrieve(pi.latest_charge)
        assert charge.status == "succeeded" and charge.captured and charge.amount == 5000
        assert charge.payment_method_details.card.brand == brand
        assert pi.amount_received == 5000
    else:
        assert pi.next_action.type == "redirect_to_url"
        assert pi.next_action.redirect_to_url.url.startswith(emulator.base_url + "/_emulator/3ds/")
        assert pi.latest_charge is None
    return pi


@pytest.mark.parametrize("number", list(CONTRACT))
def test_contract_card_through_payment_intent(client, emulator, number):
    brand, outcome, _ = CONTRACT[number]
    _check_pi_outcome(client, emulator, lambda: client.v1.payment_intents.create(
        params=_pi_params(payment_method_data=card(number))), brand, outcome)


@pytest.mark.parametrize("pm_id", list(TEST_PM_IDS))
def test_test_payment_method_ids_through_payment_intent(client, emulator, pm_id):
    brand, outcome = TEST_PM_IDS[pm_id]
    pi = _check_pi_outcome(client, emulator, lambda: client.v1.payment_intents.create(
        params=_pi_params(payment_method=pm_id)), brand, outcome)
    if pi.payment_method:
        assert pi.payment_method.startswith("pm_1") and pi.payment_method != pm_id


def test_each_use_of_a_test_payment_method_id_clones_a_fresh_one(client):
    a = client.v1.payment_intents.create(params=_pi_params(payment_method="pm_card_visa"))
    b = client.v1.payment_intents.create(params=_pi_params(payment_method="pm_card_visa"))
    assert a.payment_method != b.payment_method
    pm_a = client.v1.payment_methods.retrieve(a.payment_method)
    pm_b = client.v1.payment_methods.retrieve(b.payment_method)
    assert pm_a.card.fingerprint == pm_b.card.fingerprint
    assert pm_a.card.last4 == "4242"


@pytest.mark.parametrize("number", list(CONTRACT))
def test_contract_card_through_setup_intent(client, emulator, number):
    brand, _, outcome = CONTRACT[number]
    customer = client.v1.customers.create(params={"email": "s@example.com"})
    params = {"customer": customer.id, "confirm": True, "usage": "off_session",
              "payment_method_data": card(number), "return_url": "http://127.0.0.1:9/r"}
    if isinstance(outcome, tuple):
        with pytest.raises(stripe.CardError) as info:
            client.v1.setup_intents.create(params=params)
        err = info.value
        assert (err.code, err.error.decline_code) == outcome
        si = err.error.setup_intent
        assert si.status == "requires_payment_method"
        assert si.last_setup_error.decline_code == outcome[1]
        assert emulator.events()[-1]["type"] == "setup_intent.setup_failed"
        listed = client.v1.payment_methods.list(params={"customer": customer.id,
                                                        "type": "card"})
        assert listed.data == []
        return
    si = client.v1.setup_intents.create(params=params)
    assert si.status == outcome
    pm = client.v1.payment_methods.retrieve(si.payment_method)
    assert pm.card.brand == brand
    if outcome == "succeeded":
        assert pm.customer == customer.id
        types = [e["type"] for e in emulator.events()]
        assert "payment_method.attached" in types and types[-1] == "setup_intent.succeeded"
    else:
        assert pm.customer is None
        assert si.next_action.redirect_to_url.return_url == "http://127.0.0.1:9/r"


@pytest.mark.parametrize("number, decline", [
    ("4000000000000002", "generic_decline"),
    ("4000000000009995", "insufficient_funds"),
    ("4000000000009987", "lost_card"),
])
def test_decline_cards_fail_attaching(client, number, decline):
    customer = client.v1.customers.create()
    pm = client.v1.payment_methods.create(params=card(number))
    with pytest.raises(stripe.CardError) as info:
        client.v1.payment_methods.attach(pm.id, params={"customer": customer.id})
    assert info.value.error.decline_code == decline
    assert client.v1.payment_methods.retrieve(pm.id).customer is None


def test_charge_customer_fail_card_attaches_then_its_charges_decline(client):
    customer = client.v1.customers.create()
    pm = client.v1.payment_methods.create(params=card("4000000000000341"))
    attached = client.v1.payment_methods.attach(pm.id, params={"customer": customer.id})
    assert attached.customer == customer.id
    with pytest.raises(stripe.CardError) as info:
        client.v1.payment_intents.create(params=_pi_params(
            customer=customer.id, payment_method=pm.id, off_session=True))
    assert info.value.error.decline_code == "generic_decline"


@pytest.mark.parametrize("number, brand", [
    ("4111111111111111", "visa"),
    ("6011111111111117", "discover"),
    ("2223003122003222", "mastercard"),
    ("3566002020360505", "jcb"),
])
def test_other_valid_numbers_succeed_with_their_brand(client, number, brand):
    pi = client.v1.payment_intents.create(params=_pi_params(payment_method_data=card(number)))
    assert pi.status == "succeeded"
    assert client.v1.payment_methods.retrieve(pi.payment_method).card.brand == brand


@pytest.mark.parametrize("card_fields, code, param", [
    ({"number": "4242424242424241"}, "incorrect_number", "card[number]"),
    ({"number": "4242 4242 4242 424x"}, "invalid_number", "card[number]"),
    ({"exp_year": 2020}, "invalid_expiry_year", "card[exp_year]"),
    ({"exp_month": 13}, "invalid_expiry_month", "card[exp_month]"),
    ({"cvc": "12"}, "invalid_cvc", "card[cvc]"),
    ({"cvc": "1234"}, "invalid_cvc", "card[cvc]"),
    ({"number": "378282246310005", "cvc": "123"}, "invalid_cvc", "card[cvc]"),
])
def test_card_validation_errors(client, card_fields, code, param):
    data = card("4242424242424242")
    data["card"].update(card_fields)
    with pytest.raises(stripe.CardError) as info:
        client.v1.payment_methods.create(params=data)
    assert info.value.http_status == 402
    assert info.value.code == code
    assert info.value.param == param
    with pytest.raises(stripe.CardError) as info:
        client.v1.payment_intents.create(params=_pi_params(payment_method_data=data))
    assert info.value.code == code
    assert info.value.param == "payment_method_data[" + param.replace("[", "][", 1)
    assert client.v1.payment_intents.list().data == []


def test_past_month_of_this_year_is_invalid(client):
    import datetime

    today = datetime.date.today()
    if today.month == 1:
        pytest.skip("no past month this year")
    data = card("4242424242424242", exp_month=today.month - 1, exp_year=today.year)
    with pytest.raises(stripe.CardError) as info:
        client.v1.payment_methods.create(params=data)
    assert info.value.code == "invalid_expiry_month"


def test_expired_card_test_number_declines_at_charge(client):
    with pytest.raises(stripe.CardError) as info:
        client.v1.payment_intents.create(params=_pi_params(
            payment_method="pm_card_visa_chargeDeclinedExpiredCard"))
    assert info.value.code == "expired_card"


# --- 3-D Secure ----------------------------------------------------------------------------------

class _Forms(HTMLParser):
    def __init__(self):
        super().__init__()
        self.actions: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "form":
            self.actions.append(dict(attrs)["action"])


def _click(page_url: str, button: str) -> requests.Response:
    """Open the 3-D Secure page as a browser would and submit one of its forms."""
    page = requests.get(page_url, timeout=5)
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    forms = _Forms()
    forms.feed(page.text)
    action = next(a for a in forms.actions if a.endswith("/" + button))
    return requests.post(urljoin(page_url, action), allow_redirects=False, timeout=5)


def test_3ds_page_complete_redirects_and_succeeds_payment(client, emulator):
    pi = client.v1.payment_intents.create(params=_pi_params(
        payment_method_data=card("4000002500003155"), return_url="http://shop.test/back?x=1"))
    assert pi.status == "requires_action"
    assert emulator.events()[-1]["type"] == "payment_intent.requires_action"
    response = _click(pi.next_action.redirect_to_url.url, "complete")
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert (location.scheme, location.netloc, location.path) == ("http", "shop.test", "/back")
    query = parse_qs(location.query)
    assert query["x"] == ["1"]
    assert query["payment_intent"] == [pi.id]
    assert query["payment_intent_client_secret"] == [pi.client_secret]
    assert query["redirect_status"] == ["succeeded"]
    done = client.v1.payment_intents.retrieve(pi.id, params={"expand": ["latest_charge"]})
    assert done.status == "succeeded"
    assert done.latest_charge.payment_method_details.card.three_d_secure.result == "authenticated"
    assert emulator.events()[-1]["type"] == "payment_intent.succeeded"


def test_3ds_page_fail_leaves_payment_requiring_a_payment_method(client, emulator):
    pi = client.v1.payment_intents.create(params=_pi_params(payment_method="pm_card_authenticationRequired"))
    response = _click(pi.next_action.redirect_to_url.url, "fail")
    assert response.status_code == 302
    assert parse_qs(urlsplit(response.headers["Location"]).query)["redirect_status"] == ["failed"]
    failed = client.v1.payment_intents.retrieve(pi.id)
    assert failed.status == "requires_payment_method"
    assert failed.last_payment_error.code == "payment_intent_authentication_failure"
    assert failed.payment_method is None
    assert emulator.events()[-1]["type"] == "payment_intent.payment_failed"
    # The page is spent: nothing left to authenticate.
    assert requests.get(pi.next_action.redirect_to_url.url, timeout=5).status_code == 409


def test_3ds_on_setup_then_off_session_charges_need_no_authentication(client, emulator):
    customer = client.v1.customers.create()
    si = client.v1.setup_intents.create(params={
        "customer": customer.id, "confirm": True, "payment_method_data": card("4000002500003155"),
        "return_url": "http://127.0.0.1:9/saved"})
    assert si.status == "requires_action"
    response = _click(si.next_action.redirect_to_url.url, "complete")
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query["setup_intent"] == [si.id]
    assert query["setup_intent_client_secret"] == [si.client_secret]
    assert query["redirect_status"] == ["succeeded"]
    si = client.v1.setup_intents.retrieve(si.id)
    assert si.status == "succeeded"
    pm = client.v1.payment_methods.retrieve(si.payment_method)
    assert pm.customer == customer.id
    pi = client.v1.payment_intents.create(params=_pi_params(
        customer=customer.id, payment_method=pm.id, off_session=True))
    assert pi.status == "succeeded"


def test_3ds_card_off_session_without_setup_declines_authentication_required(client):
    customer = client.v1.customers.create()
    pm = client.v1.payment_methods.create(params=card("4000002500003155"))
    client.v1.payment_methods.attach(pm.id, params={"customer": customer.id})
    with pytest.raises(stripe.CardError) as info:
        client.v1.payment_intents.create(params=_pi_params(
            customer=customer.id, payment_method=pm.id, off_session=True))
    assert info.value.code == "authentication_required"
    assert info.value.error.payment_intent.status == "requires_payment_method"
    # On-session, the same card asks for authentication instead.
    pi = client.v1.payment_intents.create(params=_pi_params(
        customer=customer.id, payment_method=pm.id))
    assert pi.status == "requires_action"


def test_3ds_payment_with_setup_future_usage_saves_card_for_off_session(client, emulator):
    customer = client.v1.customers.create()
    pi = client.v1.payment_intents.create(params=_pi_params(
        customer=customer.id, payment_method_data=card("4000002500003155"),
        setup_future_usage="off_session"))
    done = emulator.complete_3ds(pi.id)
    assert done["status"] == "succeeded"
    pm_id = done["payment_method"]
    assert client.v1.payment_methods.retrieve(pm_id).customer == customer.id
    again = client.v1.payment_intents.create(params=_pi_params(
        customer=customer.id, payment_method=pm_id, off_session=True))
    assert again.status == "succeeded"


def test_3ds_setup_fail_reports_setup_intent_authentication_failure(client, emulator):
    customer = client.v1.customers.create()
    si = client.v1.setup_intents.create(params={
        "customer": customer.id, "confirm": True,
        "payment_method": "pm_card_authenticationRequiredOnSetup"})
    assert si.next_action.type == "use_stripe_sdk"  # no return_url: Stripe's SDK shape
    page = _click(si.next_action.use_stripe_sdk["stripe_js"], "fail")
    assert page.status_code == 200  # no return_url: a result page instead of a redirect
    si = client.v1.setup_intents.retrieve(si.id)
    assert si.status == "requires_payment_method"
    assert si.last_setup_error.code == "setup_intent_authentication_failure"
    assert emulator.events()[-1]["type"] == "setup_intent.setup_failed"


def test_complete_3ds_on_an_intent_not_requiring_action_is_refused(client, emulator):
    pi = client.v1.payment_intents.create(params=_pi_params(payment_method="pm_card_visa"))
    with pytest.raises(stripe_emulator_error()):
        emulator.complete_3ds(pi.id)
    response = requests.post(f"{emulator.base_url}/_emulator/3ds/{pi.id}/complete", timeout=5)
    assert response.status_code == 400
    assert re.search("status of succeeded", response.json()["error"]["message"])


def stripe_emulator_error():
    from stripe_emulator.errors import StripeError

    return StripeError
