"""The integrations API: deals (read, and pushed in bulk), data sources and their sync runs.

Views are thin: an envelope serializer shapes the input, a service decides and writes, and a
serializer shapes the answer. Every viewset derives from ``TenantViewSet``: each request sees its
own tenant only, another tenant's id answers 404, and partner users see their own partner's deals
and nothing of the sources.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from partnerhub.integrations.api.filters import DataSourceFilter, DealFilter, SyncRunFilter
from partnerhub.integrations.api.serializers import (
    DataSourceSerializer,
    DealBulkEnvelopeSerializer,
    DealBulkResultSerializer,
    DealBulkSerializer,
    DealSerializer,
    PartnerDealSerializer,
    SyncRunSerializer,
)
from partnerhub.integrations.deals import Status, deals_bulk_record
from partnerhub.integrations.idempotency import IDEMPOTENCY_KEY_PARAMETER, idempotency_source_ref, idempotent
from partnerhub.integrations.services import source_sync_now
from partnerhub.integrations.source_models import DataSource, Deal, SyncRun
from partnerhub.tenancy.api.viewsets import TenantViewSet
from partnerhub.tenancy.roles import Capability


@extend_schema_view(
    list=extend_schema(
        summary="List deals",
        description="Deals from every source, newest change first. Partner users see their own partner's deals.",
    ),
    retrieve=extend_schema(summary="Get a deal"),
)
class DealViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """Partner-attributed deals: synced from CRMs, uploaded, or pushed through ``bulk``."""

    model = Deal
    serializer_class = DealSerializer
    filterset_class = DealFilter
    partner_access = True
    read_capability = Capability.VIEW_PARTNERS
    write_capability = Capability.MANAGE_DATA_SOURCES

    def refine_queryset(self, queryset):
        return queryset.select_related("partner", "source").order_by("-modified_at", "-pk")

    def get_serializer_class(self):
        membership = getattr(self.request, "membership", None)
        if membership is not None and membership.is_partner_user:
            return PartnerDealSerializer
        return DealSerializer

    @extend_schema(
        summary="Push many deals",
        description="Each deal is validated and gets its own result. With `atomic` (the default) one invalid deal "
        "means none is recorded and the answer is 400; without it the valid ones are recorded. Deals are upserted by "
        "their external_id in the source: sending the same deals again changes nothing. A partner_ref that matches "
        "no partner is stored unmatched. The changed partners' deal metrics are derived right away. At most 5,000 "
        "deals per request.",
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        request=DealBulkSerializer,
        responses={200: DealBulkResultSerializer, 400: DealBulkResultSerializer},
    )
    @action(detail=False, methods=["post"], filterset_class=None, pagination_class=None)
    @idempotent
    def bulk(self, request):
        envelope = DealBulkEnvelopeSerializer(data=request.data)
        envelope.is_valid(raise_exception=True)
        atomic = envelope.validated_data["atomic"]
        try:
            result = deals_bulk_record(
                items=envelope.validated_data["deals"],
                by=self.principal,
                atomic=atomic,
                source=envelope.validated_data.get("source"),
                source_ref=idempotency_source_ref(request),
            )
        except DjangoValidationError as error:
            if getattr(error, "code", None) == "concurrent_change":
                return Response({"detail": error.messages[0]}, status=status.HTTP_409_CONFLICT)
            raise
        errors: dict[int, dict[str, list[str]]] = {}
        for error in result.errors:
            errors.setdefault(error.index, {}).setdefault(error.field, []).append(error.message)
        body = {
            "written": result.written,
            "source": result.source.pk,
            **{name: result.count(name) for name in ("created", "updated", "unchanged", "unmatched", "deleted")},
            "invalid": result.count(Status.INVALID),
            "observations_written": result.observations_written,
            "results": [
                {
                    "index": index,
                    "status": state,
                    "id": deal.pk if deal is not None else None,
                    "errors": errors.get(index, {}),
                }
                for index, (state, deal) in enumerate(zip(result.statuses, result.deals, strict=True))
            ],
        }
        refused = result.errors and not result.written and atomic
        answer = status.HTTP_400_BAD_REQUEST if refused else status.HTTP_200_OK
        return Response(DealBulkResultSerializer(body).data, status=answer)


@extend_schema_view(
    list=extend_schema(summary="List data sources", description="CRMs, uploads and API pushes; never credentials."),
    retrieve=extend_schema(summary="Get a data source"),
)
class DataSourceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """The tenant's data sources, read-only; credentials are never shown, only which are set.

    Internal principals with the data-health capability read them; partner users see none.
    """

    model = DataSource
    serializer_class = DataSourceSerializer
    filterset_class = DataSourceFilter
    # Partner users are let in only to find nothing (sources belong to no partner): an empty list,
    # and 404 for every id, exactly as for ids that are not theirs elsewhere.
    partner_access = True
    read_capability = Capability.VIEW_DATA_HEALTH
    write_capability = Capability.MANAGE_DATA_SOURCES

    def refine_queryset(self, queryset):
        return queryset.order_by("name", "pk")

    @extend_schema(
        summary="Sync a CRM source now",
        description="Queues a sync run and answers 202 with it; while a run is queued or running, that run is "
        "answered instead. Inactive sources, and file and API-push sources (which are not pulled), answer 400.",
        request=None,
        responses={202: SyncRunSerializer},
    )
    @action(detail=True, methods=["post"], filterset_class=None)
    def sync(self, request, pk=None):
        run, _queued = source_sync_now(source=self.get_object(), by=self.principal)
        return Response(SyncRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


@extend_schema_view(
    list=extend_schema(summary="List sync runs", description="Newest first: what each pull read and wrote."),
    retrieve=extend_schema(summary="Get a sync run"),
)
class SyncRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """Pulls from CRM sources, with their progress, counts and errors."""

    model = SyncRun
    serializer_class = SyncRunSerializer
    filterset_class = SyncRunFilter
    partner_access = True  # as for data sources: partner users find nothing
    read_capability = Capability.VIEW_DATA_HEALTH

    def refine_queryset(self, queryset):
        return queryset.select_related("source", "requested_by").order_by("-queued_at", "-pk")
