"""Nested parameters, checked against the SDK's typed parameter classes, and metadata limits."""

from __future__ import annotations

import pytest
import stripe

from .helpers import card

PI = {"amount": 5000, "currency": "usd"}
BAD = "colour"


def _call(client, call: str, *args, params):
    service, method = call.split(".")
    return getattr(getattr(client.v1, service), method)(*args, params=params)


def _refused(client, call: str, *args, params) -> stripe.InvalidRequestError:
    with pytest.raises(stripe.InvalidRequestError) as info:
        _call(client, call, *args, params=params)
    assert info.value.http_status == 400
    assert info.value.error.type == "invalid_request_error"
    return info.value


# --- unknown keys at any depth --------------------------------------------------------------------

@pytest.mark.parametrize("call, args, params, unknown", [
    # depth 1
    ("payment_intents.create", (), {**PI, "transfer_data": {"destination": "acct_x", BAD: "1"}},
     "transfer_data[colour]"),
    ("payment_intents.create", (), {**PI, "payment_method_options": {BAD: "1"}},
     "payment_method_options[colour]"),
    ("payment_intents.create", (), {**PI, "payment_method_data": {"type": "card", BAD: "1"}},
     "payment_method_data[colour]"),
    ("payment_intents.create", (), {**PI, "automatic_payment_methods": {"enabled": True,
                                                                        BAD: "1"}},
     "automatic_payment_methods[colour]"),
    ("customers.create", (), {"address": {"city": "Lyon", BAD: "1"}}, "address[colour]"),
    ("customers.update", ("cus_missing",), {"invoice_settings": {BAD: "1"}},
     "invoice_settings[colour]"),
    ("payment_methods.create", (), {"type": "card", "billing_details": {BAD: "1"}},
     "billing_details[colour]"),
    ("accounts.create", (), {"type": "express", "capabilities": {BAD: {"requested": True}}},
     "capabilities[colour]"),
    ("payment_intents.list", (), {"created": {"gte": 1, BAD: 2}}, "created[colour]"),
    # depth 2
    ("payment_intents.create", (), {**PI, "payment_method_options": {"card": {
        "request_three_d_secure": "any", BAD: "1"}}}, "payment_method_options[card][colour]"),
    ("payment_intents.confirm", ("pi_missing",), {"payment_method_options": {"card": {BAD: "1"}}},
     "payment_method_options[card][colour]"),
    ("setup_intents.create", (), {"payment_method_options": {"card": {BAD: "1"}}},
     "payment_method_options[card][colour]"),
    ("payment_intents.create", (), {**PI, "payment_method_data": {
        "type": "card", "billing_details": {"name": "Ada", BAD: "1"}}},
     "payment_method_data[billing_details][colour]"),
    ("setup_intents.create", (), {"payment_method_data": {
        "type": "card", "billing_details": {BAD: "1"}}},
     "payment_method_data[billing_details][colour]"),
    ("payment_methods.create", (), {"type": "card", "card": {"token": "tok_visa",
                                                             "networks": {BAD: "1"}}},
     "card[networks][colour]"),
    ("customers.create", (), {"shipping": {"name": "Ada", "address": {"city": "Lyon", BAD: "1"}}},
     "shipping[address][colour]"),
    # depth 3, and an item of a list of hashes
    ("payment_intents.create", (), {**PI, "payment_method_data": {
        "type": "card", "billing_details": {"address": {"city": "Lyon", BAD: "1"}}}},
     "payment_method_data[billing_details][address][colour]"),
    ("customers.create", (), {"invoice_settings": {"custom_fields": [
        {"name": "a", "value": "b"}, {"name": "c", "value": "d", BAD: "1"}]}},
     "invoice_settings[custom_fields][1][colour]"),
])
def test_unknown_nested_key_is_400_parameter_unknown(client, call, args, params, unknown):
    err = _refused(client, call, *args, params=params)
    assert err.code == "parameter_unknown"
    assert err.param == unknown
    assert str(err.user_message) == f"Received unknown parameter: {unknown}"


def test_parameters_are_checked_before_ids_are_looked_up(client):
    # The unknown key answers first, as Stripe validates before the endpoint runs.
    err = _refused(client, "payment_intents.confirm", "pi_missing",
                   params={"payment_method_options": {"card": {BAD: "1"}}})
    assert err.code == "parameter_unknown"


def test_known_nested_keys_are_accepted(client):
    cus = client.v1.customers.create(params={
        "address": {"line1": "1 rue X", "city": "Lyon", "postal_code": "69001", "country": "FR"},
        "shipping": {"name": "Ada", "address": {"city": "Lyon", "country": "FR"}},
        "invoice_settings": {"custom_fields": [{"name": "VAT", "value": "FR1"}]},
    })
    pi = client.v1.payment_intents.create(params={
        **PI, "confirm": True, "customer": cus.id,
        "payment_method_data": {"type": "card", "card": {"token": "tok_visa"},
                                "billing_details": {"name": "Ada", "address": {"city": "Lyon"}},
                                "metadata": {"source": "test"}},
        "payment_method_options": {"card": {"request_three_d_secure": "automatic"}},
        "allowed_payment_method_types": ["card"],
        "expand": ["payment_method", "latest_charge"],
    })
    assert pi.status == "succeeded"
    assert pi.payment_method.billing_details.name == "Ada"
    assert pi.latest_charge.object == "charge"
    listed = client.v1.payment_intents.list(params={"created": {"gte": 0}, "expand": ["data.customer"]})
    assert listed.data[0].customer.id == cus.id


