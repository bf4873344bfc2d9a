"""Gig endpoints: the role and visibility rules for every caller, validation at each bound,
filters, ordering, pagination and DELETE (API_CONTRACT.md, "Gigs")."""

from __future__ import annotations

import pytest

from gigs.models import Gig

LIST = "/gigs/"

pytestmark = pytest.mark.django_db

CALLERS = ["anonymous", "student", "other_student", "teacher", "other_teacher", "admin_user"]


@pytest.fixture
def caller(request, client_for):
    """The APIClient of the caller named by the test's ``who`` parameter."""

    def make(who: str):
        return client_for(None if who == "anonymous" else request.getfixturevalue(who))

    return make


def _detail(gig_or_id) -> str:
    return f"/gigs/{getattr(gig_or_id, 'pk', gig_or_id)}/"


def _body(**overrides):
    body = {"title": "Italian basics", "description": "From zero", "language": "Italian", "price": "25.00",
            "duration_minutes": 45}
    body.update(overrides)
    return body


def _code(response):
    return response.json()["error"]["code"]


# --- roles and visibility -----------------------------------------------------------------------
@pytest.mark.parametrize(("who", "status"), [
    ("anonymous", 401), ("student", 403), ("other_student", 403), ("teacher", 201), ("other_teacher", 201),
    ("admin_user", 403),
])
def test_create_gig_is_for_teachers_only(caller, who, status):
    response = caller(who).post(LIST, _body(), format="json")

    assert response.status_code == status
    assert Gig.objects.count() == (1 if status == 201 else 0)
    if status == 403:
        assert _code(response) == "permission_denied"
    if status == 401:
        assert _code(response) == "not_authenticated"


def test_created_gig_belongs_to_the_teacher_and_is_serialized(client_for, teacher):
    response = client_for(teacher).post(LIST, _body(), format="json")

    body = response.json()
    assert response.status_code == 201
    assert set(body) == {"id", "title", "description", "language", "price", "price_cents", "currency",
                         "duration_minutes", "teacher_id", "teacher_name", "is_active", "created_at"}
    assert body["teacher_id"] == teacher.pk
    assert body["teacher_name"] == "Tea Cher"
    assert body["is_active"] is True
    assert Gig.objects.get(pk=body["id"]).teacher == teacher


@pytest.mark.parametrize(("who", "status"), [
    ("anonymous", 401), ("student", 200), ("other_student", 200), ("teacher", 200), ("other_teacher", 200),
    ("admin_user", 200),
])
def test_list_gigs_needs_authentication(caller, gig, who, status):
    response = caller(who).get(LIST)

    assert response.status_code == status
    if status == 200:
        assert [g["id"] for g in response.json()["results"]] == [gig.pk]


@pytest.mark.parametrize(("who", "status"), [
    ("anonymous", 401), ("student", 200), ("other_student", 200), ("teacher", 200), ("other_teacher", 200),
    ("admin_user", 200),
])
def test_retrieve_active_gig(caller, gig, who, status):
    response = caller(who).get(_detail(gig))

    assert response.status_code == status
    if status == 200:
        assert response.json()["id"] == gig.pk


@pytest.mark.parametrize(("who", "status"), [
    ("anonymous", 401), ("student", 404), ("other_student", 404), ("teacher", 200), ("other_teacher", 404),
    ("admin_user", 200),
])
def test_retrieve_inactive_gig_only_for_its_teacher_and_admins(caller, make_gig, teacher, who, status):
    gig = make_gig(teacher, is_active=False)

    response = caller(who).get(_detail(gig))

    assert response.status_code == status
    if status == 404:
        assert _code(response) == "not_found"


def test_retrieve_unknown_gig_is_404(client_for, student):
    response = client_for(student).get(_detail(999999))

    assert response.status_code == 404
    assert _code(response) == "not_found"


@pytest.mark.parametrize(("who", "status"), [
    ("anonymous", 401), ("student", 403), ("other_student", 403), ("teacher", 200), ("other_teacher", 403),
    ("admin_user", 403),
])
def test_patch_active_gig_only_by_its_owner(caller, gig, who, status):
    response = caller(who).patch(_detail(gig), {"title": "Renamed"}, format="json")

    assert response.status_code == status
    gig.refresh_from_db()
    assert (gig.title == "Renamed") is (status == 200)


@pytest.mark.parametrize(("who", "status"), [
    ("anonymous", 401), ("student", 404), ("other_student", 404), ("teacher", 200), ("other_teacher", 404),
    ("admin_user", 403),
])
def test_patch_inactive_gig_is_invisible_to_others(caller, make_gig, teacher, who, status):
    gig = make_gig(teacher, is_active=False)

    response = caller(who).patch(_detail(gig), {"title": "Renamed"}, format="json")

    assert response.status_code == status


