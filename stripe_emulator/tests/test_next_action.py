"""3-D Secure's ``next_action``, as Stripe shapes it (issue 12): confirmed with a ``return_url``,
``redirect_to_url`` (``url`` and ``return_url``); without one, ``use_stripe_sdk``, whose hash is
for Stripe's client SDKs (here a ``three_d_secure_redirect`` whose ``stripe_js`` is the emulator's
3-D Secure page). Completing or failing through that page works for both shapes and both kinds of
intent. Driven through the Python SDK."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import requests

from .helpers import card

THREE_DS = "4000002500003155"
RETURN = "http://127.0.0.1:9/back"


def _pi(client, **extra):
    params = {"amount": 5000, "currency": "usd", "confirm": True,
              "payment_method_data": card(THREE_DS)}
    params.update(extra)
    return client.v1.payment_intents.create(params=params)


def _si(client, customer_id, **extra):
    params = {"customer": customer_id, "confirm": True, "payment_method_data": card(THREE_DS)}
    params.update(extra)
    return client.v1.setup_intents.create(params=params)


def _press(page_url: str, button: str) -> requests.Response:
    page = requests.get(page_url, timeout=5)
    assert page.status_code == 200 and f"/{button}'" in page.text
    return requests.post(f"{page_url}/{button}", allow_redirects=False, timeout=5)


def _assert_sdk_action(emulator, intent) -> str:
    """The ``use_stripe_sdk`` shape; returns its ``stripe_js`` (the emulator's page)."""
    action = intent.next_action
    assert intent.status == "requires_action"
    assert action.type == "use_stripe_sdk"
    assert "redirect_to_url" not in action
    sdk = action.use_stripe_sdk
    assert sdk["type"] == "three_d_secure_redirect"
    assert sdk["stripe_js"] == f"{emulator.base_url}/_emulator/3ds/{intent.id}"
    assert sdk["source"].startswith("src_")
    return sdk["stripe_js"]


def test_payment_intent_without_return_url_answers_use_stripe_sdk(client, emulator):
    pi = _pi(client)
    _assert_sdk_action(emulator, pi)
    assert client.v1.payment_intents.retrieve(pi.id).next_action.type == "use_stripe_sdk"


def test_payment_intent_with_return_url_answers_redirect_to_url(client, emulator):
    pi = _pi(client, return_url=RETURN)
    assert pi.status == "requires_action"
    assert pi.next_action.type == "redirect_to_url"
    assert "use_stripe_sdk" not in pi.next_action
    assert pi.next_action.redirect_to_url.url == f"{emulator.base_url}/_emulator/3ds/{pi.id}"
    assert pi.next_action.redirect_to_url.return_url == RETURN


def test_use_stripe_sdk_payment_completes_through_the_page(client, emulator):
    pi = _pi(client)
    answer = _press(_assert_sdk_action(emulator, pi), "complete")
    assert answer.status_code == 200  # nowhere to send the browser back to: a result page
    done = client.v1.payment_intents.retrieve(pi.id, params={"expand": ["latest_charge"]})
    assert done.status == "succeeded" and done.next_action is None
    assert done.latest_charge.payment_method_details.card.three_d_secure.result == "authenticated"
    assert emulator.events()[-1]["type"] == "payment_intent.succeeded"


def test_use_stripe_sdk_payment_fails_through_the_page(client, emulator):
    pi = _pi(client)
    assert _press(_assert_sdk_action(emulator, pi), "fail").status_code == 200
    failed = client.v1.payment_intents.retrieve(pi.id)
    assert failed.status == "requires_payment_method" and failed.next_action is None
    assert failed.last_payment_error.code == "payment_intent_authentication_failure"


def test_redirect_to_url_payment_completes_through_the_page_back_to_return_url(client, emulator):
    pi = _pi(client, return_url=RETURN)
    answer = _press(pi.next_action.redirect_to_url.url, "complete")
    assert answer.status_code == 302
    query = parse_qs(urlsplit(answer.headers["Location"]).query)
    assert query["payment_intent"] == [pi.id] and query["redirect_status"] == ["succeeded"]
    assert client.v1.payment_intents.retrieve(pi.id).status == "succeeded"


def test_separate_confirm_without_then_with_return_url(client, emulator):
    """A confirm call decides the shape; a confirm again with a return_url (allowed in
    requires_action) turns use_stripe_sdk into redirect_to_url, and one without keeps it."""
    pm = client.v1.payment_methods.create(params=card(THREE_DS))
    pi = client.v1.payment_intents.create(params={"amount": 5000, "currency": "usd",
                                                  "payment_method": pm.id})
    pi = client.v1.payment_intents.confirm(pi.id)
    _assert_sdk_action(emulator, pi)
    pi = client.v1.payment_intents.confirm(pi.id, params={"return_url": RETURN})
    assert pi.next_action.type == "redirect_to_url"
    assert pi.next_action.redirect_to_url.return_url == RETURN
    pi = client.v1.payment_intents.confirm(pi.id)  # the pending authentication's return_url stays
    assert pi.next_action.redirect_to_url.return_url == RETURN


def test_setup_intent_without_return_url_answers_use_stripe_sdk_and_completes(client, emulator):
    customer = client.v1.customers.create()
    si = _si(client, customer.id)
    answer = _press(_assert_sdk_action(emulator, si), "complete")
    assert answer.status_code == 200
    si = client.v1.setup_intents.retrieve(si.id)
    assert si.status == "succeeded" and si.next_action is None
    assert client.v1.payment_methods.retrieve(si.payment_method).customer == customer.id
    # Authenticated on setup: an off-session payment needs nothing more.
    pi = client.v1.payment_intents.create(params={
        "amount": 5000, "currency": "usd", "confirm": True, "customer": customer.id,
        "payment_method": si.payment_method, "off_session": True})
    assert pi.status == "succeeded"


def test_setup_intent_confirmed_separately_without_return_url_answers_use_stripe_sdk(client, emulator):
    customer = client.v1.customers.create()
    pm = client.v1.payment_methods.create(params=card(THREE_DS))
    si = client.v1.setup_intents.create(params={"customer": customer.id, "payment_method": pm.id})
    si = client.v1.setup_intents.confirm(si.id)
    assert _press(_assert_sdk_action(emulator, si), "fail").status_code == 200
    si = client.v1.setup_intents.retrieve(si.id)
    assert si.status == "requires_payment_method"
    assert si.last_setup_error.code == "setup_intent_authentication_failure"


def test_setup_intent_with_return_url_answers_redirect_to_url_and_completes(client, emulator):
    customer = client.v1.customers.create()
    si = _si(client, customer.id, return_url=RETURN)
    assert si.next_action.type == "redirect_to_url"
    assert si.next_action.redirect_to_url.return_url == RETURN
    answer = _press(si.next_action.redirect_to_url.url, "complete")
    assert answer.status_code == 302
    query = parse_qs(urlsplit(answer.headers["Location"]).query)
    assert query["setup_intent"] == [si.id] and query["redirect_status"] == ["succeeded"]
    assert client.v1.setup_intents.retrieve(si.id).status == "succeeded"
