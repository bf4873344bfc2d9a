"""linguaflex/pagination.py: the page shape with a count that never scans a whole table, and a
``next`` that is right whatever the count says."""

from __future__ import annotations

import pytest
from django.core.paginator import EmptyPage
from django.db import connection
from django.test.utils import CaptureQueriesContext

from gigs.models import Gig
from linguaflex import pagination
from linguaflex.pagination import BoundedCountPaginator

pytestmark = pytest.mark.django_db


@pytest.fixture
def gigs(make_gig, teacher):
    return [make_gig(teacher) for _ in range(7)]


def _queryset():
    return Gig.objects.order_by("-created_at", "-id")


def test_under_the_limit_the_count_is_exact_and_next_follows_the_rows(gigs):
    paginator = BoundedCountPaginator(_queryset(), 3)

    first, last = paginator.page(1), paginator.page(3)

    assert paginator.count == 7 and paginator.count_estimated is False
    assert [g.pk for g in first] == [g.pk for g in _queryset()[:3]] and first.has_next()
    assert len(last) == 1 and not last.has_next() and last.has_previous()
    with pytest.raises(EmptyPage):
        last.next_page_number()


def test_a_page_past_the_end_and_absurd_page_numbers_are_empty(gigs):
    paginator = BoundedCountPaginator(_queryset(), 3)

    for number in (4, 0, pagination.MAX_PAGE_NUMBER + 1):
        with pytest.raises(EmptyPage):
            paginator.page(number)
    assert list(BoundedCountPaginator(Gig.objects.none(), 3).page(1)) == []


def test_the_count_query_reads_at_most_the_limit_and_one(gigs, monkeypatch):
    monkeypatch.setattr(BoundedCountPaginator, "limit", 4)
    monkeypatch.setattr(pagination, "planner_estimate", lambda queryset: 5000)
    paginator = BoundedCountPaginator(_queryset(), 3)

    with CaptureQueriesContext(connection) as queries:
        count = paginator.count

    assert count == 5000 and paginator.count_estimated is True
    assert "LIMIT 5" in queries.captured_queries[0]["sql"]


def test_an_estimate_is_never_under_the_limit(gigs, monkeypatch):
    monkeypatch.setattr(BoundedCountPaginator, "limit", 4)
    monkeypatch.setattr(pagination, "planner_estimate", lambda queryset: 2)

    assert BoundedCountPaginator(_queryset(), 3).count == 5


def test_without_a_planner_estimate_the_rows_are_counted(gigs, monkeypatch):
    monkeypatch.setattr(BoundedCountPaginator, "limit", 4)
    monkeypatch.setattr(pagination, "planner_estimate", lambda queryset: None)
    paginator = BoundedCountPaginator(_queryset(), 3)

    assert paginator.count == 7 and paginator.count_estimated is False


def test_an_estimated_count_is_flagged_in_a_header_and_next_still_follows_the_rows(gigs, client_for, student,
                                                                                  monkeypatch):
    api_client = client_for(student)
    monkeypatch.setattr(BoundedCountPaginator, "limit", 4)
    monkeypatch.setattr(pagination, "planner_estimate", lambda queryset: 999)

    first = api_client.get("/gigs/", {"page_size": 5})
    last = api_client.get("/gigs/", {"page_size": 5, "page": 2})
    beyond = api_client.get("/gigs/", {"page_size": 5, "page": 3})

    assert first.status_code == 200 and first[pagination.ESTIMATED_HEADER] == "true"
    assert first.json()["count"] == 999 and first.json()["next"]
    assert last.status_code == 200 and last.json()["next"] is None and len(last.json()["results"]) == 2
    assert beyond.status_code == 404


def test_an_exact_count_has_no_header(gigs, client_for, student):
    api_client = client_for(student)
    response = api_client.get("/gigs/")

    assert response.json()["count"] == 7 and pagination.ESTIMATED_HEADER not in response


@pytest.mark.postgres
def test_the_planner_estimate_is_read_on_postgresql(gigs):
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE gigs_gig")
    estimate = pagination.planner_estimate(_queryset())

    assert isinstance(estimate, int) and estimate >= 1
