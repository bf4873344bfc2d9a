"""Paying for a gig (services.payments and the payment endpoints): the contract's test cards, 3-D Secure
and its return page, saved and client-created cards, the client-side flow, the payments list and detail,
the rules (price, roles, sources, schedule), Stripe round trips, failures and retries, against the
in-process Stripe emulator."""

from __future__ import annotations

from datetime import timedelta

import pytest
import stripe
from django.utils import timezone

from bookings.models import Booking
from stripe_payments.keys import payment_key
from stripe_payments.models import (
    Payment,
    PaymentStatus,
    SavedPaymentMethod,
)
from stripe_payments.services import lifecycle

from .conftest import (
    ADD_URL,
    AMEX,
    BAD_LUHN,
    CHARGE_FAIL,
    CONFIRM_URL,
    CREATE_INTENT_URL,
    DECLINED,
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
    client_sdk,
    deliver,
    error_of,
    only_event,
    pi_creates,
    stripe_calls,
    through_3ds_page,
)

pytestmark = [pytest.mark.django_db, pytest.mark.emulator]


# --- the contract's test cards -------------------------------------------------------------------------------
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
    error = error_of(response)
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


# --- 3-D Secure and the return page --------------------------------------------------------------------------
def test_3ds_payment_books_once_through_the_return_page(stripe_emulator, pay, api_client, student):
    error = error_of(pay(THREE_DS))
    assert error["code"] == "authentication_required"
    assert {"payment_id", "payment_intent_id", "client_secret", "redirect_url"} <= set(error)
    assert not Booking.objects.exists()

    return_path = through_3ds_page(error["redirect_url"])
    assert f"payment_intent={error['payment_intent_id']}" in return_path
    page = api_client.get(return_path)  # the browser carries no JWT

    assert page.status_code == 200
    assert 'data-status="succeeded"' in page.content.decode()
    payment = Payment.objects.get(pk=error["payment_id"])
    assert payment.status == PaymentStatus.SUCCEEDED
    booking = Booking.objects.get(payment=payment)

    again = api_client.get(RETURN_URL, {"payment_intent": error["payment_intent_id"], "format": "json"})
    assert again.status_code == 200
    assert again.json()["status"] == "succeeded" and again.json()["booking_id"] == booking.pk
    assert Booking.objects.count() == 1


def test_3ds_payment_with_failed_authentication_fails_without_booking(stripe_emulator, pay, api_client):
    error = error_of(pay(THREE_DS))

    page = api_client.get(through_3ds_page(error["redirect_url"], succeed=False), HTTP_ACCEPT="application/json")

    assert page.status_code == 200
    assert page.json()["success"] is False and page.json()["status"] == "failed"
    payment = Payment.objects.get(pk=error["payment_id"])
    assert payment.status == PaymentStatus.FAILED
    assert payment.failure_code == "payment_intent_authentication_failure"
    assert not Booking.objects.exists()


def test_return_page_without_an_intent_is_400_and_unknown_intent_is_404(stripe_emulator, api_client):
    assert api_client.get(RETURN_URL, HTTP_ACCEPT="application/json").status_code == 400
    assert api_client.get(RETURN_URL, {"payment_intent": "pi_unknown", "format": "json"}).status_code == 404
    assert api_client.get(RETURN_URL, {"setup_intent": "seti_unknown", "format": "json"}).status_code == 404


def test_a_nul_byte_in_the_return_page_query_is_the_json_404(api_client):
    response = api_client.get("/stripe-payments/payment-return/?payment_intent=pi_%00x&format=json")

    assert response.status_code == 404


# --- payments list and detail --------------------------------------------------------------------------------
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


