"""The support admin is scoped to the active tenant and never bypasses the services' rules."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from partnerhub.partners.models import Partner, PartnerType
from partnerhub.tenancy.context import tenant_scope
from partnerhub.tenancy.models import AuditEvent, Tenant, User
from tests.factories import UserFactory

PARTNERS = reverse("admin:partners_partner_changelist")
PARTNER_ADD = reverse("admin:partners_partner_add")
SUPPORT_PERMISSIONS = [
    "view_partner",
    "add_partner",
    "change_partner",
    "delete_partner",
    "view_partnertype",
    "change_partnertype",
    "view_membership",
    "view_invitation",
    "view_apikey",
    "view_auditevent",
    "add_auditevent",
    "change_auditevent",
    "delete_auditevent",
]


def make_staff(user: User, *, superuser: bool = False) -> User:
    user.is_staff = True
    user.is_superuser = superuser
    user.save()
    user.user_permissions.set(Permission.objects.filter(codename__in=SUPPORT_PERMISSIONS))
    return user


def change_url(obj) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


@pytest.fixture
def support(client, world):
    """A staff account that is a partner manager in tenant a."""
    client.force_login(make_staff(world.a.users["partner_manager"]))
    return client


def admin_payload(world, **overrides) -> dict:
    with tenant_scope(world.a.tenant):
        reseller = PartnerType.objects.get(key="reseller")
    data = {
        "name": "Support Added",
        "partner_type": reseller.pk,
        "lifecycle_stage": "growing",
        "status": "active",
        "manager": "",
        "region": "EMEA",
        "size": "3",
        "product_lines": "Cloud, Analytics",
        "joined_on": "",
        "website": "",
        "hubspot_company_id": "",
        "salesforce_account_id": "",
        "external_ids": "erp=P-9",
        "_save": "Save",
    }
    data.update(overrides)
    return data


# --- Partners -------------------------------------------------------------------------------------


def test_staff_see_only_their_tenants_partners_in_the_changelist(support, world):
    response = support.get(PARTNERS)

    assert response.status_code == 200
    shown = {partner.name for partner in response.context["cl"].result_list}
    assert shown == {"Acme Partner 1", "Acme Partner 2"}
    assert b"Globex Partner" not in response.content


def test_another_tenants_partner_change_page_reveals_nothing(support, world):
    foreign = world.b.partners[0]

    response = support.get(change_url(foreign), follow=True)

    assert response.redirect_chain[-1] == (reverse("admin:index"), 302)
    assert foreign.name.encode() not in response.content


def test_another_tenants_partner_cannot_be_changed_by_posting_to_it(support, world):
    foreign = world.b.partners[0]

    support.post(change_url(foreign), admin_payload(world, name="Taken over"))

    with tenant_scope(world.b.tenant):
        assert Partner.objects.get(pk=foreign.pk).name == foreign.name


def test_searching_the_admin_never_finds_another_tenants_partner(support, world):
    response = support.get(PARTNERS, {"q": "Globex"})

    assert list(response.context["cl"].result_list) == []


def test_adding_a_partner_in_the_admin_uses_the_service_and_the_active_tenant(support, world):
    response = support.post(PARTNER_ADD, admin_payload(world))

    assert response.status_code == 302
    with tenant_scope(world.a.tenant):
        partner = Partner.objects.get(name="Support Added")
        event = AuditEvent.objects.get(verb="partner.created", target_id=str(partner.pk))
    assert partner.tenant_id == world.a.tenant.pk
    assert partner.product_lines == ["Analytics", "Cloud"]
    assert partner.external_ids == {"erp": "P-9"}
    assert event.actor == world.a.users["partner_manager"]


def test_editing_a_partner_in_the_admin_records_what_changed(support, world):
    partner = world.a.partners[0]
    data = admin_payload(
        world, name=partner.name, lifecycle_stage="at_risk", size="10", product_lines="", external_ids=""
    )

    response = support.post(change_url(partner), data)

    assert response.status_code == 302
    with tenant_scope(world.a.tenant):
        event = AuditEvent.objects.get(verb="partner.updated", target_id=str(partner.pk))
    assert event.changes == {"lifecycle_stage": ["growing", "at_risk"]}


def test_a_duplicate_name_in_the_admin_is_a_form_error(support, world):
    response = support.post(PARTNER_ADD, admin_payload(world, name="ACME PARTNER 1"))

    assert response.status_code == 200
    assert "A partner with this name already exists." in response.content.decode()


def test_bad_product_lines_or_ids_in_the_admin_are_form_errors(support, world):
    response = support.post(PARTNER_ADD, admin_payload(world, external_ids="not an id line"))

    assert response.status_code == 200
    assert "is not in the form system=id" in response.content.decode()


def test_the_admins_dropdowns_offer_only_this_tenants_types_and_internal_members(support, world):
    form = support.get(PARTNER_ADD).context["adminform"].form

    # Querysets are lazy; on PostgreSQL row-level security needs the tenant when they run.
    with tenant_scope(world.a.tenant):
        managers = set(form.fields["manager"].queryset)
        types = set(form.fields["partner_type"].queryset)
        assert types == set(PartnerType.objects.all())
    assert managers == {world.a.users[role] for role in ("admin", "partner_manager", "executive")}
    assert {t.tenant_id for t in types} == {world.a.tenant.pk}


def test_another_tenants_manager_is_refused_in_the_admin(support, world):
    response = support.post(PARTNER_ADD, admin_payload(world, manager=world.b.users["partner_manager"].pk))

    assert response.status_code == 200
    assert not Partner.all_tenants.filter(name="Support Added").exists()


def test_partners_cannot_be_deleted_in_the_admin(support, world):
    partner = world.a.partners[0]

    response = support.post(reverse("admin:partners_partner_delete", args=[partner.pk]), {"post": "yes"})

    assert response.status_code == 403
    with tenant_scope(world.a.tenant):
        assert Partner.objects.filter(pk=partner.pk).exists()


def test_partner_type_changes_in_the_admin_are_audited(support, world):
    with tenant_scope(world.a.tenant):
        msp = PartnerType.objects.get(key="msp")

    response = support.post(change_url(msp), {"name": "MSP", "key": "msp", "position": "9", "_save": "Save"})

    assert response.status_code == 302
    with tenant_scope(world.a.tenant):
        event = AuditEvent.objects.get(verb="partnertype.updated")
    assert event.changes == {"name": ["Managed service provider", "MSP"], "position": [3, 9]}


# --- Who gets in ----------------------------------------------------------------------------------


def test_staff_without_a_membership_in_any_tenant_see_no_tenant_data(client, world):
    client.force_login(make_staff(UserFactory()))

    assert client.get(reverse("admin:index")).status_code == 200
    assert client.get(PARTNERS).status_code == 403
    assert client.get(reverse("admin:tenancy_auditevent_changelist")).status_code == 403


def test_a_superuser_without_a_workspace_gets_no_tenant_data_and_no_error(client, world):
    client.force_login(make_staff(UserFactory(), superuser=True))

    assert client.get(PARTNERS).status_code == 403
    assert client.get(change_url(world.a.partners[0])).status_code == 403
    response = client.get(reverse("admin:tenancy_tenant_changelist"))
    assert {tenant.slug for tenant in response.context["cl"].result_list} == {"acme", "globex"}


@pytest.mark.parametrize("role", ["partner_admin", "partner_member"])
def test_partner_users_with_a_staff_flag_still_see_no_tenant_data(client, world, role):
    client.force_login(make_staff(world.a.users[role], superuser=True))

    assert client.get(PARTNERS).status_code == 403
    assert client.get(reverse("admin:tenancy_membership_changelist")).status_code == 403


def test_members_who_are_not_staff_cannot_open_the_admin(client, world):
    client.force_login(world.a.users["admin"])

    response = client.get(PARTNERS)

    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


# --- Read-only tenancy records --------------------------------------------------------------------


def test_the_audit_log_can_be_read_but_never_added_changed_or_deleted(support, world):
    with tenant_scope(world.a.tenant):
        event = AuditEvent.objects.first()
    changelist = support.get(reverse("admin:tenancy_auditevent_changelist"))

    assert changelist.status_code == 200
    assert {e.tenant_id for e in changelist.context["cl"].result_list} == {world.a.tenant.pk}
    assert b'value="delete_selected"' not in changelist.content
    assert support.get(reverse("admin:tenancy_auditevent_add")).status_code == 403
    view = support.get(change_url(event))
    assert view.status_code == 200
    assert b'name="_save"' not in view.content
    assert support.post(change_url(event), {"verb": "forged"}).status_code == 403
    assert support.post(reverse("admin:tenancy_auditevent_delete", args=[event.pk]), {"post": "yes"}).status_code == 403
    with tenant_scope(world.a.tenant):
        assert AuditEvent.objects.get(pk=event.pk).verb == event.verb


def test_api_keys_are_listed_without_their_digest(support, world):
    key, _plaintext = world.a.read_key

    listing = support.get(reverse("admin:tenancy_apikey_changelist"))
    detail = support.get(change_url(key))

    assert listing.status_code == detail.status_code == 200
    assert key.prefix.encode() in listing.content
    for response in (listing, detail):
        assert key.digest.encode() not in response.content
        assert b"digest" not in response.content.lower()
    assert b'name="_save"' not in detail.content


@pytest.mark.parametrize("lookup", ["digest__startswith", "digest"])
def test_the_api_key_list_cannot_be_filtered_by_digest(support, world, lookup):
    key, _plaintext = world.a.read_key

    response = support.get(reverse("admin:tenancy_apikey_changelist"), {lookup: key.digest[:1]})

    assert response.status_code == 400


def test_memberships_and_invitations_are_read_only(support, world):
    membership = world.a.memberships["executive"]

    assert support.get(reverse("admin:tenancy_membership_add")).status_code == 403
    assert support.post(change_url(membership), {"role": "admin"}).status_code == 403
    assert support.get(reverse("admin:tenancy_invitation_add")).status_code == 403
    listing = support.get(reverse("admin:tenancy_membership_changelist"))
    assert {m.tenant_id for m in listing.context["cl"].result_list} == {world.a.tenant.pk}


# --- Tenants and people ---------------------------------------------------------------------------


def test_support_staff_see_their_own_tenant_read_only(support, world):
    listing = support.get(reverse("admin:tenancy_tenant_changelist"))

    assert [tenant.slug for tenant in listing.context["cl"].result_list] == ["acme"]
    assert support.get(change_url(world.b.tenant), follow=True).redirect_chain[-1][0] == reverse("admin:index")
    response = support.post(change_url(world.a.tenant), {"name": "Renamed", "slug": "acme"})
    assert response.status_code == 403


def test_superusers_edit_tenants_and_the_change_is_audited_in_that_tenant(client, world):
    client.force_login(make_staff(world.a.users["admin"], superuser=True))
    tenant = world.b.tenant
    data = {
        "name": "Globex Corporation",
        "slug": tenant.slug,
        "fiscal_year_start_month": "4",
        "size_measure_label": tenant.size_measure_label,
        "suspect_values_count": "on",
        "is_active": "on",
        "_save": "Save",
    }

    response = client.post(change_url(tenant), data)

    assert response.status_code == 302
    assert Tenant.objects.get(pk=tenant.pk).name == "Globex Corporation"
    with tenant_scope(tenant):
        event = AuditEvent.objects.get(verb="tenant.updated")
    assert event.changes == {"fiscal_year_start_month": [1, 4], "name": ["Globex", "Globex Corporation"]}


def test_a_tenant_added_in_the_admin_gets_the_default_partner_types(client, world):
    client.force_login(make_staff(world.a.users["admin"], superuser=True))
    data = {"name": "Initech", "slug": "initech", "fiscal_year_start_month": "1", "size_measure_label": "Reps"}

    response = client.post(reverse("admin:tenancy_tenant_add"), {**data, "is_active": "on", "_save": "Save"})

    assert response.status_code == 302
    tenant = Tenant.objects.get(slug="initech")
    with tenant_scope(tenant):
        assert PartnerType.objects.filter(key="reseller").exists()


def test_tenants_and_people_cannot_be_deleted_in_the_admin(client, world):
    client.force_login(make_staff(world.a.users["admin"], superuser=True))

    assert client.get(reverse("admin:tenancy_tenant_delete", args=[world.b.tenant.pk])).status_code == 403
    assert client.get(reverse("admin:tenancy_user_delete", args=[world.b.users["admin"].pk])).status_code == 403


def test_support_staff_see_only_the_people_of_their_tenant(support, world):
    response = support.get(reverse("admin:tenancy_user_changelist"))

    emails = {user.email for user in response.context["cl"].result_list}
    assert emails == {user.email for user in world.a.users.values()}
    assert support.get(change_url(world.b.users["admin"]), follow=True).redirect_chain[-1][0] == reverse("admin:index")
    assert b"globex" not in response.content.lower()


def test_the_admin_header_names_the_workspace_in_scope(support, world):
    assert "Workspace: <strong>Acme</strong>" in support.get(reverse("admin:index")).content.decode()


def test_email_addresses_and_authenticators_are_for_superusers_only(client, world):
    from allauth.account.models import EmailAddress

    staff = make_staff(world.a.users["partner_manager"])
    staff.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_emailaddress", "change_emailaddress", "view_authenticator"])
    )
    EmailAddress.objects.create(user=world.b.users["admin"], email=world.b.users["admin"].email, verified=True)
    client.force_login(staff)
    assert client.get(reverse("admin:account_emailaddress_changelist")).status_code == 403
    assert client.get(reverse("admin:mfa_authenticator_changelist")).status_code == 403
    index = client.get(reverse("admin:index")).content.decode()
    assert "Email addresses" not in index
    client.force_login(make_staff(world.a.users["admin"], superuser=True))
    listing = client.get(reverse("admin:account_emailaddress_changelist"))
    assert listing.status_code == 200 and world.b.users["admin"].email in listing.content.decode()
