"""The seed's payment endpoints through the API, against the in-process Stripe emulator."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import requests
import stripe
from django.db import connection
from django.utils import timezone

from bookings.models import Booking
from stripe_payments import gateway
from stripe_payments.keys import payment_key
from stripe_payments.models import IdempotencyRecord, Payment, PaymentStatus, SavedPaymentMethod, StripeCustomer
from stripe_payments.services import lifecycle, payments

from .conftest import (
    ADD_URL,
    AMEX,
    BAD_LUHN,
    CHARGE_FAIL,
    CONFIRM_URL,
    CREATE_INTENT_URL,
    DECLINED,
    EXP_YEAR,
    INSUFFICIENT,
    LOST,
    MASTERCARD,
    METHODS_URL,
    PAY_URL,
    PAYMENTS_URL,
    RETURN_URL,
    THREE_DS,
    VISA,
    card,
    stripe_calls,
)

pytestmark = [pytest.mark.django_db, pytest.mark.emulator]


def _error(response) -> dict:
    body = response.json()
    assert body["success"] is False
    return body["error"]


def _pi_creates(emulator) -> list[dict]:
    return stripe_calls(emulator, "POST", "/v1/payment_intents")


def _sdk(emulator) -> stripe.StripeClient:
    """Plays Stripe's client SDKs (which confirm PaymentIntents in the app), not the backend."""
    return stripe.StripeClient("sk_test_client_side", base_addresses={"api": emulator.base_url},
                               max_network_retries=0)


def _through_3ds_page(redirect_url: str, *, succeed: bool = True) -> str:
    """What the browser does on the 3-D Secure page: press a button, follow the redirect to our
    return page. Returns the return page's path and query."""
    action = "complete" if succeed else "fail"
    answer = requests.post(f"{redirect_url}/{action}", allow_redirects=False, timeout=5)
    assert answer.status_code == 302
    location = urlsplit(answer.headers["Location"])
    assert location.path == RETURN_URL
    return f"{location.path}?{location.query}"


# --- the contract's test cards, on both endpoints ---------------------------------------------------
PROCESS_TABLE = [
    (VISA, 200, None, None, "visa"),
    (DECLINED, 402, "card_declined", "generic_decline", None),
    (INSUFFICIENT, 402, "card_declined", "insufficient_funds", None),
    (LOST, 402, "card_declined", "lost_card", None),
    (MASTERCARD, 200, None, None, "mastercard"),
    (AMEX, 200, None, None, "amex"),
    (THREE_DS, 402, "authentication_required", None, None),
    (CHARGE_FAIL, 402, "card_declined", "generic_decline", None),
    (BAD_LUHN, 400, "invalid_request", None, None),
]


@pytest.mark.parametrize("number,status,code,decline_code,brand", PROCESS_TABLE)
def test_process_payment_answers_each_contract_test_card(stripe_emulator, pay, student, number, status, code,
                                                         decline_code, brand):
    response = pay(number)

    assert response.status_code == status, response.content
    if status == 200:
        body = response.json()
        assert body["success"] is True
        assert body["status"] == "succeeded"
        assert body["card_brand"] == brand
        assert body["card_last4"] == number[-4:]
        assert body["amount"] == 50.0 and body["amount_cents"] == 5000 and body["currency"] == "usd"
        assert Booking.objects.get(payment_id=body["payment_id"]).pk == body["booking_id"]
        return
    error = _error(response)
    assert error["code"] == code
    assert error.get("decline_code") == decline_code
    assert not Booking.objects.exists()
    if status == 400:
        assert "card_number" in error["fields"]["card_details"]
        assert stripe_calls(stripe_emulator) == []
        assert not Payment.objects.exists()
    elif code == "authentication_required":
        assert error["redirect_url"] and error["client_secret"] and error["payment_intent_id"]
        assert Payment.objects.get(pk=error["payment_id"]).status == PaymentStatus.REQUIRES_ACTION
    else:
        payment = Payment.objects.get(pk=error["payment_id"])
        assert payment.status == PaymentStatus.FAILED
        assert payment.stripe_payment_intent_id == error["payment_intent_id"]


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
    error = _error(response)
    assert error["code"] == code
    assert error.get("decline_code") == decline_code
    assert not SavedPaymentMethod.objects.exists()
    if status == 400:
        assert "card_number" in error["fields"]
        assert stripe_calls(stripe_emulator) == []
    elif code == "authentication_required":
        assert error["setup_intent_id"] and error["client_secret"] and error["redirect_url"]