@pytest.mark.parametrize(("who", "status"), [
    ("anonymous", 401), ("student", 403), ("other_student", 403), ("teacher", 204), ("other_teacher", 403),
    ("admin_user", 403),
])
def test_delete_active_gig_only_by_its_owner(caller, gig, who, status):
    response = caller(who).delete(_detail(gig))

    assert response.status_code == status
    assert Gig.objects.filter(pk=gig.pk).exists() is (status != 204)


@pytest.mark.parametrize(("who", "status"), [
    ("anonymous", 401), ("student", 404), ("other_student", 404), ("teacher", 204), ("other_teacher", 404),
    ("admin_user", 403),
])
def test_delete_inactive_gig_is_invisible_to_others(caller, make_gig, teacher, who, status):
    gig = make_gig(teacher, is_active=False)

    response = caller(who).delete(_detail(gig))

    assert response.status_code == status


def test_delete_gig_without_payments_removes_it(client_for, teacher, gig):
    response = client_for(teacher).delete(_detail(gig))

    assert response.status_code == 204
    assert response.content == b""
    assert not Gig.objects.filter(pk=gig.pk).exists()


def test_delete_gig_with_a_booking_deactivates_and_keeps_it(client_for, teacher, gig, student, make_paid_booking):
    booking = make_paid_booking(student=student, gig=gig)

    response = client_for(teacher).delete(_detail(gig))

    assert response.status_code == 204
    gig.refresh_from_db()
    assert gig.is_active is False
    booking.refresh_from_db()
    assert booking.gig_id == gig.pk
    assert client_for(student).get(_detail(gig)).status_code == 404
    assert client_for(teacher).get(_detail(gig)).json()["is_active"] is False


def test_owner_can_reactivate_a_deactivated_gig(client_for, teacher, make_gig):
    gig = make_gig(teacher, is_active=False)

    response = client_for(teacher).patch(_detail(gig), {"is_active": True}, format="json")

    assert response.status_code == 200
    assert response.json()["is_active"] is True