def test_raw_card_data_stays_accepted_in_payment_method_data(client):
    # payment_method_data[card] is not in the SDK's PaymentIntent classes: the emulator takes it
    # (as Stripe does from accounts allowed raw card data), with PaymentMethod create's card keys.
    pi = client.v1.payment_intents.create(params={
        **PI, "confirm": True, "payment_method_data": card("4242424242424242")})
    assert pi.status == "succeeded"
    err = _refused(client, "setup_intents.create", params={"payment_method_data": {
        "type": "card", "card": {**card("4242424242424242")["card"], "pin": "0000"}}})
    assert (err.code, err.param) == ("parameter_unknown", "payment_method_data[card][pin]")


# --- metadata limits (https://docs.stripe.com/metadata) -------------------------------------------

def _keys(n: int, prefix: str = "k") -> dict:
    return {f"{prefix}{i}": "v" for i in range(n)}


@pytest.mark.parametrize("call, params", [
    ("customers.create", {}),
    ("payment_intents.create", PI),
    ("setup_intents.create", {}),
    ("payment_methods.create", {"type": "card", "card": {"token": "tok_visa"}}),
])
def test_metadata_limits_are_enforced_on_every_resource(client, call, params):
    err = _refused(client, call, params={**params, "metadata": _keys(51)})
    assert err.param == "metadata"
    assert err.code is None
    assert str(err.user_message) == "Metadata can have up to 50 keys, but you've set 51."

    long_key = "k" * 41
    err = _refused(client, call, params={**params, "metadata": {long_key: "v"}})
    assert err.param == f"metadata[{long_key}]"
    assert str(err.user_message).startswith(
        "Metadata keys can have up to 40 characters, but you passed in a key that is 41 "
        "characters.")

    err = _refused(client, call, params={**params, "metadata": {"note": "v" * 501}})
    assert err.param == "metadata[note]"
    assert str(err.user_message).startswith(
        "Metadata values can have up to 500 characters, but you passed in a value that is 501 "
        "characters.")


def test_metadata_at_the_limits_is_accepted(client):
    metadata = {**_keys(48), "k" * 40: "long key", "note": "v" * 500}
    cus = client.v1.customers.create(params={"metadata": metadata})
    assert cus.metadata.to_dict() == metadata
    assert len(cus.metadata.to_dict()) == 50


def test_unset_keys_do_not_count(client):
    cus = client.v1.customers.create(params={"metadata": {**_keys(50), "gone": ""}})
    assert len(cus.metadata.to_dict()) == 50


def test_an_update_counts_the_merged_metadata(client):
    cus = client.v1.customers.create(params={"metadata": _keys(30, "a")})
    err = _refused(client, "customers.update", cus.id, params={"metadata": _keys(21, "b")})
    assert err.param == "metadata"
    assert str(err.user_message) == "Metadata can have up to 50 keys, but you've set 51."
    assert len(client.v1.customers.retrieve(cus.id).metadata.to_dict()) == 30
    # Unsetting ten keys makes room for thirty new ones.
    unset = {f"a{i}": "" for i in range(10)}
    updated = client.v1.customers.update(cus.id, params={"metadata": {**unset, **_keys(30, "b")}})
    assert len(updated.metadata.to_dict()) == 50


def test_nested_metadata_is_checked_with_its_full_name(client):
    err = _refused(client, "payment_intents.create", params={**PI, "payment_method_data": {
        "type": "card", "card": {"token": "tok_visa"}, "metadata": {"note": "v" * 501}}})
    assert err.param == "payment_method_data[metadata][note]"
    err = _refused(client, "payment_intents.create", params={**PI, "payment_method_data": {
        "type": "card", "card": {"token": "tok_visa"}, "metadata": _keys(51)}})
    assert err.param == "payment_method_data[metadata]"


def test_metadata_values_must_be_strings_and_keys_plain(client):
    err = _refused(client, "customers.create", params={"metadata": {"a": {"b": "c"}}})
    assert err.param == "metadata[a]"
    err = _refused(client, "customers.create", params={"metadata": {"a[b": "c"}})
    assert "square brackets" in str(err.user_message)


# --- the walk over the SDK's classes --------------------------------------------------------------

def test_every_call_s_parameter_tree_can_be_walked():
    from stripe_emulator import api
    from stripe_emulator.params import _sdk_class, _shape

    seen: set = set()
    for _method, _pattern, operation, _fn in api.ROUTES:
        cls = _sdk_class(operation)
        assert cls is not None, operation
        todo = [_shape((cls,))]
        while todo:
            shape = todo.pop()
            if id(shape) in seen:
                continue
            seen.add(id(shape))
            todo.extend(child for child in shape.fields().values() if child is not None)
    pmd = _shape((_sdk_class("payment_intents.create"),)).fields()["payment_method_data"]
    assert {"type", "billing_details", "metadata", "card"} <= set(pmd.fields())
    assert pmd.fields()["metadata"] is None  # free-form: checked against the metadata limits
    assert {"number", "exp_month", "exp_year", "cvc", "token", "networks"} == set(
        pmd.fields()["card"].fields())
