"""Booking endpoints: list, detail, confirm and complete for every caller; 409 on a wrong state."""

from __future__ import annotations

import pytest

from bookings.models import Booking, BookingStatus

LIST = "/bookings/"
S = BookingStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def caller(request, client_for):
    def make(who: str):
        return client_for(None if who == "anonymous" else request.getfixturevalue(who))

    return make


@pytest.fixture
def booking(student, gig, make_paid_booking):
    """The student's booking of the teacher's gig, waiting for confirmation."""
    return make_paid_booking(student=student, gig=gig)


def _url(booking, action: str = "") -> str:
    return f"/bookings/{booking.pk}/" + (f"{action}/" if action else "")


def _code(response):
    return response.json()["error"]["code"]


# --- list and detail ----------------------------------------------------------------------------
@pytest.mark.parametrize(("who", "sees"), [
    ("student", True), ("other_student", False), ("teacher", True), ("other_teacher", False), ("admin_user", True),
])
def test_list_bookings_scoped_to_the_caller(caller, booking, who, sees):
    response = caller(who).get(LIST)

    assert response.status_code == 200
    assert [b["id"] for b in response.json()["results"]] == ([booking.pk] if sees else [])


def test_list_bookings_anonymous_is_401(caller, booking):
    response = caller("anonymous").get(LIST)

    assert response.status_code == 401
    assert _code(response) == "not_authenticated"


def test_list_shows_student_own_teacher_own_gigs_admin_all(client_for, student, other_student, teacher,
                                                          other_teacher, admin_user, gig, make_gig, make_paid_booking):
    their_gig = make_gig(other_teacher)
    mine = make_paid_booking(student=student, gig=gig)
    other_on_my_teachers_gig = make_paid_booking(student=other_student, gig=gig)
    unrelated = make_paid_booking(student=other_student, gig=their_gig)

    def ids(user):
        return {b["id"] for b in client_for(user).get(LIST).json()["results"]}

    assert ids(student) == {mine.pk}
    assert ids(teacher) == {mine.pk, other_on_my_teachers_gig.pk}
    assert ids(other_teacher) == {unrelated.pk}
    assert ids(other_student) == {other_on_my_teachers_gig.pk, unrelated.pk}
    assert ids(admin_user) == {mine.pk, other_on_my_teachers_gig.pk, unrelated.pk}


def test_list_is_newest_first_in_pages(client_for, student, gig, make_paid_booking):
    bookings = [make_paid_booking(student=student, gig=gig) for _ in range(3)]

    body = client_for(student).get(LIST, {"page_size": 2}).json()

    assert body["count"] == 3
    assert [b["id"] for b in body["results"]] == [bookings[2].pk, bookings[1].pk]
    assert body["next"] is not None


def test_list_filters_by_status(client_for, student, gig, make_paid_booking):
    make_paid_booking(student=student, gig=gig)
    confirmed = make_paid_booking(student=student, gig=gig, status=S.CONFIRMED)

    response = client_for(student).get(LIST, {"status": "confirmed"})

    assert [b["id"] for b in response.json()["results"]] == [confirmed.pk]


def test_list_with_unknown_status_is_400(client_for, student):
    response = client_for(student).get(LIST, {"status": "teleported"})

    assert response.status_code == 400
    assert "status" in response.json()["error"]["fields"]


def test_list_page_past_the_end_is_404(client_for, student, booking):
    assert client_for(student).get(LIST, {"page": 5}).status_code == 404


@pytest.mark.parametrize(("who", "status"), [
    ("anonymous", 401), ("student", 200), ("other_student", 404), ("teacher", 200), ("other_teacher", 404),
    ("admin_user", 200),
])
def test_retrieve_booking(caller, booking, who, status):
    response = caller(who).get(_url(booking))

    assert response.status_code == status
    if status == 404:
        assert _code(response) == "not_found"


