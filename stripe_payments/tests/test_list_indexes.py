"""Every list's filter and order is served by an index (PostgreSQL): read in order, newest first,
with no sort of the rows the user has, so a page costs the same at 1,000 rows and at 100,000.

With sequential scans, bitmap scans and sorts made prohibitively dear, the planner reads an index
in order whenever one can serve the query; a ``Sort`` node left in the plan means none serves the
ORDER BY. (On a table this small it would otherwise prefer a scan and a sort, which says nothing.)"""

from __future__ import annotations

import pytest
from django.db import connection

from bookings.selectors import booking_list
from stripe_payments.selectors import payment_list, refund_request_list

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


OFF = ("enable_seqscan", "enable_bitmapscan", "enable_sort")


def _plan(queryset) -> str:
    with connection.cursor() as cursor:
        for setting in OFF:
            cursor.execute(f"SET LOCAL {setting} = off")
    try:
        return queryset[:20].explain()
    finally:
        with connection.cursor() as cursor:
            for setting in OFF:
                cursor.execute(f"SET LOCAL {setting} = on")


LISTS = {
    "payments": lambda user, status=None: payment_list(user=user, status=status),
    "bookings": lambda user, status=None: booking_list(user=user, status=status),
    "refunds": lambda user, status=None: refund_request_list(user=user, status=status),
}


@pytest.mark.parametrize("name", ["payments", "bookings", "refunds"])
@pytest.mark.parametrize("status", [None, "succeeded"])
def test_an_admins_list_is_read_in_index_order(name, status, admin_user):
    status = {"bookings": "confirmed" if status else None, "refunds": "pending" if status else None}.get(name, status)
    plan = _plan(LISTS[name](admin_user, status))

    assert "Index" in plan and "Sort" not in plan, plan


@pytest.mark.parametrize("name", ["payments", "bookings"])
@pytest.mark.parametrize("role", ["student", "teacher"])
def test_a_users_own_list_is_read_in_index_order_on_their_side_only(name, role, request):
    user = request.getfixturevalue(role)
    plan = _plan(LISTS[name](user))

    assert "Index" in plan and "Sort" not in plan, plan
    other = "teacher" if role == "student" else "student"
    assert f"Index Cond: ({role}_id = {user.pk})" in plan, plan
    assert f"{other}_id = {user.pk}" not in plan, plan


@pytest.mark.parametrize("role", ["student", "teacher"])
def test_a_users_own_payments_by_status_are_found_by_the_index_not_filtered_from_all_theirs(role, request):
    user = request.getfixturevalue(role)
    plan = _plan(LISTS["payments"](user, "refunded"))

    assert "Sort" not in plan, plan
    assert f"Index Cond: (({role}_id = {user.pk}) AND ((status)::text = 'refunded'::text))" in plan, plan