# --- 3-D Secure ---------------------------------------------------------------------------------------
def test_3ds_payment_books_once_through_the_return_page(stripe_emulator, pay, api_client, student):
    error = _error(pay(THREE_DS))
    assert error["code"] == "authentication_required"
    assert {"payment_id", "payment_intent_id", "client_secret", "redirect_url"} <= set(error)
    assert not Booking.objects.exists()

    return_path = _through_3ds_page(error["redirect_url"])
    assert f"payment_intent={error['payment_intent_id']}" in return_path
    page = api_client.get(return_path)  # the browser carries no JWT

    assert page.status_code == 200
    assert "data-status='succeeded'" in page.content.decode()
    payment = Payment.objects.get(pk=error["payment_id"])
    assert payment.status == PaymentStatus.SUCCEEDED
    booking = Booking.objects.get(payment=payment)

    again = api_client.get(RETURN_URL, {"payment_intent": error["payment_intent_id"], "format": "json"})
    assert again.status_code == 200
    assert again.json()["status"] == "succeeded" and again.json()["booking_id"] == booking.pk
    assert Booking.objects.count() == 1


def test_3ds_payment_with_failed_authentication_fails_without_booking(stripe_emulator, pay, api_client):
    error = _error(pay(THREE_DS))

    page = api_client.get(_through_3ds_page(error["redirect_url"], succeed=False), HTTP_ACCEPT="application/json")

    assert page.status_code == 200
    assert page.json()["success"] is False and page.json()["status"] == "failed"
    payment = Payment.objects.get(pk=error["payment_id"])
    assert payment.status == PaymentStatus.FAILED
    assert payment.failure_code == "payment_intent_authentication_failure"
    assert not Booking.objects.exists()


def test_3ds_add_payment_method_saves_the_card_after_authentication_then_pays_off_session(
        stripe_emulator, add_card, pay, api_client, student):
    error = _error(add_card(THREE_DS))
    assert error["code"] == "authentication_required"
    assert not SavedPaymentMethod.objects.exists()

    page = api_client.get(_through_3ds_page(error["redirect_url"]), HTTP_ACCEPT="application/json")

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
    error = _error(add_card(THREE_DS, save_for_future=False))
    assert error["code"] == "authentication_required"

    page = api_client.get(_through_3ds_page(error["redirect_url"]), HTTP_ACCEPT="application/json")

    body = page.json()
    assert page.status_code == 200 and body["success"] is True and body["saved"] is False
    assert body["payment_method_id"].startswith("pm_")
    assert not SavedPaymentMethod.objects.exists()


def test_3ds_add_payment_method_with_failed_authentication_saves_nothing(stripe_emulator, add_card, api_client):
    error = _error(add_card(THREE_DS))

    page = api_client.get(_through_3ds_page(error["redirect_url"], succeed=False), HTTP_ACCEPT="application/json")

    assert page.status_code == 200 and page.json()["success"] is False
    assert not SavedPaymentMethod.objects.exists()


def test_return_page_without_an_intent_is_400_and_unknown_intent_is_404(stripe_emulator, api_client):
    assert api_client.get(RETURN_URL, HTTP_ACCEPT="application/json").status_code == 400
    assert api_client.get(RETURN_URL, {"payment_intent": "pi_unknown", "format": "json"}).status_code == 404
    assert api_client.get(RETURN_URL, {"setup_intent": "seti_unknown", "format": "json"}).status_code == 404


