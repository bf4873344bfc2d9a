"""What the person paying is told when a card is refused: the table (decline_messages.py), and every
test card end to end, through process-payment, add-payment-method and the 3-D Secure return page.

The API's ``message`` is the student's; ``code`` and ``decline_code`` stay Stripe's; Stripe's own
text is kept on the payment (``provider_failure_message``) and in the log, never in a response.
"""

from __future__ import annotations

import html
import json
import logging

import pytest
import stripe

from stripe_emulator.api._intent_common import AUTH_FAILURE_MESSAGE
from stripe_emulator.cards import DECLINE_MESSAGES as EMULATOR_TEXT
from stripe_payments import gateway
from stripe_payments.decline_messages import (
    CODE_MESSAGES,
    CONCEALED_DECLINE_CODES,
    DECLINE_MESSAGES,
    GENERIC_DECLINE,
    customer_message,
)
from stripe_payments.models import Payment, PaymentStatus, SavedPaymentMethod
from stripe_payments.money import split_amount
from stripe_payments.services import lifecycle

from .conftest import (
    CHARGE_FAIL,
    CONFIRM_URL,
    DECLINED,
    INSUFFICIENT,
    LOST,
    PAY_URL,
    PAYMENTS_URL,
    RETURN_URL,
    THREE_DS,
    card,
    deliver,
    error_of,
    only_event,
    through_3ds_page,
)

STOLEN = "4000000000009979"
EXPIRED = "4000000000000069"
INCORRECT_CVC = "4000000000000127"
PROCESSING_ERROR = "4000000000000119"
AUTH_ALWAYS = "4000002760003184"

# Stripe's decline codes (https://docs.stripe.com/declines/codes).
STRIPE_DECLINE_CODES = [
    "authentication_required", "approve_with_id", "call_issuer", "card_not_supported", "card_velocity_exceeded",
    "currency_not_supported", "do_not_honor", "do_not_try_again", "duplicate_transaction", "expired_card",
    "fraudulent", "generic_decline", "incorrect_number", "incorrect_cvc", "incorrect_pin", "incorrect_zip",
    "insufficient_funds", "invalid_account", "invalid_amount", "invalid_cvc", "invalid_expiry_month",
    "invalid_expiry_year", "invalid_number", "invalid_pin", "issuer_not_available", "lost_card",
    "merchant_blacklist", "new_account_information_available", "no_action_taken", "not_permitted",
    "offline_pin_required", "online_or_offline_pin_required", "pickup_card", "pin_try_exceeded",
    "processing_error", "reenter_transaction", "restricted_card", "revocation_of_all_authorizations",
    "revocation_of_authorization", "security_violation", "service_not_allowed", "stolen_card",
    "stop_payment_order", "testmode_decline", "transaction_not_allowed", "try_again_later",
    "withdrawal_count_limit_exceeded",
]
# Stripe's card error codes the project can meet, and the project's own failure codes.
STRIPE_CARD_ERROR_CODES = [
    "card_declined", "expired_card", "incorrect_cvc", "incorrect_number", "incorrect_zip", "invalid_cvc",
    "invalid_expiry_month", "invalid_expiry_year", "invalid_number", "processing_error", "insufficient_funds",
    "authentication_required", "payment_intent_authentication_failure", "setup_intent_authentication_failure",
    "card_decline_rate_limit_exceeded", "payment_intent_payment_attempt_failed", "setup_attempt_failed",
]
PROJECT_FAILURE_CODES = ["invalid_request", "abandoned", lifecycle.NEVER_SENT]

ALL_MESSAGES = [*DECLINE_MESSAGES.values(), *CODE_MESSAGES.values(), GENERIC_DECLINE]
# What Stripe's developer text says and a student must never read.
DEVELOPER_WORDS = ("PaymentMethod", "payment_method", "PaymentIntent", "SetupIntent", "fulfill", "provide")
# What a concealed decline must not give away.
CONCEALED_WORDS = ("lost", "stolen", "fraud", "pick", "blacklist", "blocklist", "report", "suspicious")


