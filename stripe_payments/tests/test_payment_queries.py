"""process-payment's database work, counted (issue 15): a regression guard, not a speed test.

Statements only: the test database wraps each test in a transaction, so every inner atomic block
is a savepoint here; in production the settle is one transaction."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

pytestmark = [pytest.mark.emulator, pytest.mark.django_db]

# Auth user, gig, saved card, customer, connected account, INSERT payment, lock, student, card
# owner, UPDATE payment, ledger check + insert, booking check + insert, two e-mails.
SAVED_CARD_STATEMENTS = 16


def _statements(queries) -> list[str]:
    return [q["sql"] for q in queries if "SAVEPOINT" not in q["sql"]]


def test_a_saved_card_payment_stays_within_its_statement_budget(stripe_emulator, add_card, pay):
    pm = add_card(save_for_future=True).json()["payment_method_id"]
    pay(None, saved_payment_method_id=pm)  # the customer and the card's owner exist from here on

    with CaptureQueriesContext(connection) as queries:
        response = pay(None, saved_payment_method_id=pm)

    assert response.status_code == 200
    body = response.json()
    assert body["booking_id"] and body["payment_method_saved"] is True
    statements = _statements(queries.captured_queries)
    assert len(statements) <= SAVED_CARD_STATEMENTS, "\n".join(s[:120] for s in statements)
    # The answer's booking and saved-card flag come from the settle, not from more reads.
    assert not any(s.startswith("SELECT 1") and "savedpaymentmethod" in s for s in statements)
    assert sum(s.startswith('SELECT "bookings_booking"') for s in statements) <= 1
