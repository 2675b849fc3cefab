"""Directory filters, shared by the partner directory page and the partners API."""

from __future__ import annotations

import django_filters
from django.db.models import F

from partnerhub.partners.models import LifecycleStage, Partner, PartnerStatus, PartnerType
from partnerhub.partners.selectors import internal_users

# Sort keys people and integrations use, and the column each one orders by.
SORT_FIELDS = {
    "name": "name",
    "stage": "lifecycle_stage",
    "region": "region",
    "size": "size",
    "joined": "joined_on",
    "updated": "updated_at",
}
UNASSIGNED = "none"


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
    manager = django_filters.ModelChoiceFilter(
        queryset=_managers, label="Manager", null_label="No manager", null_value=UNASSIGNED
    )
    sort = django_filters.OrderingFilter(
        fields=tuple((column, key) for key, column in SORT_FIELDS.items()),
        label="Sort",
    )

    class Meta:
        model = Partner
        fields = ["q", "type", "stage", "status", "region", "manager"]

    def filter_search(self, queryset, name, value):
        return queryset.search(value)

    @property
    def qs(self):
        if not hasattr(self, "_ordered_qs"):
            queryset = super().qs
            self._ordered_qs = queryset.order_by(*self._stable_ordering(queryset.query.order_by))
        return self._ordered_qs

    @staticmethod
    def _stable_ordering(requested) -> list:
        """The requested order, completed so that pages never repeat or skip rows.

        Ties break on name, which is unique within a tenant (partner_name_unique_per_tenant),
        so the order is total without id: every directory index is (tenant, <column>, name) and
        the database walks it instead of sorting the tenant's rows. NULLS LAST is only asked of
        nullable columns; on a NOT NULL column it would stop PostgreSQL from scanning an index
        backwards for a descending sort.
        """
        requested = [*requested] or ["name"]
        ordering = []
        for term in requested:
            if not isinstance(term, str):
                ordering.append(term)
                continue
            column = term.removeprefix("-")
            nulls_last = True if Partner._meta.get_field(column).null else None
            direction = F(column).desc if term.startswith("-") else F(column).asc
            ordering.append(direction(nulls_last=nulls_last))
        if not any(isinstance(term, str) and term.removeprefix("-") == "name" for term in requested):
            ordering.append("name")
        return ordering
