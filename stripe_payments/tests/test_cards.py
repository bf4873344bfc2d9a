"""Cards (services.cards and the card endpoints): adding and verifying a card (3-D Secure included),
saved cards once per fingerprint and the duplicate detached at Stripe, default and delete, and whose
card a PaymentMethod id is, against the in-process Stripe emulator."""

from __future__ import annotations

import threading
from urllib.parse import parse_qsl, urlsplit

import pytest
import stripe
from django.db import connection

from bookings.models import Booking
from stripe_payments import gateway
from stripe_payments.models import (
    Payment,
    PaymentMethodOwner,
    PaymentStatus,
    SavedPaymentMethod,
    StripeCustomer,
)
from stripe_payments.services import cards

from .conftest import (
    ADD_URL,
    AMEX,
    BAD_LUHN,
    CHARGE_FAIL,
    DECLINED,
    EXP_YEAR,
    INSUFFICIENT,
    LOST,
    MASTERCARD,
    METHODS_URL,
    PAY_URL,
    RETURN_URL,
    THREE_DS,
    VISA,
    card,
    deliver,
    error_of,
    only_event,
    stripe_calls,
    through_3ds_page,
)

pytestmark = [pytest.mark.django_db, pytest.mark.emulator]


# --- adding a card: the contract's test cards ----------------------------------------------------------------
ADD_TABLE = [
    (VISA, 200, None, None, "visa"),
    (DECLINED, 402, "card_declined", "generic_decline", None),
    (INSUFFICIENT, 402, "card_declined", "insufficient_funds", None),
    (LOST, 402, "card_declined", "lost_card", None),
    (MASTERCARD, 200, None, None, "mastercard"),
    (AMEX, 200, None, None, "amex"),
    (THREE_DS, 402, "authentication_required", None, None),
    (CHARGE_FAIL, 200, None, None, "visa"),
    (BAD_LUHN, 400, "invalid_request", None, None),
]


@pytest.mark.parametrize("number,status,code,decline_code,brand", ADD_TABLE)
def test_add_payment_method_answers_each_contract_test_card(stripe_emulator, add_card, student, number, status,
                                                            code, decline_code, brand):
    response = add_card(number)

    assert response.status_code == status, response.content
    if status == 200:
        body = response.json()
        assert body["success"] is True and body["saved"] is True
        assert body["card_brand"] == brand and body["card_last4"] == number[-4:]
        assert body["exp_month"] == 12 and body["exp_year"] == EXP_YEAR
        saved = SavedPaymentMethod.objects.get(user=student)
        assert saved.stripe_payment_method_id == body["payment_method_id"]
        assert (saved.brand, saved.last4, saved.is_default) == (brand, number[-4:], True)
        return
    error = error_of(response)
    assert error["code"] == code
    assert error.get("decline_code") == decline_code
    assert not SavedPaymentMethod.objects.exists()
    if status == 400:
        assert "card_number" in error["fields"]
        assert stripe_calls(stripe_emulator) == []
    elif code == "authentication_required":
        assert error["setup_intent_id"] and error["client_secret"] and error["redirect_url"]


# --- 3-D Secure of a card ------------------------------------------------------------------------------------
def test_3ds_add_payment_method_saves_the_card_after_authentication_then_pays_off_session(
        stripe_emulator, add_card, pay, api_client, student):
    error = error_of(add_card(THREE_DS))
    assert error["code"] == "authentication_required"
    assert not SavedPaymentMethod.objects.exists()

    page = api_client.get(through_3ds_page(error["redirect_url"]), HTTP_ACCEPT="application/json")

    assert page.status_code == 200 and page.json()["success"] is True
    saved = SavedPaymentMethod.objects.get(user=student)
    assert page.json()["payment_method_id"] == saved.stripe_payment_method_id
    assert (saved.brand, saved.last4) == ("visa", "3155")

    stripe_emulator.clear_requests()
    response = pay(None, saved_payment_method_id=saved.stripe_payment_method_id)

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "succeeded" and response.json()["booking_id"]
    assert response.json()["payment_method_saved"] is True
    assert len(stripe_calls(stripe_emulator)) == 1


