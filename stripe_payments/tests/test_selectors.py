"""Payment reads: scoped to the requesting user, at a fixed number of queries per list."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from linguaflex.errors import NotFound
from stripe_payments import selectors
from stripe_payments.models import SavedPaymentMethod

from .conftest import PAYMENTS_URL

pytestmark = pytest.mark.django_db


@pytest.fixture
def payments(student, other_student, teacher, other_teacher, make_gig, make_paid_booking):
    gig = make_gig(teacher)
    other_gig = make_gig(other_teacher)
    return {
        "mine": make_paid_booking(student=student, gig=gig).payment,
        "other_teacher": make_paid_booking(student=student, gig=other_gig).payment,
        "other_student": make_paid_booking(student=other_student, gig=gig).payment,
    }


def _ids(qs) -> set[int]:
    return {p.pk for p in qs}


def test_student_sees_own_payments_only(payments, student):
    assert _ids(selectors.payment_list(user=student)) == {payments["mine"].pk, payments["other_teacher"].pk}


def test_teacher_sees_own_gigs_payments_only(payments, teacher, other_teacher):
    assert _ids(selectors.payment_list(user=teacher)) == {payments["mine"].pk, payments["other_student"].pk}
    assert _ids(selectors.payment_list(user=other_teacher)) == {payments["other_teacher"].pk}


def test_admin_sees_every_payment(payments, admin_user):
    assert _ids(selectors.payment_list(user=admin_user)) == {p.pk for p in payments.values()}


def test_payment_list_is_newest_first_and_filters_by_status(payments, admin_user):
    listed = list(selectors.payment_list(user=admin_user))

    assert [p.pk for p in listed] == sorted((p.pk for p in listed), reverse=True)
    assert list(selectors.payment_list(user=admin_user, status="failed")) == []


def test_payment_get_visible_is_404_for_an_invisible_payment(payments, other_student, student):
    assert selectors.payment_get_visible(user=student, payment_id=payments["mine"].pk) == payments["mine"]
    with pytest.raises(NotFound):
        selectors.payment_get_visible(user=other_student, payment_id=payments["mine"].pk)


def test_payment_list_with_its_gig_and_booking_is_one_query(payments, admin_user, django_assert_num_queries):
    with django_assert_num_queries(1):
        rows = [(p.gig.title, p.booking.pk) for p in selectors.payment_list(user=admin_user)]
    assert len(rows) == 3


def test_payments_endpoint_costs_the_same_queries_for_1_or_many_payments(client_for, student, teacher, make_gig,
                                                                         make_paid_booking):
    client = client_for(student)
    gig = make_gig(teacher)
    make_paid_booking(student=student, gig=gig)

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(PAYMENTS_URL).status_code == 200
        return len(ctx.captured_queries)

    one = queries()
    for _ in range(6):
        make_paid_booking(student=student, gig=gig)
    assert queries() == one


def test_saved_cards_are_the_users_own_newest_first(student, other_student):
    def save(user, pm_id, fingerprint):
        return SavedPaymentMethod.objects.create(user=user, stripe_payment_method_id=pm_id, brand="visa", last4="4242",
                                                 exp_month=12, exp_year=2030, fingerprint=fingerprint)

    older = save(student, "pm_a", "fa")
    newer = save(student, "pm_b", "fb")
    save(other_student, "pm_c", "fa")

    assert list(selectors.saved_payment_method_list(user=student)) == [newer, older]
    assert [selectors.card_is_saved(student_id=student.pk, payment_method_id=pm) for pm in ("pm_a", "pm_b", "pm_c")] \
        == [True, True, False]
    # The same card typed in again is a new PaymentMethod with the saved one's fingerprint.
    assert selectors.card_is_saved(student_id=student.pk, payment_method_id="pm_new", fingerprint="fa")
    assert not selectors.card_is_saved(student_id=other_student.pk, payment_method_id="pm_new", fingerprint="fb")
