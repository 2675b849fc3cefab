"""Directory filters, shared by the partner directory page and the partners API."""

from __future__ import annotations

import django_filters
from django.db.models import F

from partnerhub.partners.models import LifecycleStage, Partner, PartnerStatus, PartnerType
from partnerhub.partners.selectors import internal_users


def _partner_types(request):
    return PartnerType.objects.all()


def _managers(request):
    return internal_users()


class PartnerFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="filter_search", label="Search")
    type = django_filters.ModelChoiceFilter(
        field_name="partner_type", queryset=_partner_types, to_field_name="key", label="Type"
    )
    stage = django_filters.ChoiceFilter(field_name="lifecycle_stage", choices=LifecycleStage.choices, label="Stage")
    status = django_filters.ChoiceFilter(choices=PartnerStatus.choices)
    region = django_filters.CharFilter(field_name="region", lookup_expr="iexact")
    manager = django_filters.ModelChoiceFilter(queryset=_managers, label="Manager")
    sort = django_filters.OrderingFilter(
        fields=(
            ("name", "name"),
            ("lifecycle_stage", "stage"),
            ("region", "region"),
            ("size", "size"),
            ("joined_on", "joined"),
            ("updated_at", "updated"),
        ),
        label="Sort",
    )

    class Meta:
        model = Partner
        fields = ["q", "type", "stage", "status", "region", "manager"]

    def filter_search(self, queryset, name, value):
        return queryset.search(value)

    @property
    def qs(self):
        queryset = super().qs
        # A stable order under every sort, so pages never repeat or skip rows.
        ordering = list(queryset.query.order_by) or ["name"]
        ordering = [
            F(o[1:]).desc(nulls_last=True)
            if isinstance(o, str) and o.startswith("-")
            else (F(o).asc(nulls_last=True) if isinstance(o, str) else o)
            for o in ordering
        ]
        return queryset.order_by(*ordering, "id")
