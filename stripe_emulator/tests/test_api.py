"""Resources, errors and parameters through the SDK."""

from __future__ import annotations

import pytest
import requests
import stripe

from .helpers import card, make_client

PI = {"amount": 5000, "currency": "usd"}


def _paid(client, amount=5000, **extra):
    return client.v1.payment_intents.create(params={
        "amount": amount, "currency": "usd", "confirm": True, "payment_method": "pm_card_visa",
        **extra})


# --- auth ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("key", ["sk_live_123", "pk_test_123", "rk_test_123", "nonsense",
                                 "sk_test_"])
def test_anything_but_a_test_secret_key_is_401(emulator, key):
    client = stripe.StripeClient(key, base_addresses={"api": emulator.base_url},
                                 max_network_retries=0)
    with pytest.raises(stripe.AuthenticationError) as info:
        client.v1.customers.create()
    assert info.value.http_status == 401


@pytest.mark.parametrize("header", [None, "Basic c2tfdGVzdF8xOg==", "Bearer", "bearer sk_test_1"])
def test_missing_or_malformed_authorization_is_401(emulator, header):
    headers = {} if header is None else {"Authorization": header}
    response = requests.get(f"{emulator.base_url}/v1/customers", headers=headers, timeout=5)
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "invalid_request_error"


# --- parameters ----------------------------------------------------------------------------------

@pytest.mark.parametrize("call, params, unknown", [
    ("payment_intents.create", {**PI, "colour": "red"}, "colour"),
    ("customers.create", {"favourite_language": "fr"}, "favourite_language"),
    ("setup_intents.create", {"amount": 100}, "amount"),
    ("refunds.create", {"payment_intent": "pi_x", "capture_method": "manual"}, "capture_method"),
    ("payment_intents.create", {**PI, "payment_method_data": {
        "type": "card", "card": {"number": "4242424242424242", "exp_month": 1,
                                 "exp_year": 2040, "pin": "0000"}}},
     "payment_method_data[card][pin]"),
])
def test_unknown_parameters_are_400_parameter_unknown(client, call, params, unknown):
    service, method = call.split(".")
    with pytest.raises(stripe.InvalidRequestError) as info:
        getattr(getattr(client.v1, service), method)(params=params)
    assert info.value.http_status == 400
    assert info.value.code == "parameter_unknown"
    assert info.value.param == unknown
    assert str(info.value.user_message) == f"Received unknown parameter: {unknown}"


def test_unknown_query_parameters_are_rejected_too(client):
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.payment_intents.list(params={"status": "succeeded"})
    assert info.value.param == "status"


def test_allowed_parameters_come_from_the_sdk_param_classes():
    from stripe_emulator.params import allowed_params

    allowed = allowed_params("payment_intents.create")
    assert {"amount", "currency", "confirm", "payment_method_data", "setup_future_usage",
            "off_session", "capture_method", "allowed_payment_method_types"} <= allowed
    assert "api_key" not in allowed and "idempotency_key" not in allowed
    assert "expand" in allowed_params("charges.retrieve")


@pytest.mark.parametrize("params, code, param", [
    ({"amount": 49, "currency": "usd"}, "amount_too_small", "amount"),
    ({"amount": 5000, "currency": "eur"}, None, "currency"),
    ({"currency": "usd"}, "parameter_missing", "amount"),
    ({"amount": 5000}, "parameter_missing", "currency"),
    ({"amount": "ten", "currency": "usd"}, "parameter_invalid_integer", "amount"),
])
def test_amount_and_currency_checks(client, params, code, param):
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.payment_intents.create(params=params)
    assert info.value.http_status == 400
    assert info.value.code == code
    assert info.value.param == param


def test_smallest_amount_is_accepted(client):
    assert client.v1.payment_intents.create(params={"amount": 50, "currency": "usd"}).amount == 50


# --- unknown ids ---------------------------------------------------------------------------------

@pytest.mark.parametrize("call", [
    lambda c: c.v1.payment_intents.retrieve("pi_missing"),
    lambda c: c.v1.payment_intents.confirm("pi_missing"),
    lambda c: c.v1.setup_intents.retrieve("seti_missing"),
    lambda c: c.v1.customers.retrieve("cus_missing"),
    lambda c: c.v1.charges.retrieve("ch_missing"),
    lambda c: c.v1.refunds.retrieve("re_missing"),
    lambda c: c.v1.events.retrieve("evt_missing"),
    lambda c: c.v1.payment_methods.retrieve("pm_missing"),
])
def test_unknown_id_in_path_is_404_resource_missing(client, call):
    with pytest.raises(stripe.InvalidRequestError) as info:
        call(client)
    assert info.value.http_status == 404
    assert info.value.code == "resource_missing"


