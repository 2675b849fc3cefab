"""The tenant scope: fail closed, always reset, nothing left behind after a failed request."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client

from partnerhub.partners.models import Partner
from partnerhub.tenancy.context import TenantNotSet, bind, current_scope, tenant_scope
from partnerhub.tenancy.models import CrossTenantWrite
from tests.tenancy.urls_probe import database_tenant


def test_tenant_owned_queries_raise_outside_a_scope(world):
    with pytest.raises(TenantNotSet):
        Partner.objects.count()
    with pytest.raises(TenantNotSet):
        Partner(name="Orphan").save()


def test_scopes_nest_and_restore_the_outer_tenant(world):
    with tenant_scope(world.a.tenant):
        with tenant_scope(world.b.tenant):
            assert {p.tenant_id for p in Partner.objects.all()} == {world.b.tenant.pk}
        assert {p.tenant_id for p in Partner.objects.all()} == {world.a.tenant.pk}
    assert current_scope().tenant_id is None


def test_scope_is_restored_when_the_body_raises(world):
    with pytest.raises(ZeroDivisionError), tenant_scope(world.a.tenant):
        1 / 0  # noqa: B018
    assert current_scope().tenant_id is None
    if connection.vendor == "postgresql":
        assert database_tenant() in ("", None)


def test_bind_outside_an_entry_point_is_refused():
    with pytest.raises(RuntimeError, match="outside tenant_scope"):
        bind(1)


def test_saving_another_tenants_row_inside_a_scope_is_refused(world):
    with tenant_scope(world.a.tenant):
        foreign = Partner.all_tenants.filter(tenant=world.b.tenant).first()
    with tenant_scope(world.b.tenant):
        foreign = Partner.objects.get(pk=world.b.partners[0].pk)
    with tenant_scope(world.a.tenant), pytest.raises(CrossTenantWrite):
        foreign.save()


@pytest.mark.urls("tests.tenancy.urls_probe")
def test_after_a_request_that_raises_the_next_one_carries_no_leftover_tenant(world):
    client = Client(raise_request_exception=False)
    client.force_login(world.a.users["admin"])
    assert client.get("/probe/explode/").status_code == 500
    # Same thread, same database connection: nothing of tenant a is left.
    assert current_scope().tenant_id is None and current_scope().user_id is None
    if connection.vendor == "postgresql":
        assert database_tenant() in ("", None)
    anonymous = Client().get("/probe/whoami/").json()
    assert anonymous == {"tenant_id": None, "user_id": None, "db_tenant": anonymous["db_tenant"], "visible": []}
    assert anonymous["db_tenant"] in ("", None)
    other = Client()
    other.force_login(world.b.users["executive"])
    seen = other.get("/probe/whoami/").json()
    assert seen["tenant_id"] == world.b.tenant.pk
    if connection.vendor == "postgresql":
        assert seen["db_tenant"] == str(world.b.tenant.pk)
        assert seen["visible"] == [world.b.tenant.pk]


@pytest.mark.urls("tests.tenancy.urls_probe")
def test_an_api_key_request_binds_the_keys_tenant_and_releases_it(world):
    key_client = Client(HTTP_AUTHORIZATION=f"Api-Key {world.b.read_key[1]}")
    assert key_client.get("/api/v1/partners/").status_code == 200
    assert current_scope().tenant_id is None
    if connection.vendor == "postgresql":
        assert database_tenant() in ("", None)
