"""Fail-closed managers for tenant-owned models."""

from __future__ import annotations

from django.db import models

from partnerhub.tenancy.context import current_tenant_id


class TenantQuerySet(models.QuerySet):
    """Base queryset for tenant-owned models; domain query methods go on subclasses."""


class TenantScopedManager(models.Manager.from_queryset(TenantQuerySet)):
    """Returns the active tenant's rows only, and raises ``TenantNotSet`` when no tenant is active.

    It is every tenant-owned model's default manager, so the admin, forms, serializers and
    reverse relations all inherit the filter. The cross-tenant escape hatch is the separate,
    loudly named ``all_tenants`` manager.
    """

    use_in_migrations = False

    def get_queryset(self):
        return super().get_queryset().filter(tenant_id=current_tenant_id())

    def none(self):
        # An empty queryset reveals nothing, so it needs no tenant (schema generation asks for one).
        return super().get_queryset().none()


class UnscopedManager(models.Manager):
    """Spans every tenant. Only for code that truly works across tenants; say why at each use."""
