from __future__ import annotations

from django.contrib.auth import password_validation
from django.core.validators import MinLengthValidator
from rest_framework import serializers
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer, TokenRefreshSerializer

from linguaflex.fields import DocumentedCharField

from .models import Role, User, normalize_email


def password_min_length() -> int:
    """The configured MinimumLengthValidator's length (AUTH_PASSWORD_VALIDATORS), read when used."""
    lengths = [validator.min_length for validator in password_validation.get_default_password_validators()
               if isinstance(validator, password_validation.MinimumLengthValidator)]
    return max(lengths, default=0)


def password_schema() -> dict:
    """The rules of Django's password validators, as the schema states them (read when it is built)."""
    rules = " ".join(password_validation.password_validators_help_texts())
    return {"description": f"Checked by Django's password validators: {rules}".strip()}


def password_field() -> DocumentedCharField:
    # The length is checked here too, so that the schema states it (minLength); the other rules
    # (not too similar to the e-mail or name, not a common password, not all digits) are Django's
    # validators in the service, which the description lists.
    too_short = MinLengthValidator(
        password_min_length, message="This password is too short. It must contain at least %(limit_value)d characters.",
    )
    return DocumentedCharField(write_only=True, max_length=128, trim_whitespace=False, validators=[too_short],
                               schema_extra=password_schema)


class UserSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "email", "first_name", "last_name", "role"]
        read_only_fields = fields


class RegisterInputSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = password_field()
    first_name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")
    last_name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")
    role = serializers.ChoiceField(choices=[Role.STUDENT, Role.TEACHER])


class RegisterOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "email", "role"]


class EmailTokenObtainSerializer(TokenObtainPairSerializer):
    """simplejwt's pair, with a case-insensitive e-mail and the user in the answer."""

    def validate(self, attrs):
        attrs[self.username_field] = normalize_email(attrs.get(self.username_field, ""))
        data = super().validate(attrs)
        data["user"] = UserSerializer(self.user).data
        return data


class RotatingRefreshSerializer(TokenRefreshSerializer):
    """simplejwt's refresh, with a deleted user's token refused (401) rather than a 500."""

    def validate(self, attrs):
        try:
            return super().validate(attrs)
        except User.DoesNotExist:
            raise AuthenticationFailed("No active account found for the given token.", "no_active_account") from None


class LoginOutputSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()
    user = UserSerializer()


class LogoutInputSerializer(serializers.Serializer):
    refresh = serializers.CharField()


class PasswordResetInputSerializer(serializers.Serializer):
    email = serializers.EmailField()


class PasswordResetConfirmInputSerializer(serializers.Serializer):
    uid = serializers.CharField(max_length=64)
    token = serializers.CharField(max_length=128)
    new_password = password_field()