# --- saved cards --------------------------------------------------------------------------------------
def test_saved_card_pays_and_a_charge_fail_card_is_declined_later(stripe_emulator, add_card, pay, student):
    added = add_card(CHARGE_FAIL)
    assert added.status_code == 200 and added.json()["saved"] is True
    pm_id = added.json()["payment_method_id"]

    response = pay(None, saved_payment_method_id=pm_id)

    assert response.status_code == 402
    assert _error(response)["code"] == "card_declined"
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


def test_someone_elses_saved_card_cannot_pay(stripe_emulator, add_card, pay, client_for, other_student):
    others = add_card(VISA, client=client_for(other_student)).json()["payment_method_id"]
    stripe_emulator.clear_requests()

    response = pay(None, saved_payment_method_id=others)

    assert response.status_code == 404
    assert stripe_calls(stripe_emulator) == []
    assert not Payment.objects.exists()


# --- payments list and detail -----------------------------------------------------------------------
@pytest.mark.parametrize("who,sees", [
    ("student", True), ("other_student", False), ("teacher", True), ("other_teacher", False), ("admin_user", True),
])
def test_payment_list_and_detail_visibility(request, client_for, student, gig, make_paid_booking, who, sees):
    booking = make_paid_booking(student=student, gig=gig)
    client = client_for(request.getfixturevalue(who))

    listing = client.get(PAYMENTS_URL)
    detail = client.get(f"{PAYMENTS_URL}{booking.payment_id}/")

    assert listing.status_code == 200
    assert [p["id"] for p in listing.json()["results"]] == ([booking.payment_id] if sees else [])
    assert detail.status_code == (200 if sees else 404)
    if sees:
        body = detail.json()
        assert body["booking_id"] == booking.pk and body["amount"] == 50.0 and body["admin_fee_cents"] == 500
        assert body["teacher_amount_cents"] == 4500 and body["gig_title"] == gig.title


def test_payment_list_filters_by_status(student_client, student, gig, make_paid_booking):
    make_paid_booking(student=student, gig=gig)

    assert student_client.get(PAYMENTS_URL, {"status": "succeeded"}).json()["count"] == 1
    assert student_client.get(PAYMENTS_URL, {"status": "failed"}).json()["count"] == 0
    assert student_client.get(PAYMENTS_URL, {"status": "bogus"}).status_code == 400


def test_payment_endpoints_need_a_jwt(api_client, gig):
    assert api_client.get(PAYMENTS_URL).status_code == 401
    assert api_client.post(PAY_URL, {"gig_id": gig.pk}, format="json").status_code == 401
    assert api_client.get(METHODS_URL).status_code == 401


# --- the client-side flow ---------------------------------------------------------------------------
def test_create_payment_intent_then_confirm_payment_books_once_stripe_says_succeeded(stripe_emulator, student_client,
                                                                                     gig):
    created = student_client.post(CREATE_INTENT_URL, {"gig_id": gig.pk, "amount": "1.00"}, format="json")
    assert created.status_code == 200, created.content
    body = created.json()
    assert body["amount_cents"] == 5000 and body["amount"] == 50.0 and body["currency"] == "usd"
    assert body["client_secret"].startswith(body["payment_intent_id"])
    pi_id = body["payment_intent_id"]

    early = student_client.post(CONFIRM_URL, {"payment_intent_id": pi_id}, format="json")
    assert early.status_code == 409 and _error(early)["code"] == "invalid_state"
    assert not Booking.objects.exists()

    _sdk(stripe_emulator).v1.payment_intents.confirm(pi_id, params={"payment_method": "pm_card_visa"})
    confirmed = student_client.post(CONFIRM_URL, {"payment_intent_id": pi_id}, format="json")

    assert confirmed.status_code == 200, confirmed.content
    assert confirmed.json()["status"] == "succeeded" and confirmed.json()["payment_id"] == body["payment_id"]
    assert Booking.objects.get(payment_id=body["payment_id"]).pk == confirmed.json()["booking_id"]
    assert student_client.post(CONFIRM_URL, {"payment_intent_id": pi_id}, format="json").status_code == 200
    assert Booking.objects.count() == 1