@pytest.mark.parametrize("params, param", [
    ({**PI, "customer": "cus_missing"}, "customer"),
    ({**PI, "payment_method": "pm_missing"}, "payment_method"),
])
def test_unknown_id_in_body_is_400_with_param(client, params, param):
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.payment_intents.create(params=params)
    assert info.value.http_status == 400
    assert info.value.code == "resource_missing"
    assert info.value.param == param


def test_refund_of_unknown_payment_intent_is_400(client):
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.refunds.create(params={"payment_intent": "pi_missing"})
    assert (info.value.http_status, info.value.param) == (400, "payment_intent")


def test_unknown_url_is_404(emulator):
    response = requests.get(f"{emulator.base_url}/v1/nothing_here",
                            headers={"Authorization": "Bearer sk_test_1"}, timeout=5)
    assert response.status_code == 404


# --- customers and payment methods ---------------------------------------------------------------

def test_customer_create_retrieve_update_list(client):
    cus = client.v1.customers.create(params={"email": "ann@example.com", "name": "Ann",
                                             "metadata": {"user_id": "7"}})
    assert cus.id.startswith("cus_")
    assert client.v1.customers.retrieve(cus.id).email == "ann@example.com"
    updated = client.v1.customers.update(cus.id, params={"name": "Ann B",
                                                         "metadata": {"user_id": ""}})
    assert updated.name == "Ann B" and updated.metadata.to_dict() == {}
    other = client.v1.customers.create(params={"email": "bob@example.com"})
    listed = client.v1.customers.list(params={"limit": 1})
    assert [c.id for c in listed.data] == [other.id] and listed.has_more
    assert [c.id for c in client.v1.customers.list(
        params={"email": "ann@example.com"}).data] == [cus.id]


def test_payment_methods_attach_list_detach_and_default(client, emulator):
    cus = client.v1.customers.create()
    first = client.v1.payment_methods.create(params=card("4242424242424242"))
    second = client.v1.payment_methods.create(params=card("5555555555554444"))
    for pm in (first, second):
        client.v1.payment_methods.attach(pm.id, params={"customer": cus.id})
    listed = client.v1.payment_methods.list(params={"customer": cus.id, "type": "card"})
    assert [pm.id for pm in listed.data] == [second.id, first.id]
    assert [pm.card.brand for pm in listed.data] == ["mastercard", "visa"]
    client.v1.customers.update(cus.id, params={
        "invoice_settings": {"default_payment_method": second.id}})
    detached = client.v1.payment_methods.detach(second.id)
    assert detached.customer is None
    assert client.v1.customers.retrieve(cus.id).invoice_settings.default_payment_method is None
    assert [pm.id for pm in client.v1.payment_methods.list(
        params={"customer": cus.id}).data] == [first.id]
    types = [e["type"] for e in emulator.events()]
    assert types.count("payment_method.attached") == 2
    assert types[-1] == "payment_method.detached"
    # A detached PaymentMethod cannot be used again.
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_methods.attach(second.id, params={"customer": cus.id})


def test_default_payment_method_must_belong_to_the_customer(client):
    cus = client.v1.customers.create()
    pm = client.v1.payment_methods.create(params=card("4242424242424242"))
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.customers.update(cus.id, params={
            "invoice_settings": {"default_payment_method": pm.id}})
    assert info.value.param == "invoice_settings[default_payment_method]"


def test_payment_method_of_another_customer_is_refused(client):
    ann, bob = client.v1.customers.create(), client.v1.customers.create()
    pm = client.v1.payment_methods.attach("pm_card_visa", params={"customer": ann.id})
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.payment_intents.create(params={**PI, "customer": bob.id,
                                                 "payment_method": pm.id, "confirm": True})
    assert info.value.param == "payment_method"


# --- payment intents -----------------------------------------------------------------------------

