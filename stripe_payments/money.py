"""The 90/10 split, to the cent (API_CONTRACT.md, "The split"). Integer arithmetic only."""

from __future__ import annotations

from dataclasses import dataclass

PLATFORM_FEE_PERCENT = 10


def round_half_up_div(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half up, for non-negative integers."""
    if numerator < 0 or denominator <= 0:
        raise ValueError("round_half_up_div takes a non-negative numerator and a positive denominator")
    return (2 * numerator + denominator) // (2 * denominator)


@dataclass(frozen=True)
class Split:
    admin_fee_cents: int
    teacher_amount_cents: int


def split_amount(amount_cents: int) -> Split:
    fee = round_half_up_div(amount_cents * PLATFORM_FEE_PERCENT, 100)
    return Split(admin_fee_cents=fee, teacher_amount_cents=amount_cents - fee)


def split_refunded(*, amount_cents: int, admin_fee_cents: int, refunded_cents: int) -> Split:
    """The cumulative split of ``refunded_cents`` refunded so far (full refund = exact fee and share)."""
    if not 0 <= refunded_cents <= amount_cents:
        raise ValueError("refunded_cents must be within the amount")
    fee = round_half_up_div(admin_fee_cents * refunded_cents, amount_cents)
    return Split(admin_fee_cents=fee, teacher_amount_cents=refunded_cents - fee)
