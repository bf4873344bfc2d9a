"""3-D Secure's two next-action shapes (issue 12): ``redirect_to_url`` (a page to open) and
``use_stripe_sdk`` (Stripe's answer to a confirm without ``return_url``, completed by Stripe's
client SDKs with the client secret). The gateway reads a redirect URL from the first only; the
402 ``authentication_required`` then carries ``client_secret`` and no ``redirect_url`` (the error
envelope leaves out null fields), and the payment (or card) settles once the authentication is
completed."""

from __future__ import annotations

import pytest
import requests
from stripe._setup_intent_service import SetupIntentService

from bookings.models import Booking
from stripe_payments import gateway
from stripe_payments.models import Payment, PaymentStatus, SavedPaymentMethod
from stripe_payments.services import payments as payment_services

from .conftest import CONFIRM_URL, CREATE_INTENT_URL, RETURN_URL, THREE_DS, client_sdk, error_of

SDK_ACTION = {"type": "use_stripe_sdk",
              "use_stripe_sdk": {"type": "three_d_secure_redirect", "stripe_js": "https://hooks.stripe.com/x",
                                 "source": "src_1"}}
REDIRECT_ACTION = {"type": "redirect_to_url",
                   "redirect_to_url": {"url": "https://hooks.stripe.com/3ds", "return_url": "https://app/r"}}


def _pi(next_action) -> dict:
    return {"id": "pi_1", "object": "payment_intent", "status": "requires_action", "amount": 5000,
            "amount_received": 0, "currency": "usd", "client_secret": "pi_1_secret_x", "customer": None,
            "payment_method": "pm_1", "latest_charge": None, "next_action": next_action,
            "last_payment_error": None, "metadata": {}}


def _si(next_action) -> dict:
    return {"id": "seti_1", "object": "setup_intent", "status": "requires_action",
            "client_secret": "seti_1_secret_x", "customer": "cus_1", "payment_method": "pm_1",
            "next_action": next_action, "last_setup_error": None, "metadata": {}}


# --- the gateway's parsing (unit) ----------------------------------------------------------------------------
@pytest.mark.parametrize("convert, body", [(gateway._intent, _pi), (gateway._setup, _si)])
def test_redirect_to_url_gives_its_url(convert, body):
    result = convert(body(REDIRECT_ACTION))
    assert result.redirect_url == "https://hooks.stripe.com/3ds"
    assert result.client_secret.endswith("_secret_x")


@pytest.mark.parametrize("convert, body", [(gateway._intent, _pi), (gateway._setup, _si)])
@pytest.mark.parametrize("action", [
    SDK_ACTION,
    {"type": "use_stripe_sdk", "use_stripe_sdk": {}},  # opaque: any content, even none
    {"type": "use_stripe_sdk"},
    {"type": "redirect_to_url", "redirect_to_url": None},  # malformed: no URL, no crash
    {"type": "redirect_to_url", "redirect_to_url": {"url": None, "return_url": None}},
    {"type": "verify_with_microdeposits", "verify_with_microdeposits": {}},
    {},
    None,
])
def test_any_other_next_action_gives_no_redirect_url_and_keeps_the_client_secret(convert, body, action):
    result = convert(body(action))
    assert result.status == "requires_action"
    assert result.redirect_url is None
    assert result.client_secret.endswith("_secret_x")


# --- end to end, with the emulator answering use_stripe_sdk --------------------------------------------------
def _complete_on_the_page(stripe_js: str) -> None:
    """What Stripe's SDK does with the hash: the emulator's 3-D Secure page, its complete button.
    No return_url: the page answers its result instead of redirecting."""
    assert requests.get(stripe_js, timeout=5).status_code == 200
    assert requests.post(f"{stripe_js}/complete", allow_redirects=False, timeout=5).status_code == 200


def _sdk_page(emulator, intent_id: str, kind: str = "payment_intents") -> str:
    sdk = client_sdk(emulator)
    intent = (sdk.v1.payment_intents if kind == "payment_intents" else sdk.v1.setup_intents).retrieve(intent_id)
    assert intent.next_action.type == "use_stripe_sdk"
    return intent.next_action.use_stripe_sdk["stripe_js"]