def test_confirm_payment_after_a_client_side_decline_answers_stripes_error(stripe_emulator, student_client, gig):
    pi_id = student_client.post(CREATE_INTENT_URL, {"gig_id": gig.pk}, format="json").json()["payment_intent_id"]
    with pytest.raises(stripe.CardError):
        _sdk(stripe_emulator).v1.payment_intents.confirm(
            pi_id, params={"payment_method": "pm_card_visa_chargeDeclinedInsufficientFunds"})

    response = student_client.post(CONFIRM_URL, {"payment_intent_id": pi_id}, format="json")

    assert response.status_code == 402
    error = _error(response)
    assert (error["code"], error["decline_code"]) == ("card_declined", "insufficient_funds")
    assert Payment.objects.get(stripe_payment_intent_id=pi_id).status == PaymentStatus.FAILED
    assert not Booking.objects.exists()


def test_confirm_payment_of_someone_elses_intent_is_404(stripe_emulator, student_client, client_for, other_student,
                                                        gig):
    pi_id = student_client.post(CREATE_INTENT_URL, {"gig_id": gig.pk}, format="json").json()["payment_intent_id"]

    response = client_for(other_student).post(CONFIRM_URL, {"payment_intent_id": pi_id}, format="json")

    assert response.status_code == 404


def test_payment_with_a_client_created_payment_method_id(stripe_emulator, pay):
    response = pay(None, payment_method_id="pm_card_mastercard")

    assert response.status_code == 200, response.content
    assert response.json()["card_brand"] == "mastercard" and response.json()["booking_id"]


# --- rules ------------------------------------------------------------------------------------------
def test_amount_is_the_gigs_price_whatever_the_client_sends(stripe_emulator, pay, make_gig, teacher):
    cheap = make_gig(teacher, price_cents=3333)

    response = pay(VISA, gig_id=cheap.pk, amount="0.50", amount_cents=50)

    assert response.status_code == 200
    assert response.json()["amount_cents"] == 3333 and response.json()["amount"] == 33.33
    pi = stripe_emulator.state.objects[response.json()["payment_intent_id"]]
    assert pi["amount"] == 3333 and pi["currency"] == "usd"
    payment = Payment.objects.get()
    assert (payment.admin_fee_cents, payment.teacher_amount_cents) == (333, 3000)


@pytest.mark.parametrize("role", ["teacher", "admin_user"])
def test_teachers_and_admins_cannot_pay_or_add_cards(stripe_emulator, request, client_for, gig, role):
    client = client_for(request.getfixturevalue(role))

    paid = client.post(PAY_URL, {"gig_id": gig.pk, "card_details": card(VISA)}, format="json")
    added = client.post(ADD_URL, card(VISA), format="json")
    intent = client.post(CREATE_INTENT_URL, {"gig_id": gig.pk}, format="json")

    assert [paid.status_code, added.status_code, intent.status_code] == [403, 403, 403]
    assert _error(paid)["code"] == "permission_denied"
    assert stripe_calls(stripe_emulator) == []
    assert not Payment.objects.exists()


def test_inactive_or_unknown_gig_is_404(stripe_emulator, pay, make_gig, teacher):
    inactive = make_gig(teacher, is_active=False)

    assert pay(VISA, gig_id=inactive.pk).status_code == 404
    assert pay(VISA, gig_id=999999).status_code == 404
    assert stripe_calls(stripe_emulator) == []
    assert not Payment.objects.exists()


@pytest.mark.parametrize("sources", [
    {},
    {"card_details": card(VISA), "saved_payment_method_id": "pm_x"},
    {"card_details": card(VISA), "payment_method_id": "pm_card_visa"},
    {"saved_payment_method_id": "pm_x", "payment_method_id": "pm_card_visa"},
])
def test_process_payment_needs_exactly_one_payment_source(stripe_emulator, student_client, gig, sources):
    response = student_client.post(PAY_URL, {"gig_id": gig.pk, **sources}, format="json")

    assert response.status_code == 400
    assert _error(response)["code"] == "invalid_request" and _error(response)["fields"]
    assert stripe_calls(stripe_emulator) == []


