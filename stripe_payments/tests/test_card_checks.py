"""Local card checks (stripe_payments/cards.py): Luhn, brand, expiry and CVC length, and through both
card endpoints, a 400 before any Stripe call."""

from __future__ import annotations

from datetime import datetime
from datetime import timezone as dt_timezone
from unittest import mock

import pytest
from django.utils import timezone

from linguaflex.logging import luhn_valid
from stripe_payments.cards import CardInput, card_brand, card_errors, normalize_number
from stripe_payments.models import Payment

from .conftest import (
    ADD_URL,
    AMEX,
    BAD_LUHN,
    CHARGE_FAIL,
    DECLINED,
    INSUFFICIENT,
    LOST,
    MASTERCARD,
    PAY_URL,
    THREE_DS,
    VISA,
    card,
    error_of,
    stripe_calls,
)

CONTRACT_CARDS = [VISA, DECLINED, INSUFFICIENT, LOST, MASTERCARD, AMEX, THREE_DS, CHARGE_FAIL]


@pytest.mark.parametrize("number", CONTRACT_CARDS + ["6011111111111117", "3056930009020004", "2223003122003222"])
def test_luhn_accepts_valid_numbers(number):
    assert luhn_valid(number)


@pytest.mark.parametrize("number", [BAD_LUHN, "4242424242424243", "5555555555554443", "378282246310006"])
def test_luhn_refuses_a_wrong_check_digit(number):
    assert not luhn_valid(number)


@pytest.mark.parametrize("number,brand", [
    (VISA, "visa"), (MASTERCARD, "mastercard"), ("2223003122003222", "mastercard"), (AMEX, "amex"),
    ("371449635398431", "amex"), ("6011111111111117", "discover"), ("3056930009020004", "diners"),
    ("3566002020360505", "jcb"), ("6200000000000005", "unionpay"), ("9999999999999995", "unknown"),
])
def test_brand_from_the_number_uses_stripes_names(number, brand):
    assert card_brand(number) == brand


def test_normalize_number_drops_spaces_and_dashes():
    assert normalize_number("4242 4242-4242 4242") == VISA


FROZEN_NOW = datetime(2030, 6, 15, 12, 0, tzinfo=dt_timezone.utc)


@pytest.fixture
def june_2030():
    with mock.patch("stripe_payments.cards.timezone.now", return_value=FROZEN_NOW):
        yield


@pytest.mark.parametrize("month,year,ok", [
    (6, 2030, True),  # valid through the end of its month
    (5, 2030, False),
    (12, 2029, False),
    (1, 2031, True),
    (12, 2080, True),
    (1, 2081, False),  # more than 50 years ahead
])
def test_expiry_in_the_past_or_too_far_ahead_is_refused(june_2030, month, year, ok):
    errors = card_errors(number=VISA, exp_month=month, exp_year=year, cvc="123")
    assert ("exp_year" not in errors) is ok


@pytest.mark.parametrize("month", [0, 13])
def test_expiry_month_outside_1_to_12_is_refused(june_2030, month):
    assert "exp_month" in card_errors(number=VISA, exp_month=month, exp_year=2031, cvc="123")


@pytest.mark.parametrize("number,cvc,ok", [
    (VISA, "123", True), (VISA, "1234", False), (VISA, "12", False), (VISA, "12a", False), (VISA, "", False),
    (VISA, "¹²³", False), (VISA, "١٢٣", False),
    (MASTERCARD, "999", True),
    (AMEX, "1234", True), (AMEX, "123", False), (AMEX, "12345", False),
])
def test_cvc_is_four_digits_for_amex_and_three_otherwise(june_2030, number, cvc, ok):
    assert ("cvc" not in card_errors(number=number, exp_month=1, exp_year=2031, cvc=cvc)) is ok


@pytest.mark.parametrize("number", ["424242424242", "4" * 20, "4242abcd42424242", "", BAD_LUHN,
                                    "²²²²²²²²²²²²²¹¹³", "٤٢٤٢٤٢٤٢٤٢٤٢٤٢٤٢", "４２４２４２４２４２４２４２４２"])
def test_number_of_the_wrong_length_digits_or_checksum_is_refused(june_2030, number):
    assert "card_number" in card_errors(number=number, exp_month=1, exp_year=2031, cvc="123")


def test_a_valid_card_has_no_errors(june_2030):
    assert card_errors(number=VISA, exp_month=1, exp_year=2031, cvc="123") == {}


def test_card_input_never_shows_its_number_or_cvc():
    card = CardInput(number=VISA, exp_month=1, exp_year=2031, cvc="987")

    for text in (repr(card), str(card), f"{card}", repr([card])):
        assert VISA not in text and "987" not in text
    assert card.last4 == "4242"


# --- through the endpoints: a 400 before any Stripe call -----------------------------------------------------
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