def test_3ds_card_verified_without_saving_returns_its_id_after_authentication(stripe_emulator, add_card, api_client):
    error = error_of(add_card(THREE_DS, save_for_future=False))
    assert error["code"] == "authentication_required"

    page = api_client.get(through_3ds_page(error["redirect_url"]), HTTP_ACCEPT="application/json")

    body = page.json()
    assert page.status_code == 200 and body["success"] is True and body["saved"] is False
    assert body["payment_method_id"].startswith("pm_")
    assert not SavedPaymentMethod.objects.exists()


def test_3ds_add_payment_method_with_failed_authentication_saves_nothing(stripe_emulator, add_card, api_client):
    error = error_of(add_card(THREE_DS))

    page = api_client.get(through_3ds_page(error["redirect_url"], succeed=False), HTTP_ACCEPT="application/json")

    assert page.status_code == 200 and page.json()["success"] is False
    assert not SavedPaymentMethod.objects.exists()


def test_a_late_setup_intent_event_does_not_bring_back_a_deleted_card(client, client_for, student, stripe_emulator):
    student_client = client_for(student)
    pm_id = student_client.post(ADD_URL, card(VISA), format="json").json()["payment_method_id"]
    assert student_client.delete(f"/stripe-payments/payment-methods/{pm_id}/delete/").status_code == 200

    deliver(client, only_event(stripe_emulator, "setup_intent.succeeded"))

    assert not SavedPaymentMethod.objects.exists()


# --- saved cards, once per fingerprint -----------------------------------------------------------------------
def test_saved_card_pays_and_a_charge_fail_card_is_declined_later(stripe_emulator, add_card, pay, student):
    added = add_card(CHARGE_FAIL)
    assert added.status_code == 200 and added.json()["saved"] is True
    pm_id = added.json()["payment_method_id"]

    response = pay(None, saved_payment_method_id=pm_id)

    assert response.status_code == 402
    assert error_of(response)["code"] == "card_declined"
    assert Payment.objects.get().status == PaymentStatus.FAILED
    assert not Booking.objects.exists()
    assert SavedPaymentMethod.objects.filter(stripe_payment_method_id=pm_id).exists()


def test_new_card_with_save_card_is_saved_and_the_same_card_is_not_saved_twice(stripe_emulator, pay, add_card,
                                                                                student):
    first = pay(VISA, save_card=True)
    assert first.status_code == 200, first.content
    assert first.json()["payment_method_saved"] is True
    saved = SavedPaymentMethod.objects.get(user=student)

    second = pay(VISA, save_card=True)
    added = add_card(VISA)

    assert second.status_code == 200 and second.json()["payment_method_saved"] is True
    assert added.json()["payment_method_id"] == saved.stripe_payment_method_id
    assert SavedPaymentMethod.objects.filter(user=student).count() == 1


def test_adding_the_same_card_twice_returns_the_saved_one(stripe_emulator, add_card, student):
    first = add_card(VISA).json()
    second = add_card(VISA).json()

    assert second["payment_method_id"] == first["payment_method_id"]
    assert second["saved"] is True
    assert SavedPaymentMethod.objects.filter(user=student).count() == 1


def _payment_methods_at_stripe(emulator) -> dict[str, dict]:
    """The emulator's PaymentMethods (by id), as Stripe holds them now."""
    with emulator.state.lock:
        return {oid: dict(o) for oid, o in emulator.state.objects.items() if o.get("object") == "payment_method"}


def test_a_card_added_again_is_detached_at_stripe_and_the_saved_one_kept(stripe_emulator, add_card, student):
    saved_id = add_card(VISA).json()["payment_method_id"]
    customer_id = StripeCustomer.objects.get(user=student).stripe_customer_id
    stripe_emulator.clear_requests()

    again = add_card(VISA)

    assert again.status_code == 200 and again.json()["payment_method_id"] == saved_id
    at_stripe = _payment_methods_at_stripe(stripe_emulator)
    [duplicate] = [pm_id for pm_id, pm in at_stripe.items() if pm_id != saved_id and pm.get("card")]
    # The SetupIntent attached a second copy of the card; it is detached, the saved one stays.
    assert [(c["method"], c["path"]) for c in stripe_calls(stripe_emulator)] == [
        ("POST", "/v1/setup_intents"), ("POST", f"/v1/payment_methods/{duplicate}/detach")]
    assert at_stripe[duplicate]["customer"] is None
    assert at_stripe[saved_id]["customer"] == customer_id
    assert list(SavedPaymentMethod.objects.values_list("stripe_payment_method_id", flat=True)) == [saved_id]


