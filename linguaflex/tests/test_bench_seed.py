"""bench/seed.py on the test database: what it writes is consistent (counts, one booking per
payment, the 90/10 split rounded half up, refunds within the amount and in the cumulative split,
Stripe-shaped unique ids, the ledger's invariants)."""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.utils import timezone

from accounts.models import Role, User
from bench.seed import PASSWORD, seed
from bookings.models import Booking, BookingStatus
from stripe_payments.models import (
    CHARGED_STATUSES,
    LedgerEntry,
    Payment,
    PaymentStatus,
    RefundKind,
    RefundRequest,
    RefundRequestStatus,
)
from stripe_payments.money import split_refunded
from stripe_payments.services import ledger

STRIPE_ID = {prefix: re.compile(rf"^{prefix}_[0-9A-Za-z]{{24}}$") for prefix in ("pi", "ch", "pm", "re")}


def _fee(amount: int) -> int:
    return int((Decimal(amount) / 10).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@pytest.fixture
def figures(db):
    return seed(300, teachers=3, students=10)


def test_counts(figures):
    assert figures["rows"]["payments"] == Payment.objects.count() == 300
    assert figures["rows"]["bookings"] == Booking.objects.count() == 300
    assert figures["rows"]["users"] == User.objects.count() == 14
    assert Counter(User.objects.values_list("role", flat=True)) == {Role.ADMIN: 1, Role.TEACHER: 3, Role.STUDENT: 10}
    assert figures["rows"]["refund_requests"] == RefundRequest.objects.count()
    refunds = RefundRequest.objects.count()
    assert figures["rows"]["ledger_entries"] == LedgerEntry.objects.count() == 3 * 300 + 3 * refunds
    statuses = Counter(Payment.objects.values_list("status", flat=True))
    assert statuses == {PaymentStatus.SUCCEEDED: 270, PaymentStatus.PARTIALLY_REFUNDED: 15,
                        PaymentStatus.REFUNDED: 15}
    assert figures["payments_by_status"] == dict(statuses)


def test_one_booking_per_charged_payment(figures):
    assert set(Payment.objects.values_list("status", flat=True)) <= set(CHARGED_STATUSES)
    bookings = {b.payment_id: b for b in Booking.objects.all()}
    assert len(bookings) == 300
    statuses = Counter(b.status for b in bookings.values())
    assert {BookingStatus.PENDING_CONFIRMATION, BookingStatus.CONFIRMED, BookingStatus.COMPLETED} <= set(statuses)
    for p in Payment.objects.all():
        b = bookings[p.pk]
        assert (b.student_id, b.teacher_id, b.gig_id, b.scheduled_at) == (p.student_id, p.teacher_id, p.gig_id,
                                                                          p.scheduled_at)
        assert p.gig.teacher_id == p.teacher_id and p.amount_cents == p.gig.price_cents
        if p.status == PaymentStatus.REFUNDED:
            assert b.status in (BookingStatus.DECLINED, BookingStatus.CANCELLED) and b.closed_at
        else:
            assert b.status in (BookingStatus.PENDING_CONFIRMATION, BookingStatus.CONFIRMED, BookingStatus.COMPLETED)
        if b.status == BookingStatus.COMPLETED:
            assert b.confirmed_at and b.completed_at


def test_split_and_refunds(figures):
    for p in Payment.objects.all():
        assert p.currency == "usd"
        assert p.admin_fee_cents == _fee(p.amount_cents)
        assert p.admin_fee_cents + p.teacher_amount_cents == p.amount_cents
        assert 0 <= p.refunded_cents <= p.amount_cents
        refunds = list(p.refund_requests.all())
        assert all(r.status == RefundRequestStatus.SUCCEEDED and r.applied and r.amount_cents > 0 for r in refunds)
        assert sum(r.amount_cents for r in refunds) == p.refunded_cents
        split = split_refunded(amount_cents=p.amount_cents, admin_fee_cents=p.admin_fee_cents,
                               refunded_cents=p.refunded_cents)
        assert (p.refunded_admin_fee_cents, p.refunded_teacher_cents) == (split.admin_fee_cents,
                                                                          split.teacher_amount_cents)
        if p.status == PaymentStatus.SUCCEEDED:
            assert p.refunded_cents == 0
        elif p.status == PaymentStatus.PARTIALLY_REFUNDED:
            assert 0 < p.refunded_cents < p.amount_cents
            assert {r.kind for r in refunds} == {RefundKind.REQUESTED}
        else:
            assert p.refunded_cents == p.amount_cents and len(refunds) == 1
            assert refunds[0].kind in (RefundKind.DECLINE, RefundKind.CANCEL)


def test_stripe_ids_unique_and_shaped(figures):
    payments = list(Payment.objects.values_list("stripe_payment_intent_id", "stripe_charge_id",
                                                "stripe_payment_method_id"))
    for column, prefix in enumerate(("pi", "ch", "pm")):
        ids = [row[column] for row in payments]
        assert len(set(ids)) == len(ids) == 300
        assert all(STRIPE_ID[prefix].match(i) for i in ids), ids[:3]
    refund_ids = list(RefundRequest.objects.values_list("stripe_refund_id", flat=True))
    assert len(set(refund_ids)) == len(refund_ids) and all(STRIPE_ID["re"].match(i) for i in refund_ids)


def test_timestamps_spread_over_the_year(figures):
    now = timezone.now()
    created = list(Payment.objects.order_by("pk").values_list("created_at", flat=True))
    assert created == sorted(created)
    assert now - timedelta(days=366) < created[0] < now - timedelta(days=200)
    assert created[-1] <= now
    for r in RefundRequest.objects.select_related("payment"):
        assert r.payment.created_at <= r.created_at <= r.decided_at <= now


def test_ledger_and_passwords(figures):
    report = ledger.check()
    assert report.ok, report.differences
    assert report.payments == 300
    assert len(set(User.objects.values_list("password", flat=True))) == 1
    assert User.objects.filter(role=Role.STUDENT).first().check_password(PASSWORD)


def test_a_second_run_adds_rows(figures):
    again = seed(20, teachers=1, students=2, seed=2)
    assert again["tag"] != figures["tag"]
    assert Payment.objects.count() == 320
    assert ledger.check().ok
