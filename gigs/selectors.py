"""Gig reads, scoped to who is asking."""

from __future__ import annotations

from django.db.models import QuerySet

from linguaflex.errors import NotFound

from .models import Gig

ORDERINGS = {
    "price": ("price_cents", "id"),
    "-price": ("-price_cents", "-id"),
    "created_at": ("created_at", "id"),
    "-created_at": ("-created_at", "-id"),
}


def gig_list(*, user, language: str | None = None, teacher_id: int | None = None, mine: bool = False,
             ordering: str | None = None) -> QuerySet[Gig]:
    qs = Gig.objects.select_related("teacher")
    if mine and user.is_authenticated and user.is_teacher:
        qs = qs.filter(teacher=user)
    else:
        qs = qs.filter(is_active=True)
    if language:
        qs = qs.filter(language__iexact=language)
    if teacher_id is not None:
        qs = qs.filter(teacher_id=teacher_id)
    return qs.order_by(*ORDERINGS.get(ordering or "-created_at", ORDERINGS["-created_at"]))


def gig_get_visible(*, user, gig_id: int) -> Gig:
    """An active gig for anyone; an inactive one only for its teacher and admins."""
    gig = Gig.objects.select_related("teacher").filter(pk=gig_id).first()
    if gig is None:
        raise NotFound("Gig not found.")
    if not gig.is_active and not (user.is_authenticated and (user.is_admin or gig.teacher_id == user.pk)):
        raise NotFound("Gig not found.")
    return gig