# --- the client-side flow ------------------------------------------------------------------------------------
def test_create_payment_intent_then_confirm_payment_books_once_stripe_says_succeeded(stripe_emulator, student_client,
                                                                                     gig):
    created = student_client.post(CREATE_INTENT_URL, {"gig_id": gig.pk, "amount": "1.00"}, format="json")
    assert created.status_code == 200, created.content
    body = created.json()
    assert body["amount_cents"] == 5000 and body["amount"] == 50.0 and body["currency"] == "usd"
    assert body["client_secret"].startswith(body["payment_intent_id"])
    pi_id = body["payment_intent_id"]

    early = student_client.post(CONFIRM_URL, {"payment_intent_id": pi_id}, format="json")
    assert early.status_code == 409 and error_of(early)["code"] == "invalid_state"
    assert not Booking.objects.exists()

    client_sdk(stripe_emulator).v1.payment_intents.confirm(pi_id, params={"payment_method": "pm_card_visa"})
    confirmed = student_client.post(CONFIRM_URL, {"payment_intent_id": pi_id}, format="json")

    assert confirmed.status_code == 200, confirmed.content
    assert confirmed.json()["status"] == "succeeded" and confirmed.json()["payment_id"] == body["payment_id"]
    assert Booking.objects.get(payment_id=body["payment_id"]).pk == confirmed.json()["booking_id"]
    assert student_client.post(CONFIRM_URL, {"payment_intent_id": pi_id}, format="json").status_code == 200
    assert Booking.objects.count() == 1


def test_confirm_payment_after_a_client_side_decline_answers_stripes_error(stripe_emulator, student_client, gig):
    pi_id = student_client.post(CREATE_INTENT_URL, {"gig_id": gig.pk}, format="json").json()["payment_intent_id"]
    with pytest.raises(stripe.CardError):
        client_sdk(stripe_emulator).v1.payment_intents.confirm(
            pi_id, params={"payment_method": "pm_card_visa_chargeDeclinedInsufficientFunds"})

    response = student_client.post(CONFIRM_URL, {"payment_intent_id": pi_id}, format="json")

    assert response.status_code == 402
    error = error_of(response)
    assert (error["code"], error["decline_code"]) == ("card_declined", "insufficient_funds")
    assert Payment.objects.get(stripe_payment_intent_id=pi_id).status == PaymentStatus.FAILED
    assert not Booking.objects.exists()


def test_confirm_payment_of_someone_elses_intent_is_404(stripe_emulator, student_client, client_for, other_student,
                                                        gig):
    pi_id = student_client.post(CREATE_INTENT_URL, {"gig_id": gig.pk}, format="json").json()["payment_intent_id"]

    response = client_for(other_student).post(CONFIRM_URL, {"payment_intent_id": pi_id}, format="json")

    assert response.status_code == 404


