"""load_demo_data: the contract's demo users and gigs, idempotent, never in production."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from accounts.models import Role, User
from gigs.models import Gig

pytestmark = pytest.mark.django_db


def _snapshot():
    users = list(User.objects.order_by("email").values_list("email", "role", "is_staff", "is_superuser", "password"))
    gigs = list(Gig.objects.order_by("id").values_list("id", "teacher__email", "title", "price_cents",
                                                      "duration_minutes", "is_active"))
    return users, gigs


def test_load_demo_data_creates_the_contracts_users_and_gigs():
    out = StringIO()
    call_command("load_demo_data", stdout=out)

    users = {u.email: u for u in User.objects.all()}
    assert set(users) == {"student@example.com", "teacher@example.com", "admin@example.com"}
    assert users["student@example.com"].role == Role.STUDENT
    assert users["teacher@example.com"].role == Role.TEACHER
    admin = users["admin@example.com"]
    assert (admin.role, admin.is_staff, admin.is_superuser) == (Role.ADMIN, True, True)
    assert all(u.check_password("password123") for u in users.values())
    first = Gig.objects.order_by("id").first()
    assert (first.price_cents, first.currency, first.teacher.email) == (5000, "usd", "teacher@example.com")
    assert Gig.objects.filter(teacher__email="teacher@example.com", is_active=True).count() >= 1
    assert "password123" in out.getvalue()


def test_load_demo_data_twice_leaves_the_same_rows():
    call_command("load_demo_data", stdout=StringIO())
    first = _snapshot()

    call_command("load_demo_data", stdout=StringIO())

    assert _snapshot() == first


def test_demo_student_can_log_in(api_client):
    call_command("load_demo_data", stdout=StringIO())

    response = api_client.post("/accounts/login/", {"email": "student@example.com", "password": "password123"},
                               format="json")

    assert response.status_code == 200
    assert response.json()["user"]["role"] == "student"


def test_load_demo_data_refuses_production_settings(settings):
    settings.SETTINGS_MODULE = "linguaflex.settings.production"

    with pytest.raises(CommandError, match="production"):
        call_command("load_demo_data", stdout=StringIO())

    assert not User.objects.exists()
    assert not Gig.objects.exists()
