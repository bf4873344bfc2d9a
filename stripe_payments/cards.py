"""Local card checks, made before any Stripe call (API_CONTRACT.md, 400 ``invalid_request``).

``CardInput`` holds a raw card only in memory for the one Stripe call; its ``repr`` shows no
number or CVC, so it cannot leak through a log line or a traceback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.utils import timezone

from linguaflex.logging import luhn_valid


@dataclass(frozen=True)
class CardInput:
    number: str = field(repr=False)
    exp_month: int
    exp_year: int
    cvc: str = field(repr=False)
    cardholder_name: str = ""

    @property
    def last4(self) -> str:
        return self.number[-4:]

    def __str__(self) -> str:  # never the number
        return f"card ****{self.last4} {self.exp_month:02d}/{self.exp_year}"


def card_brand(number: str) -> str:
    """Stripe's brand names from the number's prefix."""
    if number.startswith(("34", "37")):
        return "amex"
    if number.startswith("4"):
        return "visa"
    prefix2 = int(number[:2]) if len(number) >= 2 else 0
    prefix4 = int(number[:4]) if len(number) >= 4 else 0
    if 51 <= prefix2 <= 55 or 2221 <= prefix4 <= 2720:
        return "mastercard"
    if number.startswith(("6011", "65")) or 644 <= int(number[:3] or 0) <= 649:
        return "discover"
    if number.startswith(("300", "301", "302", "303", "304", "305", "36", "38", "39")):
        return "diners"
    if 3528 <= prefix4 <= 3589:
        return "jcb"
    if number.startswith("62"):
        return "unionpay"
    return "unknown"


ASCII_DIGITS = re.compile(r"[0-9]+")
# What card_errors accepts, as the OpenAPI schema states it: 13 to 19 ASCII digits, with any spaces or
# dashes among them (normalize_number drops them); the CVC is 3 digits, 4 for American Express.
CARD_NUMBER_PATTERN = r"^[ -]*(?:[0-9][ -]*){13,19}$"
CVC_PATTERN = r"^[0-9]{3,4}$"
MAX_EXPIRY_YEARS_AHEAD = 50


def normalize_number(raw: str) -> str:
    return "".join(ch for ch in raw if ch not in " -")


def card_errors(*, number: str | None, exp_month: int | None, exp_year: int | None,
                cvc: str | None) -> dict[str, list[str]]:
    """Field errors for a raw card; empty when it may be sent to Stripe. A field given as None failed
    to parse (its own error is reported elsewhere): the checks that need it are left out, the
    others still run, so that every problem is reported at once."""
    errors: dict[str, list[str]] = {}
    if number is not None:
        # ASCII digits only: str.isdigit() also accepts "²" or "٣", which broke Luhn and brand detection.
        if not ASCII_DIGITS.fullmatch(number) or not 13 <= len(number) <= 19:
            errors["card_number"] = ["Enter a card number of 13 to 19 digits."]
        elif not luhn_valid(number):
            errors["card_number"] = ["The card number is not valid."]
    month_ok = exp_month is not None and 1 <= exp_month <= 12
    if exp_month is not None and not month_ok:
        errors["exp_month"] = ["The expiry month must be 1 to 12."]
    if exp_year is not None:
        today = timezone.now().date()
        if exp_year < today.year or (month_ok and exp_year == today.year and exp_month < today.month):
            errors["exp_year"] = ["The card has expired."]
        elif exp_year > today.year + MAX_EXPIRY_YEARS_AHEAD:
            errors["exp_year"] = ["The expiry year is too far in the future."]
    if cvc is not None:
        # The brand comes from the number's first digits (a failed Luhn check still names it); without
        # a number of digits it is unknown, and 3 or 4 digits may both be right.
        known = number is not None and ASCII_DIGITS.fullmatch(number) is not None
        lengths = ((4,) if card_brand(number) == "amex" else (3,)) if known else (3, 4)
        if not ASCII_DIGITS.fullmatch(cvc) or len(cvc) not in lengths:
            errors["cvc"] = [f"The CVC must be {' or '.join(map(str, lengths))} digits."]
    return errors
