"""Account writes: registration, logout, password reset."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode
from rest_framework_simplejwt.exceptions import TokenBackendError, TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.state import token_backend as jwt_token_backend
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken
from rest_framework_simplejwt.tokens import RefreshToken

from linguaflex.errors import ValidationFailed

from .models import Role, User, normalize_email


def user_register(*, email: str, password: str, first_name: str, last_name: str, role: str) -> User:
    if role not in (Role.STUDENT, Role.TEACHER):
        raise ValidationFailed(fields={"role": ["Choose student or teacher."]})
    email = normalize_email(email)
    candidate = User(email=email, first_name=first_name, last_name=last_name, role=role)
    try:
        password_validation.validate_password(password, user=candidate)
    except DjangoValidationError as exc:
        raise ValidationFailed("The password is too weak.", fields={"password": list(exc.messages)}) from None
    try:
        with transaction.atomic():
            return User.objects.create_user(
                email, password, first_name=first_name, last_name=last_name, role=role
            )
    except IntegrityError:
        raise ValidationFailed(
            "An account with this e-mail already exists.",
            fields={"email": ["An account with this e-mail already exists."]},
        ) from None


def _already_blacklisted_claims(refresh: str) -> dict | None:
    """The claims of a genuine, unexpired refresh token that is already blacklisted, else None."""
    try:
        claims = jwt_token_backend.decode(refresh, verify=True)
    except TokenBackendError:
        return None
    if claims.get(jwt_settings.TOKEN_TYPE_CLAIM) != RefreshToken.token_type:
        return None
    if not BlacklistedToken.objects.filter(token__jti=claims.get(jwt_settings.JTI_CLAIM)).exists():
        return None
    return claims


def user_logout(*, user: User, refresh: str) -> None:
    """Blacklist the user's own refresh token. Logging out twice with it is not an error."""
    invalid = ValidationFailed("The refresh token is invalid or expired.", fields={"refresh": ["Invalid token."]})
    try:
        token: RefreshToken | None = RefreshToken(refresh)
        claims = token.payload
    except TokenError:
        claims = _already_blacklisted_claims(refresh)
        token = None
        if claims is None:
            raise invalid from None
    if str(claims.get(jwt_settings.USER_ID_CLAIM)) != str(user.pk):
        raise ValidationFailed("The refresh token is not yours.", fields={"refresh": ["Invalid token."]})
    if token is not None:
        token.blacklist()


def password_reset_request(*, email: str) -> None:
    """Send a reset link when the account exists; say nothing either way (no enumeration)."""
    user = User.objects.filter(email__iexact=normalize_email(email), is_active=True).first()
    if user is None:
        return
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    link = f"{settings.PUBLIC_BASE_URL}/reset-password?uid={uid}&token={token}"
    send_mail(
        subject="Reset your LinguaFlex password",
        message=(
            f"Hello {user.display_name},\n\nSomeone asked to reset the password of this account. "
            f"To choose a new one, open:\n{link}\n\nOr send uid={uid} and token={token} to "
            "POST /accounts/password-reset/confirm/. If it was not you, ignore this e-mail.\n"
        ),
        from_email=None,
        recipient_list=[user.email],
    )


def password_reset_confirm(*, uid: str, token: str, new_password: str) -> User:
    invalid = ValidationFailed("The reset link is invalid or has expired.", fields={"token": ["Invalid or expired."]})
    try:
        pk = int(force_str(urlsafe_base64_decode(uid)))
    except (TypeError, ValueError, OverflowError):
        raise invalid from None
    user = User.objects.filter(pk=pk, is_active=True).first()
    if user is None or not default_token_generator.check_token(user, token):
        raise invalid
    try:
        password_validation.validate_password(new_password, user=user)
    except DjangoValidationError as exc:
        raise ValidationFailed("The password is too weak.", fields={"new_password": list(exc.messages)}) from None
    user.set_password(new_password)
    user.save(update_fields=["password"])
    return user
