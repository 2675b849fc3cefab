"""Structural guarantees: nothing tenant-owned escapes the scoped manager or the base viewset."""

from __future__ import annotations

from django.apps import apps
from django.urls import get_resolver

from partnerhub.api import router
from partnerhub.tenancy.api.viewsets import TenantViewSet
from partnerhub.tenancy.managers import TenantScopedManager
from partnerhub.tenancy.models import Tenant, TenantOwnedModel


def tenant_fk_models():
    return [
        model
        for model in apps.get_models()
        if any(
            field.is_relation and field.many_to_one and field.related_model is Tenant
            for field in model._meta.get_fields()
        )
    ]


def test_every_model_that_points_at_a_tenant_is_tenant_owned():
    offenders = [model._meta.label for model in tenant_fk_models() if not issubclass(model, TenantOwnedModel)]
    assert offenders == []
    assert len(tenant_fk_models()) >= 6


def test_every_tenant_owned_model_defaults_to_the_scoped_manager():
    for model in tenant_fk_models():
        assert isinstance(model._default_manager, TenantScopedManager), model._meta.label
        assert isinstance(model.objects, TenantScopedManager), model._meta.label
        # Related-object access and deletion use the base manager; RLS guards those on PostgreSQL.
        assert model._meta.default_manager_name in (None, "objects"), model._meta.label


def test_every_api_viewset_derives_from_the_tenant_base():
    assert router.registry, "the API router is empty"
    for prefix, viewset, _basename in router.registry:
        assert issubclass(viewset, TenantViewSet), prefix


def test_every_api_route_is_served_by_a_tenant_viewset_or_the_schema():
    resolver = get_resolver()
    allowed_non_tenant = {"APIRootView", "SpectacularAPIView", "SpectacularSwaggerView"}
    for pattern in resolver.url_patterns:
        if str(pattern.pattern).startswith("api/"):
            for sub in getattr(pattern, "url_patterns", [pattern]):
                view = getattr(sub.callback, "cls", None)
                if view is None:
                    continue
                assert issubclass(view, TenantViewSet) or view.__name__ in allowed_non_tenant, sub


def test_a_viewset_that_overrides_get_queryset_is_refused():
    import pytest

    with pytest.raises(TypeError, match="get_queryset"):

        class Sneaky(TenantViewSet):
            def get_queryset(self):  # pragma: no cover - refused at class creation
                return None

    with pytest.raises(TypeError, match="queryset"):

        class AlsoSneaky(TenantViewSet):
            queryset = object()
