"""The staff revenue page (/admin/stripe_payments/revenue/): per day and per month from the ledger,
in dollars, with an inline SVG chart and a CSV download; the ledger, transfer and connected account
changelists."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

import pytest
from django.contrib import admin as django_admin

from stripe_payments import selectors_ledger
from stripe_payments.models import ConnectedAccount, LedgerEntry

from .conftest import date_movement, ledger_refund, ledger_transfer

pytestmark = pytest.mark.django_db

REVENUE = "/admin/stripe_payments/revenue/"
LEDGER = "/admin/stripe_payments/ledgerentry/"
TRANSFERS = "/admin/stripe_payments/teachertransfer/"
ACCOUNTS = "/admin/stripe_payments/connectedaccount/"
UTC = dt.timezone.utc


def day(y: int, m: int, d: int, hour: int = 12) -> dt.datetime:
    return dt.datetime(y, m, d, hour, tzinfo=UTC)


at = date_movement


@pytest.fixture
def staff(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def charge(ledger_charge):
    return ledger_charge


transfer, refund = ledger_transfer, ledger_refund


def dispute(payment, cents: int, fee_cents: int, when: dt.datetime) -> None:
    """A chargeback's rows (no service writes them yet): the student gets it back, fee and share go."""
    movement = f"dispute:test{payment.pk}"
    A, K = "student", "dispute"
    LedgerEntry.objects.bulk_create([
        LedgerEntry(movement=movement, account=account, kind=K, amount_cents=amount, payment=payment,
                    teacher=payment.teacher)
        for account, amount in ((A, cents), ("platform_fees", -fee_cents), ("teacher_owed", -(cents - fee_cents)))])
    at(movement, when)


@pytest.fixture
def history(charge, teacher, other_teacher):
    """2026-01-10: 50.00 (fee 5.00) and another teacher's 20.00 (fee 2.00). 2026-01-12: the 50.00's
    share (45.00) paid out, the 20.00 refunded 10.00 (fee 1.00, share 9.00). 2026-03-05: 30.00
    (fee 3.00); 2026-03-06: 10.00 of it disputed (fee 1.00, share 9.00)."""
    a = charge(teacher, 5000, day(2026, 1, 10, 1))
    c = charge(other_teacher, 2000, day(2026, 1, 10, 23))
    transfer(a, day(2026, 1, 12))
    refund(c, 1000, day(2026, 1, 12))
    b = charge(teacher, 3000, day(2026, 3, 5))
    dispute(b, 1000, 100, day(2026, 3, 6))
    return a, b, c


def table(response) -> dict[str, list[str]]:
    """{period label: [gross, fees, refunds, disputes, paid out, owed]} as the page shows them."""
    html = response.content.decode()
    rows = re.findall(r'<tr data-period="([^"]+)"><th scope="row">[^<]+</th>(.*?)</tr>', html, re.S)
    return {label: re.findall(r'<td class="money">([^<]*)</td>', cells) for label, cells in rows}


def test_the_day_table_shows_each_day_newest_first_in_dollars(staff, history):
    response = staff.get(REVENUE, {"since": "2026-01-10", "until": "2026-01-12"})

    assert response.status_code == 200
    assert "admin/stripe_payments/revenue.html" in [t.name for t in response.templates]
    days = table(response)
    assert list(days) == ["2026-01-12", "2026-01-11", "2026-01-10"]
    assert days["2026-01-10"] == ["$70.00", "$7.00", "$0.00", "$0.00", "$0.00", "$63.00"]
    assert days["2026-01-11"] == ["$0.00", "$0.00", "$0.00", "$0.00", "$0.00", "$63.00"]  # owed carries over
    assert days["2026-01-12"] == ["$0.00", "-$1.00", "$10.00", "$0.00", "$45.00", "$9.00"]
    totals = re.search(r'<tr id="revenue-totals">(.*?)</tr>', response.content.decode(), re.S).group(1)
    assert re.findall(r'<td class="money">([^<]*)</td>', totals) == [
        "$70.00", "$6.00", "$10.00", "$0.00", "$45.00", "$9.00"]


def test_owed_starts_from_the_balance_before_the_range(staff, history):
    days = table(staff.get(REVENUE, {"since": "2026-01-12", "until": "2026-01-12"}))

    assert days == {"2026-01-12": ["$0.00", "-$1.00", "$10.00", "$0.00", "$45.00", "$9.00"]}


def test_the_month_table(staff, history):
    response = staff.get(REVENUE, {"period": "month", "since": "2026-01-01", "until": "2026-03-31"})

    months = table(response)
    assert list(months) == ["2026-03", "2026-02", "2026-01"]
    assert months["2026-01"] == ["$70.00", "$6.00", "$10.00", "$0.00", "$45.00", "$9.00"]
    assert months["2026-02"] == ["$0.00", "$0.00", "$0.00", "$0.00", "$0.00", "$9.00"]
    # The dispute takes its fee part from the fees kept and its share from what is owed.
    assert months["2026-03"] == ["$30.00", "$2.00", "$0.00", "$10.00", "$0.00", "$27.00"]


def test_the_default_is_the_last_30_days_with_today(staff, charge, teacher):
    now = dt.datetime.now(UTC)
    charge(teacher, 5000, now)
    charge(teacher, 2500, now - dt.timedelta(days=40))  # before the range: only in owed

    response = staff.get(REVENUE)

    days = table(response)
    assert len(days) == 30
    assert list(days)[0] == now.date().isoformat()
    assert days[now.date().isoformat()] == ["$50.00", "$5.00", "$0.00", "$0.00", "$0.00", "$67.50"]
    assert set(days[(now - dt.timedelta(days=29)).date().isoformat()][:5]) == {"$0.00"}

    months = table(staff.get(REVENUE, {"period": "month"}))
    assert len(months) == 12 and list(months)[0] == now.strftime("%Y-%m")


