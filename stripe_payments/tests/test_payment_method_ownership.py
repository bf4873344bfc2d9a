"""A card id is usable only by the student it was made for (issue: B paid with A's card id)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest
import stripe

from stripe_payments import gateway
from stripe_payments.models import Payment, PaymentMethodOwner, SavedPaymentMethod

from .conftest import ADD_URL, EXP_YEAR, PAY_URL, RETURN_URL, THREE_DS, VISA, card, stripe_calls
from .test_apis import _through_3ds_page

pytestmark = [pytest.mark.django_db, pytest.mark.emulator]


@pytest.fixture
def a_client(client_for, student):
    return client_for(student)


@pytest.fixture
def b_client(client_for, other_student):
    return client_for(other_student)


def _card_id_of_a(a_client, *, save: bool) -> str:
    response = a_client.post(ADD_URL, card(VISA, save_for_future=save), format="json")
    assert response.status_code == 200, response.content
    return response.json()["payment_method_id"]


@pytest.mark.parametrize("save", [False, True], ids=["unsaved", "saved"])
def test_another_students_card_id_is_404_with_no_stripe_call_and_no_payment(
        save, stripe_emulator, a_client, b_client, gig, other_student):
    pm_id = _card_id_of_a(a_client, save=save)
    stripe_emulator.clear_requests()

    response = b_client.post(PAY_URL, {"gig_id": gig.pk, "payment_method_id": pm_id, "save_card": True},
                             format="json")

    assert response.status_code == 404, response.content
    assert response.json()["error"]["code"] == "not_found"
    assert stripe_calls(stripe_emulator) == []
    assert not Payment.objects.filter(student=other_student).exists()
    assert not SavedPaymentMethod.objects.filter(user=other_student).exists()


def test_another_students_saved_card_is_404_as_a_saved_card_too(stripe_emulator, a_client, b_client, gig):
    pm_id = _card_id_of_a(a_client, save=True)
    stripe_emulator.clear_requests()
    response = b_client.post(PAY_URL, {"gig_id": gig.pk, "saved_payment_method_id": pm_id}, format="json")
    assert response.status_code == 404
    assert stripe_calls(stripe_emulator) == []


def test_the_student_who_made_an_unsaved_card_can_pay_with_it(stripe_emulator, a_client, gig, student):
    pm_id = _card_id_of_a(a_client, save=False)
    response = a_client.post(PAY_URL, {"gig_id": gig.pk, "payment_method_id": pm_id}, format="json")
    assert response.status_code == 200, response.content
    assert PaymentMethodOwner.objects.get(stripe_payment_method_id=pm_id).user == student


def _client_sdk_payment_method(emulator) -> str:
    """What Stripe's client SDKs do with a publishable key: create an unattached PaymentMethod."""
    sdk = stripe.StripeClient("sk_test_client_side", base_addresses={"api": emulator.base_url},
                              max_network_retries=0)
    pm = sdk.v1.payment_methods.create(params={
        "type": "card", "card": {"number": VISA, "exp_month": 12, "exp_year": EXP_YEAR, "cvc": "123"}})
    return pm.id


def test_a_client_created_card_is_claimed_by_its_first_user_and_refused_to_anyone_else(
        stripe_emulator, a_client, b_client, gig, student):
    pm_id = _client_sdk_payment_method(stripe_emulator)

    first = a_client.post(PAY_URL, {"gig_id": gig.pk, "payment_method_id": pm_id}, format="json")
    assert first.status_code == 200, first.content
    assert PaymentMethodOwner.objects.get(stripe_payment_method_id=pm_id).user == student

    stripe_emulator.clear_requests()
    second = b_client.post(PAY_URL, {"gig_id": gig.pk, "payment_method_id": pm_id}, format="json")
    assert second.status_code == 404
    assert stripe_calls(stripe_emulator) == []


def test_a_card_attached_at_stripe_to_another_customer_is_404_and_never_charged(
        stripe_emulator, b_client, gig, other_student):
    pm_id = _client_sdk_payment_method(stripe_emulator)
    sdk = stripe.StripeClient("sk_test_x", base_addresses={"api": stripe_emulator.base_url}, max_network_retries=0)
    stranger = sdk.v1.customers.create(params={"email": "stranger@example.test"})
    sdk.v1.payment_methods.attach(pm_id, params={"customer": stranger.id})
    stripe_emulator.clear_requests()

    response = b_client.post(PAY_URL, {"gig_id": gig.pk, "payment_method_id": pm_id}, format="json")

    assert response.status_code == 404
    assert stranger.id not in response.content.decode()
    assert [r["path"] for r in stripe_calls(stripe_emulator)] == [f"/v1/payment_methods/{pm_id}"]
    assert not Payment.objects.filter(student=other_student).exists()


def test_an_unknown_card_id_is_404_not_stripes_message(stripe_emulator, b_client, gig):
    response = b_client.post(PAY_URL, {"gig_id": gig.pk, "payment_method_id": "pm_doesnotexist"}, format="json")
    assert response.status_code == 404
    assert "pm_doesnotexist" not in response.content.decode()


def test_the_public_return_page_shows_the_card_id_only_to_the_browser_stripe_sent_back(
        stripe_emulator, a_client, api_client):
    error = a_client.post(ADD_URL, card(THREE_DS, save_for_future=False), format="json").json()["error"]
    back = _through_3ds_page(error["redirect_url"])
    query = dict(parse_qsl(urlsplit(back).query))
    assert query["setup_intent_client_secret"]

    anonymous = api_client.get(RETURN_URL, {"setup_intent": query["setup_intent"], "format": "json"})
    assert anonymous.status_code == 200 and anonymous.json()["success"] is True
    assert anonymous.json()["payment_method_id"] is None

    wrong = api_client.get(RETURN_URL, {"setup_intent": query["setup_intent"], "format": "json",
                                        "setup_intent_client_secret": "seti_x_secret_guess"})
    assert wrong.json()["payment_method_id"] is None

    redirected = api_client.get(back, HTTP_ACCEPT="application/json")
    assert redirected.json()["payment_method_id"].startswith("pm_")


def test_no_stripe_message_that_names_an_object_reaches_a_client():
    message = "The payment method pm_1AbC belongs to customer cus_9XyZ; see pi_3Q_secret_abc and seti_1Z."
    scrubbed = gateway.scrub_ids(message)
    assert "cus_" not in scrubbed and "pm_1" not in scrubbed and "pi_3" not in scrubbed and "seti_" not in scrubbed
    assert scrubbed.startswith("The payment method [id] belongs to customer [id]")

    exc = stripe.InvalidRequestError("No such customer: 'cus_SECRET1'", param="customer", code="resource_missing")
    mapped = gateway._map_error(exc)
    assert "cus_SECRET1" not in mapped.message and "cus_SECRET1" not in str(mapped.payload())