def test_a_payment_saving_a_card_already_saved_detaches_the_new_copy_once_committed(
        stripe_emulator, add_card, pay, student, django_capture_on_commit_callbacks):
    saved_id = add_card(VISA).json()["payment_method_id"]
    customer_id = StripeCustomer.objects.get(user=student).stripe_customer_id
    stripe_emulator.clear_requests()

    with django_capture_on_commit_callbacks() as after_commit:
        response = pay(VISA, save_card=True)

    assert response.status_code == 200, response.content
    assert response.json()["payment_method_saved"] is True
    duplicate = Payment.objects.get().stripe_payment_method_id
    assert duplicate and duplicate != saved_id
    # Charged with setup_future_usage: Stripe attached the new copy; nothing is detached before the commit.
    assert [c["path"] for c in stripe_calls(stripe_emulator)] == ["/v1/payment_intents"]
    assert _payment_methods_at_stripe(stripe_emulator)[duplicate]["customer"] == customer_id

    for callback in after_commit:
        callback()

    at_stripe = _payment_methods_at_stripe(stripe_emulator)
    assert f"/v1/payment_methods/{duplicate}/detach" in [c["path"] for c in stripe_calls(stripe_emulator, "POST")]
    assert at_stripe[duplicate]["customer"] is None
    assert at_stripe[saved_id]["customer"] == customer_id
    assert list(SavedPaymentMethod.objects.values_list("stripe_payment_method_id", flat=True)) == [saved_id]


def test_a_duplicate_stripe_refuses_to_detach_still_answers_the_saved_card(stripe_emulator, add_card, student):
    saved_id = add_card(VISA).json()["payment_method_id"]
    stripe_emulator.arm_fault("POST", "/v1/payment_methods/", "error_500", count=10)

    again = add_card(VISA)

    assert again.status_code == 200 and again.json()["payment_method_id"] == saved_id
    assert SavedPaymentMethod.objects.filter(user=student).count() == 1


def test_add_with_save_for_future_false_verifies_without_saving(stripe_emulator, add_card, student):
    response = add_card(VISA, save_for_future=False)

    assert response.status_code == 200
    assert response.json()["saved"] is False and response.json()["payment_method_id"].startswith("pm_")
    assert not SavedPaymentMethod.objects.exists()
    assert not StripeCustomer.objects.exists()
    assert [c["path"] for c in stripe_calls(stripe_emulator)] == ["/v1/setup_intents"]


def test_new_card_payment_without_save_card_saves_nothing(stripe_emulator, pay):
    response = pay(VISA)

    assert response.json()["payment_method_saved"] is False
    assert not SavedPaymentMethod.objects.exists()


def test_a_new_card_that_is_already_saved_reports_payment_method_saved(stripe_emulator, add_card, pay):
    assert add_card(VISA).status_code == 200

    response = pay(VISA)

    assert response.status_code == 200
    assert response.json()["payment_method_saved"] is True
    assert SavedPaymentMethod.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_first_cards_saved_at_once_give_one_default_and_no_error(student, monkeypatch):
    barrier = threading.Barrier(2, timeout=2)
    real_exists = type(SavedPaymentMethod.objects.all()).exists

    def exists_then_meet(queryset):
        answer = real_exists(queryset)
        try:
            barrier.wait()  # without the user lock both threads see "no default yet" here
        except threading.BrokenBarrierError:
            pass  # with it, the second thread waits for the lock and never arrives: go on
        return answer

    monkeypatch.setattr(type(SavedPaymentMethod.objects.all()), "exists", exists_then_meet)
    errors = []

    def save(i):
        pm = gateway.PaymentMethodInfo(id=f"pm_race_{i}", customer_id="cus_x", card=gateway.CardDetails(
            brand="visa", last4=str(4000 + i), exp_month=12, exp_year=2030, fingerprint=f"fp_{i}"))
        try:
            cards._save_card(user=student, pm=pm)
        except Exception as exc:  # recorded for the assertion below
            errors.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=save, args=(i,)) for i in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert SavedPaymentMethod.objects.filter(user=student).count() == 2
    assert SavedPaymentMethod.objects.filter(user=student, is_default=True).count() == 1


