from rest_framework import pagination

from partnerhub.paging import DeferredJoinPaginator


class PageNumberPagination(pagination.PageNumberPagination):
    """Numbered pages, fast deep into long lists (see DeferredJoinPaginator)."""

    django_paginator_class = DeferredJoinPaginator
    page_size_query_param = "page_size"
    max_page_size = 200
