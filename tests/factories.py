"""factory_boy factories. Tenant-owned rows are created inside their tenant's scope."""

from __future__ import annotations

import factory

from partnerhub.partners.models import Partner, PartnerType
from partnerhub.tenancy.context import current_scope, tenant_scope
from partnerhub.tenancy.models import Membership, Tenant, User
from partnerhub.tenancy.services import tenant_create


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant

    name = factory.Sequence(lambda n: f"Vendor {n}")
    slug = factory.Sequence(lambda n: f"vendor-{n}")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return tenant_create(**kwargs)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("email",)

    email = factory.Sequence(lambda n: f"person{n}@example.test")
    full_name = factory.Faker("name")
    password = factory.django.Password("correct-horse-battery-staple")


class TenantOwnedFactory(factory.django.DjangoModelFactory):
    """Creates the row inside its tenant's scope (or the active one when no tenant is given)."""

    class Meta:
        abstract = True

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        tenant = kwargs.pop("tenant", None)
        tenant_id = tenant.pk if tenant is not None else current_scope().tenant_id
        with tenant_scope(tenant_id):
            return super()._create(model_class, *args, **kwargs)


class PartnerFactory(TenantOwnedFactory):
    class Meta:
        model = Partner

    name = factory.Sequence(lambda n: f"Partner {n:05d}")
    lifecycle_stage = "growing"
    region = "EMEA"
    size = 10

    @factory.lazy_attribute
    def partner_type(self):
        tenant = getattr(self, "tenant", None)
        with tenant_scope(tenant.pk if tenant is not None else current_scope().tenant_id):
            return PartnerType.objects.get(key="reseller")


class MembershipFactory(TenantOwnedFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    role = "partner_manager"
    partner = None
