"""The custom user: manager, createsuperuser, case-insensitive e-mail, staff iff admin."""

from __future__ import annotations

import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction

from accounts.models import Role, User

pytestmark = pytest.mark.django_db


def test_create_user_lower_cases_email_and_defaults_to_student():
    user = User.objects.create_user("  Mixed@Example.TEST ", "password123")

    assert user.email == "mixed@example.test"
    assert user.role == Role.STUDENT
    assert user.is_staff is False
    assert user.is_superuser is False
    assert user.check_password("password123")


def test_create_user_without_email_is_refused():
    with pytest.raises(ValueError):
        User.objects.create_user("", "password123")


def test_create_user_staff_flag_follows_the_role():
    teacher = User.objects.create_user("t@example.test", "pw", role=Role.TEACHER, is_staff=True)
    admin = User.objects.create_user("a@example.test", "pw", role=Role.ADMIN)

    assert teacher.is_staff is False
    assert admin.is_staff is True


def test_create_superuser_is_admin_staff_and_superuser():
    user = User.objects.create_superuser("Boss@Example.test", "pw")

    assert user.email == "boss@example.test"
    assert (user.role, user.is_staff, user.is_superuser) == (Role.ADMIN, True, True)


def test_authenticate_by_email_is_case_insensitive(student):
    assert authenticate(email="STUDENT@Example.Test", password="password123") == student
    assert authenticate(email="student@example.test", password="wrong") is None


def test_get_by_natural_key_is_case_insensitive(student):
    assert User.objects.get_by_natural_key("Student@EXAMPLE.test") == student


def test_email_unique_constraint_ignores_case(student):
    with pytest.raises(IntegrityError), transaction.atomic():
        # Bypass the manager's lower-casing: the database itself must refuse it.
        User.objects.create(email="STUDENT@example.test", role=Role.STUDENT)


@pytest.mark.parametrize(("role", "is_staff"), [(Role.STUDENT, True), (Role.TEACHER, True), (Role.ADMIN, False)])
def test_staff_iff_admin_constraint_refuses_mismatches(role, is_staff):
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(email="x@example.test", role=role, is_staff=is_staff)


@pytest.mark.parametrize(("role", "is_staff"), [(Role.STUDENT, False), (Role.TEACHER, False), (Role.ADMIN, True)])
def test_staff_iff_admin_constraint_accepts_matches(role, is_staff):
    User.objects.create(email="x@example.test", role=role, is_staff=is_staff)

    assert User.objects.filter(email="x@example.test").exists()


def test_display_name_falls_back_to_email(make_user):
    assert make_user("student", email="plain@example.test").display_name == "plain@example.test"
    assert make_user("student", first_name="Ana", last_name="Lima").display_name == "Ana Lima"


def test_createsuperuser_noinput_creates_an_admin(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "Root@Example.test")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "A-strong-pass-2024!")

    call_command("createsuperuser", interactive=False, verbosity=0)

    user = User.objects.get(email="root@example.test")
    assert (user.role, user.is_staff, user.is_superuser) == (Role.ADMIN, True, True)
    assert user.check_password("A-strong-pass-2024!")


def test_createsuperuser_noinput_refuses_an_existing_email_in_another_case(monkeypatch, student):
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "STUDENT@example.test")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "A-strong-pass-2024!")

    with pytest.raises(CommandError):
        call_command("createsuperuser", interactive=False, verbosity=0)

    assert User.objects.filter(email__iexact="student@example.test").count() == 1
