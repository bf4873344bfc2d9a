"""Register, login, token refresh and logout, me, password reset (API_CONTRACT.md, "Accounts")."""

from __future__ import annotations

import re

import pytest
from django.core import mail

from accounts.models import Role, User

REGISTER = "/accounts/register/"
LOGIN = "/accounts/login/"
REFRESH = "/accounts/token/refresh/"
LOGOUT = "/accounts/logout/"
ME = "/accounts/me/"
RESET = "/accounts/password-reset/"
RESET_CONFIRM = "/accounts/password-reset/confirm/"
STRONG = "A-strong-pass-2024!"

pytestmark = pytest.mark.django_db


def _register(client, **overrides):
    body = {"email": "new.user@example.test", "password": STRONG, "first_name": "New", "last_name": "User",
            "role": "student"}
    body.update(overrides)
    return client.post(REGISTER, body, format="json")


def _login(client, email, password="password123"):
    return client.post(LOGIN, {"email": email, "password": password}, format="json")


def _error(response):
    body = response.json()
    assert body["success"] is False
    return body["error"]


# --- register -----------------------------------------------------------------------------------
@pytest.mark.parametrize("role", ["student", "teacher"])
def test_register_creates_user_with_role_and_answers_201(api_client, role):
    response = _register(api_client, role=role)

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "email", "role"}
    assert body["email"] == "new.user@example.test"
    assert body["role"] == role
    user = User.objects.get(pk=body["id"])
    assert user.role == role
    assert user.check_password(STRONG)
    assert not user.is_staff


def test_register_stores_mixed_case_email_lower_cased(api_client):
    response = _register(api_client, email="Mixed.Case@Example.TEST")

    assert response.status_code == 201
    assert response.json()["email"] == "mixed.case@example.test"
    assert User.objects.filter(email="mixed.case@example.test").exists()


def test_register_duplicate_email_is_400_with_email_field(api_client, student):
    response = _register(api_client, email=student.email)

    assert response.status_code == 400
    error = _error(response)
    assert error["code"] == "invalid_request"
    assert "email" in error["fields"]
    assert User.objects.filter(email__iexact=student.email).count() == 1


def test_register_duplicate_email_in_different_case_is_400(api_client, student):
    response = _register(api_client, email=student.email.upper())

    assert response.status_code == 400
    assert "email" in _error(response)["fields"]
    assert User.objects.filter(email__iexact=student.email).count() == 1


@pytest.mark.parametrize("password", ["short", "password", "12345678901", "new.user@example.test"])
def test_register_weak_password_is_400_with_password_field(api_client, password):
    response = _register(api_client, password=password)

    assert response.status_code == 400
    error = _error(response)
    assert error["code"] == "invalid_request"
    assert "password" in error["fields"]
    assert not User.objects.filter(email="new.user@example.test").exists()


def test_register_role_admin_is_refused(api_client):
    response = _register(api_client, role="admin")

    assert response.status_code == 400
    assert "role" in _error(response)["fields"]
    assert not User.objects.filter(email="new.user@example.test").exists()


def test_register_missing_fields_lists_each_field(api_client):
    response = api_client.post(REGISTER, {}, format="json")

    assert response.status_code == 400
    assert {"email", "password", "role"} <= set(_error(response)["fields"])


def test_register_is_throttled_per_address_after_ten_an_hour(api_client):
    for n in range(10):
        assert _register(api_client, email=f"user{n}@example.test").status_code == 201

    response = _register(api_client, email="user10@example.test")

    assert response.status_code == 429
    assert _error(response)["code"] == "throttled"
    assert int(response["Retry-After"]) > 0


# --- login --------------------------------------------------------------------------------------
def test_login_returns_tokens_and_user(api_client, student):
    response = _login(api_client, student.email)

    assert response.status_code == 200
    body = response.json()
    assert body["access"] and body["refresh"]
    assert body["user"] == {"id": student.pk, "email": student.email, "first_name": "Stu", "last_name": "Dent",
                            "role": "student"}


def test_login_access_token_authenticates_me(api_client, teacher):
    access = _login(api_client, teacher.email).json()["access"]
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")

    response = api_client.get(ME)

    assert response.status_code == 200
    assert response.json() == {"id": teacher.pk, "email": teacher.email, "first_name": "Tea",
                               "last_name": "Cher", "role": "teacher"}


def test_login_with_mixed_case_email_succeeds(api_client, student):
    response = _login(api_client, "  Student@EXAMPLE.test ")

    assert response.status_code == 200
    assert response.json()["user"]["id"] == student.pk


def test_login_wrong_password_is_401_invalid_credentials(api_client, student):
    response = _login(api_client, student.email, "wrong-password")

    assert response.status_code == 401
    assert _error(response)["code"] == "invalid_credentials"
    assert "access" not in response.json()


def test_login_unknown_email_is_401_invalid_credentials(api_client, db):
    response = _login(api_client, "nobody@example.test")

    assert response.status_code == 401
    assert _error(response)["code"] == "invalid_credentials"


