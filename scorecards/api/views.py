"""The scorecard API: the metric catalogue, scorecards and their governed versions, items, observations.

Views are thin: a serializer shapes the input, a service decides and writes, and the serializer
shapes the answer. Every viewset derives from ``TenantViewSet``, so each request sees its own
tenant only and another tenant's id answers 404.
"""

from __future__ import annotations

from django.db.models import OuterRef, Prefetch, Subquery
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from partnerhub.integrations.idempotency import IDEMPOTENCY_KEY_PARAMETER, idempotent
from partnerhub.partners.models import Partner
from partnerhub.tenancy.api.viewsets import TenantViewSet
from partnerhub.tenancy.models import ApiKey
from partnerhub.tenancy.roles import Capability
from scorecards.api.serializers import (
    ActivateSerializer,
    ApproveSerializer,
    BulkResultSerializer,
    ImportResultSerializer,
    MetricSerializer,
    ObservationBulkEnvelopeSerializer,
    ObservationBulkSerializer,
    ObservationSerializer,
    ObservationUploadSerializer,
    ProposeSerializer,
    PublishedScorecardSerializer,
    ScorecardItemSerializer,
    ScorecardSerializer,
    ScorecardVersionSerializer,
    VersionProblemsSerializer,
    WithdrawSerializer,
)
from scorecards.filters import MetricFilter, ObservationFilter, ScorecardItemFilter, ScorecardVersionFilter
from scorecards.models import (
    Metric,
    MetricObservation,
    ObservationSource,
    Scorecard,
    ScorecardItem,
    ScorecardVersion,
    VersionStatus,
)
from scorecards.published_rules import published_rules
from scorecards.services import governance, metrics, observations


def _published_versions(membership) -> list[int]:
    """Ids of the active versions that score the partner user's partner type: all they may read of the rules."""
    partner_type = Partner.objects.filter(pk=membership.partner_id).values_list("partner_type__key", flat=True).first()
    versions = ScorecardVersion.objects.filter(status=VersionStatus.ACTIVE).values_list("pk", "partner_types")
    return [pk for pk, types in versions if partner_type in (types or [])]


def _published_items(membership):
    """The items partner users read: those of their published versions that apply to their type."""
    partner_type = Partner.objects.filter(pk=membership.partner_id).values_list("partner_type__key", flat=True).first()
    items = ScorecardItem.objects.filter(version_id__in=_published_versions(membership)).values_list("pk", "applies_to")
    return [pk for pk, applies_to in items if not applies_to or partner_type in applies_to]


