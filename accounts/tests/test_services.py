"""accounts.services: registration, logout and password reset, without HTTP."""

from __future__ import annotations

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.core import mail
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import services
from accounts.models import Role, User
from linguaflex.errors import ValidationFailed

STRONG = "A-strong-pass-2024!"

pytestmark = pytest.mark.django_db


def _register(**overrides):
    kwargs = {"email": "Someone@Example.test", "password": STRONG, "first_name": "Some", "last_name": "One",
              "role": Role.TEACHER}
    kwargs.update(overrides)
    return services.user_register(**kwargs)


def test_user_register_lower_cases_email_and_hashes_password():
    user = _register()

    assert user.email == "someone@example.test"
    assert user.role == Role.TEACHER
    assert user.password != STRONG
    assert user.check_password(STRONG)


def test_user_register_refuses_admin_role():
    with pytest.raises(ValidationFailed) as exc_info:
        _register(role=Role.ADMIN)

    assert "role" in exc_info.value.fields
    assert not User.objects.exists()


def test_user_register_refuses_password_similar_to_the_email():
    with pytest.raises(ValidationFailed) as exc_info:
        _register(email="wonderful.person@example.test", password="wonderful.person")

    assert "password" in exc_info.value.fields


def test_user_register_refuses_duplicate_in_another_case():
    _register()

    with pytest.raises(ValidationFailed) as exc_info:
        _register(email="SOMEONE@example.test")

    assert "email" in exc_info.value.fields
    assert User.objects.count() == 1


def test_user_logout_blacklists_the_token(student):
    refresh = RefreshToken.for_user(student)

    services.user_logout(user=student, refresh=str(refresh))

    assert BlacklistedToken.objects.filter(token__jti=refresh["jti"]).exists()


def test_user_logout_refuses_another_users_token(student, other_student):
    refresh = RefreshToken.for_user(other_student)

    with pytest.raises(ValidationFailed):
        services.user_logout(user=student, refresh=str(refresh))

    assert not BlacklistedToken.objects.exists()


def test_user_logout_refuses_someone_elses_already_blacklisted_token(student, other_student):
    refresh = RefreshToken.for_user(other_student)
    refresh.blacklist()

    with pytest.raises(ValidationFailed):
        services.user_logout(user=student, refresh=str(refresh))


def test_user_logout_refuses_an_access_token(student):
    access = RefreshToken.for_user(student).access_token

    with pytest.raises(ValidationFailed):
        services.user_logout(user=student, refresh=str(access))


def test_password_reset_request_sends_nothing_for_an_inactive_account(student):
    student.is_active = False
    student.save()

    services.password_reset_request(email=student.email)

    assert mail.outbox == []


def test_password_reset_request_links_to_public_base_url(student, settings):
    settings.PUBLIC_BASE_URL = "https://app.linguaflex.example"

    services.password_reset_request(email=student.email)

    assert "https://app.linguaflex.example/reset-password?uid=" in mail.outbox[0].body


def test_password_reset_confirm_sets_the_password(student):
    uid = urlsafe_base64_encode(force_bytes(student.pk))
    token = default_token_generator.make_token(student)

    user = services.password_reset_confirm(uid=uid, token=token, new_password=STRONG)

    user.refresh_from_db()
    assert user.check_password(STRONG)


def test_password_reset_confirm_refuses_another_users_token(student, other_student):
    uid = urlsafe_base64_encode(force_bytes(student.pk))
    token = default_token_generator.make_token(other_student)

    with pytest.raises(ValidationFailed):
        services.password_reset_confirm(uid=uid, token=token, new_password=STRONG)
