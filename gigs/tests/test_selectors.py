"""gigs.selectors: the catalogue and what each user may see."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.test.utils import CaptureQueriesContext

from gigs import selectors
from gigs.serializers import GigOutputSerializer
from linguaflex.errors import NotFound

pytestmark = pytest.mark.django_db


def test_gig_list_hides_inactive_gigs(student, teacher, make_gig):
    active = make_gig(teacher)
    make_gig(teacher, is_active=False)

    assert list(selectors.gig_list(user=student)) == [active]


def test_gig_list_mine_is_the_teachers_own_including_inactive(teacher, other_teacher, make_gig):
    own = {make_gig(teacher), make_gig(teacher, is_active=False)}
    make_gig(other_teacher)

    assert set(selectors.gig_list(user=teacher, mine=True)) == own


def test_gig_list_mine_for_an_admin_is_the_active_catalogue(admin_user, teacher, make_gig):
    active = make_gig(teacher)
    make_gig(teacher, is_active=False)

    assert list(selectors.gig_list(user=admin_user, mine=True)) == [active]


def test_gig_list_combines_filters(student, teacher, other_teacher, make_gig):
    wanted = make_gig(teacher, language="French")
    make_gig(teacher, language="Spanish")
    make_gig(other_teacher, language="French")

    assert list(selectors.gig_list(user=student, language="FRENCH", teacher_id=teacher.pk)) == [wanted]


def test_gig_list_unknown_ordering_falls_back_to_newest_first(student, teacher, make_gig):
    first = make_gig(teacher)
    second = make_gig(teacher)

    assert list(selectors.gig_list(user=student, ordering="bogus")) == [second, first]


def test_gig_list_price_ties_are_broken_by_id(student, teacher, make_gig):
    gigs = [make_gig(teacher, price_cents=1000) for _ in range(3)]

    assert list(selectors.gig_list(user=student, ordering="price")) == gigs
    assert list(selectors.gig_list(user=student, ordering="-price")) == gigs[::-1]


def test_gig_list_serializes_in_a_fixed_number_of_queries(student, make_user, make_gig):
    def count_for(n: int) -> int:
        for _ in range(n):
            make_gig(make_user("teacher"))
        with CaptureQueriesContext(connection) as ctx:
            GigOutputSerializer(selectors.gig_list(user=student), many=True).data  # noqa: B018
        return len(ctx.captured_queries)

    assert count_for(2) == count_for(8) == 1


def test_gig_get_visible_inactive_for_owner_and_admin_only(teacher, other_teacher, student, admin_user, make_gig):
    gig = make_gig(teacher, is_active=False)

    assert selectors.gig_get_visible(user=teacher, gig_id=gig.pk) == gig
    assert selectors.gig_get_visible(user=admin_user, gig_id=gig.pk) == gig
    for user in (other_teacher, student, AnonymousUser()):
        with pytest.raises(NotFound):
            selectors.gig_get_visible(user=user, gig_id=gig.pk)


def test_gig_get_visible_unknown_id_is_not_found(student):
    with pytest.raises(NotFound):
        selectors.gig_get_visible(user=student, gig_id=123456)
