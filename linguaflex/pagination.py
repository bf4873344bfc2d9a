from rest_framework.pagination import PageNumberPagination


class StandardPagination(PageNumberPagination):
    """DRF's page shape: 20 a page, ``?page_size=`` up to 100 (larger is clamped)."""

    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100


def paginated_response(request, view, queryset, serializer_class):
    """One page of ``queryset`` in DRF's page shape (a page past the end is the JSON 404)."""
    paginator = (getattr(view, "pagination_class", None) or StandardPagination)()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True).data)