def test_create_then_confirm_with_metadata_description_and_receipt(client, emulator):
    cus = client.v1.customers.create()
    pi = client.v1.payment_intents.create(params={
        **PI, "customer": cus.id, "allowed_payment_method_types": ["card"],
        "metadata": {"booking": "12"}, "description": "Lesson", "receipt_email": "a@b.test"})
    assert pi.status == "requires_payment_method"
    assert pi.automatic_payment_methods is None and pi.payment_method_types == ["card"]
    pi = client.v1.payment_intents.confirm(pi.id, params={"payment_method": "pm_card_visa"})
    assert pi.status == "succeeded"
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert (charge.customer, charge.description, charge.receipt_email) == (
        cus.id, "Lesson", "a@b.test")
    assert charge.metadata.to_dict() == {"booking": "12"}
    assert client.v1.payment_intents.list(params={"customer": cus.id}).data[0].id == pi.id
    assert [e["type"] for e in emulator.events()] == ["payment_intent.succeeded"]


def test_confirming_a_succeeded_intent_is_refused(client):
    pi = _paid(client)
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.payment_intents.confirm(pi.id)
    assert info.value.code == "payment_intent_unexpected_state"


def test_retry_after_decline_with_another_card_succeeds(client):
    pi = client.v1.payment_intents.create(params=PI)
    with pytest.raises(stripe.CardError):
        client.v1.payment_intents.confirm(pi.id, params={
            "payment_method": "pm_card_visa_chargeDeclined"})
    pi = client.v1.payment_intents.confirm(pi.id, params={"payment_method": "pm_card_visa"})
    assert pi.status == "succeeded"
    assert len(client.v1.charges.list(params={"payment_intent": pi.id}).data) == 2


def test_manual_capture_partial(client):
    pi = _paid(client, capture_method="manual")
    assert (pi.status, pi.amount_capturable) == ("requires_capture", 5000)
    assert client.v1.charges.retrieve(pi.latest_charge).captured is False
    pi = client.v1.payment_intents.capture(pi.id, params={"amount_to_capture": 3000})
    assert (pi.status, pi.amount_received, pi.amount_capturable) == ("succeeded", 3000, 0)
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert (charge.captured, charge.amount_captured) == (True, 3000)


def test_cancel(client, emulator):
    pi = client.v1.payment_intents.create(params=PI)
    pi = client.v1.payment_intents.cancel(pi.id, params={
        "cancellation_reason": "requested_by_customer"})
    assert (pi.status, pi.cancellation_reason) == ("canceled", "requested_by_customer")
    assert pi.canceled_at
    assert emulator.events()[-1]["type"] == "payment_intent.canceled"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.cancel(_paid(client).id)


def test_off_session_needs_confirm(client):
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.payment_intents.create(params={**PI, "off_session": True,
                                                 "payment_method": "pm_card_visa"})
    assert info.value.param == "off_session"


def test_payment_method_without_customer_is_single_use(client):
    pm = client.v1.payment_methods.create(params=card("4242424242424242"))
    _paid(client, payment_method=pm.id)
    with pytest.raises(stripe.InvalidRequestError):
        _paid(client, payment_method=pm.id)


def test_setup_intent_create_confirm_cancel(client, emulator):
    cus = client.v1.customers.create()
    si = client.v1.setup_intents.create(params={"customer": cus.id, "usage": "on_session",
                                                "metadata": {"k": "v"}})
    assert (si.status, si.usage) == ("requires_payment_method", "on_session")
    si = client.v1.setup_intents.confirm(si.id, params={"payment_method": "pm_card_mastercard"})
    assert si.status == "succeeded"
    other = client.v1.setup_intents.create(params={"customer": cus.id})
    assert client.v1.setup_intents.cancel(other.id).status == "canceled"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.setup_intents.cancel(si.id)


# --- expand --------------------------------------------------------------------------------------

def test_expand_latest_charge_payment_method_and_balance_transaction(client):
    cus = client.v1.customers.create()
    pi = _paid(client, customer=cus.id)
    got = client.v1.payment_intents.retrieve(pi.id, params={"expand": [
        "latest_charge.balance_transaction", "payment_method", "customer"]})
    assert got.latest_charge.object == "charge"
    assert got.latest_charge.balance_transaction.object == "balance_transaction"
    assert got.latest_charge.balance_transaction.amount == 5000
    assert got.payment_method.card.last4 == "4242"
    assert got.customer.id == cus.id
    listed = client.v1.payment_intents.list(params={"expand": ["data.latest_charge"]})
    assert listed.data[0].latest_charge.id == pi.latest_charge


def test_expand_of_an_unknown_property_is_400(client):
    pi = _paid(client)
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.payment_intents.retrieve(pi.id, params={"expand": ["nope"]})
    assert info.value.param == "expand"


