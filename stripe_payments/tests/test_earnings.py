"""GET /stripe-payments/earnings/: a teacher's figures from the ledger, in total and per calendar
month (UTC), in cents and dollars; teachers only, and only their own rows."""

from __future__ import annotations

import datetime as dt

import pytest

from linguaflex.errors import Forbidden
from stripe_payments import selectors_ledger

from .conftest import ledger_refund, ledger_transfer

pytestmark = pytest.mark.django_db

URL = "/stripe-payments/earnings/"
UTC = dt.timezone.utc
FIGURES = ("gross", "platform_fee", "refunded", "net", "paid_out", "owed")
KEYS = {*FIGURES, *(f"{name}_cents" for name in FIGURES)}


@pytest.fixture
def charge(ledger_charge):
    return ledger_charge


transfer, refund = ledger_transfer, ledger_refund


@pytest.fixture
def history(charge, teacher, other_teacher):
    """October: a 50.00 lesson (fee 5.00, share 45.00). November: its share paid out, a 30.00 lesson
    (fee 3.00, share 27.00) refunded 10.00 (fee 1.00, share 9.00) while still owed. Another teacher's
    20.00 lesson in November."""
    a = charge(teacher, 5000, dt.datetime(2026, 10, 15, 12, tzinfo=UTC))
    transfer(a, dt.datetime(2026, 11, 3, 9, tzinfo=UTC))
    b = charge(teacher, 3000, dt.datetime(2026, 11, 10, 23, 59, tzinfo=UTC))
    refund(b, 1000, dt.datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC))
    charge(other_teacher, 2000, dt.datetime(2026, 11, 12, tzinfo=UTC))
    return a, b


def cents_and_dollars(**cents: int) -> dict:
    return {**{f"{k}_cents": v for k, v in cents.items()}, **{k: v / 100 for k, v in cents.items()}}


def test_a_teacher_sees_totals_and_each_month_newest_first_in_cents_and_dollars(history, client_for, teacher):
    response = client_for(teacher).get(URL)

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"totals", "months"}
    assert set(body["totals"]) == KEYS
    assert body["totals"] == cents_and_dollars(gross=8000, platform_fee=700, refunded=1000, net=6300,
                                               paid_out=4500, owed=1800)
    assert [m["month"] for m in body["months"]] == ["2026-11", "2026-10"]
    assert list(body["months"][0])[0] == "month" and set(body["months"][0]) == KEYS | {"month"}
    november, october = body["months"]
    assert october == {"month": "2026-10", **cents_and_dollars(gross=5000, platform_fee=500, refunded=0, net=4500,
                                                               paid_out=0, owed=4500)}
    # November's flows: the share paid out leaves owed; the refund takes its fee and share parts back.
    assert november == {"month": "2026-11", **cents_and_dollars(gross=3000, platform_fee=200, refunded=1000,
                                                                net=1800, paid_out=4500, owed=-2700)}


def test_dollars_are_two_decimal_numbers(charge, client_for, teacher):
    charge(teacher, 3333, dt.datetime(2026, 5, 1, tzinfo=UTC))  # fee 333, share 3000

    totals = client_for(teacher).get(URL).json()["totals"]

    assert (totals["gross"], totals["platform_fee"], totals["net"], totals["owed"]) == (33.33, 3.33, 30.0, 30.0)
    assert isinstance(totals["gross_cents"], int) and isinstance(totals["gross"], float)


def test_months_are_calendar_months_in_utc(charge, client_for, teacher):
    charge(teacher, 1000, dt.datetime(2026, 1, 31, 23, 59, 59, tzinfo=UTC))
    charge(teacher, 2000, dt.datetime(2026, 2, 1, 0, 0, 0, tzinfo=UTC))

    months = client_for(teacher).get(URL).json()["months"]

    assert [(m["month"], m["gross_cents"]) for m in months] == [("2026-02", 2000), ("2026-01", 1000)]


def test_a_teacher_sees_only_their_own_rows(history, client_for, other_teacher, make_user):
    body = client_for(other_teacher).get(URL).json()
    assert body["totals"] == cents_and_dollars(gross=2000, platform_fee=200, refunded=0, net=1800, paid_out=0,
                                               owed=1800)
    assert [m["month"] for m in body["months"]] == ["2026-11"]

    newcomer = make_user("teacher")
    assert client_for(newcomer).get(URL).json() == {
        "totals": cents_and_dollars(gross=0, platform_fee=0, refunded=0, net=0, paid_out=0, owed=0), "months": []}


def test_students_and_admins_are_refused_and_anonymous_must_authenticate(history, client_for, student, admin_user):
    for user in (student, admin_user):
        response = client_for(user).get(URL)
        assert response.status_code == 403
        body = response.json()
        assert body["success"] is False and body["error"]["code"] == "permission_denied"
    anonymous = client_for(None).get(URL)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "not_authenticated"


def test_only_get_is_allowed(client_for, teacher):
    assert client_for(teacher).post(URL, {}, format="json").status_code == 405


def test_the_selector_matches_the_view_and_refuses_non_teachers(history, teacher, student):
    earnings = selectors_ledger.earnings_for_teacher(teacher=teacher)
    assert (earnings.totals.gross_cents, earnings.totals.net_cents) == (8000, 6300)
    assert [m.month for m in earnings.months] == ["2026-11", "2026-10"]
    with pytest.raises(Forbidden):
        selectors_ledger.earnings_for_teacher(teacher=student)


def test_the_schema_documents_the_response(client):
    import yaml

    schema = yaml.safe_load(client.get("/api/schema/").content)
    operation = schema["paths"][URL]["get"]
    assert set(operation["responses"]) >= {"200", "401", "403"}
    ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    components = schema["components"]["schemas"]
    assert set(components[ref]["properties"]) == {"totals", "months"}
    totals = components[components[ref]["properties"]["totals"]["allOf"][0]["$ref"].rsplit("/", 1)[1]
                        if "allOf" in components[ref]["properties"]["totals"]
                        else components[ref]["properties"]["totals"]["$ref"].rsplit("/", 1)[1]]
    assert set(totals["properties"]) == KEYS