# --- list, default, delete -----------------------------------------------------------------------------------
def test_list_cards_makes_no_stripe_call_and_shows_only_own_cards(stripe_emulator, add_card, student_client,
                                                                  client_for, other_student):
    add_card(VISA)
    add_card(MASTERCARD, client=client_for(other_student))
    stripe_emulator.clear_requests()

    response = student_client.get(METHODS_URL)

    assert response.status_code == 200
    assert stripe_calls(stripe_emulator) == []
    body = response.json()
    assert body["count"] == 1
    assert set(body["results"][0]) == {"payment_method_id", "card_brand", "card_last4", "exp_month", "exp_year",
                                       "is_default", "created_at"}
    assert body["results"][0]["card_last4"] == "4242" and body["results"][0]["is_default"] is True


def test_set_default_moves_the_default_and_someone_elses_card_is_404(stripe_emulator, add_card, student_client,
                                                                      client_for, other_student):
    visa = add_card(VISA).json()["payment_method_id"]
    master = add_card(MASTERCARD).json()["payment_method_id"]
    others = add_card(AMEX, client=client_for(other_student)).json()["payment_method_id"]

    response = student_client.post(f"{METHODS_URL}{master}/default/")

    assert response.status_code == 200 and response.json()["is_default"] is True
    assert SavedPaymentMethod.objects.get(stripe_payment_method_id=master).is_default
    assert not SavedPaymentMethod.objects.get(stripe_payment_method_id=visa).is_default
    assert student_client.post(f"{METHODS_URL}{others}/default/").status_code == 404
    assert SavedPaymentMethod.objects.get(stripe_payment_method_id=others).is_default


def test_delete_detaches_at_stripe_and_someone_elses_card_is_404(stripe_emulator, add_card, student_client,
                                                                 client_for, other_student):
    visa = add_card(VISA).json()["payment_method_id"]
    master = add_card(MASTERCARD).json()["payment_method_id"]
    others = add_card(AMEX, client=client_for(other_student)).json()["payment_method_id"]
    stripe_emulator.clear_requests()

    response = student_client.delete(f"{METHODS_URL}{visa}/delete/")

    assert response.status_code == 200 and response.json() == {"success": True}
    assert [c["path"] for c in stripe_calls(stripe_emulator)] == [f"/v1/payment_methods/{visa}/detach"]
    assert stripe_emulator.state.objects[visa]["customer"] is None
    assert not SavedPaymentMethod.objects.filter(stripe_payment_method_id=visa).exists()
    assert SavedPaymentMethod.objects.get(stripe_payment_method_id=master).is_default  # the default moved on

    stripe_emulator.clear_requests()
    assert student_client.delete(f"{METHODS_URL}{others}/delete/").status_code == 404
    assert stripe_calls(stripe_emulator) == []
    assert SavedPaymentMethod.objects.filter(stripe_payment_method_id=others).exists()


@pytest.mark.parametrize("url", ["/stripe-payments/payment-methods/pm_%00x/delete/",
                                 "/stripe-payments/payment-methods/pm_%00x/default/"])
def test_a_nul_byte_in_a_card_id_is_the_json_404(client_for, student, url):
    response = client_for(student).generic("DELETE" if url.endswith("delete/") else "POST", url)

    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


# --- whose card it is: a card id is usable only by the student it was made for -------------------------------
def test_someone_elses_saved_card_cannot_pay(stripe_emulator, add_card, pay, client_for, other_student):
    others = add_card(VISA, client=client_for(other_student)).json()["payment_method_id"]
    stripe_emulator.clear_requests()

    response = pay(None, saved_payment_method_id=others)

    assert response.status_code == 404
    assert stripe_calls(stripe_emulator) == []
    assert not Payment.objects.exists()


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
    back = through_3ds_page(error["redirect_url"])
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
