"""Filters for deals, data sources and sync runs (API, and the pages that will list them)."""

from __future__ import annotations

import django_filters

from partnerhub.integrations.source_models import DataSource, Deal, SourceKind, SyncRun, SyncStatus

MAX_ID = 2**63 - 1


class YesNoFilter(django_filters.TypedChoiceFilter):
    """true or false (1 or 0); anything else answers 400 instead of being ignored."""

    def __init__(self, *args, **kwargs):
        choices = [("true", "true"), ("false", "false"), ("1", "1"), ("0", "0")]
        super().__init__(*args, choices=choices, coerce=lambda value: value in ("true", "1"), **kwargs)


def _by_id(queryset, field_name: str, value):
    if value != value.to_integral_value() or not 0 < value <= MAX_ID:
        return queryset.none()  # no row has this id; the database is not asked about it
    return queryset.filter(**{field_name: int(value)})


class DealFilter(django_filters.FilterSet):
    partner = django_filters.NumberFilter(method="filter_partner", label="Partner id")
    source = django_filters.NumberFilter(method="filter_source", label="Data source id")
    external_id = django_filters.CharFilter(label="The deal's id at its source")
    closed = YesNoFilter()
    won = YesNoFilter()
    unmatched = YesNoFilter(field_name="partner", lookup_expr="isnull", label="Without a partner")
    deleted = YesNoFilter(field_name="deleted_at", method="filter_deleted", label="Deleted at the source")
    modified_since = django_filters.IsoDateTimeFilter(
        field_name="updated_at", lookup_expr="gte", label="Changed in PartnerHub at or after (ISO 8601)"
    )

    class Meta:
        model = Deal
        fields = ["partner", "source", "external_id", "closed", "won", "unmatched", "deleted", "modified_since"]

    def filter_partner(self, queryset, name, value):
        return _by_id(queryset, "partner_id", value)

    def filter_source(self, queryset, name, value):
        return _by_id(queryset, "source_id", value)

    def filter_deleted(self, queryset, name, value):
        return queryset.filter(deleted_at__isnull=not value)


class DataSourceFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=SourceKind.choices)
    is_active = YesNoFilter()

    class Meta:
        model = DataSource
        fields = ["kind", "is_active"]


class SyncRunFilter(django_filters.FilterSet):
    source = django_filters.NumberFilter(method="filter_source", label="Data source id")
    status = django_filters.ChoiceFilter(choices=SyncStatus.choices)

    class Meta:
        model = SyncRun
        fields = ["source", "status"]

    def filter_source(self, queryset, name, value):
        return _by_id(queryset, "source_id", value)
