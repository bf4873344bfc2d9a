"""The 90/10 split against an independent oracle: dollars as Decimal, rounded ROUND_HALF_UP."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stripe_payments.money import round_half_up_div, split_amount, split_refunded

CENT = Decimal("0.01")
FEE_RATE = Decimal("0.10")


def oracle_fee_cents(amount_cents: int) -> int:
    """The contract's fee, computed the way an accountant would: in dollars, half up to the cent."""
    dollars = Decimal(amount_cents) / 100
    fee = (dollars * FEE_RATE).quantize(CENT, rounding=ROUND_HALF_UP)
    return int(fee * 100)


def oracle_refunded_fee_cents(admin_fee_cents: int, refunded_cents: int, amount_cents: int) -> int:
    exact = Decimal(admin_fee_cents) * Decimal(refunded_cents) / Decimal(amount_cents)
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@pytest.mark.parametrize("price,fee,share", [
    ("0.50", 5, 45),
    ("0.55", 6, 49),  # 5.5 cents rounds half up
    ("0.65", 7, 58),  # 6.5 cents: half up, not banker's rounding to 6
    ("33.33", 333, 3000),
    ("9999.99", 100000, 899999),  # 99,999.9 cents
    ("0.05", 1, 4),  # the contract's own examples
    ("0.25", 3, 22),
])
def test_split_of_known_prices_matches_the_decimal_oracle(price, fee, share):
    cents = int(Decimal(price) * 100)

    split = split_amount(cents)

    assert oracle_fee_cents(cents) == fee
    assert (split.admin_fee_cents, split.teacher_amount_cents) == (fee, share)


def test_split_of_every_price_from_50_cents_to_10000_dollars_matches_the_oracle():
    mismatches = []
    for cents in range(50, 1_000_001):
        split = split_amount(cents)
        if split.admin_fee_cents != oracle_fee_cents(cents) or \
                split.admin_fee_cents + split.teacher_amount_cents != cents:
            mismatches.append(cents)
            if len(mismatches) > 10:
                break
    assert mismatches == []


def test_round_half_up_div_rounds_halves_up_and_refuses_negatives():
    assert [round_half_up_div(n, 10) for n in (4, 5, 6, 14, 15, 25)] == [0, 1, 1, 1, 2, 3]
    with pytest.raises(ValueError):
        round_half_up_div(-1, 10)
    with pytest.raises(ValueError):
        round_half_up_div(1, 0)


@given(amount=st.integers(min_value=50, max_value=1_000_000), data=st.data())
def test_cumulative_refund_split_matches_the_oracle_and_a_full_refund_returns_fee_and_share(amount, data):
    split = split_amount(amount)
    refunds = data.draw(st.lists(st.integers(min_value=1, max_value=amount), max_size=6))

    refunded = 0
    previous = split_refunded(amount_cents=amount, admin_fee_cents=split.admin_fee_cents, refunded_cents=0)
    assert (previous.admin_fee_cents, previous.teacher_amount_cents) == (0, 0)
    for part in refunds + [amount]:  # whatever came before, the rest is refunded at the end
        refunded = min(amount, refunded + part)
        current = split_refunded(amount_cents=amount, admin_fee_cents=split.admin_fee_cents, refunded_cents=refunded)
        assert current.admin_fee_cents == oracle_refunded_fee_cents(split.admin_fee_cents, refunded, amount)
        assert current.admin_fee_cents + current.teacher_amount_cents == refunded
        assert previous.admin_fee_cents <= current.admin_fee_cents <= split.admin_fee_cents
        assert previous.teacher_amount_cents <= current.teacher_amount_cents <= split.teacher_amount_cents
        previous = current

    assert (previous.admin_fee_cents, previous.teacher_amount_cents) == (split.admin_fee_cents,
                                                                         split.teacher_amount_cents)


def test_every_cumulative_refund_of_small_prices_stays_within_fee_and_share():
    for amount in range(50, 400):
        split = split_amount(amount)
        for refunded in range(amount + 1):
            part = split_refunded(amount_cents=amount, admin_fee_cents=split.admin_fee_cents, refunded_cents=refunded)
            assert 0 <= part.admin_fee_cents <= split.admin_fee_cents
            assert 0 <= part.teacher_amount_cents <= split.teacher_amount_cents
        full = split_refunded(amount_cents=amount, admin_fee_cents=split.admin_fee_cents, refunded_cents=amount)
        assert full == split


@pytest.mark.parametrize("refunded", [-1, 5001])
def test_refund_split_refuses_amounts_outside_the_payment(refunded):
    with pytest.raises(ValueError):
        split_refunded(amount_cents=5000, admin_fee_cents=500, refunded_cents=refunded)