@pytest.mark.parametrize("role", ["teacher", "admin"])
def test_confirm_payment_is_403_for_a_teacher_or_an_admin(client_for, make_user, role, stripe_emulator):
    response = client_for(make_user(role)).post("/stripe-payments/confirm-payment/",
                                                {"payment_intent_id": "pi_anything"}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_payment_with_a_client_created_payment_method_id(stripe_emulator, pay):
    response = pay(None, payment_method_id="pm_card_mastercard")

    assert response.status_code == 200, response.content
    assert response.json()["card_brand"] == "mastercard" and response.json()["booking_id"]


# --- rules ---------------------------------------------------------------------------------------------------
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
    assert error_of(paid)["code"] == "permission_denied"
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
    assert error_of(response)["code"] == "invalid_request" and error_of(response)["fields"]
    assert stripe_calls(stripe_emulator) == []


@pytest.mark.parametrize("scheduled_at", ["2031-01-01T10:00:00", "2020-01-01T10:00:00Z", "tomorrow"])
def test_scheduled_at_must_be_aware_and_in_the_future(stripe_emulator, pay, scheduled_at):
    response = pay(VISA, scheduled_at=scheduled_at)

    assert response.status_code == 400
    assert "scheduled_at" in error_of(response)["fields"]
    assert stripe_calls(stripe_emulator) == []


def test_scheduled_at_is_carried_to_the_booking(stripe_emulator, pay):
    when = (timezone.now() + timedelta(days=3)).replace(microsecond=0)

    response = pay(VISA, scheduled_at=when.isoformat())

    assert response.status_code == 200
    assert Booking.objects.get(pk=response.json()["booking_id"]).scheduled_at == when


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
    assert error_of(response)["code"] == "invalid_request"
    assert stripe_calls(stripe_emulator) == []


# --- Stripe round trips per operation ------------------------------------------------------------------------
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


# --- failures never book -------------------------------------------------------------------------------------
def test_timeout_answers_504_and_leaves_the_payment_processing_without_booking(stripe_emulator, pay, settings):
    settings.STRIPE_READ_TIMEOUT = 0.3
    settings.STRIPE_MAX_NETWORK_RETRIES = 1
    stripe_emulator.arm_fault("POST", "/v1/payment_intents", "timeout", count=3, seconds=1)

    response = pay(VISA)

    # 504 is the gateway's answer to a read timeout only: the client gave up, twice (one retry).
    assert response.status_code == 504 and error_of(response)["code"] == "payment_provider_timeout"
    assert len(stripe_calls(stripe_emulator, "POST")) == 2
    payment = Payment.objects.get()
    assert payment.status == PaymentStatus.PROCESSING
    assert not Booking.objects.exists()
    keys = [c["idempotency_key"] for c in pi_creates(stripe_emulator)]
    assert keys == [payment_key(payment)] * 2


def test_provider_500_answers_502_after_retries_without_booking(stripe_emulator, pay, settings):
    settings.STRIPE_MAX_NETWORK_RETRIES = 1
    stripe_emulator.arm_fault("POST", "/v1/payment_intents", "error_500", count=5)

    response = pay(VISA)

    assert response.status_code == 502 and error_of(response)["code"] == "payment_provider_error"
    assert len(pi_creates(stripe_emulator)) == 2
    assert Payment.objects.get().status == PaymentStatus.PROCESSING
    assert not Booking.objects.exists()


def test_rate_limit_answers_503_with_retry_after_without_retrying(stripe_emulator, pay):
    stripe_emulator.arm_fault("POST", "/v1/payment_intents", "rate_limit", count=5)

    response = pay(VISA)

    assert response.status_code == 503 and error_of(response)["code"] == "payment_provider_unavailable"
    assert int(response["Retry-After"]) > 0
    assert len(pi_creates(stripe_emulator)) == 1
    assert not Booking.objects.exists()


def test_an_answer_lost_after_stripe_charged_is_recovered_with_the_same_key(stripe_emulator, pay):
    stripe_emulator.arm_fault("POST", "/v1/payment_intents", "drop_after_work", count=1)

    response = pay(VISA)

    assert response.status_code == 200, response.content
    assert len(pi_creates(stripe_emulator)) == 2
    assert len({c["idempotency_key"] for c in pi_creates(stripe_emulator)}) == 1
    assert len([o for o in stripe_emulator.state.objects.values() if o.get("object") == "payment_intent"]) == 1
    assert Booking.objects.count() == 1


@pytest.mark.parametrize("number", [DECLINED, INSUFFICIENT, LOST, CHARGE_FAIL, THREE_DS])
def test_no_booking_for_a_declined_or_unauthenticated_payment(stripe_emulator, pay, number):
    assert pay(number).status_code == 402
    assert not Booking.objects.exists()


# --- a retry resumes the payment its first attempt left ------------------------------------------------------
def test_a_retry_of_a_payment_declined_meanwhile_answers_the_decline(client, client_for, student, gig,
                                                                     stripe_emulator, settings):
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    stripe_emulator.arm_fault("POST", "/v1/payment_intents", "drop_after_work", count=1)
    student_client = client_for(student)
    body = {"gig_id": gig.pk, "card_details": card(DECLINED)}
    first = student_client.post(PAY_URL, body, format="json", headers={"Idempotency-Key": "k-declined"})
    assert first.status_code == 503
    deliver(client, only_event(stripe_emulator, "payment_intent.payment_failed"))

    retry = student_client.post(PAY_URL, body, format="json", headers={"Idempotency-Key": "k-declined"})

    assert retry.status_code == 402
    assert retry.json()["error"]["code"] == "card_declined"
    assert retry.json()["error"]["decline_code"] == "generic_decline"


def test_a_retry_after_a_lost_answer_sends_stripe_the_same_parameters_even_if_the_gig_changed(
        client_for, student, gig, stripe_emulator, settings):
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    stripe_emulator.arm_fault("POST", "/v1/payment_intents", "drop_after_work", count=1)
    student_client = client_for(student)
    body = {"gig_id": gig.pk, "card_details": card(VISA)}
    assert student_client.post(PAY_URL, body, format="json", headers={"Idempotency-Key": "k-rename"}).status_code == 503
    type(gig).objects.filter(pk=gig.pk).update(title="Renamed by the teacher", is_active=False)

    retry = student_client.post(PAY_URL, body, format="json", headers={"Idempotency-Key": "k-rename"})

    assert retry.status_code == 200, retry.content
    assert retry.json()["status"] == "succeeded" and retry.json()["booking_id"]
    assert Payment.objects.count() == 1 and Booking.objects.count() == 1


def test_a_retry_after_reconcile_closed_an_unsent_payment_charges_once_instead_of_a_402(
        client_for, student, gig, stripe_emulator, settings):
    from datetime import timedelta

    from stripe_payments.services.reconciliation import reconcile

    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    client = client_for(student)
    body = {"gig_id": gig.pk, "card_details": card(VISA)}
    headers = {"Idempotency-Key": "never-sent-1"}
    stripe_emulator.arm_fault("POST", "/v1/payment_intents", "error_500")
    assert client.post(PAY_URL, body, format="json", headers=headers).status_code == 502
    reconcile(older_than=timedelta(0))
    payment = Payment.objects.get()
    assert (payment.status, payment.failure_code) == (PaymentStatus.FAILED, lifecycle.NEVER_SENT)

    retry = client.post(PAY_URL, body, format="json", headers=headers)

    assert retry.status_code == 200, retry.content
    assert retry.json()["payment_id"] == payment.pk and retry.json()["booking_id"]
    with stripe_emulator.state.lock:
        intents = [o for o in stripe_emulator.state.objects.values() if o.get("object") == "payment_intent"]
    assert [i["status"] for i in intents] == ["succeeded"]
    assert client.post(PAY_URL, body, format="json", headers=headers).json() == retry.json()


# --- the split of a payment that was never charged -------------------------------------------------------------
@pytest.mark.parametrize("number", [DECLINED, THREE_DS])
def test_an_uncharged_payment_shows_its_intended_split_and_charged_false(stripe_emulator, pay, student_client, number):
    pay(number)

    payment = student_client.get(PAYMENTS_URL).json()["results"][0]
    assert payment["status"] in ("failed", "requires_action") and payment["charged"] is False
    assert (payment["admin_fee_cents"], payment["teacher_amount_cents"]) == (500, 4500)  # the intended split


def test_a_charged_payment_says_so(stripe_emulator, pay, student_client):
    pay(VISA)

    assert student_client.get(PAYMENTS_URL).json()["results"][0]["charged"] is True


@pytest.mark.parametrize("status", [s.value for s in PaymentStatus])
def test_only_charged_statuses_count_as_money_moved(make_paid_booking, student, gig, status):
    payment = make_paid_booking(student=student, gig=gig).payment
    Payment.objects.filter(pk=payment.pk).update(status=status)
    payment.refresh_from_db()

    moved = status in ("succeeded", "partially_refunded", "refunded", "disputed")
    assert payment.charged is moved
    assert list(Payment.objects.charged()) == ([payment] if moved else [])
