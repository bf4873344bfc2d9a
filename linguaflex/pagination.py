import re

from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import PageNumberPagination

_POSITIVE_ASCII_INTEGER = re.compile(r"0*[1-9][0-9]*")


class StandardPagination(PageNumberPagination):
    """DRF's page shape: 20 a page, ``?page_size=`` up to 100 (larger is clamped).

    Both parameters are what the schema says (linguaflex.openapi.PAGE_PARAMETERS): an integer of 1 or
    more in ASCII digits. A ``page_size`` that is not one is a 400 naming it, where DRF would quietly
    use the default; a ``page`` that is not one is DRF's 404 "Invalid page." for any page that does
    not exist (``?page=`` and ``?page=last`` included: int() would also take "١" for page 1).
    """

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
