"""Filters for the metric catalogue, scorecard versions, their items and observations (API and pages)."""

from __future__ import annotations

import django_filters

from partnerhub.partners.models import PartnerType
from scorecards.models import (
    Direction,
    IndicatorKind,
    Metric,
    MetricObservation,
    ObservationSource,
    Pillar,
    Scorecard,
    ScorecardItem,
    ScorecardVersion,
    Unit,
    VersionStatus,
)

MAX_ID = 2**63 - 1


def _metrics(request):
    return Metric.objects.all()


def _scorecards(request):
    return Scorecard.objects.all()


def _versions(request):
    return ScorecardVersion.objects.all()


def _partner_types(request):
    return PartnerType.objects.all()


class MetricFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="filter_search", label="Search")
    pillar = django_filters.ChoiceFilter(choices=Pillar.choices)
    unit = django_filters.ChoiceFilter(choices=Unit.choices)
    direction = django_filters.ChoiceFilter(choices=Direction.choices)
    indicator = django_filters.ChoiceFilter(choices=IndicatorKind.choices)
    is_active = django_filters.BooleanFilter()

    class Meta:
        model = Metric
        fields = ["q", "pillar", "unit", "direction", "indicator", "is_active"]

    def filter_search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(name__icontains=value) | queryset.filter(key__icontains=value)


class ScorecardVersionFilter(django_filters.FilterSet):
    scorecard = django_filters.ModelChoiceFilter(queryset=_scorecards)
    status = django_filters.ChoiceFilter(choices=VersionStatus.choices)

    class Meta:
        model = ScorecardVersion
        fields = ["scorecard", "status"]


class ScorecardItemFilter(django_filters.FilterSet):
    version = django_filters.ModelChoiceFilter(queryset=_versions)
    metric = django_filters.ModelChoiceFilter(queryset=_metrics, to_field_name="key")

    class Meta:
        model = ScorecardItem
        fields = ["version", "metric"]


class ObservationFilter(django_filters.FilterSet):
    """Current observations unless ``current=false`` asks for the superseded ones too."""

    partner = django_filters.NumberFilter(method="filter_partner", label="Partner id")
    partner_type = django_filters.ModelChoiceFilter(
        field_name="partner__partner_type", queryset=_partner_types, to_field_name="key", label="Partner type"
    )
    metric = django_filters.ModelChoiceFilter(queryset=_metrics, to_field_name="key", label="Metric key")
    period = django_filters.CharFilter(method="filter_period", label="Period, e.g. FY2026-Q3")
    source = django_filters.ChoiceFilter(choices=ObservationSource.choices)
    current = django_filters.BooleanFilter(
        method="filter_current", label="Only the values in force (default); false includes superseded ones"
    )

    class Meta:
        model = MetricObservation
        fields = ["partner", "partner_type", "metric", "period", "source", "current"]

    def __init__(self, data=None, *args, **kwargs):
        if data is not None and "current" not in data:
            data = data.copy()
            data["current"] = "true"
        super().__init__(data, *args, **kwargs)

    def filter_partner(self, queryset, name, value):
        if value != value.to_integral_value() or not 0 < value < MAX_ID:
            return queryset.none()  # no partner has this id; the database is not asked about it
        return queryset.filter(partner_id=int(value))

    def filter_period(self, queryset, name, value):
        return queryset.filter(period=value.strip().upper())

    def filter_current(self, queryset, name, value):
        return queryset.current() if value else queryset
