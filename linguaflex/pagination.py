"""The lists' page shape, ``{count, next, previous, results}``, with a count that never scans a table.

``count`` is exact up to ``EXACT_COUNT_LIMIT`` (10,000) rows: the count query reads at most that
many index entries (``SELECT COUNT(*) FROM (... LIMIT 10001)``). Above it, on PostgreSQL, ``count``
is the planner's estimate of the same query (``EXPLAIN``, which reads statistics, not rows), never
under the limit, and the answer carries ``X-Total-Count-Estimated: true`` (SQLite, the development
database, counts them all). ``next`` does not
depend on the count: each page reads one row more than it shows, so ``next`` is there exactly when
a row follows, whatever the estimate says; a page past the real end is the usual 404.
"""

import json
import re

from django.core.paginator import EmptyPage, Page, PageNotAnInteger, Paginator
from django.db import connections
from django.utils.functional import cached_property
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import PageNumberPagination

EXACT_COUNT_LIMIT = 10_000
MAX_PAGE_NUMBER = 10**12
ESTIMATED_HEADER = "X-Total-Count-Estimated"


def planner_estimate(queryset) -> int | None:
    """PostgreSQL's estimate of how many rows ``queryset`` returns (None elsewhere or on error)."""
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    sql, params = queryset.order_by().values("pk").query.sql_with_params()
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
            plan = cursor.fetchone()[0]
    except Exception:  # a plan we cannot read: fall back to the bound
        return None
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


class BoundedCountPage(Page):
    """A page that knows from its own extra row whether another follows."""

    def __init__(self, object_list, number, paginator, has_more: bool):
        super().__init__(object_list, number, paginator)
        self._has_more = has_more

    def has_next(self):
        return self._has_more

    def next_page_number(self):
        if not self._has_more:
            raise EmptyPage("That page contains no results")
        return self.number + 1


class BoundedCountPaginator(Paginator):
    limit = EXACT_COUNT_LIMIT

    @cached_property
    def count(self) -> int:
        exact = self.object_list[: self.limit + 1].count()
        self.count_estimated = False
        if exact <= self.limit:
            return exact
        estimate = planner_estimate(self.object_list)
        if estimate is None:  # SQLite, the embedded development database: count them all
            return self.object_list.count()
        self.count_estimated = True
        return max(self.limit + 1, estimate)

    def validate_number(self, number):
        try:
            if isinstance(number, float) and not number.is_integer():
                raise ValueError
            number = int(number)
        except (TypeError, ValueError):
            raise PageNotAnInteger("That page number is not an integer") from None
        if number < 1:
            raise EmptyPage("That page number is less than 1")
        if number > MAX_PAGE_NUMBER:  # an OFFSET no database takes: no such page
            raise EmptyPage("That page contains no results")
        return number

    def page(self, number):
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        rows = list(self.object_list[bottom: bottom + self.per_page + 1])
        if not rows and number > 1:
            raise EmptyPage("That page contains no results")
        return BoundedCountPage(rows[: self.per_page], number, self, has_more=len(rows) > self.per_page)

_POSITIVE_ASCII_INTEGER = re.compile(r"0*[1-9][0-9]*")


class StandardPagination(PageNumberPagination):
    """DRF's page shape: 20 a page, ``?page_size=`` up to 100 (larger is clamped).

    Both parameters are what the schema says (linguaflex.openapi.PAGE_PARAMETERS): an integer of 1 or
    more in ASCII digits. A ``page_size`` that is not one is a 400 naming it, where DRF would quietly
    use the default; a ``page`` that is not one is DRF's 404 "Invalid page." for any page that does
    not exist (``?page=`` and ``?page=last`` included: int() would also take "١" for page 1).
    """

    django_paginator_class = BoundedCountPaginator
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100
    last_page_strings = ()

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not _POSITIVE_ASCII_INTEGER.fullmatch(raw):
            raise ValidationError({self.page_size_query_param: [
                f"Enter a whole number of 1 or more (more than {self.max_page_size} is taken as {self.max_page_size})."
            ]})
        digits = raw.lstrip("0")
        if len(digits) > len(str(self.max_page_size)):  # no int() of a 5,000-digit number
            return self.max_page_size
        return min(int(digits), self.max_page_size)

    def get_paginated_response(self, data):
        response = super().get_paginated_response(data)
        if getattr(self.page.paginator, "count_estimated", False):
            response[ESTIMATED_HEADER] = "true"
        return response

    def get_page_number(self, request, paginator):
        raw = request.query_params.get(self.page_query_param)
        if raw is None:
            return 1
        if not _POSITIVE_ASCII_INTEGER.fullmatch(raw):
            raise NotFound(self.invalid_page_message)
        return raw


def paginated_response(request, view, queryset, serializer_class):
    """One page of ``queryset`` in DRF's page shape (a page past the end is the JSON 404)."""
    paginator = (getattr(view, "pagination_class", None) or StandardPagination)()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True).data)
