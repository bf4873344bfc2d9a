"""Gig writes. Only teachers create; only the owner edits or deletes."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import ProtectedError

from linguaflex.errors import Forbidden

from .models import Gig

EDITABLE_FIELDS = {"title", "description", "language", "price_cents", "duration_minutes", "is_active"}


def gig_create(*, teacher, title: str, description: str, language: str, price_cents: int, duration_minutes: int) -> Gig:
    if not teacher.is_teacher:
        raise Forbidden("Only teachers can publish gigs.")
    return Gig.objects.create(
        teacher=teacher,
        title=title,
        description=description,
        language=language,
        price_cents=price_cents,
        duration_minutes=duration_minutes,
    )


def _ensure_owner(gig: Gig, user) -> None:
    if gig.teacher_id != user.pk:
        raise Forbidden("Only the gig's teacher can change it.")


def gig_update(*, gig: Gig, user, data: dict[str, Any]) -> Gig:
    _ensure_owner(gig, user)
    changed = [field for field in data if field in EDITABLE_FIELDS]
    for field in changed:
        setattr(gig, field, data[field])
    if changed:
        gig.save(update_fields=[*changed, "updated_at"])
    return gig


def gig_delete(*, gig: Gig, user) -> bool:
    """Delete the gig, or deactivate it when payments or bookings point at it. True if deleted."""
    _ensure_owner(gig, user)
    try:
        with transaction.atomic():
            gig.delete()
        return True
    except ProtectedError:
        Gig.objects.filter(pk=gig.pk).update(is_active=False)
        gig.is_active = False
        return False
