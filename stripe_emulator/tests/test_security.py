"""Card numbers and CVCs never reach the state, the request log, the state file or responses."""

from __future__ import annotations

import json

import pytest
import stripe

from .helpers import card

NUMBERS = ["4242424242424242", "378282246310005", "4000000000009995", "4000002500003155"]
CVC = "987"


def _walk(value, path=""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, f"{path}.{k}")
            yield f"{path}.{k}", k
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk(v, f"{path}[{i}]")
    else:
        yield path, value


def _assert_clean(data, where):
    text = json.dumps(data)
    for number in NUMBERS:
        assert number not in text, f"card number in {where}"
    for path, value in _walk(data):
        assert value not in ("number", "cvc"), f"{where}: key {path}"
        assert value != CVC and value != int(CVC), f"{where}: CVC at {path}"


def test_no_card_data_anywhere(client, emulator, tmp_path):
    cus = client.v1.customers.create()
    for number in NUMBERS:
        data = card(number, cvc="9876" if number.startswith("37") else CVC)
        try:
            client.v1.payment_intents.create(params={
                "amount": 5000, "currency": "usd", "confirm": True, "customer": cus.id,
                "payment_method_data": data, "setup_future_usage": "off_session"})
        except stripe.CardError:
            pass
        try:
            client.v1.setup_intents.create(params={"confirm": True, "customer": cus.id,
                                                   "payment_method_data": data})
        except stripe.CardError:
            pass
        pm = client.v1.payment_methods.create(params=data)
        _assert_clean(pm.to_dict(), "a response")
    with pytest.raises(stripe.CardError) as info:
        client.v1.payment_methods.create(params=card("4242424242424241", cvc=CVC))
    assert "4242424242424241" not in info.value.http_body

    _assert_clean(emulator.state.dump(), "the state")
    _assert_clean(emulator.requests(), "the request log")
    path = tmp_path / "state.json"
    emulator.state.save_file(str(path))
    _assert_clean(json.loads(path.read_text()), "the state file")
    for entry in emulator.emulator.idempotency._entries.values():
        _assert_clean(json.loads(entry.body or b"{}"), "a saved idempotent response")
