"""The gig admin, through Django's test client: the price in dollars beside the cents it is edited in."""

from __future__ import annotations

import re

import pytest
from django.contrib import admin as django_admin

from gigs.models import Gig

GIGS = "/admin/gigs/gig/"


@pytest.fixture
def staff(client, admin_user):
    client.force_login(admin_user)
    return client


def column_texts(response, column: str) -> list[str]:
    html = response.content.decode()
    return [re.sub(r"<[^>]+>", "", cell) for cell in re.findall(rf'<td class="field-{column}[^"]*">(.*?)</td>', html)]


@pytest.mark.django_db
def test_the_gig_changelist_shows_the_price_in_dollars_sorted_by_cents(staff, make_gig, teacher):
    cheap, dear = make_gig(teacher, price_cents=900), make_gig(teacher, price_cents=123456)

    page = staff.get(GIGS)

    assert page.status_code == 200
    assert ">Price<" in page.content.decode()
    assert set(column_texts(page, "price")) == {"$9.00", "$1,234.56"}
    assert django_admin.site._registry[Gig].price.admin_order_field == "price_cents"
    index = page.context["cl"].list_display.index("price")
    assert [g.pk for g in staff.get(GIGS, {"o": str(index)}).context["cl"].result_list] == [cheap.pk, dear.pk]
    assert [g.pk for g in staff.get(GIGS, {"o": f"-{index}"}).context["cl"].result_list] == [dear.pk, cheap.pk]


@pytest.mark.django_db
def test_the_gig_form_edits_cents_and_shows_the_saved_price_in_dollars(staff, make_gig, teacher):
    gig = make_gig(teacher, price_cents=5000)
    url = f"{GIGS}{gig.pk}/change/"

    page = staff.get(url)

    html = page.content.decode()
    assert 'name="price_cents"' in html
    assert "In US cents, a whole number: 5000 is $50.00. From $0.50 to $10,000.00." in html
    assert "$50.00 (5000 cents)" in html
    fields = page.context["adminform"].form.fields
    assert "price_detail" not in fields  # read-only companion, not an input
    names = [name for fieldset in page.context["adminform"] for line in fieldset for name in line.fields]
    assert names.index("price_detail") == names.index("price_cents") + 1

    response = staff.post(url, {"teacher": teacher.pk, "title": gig.title, "description": "", "language": "Spanish",
                                "price_cents": "123456", "currency": "usd", "duration_minutes": "60",
                                "is_active": "on"})
    assert response.status_code == 302
    gig.refresh_from_db()
    assert gig.price_cents == 123456
    assert "$1,234.56 (123456 cents)" in staff.get(url).content.decode()


@pytest.mark.django_db
def test_the_add_gig_form_has_no_saved_price(staff):
    page = staff.get(f"{GIGS}add/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="price_cents"' in html and "cents)" not in html
