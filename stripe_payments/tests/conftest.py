"""Helpers for the payment tests: card bodies, the two payment endpoints, Stripe call counts."""

from __future__ import annotations

from datetime import date

import pytest

ADD_URL = "/stripe-payments/add-payment-method/"
PAY_URL = "/stripe-payments/process-payment/"
METHODS_URL = "/stripe-payments/payment-methods/"
PAYMENTS_URL = "/stripe-payments/payments/"
RETURN_URL = "/stripe-payments/payment-return/"
CREATE_INTENT_URL = "/stripe-payments/create-payment-intent/"
CONFIRM_URL = "/stripe-payments/confirm-payment/"

EXP_YEAR = date.today().year + 3

VISA = "4242424242424242"
DECLINED = "4000000000000002"
INSUFFICIENT = "4000000000009995"
LOST = "4000000000009987"
MASTERCARD = "5555555555554444"
AMEX = "378282246310005"
THREE_DS = "4000002500003155"
CHARGE_FAIL = "4000000000000341"
BAD_LUHN = "4242424242424241"


def card(number: str = VISA, *, cvc: str | None = None, exp_month: int = 12, exp_year: int = EXP_YEAR, **extra) -> dict:
    if cvc is None:
        cvc = "1234" if number.startswith(("34", "37")) else "123"
    return {"card_number": number, "exp_month": exp_month, "exp_year": exp_year, "cvc": cvc, **extra}


def stripe_calls(emulator, method: str | None = None, prefix: str = "/v1/") -> list[dict]:
    """The emulator's /v1 request log (no emulator control routes)."""
    return [r for r in emulator.requests()
            if r["path"].startswith(prefix) and (method is None or r["method"] == method)]


@pytest.fixture
def student_client(client_for, student):
    return client_for(student)


@pytest.fixture
def add_card(student_client):
    """POST add-payment-method as ``student`` (or ``client``)."""

    def post(number: str = VISA, *, client=None, headers=None, **card_extra):
        body = card(number, **card_extra)
        return (client or student_client).post(ADD_URL, body, format="json", headers=headers or {})

    return post


@pytest.fixture
def pay(student_client, gig):
    """POST process-payment for ``gig`` (or ``gig_id``) as ``student`` (or ``client``)."""

    def post(number: str | None = VISA, *, client=None, gig_id=None, headers=None, save_card=None,
             saved_payment_method_id=None, payment_method_id=None, cvc=None, **extra):
        body: dict = {"gig_id": gig_id if gig_id is not None else gig.pk, **extra}
        if number is not None:
            body["card_details"] = card(number, cvc=cvc)
        if save_card is not None:
            body["save_card"] = save_card
        if saved_payment_method_id is not None:
            body["saved_payment_method_id"] = saved_payment_method_id
        if payment_method_id is not None:
            body["payment_method_id"] = payment_method_id
        return (client or student_client).post(PAY_URL, body, format="json", headers=headers or {})

    return post