def test_the_chart_is_inline_svg_with_bars_and_axis_labels(staff, history):
    html = staff.get(REVENUE, {"since": "2026-01-10", "until": "2026-01-12"}).content.decode()

    svg = re.search(r'<svg id="revenue-chart".*?</svg>', html, re.S).group(0)
    assert len(re.findall(r'<rect class="gross"', svg)) == 3 and len(re.findall(r'<rect class="fees"', svg)) == 3
    assert "<title>2026-01-10 gross: $70.00</title>" in svg
    assert ">01-10</text>" in svg and ">Day (UTC)</text>" in svg
    assert ">$0.00</text>" in svg and ">$100.00</text>" in svg  # the y axis, up to a round $100
    assert "<script" not in html.split("<svg", 1)[1].split("</svg>", 1)[0]
    assert not re.search(r'(src|href)="https?://', html)


def test_the_csv_has_cents_and_dollars_as_an_attachment(staff, history):
    response = staff.get(REVENUE, {"period": "month", "since": "2026-01-01", "until": "2026-03-31",
                                   "format": "csv"})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == 'attachment; filename="revenue-month-2026-01-01-2026-03-31.csv"'
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["month", "gross_cents", "gross", "platform_fee_cents", "platform_fee", "refunded_cents",
                       "refunded", "disputed_cents", "disputed", "paid_out_cents", "paid_out", "owed_cents", "owed"]
    assert rows[1:] == [
        ["2026-01", "7000", "70.00", "600", "6.00", "1000", "10.00", "0", "0.00", "4500", "45.00", "900", "9.00"],
        ["2026-02", "0", "0.00", "0", "0.00", "0", "0.00", "0", "0.00", "0", "0.00", "900", "9.00"],
        ["2026-03", "3000", "30.00", "200", "2.00", "0", "0.00", "1000", "10.00", "0", "0.00", "2700", "27.00"],
    ]


def test_the_page_is_for_staff_only(client, student, teacher):
    assert client.get(REVENUE).status_code == 302  # anonymous: to the login page
    for user in (student, teacher):
        client.force_login(user)
        response = client.get(REVENUE)
        assert response.status_code == 302
        assert "/admin/login/" in response["Location"]
        assert client.get(REVENUE, {"format": "csv"}).status_code == 302


def test_staff_without_the_ledgers_view_permission_get_403(client, admin_user):
    from accounts.models import User

    User.objects.filter(pk=admin_user.pk).update(is_superuser=False)
    client.force_login(User.objects.get(pk=admin_user.pk))
    assert client.get(REVENUE).status_code == 403


def test_the_report_aggregates_in_a_few_queries(history, django_assert_max_num_queries):
    with django_assert_max_num_queries(2):
        report = selectors_ledger.revenue_report(period="day", since=dt.date(2026, 1, 1), until=dt.date(2026, 3, 31))
    assert len(report.rows) == 90
    whole = selectors_ledger.revenue_report(period="month")
    assert [r.label for r in whole.rows] == ["2026-01", "2026-02", "2026-03"]


# --- the ledger's changelists ---------------------------------------------------------------------------
def test_the_ledger_changelist_links_to_the_revenue_page_filters_and_searches(staff, history):
    a, b, c = history
    page = staff.get(LEDGER)
    assert page.status_code == 200
    assert f'href="{REVENUE}"' in page.content.decode()
    assert staff.get(LEDGER, {"account__exact": "platform_fees"}).context["cl"].result_count == 5
    assert staff.get(LEDGER, {"kind__exact": "transfer"}).context["cl"].result_count == 2
    assert staff.get(LEDGER, {"q": f"charge:{a.pk}"}).context["cl"].result_count == 3
    assert staff.get(LEDGER, {"q": str(c.pk)}).context["cl"].result_count >= 6  # payment id (charge + refund)
    assert staff.get(LEDGER, {"q": "no such movement"}).context["cl"].result_count == 0


def test_the_ledger_is_read_only_in_admin(staff, rf, admin_user, history):
    entry = LedgerEntry.objects.first()
    model_admin = django_admin.site._registry[LedgerEntry]
    request = rf.get("/")
    request.user = admin_user
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request, entry)
    assert not model_admin.has_delete_permission(request, entry)
    assert staff.get(f"{LEDGER}add/").status_code == 403
    assert staff.post(f"{LEDGER}{entry.pk}/change/", {"amount_cents": "1"}).status_code == 403
    assert staff.post(f"{LEDGER}{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert LedgerEntry.objects.get(pk=entry.pk).amount_cents == entry.amount_cents


def test_the_transfer_and_connected_account_changelists(staff, history, teacher):
    ConnectedAccount.objects.create(teacher=teacher, stripe_account_id="acct_test_1", charges_enabled=True)
    page = staff.get(TRANSFERS)
    assert page.status_code == 200 and "$45.00" in page.content.decode()
    assert staff.get(TRANSFERS, {"status__exact": "paid"}).context["cl"].result_count == 1
    assert staff.get(TRANSFERS, {"status__exact": "failed"}).context["cl"].result_count == 0
    assert staff.get(TRANSFERS, {"q": str(history[0].pk)}).context["cl"].result_count == 1
    assert staff.get(TRANSFERS, {"q": "tr_test"}).context["cl"].result_count == 1  # a word: no payment id lookup
    accounts = staff.get(ACCOUNTS)
    assert accounts.status_code == 200 and "acct_test_1" in accounts.content.decode()
    assert django_admin.site._registry[ConnectedAccount].list_display[:2] == ["teacher", "stripe_account_id"]
