from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.response import Response

from partnerhub.partners.api.serializers import PartnerSerializer
from partnerhub.partners.filters import PartnerFilter
from partnerhub.partners.models import Partner
from partnerhub.partners.services import partner_create, partner_update
from partnerhub.tenancy.api.viewsets import TenantViewSet
from partnerhub.tenancy.roles import Capability


@extend_schema_view(
    list=extend_schema(summary="List partners", description="Filter, search and sort the partner directory."),
    retrieve=extend_schema(summary="Get a partner"),
    create=extend_schema(summary="Add a partner"),
    update=extend_schema(summary="Replace a partner's details"),
    partial_update=extend_schema(summary="Change some of a partner's details"),
)
class PartnerViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    TenantViewSet,
):
    """Partners of the tenant the credentials belong to. Partner users see only their own partner."""

    model = Partner
    serializer_class = PartnerSerializer
    filterset_class = PartnerFilter
    partner_access = True
    read_capability = Capability.VIEW_PARTNERS
    write_capability = Capability.EDIT_PARTNERS

    def refine_queryset(self, queryset):
        return queryset.with_listing_relations()

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        partner = partner_create(by=self.principal, **serializer.validated_data)
        return Response(self.get_serializer(partner).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        partner = self.get_object()
        serializer = self.get_serializer(partner, data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        partner = partner_update(partner=partner, by=self.principal, **serializer.validated_data)
        return Response(self.get_serializer(partner).data)