def test_booking_shape(client_for, student, teacher, gig, booking):
    body = client_for(student).get(_url(booking)).json()

    assert set(body) == {"id", "gig_id", "gig_title", "student_id", "student_name", "teacher_id", "teacher_name",
                         "payment_id", "status", "scheduled_at", "created_at", "updated_at"}
    assert (body["gig_id"], body["gig_title"], body["student_id"], body["teacher_id"], body["payment_id"]) == (
        gig.pk, gig.title, student.pk, teacher.pk, booking.payment_id)
    assert (body["student_name"], body["teacher_name"]) == ("Stu Dent", "Tea Cher")
    assert body["status"] == "pending_confirmation"


def test_retrieve_unknown_booking_is_404(client_for, admin_user):
    assert client_for(admin_user).get("/bookings/999999/").status_code == 404


def test_booking_of_a_deactivated_gig_stays_visible(client_for, student, gig, booking):
    gig.is_active = False
    gig.save()

    assert client_for(student).get(_url(booking)).status_code == 200


# --- confirm and complete -----------------------------------------------------------------------
@pytest.mark.parametrize(("who", "status"), [
    ("anonymous", 401), ("student", 403), ("other_student", 404), ("teacher", 200), ("other_teacher", 404),
    ("admin_user", 403),
])
def test_confirm_only_by_the_gigs_teacher(caller, booking, who, status):
    response = caller(who).post(_url(booking, "confirm"))

    assert response.status_code == status
    booking.refresh_from_db()
    assert booking.status == (S.CONFIRMED if status == 200 else S.PENDING_CONFIRMATION)
    if status == 200:
        assert response.json()["status"] == "confirmed"
        assert response.json()["id"] == booking.pk
    if status == 403:
        assert _code(response) == "permission_denied"


@pytest.mark.parametrize(("who", "status"), [
    ("anonymous", 401), ("student", 403), ("other_student", 404), ("teacher", 200), ("other_teacher", 404),
    ("admin_user", 403),
])
def test_complete_only_by_the_gigs_teacher(caller, student, gig, make_paid_booking, who, status):
    booking = make_paid_booking(student=student, gig=gig, status=S.CONFIRMED)

    response = caller(who).post(_url(booking, "complete"))

    assert response.status_code == status
    booking.refresh_from_db()
    assert booking.status == (S.COMPLETED if status == 200 else S.CONFIRMED)


def test_confirm_then_complete(client_for, teacher, booking):
    client = client_for(teacher)

    assert client.post(_url(booking, "confirm")).json()["status"] == "confirmed"
    assert client.post(_url(booking, "complete")).json()["status"] == "completed"


@pytest.mark.parametrize("source", [s for s in S if s != S.PENDING_CONFIRMATION])
def test_confirm_in_a_wrong_state_is_409_invalid_state(client_for, teacher, student, gig, make_paid_booking, source):
    booking = make_paid_booking(student=student, gig=gig, status=source)

    response = client_for(teacher).post(_url(booking, "confirm"))

    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "invalid_state"
    assert error["status"] == source
    assert Booking.objects.get(pk=booking.pk).status == source


@pytest.mark.parametrize("source", [s for s in S if s != S.CONFIRMED])
def test_complete_in_a_wrong_state_is_409_invalid_state(client_for, teacher, student, gig, make_paid_booking, source):
    booking = make_paid_booking(student=student, gig=gig, status=source)

    response = client_for(teacher).post(_url(booking, "complete"))

    assert response.status_code == 409
    assert _code(response) == "invalid_state"
    assert Booking.objects.get(pk=booking.pk).status == source


@pytest.mark.parametrize("action", ["confirm", "complete"])
def test_actions_refuse_get_with_405(client_for, teacher, booking, action):
    response = client_for(teacher).get(_url(booking, action))

    assert response.status_code == 405
    assert _code(response) == "method_not_allowed"


@pytest.mark.parametrize("method", ["post", "patch", "delete"])
def test_list_and_detail_are_read_only(client_for, admin_user, booking, method):
    client = client_for(admin_user)

    assert getattr(client, method)(_url(booking), {}, format="json").status_code == 405
    assert getattr(client, method)(LIST, {}, format="json").status_code == 405