# --- the table ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("decline_code", STRIPE_DECLINE_CODES)
def test_every_stripe_decline_code_has_a_message(decline_code):
    assert decline_code in DECLINE_MESSAGES
    assert customer_message("card_declined", decline_code) == DECLINE_MESSAGES[decline_code]


@pytest.mark.parametrize("code", STRIPE_CARD_ERROR_CODES + PROJECT_FAILURE_CODES)
def test_every_card_error_code_and_project_failure_code_has_a_message(code):
    assert code in CODE_MESSAGES
    assert customer_message(code, None) == CODE_MESSAGES[code]


@pytest.mark.parametrize("message", sorted(set(ALL_MESSAGES)))
def test_messages_are_short_plain_and_say_what_to_do_next(message):
    assert 0 < len(message) < 120
    assert message[0].isupper() and message.endswith(".")
    assert not any(word in message for word in DEVELOPER_WORDS)
    assert "_" not in message  # no code names
    next_steps = ("another card", "try again", "check", "contact your bank", "pay again", "use a real card")
    assert any(step in message.lower() for step in next_steps), message


@pytest.mark.parametrize("decline_code", ["lost_card", "stolen_card", "fraudulent", "pickup_card", "merchant_blacklist"])
def test_a_concealed_decline_is_told_as_the_generic_decline(decline_code):
    assert decline_code in CONCEALED_DECLINE_CODES
    for code in ("card_declined", "expired_card", None):
        message = customer_message(code, decline_code)
        assert message == GENERIC_DECLINE
        assert not any(word in message.lower() for word in CONCEALED_WORDS)


def test_no_message_of_the_table_reveals_a_concealed_reason():
    for message in ALL_MESSAGES:
        assert not any(word in message.lower() for word in CONCEALED_WORDS), message


@pytest.mark.parametrize("code,decline_code", [
    ("card_declined", "a_code_stripe_adds_next_year"), ("something_new", None), (None, None), ("", ""),
])
def test_an_unknown_code_is_the_generic_decline(code, decline_code):
    assert customer_message(code, decline_code) == GENERIC_DECLINE


def test_the_decline_code_is_more_precise_than_the_error_code():
    assert customer_message("card_declined", "insufficient_funds") == DECLINE_MESSAGES["insufficient_funds"]
    assert customer_message("card_declined", "expired_card") == DECLINE_MESSAGES["expired_card"]
    assert customer_message("payment_intent_authentication_failure", None) == \
        CODE_MESSAGES["payment_intent_authentication_failure"]
    assert customer_message("card_declined", "unknown_reason") == CODE_MESSAGES["card_declined"]


# --- end to end, against the emulator ----------------------------------------------------------------------
# card -> (code, decline_code, Stripe's text): what Stripe answers for it, at set-up and at a charge.
REFUSED = {
    DECLINED: ("card_declined", "generic_decline", EMULATOR_TEXT["generic_decline"]),
    INSUFFICIENT: ("card_declined", "insufficient_funds", EMULATOR_TEXT["insufficient_funds"]),
    LOST: ("card_declined", "lost_card", EMULATOR_TEXT["lost_card"]),
    STOLEN: ("card_declined", "stolen_card", EMULATOR_TEXT["stolen_card"]),
    EXPIRED: ("expired_card", "expired_card", EMULATOR_TEXT["expired_card"]),
    INCORRECT_CVC: ("incorrect_cvc", "incorrect_cvc", EMULATOR_TEXT["incorrect_cvc"]),
    PROCESSING_ERROR: ("processing_error", "processing_error", EMULATOR_TEXT["processing_error"]),
}


def _shown_to_student(client, *responses) -> str:
    """Everything the student's client can read about their payments: the given responses, and the
    payment list and detail."""
    texts = [r.content.decode() for r in responses]
    listing = client.get(PAYMENTS_URL)
    assert listing.status_code == 200
    texts.append(listing.content.decode())
    for payment in listing.json()["results"]:
        texts.append(client.get(f"{PAYMENTS_URL}{payment['id']}/").content.decode())
    return "\n".join(texts)