@pytest.mark.parametrize("scheduled_at", ["2031-01-01T10:00:00", "2020-01-01T10:00:00Z", "tomorrow"])
def test_scheduled_at_must_be_aware_and_in_the_future(stripe_emulator, pay, scheduled_at):
    response = pay(VISA, scheduled_at=scheduled_at)

    assert response.status_code == 400
    assert "scheduled_at" in _error(response)["fields"]
    assert stripe_calls(stripe_emulator) == []


def test_scheduled_at_is_carried_to_the_booking(stripe_emulator, pay):
    when = (timezone.now() + timedelta(days=3)).replace(microsecond=0)

    response = pay(VISA, scheduled_at=when.isoformat())

    assert response.status_code == 200
    assert Booking.objects.get(pk=response.json()["booking_id"]).scheduled_at == when


# --- validation, checked before any Stripe call -------------------------------------------------------
LAST_YEAR = timezone.now().year - 1
CARD_ERRORS = [
    ({"card_number": BAD_LUHN}, "card_number"),
    ({"card_number": "4242 4242 4242 424x"}, "card_number"),
    ({"card_number": "42424242"}, "card_number"),
    ({"exp_year": LAST_YEAR}, "exp_year"),
    ({"exp_month": 13}, "exp_month"),
    ({"exp_month": "abc"}, "exp_month"),
    ({"cvc": "12"}, "cvc"),
    ({"cvc": "12a"}, "cvc"),
    ({"cvc": "1234"}, "cvc"),  # 4 digits on a visa
    ({"card_number": AMEX, "cvc": "123"}, "cvc"),  # 3 digits on an amex
    ({"card_number": 4242424242424242.5}, "card_number"),
]


@pytest.mark.parametrize("override,field", CARD_ERRORS)
def test_card_validation_errors_are_400_before_any_stripe_call(stripe_emulator, student_client, gig, override,
                                                               field):
    bad_card = {**card(VISA), **override}

    added = student_client.post(ADD_URL, bad_card, format="json")
    paid = student_client.post(PAY_URL, {"gig_id": gig.pk, "card_details": bad_card}, format="json")

    assert added.status_code == 400 and paid.status_code == 400
    assert field in _error(added)["fields"]
    assert field in _error(paid)["fields"]["card_details"]
    assert stripe_calls(stripe_emulator) == []
    assert not Payment.objects.exists()


@pytest.mark.parametrize("body", [
    {"gig_id": "abc"},
    {"gig_id": None},
    {"gig_id": 0},
    {"card_details": "4242424242424242"},
    {"save_card": "maybe"},
    {"saved_payment_method_id": ["pm_x"], "card_details": None},
])
def test_process_payment_rejects_ids_and_fields_of_the_wrong_type(stripe_emulator, student_client, gig, body):
    response = student_client.post(PAY_URL, {"gig_id": gig.pk, "card_details": card(VISA), **body}, format="json")

    assert response.status_code == 400
    assert _error(response)["code"] == "invalid_request"
    assert stripe_calls(stripe_emulator) == []


def test_amex_with_a_four_digit_cvc_is_accepted(stripe_emulator, add_card):
    assert add_card(AMEX, cvc="1234").status_code == 200


# --- Idempotency-Key ------------------------------------------------------------------------------------
def test_same_key_and_body_replays_the_answer_and_charges_once(stripe_emulator, pay):
    first = pay(VISA, headers={"Idempotency-Key": "order-1"})
    second = pay(VISA, headers={"Idempotency-Key": "order-1"})

    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()
    assert len(_pi_creates(stripe_emulator)) == 1
    assert Payment.objects.count() == 1 and Booking.objects.count() == 1


def test_a_402_is_replayed_with_the_same_key(stripe_emulator, pay):
    first = pay(DECLINED, headers={"Idempotency-Key": "order-2"})
    second = pay(DECLINED, headers={"Idempotency-Key": "order-2"})

    assert first.status_code == second.status_code == 402
    assert second.json() == first.json()
    assert len(_pi_creates(stripe_emulator)) == 1
    assert Payment.objects.count() == 1


