"""The partner portal home: a partner user's own company, and nobody else's."""

from __future__ import annotations

import pytest
from django.urls import reverse

from partnerhub.partners.models import Partner
from partnerhub.tenancy.context import tenant_scope

PORTAL = reverse("portal_home")


@pytest.fixture
def own_partner(world) -> Partner:
    partner = world.a.partners[0]
    with tenant_scope(world.a.tenant):
        Partner.objects.filter(pk=partner.pk).update(
            manager=world.a.users["partner_manager"],
            region="EMEA — DACH",
            product_lines=["Analytics", "Cloud"],
            hubspot_company_id="18340021",
            external_ids={"erp": "INTERNAL-ONLY"},
        )
        return Partner.objects.get(pk=partner.pk)


@pytest.mark.parametrize("role", ["partner_admin", "partner_member"])
def test_partner_users_see_their_own_company_and_their_contact(client, world, own_partner, role):
    client.force_login(world.a.users[role])

    response = client.get(PORTAL)

    body = response.content.decode()
    assert response.status_code == 200
    assert response.context["partner"] == own_partner
    manager = world.a.users["partner_manager"]
    for text in ["Acme Partner 1", "Reseller", "Growing", "EMEA — DACH", "Analytics", "Cloud", manager.get_full_name()]:
        assert text in body, text
    assert f'href="mailto:{manager.email}"' in body


def test_the_portal_shows_what_each_coming_section_will_hold(client, world, own_partner):
    client.force_login(world.a.users["partner_member"])

    body = client.get(PORTAL).content.decode()

    for title in [
        "Your scorecard",
        "How you are scored",
        "Your action items",
        "Your reviews",
        "Your data and corrections",
    ]:
        assert title in body, title
    for name in ("portal_scorecard", "portal_rules", "portal_data", "correction_portal_requests"):
        assert reverse(name) in body, name


def test_the_portal_never_shows_another_partners_data_or_internal_fields(client, world, own_partner):
    client.force_login(world.a.users["partner_admin"])

    body = client.get(PORTAL).content.decode()

    assert "Acme Partner 2" not in body
    assert "Globex" not in body
    assert "INTERNAL-ONLY" not in body
    assert "18340021" not in body


def test_each_partners_users_see_their_own_partner(client, world):
    client.force_login(world.a.users["other_partner_admin"])

    response = client.get(PORTAL)

    assert response.context["partner"] == world.a.partners[1]
    assert "Acme Partner 1" not in response.content.decode()


def test_partner_users_of_another_tenant_see_their_own_tenants_partner(client, world):
    client.force_login(world.b.users["partner_member"])

    response = client.get(PORTAL)

    assert response.context["partner"] == world.b.partners[0]
    assert "Acme" not in response.content.decode()


def test_a_partner_without_a_manager_is_told_who_to_ask(client, world):
    client.force_login(world.a.users["partner_member"])

    body = client.get(PORTAL).content.decode()

    assert "has not assigned one yet" in body
    assert "mailto:" not in body


@pytest.mark.parametrize("role", ["admin", "partner_manager", "executive"])
def test_internal_people_are_sent_to_the_directory(client, world, role):
    client.force_login(world.a.users[role])

    response = client.get(PORTAL)

    assert response.status_code == 302
    assert response["Location"] == reverse("partner_list")


@pytest.mark.parametrize("role", ["partner_admin", "partner_member"])
def test_partner_users_are_refused_the_internal_directory(client, world, role):
    client.force_login(world.a.users[role])

    response = client.get(reverse("partner_list"))

    assert response.status_code == 403
    assert b"Acme Partner 2" not in response.content


def test_the_portal_highlights_the_partner_in_the_sidebar(client, world):
    client.force_login(world.a.users["partner_admin"])

    body = client.get(PORTAL).content.decode()

    assert f'href="{PORTAL}" class="active"' in body
