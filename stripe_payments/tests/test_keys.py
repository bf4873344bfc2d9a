from datetime import datetime, timezone

from stripe_payments.keys import customer_key, payment_key, row_key


class _Row:
    def __init__(self, pk, created_at):
        self.pk, self.created_at = pk, created_at


def test_a_row_key_names_the_row_by_id_and_creation_instant():
    created = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)
    assert row_key("payment", 7, created, "create") == f"lf-payment-7-{int(created.timestamp() * 1_000_000)}-create"


def test_the_same_id_in_a_reset_database_gets_another_key():
    before = _Row(1, datetime(2026, 1, 1, tzinfo=timezone.utc))
    after_reset = _Row(1, datetime(2026, 1, 1, 0, 0, 1, tzinfo=timezone.utc))
    assert payment_key(before) != payment_key(after_reset)


def test_keys_are_stable_for_one_row(student):
    assert customer_key(student) == customer_key(student)
    assert len(customer_key(student)) < 255