def test_same_key_with_another_body_is_409_conflict(stripe_emulator, pay, make_gig, teacher):
    other_gig = make_gig(teacher, price_cents=7000)
    assert pay(VISA, headers={"Idempotency-Key": "order-3"}).status_code == 200

    response = pay(VISA, gig_id=other_gig.pk, headers={"Idempotency-Key": "order-3"})

    assert response.status_code == 409 and _error(response)["code"] == "idempotency_conflict"
    assert Payment.objects.count() == 1


def test_the_same_key_of_another_user_is_independent(stripe_emulator, pay, client_for, other_student):
    assert pay(VISA, headers={"Idempotency-Key": "shared"}).status_code == 200

    response = pay(VISA, client=client_for(other_student), headers={"Idempotency-Key": "shared"})

    assert response.status_code == 200
    assert Payment.objects.count() == 2


def test_add_payment_method_replays_with_the_same_key(stripe_emulator, add_card):
    first = add_card(VISA, headers={"Idempotency-Key": "card-1"})
    second = add_card(VISA, headers={"Idempotency-Key": "card-1"})

    assert second.json() == first.json()
    assert len(stripe_calls(stripe_emulator, "POST", "/v1/setup_intents")) == 1


def test_idempotency_key_longer_than_255_characters_is_400(stripe_emulator, pay):
    response = pay(VISA, headers={"Idempotency-Key": "k" * 256})

    assert response.status_code == 400
    assert "Idempotency-Key" in _error(response)["fields"]
    assert stripe_calls(stripe_emulator) == []
    assert pay(VISA, headers={"Idempotency-Key": "k" * 255}).status_code == 200


def test_a_5xx_is_not_stored_and_the_retry_resumes_the_same_payment(stripe_emulator, pay, settings):
    settings.STRIPE_MAX_NETWORK_RETRIES = 1
    stripe_emulator.arm_fault("POST", "/v1/payment_intents", "error_500", count=2)

    failed = pay(VISA, headers={"Idempotency-Key": "order-5"})
    retried = pay(VISA, headers={"Idempotency-Key": "order-5"})

    assert failed.status_code == 502 and _error(failed)["code"] == "payment_provider_error"
    assert retried.status_code == 200, retried.content
    payment = Payment.objects.get()  # the retry resumed the first payment
    assert retried.json()["payment_id"] == payment.pk
    keys = {c["idempotency_key"] for c in _pi_creates(stripe_emulator)}
    assert keys == {payment_key(payment)}
    assert len(_pi_creates(stripe_emulator)) == 3
    assert Booking.objects.count() == 1


@pytest.mark.postgres  # SQLite's shared in-memory test database answers "table is locked" under this race
@pytest.mark.django_db(transaction=True)
def test_an_in_flight_twin_waits_and_gets_the_same_answer(stripe_emulator, client_for, student, gig):
    stripe_emulator.set_latency(800)
    answers: dict[str, object] = {}

    def post(name):
        try:
            answers[name] = client_for(student).post(
                PAY_URL, {"gig_id": gig.pk, "card_details": card(VISA)}, format="json",
                headers={"Idempotency-Key": "twin"})
        except Exception as exc:  # noqa: BLE001 - reported by the assertions below
            answers[name] = exc
        finally:
            connection.close()

    try:
        first = threading.Thread(target=post, args=("first",))
        first.start()
        deadline = time.monotonic() + 5
        while not IdempotencyRecord.objects.filter(key="twin").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        twin = threading.Thread(target=post, args=("twin",))
        twin.start()
        first.join(15)
        twin.join(15)
    finally:
        stripe_emulator.set_latency(0)

    assert answers["first"].status_code == 200, answers
    assert answers["twin"].status_code == 200, answers
    assert answers["twin"].json() == answers["first"].json()
    assert len(_pi_creates(stripe_emulator)) == 1
    assert Payment.objects.count() == 1 and Booking.objects.count() == 1


