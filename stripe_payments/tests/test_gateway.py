"""The Stripe boundary, with Stripe's HTTP API mocked by ``responses``: request parameters,
idempotency keys, timeouts, retries, the error mapping, test-mode cards and webhook signatures."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from urllib.parse import parse_qsl

import pytest
import requests
import responses
import stripe

from stripe_payments import gateway
from stripe_payments.cards import CardInput
from stripe_payments.stripe_test_cards import TEST_PAYMENT_METHODS

from .conftest import AMEX, EXP_YEAR, VISA

STRIPE = "https://api.stripe.com"
FAKE = "https://stripe.example.test"  # not Stripe: raw card data travels as is (like the emulator)


@pytest.fixture
def stripe_at(settings, monkeypatch):
    """Point the gateway at ``base`` with ``key``; no back-off sleeps between retries."""
    monkeypatch.setattr(gateway, "RETRY_BACKOFF_SECONDS", (0.0,))
    settings.STRIPE_MAX_NETWORK_RETRIES = 2
    settings.STRIPE_CONNECT_TIMEOUT = 1.5
    settings.STRIPE_READ_TIMEOUT = 4.0
    settings.STRIPE_ALLOW_RAW_CARD_DATA = False

    def configure(base: str = FAKE, key: str = "sk_test_unit"):
        settings.STRIPE_API_BASE = base
        settings.STRIPE_SECRET_KEY = key
        return base

    configure()
    return configure


@pytest.fixture
def mocked():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def _card(number: str = VISA, cvc: str = "123") -> CardInput:
    return CardInput(number=number, exp_month=12, exp_year=EXP_YEAR, cvc=cvc)


def _form(call) -> dict[str, str]:
    return dict(parse_qsl(call.request.body or ""))


def _raw_body(call) -> str:
    body = call.request.body or ""
    return body.decode() if isinstance(body, bytes) else body


def _pm(pm_id: str = "pm_1", number_last4: str = "4242", brand: str = "visa") -> dict:
    return {"id": pm_id, "object": "payment_method", "customer": "cus_1",
            "card": {"brand": brand, "last4": number_last4, "exp_month": 12, "exp_year": EXP_YEAR,
                     "fingerprint": "fp_abc"}}


def _pi(status: str = "succeeded", **extra) -> dict:
    return {"id": "pi_1", "object": "payment_intent", "status": status, "amount": 5000, "amount_received": 5000,
            "currency": "usd", "client_secret": "pi_1_secret_x", "customer": "cus_1", "payment_method": _pm(),
            "latest_charge": "ch_1", "next_action": None, "last_payment_error": None,
            "metadata": {"payment_id": "7"}, **extra}


def _si(status: str = "succeeded", **extra) -> dict:
    return {"id": "seti_1", "object": "setup_intent", "status": status, "client_secret": "seti_1_secret_x",
            "customer": "cus_1", "payment_method": _pm(), "next_action": None, "last_setup_error": None,
            "metadata": {}, **extra}


def _stripe_error(status: int, type_: str, message: str, **fields) -> dict:
    return {"status": status, "json": {"error": {"type": type_, "message": message, **fields}}}


def _create_pi(**overrides) -> gateway.IntentResult:
    kwargs = {"amount_cents": 5000, "idempotency_key": "lf-payment-7-create", "metadata": {"payment_id": "7"},
              "card": _card(), "return_url": "https://app.example.test/stripe-payments/payment-return/"}
    kwargs.update(overrides)
    return gateway.payment_intent_create(**kwargs)


# --- request parameters --------------------------------------------------------------------------------
def test_new_card_payment_sends_one_confirmed_usd_card_intent(stripe_at, mocked):
    mocked.post(f"{FAKE}/v1/payment_intents", json=_pi())

    result = _create_pi(customer_id="cus_1", save_card=True)

    form = _form(mocked.calls[0])
    assert form["amount"] == "5000"
    assert form["currency"] == "usd"
    assert form["allowed_payment_method_types[0]"] == "card"
    assert form["confirm"] == "true"
    assert form["setup_future_usage"] == "off_session"
    assert form["return_url"] == "https://app.example.test/stripe-payments/payment-return/"
    assert form["expand[0]"] == "payment_method"
    assert form["customer"] == "cus_1"
    assert form["metadata[payment_id]"] == "7"
    assert form["payment_method_data[type]"] == "card"
    assert form["payment_method_data[card][number]"] == VISA
    assert "off_session" not in form
    headers = mocked.calls[0].request.headers
    assert headers["Idempotency-Key"] == "lf-payment-7-create"
    assert headers["Authorization"] == "Bearer sk_test_unit"
    assert headers["Stripe-Version"] == stripe.api_version
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert result == gateway.IntentResult(
        id="pi_1", status="succeeded", amount=5000, amount_received=5000, currency="usd",
        client_secret="pi_1_secret_x", customer_id="cus_1",
        payment_method=gateway.PaymentMethodInfo("pm_1", "cus_1", gateway.CardDetails("visa", "4242", 12, EXP_YEAR,
                                                                                      "fp_abc")),
        latest_charge_id="ch_1", redirect_url=None, last_error=None, metadata={"payment_id": "7"})


def test_saved_card_payment_is_off_session_without_return_url(stripe_at, mocked):
    mocked.post(f"{FAKE}/v1/payment_intents", json=_pi())

    _create_pi(card=None, payment_method_id="pm_saved", customer_id="cus_1", off_session=True)

    form = _form(mocked.calls[0])
    assert form["payment_method"] == "pm_saved"
    assert form["off_session"] == "true" and form["confirm"] == "true"
    assert "return_url" not in form and "setup_future_usage" not in form
    assert not any(k.startswith("payment_method_data") for k in form)


def test_unconfirmed_intent_for_client_sdks_sends_no_confirm(stripe_at, mocked):
    mocked.post(f"{FAKE}/v1/payment_intents", json=_pi("requires_payment_method", payment_method=None))

    result = _create_pi(card=None, confirm=False)

    form = _form(mocked.calls[0])
    assert "confirm" not in form and "return_url" not in form and "expand[0]" not in form
    assert result.status == "requires_payment_method" and result.payment_method is None


def test_setup_intent_is_created_confirmed_off_session_with_return_url(stripe_at, mocked):
    mocked.post(f"{FAKE}/v1/setup_intents", json=_si())

    result = gateway.setup_intent_create(customer_id="cus_1", card=_card(), return_url="https://app/return",
                                         idempotency_key="lf-setup-1-x", metadata={"user_id": "1"})

    form = _form(mocked.calls[0])
    assert form["customer"] == "cus_1" and form["confirm"] == "true" and form["usage"] == "off_session"
    assert form["allowed_payment_method_types[0]"] == "card" and form["return_url"] == "https://app/return"
    assert form["expand[0]"] == "payment_method"
    assert mocked.calls[0].request.headers["Idempotency-Key"] == "lf-setup-1-x"
    assert result.payment_method.card.fingerprint == "fp_abc"


def test_requires_action_intent_carries_the_redirect_url(stripe_at, mocked):
    action = {"type": "redirect_to_url", "redirect_to_url": {"url": "https://hooks.stripe.com/3ds", "return_url": "x"}}
    mocked.post(f"{FAKE}/v1/payment_intents", json=_pi("requires_action", next_action=action))

    result = _create_pi()

    assert result.status == "requires_action" and result.redirect_url == "https://hooks.stripe.com/3ds"


def test_failed_intent_carries_stripes_code_decline_code_and_message(stripe_at, mocked):
    error = {"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds",
             "message": "Your card has insufficient funds."}
    mocked.get(f"{FAKE}/v1/payment_intents/pi_1", json=_pi("requires_payment_method", last_payment_error=error))

    result = gateway.payment_intent_retrieve("pi_1")

    assert result.last_error == gateway.CardFailure("card_declined", "insufficient_funds",
                                                    "Your card has insufficient funds.")


WRITES = [
    ("customers.create", "POST", "/v1/customers", {"id": "cus_1", "object": "customer"},
     lambda: gateway.customer_create(email="s@example.test", user_id=1, idempotency_key="K")),
    ("setup_intents.create", "POST", "/v1/setup_intents", _si(),
     lambda: gateway.setup_intent_create(customer_id="cus_1", card=_card(), return_url="https://r",
                                         idempotency_key="K")),
    ("payment_intents.create", "POST", "/v1/payment_intents", _pi(),
     lambda: _create_pi(idempotency_key="K")),
    ("payment_intents.cancel", "POST", "/v1/payment_intents/pi_1/cancel", _pi("canceled"),
     lambda: gateway.payment_intent_cancel("pi_1", idempotency_key="K")),
    ("payment_methods.detach", "POST", "/v1/payment_methods/pm_1/detach", _pm(),
     lambda: gateway.payment_method_detach("pm_1", idempotency_key="K")),
    ("refunds.create", "POST", "/v1/refunds",
     {"id": "re_1", "object": "refund", "status": "succeeded", "amount": 100, "payment_intent": "pi_1",
      "charge": "ch_1", "metadata": {}},
     lambda: gateway.refund_create(payment_intent_id="pi_1", amount_cents=100, idempotency_key="K", metadata={})),
]


@pytest.mark.parametrize("name,method,path,answer,call", WRITES, ids=[w[0] for w in WRITES])
def test_every_write_sends_the_idempotency_key_and_retries_with_the_same_one(stripe_at, mocked, name, method,
                                                                             path, answer, call):
    mocked.add(method, f"{FAKE}{path}", body=requests.exceptions.ConnectionError("reset"))
    mocked.add(method, f"{FAKE}{path}", status=500, json={"error": {"type": "api_error", "message": "boom"}})
    mocked.add(method, f"{FAKE}{path}", json=answer)

    call()

    assert len(mocked.calls) == 3
    assert [c.request.headers.get("Idempotency-Key") for c in mocked.calls] == ["K", "K", "K"]


# --- timeouts ---------------------------------------------------------------------------------------------
def test_client_uses_short_connect_and_read_timeouts_from_settings(stripe_at, mocked, settings):
    mocked.get(f"{FAKE}/v1/payment_intents/pi_1", json=_pi())

    gateway.payment_intent_retrieve("pi_1")

    assert mocked.calls[0].request.req_kwargs["timeout"] == (1.5, 4.0)
    http_client = gateway._client()._requestor._client
    assert isinstance(http_client, stripe.RequestsClient) and http_client._timeout == (1.5, 4.0)

    settings.STRIPE_READ_TIMEOUT = 0.5  # a changed setting gives a new client
    gateway.payment_intent_retrieve("pi_1")
    assert mocked.calls[1].request.req_kwargs["timeout"] == (1.5, 0.5)


def test_client_points_at_stripe_api_base(stripe_at, mocked):
    stripe_at("https://elsewhere.example.test")
    mocked.get("https://elsewhere.example.test/v1/payment_intents/pi_1", json=_pi())

    assert gateway.payment_intent_retrieve("pi_1").id == "pi_1"


def test_empty_secret_key_is_503_without_a_call(stripe_at, mocked):
    stripe_at(key="")

    with pytest.raises(gateway.ProviderUnavailable):
        gateway.payment_intent_retrieve("pi_1")
    assert len(mocked.calls) == 0


# --- retries and the error mapping ---------------------------------------------------------------------
def test_read_timeout_is_retried_then_answers_504(stripe_at, mocked):
    for _ in range(3):
        mocked.post(f"{FAKE}/v1/payment_intents", body=requests.exceptions.ReadTimeout("slow"))

    with pytest.raises(gateway.ProviderTimeout) as caught:
        _create_pi()

    assert caught.value.status_code == 504 and caught.value.code == "payment_provider_timeout"
    assert len(mocked.calls) == 3
    assert {c.request.headers["Idempotency-Key"] for c in mocked.calls} == {"lf-payment-7-create"}


def test_timeout_then_success_succeeds_with_the_same_key(stripe_at, mocked):
    mocked.post(f"{FAKE}/v1/payment_intents", body=requests.exceptions.ReadTimeout("slow"))
    mocked.post(f"{FAKE}/v1/payment_intents", json=_pi())

    assert _create_pi().status == "succeeded"
    assert [c.request.headers["Idempotency-Key"] for c in mocked.calls] == ["lf-payment-7-create"] * 2


@pytest.mark.parametrize("exc", [requests.exceptions.ConnectionError("refused"),
                                 requests.exceptions.ConnectTimeout("no route")])
def test_connection_failure_is_retried_then_answers_503(stripe_at, mocked, exc):
    for _ in range(3):
        mocked.post(f"{FAKE}/v1/payment_intents", body=exc)

    with pytest.raises(gateway.ProviderUnavailable) as caught:
        _create_pi()

    assert caught.value.status_code == 503 and caught.value.code == "payment_provider_unavailable"
    assert caught.value.headers["Retry-After"]
    assert len(mocked.calls) == 3


def test_500_is_retried_then_answers_502(stripe_at, mocked):
    for _ in range(3):
        mocked.post(f"{FAKE}/v1/payment_intents", **_stripe_error(500, "api_error", "boom"))

    with pytest.raises(gateway.ProviderError) as caught:
        _create_pi()

    assert caught.value.status_code == 502 and caught.value.code == "payment_provider_error"
    assert len(mocked.calls) == 3


def test_409_in_use_key_is_retried(stripe_at, mocked):
    mocked.post(f"{FAKE}/v1/payment_intents", **_stripe_error(409, "invalid_request_error", "in use",
                                                              code="idempotency_key_in_use"))
    mocked.post(f"{FAKE}/v1/payment_intents", json=_pi())

    assert _create_pi().status == "succeeded"
    assert len(mocked.calls) == 2


def test_no_retry_when_retries_are_off(stripe_at, mocked, settings):
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    mocked.post(f"{FAKE}/v1/payment_intents", **_stripe_error(500, "api_error", "boom"))

    with pytest.raises(gateway.ProviderError):
        _create_pi()
    assert len(mocked.calls) == 1


def test_card_error_402_maps_to_card_error_with_code_and_decline_code(stripe_at, mocked):
    mocked.post(f"{FAKE}/v1/payment_intents", **_stripe_error(
        402, "card_error", "Your card has insufficient funds.", code="card_declined",
        decline_code="insufficient_funds", payment_intent={"id": "pi_9", "object": "payment_intent",
                                                           "status": "requires_payment_method"}))

    with pytest.raises(gateway.CardError) as caught:
        _create_pi()

    error = caught.value
    assert (error.status_code, error.code, error.decline_code) == (402, "card_declined", "insufficient_funds")
    assert error.message == "Your card has insufficient funds."
    assert error.payment_intent_id == "pi_9"
    assert error.payload()["error"]["decline_code"] == "insufficient_funds"
    assert len(mocked.calls) == 1  # a 4xx is never retried


def test_rate_limit_429_maps_to_503_with_retry_after_and_no_retry(stripe_at, mocked):
    mocked.post(f"{FAKE}/v1/payment_intents", **_stripe_error(429, "invalid_request_error", "slow down",
                                                              code="rate_limit"))

    with pytest.raises(gateway.ProviderUnavailable) as caught:
        _create_pi()

    assert caught.value.status_code == 503
    assert int(caught.value.headers["Retry-After"]) > 0
    assert len(mocked.calls) == 1


def test_invalid_request_400_maps_to_provider_invalid_request_without_retry(stripe_at, mocked):
    mocked.get(f"{FAKE}/v1/payment_intents/pi_x", **_stripe_error(
        404, "invalid_request_error", "No such payment_intent: 'pi_x'", code="resource_missing", param="intent"))
    mocked.post(f"{FAKE}/v1/refunds", **_stripe_error(
        400, "invalid_request_error", "Refund amount is greater than unrefunded amount.",
        code="amount_too_large", param="amount"))

    with pytest.raises(gateway.ProviderInvalidRequest) as missing:
        gateway.payment_intent_retrieve("pi_x")
    with pytest.raises(gateway.ProviderInvalidRequest) as too_large:
        gateway.refund_create(payment_intent_id="pi_1", amount_cents=9999, idempotency_key="K", metadata={})

    assert missing.value.status_code == 400 and missing.value.stripe_code == "resource_missing"
    assert too_large.value.code == "invalid_request" and too_large.value.param == "amount"
    assert too_large.value.fields == {"amount": ["Refund amount is greater than unrefunded amount."]}
    assert len(mocked.calls) == 2


def test_authentication_error_401_maps_to_502(stripe_at, mocked):
    mocked.get(f"{FAKE}/v1/payment_intents/pi_1", **_stripe_error(401, "invalid_request_error", "Invalid API Key"))

    with pytest.raises(gateway.ProviderError) as caught:
        gateway.payment_intent_retrieve("pi_1")
    assert caught.value.status_code == 502 and len(mocked.calls) == 1


# --- card data against real Stripe ----------------------------------------------------------------------
CONTRACT_TEST_CARDS = {
    "4242424242424242": "pm_card_visa",
    "5555555555554444": "pm_card_mastercard",
    "378282246310005": "pm_card_amex",
    "4000000000000002": "pm_card_visa_chargeDeclined",
    "4000000000009995": "pm_card_visa_chargeDeclinedInsufficientFunds",
    "4000000000009987": "pm_card_visa_chargeDeclinedLostCard",
    "4000002500003155": "pm_card_authenticationRequiredOnSetup",
    "4000000000000341": "pm_card_chargeCustomerFail",
}


def test_the_mapping_covers_exactly_the_contracts_test_cards():
    assert TEST_PAYMENT_METHODS == CONTRACT_TEST_CARDS


@pytest.mark.parametrize("number,pm_id", sorted(CONTRACT_TEST_CARDS.items()))
def test_test_key_against_stripe_sends_test_payment_methods_not_card_numbers(stripe_at, mocked, number, pm_id):
    stripe_at(STRIPE, "sk_test_unit")
    mocked.post(f"{STRIPE}/v1/payment_intents", json=_pi())
    mocked.post(f"{STRIPE}/v1/setup_intents", json=_si())
    cvc = "4321" if number == AMEX else "987"

    _create_pi(card=_card(number, cvc))
    gateway.setup_intent_create(customer_id="cus_1", card=_card(number, cvc), return_url="https://r",
                                idempotency_key="K")

    for call in mocked.calls:
        assert _form(call)["payment_method"] == pm_id
        body = _raw_body(call)
        assert number not in body and f"={cvc}" not in body
        assert "payment_method_data" not in body


def test_test_key_against_stripe_refuses_other_numbers_with_a_clear_400(stripe_at, mocked):
    stripe_at(STRIPE, "sk_test_unit")

    with pytest.raises(gateway.ProviderInvalidRequest) as caught:
        _create_pi(card=_card("4000056655665556"))

    assert caught.value.status_code == 400 and caught.value.param == "card_number"
    assert "test cards" in caught.value.message
    assert len(mocked.calls) == 0


def test_live_key_refuses_raw_card_numbers_without_raw_card_data_apis(stripe_at, mocked):
    stripe_at(STRIPE, "sk_live_unit")

    with pytest.raises(gateway.ProviderInvalidRequest) as caught:
        _create_pi(card=_card())

    assert "payment_method_id" in caught.value.message
    assert len(mocked.calls) == 0


def test_live_key_with_raw_card_data_allowed_sends_the_card(stripe_at, mocked, settings):
    stripe_at(STRIPE, "sk_live_unit")
    settings.STRIPE_ALLOW_RAW_CARD_DATA = True
    mocked.post(f"{STRIPE}/v1/payment_intents", json=_pi())

    _create_pi(card=_card())

    assert _form(mocked.calls[0])["payment_method_data[card][number]"] == VISA


def test_live_key_with_a_client_payment_method_id_is_accepted(stripe_at, mocked):
    stripe_at(STRIPE, "sk_live_unit")
    mocked.post(f"{STRIPE}/v1/payment_intents", json=_pi())

    _create_pi(card=None, payment_method_id="pm_from_stripe_js")

    assert _form(mocked.calls[0])["payment_method"] == "pm_from_stripe_js"


# --- webhook signatures ---------------------------------------------------------------------------------
SECRET = "whsec_test_linguaflex"
EVENT = {"id": "evt_1", "object": "event", "type": "payment_intent.succeeded", "livemode": False,
         "created": 1700000000, "data": {"object": {"id": "pi_1", "object": "payment_intent"}}}


def _signed(payload: bytes, *, secret: str = SECRET, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},{stripe.WebhookSignature.EXPECTED_SCHEME}={signature}"


def test_webhook_with_a_good_signature_is_read(settings):
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    payload = json.dumps(EVENT).encode()

    event = gateway.webhook_event_verify(payload, _signed(payload))

    assert event == gateway.EventInfo(id="evt_1", type="payment_intent.succeeded", object_id="pi_1",
                                      object_type="payment_intent", livemode=False, created=1700000000,
                                      payment_intent_id="pi_1")


def test_webhook_event_of_a_charge_names_its_payment_intent(settings):
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    payload = json.dumps({**EVENT, "type": "charge.refunded",
                          "data": {"object": {"id": "ch_1", "object": "charge", "payment_intent": "pi_7"}}}).encode()

    assert gateway.webhook_event_verify(payload, _signed(payload)).payment_intent_id == "pi_7"


@pytest.mark.parametrize("header", [
    pytest.param(lambda p: _signed(p, secret="whsec_other"), id="wrong-secret"),
    pytest.param(lambda p: _signed(p + b" "), id="other-body"),
    pytest.param(lambda p: _signed(p, timestamp=int(time.time()) - 301), id="stale"),
    pytest.param(lambda p: None, id="missing"),
    pytest.param(lambda p: "", id="empty"),
    pytest.param(lambda p: "garbage", id="malformed"),
])
def test_webhook_with_a_bad_missing_or_stale_signature_is_refused(settings, header):
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    payload = json.dumps(EVENT).encode()

    with pytest.raises(gateway.WebhookSignatureInvalid) as caught:
        gateway.webhook_event_verify(payload, header(payload))
    assert caught.value.status_code == 400


def test_webhook_signed_just_inside_the_tolerance_is_accepted(settings):
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    payload = json.dumps(EVENT).encode()

    assert gateway.webhook_event_verify(payload, _signed(payload, timestamp=int(time.time()) - 290)).id == "evt_1"


def test_webhook_is_refused_when_no_secret_is_configured(settings):
    settings.STRIPE_WEBHOOK_SECRET = ""
    payload = json.dumps(EVENT).encode()

    with pytest.raises(gateway.WebhookSignatureInvalid):
        gateway.webhook_event_verify(payload, _signed(payload, secret=""))
