"""Test cards: brand detection, validation and the behaviour of Stripe's test numbers.

A card number and its CVC live only inside the functions of this module while a request is
handled. What leaves it is a :class:`CardSummary` (brand, last4, expiry, fingerprint and the name
of a behaviour), which is all the emulator ever stores.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import hashlib
import hmac
from typing import Optional

from .errors import StripeError

# A fixed key, so that a number always has the same fingerprint, across restarts too.
_FINGERPRINT_KEY = b"stripe-emulator-card-fingerprint-v1"


@dataclasses.dataclass(frozen=True)
class Behaviour:
    """How a card behaves when it is attached, set up and charged.

    auth: "none"; "required" (3-D Secure on set-up and on-session payments, none off-session once
    set up: 4000002500003155); "always" (every payment, off-session ones fail: 4000002760003184).
    decline: a decline_code applied to attach, set-up and charges.
    charge_decline: a decline_code applied to charges only (4000000000000341).
    """

    name: str
    auth: str = "none"
    decline: Optional[str] = None
    charge_decline: Optional[str] = None
    # "succeed" (at once), "pending" (pending, succeeds later: 4000000000007726) or
    # "fail_later" (succeeded, fails later with expired_or_canceled_card: 4000000000005126).
    refund: str = "succeed"
    # The charge's funds are available at once instead of two days later (4000000000000077,
    # Stripe's card for testing the available balance: transfers and payouts need it).
    available_at_once: bool = False


BEHAVIOURS = {
    b.name: b
    for b in [
        Behaviour("success"),
        Behaviour("generic_decline", decline="generic_decline"),
        Behaviour("insufficient_funds", decline="insufficient_funds"),
        Behaviour("lost_card", decline="lost_card"),
        Behaviour("stolen_card", decline="stolen_card"),
        Behaviour("expired_card", decline="expired_card"),
        Behaviour("incorrect_cvc", decline="incorrect_cvc"),
        Behaviour("processing_error", decline="processing_error"),
        Behaviour("charge_customer_fail", charge_decline="generic_decline"),
        Behaviour("auth_required", auth="required"),
        Behaviour("auth_always", auth="always"),
        Behaviour("auth_then_insufficient_funds", auth="always", charge_decline="insufficient_funds"),
        Behaviour("refund_pending", refund="pending"),
        Behaviour("refund_fail_later", refund="fail_later"),
        Behaviour("available_balance", available_at_once=True),
    ]
}

# Stripe's test numbers (https://docs.stripe.com/testing) and their behaviour.
TEST_NUMBERS = {
    "4242424242424242": "success",
    "4000056655665556": "success",  # visa debit
    "5555555555554444": "success",
    "2223003122003222": "success",
    "5200828282828210": "success",  # mastercard debit
    "378282246310005": "success",
    "371449635398431": "success",
    "6011111111111117": "success",
    "3056930009020004": "success",
    "3566002020360505": "success",
    "6200000000000005": "success",
    "4000000000000002": "generic_decline",
    "4000000000009995": "insufficient_funds",
    "4000000000009987": "lost_card",
    "4000000000009979": "stolen_card",
    "4000000000000069": "expired_card",
    "4000000000000127": "incorrect_cvc",
    "4000000000000119": "processing_error",
    "4000000000000341": "charge_customer_fail",
    "4000002500003155": "auth_required",
    "4000002760003184": "auth_always",
    "4000000000003220": "auth_always",
    "4000008260003178": "auth_then_insufficient_funds",
    "4000000000007726": "refund_pending",  # refunds: pending, then succeeded
    "4000000000005126": "refund_fail_later",  # refunds: succeeded, then failed
    "4000000000000077": "available_balance",  # funds available at once, not pending
}

DEBIT_NUMBERS = {"4000056655665556", "5200828282828210"}

# Stripe's test PaymentMethod ids: each use clones the card into a fresh pm_ object.
TEST_PAYMENT_METHODS = {
    "pm_card_visa": "4242424242424242",
    "pm_card_bypassPending": "4000000000000077",
    "pm_card_visa_debit": "4000056655665556",
    "pm_card_mastercard": "5555555555554444",
    "pm_card_mastercard_debit": "5200828282828210",
    "pm_card_amex": "378282246310005",
    "pm_card_discover": "6011111111111117",
    "pm_card_diners": "3056930009020004",
    "pm_card_jcb": "3566002020360505",
    "pm_card_unionpay": "6200000000000005",
    "pm_card_visa_chargeDeclined": "4000000000000002",
    "pm_card_visa_chargeDeclinedInsufficientFunds": "4000000000009995",
    "pm_card_visa_chargeDeclinedLostCard": "4000000000009987",
    "pm_card_visa_chargeDeclinedStolenCard": "4000000000009979",
    "pm_card_visa_chargeDeclinedExpiredCard": "4000000000000069",
    "pm_card_visa_chargeDeclinedIncorrectCvc": "4000000000000127",
    "pm_card_visa_chargeDeclinedProcessingError": "4000000000000119",
    "pm_card_chargeCustomerFail": "4000000000000341",
    "pm_card_authenticationRequiredOnSetup": "4000002500003155",
    "pm_card_authenticationRequired": "4000002760003184",
    "pm_card_threeDSecure2Required": "4000000000003220",
}

# Card tokens (tok_visa ...) accepted in card[token].
TEST_TOKENS = {
    "tok_visa": "4242424242424242",
    "tok_mastercard": "5555555555554444",
    "tok_amex": "378282246310005",
    "tok_chargeDeclined": "4000000000000002",
    "tok_chargeDeclinedInsufficientFunds": "4000000000009995",
}

DISPLAY_BRAND = {"amex": "american_express", "diners": "diners_club"}


@dataclasses.dataclass(frozen=True)
class CardSummary:
    """All the emulator keeps of a card."""

    brand: str
    last4: str
    exp_month: int
    exp_year: int
    fingerprint: str
    funding: str
    behaviour: str
    cvc_provided: bool


def brand_for(number: str) -> str:
    if number.startswith("4"):
        return "visa"
    two, four = int(number[:2]), int(number[:4])
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return "mastercard"
    if two in (34, 37):
        return "amex"
    if number.startswith("6011") or number.startswith("65") or 644 <= int(number[:3]) <= 649:
        return "discover"
    if two in (36, 38, 39) or 300 <= int(number[:3]) <= 305:
        return "diners"
    if two == 35:
        return "jcb"
    if two == 62:
        return "unionpay"
    return "unknown"


def luhn_ok(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def fingerprint_for(number: str) -> str:
    digest = hmac.new(_FINGERPRINT_KEY, number.encode(), hashlib.sha256).digest()
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    value = int.from_bytes(digest[:12], "big")
    out = []
    for _ in range(16):
        value, r = divmod(value, 62)
        out.append(alphabet[r])
    return "".join(out)


def _card_error(code: str, message: str, param: str) -> StripeError:
    return StripeError(402, "card_error", message, code=code, param=param)


def _to_int(value, param: str, code: str, message: str) -> int:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        raise _card_error(code, message, param) from None


def summarize(card: dict, param_prefix: str, today: Optional[_dt.date] = None) -> CardSummary:
    """Validate raw card fields (number, exp_month, exp_year, cvc) and summarize them.

    Raises a 402 card_error like Stripe for a bad number, expiry or CVC. Error messages never
    contain the number or the CVC.
    """
    today = today or _dt.date.today()
    token = card.get("token")
    if token is not None and "number" not in card:
        number = TEST_TOKENS.get(str(token))
        if number is None:
            raise StripeError(400, "invalid_request_error", f"No such token: '{token}'",
                              code="resource_missing", param=f"{param_prefix}[token]")
        return summary_for_test_number(number)
    raw = card.get("number")
    if raw is None or raw == "":
        raise StripeError(400, "invalid_request_error",
                          f"Missing required param: {param_prefix}[number].",
                          code="parameter_missing", param=f"{param_prefix}[number]")
    number = str(raw).replace(" ", "").replace("-", "")
    if not number.isdigit():
        raise _card_error("invalid_number", "The card number is not a valid credit card number.",
                          f"{param_prefix}[number]")
    if not 12 <= len(number) <= 19 or not luhn_ok(number):
        raise _card_error("incorrect_number", "Your card number is incorrect.",
                          f"{param_prefix}[number]")
    for field in ("exp_month", "exp_year"):
        if card.get(field) in (None, ""):
            raise StripeError(400, "invalid_request_error",
                              f"Missing required param: {param_prefix}[{field}].",
                              code="parameter_missing", param=f"{param_prefix}[{field}]")
    exp_month = _to_int(card["exp_month"], f"{param_prefix}[exp_month]", "invalid_expiry_month",
                        "Your card's expiration month is invalid.")
    exp_year = _to_int(card["exp_year"], f"{param_prefix}[exp_year]", "invalid_expiry_year",
                       "Your card's expiration year is invalid.")
    if exp_year < 100:
        exp_year += 2000
    if not 1 <= exp_month <= 12:
        raise _card_error("invalid_expiry_month", "Your card's expiration month is invalid.",
                          f"{param_prefix}[exp_month]")
    if exp_year < today.year or exp_year > today.year + 50:
        raise _card_error("invalid_expiry_year", "Your card's expiration year is invalid.",
                          f"{param_prefix}[exp_year]")
    if exp_year == today.year and exp_month < today.month:
        raise _card_error("invalid_expiry_month", "Your card's expiration month is invalid.",
                          f"{param_prefix}[exp_month]")
    brand = brand_for(number)
    cvc = card.get("cvc")
    if cvc not in (None, ""):
        cvc = str(cvc)
        wanted = 4 if brand == "amex" else 3
        if not cvc.isdigit() or len(cvc) != wanted:
            raise _card_error("invalid_cvc", "Your card's security code is invalid.",
                              f"{param_prefix}[cvc]")
    return CardSummary(
        brand=brand,
        last4=number[-4:],
        exp_month=exp_month,
        exp_year=exp_year,
        fingerprint=fingerprint_for(number),
        funding="debit" if number in DEBIT_NUMBERS else "credit",
        behaviour=TEST_NUMBERS.get(number, "success"),
        cvc_provided=cvc not in (None, ""),
    )


@functools.lru_cache(maxsize=64)
def summary_for_test_number(number: str) -> CardSummary:
    """The card behind a test PaymentMethod id or token (expiry: December, five years on).

    Only Stripe's public test numbers come here, so caching them keeps no real card data.
    """
    return CardSummary(
        brand=brand_for(number),
        last4=number[-4:],
        exp_month=12,
        exp_year=_dt.date.today().year + 5,
        fingerprint=fingerprint_for(number),
        funding="debit" if number in DEBIT_NUMBERS else "credit",
        behaviour=TEST_NUMBERS.get(number, "success"),
        cvc_provided=True,
    )


DECLINE_MESSAGES = {
    "generic_decline": "Your card was declined.",
    "insufficient_funds": "Your card has insufficient funds.",
    "lost_card": "Your card was declined.",
    "stolen_card": "Your card was declined.",
    "expired_card": "Your card has expired.",
    "incorrect_cvc": "Your card's security code is incorrect.",
    "processing_error": "An error occurred while processing your card. Try again in a little bit.",
    "authentication_required": "Your card was declined. This transaction requires authentication.",
}

ERROR_CODE_FOR_DECLINE = {
    "expired_card": "expired_card",
    "incorrect_cvc": "incorrect_cvc",
    "processing_error": "processing_error",
    "authentication_required": "authentication_required",
}


def decline_error_code(decline_code: str) -> str:
    return ERROR_CODE_FOR_DECLINE.get(decline_code, "card_declined")
