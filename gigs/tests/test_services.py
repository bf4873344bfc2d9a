"""gigs.services: who may create, edit and delete, and what DELETE keeps."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from gigs import services
from gigs.models import Gig
from linguaflex.errors import Forbidden

pytestmark = pytest.mark.django_db


def _create(teacher, **overrides):
    kwargs = {"title": "German", "description": "", "language": "German", "price_cents": 4000,
              "duration_minutes": 30}
    kwargs.update(overrides)
    return services.gig_create(teacher=teacher, **kwargs)


def test_gig_create_by_teacher_stores_cents_in_usd(teacher):
    gig = _create(teacher)

    assert gig.teacher == teacher
    assert (gig.price_cents, gig.currency, gig.is_active) == (4000, "usd", True)


@pytest.mark.parametrize("who", ["student", "admin_user"])
def test_gig_create_refuses_non_teachers(request, who):
    with pytest.raises(Forbidden):
        _create(request.getfixturevalue(who))

    assert not Gig.objects.exists()


@pytest.mark.parametrize(("price_cents", "minutes"), [(49, 30), (1_000_001, 30), (4000, 14), (4000, 241)])
def test_database_refuses_out_of_range_gigs(teacher, price_cents, minutes):
    with pytest.raises(IntegrityError), transaction.atomic():
        _create(teacher, price_cents=price_cents, duration_minutes=minutes)


def test_database_refuses_other_currencies(teacher, gig):
    with pytest.raises(IntegrityError), transaction.atomic():
        Gig.objects.filter(pk=gig.pk).update(currency="eur")


def test_gig_update_changes_only_editable_fields(teacher, other_teacher, gig):
    services.gig_update(gig=gig, user=teacher, data={"title": "New", "price_cents": 999, "teacher_id": other_teacher.pk})

    gig.refresh_from_db()
    assert (gig.title, gig.price_cents, gig.teacher_id) == ("New", 999, teacher.pk)


@pytest.mark.parametrize("who", ["other_teacher", "student", "admin_user"])
def test_gig_update_refuses_anyone_but_the_owner(request, gig, who):
    with pytest.raises(Forbidden):
        services.gig_update(gig=gig, user=request.getfixturevalue(who), data={"title": "Stolen"})

    gig.refresh_from_db()
    assert gig.title != "Stolen"


def test_gig_delete_without_payments_deletes(teacher, gig):
    assert services.gig_delete(gig=gig, user=teacher) is True
    assert not Gig.objects.filter(pk=gig.pk).exists()


def test_gig_delete_with_a_booking_deactivates(teacher, gig, student, make_paid_booking):
    make_paid_booking(student=student, gig=gig)

    assert services.gig_delete(gig=gig, user=teacher) is False

    gig.refresh_from_db()
    assert gig.is_active is False


def test_gig_delete_with_only_a_failed_payment_deactivates(teacher, gig, student):
    from stripe_payments.models import Payment, PaymentStatus

    Payment.objects.create(student=student, teacher=teacher, gig=gig, amount_cents=5000, admin_fee_cents=500,
                           teacher_amount_cents=4500, status=PaymentStatus.FAILED)

    assert services.gig_delete(gig=gig, user=teacher) is False
    assert Gig.objects.get(pk=gig.pk).is_active is False


@pytest.mark.parametrize("who", ["other_teacher", "admin_user"])
def test_gig_delete_refuses_anyone_but_the_owner(request, gig, who):
    with pytest.raises(Forbidden):
        services.gig_delete(gig=gig, user=request.getfixturevalue(who))

    assert Gig.objects.get(pk=gig.pk).is_active is True