def _forms(text: str) -> tuple[str, ...]:
    return text, json.dumps(text)[1:-1], html.escape(text)  # as is, in JSON, in HTML


def _assert_no_stripe_text(shown: str, stripe_text: str) -> None:
    """Stripe's text appears nowhere, except inside the student's message when that starts with
    the same plain words ("Your card has insufficient funds. Use another card ...")."""
    for message in sorted(set(ALL_MESSAGES), key=len, reverse=True):
        for form in _forms(message):
            shown = shown.replace(form, "<the student's message>")
    for form in _forms(stripe_text):
        assert form not in shown
    assert "provider_failure_message" not in shown


def _assert_payment_failure(payment: Payment, code: str, decline_code: str | None, stripe_text: str) -> None:
    assert payment.status == PaymentStatus.FAILED
    assert (payment.failure_code, payment.decline_code) == (code, decline_code or "")
    assert payment.failure_message == customer_message(code, decline_code)
    assert payment.provider_failure_message == stripe_text


@pytest.mark.django_db
@pytest.mark.emulator
@pytest.mark.parametrize("number", list(REFUSED))
def test_process_payment_with_a_refused_new_card_tells_the_students_message(stripe_emulator, pay, student_client,
                                                                             number):
    code, decline_code, stripe_text = REFUSED[number]
    if number in (EXPIRED, INCORRECT_CVC):
        assert customer_message(code, decline_code) != stripe_text  # not Stripe's, even when it is plain

    response = pay(number)

    assert response.status_code == 402, response.content
    error = error_of(response)
    assert (error["code"], error.get("decline_code")) == (code, decline_code)
    assert error["message"] == customer_message(code, decline_code)
    payment = Payment.objects.get(pk=error["payment_id"])
    _assert_payment_failure(payment, code, decline_code, stripe_text)
    detail = student_client.get(f"{PAYMENTS_URL}{payment.pk}/").json()
    assert detail["failure_message"] == error["message"] and detail["failure_code"] == code
    _assert_no_stripe_text(_shown_to_student(student_client, response), stripe_text)


@pytest.mark.django_db
@pytest.mark.emulator
@pytest.mark.parametrize("number", list(REFUSED))
def test_add_payment_method_with_a_refused_card_tells_the_students_message(stripe_emulator, add_card, number):
    code, decline_code, stripe_text = REFUSED[number]

    response = add_card(number)

    assert response.status_code == 402, response.content
    error = error_of(response)
    assert (error["code"], error.get("decline_code")) == (code, decline_code)
    assert error["message"] == customer_message(code, decline_code)
    _assert_no_stripe_text(response.content.decode(), stripe_text)
    assert not SavedPaymentMethod.objects.exists()


@pytest.mark.django_db
@pytest.mark.emulator
def test_a_charge_fail_card_added_then_charged_tells_the_students_message(stripe_emulator, add_card, pay,
                                                                         student_client):
    added = add_card(CHARGE_FAIL)
    assert added.status_code == 200, added.content

    response = pay(None, saved_payment_method_id=added.json()["payment_method_id"])

    assert response.status_code == 402
    error = error_of(response)
    assert (error["code"], error["decline_code"]) == ("card_declined", "generic_decline")
    assert error["message"] == GENERIC_DECLINE
    _assert_payment_failure(Payment.objects.get(), "card_declined", "generic_decline", EMULATOR_TEXT["generic_decline"])
    _assert_no_stripe_text(_shown_to_student(student_client, response), EMULATOR_TEXT["generic_decline"])


@pytest.mark.django_db
@pytest.mark.emulator
def test_a_charge_fail_card_paid_with_as_a_new_card_tells_the_students_message(stripe_emulator, pay):
    error = error_of(pay(CHARGE_FAIL))

    assert (error["code"], error["decline_code"], error["message"]) == ("card_declined", "generic_decline",
                                                                        GENERIC_DECLINE)