@extend_schema_view(
    list=extend_schema(summary="List metrics", description="The tenant's metric catalogue."),
    retrieve=extend_schema(summary="Get a metric"),
    create=extend_schema(summary="Add a metric", description="Administrators only."),
    update=extend_schema(summary="Replace a metric's definition"),
    partial_update=extend_schema(summary="Change some of a metric's definition"),
)
class MetricViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    TenantViewSet,
):
    """The metric catalogue. A metric's key never changes, and what it measures is fixed once rules use it."""

    model = Metric
    serializer_class = MetricSerializer
    filterset_class = MetricFilter
    partner_access = True  # partner users read the metrics they are scored on
    read_capability = Capability.VIEW_SCORECARDS
    write_capability = Capability.MANAGE_SCORECARDS

    def refine_queryset(self, queryset):
        return queryset.select_related("numerator", "denominator", "owner").order_by("pillar", "name", "pk")

    def restrict_to_partner(self, queryset, membership):
        items = ScorecardItem.objects.filter(pk__in=_published_items(membership))
        return queryset.filter(pk__in=items.values("metric_id"))

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        metric = metrics.metric_create(by=self.principal, **serializer.validated_data)
        return Response(self.get_serializer(metric).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        metric = self.get_object()
        serializer = self.get_serializer(metric, data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        metric = metrics.metric_update(metric=metric, by=self.principal, **serializer.validated_data)
        return Response(self.get_serializer(metric).data)


@extend_schema_view(
    list=extend_schema(summary="List scorecards"),
    retrieve=extend_schema(summary="Get a scorecard"),
    create=extend_schema(summary="Add a scorecard", description="Its rules are written in versions."),
    update=extend_schema(summary="Rename a scorecard"),
    partial_update=extend_schema(summary="Change a scorecard's name or description"),
)
class ScorecardViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    TenantViewSet,
):
    """Scorecards; the rules of each live in its versions."""

    model = Scorecard
    serializer_class = ScorecardSerializer
    partner_access = True  # partner users read the scorecards that score them
    read_capability = Capability.VIEW_SCORECARDS
    write_capability = Capability.MANAGE_SCORECARDS

    def refine_queryset(self, queryset):
        active = ScorecardVersion.objects.filter(scorecard=OuterRef("pk"), status=VersionStatus.ACTIVE).values("pk")
        return queryset.annotate(active_version_id=Subquery(active[:1])).order_by("name", "pk")

    def restrict_to_partner(self, queryset, membership):
        versions = ScorecardVersion.objects.filter(pk__in=_published_versions(membership))
        return queryset.filter(pk__in=versions.values("scorecard_id"))

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        scorecard = governance.scorecard_create(by=self.principal, **serializer.validated_data)
        return Response(self.get_serializer(scorecard).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        scorecard = self.get_object()
        serializer = self.get_serializer(scorecard, data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        scorecard = governance.scorecard_update(scorecard=scorecard, by=self.principal, **serializer.validated_data)
        return Response(self.get_serializer(self.get_object()).data)


PARTNER_TYPE_PARAMETER = OpenApiParameter(
    "partner_type",
    OpenApiTypes.STR,
    description="The partner type key to show the rules for. Partner users always see their own partner's type.",
)


@extend_schema_view(
    list=extend_schema(summary="List scorecard versions"),
    retrieve=extend_schema(summary="Get a scorecard version with its items"),
    create=extend_schema(
        summary="Start a draft version",
        description="By default a copy of the scorecard's latest version; settings given here apply on top.",
    ),
    update=extend_schema(summary="Replace a draft's settings"),
    partial_update=extend_schema(summary="Change a draft's settings"),
    destroy=extend_schema(summary="Discard a draft"),
)
class ScorecardVersionViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    TenantViewSet,
):
    """Governed versions of the scoring rules: draft -> proposed -> approved -> active -> retired.

    Internal users read every version. Partner users read only the active versions that score
    their partner's type (``published`` puts them together with their history).
    """

    model = ScorecardVersion
    serializer_class = ScorecardVersionSerializer
    filterset_class = ScorecardVersionFilter
    partner_access = True
    read_capability = Capability.VIEW_SCORECARDS
    write_capability = Capability.MANAGE_SCORECARDS

    def refine_queryset(self, queryset):
        return (
            queryset.select_related("scorecard", "created_by", "proposed_by", "approved_by")
            .prefetch_related(
                Prefetch("items", queryset=ScorecardItem.objects.select_related("metric").order_by("position", "pk"))
            )
            .order_by("scorecard__name", "scorecard_id", "-number")
        )

    def restrict_to_partner(self, queryset, membership):
        return queryset.filter(pk__in=_published_versions(membership))

    def _answer(self, version, code=status.HTTP_200_OK):
        return Response(self.get_serializer(self.get_queryset().get(pk=version.pk)).data, status=code)

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        draft = governance.version_create_draft(by=self.principal, **serializer.validated_data)
        return self._answer(draft, status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        version = self.get_object()
        serializer = self.get_serializer(version, data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        fields = {name: value for name, value in serializer.validated_data.items() if name != "copy_latest"}
        governance.version_update(version=version, by=self.principal, **fields)
        return self._answer(version)

    def destroy(self, request, *args, **kwargs):
        governance.version_discard(version=self.get_object(), by=self.principal)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(summary="What stops a version from being proposed", responses=VersionProblemsSerializer)
    @action(detail=True, methods=["get"])
    def problems(self, request, pk=None):
        problems = governance.version_validate(self.get_object())
        return Response(VersionProblemsSerializer({"ready": not problems, "problems": problems}).data)

    @extend_schema(
        summary="Propose a draft for approval",
        description="The draft must pass validation and carry a rationale. Administrators only.",
        request=ProposeSerializer,
        responses=ScorecardVersionSerializer,
    )
    @action(detail=True, methods=["post"])
    def propose(self, request, pk=None):
        version = self.get_object()
        serializer = ProposeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        governance.version_propose(version=version, by=self.principal, **serializer.validated_data)
        return self._answer(version)

    @extend_schema(
        summary="Send a proposed version back to draft",
        description="Withdrawn by its proposer or rejected by another administrator, with a note.",
        request=WithdrawSerializer,
        responses=ScorecardVersionSerializer,
    )
    @action(detail=True, methods=["post"])
    def withdraw(self, request, pk=None):
        version = self.get_object()
        serializer = WithdrawSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        governance.version_withdraw(version=version, by=self.principal, **serializer.validated_data)
        return self._answer(version)

    @extend_schema(
        summary="Approve a proposed version",
        description="By an administrator other than the one who proposed it.",
        request=ApproveSerializer,
        responses=ScorecardVersionSerializer,
    )
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        version = self.get_object()
        serializer = ApproveSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        governance.version_approve(version=version, by=self.principal, **serializer.validated_data)
        return self._answer(version)

    @extend_schema(
        summary="Put an approved version in force from a period",
        description="The version in force until then is retired and keeps scoring the earlier periods.",
        request=ActivateSerializer,
        responses=ScorecardVersionSerializer,
    )
    @action(detail=True, methods=["post"])
    def activate(self, request, pk=None):
        version = self.get_object()
        serializer = ActivateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        governance.version_activate(version=version, by=self.principal, **serializer.validated_data)
        return self._answer(version)

    @extend_schema(
        summary="How you are scored",
        description="The rules in force for a partner type: items, weights, thresholds, rating bands, rationale "
        "and the history of earlier versions.",
        parameters=[PARTNER_TYPE_PARAMETER],
        responses=PublishedScorecardSerializer(many=True),
        filters=False,
    )
    @action(detail=False, methods=["get"], pagination_class=None, filterset_class=None)
    def published(self, request):
        membership = getattr(request, "membership", None)
        if membership is not None and membership.is_partner_user:
            partner_type = membership.partner.partner_type.key
        else:
            partner_type = request.query_params.get("partner_type") or None
        return Response(PublishedScorecardSerializer(published_rules(partner_type=partner_type), many=True).data)


@extend_schema_view(
    list=extend_schema(summary="List the items of scorecard versions"),
    retrieve=extend_schema(summary="Get an item"),
    create=extend_schema(summary="Add a metric to a draft"),
    update=extend_schema(summary="Replace an item of a draft"),
    partial_update=extend_schema(summary="Change an item of a draft"),
    destroy=extend_schema(summary="Remove an item from a draft"),
)
class ScorecardItemViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    TenantViewSet,
):
    """Items of versions: a metric with its weight, normalization and rubric. Only drafts change."""

    model = ScorecardItem
    serializer_class = ScorecardItemSerializer
    filterset_class = ScorecardItemFilter
    partner_access = True  # partner users read the items that score them, in active versions
    read_capability = Capability.VIEW_SCORECARDS
    write_capability = Capability.MANAGE_SCORECARDS

    def refine_queryset(self, queryset):
        return queryset.select_related("metric", "version").order_by("version_id", "position", "pk")

    def restrict_to_partner(self, queryset, membership):
        return queryset.filter(pk__in=_published_items(membership))

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        item = governance.item_add(by=self.principal, **serializer.validated_data)
        return Response(self.get_serializer(item).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        item = self.get_object()
        serializer = self.get_serializer(item, data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        fields = {name: value for name, value in serializer.validated_data.items() if name != "version"}
        item = governance.item_update(item=item, by=self.principal, **fields)
        return Response(self.get_serializer(item).data)

    def destroy(self, request, *args, **kwargs):
        governance.item_remove(item=self.get_object(), by=self.principal)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _source_for(principal) -> str:
    return ObservationSource.API if isinstance(principal, ApiKey) else ObservationSource.MANUAL


@extend_schema_view(
    list=extend_schema(
        summary="List observations",
        description="The values in force by default; `current=false` includes the ones later values superseded.",
    ),
    retrieve=extend_schema(summary="Get an observation"),
    create=extend_schema(
        summary="Record an observation",
        description="A different value supersedes the one in force (which stays in the history); the same value "
        "adds nothing and answers 200 with the observation in force.",
        responses={201: ObservationSerializer, 200: ObservationSerializer},
    ),
)
class ObservationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, TenantViewSet):
    """Metric observations: append-only, so there is no update or delete; a new value supersedes.

    Partner users read their own partner's observations and never write.
    """

    model = MetricObservation
    serializer_class = ObservationSerializer
    filterset_class = ObservationFilter
    partner_access = True
    read_capability = Capability.VIEW_SCORECARDS
    write_capability = Capability.ENTER_OBSERVATIONS

    def refine_queryset(self, queryset):
        return queryset.select_related("partner", "metric", "recorded_by").order_by(
            "-period", "partner_id", "metric_id", "-pk"
        )

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        observation, created = observations.observation_record(
            source=_source_for(self.principal), by=self.principal, **serializer.validated_data
        )
        answer = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(self.get_serializer(self.get_queryset().get(pk=observation.pk)).data, status=answer)

    @extend_schema(
        summary="Record many observations",
        description="Every observation is validated first and gets its own result. With `atomic` (the default) "
        "one invalid observation means none is recorded and the answer is 400; without it the valid ones are "
        "recorded. Repeating a request adds nothing; with the same `Idempotency-Key` it also answers the same.",
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        request=ObservationBulkSerializer,
        responses={200: BulkResultSerializer, 400: BulkResultSerializer},
    )
    @action(detail=False, methods=["post"])
    @idempotent
    def bulk(self, request):
        envelope = ObservationBulkEnvelopeSerializer(data=request.data)
        envelope.is_valid(raise_exception=True)
        result = observations.observations_bulk_record(
            items=envelope.validated_data["observations"],
            by=self.principal,
            atomic=envelope.validated_data["atomic"],
            source=_source_for(self.principal),
        )
        errors: dict[int, dict[str, list[str]]] = {}
        for error in result.errors:
            errors.setdefault(error.position, {}).setdefault(error.field, []).append(error.message)
        body = {
            "written": result.written,
            "created": result.count("created"),
            "unchanged": result.count("unchanged"),
            "invalid": result.count("invalid"),
            "results": [
                {
                    "index": index,
                    "status": state,
                    "id": observation.pk if observation is not None else None,
                    "errors": errors.get(index, {}),
                }
                for index, (state, observation) in enumerate(zip(result.statuses, result.observations, strict=True))
            ],
        }
        refused = result.errors and not result.written and envelope.validated_data["atomic"]
        return Response(
            BulkResultSerializer(body).data, status=status.HTTP_400_BAD_REQUEST if refused else status.HTTP_200_OK
        )

    @extend_schema(
        summary="Upload observations from a CSV file",
        description="All rows or none: any problem is reported with its row (the header is row 1), column and "
        "reason, and nothing is written. `dry_run` checks the file and reports what it would change. "
        "Uploading the same file again adds nothing.",
        request={"multipart/form-data": ObservationUploadSerializer},
        responses={200: ImportResultSerializer, 400: ImportResultSerializer},
    )
    @action(detail=False, methods=["post"], parser_classes=[MultiPartParser, FormParser])
    def upload(self, request):
        serializer = ObservationUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = observations.observations_import_csv(
            file=serializer.validated_data["file"], by=self.principal, dry_run=serializer.validated_data["dry_run"]
        )
        body = {
            "rows": result.rows,
            "created": result.created,
            "unchanged": result.unchanged,
            "periods": result.periods,
            "dry_run": result.dry_run,
            "written": result.written,
            "errors": [{"row": e.position, "column": e.field, "message": e.message} for e in result.errors],
        }
        answer = status.HTTP_400_BAD_REQUEST if result.errors else status.HTTP_200_OK
        return Response(ImportResultSerializer(body).data, status=answer)
