"""The demo seed: reproducible, safe to run again, and every demo account can sign in."""

from __future__ import annotations

from io import StringIO

import pytest
from allauth.account.models import EmailAddress
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from partnerhub.partners.models import LifecycleStage, Partner, PartnerStatus, PartnerType
from partnerhub.tenancy.context import tenant_scope
from partnerhub.tenancy.management.commands.seed_demo import (
    DEMO_PASSWORD,
    REGIONS,
    SHARED_PARTNER_NAME,
    WORKSPACES,
    partner_specs,
)
from partnerhub.tenancy.models import ApiKey, AuditEvent, Invitation, Membership, Tenant, User
from partnerhub.tenancy.roles import INTERNAL_ROLES, Role
from partnerhub.tenancy.selectors import memberships_of

TENANT_OWNED = [Partner, PartnerType, Membership, ApiKey, Invitation, AuditEvent]
PEOPLE = sorted({(person.email, person.role) for workspace in WORKSPACES for person in workspace.people})


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def row_counts() -> dict[str, int]:
    """Rows per table, read tenant by tenant (row-level security shows a scope its own rows only)."""
    counts = {"tenants": Tenant.objects.count(), "users": User.objects.count(), "emails": EmailAddress.objects.count()}
    for tenant in Tenant.objects.order_by("slug"):
        with tenant_scope(tenant):
            for model in TENANT_OWNED:
                counts[f"{tenant.slug}.{model._meta.label_lower}"] = model.objects.count()
    return counts


@pytest.fixture
def seeded(db) -> str:
    return seed()


def test_seed_run_twice_creates_nothing_the_second_time(seeded):
    first = row_counts()

    output = seed()

    assert row_counts() == first
    assert "nothing to create" in output
    assert first["tenants"] == 2
    assert first["northwind.partners.partner"] == 80
    assert first["contoso.partners.partner"] == 20


def test_seed_has_no_duplicate_rows(seeded):
    seed()
    emails = list(User.objects.values_list("email", flat=True))
    assert len(emails) == len(set(emails))
    for tenant in Tenant.objects.all():
        with tenant_scope(tenant):
            names = [name.lower() for name in Partner.objects.values_list("name", flat=True)]
            assert len(names) == len(set(names))
            members = list(Membership.objects.values_list("user_id", flat=True))
            assert len(members) == len(set(members))
            assert ApiKey.objects.filter(revoked_at__isnull=True).count() == (1 if tenant.slug == "northwind" else 0)


def test_seed_is_the_same_on_every_run():
    for workspace in WORKSPACES:
        assert partner_specs(workspace) == partner_specs(workspace)


def test_northwind_partners_cover_every_segment(seeded):
    northwind = Tenant.objects.get(slug="northwind")
    assert northwind.name == "Northwind Software"
    assert northwind.fiscal_year_start_month == 2
    with tenant_scope(northwind):
        partners = Partner.objects.all()
        assert set(partners.values_list("partner_type__key", flat=True)) == set(
            PartnerType.objects.values_list("key", flat=True)
        )
        assert set(partners.values_list("lifecycle_stage", flat=True)) == set(LifecycleStage.values)
        assert set(partners.values_list("status", flat=True)) == set(PartnerStatus.values)
        assert set(partners.values_list("region", flat=True)) == set(REGIONS)
        assert partners.filter(manager__isnull=True).count() == 0
        assert partners.values("manager").distinct().count() == 3
        assert partners.exclude(hubspot_company_id="").count() > 60
        assert partners.exclude(salesforce_account_id="").count() > 50
        assert AuditEvent.objects.filter(verb="partner.created").count() == 80


def test_api_key_secret_is_printed_only_by_the_run_that_creates_it(db):
    first = seed()
    second = seed()

    assert first.count("phk_") >= 1
    assert "phk_" not in second
    with tenant_scope(Tenant.objects.get(slug="northwind")):
        key = ApiKey.objects.get()
        assert not key.can_write
        assert key.digest not in first


def test_every_demo_account_signs_in_and_lands_on_its_start_page(seeded):
    # One seed for every account: seeding is the slow part, and each failure names the account.
    for email, role in PEOPLE:
        client = Client()
        assert client.login(email=email, password=DEMO_PASSWORD), email

        response = client.get(reverse("home"))

        expected = "partner_list" if role in INTERNAL_ROLES else "portal_home"
        assert (response.status_code, response.get("Location")) == (302, reverse(expected)), email
        assert client.get(response["Location"]).status_code == 200, email


def test_the_reseller_admin_belongs_to_both_workspaces(seeded):
    user = User.objects.get(email="admin@alpine.demo")
    with tenant_scope(None, user=user):
        memberships = list(memberships_of(user))
    assert {m.tenant.slug for m in memberships} == {"northwind", "contoso"}
    assert {m.role for m in memberships} == {Role.PARTNER_ADMIN}
    for membership in memberships:
        with tenant_scope(membership.tenant):
            assert Partner.objects.get(pk=membership.partner_id).name == SHARED_PARTNER_NAME