@pytest.mark.django_db
@pytest.mark.emulator
def test_a_saved_card_that_needs_authentication_off_session_tells_the_student_to_confirm(
        stripe_emulator, add_card, pay, api_client, student_client):
    error = error_of(add_card(AUTH_ALWAYS))
    assert error["code"] == "authentication_required"
    assert api_client.get(through_3ds_page(error["redirect_url"]), HTTP_ACCEPT="application/json").json()["success"]
    saved = SavedPaymentMethod.objects.get()

    response = pay(None, saved_payment_method_id=saved.stripe_payment_method_id)

    assert response.status_code == 402, response.content
    error = error_of(response)
    assert (error["code"], error["decline_code"]) == ("authentication_required", "authentication_required")
    assert error["message"] == DECLINE_MESSAGES["authentication_required"]
    payment = Payment.objects.get(pk=error["payment_id"])
    assert payment.failure_message == error["message"]
    assert payment.provider_failure_message and payment.provider_failure_message not in response.content.decode()
    _assert_no_stripe_text(_shown_to_student(student_client, response), payment.provider_failure_message)


@pytest.mark.django_db
@pytest.mark.emulator
def test_a_failed_3ds_payment_tells_the_students_message_never_stripes(stripe_emulator, pay, api_client,
                                                                        student_client, caplog):
    caplog.set_level(logging.INFO, logger="stripe_payments")
    first = pay(THREE_DS)
    error = error_of(first)
    assert error["code"] == "authentication_required"
    stripe_text = AUTH_FAILURE_MESSAGE.format(what="PaymentIntent")

    page = api_client.get(through_3ds_page(error["redirect_url"], succeed=False), HTTP_ACCEPT="application/json")

    code = "payment_intent_authentication_failure"
    assert page.status_code == 200 and page.json()["status"] == "failed"
    assert page.json()["message"] == CODE_MESSAGES[code]
    payment = Payment.objects.get(pk=error["payment_id"])
    _assert_payment_failure(payment, code, None, stripe_text)
    # Asking about the payment again answers the failure from its row: the student's message, Stripe's code.
    confirmed = student_client.post(CONFIRM_URL, {"payment_intent_id": payment.stripe_payment_intent_id},
                                    format="json")
    assert confirmed.status_code == 402
    assert (error_of(confirmed)["code"], error_of(confirmed)["message"]) == (code, CODE_MESSAGES[code])
    page_html = api_client.get(RETURN_URL, {"payment_intent": payment.stripe_payment_intent_id})
    assert page_html.status_code == 200
    shown = _shown_to_student(student_client, first, page, confirmed, page_html)
    _assert_no_stripe_text(shown, stripe_text)
    assert "failed authentication" not in shown
    # Stripe's text is for admins: on the payment, and in the log.
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("stripe_payments")]
    assert any(code in line and stripe_text in line and f"payment {payment.pk} " in line for line in logged)


@pytest.mark.django_db
@pytest.mark.emulator
def test_a_card_whose_3ds_failed_tells_the_students_message(stripe_emulator, add_card, api_client):
    error = error_of(add_card(THREE_DS))

    page = api_client.get(through_3ds_page(error["redirect_url"], succeed=False), HTTP_ACCEPT="application/json")

    assert page.status_code == 200 and page.json()["success"] is False
    assert page.json()["message"] == CODE_MESSAGES["setup_intent_authentication_failure"]
    assert "failed authentication" not in page.content.decode()


@pytest.mark.django_db
@pytest.mark.emulator
def test_a_decline_known_from_the_webhook_is_answered_with_the_students_message(client, client_for, student, gig,
                                                                               stripe_emulator, settings):
    """The answer was lost; the webhook settled the payment from the intent's last_payment_error; the
    retry answers from the row."""
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    stripe_emulator.arm_fault("POST", "/v1/payment_intents", "drop_after_work", count=1)
    student_client = client_for(student)
    body = {"gig_id": gig.pk, "card_details": card(INSUFFICIENT)}
    assert student_client.post(PAY_URL, body, format="json", headers={"Idempotency-Key": "k-lost"}).status_code == 503
    deliver(client, only_event(stripe_emulator, "payment_intent.payment_failed"))

    retry = student_client.post(PAY_URL, body, format="json", headers={"Idempotency-Key": "k-lost"})

    assert retry.status_code == 402
    error = error_of(retry)
    assert (error["code"], error["decline_code"]) == ("card_declined", "insufficient_funds")
    assert error["message"] == DECLINE_MESSAGES["insufficient_funds"]
    _assert_payment_failure(Payment.objects.get(), "card_declined", "insufficient_funds",
                            EMULATOR_TEXT["insufficient_funds"])
    _assert_no_stripe_text(_shown_to_student(student_client, retry), EMULATOR_TEXT["insufficient_funds"])


