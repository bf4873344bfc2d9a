"""Shared pytest fixtures (loaded as a plugin by pytest.ini): users, clients, gigs, paid bookings,
the in-process Stripe emulator, and the PostgreSQL / Redis gates."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"
DEMO_PASSWORD = "password123"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, available: bool, how: str) -> None:
    """Skip with a clear reason on a laptop; fail in CI, where every service must be there."""
    if available:
        return
    message = f"needs {name}: {how}"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: a missing service is a failure, not a skip)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(autouse=True)
def _clear_cache():
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _gate_services(request):
    if request.node.get_closest_marker("postgres"):
        from django.db import connection

        require_service(
            "PostgreSQL",
            connection.vendor == "postgresql",
            "run the suite with DATABASE_URL=postgres://postgres@127.0.0.1:5432/linguaflex (make test-postgres)",
        )
    if request.node.get_closest_marker("redis"):
        url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")
        parsed = urlparse(url)
        require_service(
            "Redis",
            _reachable(parsed.hostname or "127.0.0.1", parsed.port or 6379),
            f"start Redis at {url} or set REDIS_URL",
        )


# --- users ---------------------------------------------------------------------------------------
@pytest.fixture
def make_user(db):
    from accounts.models import Role, User

    counter = {"n": 0}

    def make(role: str = Role.STUDENT, email: str | None = None, password: str = DEMO_PASSWORD, **extra):
        counter["n"] += 1
        email = email or f"{role}{counter['n']}@example.test"
        if role == Role.ADMIN:
            return User.objects.create_superuser(email, password, **extra)
        return User.objects.create_user(email, password, role=role, **extra)

    return make


@pytest.fixture
def student(make_user):
    return make_user("student", email="student@example.test", first_name="Stu", last_name="Dent")


@pytest.fixture
def other_student(make_user):
    return make_user("student", email="other.student@example.test")


@pytest.fixture
def teacher(make_user):
    return make_user("teacher", email="teacher@example.test", first_name="Tea", last_name="Cher")


@pytest.fixture
def other_teacher(make_user):
    return make_user("teacher", email="other.teacher@example.test")


@pytest.fixture
def admin_user(make_user):
    return make_user("admin", email="admin@example.test")


# --- clients ---------------------------------------------------------------------------------------
@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def client_for(db):
    """An APIClient authenticated with a real access JWT for ``user`` (None: anonymous)."""
    from rest_framework.test import APIClient
    from rest_framework_simplejwt.tokens import RefreshToken

    def make(user=None):
        client = APIClient()
        if user is not None:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
        return client

    return make


# --- gigs, payments, bookings ----------------------------------------------------------------------
@pytest.fixture
def make_gig(db):
    from gigs.models import Gig

    def make(teacher, price_cents: int = 5000, **extra):
        defaults = {"title": "Spanish conversation", "description": "", "language": "Spanish",
                    "duration_minutes": 60, "is_active": True}
        defaults.update(extra)
        return Gig.objects.create(teacher=teacher, price_cents=price_cents, **defaults)

    return make


@pytest.fixture
def gig(make_gig, teacher):
    return make_gig(teacher)


@pytest.fixture
def make_paid_booking(db):
    """A succeeded payment and its booking, created through the bookings service."""
    from bookings.services import booking_create_for_payment
    from stripe_payments.models import Payment, PaymentStatus
    from stripe_payments.money import split_amount

    counter = {"n": 0}

    def make(*, student, gig, status: str | None = None, scheduled_at=None):
        counter["n"] += 1
        split = split_amount(gig.price_cents)
        payment = Payment.objects.create(
            student=student, teacher=gig.teacher, gig=gig, amount_cents=gig.price_cents,
            admin_fee_cents=split.admin_fee_cents, teacher_amount_cents=split.teacher_amount_cents,
            status=PaymentStatus.SUCCEEDED, stripe_payment_intent_id=f"pi_fixture_{counter['n']}",
            card_brand="visa", card_last4="4242",
        )
        booking, _ = booking_create_for_payment(payment=payment, scheduled_at=scheduled_at)
        if status is not None and status != booking.status:
            type(booking).objects.filter(pk=booking.pk).update(status=status)
            booking.refresh_from_db()
        return booking

    return make


# --- the Stripe emulator ---------------------------------------------------------------------------
@pytest.fixture(scope="session")
def stripe_emulator_server():
    from stripe_emulator.testing import start_emulator

    handle = start_emulator(port=0)
    yield handle
    handle.stop()


@pytest.fixture
def stripe_emulator(stripe_emulator_server, settings):
    """The in-process emulator, reset, with the gateway pointed at it for this test. Its latency,
    search lag and webhook delivery options survive a reset by design, so they are set back here too."""
    from stripe_emulator.testing import DELIVERY_DEFAULTS

    stripe_emulator_server.reset()
    stripe_emulator_server.set_latency(0)
    stripe_emulator_server.set_search_lag(0)
    stripe_emulator_server.set_webhook_delivery(**DELIVERY_DEFAULTS)
    settings.STRIPE_API_BASE = stripe_emulator_server.base_url
    settings.STRIPE_SECRET_KEY = "sk_test_linguaflex_emulator"
    yield stripe_emulator_server
    stripe_emulator_server.reset()
    stripe_emulator_server.set_search_lag(0)
    stripe_emulator_server.set_webhook_delivery(**DELIVERY_DEFAULTS)