def test_login_inactive_user_is_401_invalid_credentials(api_client, student):
    student.is_active = False
    student.save()

    response = _login(api_client, student.email)

    assert response.status_code == 401
    assert _error(response)["code"] == "invalid_credentials"


def test_login_missing_password_is_400(api_client, student):
    response = api_client.post(LOGIN, {"email": student.email}, format="json")

    assert response.status_code == 400
    assert "password" in _error(response)["fields"]


def test_sixth_login_for_one_email_in_a_minute_is_429_with_retry_after(api_client, student):
    for _ in range(5):
        assert _login(api_client, student.email, "wrong-password").status_code == 401

    # Same address in another case, even with the right password: still the same e-mail.
    response = _login(api_client, student.email.upper())

    assert response.status_code == 429
    assert _error(response)["code"] == "throttled"
    assert int(response["Retry-After"]) > 0


def test_login_throttle_for_one_email_leaves_other_emails_alone(api_client, student, teacher):
    for _ in range(6):
        _login(api_client, student.email, "wrong-password")

    assert _login(api_client, teacher.email).status_code == 200


def test_login_is_throttled_per_address_after_twenty_a_minute(api_client, db):
    for n in range(20):
        assert _login(api_client, f"nobody{n}@example.test").status_code == 401

    response = _login(api_client, "someone.else@example.test")

    assert response.status_code == 429
    assert "Retry-After" in response


# --- refresh and logout -------------------------------------------------------------------------
def test_refresh_rotates_and_the_used_refresh_token_is_refused(api_client, student):
    first = _login(api_client, student.email).json()["refresh"]

    rotated = api_client.post(REFRESH, {"refresh": first}, format="json")

    assert rotated.status_code == 200
    body = rotated.json()
    assert body["access"] and body["refresh"] and body["refresh"] != first
    reused = api_client.post(REFRESH, {"refresh": first}, format="json")
    assert reused.status_code == 401
    assert _error(reused)["code"] == "invalid_token"
    assert api_client.post(REFRESH, {"refresh": body["refresh"]}, format="json").status_code == 200


def test_refresh_with_garbage_token_is_401_invalid_token(api_client, db):
    response = api_client.post(REFRESH, {"refresh": "not-a-jwt"}, format="json")

    assert response.status_code == 401
    assert _error(response)["code"] == "invalid_token"
    assert response.has_header("WWW-Authenticate")


def test_refresh_with_access_token_is_401(api_client, student):
    access = _login(api_client, student.email).json()["access"]

    response = api_client.post(REFRESH, {"refresh": access}, format="json")

    assert response.status_code == 401


def test_logout_blacklists_refresh_token_so_refresh_answers_401(api_client, student):
    tokens = _login(api_client, student.email).json()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")

    response = api_client.post(LOGOUT, {"refresh": tokens["refresh"]}, format="json")

    assert response.status_code == 200
    assert response.json() == {"success": True}
    api_client.credentials()
    refused = api_client.post(REFRESH, {"refresh": tokens["refresh"]}, format="json")
    assert refused.status_code == 401
    assert _error(refused)["code"] == "invalid_token"


def test_logout_twice_with_the_same_token_is_not_an_error(api_client, student):
    tokens = _login(api_client, student.email).json()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    api_client.post(LOGOUT, {"refresh": tokens["refresh"]}, format="json")

    again = api_client.post(LOGOUT, {"refresh": tokens["refresh"]}, format="json")

    assert again.status_code == 200
    assert again.json() == {"success": True}


def test_logout_with_someone_elses_refresh_token_is_400_and_keeps_it_valid(api_client, client_for, student,
                                                                            other_student):
    their_refresh = _login(api_client, other_student.email).json()["refresh"]

    response = client_for(student).post(LOGOUT, {"refresh": their_refresh}, format="json")

    assert response.status_code == 400
    assert "refresh" in _error(response)["fields"]
    assert api_client.post(REFRESH, {"refresh": their_refresh}, format="json").status_code == 200


def test_logout_with_garbage_refresh_is_400(client_for, student):
    response = client_for(student).post(LOGOUT, {"refresh": "garbage"}, format="json")

    assert response.status_code == 400
    assert _error(response)["code"] == "invalid_request"


def test_logout_needs_authentication(api_client, student):
    refresh = _login(api_client, student.email).json()["refresh"]

    response = api_client.post(LOGOUT, {"refresh": refresh}, format="json")

    assert response.status_code == 401
    assert _error(response)["code"] == "not_authenticated"


def test_me_needs_authentication(api_client, db):
    response = api_client.get(ME)

    assert response.status_code == 401
    assert response.has_header("WWW-Authenticate")


def test_me_shows_admin_role(client_for, admin_user):
    assert client_for(admin_user).get(ME).json()["role"] == "admin"


# --- password reset -----------------------------------------------------------------------------
def _reset_link_parts(message: str) -> tuple[str, str]:
    match = re.search(r"reset-password\?uid=([\w-]+)&token=([\w-]+)", message)
    assert match, message
    return match.group(1), match.group(2)