def test_patch_updates_price_and_keeps_other_fields(client_for, teacher, gig):
    response = client_for(teacher).patch(_detail(gig), {"price": "12.34"}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["price_cents"] == 1234
    assert body["price"] == 12.34
    assert body["title"] == gig.title
    assert body["duration_minutes"] == gig.duration_minutes


@pytest.mark.parametrize("method", ["put", "post"])
def test_detail_refuses_unsupported_methods_with_405(client_for, teacher, gig, method):
    response = getattr(client_for(teacher), method)(_detail(gig), _body(), format="json")

    assert response.status_code == 405
    assert _code(response) == "method_not_allowed"


# --- validation at each bound -------------------------------------------------------------------
@pytest.mark.parametrize(("price", "cents"), [
    ("0.50", 50), (0.5, 50), ("10000.00", 1_000_000), (10000, 1_000_000), (50, 5000), ("50.00", 5000),
    ("50", 5000), (50.5, 5050), ("19.99", 1999), ("0.51", 51),
])
def test_create_accepts_prices_within_bounds(client_for, teacher, price, cents):
    response = client_for(teacher).post(LIST, _body(price=price), format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["price_cents"] == cents
    assert isinstance(body["price_cents"], int)
    assert isinstance(body["price"], float)
    assert body["price"] == cents / 100
    assert body["currency"] == "usd"


@pytest.mark.parametrize("price", [
    "0.49", 0.49, "0", "-1.00", "10000.01", 10000.01, "10.001", 10.001, "0.505", "abc", "", None, True,
    "NaN", "Infinity", [], {},
])
def test_create_refuses_prices_out_of_bounds_or_malformed(client_for, teacher, price):
    response = client_for(teacher).post(LIST, _body(price=price), format="json")

    assert response.status_code == 400
    assert _code(response) == "invalid_request"
    assert "price" in response.json()["error"]["fields"]
    assert not Gig.objects.exists()


@pytest.mark.parametrize(("minutes", "status"), [(14, 400), (15, 201), (240, 201), (241, 400), (0, 400),
                                                 ("60", 201), (60.5, 400)])
def test_duration_bounds(client_for, teacher, minutes, status):
    response = client_for(teacher).post(LIST, _body(duration_minutes=minutes), format="json")

    assert response.status_code == status
    if status == 400:
        assert "duration_minutes" in response.json()["error"]["fields"]


def test_currency_is_always_usd_whatever_the_client_sends(client_for, teacher):
    response = client_for(teacher).post(LIST, _body(currency="eur"), format="json")

    assert response.status_code == 201
    assert response.json()["currency"] == "usd"
    assert Gig.objects.get().currency == "usd"


def test_patch_validates_price_bounds(client_for, teacher, gig):
    for price in ("0.49", "10000.01", "1.001"):
        response = client_for(teacher).patch(_detail(gig), {"price": price}, format="json")
        assert response.status_code == 400, price
    gig.refresh_from_db()
    assert gig.price_cents == 5000


def test_patch_validates_duration_bounds(client_for, teacher, gig):
    assert client_for(teacher).patch(_detail(gig), {"duration_minutes": 241}, format="json").status_code == 400
    assert client_for(teacher).patch(_detail(gig), {"duration_minutes": 240}, format="json").status_code == 200


def test_create_requires_title_language_price_and_duration(client_for, teacher):
    response = client_for(teacher).post(LIST, {}, format="json")

    assert response.status_code == 400
    assert {"title", "language", "price", "duration_minutes"} <= set(response.json()["error"]["fields"])


def test_patch_cannot_change_the_teacher(client_for, teacher, other_teacher, gig):
    response = client_for(teacher).patch(_detail(gig), {"teacher_id": other_teacher.pk, "teacher": other_teacher.pk},
                                         format="json")

    assert response.status_code == 200
    gig.refresh_from_db()
    assert gig.teacher == teacher


# --- filters, ordering, pagination --------------------------------------------------------------
def test_list_shows_only_active_gigs_newest_first(client_for, student, teacher, make_gig):
    older = make_gig(teacher, title="older")
    make_gig(teacher, title="hidden", is_active=False)
    newer = make_gig(teacher, title="newer")

    response = client_for(student).get(LIST)

    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 2
    assert [g["id"] for g in body["results"]] == [newer.pk, older.pk]


def test_list_filters_by_language_case_insensitively(client_for, student, teacher, make_gig):
    spanish = make_gig(teacher, language="Spanish")
    make_gig(teacher, language="French")

    response = client_for(student).get(LIST, {"language": "spanish"})

    assert [g["id"] for g in response.json()["results"]] == [spanish.pk]


def test_list_filters_by_teacher(client_for, student, teacher, other_teacher, make_gig):
    make_gig(teacher)
    theirs = make_gig(other_teacher)

    response = client_for(student).get(LIST, {"teacher": other_teacher.pk})

    assert [g["id"] for g in response.json()["results"]] == [theirs.pk]


def test_mine_lists_a_teachers_own_gigs_including_inactive(client_for, teacher, other_teacher, make_gig):
    active = make_gig(teacher)
    inactive = make_gig(teacher, is_active=False)
    make_gig(other_teacher)

    response = client_for(teacher).get(LIST, {"mine": "true"})

    assert {g["id"] for g in response.json()["results"]} == {active.pk, inactive.pk}


def test_mine_for_a_student_shows_the_active_catalogue(client_for, student, teacher, make_gig):
    active = make_gig(teacher)
    make_gig(teacher, is_active=False)

    response = client_for(student).get(LIST, {"mine": "true"})

    assert [g["id"] for g in response.json()["results"]] == [active.pk]


@pytest.mark.parametrize(("ordering", "expected"), [
    ("price", ["cheap", "mid", "dear"]),
    ("-price", ["dear", "mid", "cheap"]),
    ("created_at", ["mid", "dear", "cheap"]),
    ("-created_at", ["cheap", "dear", "mid"]),
])
def test_list_ordering(client_for, student, teacher, make_gig, ordering, expected):
    make_gig(teacher, title="mid", price_cents=2000)
    make_gig(teacher, title="dear", price_cents=9000)
    make_gig(teacher, title="cheap", price_cents=100)

    response = client_for(student).get(LIST, {"ordering": ordering})

    assert [g["title"] for g in response.json()["results"]] == expected


@pytest.mark.parametrize("query", [{"ordering": "title"}, {"teacher": "abc"}, {"teacher": "0"}, {"mine": "maybe"}])
def test_list_refuses_bad_query_parameters_with_400(client_for, student, query):
    response = client_for(student).get(LIST, query)

    assert response.status_code == 400
    assert _code(response) == "invalid_request"


def _many_gigs(teacher, n):
    Gig.objects.bulk_create([
        Gig(teacher=teacher, title=f"gig {i}", language="Spanish", price_cents=1000, duration_minutes=30)
        for i in range(n)
    ])


def test_list_pages_hold_twenty_by_default(client_for, student, teacher):
    _many_gigs(teacher, 25)

    body = client_for(student).get(LIST).json()

    assert body["count"] == 25
    assert len(body["results"]) == 20
    assert body["next"] is not None and body["previous"] is None


def test_list_page_size_is_clamped_to_one_hundred(client_for, student, teacher):
    _many_gigs(teacher, 105)

    body = client_for(student).get(LIST, {"page_size": 1000}).json()

    assert len(body["results"]) == 100
    assert body["next"] is not None


def test_list_page_size_below_the_maximum_is_honoured(client_for, student, teacher):
    _many_gigs(teacher, 5)

    assert len(client_for(student).get(LIST, {"page_size": 2}).json()["results"]) == 2


def test_list_page_past_the_end_is_404(client_for, student, teacher):
    _many_gigs(teacher, 3)

    response = client_for(student).get(LIST, {"page": 2})

    assert response.status_code == 404
    assert _code(response) == "not_found"
