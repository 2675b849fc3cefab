import pytest

from partnerhub.partners.models import Partner
from partnerhub.tenancy.context import TenantNotSet, tenant_scope


def test_world_builds_two_isolated_tenants(world):
    with tenant_scope(world.a.tenant):
        assert set(Partner.objects.values_list("name", flat=True)) == {"Acme Partner 1", "Acme Partner 2"}
    with pytest.raises(TenantNotSet):
        list(Partner.objects.all())
