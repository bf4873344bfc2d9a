from rest_framework.pagination import PageNumberPagination


class StandardPagination(PageNumberPagination):
    """DRF's page shape: 20 a page, ``?page_size=`` up to 100 (larger is clamped)."""

    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100