def test_a_twin_waits_for_the_first_answer_and_replays_it(stripe_emulator, pay, student, monkeypatch):
    """The twin's wait, without threads: the first request answers while the twin polls."""
    from stripe_payments import idempotency

    body = {"gig_id": 1, "card_details": card(VISA)}
    record = IdempotencyRecord.objects.create(user=student, key="twin", scope="process-payment",
                                              request_hash=idempotency.request_hash(scope="process-payment", data=body))
    polls = []

    def first_request_answers_meanwhile(seconds):
        polls.append(seconds)
        if len(polls) == 3:
            IdempotencyRecord.objects.filter(pk=record.pk).update(
                in_flight=False, response_status=200, response_body={"success": True, "payment_id": 41})

    monkeypatch.setattr(idempotency.time, "sleep", first_request_answers_meanwhile)

    response = pay(VISA, gig_id=1, headers={"Idempotency-Key": "twin"})

    assert response.status_code == 200 and response.json() == {"success": True, "payment_id": 41}
    assert len(polls) == 3
    assert stripe_calls(stripe_emulator) == []


def test_a_twin_still_in_flight_after_the_wait_is_409_in_progress(stripe_emulator, pay, student, settings):
    settings.IDEMPOTENCY_WAIT_SECONDS = 0.2
    from stripe_payments.idempotency import request_hash

    body = {"gig_id": 1, "card_details": card(VISA)}
    IdempotencyRecord.objects.create(user=student, key="held", scope="process-payment",
                                     request_hash=request_hash(scope="process-payment", data=body))

    response = pay(VISA, gig_id=1, headers={"Idempotency-Key": "held"})

    assert response.status_code == 409 and _error(response)["code"] == "idempotency_in_progress"
    assert stripe_calls(stripe_emulator) == []


# --- Stripe round trips per operation -------------------------------------------------------------------
def test_stripe_calls_per_operation(stripe_emulator, add_card, pay, student_client):
    def calls_of(action) -> list[str]:
        stripe_emulator.clear_requests()
        response = action()
        assert response.status_code == 200, response.content
        return [c["path"] for c in stripe_calls(stripe_emulator)]

    assert calls_of(lambda: add_card(VISA)) == ["/v1/customers", "/v1/setup_intents"]
    saved_id = SavedPaymentMethod.objects.get().stripe_payment_method_id
    assert calls_of(lambda: add_card(MASTERCARD)) == ["/v1/setup_intents"]
    assert calls_of(lambda: pay(None, saved_payment_method_id=saved_id)) == ["/v1/payment_intents"]
    assert calls_of(lambda: pay(AMEX)) == ["/v1/payment_intents"]
    assert calls_of(lambda: pay(AMEX, save_card=True)) == ["/v1/payment_intents"]
    assert calls_of(lambda: student_client.get(METHODS_URL)) == []
    assert calls_of(lambda: student_client.get(PAYMENTS_URL)) == []


def test_new_card_with_save_card_for_a_user_without_customer_is_two_calls(stripe_emulator, pay):
    response = pay(VISA, save_card=True)

    assert response.status_code == 200
    assert [c["path"] for c in stripe_calls(stripe_emulator)] == ["/v1/customers", "/v1/payment_intents"]


def test_every_stripe_write_carries_an_idempotency_key(stripe_emulator, add_card, pay, student_client):
    visa = add_card(VISA).json()["payment_method_id"]
    add_card(MASTERCARD)
    pay(None, saved_payment_method_id=visa)
    pay(DECLINED)
    pay(VISA, save_card=True)
    student_client.delete(f"{METHODS_URL}{visa}/delete/")

    writes = stripe_calls(stripe_emulator, "POST")
    assert len(writes) >= 6
    assert all(c["idempotency_key"] for c in writes), writes