@pytest.mark.emulator
@pytest.mark.parametrize("override,field", CARD_ERRORS)
def test_card_validation_errors_are_400_before_any_stripe_call(stripe_emulator, student_client, gig, override,
                                                               field):
    bad_card = {**card(VISA), **override}

    added = student_client.post(ADD_URL, bad_card, format="json")
    paid = student_client.post(PAY_URL, {"gig_id": gig.pk, "card_details": bad_card}, format="json")

    assert added.status_code == 400 and paid.status_code == 400
    assert field in error_of(added)["fields"]
    assert field in error_of(paid)["fields"]["card_details"]
    assert stripe_calls(stripe_emulator) == []
    assert not Payment.objects.exists()


@pytest.mark.emulator
@pytest.mark.parametrize("number", ["²²²²²²²²²²²²²¹¹³", "٤٢٤٢٤٢٤٢٤٢٤٢٤٢٤٢"])
def test_non_ascii_digits_in_a_card_number_are_a_400_before_any_stripe_call(
        client_for, student, gig, stripe_emulator, number):
    client = client_for(student)
    added = client.post(ADD_URL, {**card(VISA), "card_number": number}, format="json")
    paid = client.post(PAY_URL, {"gig_id": gig.pk, "card_details": {**card(VISA), "card_number": number}},
                       format="json")

    assert added.status_code == 400 and "card_number" in added.json()["error"]["fields"]
    assert paid.status_code == 400
    assert stripe_emulator.requests() == []


@pytest.mark.emulator
def test_amex_with_a_four_digit_cvc_is_accepted(stripe_emulator, add_card):
    assert add_card(AMEX, cvc="1234").status_code == 200


# --- every problem in one answer ------------------------------------------------------------------------------
def test_card_errors_skips_only_the_checks_of_a_field_that_did_not_parse(june_2030):
    errors = card_errors(number=BAD_LUHN, exp_month=None, exp_year=2020, cvc="1")

    assert set(errors) == {"card_number", "exp_year", "cvc"}
    assert card_errors(number=None, exp_month=None, exp_year=None, cvc=None) == {}


@pytest.mark.parametrize("number,cvc,ok", [
    (None, "123", True), (None, "1234", True), (None, "12", False),  # no number: either length may be right
    (BAD_LUHN, "1234", False),  # a failed Luhn check still names the brand (visa: 3 digits)
    ("37828224631000x", "123", True), ("37828224631000x", "12345", False),
])
def test_the_cvc_length_follows_the_brand_only_when_the_number_names_one(june_2030, number, cvc, ok):
    assert ("cvc" not in card_errors(number=number, exp_month=1, exp_year=2031, cvc=cvc)) is ok


# The example: a failing Luhn check, month 13, a past year and a 1-digit CVC, all in one answer.
EVERY_FIELD_WRONG = {"card_number": BAD_LUHN, "exp_month": 13, "exp_year": 2020, "cvc": "1"}


@pytest.mark.emulator
def test_add_payment_method_reports_every_card_fields_problem_at_once(stripe_emulator, student_client):
    response = student_client.post(ADD_URL, EVERY_FIELD_WRONG, format="json")

    assert response.status_code == 400
    fields = error_of(response)["fields"]
    assert set(fields) == {"card_number", "exp_month", "exp_year", "cvc"}
    assert fields["card_number"] == ["The card number is not valid."]
    assert fields["exp_year"] == ["The card has expired."]
    assert stripe_calls(stripe_emulator) == []


@pytest.mark.emulator
def test_process_payment_reports_card_and_other_fields_problems_at_once(stripe_emulator, student_client):
    response = student_client.post(PAY_URL, {"gig_id": "abc", "card_details": EVERY_FIELD_WRONG,
                                             "scheduled_at": "2020-01-01T10:00:00"}, format="json")

    assert response.status_code == 400
    fields = error_of(response)["fields"]
    assert set(fields) == {"gig_id", "card_details", "scheduled_at"}
    assert set(fields["card_details"]) == {"card_number", "exp_month", "exp_year", "cvc"}
    assert stripe_calls(stripe_emulator) == []
    assert not Payment.objects.exists()


@pytest.mark.emulator
def test_a_missing_payment_source_is_reported_with_a_bad_gig_id(stripe_emulator, student_client):
    response = student_client.post(PAY_URL, {"gig_id": 0}, format="json")

    fields = error_of(response)["fields"]
    assert set(fields) == {"gig_id", "card_details"}
    assert "exactly one of" in fields["card_details"][0]


@pytest.mark.emulator
def test_a_missing_card_field_is_reported_beside_the_others(stripe_emulator, student_client):
    response = student_client.post(ADD_URL, {"card_number": BAD_LUHN, "exp_year": 2020, "cvc": "1"}, format="json")

    fields = error_of(response)["fields"]
    assert set(fields) == {"card_number", "exp_month", "exp_year", "cvc"}
    assert fields["exp_month"] == ["This field is required."]