def _assert_sdk_402(response, id_key: str) -> dict:
    assert response.status_code == 402, response.content
    error = error_of(response)
    assert error["code"] == "authentication_required"
    assert error["client_secret"].startswith(error[id_key] + "_secret_")
    assert "redirect_url" not in error  # null: left out of the envelope
    assert "client_secret" in error["message"] and "redirect_url" not in error["message"]
    return error


def test_client_confirmed_3ds_payment_answers_the_client_secret_then_settles(stripe_emulator, student_client, gig):
    """The client-side flow: Stripe's SDK confirms without a return_url, so use_stripe_sdk."""
    created = student_client.post(CREATE_INTENT_URL, {"gig_id": gig.pk}, format="json").json()
    pi_id = created["payment_intent_id"]
    client_sdk(stripe_emulator).v1.payment_intents.confirm(
        pi_id, params={"payment_method": "pm_card_authenticationRequired"})

    error = _assert_sdk_402(student_client.post(CONFIRM_URL, {"payment_intent_id": pi_id}, format="json"),
                            "payment_intent_id")
    assert error["payment_intent_id"] == pi_id and error["payment_id"] == created["payment_id"]
    assert error["client_secret"] == created["client_secret"]
    assert Payment.objects.get(pk=created["payment_id"]).status == PaymentStatus.REQUIRES_ACTION
    assert not Booking.objects.exists()

    _complete_on_the_page(_sdk_page(stripe_emulator, pi_id))
    confirmed = student_client.post(CONFIRM_URL, {"payment_intent_id": pi_id}, format="json")

    assert confirmed.status_code == 200, confirmed.content
    assert confirmed.json()["status"] == "succeeded"
    assert Booking.objects.get(payment_id=created["payment_id"]).pk == confirmed.json()["booking_id"]


def test_server_confirmed_payment_without_a_return_url_answers_the_client_secret(stripe_emulator, pay,
                                                                                 student_client, monkeypatch):
    """process-payment made to send no return_url: the 402 carries no bogus redirect."""
    monkeypatch.setattr(payment_services, "return_url", lambda: "")

    error = _assert_sdk_402(pay(THREE_DS), "payment_intent_id")
    payment = Payment.objects.get(pk=error["payment_id"])
    assert payment.status == PaymentStatus.REQUIRES_ACTION

    _complete_on_the_page(_sdk_page(stripe_emulator, error["payment_intent_id"]))
    confirmed = student_client.post(CONFIRM_URL, {"payment_intent_id": error["payment_intent_id"]}, format="json")

    assert confirmed.status_code == 200, confirmed.content
    assert confirmed.json()["status"] == "succeeded" and confirmed.json()["booking_id"]
    assert Booking.objects.filter(payment=payment).count() == 1


def test_card_setup_without_a_return_url_answers_the_client_secret_then_saves(stripe_emulator, add_card,
                                                                              api_client, student, monkeypatch):
    """add-payment-method with the gateway's return_url dropped: use_stripe_sdk for a SetupIntent."""
    create = SetupIntentService.create

    def without_return_url(self, params=None, options=None):
        return create(self, {k: v for k, v in (params or {}).items() if k != "return_url"}, options)

    monkeypatch.setattr(SetupIntentService, "create", without_return_url)

    error = _assert_sdk_402(add_card(THREE_DS), "setup_intent_id")
    assert not SavedPaymentMethod.objects.exists()

    _complete_on_the_page(_sdk_page(stripe_emulator, error["setup_intent_id"], "setup_intents"))
    page = api_client.get(RETURN_URL, {"setup_intent": error["setup_intent_id"],
                                       "setup_intent_client_secret": error["client_secret"]},
                          HTTP_ACCEPT="application/json")

    assert page.status_code == 200 and page.json()["success"] is True, page.content
    saved = SavedPaymentMethod.objects.get(user=student)
    assert page.json()["payment_method_id"] == saved.stripe_payment_method_id