# --- failures never book --------------------------------------------------------------------------------
def test_timeout_answers_504_and_leaves_the_payment_processing_without_booking(stripe_emulator, pay, settings):
    settings.STRIPE_READ_TIMEOUT = 0.3
    settings.STRIPE_MAX_NETWORK_RETRIES = 1
    stripe_emulator.arm_fault("POST", "/v1/payment_intents", "timeout", count=3, seconds=1)

    response = pay(VISA)

    # 504 is the gateway's answer to a read timeout only: the client gave up, twice (one retry).
    assert response.status_code == 504 and _error(response)["code"] == "payment_provider_timeout"
    assert len(stripe_calls(stripe_emulator, "POST")) == 2
    payment = Payment.objects.get()
    assert payment.status == PaymentStatus.PROCESSING
    assert not Booking.objects.exists()
    keys = [c["idempotency_key"] for c in _pi_creates(stripe_emulator)]
    assert keys == [payment_key(payment)] * 2


def test_provider_500_answers_502_after_retries_without_booking(stripe_emulator, pay, settings):
    settings.STRIPE_MAX_NETWORK_RETRIES = 1
    stripe_emulator.arm_fault("POST", "/v1/payment_intents", "error_500", count=5)

    response = pay(VISA)

    assert response.status_code == 502 and _error(response)["code"] == "payment_provider_error"
    assert len(_pi_creates(stripe_emulator)) == 2
    assert Payment.objects.get().status == PaymentStatus.PROCESSING
    assert not Booking.objects.exists()


def test_rate_limit_answers_503_with_retry_after_without_retrying(stripe_emulator, pay):
    stripe_emulator.arm_fault("POST", "/v1/payment_intents", "rate_limit", count=5)

    response = pay(VISA)

    assert response.status_code == 503 and _error(response)["code"] == "payment_provider_unavailable"
    assert int(response["Retry-After"]) > 0
    assert len(_pi_creates(stripe_emulator)) == 1
    assert not Booking.objects.exists()


def test_an_answer_lost_after_stripe_charged_is_recovered_with_the_same_key(stripe_emulator, pay):
    stripe_emulator.arm_fault("POST", "/v1/payment_intents", "drop_after_work", count=1)

    response = pay(VISA)

    assert response.status_code == 200, response.content
    assert len(_pi_creates(stripe_emulator)) == 2
    assert len({c["idempotency_key"] for c in _pi_creates(stripe_emulator)}) == 1
    assert len([o for o in stripe_emulator.state.objects.values() if o.get("object") == "payment_intent"]) == 1
    assert Booking.objects.count() == 1


@pytest.mark.parametrize("number", [DECLINED, INSUFFICIENT, LOST, CHARGE_FAIL, THREE_DS])
def test_no_booking_for_a_declined_or_unauthenticated_payment(stripe_emulator, pay, number):
    assert pay(number).status_code == 402
    assert not Booking.objects.exists()


def test_settling_the_same_succeeded_intent_twice_books_once(stripe_emulator, pay):
    payment_id = pay(VISA).json()["payment_id"]
    payment = Payment.objects.get(pk=payment_id)
    intent = gateway.payment_intent_retrieve(payment.stripe_payment_intent_id)

    lifecycle.payment_settle_from_intent(payment_id=payment_id, intent=intent)
    lifecycle.payment_settle_from_intent(payment_id=payment_id, intent=intent)
    payments.payment_settle(payment=payment)

    assert Booking.objects.filter(payment_id=payment_id).count() == 1
    assert Payment.objects.get(pk=payment_id).status == PaymentStatus.SUCCEEDED


def test_a_failed_intent_never_moves_a_succeeded_payment_back(stripe_emulator, pay):
    payment_id = pay(VISA).json()["payment_id"]
    payment = Payment.objects.get(pk=payment_id)
    intent = gateway.payment_intent_retrieve(payment.stripe_payment_intent_id)
    failed = gateway.IntentResult(**{**intent.__dict__, "status": "requires_payment_method",
                                     "last_error": gateway.CardFailure("card_declined", "generic_decline", "no")})

    lifecycle.payment_settle_from_intent(payment_id=payment_id, intent=failed)

    assert Payment.objects.get(pk=payment_id).status == PaymentStatus.SUCCEEDED
    assert Booking.objects.filter(payment_id=payment_id).count() == 1
