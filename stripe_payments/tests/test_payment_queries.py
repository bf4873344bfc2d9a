"""process-payment's database work, counted (issue 15): a regression guard, not a speed test.

Real transactions (``transaction=True``), as in production: every statement the request sends is
counted, savepoints included; not the transaction control itself (BEGIN and COMMIT, which Django
logs on SQLite and not on PostgreSQL), and not the e-mails' delivery, which in production happens
after the response or in a worker. The payment carries an Idempotency-Key, as clients send it."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from bookings.models import Booking
from linguaflex.models import OutboundEmail
from stripe_payments import gateway
from stripe_payments.models import LedgerEntry, Payment, PaymentStatus
from stripe_payments.services import lifecycle

pytestmark = [pytest.mark.emulator, pytest.mark.django_db(transaction=True)]

# Auth user, Idempotency-Key recorded, gig (with the teacher's connected account), saved card (with
# the customer id), INSERT payment; after Stripe: the compare-and-set UPDATE, ledger, booking, the
# two e-mails in one INSERT; the key's answer stored.
SAVED_CARD_STATEMENTS = 10


@pytest.fixture(autouse=True)
def mail_not_sent_in_the_request(monkeypatch):
    monkeypatch.setattr("linguaflex.mail.enqueue", lambda email_id: None)


def _statements(queries) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if q["sql"].split(" ")[0] not in ("BEGIN", "COMMIT")]


def _key() -> dict:
    return {"Idempotency-Key": str(uuid.uuid4())}


def _saved_card(add_card, pay) -> str:
    pm = add_card(save_for_future=True).json()["payment_method_id"]
    pay(None, saved_payment_method_id=pm, headers=_key())  # the customer and the card's owner exist from here on
    return pm


def test_a_saved_card_payment_stays_within_its_statement_budget(stripe_emulator, add_card, pay):
    pm = _saved_card(add_card, pay)

    with CaptureQueriesContext(connection) as queries:
        response = pay(None, saved_payment_method_id=pm, headers=_key())

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["booking_id"] and body["payment_method_saved"] is True
    statements = _statements(queries)
    assert len(statements) <= SAVED_CARD_STATEMENTS, "\n".join(s[:120] for s in statements)
    assert not any("SAVEPOINT" in s for s in statements)
    # Nothing is read twice, and nothing the settle writes is looked up first.
    assert not any(s.startswith('SELECT') and ("bookings_booking" in s or "ledgerentry" in s) for s in statements)


def test_the_fast_settle_writes_what_the_careful_one_writes(stripe_emulator, add_card, pay):
    pm = _saved_card(add_card, pay)

    response = pay(None, saved_payment_method_id=pm, headers=_key())

    payment = Payment.objects.get(pk=response.json()["payment_id"])
    assert payment.status == PaymentStatus.SUCCEEDED and payment.stripe_charge_id and payment.stripe_payment_intent_id
    assert Booking.objects.filter(payment=payment).count() == 1
    assert sorted(LedgerEntry.objects.filter(payment=payment).values_list("amount_cents", flat=True)) == sorted(
        [-payment.amount_cents, payment.admin_fee_cents, payment.teacher_amount_cents])
    booking = Booking.objects.get(payment=payment)
    assert sorted(OutboundEmail.objects.filter(
        key__in=[f"stripe_payments.notifications.render_receipt:{payment.pk}",
                 f"bookings.notifications.render_new_booking:{booking.pk}"]).values_list("renderer", flat=True)) == [
        "bookings.notifications.render_new_booking", "stripe_payments.notifications.render_receipt"]


def test_a_payment_a_webhook_settled_first_settles_the_careful_way_once(stripe_emulator, add_card, pay, monkeypatch):
    """The compare-and-set finds the row moved (the webhook won the race): nothing is written twice."""
    pm = _saved_card(add_card, pay)
    fast = lifecycle.payment_settle_new

    def webhook_first(*, payment, intent):
        lifecycle.payment_settle_from_intent(payment_id=payment.pk, intent=intent)
        return fast(payment=payment, intent=intent)

    monkeypatch.setattr(lifecycle, "payment_settle_new", webhook_first)
    response = pay(None, saved_payment_method_id=pm, headers=_key())

    assert response.status_code == 200, response.content
    payment = Payment.objects.get(pk=response.json()["payment_id"])
    assert response.json()["booking_id"] == Booking.objects.get(payment=payment).pk
    assert LedgerEntry.objects.filter(movement=f"charge:{payment.pk}").count() == 3
    assert OutboundEmail.objects.filter(key__endswith=f"render_receipt:{payment.pk}").count() == 1


def test_a_row_that_should_be_new_but_exists_sends_the_settle_the_careful_way(stripe_emulator, add_card, pay,
                                                                              monkeypatch):
    """An e-mail already recorded for the payment (a broken invariant): the fast settle's INSERT
    conflicts, its transaction rolls back whole, and the careful settle writes the rest once."""
    pm = _saved_card(add_card, pay)
    create = gateway.payment_intent_create

    def with_a_stray_receipt(**kwargs):
        intent = create(**kwargs)
        payment_id = int(kwargs["metadata"]["payment_id"])
        OutboundEmail.objects.create(key=f"stripe_payments.notifications.render_receipt:{payment_id}",
                                     renderer="stripe_payments.notifications.render_receipt", object_id=payment_id)
        return intent

    monkeypatch.setattr(gateway, "payment_intent_create", with_a_stray_receipt)
    response = pay(None, saved_payment_method_id=pm, headers=_key())

    assert response.status_code == 200, response.content
    payment = Payment.objects.get(pk=response.json()["payment_id"])
    assert payment.status == PaymentStatus.SUCCEEDED
    assert Booking.objects.filter(payment=payment).count() == 1
    assert LedgerEntry.objects.filter(movement=f"charge:{payment.pk}").count() == 3
    booking = Booking.objects.get(payment=payment)
    assert OutboundEmail.objects.filter(key=f"stripe_payments.notifications.render_receipt:{payment.pk}").count() == 1
    assert OutboundEmail.objects.filter(key=f"bookings.notifications.render_new_booking:{booking.pk}").count() == 1


def test_a_new_card_payment_reads_nothing_it_settles(stripe_emulator, pay):
    with CaptureQueriesContext(connection) as queries:
        response = pay(headers=_key())

    assert response.status_code == 200, response.content
    statements = _statements(queries)
    assert not any("SAVEPOINT" in s for s in statements), "\n".join(s[:120] for s in statements)
    # The card's owner recorded in one INSERT ... ON CONFLICT, not a look-up and an insert.
    assert not any(s.startswith("SELECT") and "paymentmethodowner" in s for s in statements)