def test_password_reset_mails_a_link_that_sets_a_new_password(api_client, student):
    response = api_client.post(RESET, {"email": "STUDENT@example.test"}, format="json")

    assert response.status_code == 200
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [student.email]
    uid, token = _reset_link_parts(mail.outbox[0].body)
    confirm = api_client.post(RESET_CONFIRM, {"uid": uid, "token": token, "new_password": STRONG}, format="json")
    assert confirm.status_code == 200
    assert _login(api_client, student.email, STRONG).status_code == 200
    assert _login(api_client, student.email, "password123").status_code == 401


def test_password_reset_token_works_only_once(api_client, student):
    api_client.post(RESET, {"email": student.email}, format="json")
    uid, token = _reset_link_parts(mail.outbox[0].body)
    api_client.post(RESET_CONFIRM, {"uid": uid, "token": token, "new_password": STRONG}, format="json")

    again = api_client.post(RESET_CONFIRM, {"uid": uid, "token": token, "new_password": STRONG + "x"},
                            format="json")

    assert again.status_code == 400


def test_password_reset_for_unknown_email_is_200_and_sends_nothing(api_client, db):
    response = api_client.post(RESET, {"email": "nobody@example.test"}, format="json")

    assert response.status_code == 200
    assert mail.outbox == []


def test_password_reset_confirm_with_bad_token_is_400(api_client, student):
    api_client.post(RESET, {"email": student.email}, format="json")
    uid, _ = _reset_link_parts(mail.outbox[0].body)

    response = api_client.post(RESET_CONFIRM, {"uid": uid, "token": "bad-token", "new_password": STRONG},
                               format="json")

    assert response.status_code == 400
    assert "token" in _error(response)["fields"]
    student.refresh_from_db()
    assert student.check_password("password123")


@pytest.mark.parametrize("uid", ["!!!", "eHl6", "OTk5OTk5"])  # not base64, not a number, unknown pk
def test_password_reset_confirm_with_bad_uid_is_400(api_client, student, uid):
    response = api_client.post(RESET_CONFIRM, {"uid": uid, "token": "x-y", "new_password": STRONG}, format="json")

    assert response.status_code == 400


def test_password_reset_confirm_with_weak_password_is_400_and_keeps_the_old(api_client, student):
    api_client.post(RESET, {"email": student.email}, format="json")
    uid, token = _reset_link_parts(mail.outbox[0].body)

    response = api_client.post(RESET_CONFIRM, {"uid": uid, "token": token, "new_password": "123"}, format="json")

    assert response.status_code == 400
    assert "new_password" in _error(response)["fields"]
    student.refresh_from_db()
    assert student.check_password("password123")


# --- public endpoints ignore a stale Authorization header ---------------------------------------
@pytest.mark.parametrize("header", ["Bearer garbage", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.bad", "Basic Zm9vOmJhcg=="])
def test_public_endpoints_ignore_stale_authorization_header(api_client, student, header):
    api_client.credentials(HTTP_AUTHORIZATION=header)

    assert _login(api_client, student.email).status_code == 200
    refresh = _login(api_client, student.email).json()["refresh"]
    assert api_client.post(REFRESH, {"refresh": refresh}, format="json").status_code == 200
    assert _register(api_client).status_code == 201
    assert api_client.post(RESET, {"email": student.email}, format="json").status_code == 200
    bad_confirm = api_client.post(RESET_CONFIRM, {"uid": "x", "token": "y", "new_password": STRONG}, format="json")
    assert bad_confirm.status_code == 400  # judged on its body, not refused as unauthenticated
    assert api_client.get("/health/").status_code == 200


def test_expired_access_token_still_allows_login(api_client, student):
    from datetime import timedelta

    from rest_framework_simplejwt.tokens import AccessToken

    token = AccessToken.for_user(student)
    token.set_exp(lifetime=-timedelta(minutes=1))
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    assert api_client.get(ME).status_code == 401
    assert _login(api_client, student.email).status_code == 200


def test_registered_teacher_is_not_staff(api_client):
    _register(api_client, role=Role.TEACHER)

    assert User.objects.get(email="new.user@example.test").is_staff is False


def test_refresh_for_a_deleted_user_is_401_not_500(api_client, make_user):
    user = make_user("student", email="leaving@example.test")
    refresh = _login(api_client, user.email).json()["refresh"]
    user.delete()

    response = api_client.post(REFRESH, {"refresh": refresh}, format="json")

    assert response.status_code == 401
    assert _error(response)["code"] == "invalid_token"


def test_refresh_for_a_deactivated_user_is_401(api_client, student):
    refresh = _login(api_client, student.email).json()["refresh"]
    student.is_active = False
    student.save()

    response = api_client.post(REFRESH, {"refresh": refresh}, format="json")

    assert response.status_code == 401
    assert response.has_header("WWW-Authenticate")
