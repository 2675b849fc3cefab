"""`manage.py create_tenant`: a workspace and its first administrator, ready to sign in."""

from __future__ import annotations

import re
from io import StringIO
from urllib.parse import urlsplit

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from partnerhub.partners.models import PartnerType
from partnerhub.tenancy.context import tenant_scope
from partnerhub.tenancy.models import AuditEvent, Membership, Tenant, User
from partnerhub.tenancy.roles import Role
from tests.factories import MembershipFactory, TenantFactory

NEW_PASSWORD = "a-brand-new-passphrase"


def create_tenant(*args: str) -> str:
    out = StringIO()
    call_command("create_tenant", *args, stdout=out)
    return out.getvalue()


def test_creates_the_workspace_with_an_administrator_and_prints_a_password_link(db):
    output = create_tenant("--name", "Fabrikam", "--slug", "fabrikam", "--admin-email", "Ops@Fabrikam.example")

    tenant = Tenant.objects.get(slug="fabrikam")
    user = User.objects.get(email="ops@fabrikam.example")
    assert not user.has_usable_password()
    with tenant_scope(tenant):
        membership = Membership.objects.get()
        assert (membership.user, membership.role) == (user, Role.ADMIN)
        assert PartnerType.objects.exists()
        assert AuditEvent.objects.filter(verb="membership.created").count() == 1
    assert "/accounts/password/reset/key/" in output


def test_the_printed_link_sets_a_password_that_signs_in(db):
    output = create_tenant("--name", "Fabrikam", "--slug", "fabrikam", "--admin-email", "ops@fabrikam.example")
    link = urlsplit(re.search(r"https?://\S+", output).group(0)).path
    client = Client()

    form_page = client.get(link)
    assert form_page.status_code == 302
    done = client.post(form_page.url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})

    assert done.status_code == 302
    assert client.login(email="ops@fabrikam.example", password=NEW_PASSWORD)
    home = client.get(reverse("home"))
    assert home.status_code == 302
    assert home.url == reverse("partner_list")


def test_a_given_password_is_set_and_signs_in(db):
    output = create_tenant(
        "--name", "Fabrikam", "--slug", "fabrikam", "--admin-email", "ops@fabrikam.example", "--password", NEW_PASSWORD
    )

    assert "reset" not in output
    assert Client().login(email="ops@fabrikam.example", password=NEW_PASSWORD)


def test_a_weak_password_is_refused_and_nothing_is_created(db):
    with pytest.raises(CommandError, match="too short"):
        create_tenant(
            "--name", "Fabrikam", "--slug", "fabrikam", "--admin-email", "ops@fabrikam.example", "--password", "short"
        )

    assert not Tenant.objects.filter(slug="fabrikam").exists()
    assert not User.objects.filter(email="ops@fabrikam.example").exists()


def test_a_taken_slug_is_refused(db):
    TenantFactory(slug="fabrikam")

    with pytest.raises(CommandError, match="already exists"):
        create_tenant("--name", "Fabrikam", "--slug", "fabrikam", "--admin-email", "ops@fabrikam.example")


def test_an_invalid_slug_is_refused_with_the_field_message(db):
    with pytest.raises(CommandError, match="slug"):
        create_tenant("--name", "Fabrikam", "--slug", "not a slug", "--admin-email", "ops@fabrikam.example")

    assert not User.objects.filter(email="ops@fabrikam.example").exists()


def test_an_existing_person_becomes_administrator_and_keeps_their_password(db):
    other = TenantFactory(slug="northwind")
    existing = MembershipFactory(tenant=other, role=Role.ADMIN, user__email="pat@example.test").user
    old_hash = existing.password

    output = create_tenant("--name", "Fabrikam", "--slug", "fabrikam", "--admin-email", "pat@example.test")

    existing.refresh_from_db()
    assert existing.password == old_hash
    assert "reset" not in output
    with tenant_scope(Tenant.objects.get(slug="fabrikam")):
        assert Membership.objects.get().user == existing


def test_a_password_for_an_existing_account_is_refused(db):
    MembershipFactory(tenant=TenantFactory(), role=Role.ADMIN, user__email="pat@example.test")

    with pytest.raises(CommandError, match="already has an account"):
        create_tenant(
            "--name", "Fabrikam", "--slug", "fabrikam", "--admin-email", "pat@example.test", "--password", NEW_PASSWORD
        )
    assert not Tenant.objects.filter(slug="fabrikam").exists()