# --- refunds -------------------------------------------------------------------------------------

def test_partial_then_full_refund_then_nothing_left(client, emulator):
    pi = _paid(client)
    first = client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 2000,
                                             "reason": "requested_by_customer",
                                             "metadata": {"request": "1"}})
    assert (first.status, first.amount, first.charge) == ("succeeded", 2000, pi.latest_charge)
    assert first.metadata.to_dict() == {"request": "1"}
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert (charge.amount_refunded, charge.refunded) == (2000, False)
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 3001})
    assert (info.value.http_status, info.value.param) == (400, "amount")
    rest = client.v1.refunds.create(params={"charge": pi.latest_charge})
    assert rest.amount == 3000
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert (charge.amount_refunded, charge.refunded) == (5000, True)
    assert [r.id for r in charge.refunds.data] == [rest.id, first.id]
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.refunds.create(params={"payment_intent": pi.id})
    assert info.value.code == "charge_already_refunded"
    listed = client.v1.refunds.list(params={"payment_intent": pi.id})
    assert [r.id for r in listed.data] == [rest.id, first.id]
    assert client.v1.refunds.retrieve(first.id).amount == 2000
    types = [e["type"] for e in emulator.events()]
    assert types.count("charge.refunded") == 2 and types.count("refund.created") == 2


@pytest.mark.parametrize("params, param", [
    ({"amount": 0}, "amount"),
    ({"amount": 5001}, "amount"),
    ({"reason": "because"}, "reason"),
])
def test_refund_parameter_checks(client, params, param):
    pi = _paid(client)
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.refunds.create(params={"payment_intent": pi.id, **params})
    assert info.value.param == param


def test_refund_of_unpaid_intent_is_refused(client):
    pi = client.v1.payment_intents.create(params=PI)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.refunds.create(params={"payment_intent": pi.id})


def test_refund_update_and_emulated_failure_record_refund_updated(client, emulator):
    pi = _paid(client)
    refund = client.v1.refunds.create(params={"payment_intent": pi.id})
    client.v1.refunds.update(refund.id, params={"metadata": {"note": "x"}})
    failed = emulator.fail_refund(refund.id)
    assert failed["status"] == "failed"
    assert client.v1.charges.retrieve(pi.latest_charge).amount_refunded == 0
    assert [e["type"] for e in emulator.events()][-2:] == ["refund.updated", "refund.updated"]


# --- events --------------------------------------------------------------------------------------

def test_events_retrieve_list_filter_and_paginate(client):
    cus = client.v1.customers.create()
    for _ in range(3):
        _paid(client, customer=cus.id, setup_future_usage="off_session")
    events = client.v1.events.list(params={"type": "payment_intent.succeeded", "limit": 2})
    assert len(events.data) == 2 and events.has_more
    rest = client.v1.events.list(params={"type": "payment_intent.succeeded",
                                         "starting_after": events.data[-1].id})
    assert len(rest.data) == 1 and not rest.has_more
    newest = client.v1.events.list(params={"limit": 1}).data[0]
    assert newest.type == "payment_intent.succeeded"
    assert newest.data.object.object == "payment_intent"
    assert newest.request.idempotency_key
    again = client.v1.events.retrieve(newest.id)
    assert again.id == newest.id
    wildcard = client.v1.events.list(params={"type": "payment_method.*"})
    assert {e.type for e in wildcard.data} == {"payment_method.attached"}
    before = client.v1.events.list(params={"type": "payment_intent.succeeded",
                                           "ending_before": rest.data[0].id, "limit": 1})
    assert before.data[0].id == events.data[-1].id


def test_event_keeps_the_object_as_it_was(client):
    pi = _paid(client)
    client.v1.refunds.create(params={"payment_intent": pi.id})
    event = client.v1.events.list(params={"type": "payment_intent.succeeded"}).data[0]
    charge_event = client.v1.events.list(params={"type": "charge.refunded"}).data[0]
    assert event.data.object.status == "succeeded"
    assert charge_event.data.object.amount_refunded == 5000
    assert charge_event.data.previous_attributes.amount_refunded == 0


def test_dispute_trigger_records_charge_dispute_created(client, emulator):
    pi = _paid(client)
    dispute = emulator.trigger_dispute(pi.latest_charge)
    assert dispute["charge"] == pi.latest_charge and dispute["amount"] == 5000
    assert client.v1.charges.retrieve(pi.latest_charge).disputed is True
    event = client.v1.events.list(params={"type": "charge.dispute.created"}).data[0]
    assert event.data.object.id == dispute["id"]
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.refunds.create(params={"payment_intent": pi.id})
    assert info.value.code == "charge_disputed"