@pytest.mark.django_db
def test_a_project_failure_tells_the_students_message_and_keeps_its_own_text_for_admins(student, gig):
    split = split_amount(gig.price_cents)
    payment = Payment.objects.create(
        student=student, teacher=gig.teacher, gig=gig, amount_cents=gig.price_cents, currency="usd",
        admin_fee_cents=split.admin_fee_cents, teacher_amount_cents=split.teacher_amount_cents,
        status=PaymentStatus.REQUIRES_ACTION)

    lifecycle.payment_fail(payment_id=payment.pk,
                           failure=gateway.CardFailure("abandoned", None, "The payment was not completed in time."))

    payment.refresh_from_db()
    assert payment.failure_message == CODE_MESSAGES["abandoned"]
    assert payment.provider_failure_message == "The payment was not completed in time."


# --- the gateway's card error ------------------------------------------------------------------------------
def test_a_stripe_card_error_keeps_stripes_text_inside_and_renders_the_students_message():
    text = "The provided PaymentMethod pm_1Abc has failed authentication. You can provide payment_method_data."
    body = {"error": {"type": "card_error", "code": "card_declined", "decline_code": "lost_card", "message": text}}
    mapped = gateway._map_error(stripe.CardError(text, None, "card_declined", http_status=402, json_body=body))

    assert isinstance(mapped, gateway.CardError)
    assert mapped.message == gateway.scrub_ids(text) and "pm_1Abc" not in mapped.message  # for logs and admins
    assert mapped.failure == gateway.CardFailure("card_declined", "lost_card", gateway.scrub_ids(text))
    assert mapped.payload() == {"success": False, "error": {"code": "card_declined", "message": GENERIC_DECLINE,
                                                            "decline_code": "lost_card"}}


def test_an_intents_last_error_has_its_ids_masked():
    failure = gateway._card_failure_from({"code": "card_declined", "message": "Card pm_9Zz of cus_8Yy was declined."})

    assert failure == gateway.CardFailure("card_declined", None, "Card [id] of [id] was declined.")


# --- payments that failed before this change ---------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_the_migration_moves_stripes_text_off_older_failed_payments(student, gig):
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before = [("stripe_payments", "0005_payment_idempotency_key")]
    after = [("stripe_payments", "0006_payment_provider_failure_message")]
    MigrationExecutor(connection).migrate(before)
    try:
        old = MigrationExecutor(connection).loader.project_state(before).apps.get_model("stripe_payments", "Payment")
        split = split_amount(gig.price_cents)
        common = dict(student_id=student.pk, teacher_id=gig.teacher_id, gig_id=gig.pk, amount_cents=gig.price_cents,
                      currency="usd", admin_fee_cents=split.admin_fee_cents,
                      teacher_amount_cents=split.teacher_amount_cents)
        failed = old.objects.create(**common, status="failed", failure_code="payment_intent_authentication_failure",
                                    failure_message=AUTH_FAILURE_MESSAGE.format(what="PaymentIntent"))
        ok = old.objects.create(**common, status="succeeded")

        MigrationExecutor(connection).migrate(after)
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())  # the schema the other tests expect

    failed, ok = Payment.objects.get(pk=failed.pk), Payment.objects.get(pk=ok.pk)
    assert failed.failure_message == CODE_MESSAGES["payment_intent_authentication_failure"]
    assert failed.provider_failure_message == AUTH_FAILURE_MESSAGE.format(what="PaymentIntent")
    assert (ok.failure_message, ok.provider_failure_message) == ("", "")
