"""Scores and segment benchmarks over the API: read-only, filtered, partner users see their own."""

from __future__ import annotations

import django_filters
from django.db.models import Subquery
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from partnerhub.partners.models import Partner
from partnerhub.tenancy.api.viewsets import TenantViewSet
from partnerhub.tenancy.roles import Capability
from scorecards.api.score_serializers import ScoreDetailSerializer, ScoreSerializer, SegmentBenchmarkSerializer
from scorecards.models import Rating, Score, SegmentBenchmark
from scorecards.periods import PeriodError, parse_period
from scorecards.selectors import FLAGS

CURRENT, ALL = "current", "all"
BASELINE_PARAMETER = OpenApiParameter(
    "baseline",
    OpenApiTypes.STR,
    description="A period key, e.g. FY2025-Q3: adds `baseline`, this partner's score in that period and what "
    "changed since, in total and per metric. A period without a score gives `scored: false` and a note.",
)


class ScoreFilter(django_filters.FilterSet):
    period = django_filters.CharFilter(help_text="A period key, e.g. FY2026-Q3.")
    segment = django_filters.CharFilter(help_text="A partner type key, e.g. reseller.")
    rating = django_filters.ChoiceFilter(choices=Rating.choices)
    flag = django_filters.ChoiceFilter(
        choices=[(flag, flag.replace("_", " ")) for flag in FLAGS], method="filter_flag", help_text="Flagged scores."
    )
    partner = django_filters.NumberFilter(field_name="partner_id", help_text="A partner's id.")
    version = django_filters.NumberFilter(field_name="version_id", help_text="A scorecard version's id.")
    revisions = django_filters.ChoiceFilter(
        choices=[(CURRENT, "Current revisions only"), (ALL, "Every revision, history included")],
        method="filter_revisions",
        help_text="Current revisions by default; `all` includes superseded revisions.",
    )

    class Meta:
        model = Score
        fields = ["period", "segment", "rating", "flag", "partner", "version", "revisions"]

    def filter_flag(self, queryset, name, value):
        return queryset.filter(**{f"flag_{value}": True})

    def filter_revisions(self, queryset, name, value):
        # The default (current only) is applied by the view, which also applies it when the
        # parameter is absent; `all` simply does not narrow.
        return queryset


@extend_schema_view(
    list=extend_schema(
        summary="List scores",
        description="Partners' computed scores. Current revisions unless `revisions=all`. Partner users see "
        "their own partner's scores only.",
    ),
    retrieve=extend_schema(
        summary="Get a score",
        description="A score with its components (per item: raw value, normalized value, points, weights, "
        "contribution) and the explanation of its change since the previous period; with `baseline`, "
        "compared with the same partner's score in another period.",
        parameters=[BASELINE_PARAMETER],
    ),
)
class ScoreViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """Scores of the tenant's partners, per period and scorecard version, with their history."""

    model = Score
    filterset_class = ScoreFilter
    partner_access = True
    read_capability = Capability.VIEW_PARTNERS

    def get_serializer_class(self):
        return ScoreDetailSerializer if self.action == "retrieve" else ScoreSerializer

    def retrieve(self, request, *args, **kwargs):
        score = self.get_object()
        context = self.get_serializer_context()
        requested = (request.query_params.get("baseline") or "").strip()
        if requested:
            try:
                context["baseline"] = parse_period(requested, start_month=1).key
            except PeriodError as error:
                raise ValidationError({"baseline": [str(error)]}) from None
        return Response(ScoreDetailSerializer(score, context=context).data)

    def refine_queryset(self, queryset):
        queryset = queryset.select_related("partner", "version__scorecard")
        if self.action == "list" and self.request.query_params.get("revisions") != ALL:
            queryset = queryset.filter(is_current=True)
        if self.action == "list":
            queryset = queryset.defer("components", "explanation")
        return queryset.order_by("-period", "segment", "rank", "partner_id", "-revision")


class SegmentBenchmarkFilter(django_filters.FilterSet):
    period = django_filters.CharFilter(help_text="A period key, e.g. FY2026-Q3.")
    segment = django_filters.CharFilter(help_text="A partner type key, e.g. reseller.")
    metric = django_filters.CharFilter(field_name="metric__key", help_text="A metric key.")
    version = django_filters.NumberFilter(field_name="version_id", help_text="A scorecard version's id.")

    class Meta:
        model = SegmentBenchmark
        fields = ["period", "segment", "metric", "version"]


@extend_schema_view(
    list=extend_schema(
        summary="List segment benchmarks",
        description="Quartiles (p25, median, p75) of each metric within a segment and period. Partner users "
        "see the benchmarks of their own segment.",
    ),
    retrieve=extend_schema(summary="Get a segment benchmark"),
)
class SegmentBenchmarkViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """Segment benchmarks: aggregates over many partners, never one partner's value."""

    model = SegmentBenchmark
    serializer_class = SegmentBenchmarkSerializer
    partner_access = True
    read_capability = Capability.VIEW_PARTNERS

    filterset_class = SegmentBenchmarkFilter

    def restrict_to_partner(self, queryset, membership):
        # A benchmark names no partner; partner users compare themselves with their own segment.
        own_segment = Partner.objects.filter(pk=membership.partner_id).values("partner_type__key")[:1]
        return queryset.filter(segment=Subquery(own_segment))

    def refine_queryset(self, queryset):
        return queryset.select_related("metric").order_by("-period", "segment", "metric__key", "version_id")