# --- Connect -------------------------------------------------------------------------------------

def test_connect_account_onboarding(client, emulator):
    acct = client.v1.accounts.create(params={"type": "express", "email": "t@example.com",
                                             "capabilities": {"transfers": {"requested": True}}})
    assert acct.charges_enabled is False
    link = client.v1.account_links.create(params={
        "account": acct.id, "type": "account_onboarding",
        "refresh_url": "http://app.test/refresh", "return_url": "http://app.test/done"})
    page = requests.get(link.url, timeout=5)
    assert page.status_code == 200 and "Complete onboarding" in page.text
    done = requests.post(link.url + "/complete", allow_redirects=False, timeout=5)
    assert done.status_code == 302 and done.headers["Location"] == "http://app.test/done"
    acct = client.v1.accounts.retrieve(acct.id)
    assert acct.charges_enabled and acct.payouts_enabled and acct.details_submitted
    assert acct.requirements.currently_due == []
    pi = _paid(client, transfer_data={"destination": acct.id}, application_fee_amount=500)
    assert pi.transfer_data.destination == acct.id


def test_latency_is_added_to_v1_requests(client, emulator):
    import time

    emulator.set_latency(150)
    started = time.perf_counter()
    client.v1.customers.create()
    assert time.perf_counter() - started >= 0.15


def test_keep_alive_reuses_one_connection(emulator):
    import http.client
    import select

    auth = {"Authorization": "Bearer sk_test_1"}
    conn = http.client.HTTPConnection("127.0.0.1", int(emulator.base_url.rsplit(":", 1)[1]),
                                      timeout=5)
    conn.connect()
    sock, local = conn.sock, conn.sock.getsockname()
    try:
        for _ in range(3):
            conn.request("GET", "/v1/customers", headers=auth)
            response = conn.getresponse()
            assert response.status == 200
            assert response.getheader("Connection") == "keep-alive" and not response.will_close
            response.read()
            # http.client did not reconnect: the very socket, from the same local port...
            assert conn.sock is sock and sock.getsockname() == local
            # ...and the server did not close its end (EOF would make the socket readable).
            assert select.select([sock], [], [], 0.2)[0] == []
    finally:
        conn.close()


def test_connection_close_request_closes_the_connection(emulator):
    import socket

    port = int(emulator.base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=3) as raw:
        raw.sendall(b"GET /v1/customers HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    b"Authorization: Bearer sk_test_1\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := raw.recv(65536):  # b"" once the server has closed; a timeout if it has not
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert b"\r\nConnection: close\r\n" in answer


@pytest.mark.parametrize("kind", ["lock_timeout", "refused", "drop_after_work"])
def test_sdk_retries_reach_the_same_idempotency_key(emulator, kind):
    # Faults the SDK retries (a 500 carries Stripe-Should-Retry: false, as Stripe's do: not retried).
    client = make_client(emulator, max_network_retries=2)
    emulator.arm_fault("POST", "/v1/customers", kind, count=1)
    client.v1.customers.create()
    log = emulator.requests()
    assert len(log) == 2 and log[0]["idempotency_key"] == log[1]["idempotency_key"]


def test_payment_method_types_is_refused_as_at_the_pinned_api_version(client):
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.payment_intents.create(params={**PI, "payment_method_types": ["card"]})
    assert info.value.code == "payment_method_types_no_longer_supported"
    assert info.value.param == "payment_method_types"


def test_search_finds_payment_intents_by_metadata_and_status(client):
    first = client.v1.payment_intents.create(params={**PI, "metadata": {"payment_id": "41"}})
    client.v1.payment_intents.create(params={**PI, "metadata": {"payment_id": "42"}})
    found = client.v1.payment_intents.search(params={"query": "metadata['payment_id']:'41'"})
    assert [pi.id for pi in found.data] == [first.id]
    both = client.v1.payment_intents.search(
        params={"query": "metadata['payment_id']:'41' AND status:'requires_payment_method'"})
    assert [pi.id for pi in both.data] == [first.id]
    assert client.v1.payment_intents.search(params={"query": "status:'succeeded'"}).data == []


def test_search_rejects_an_unsupported_clause(client):
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.payment_intents.search(params={"query": "amount>100"})
    assert info.value.param == "query"
