"""Adding and editing partners in the browser: parsing, the services' errors on the right fields, audit."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.urls import reverse

from partnerhub.partners.forms import PartnerForm
from partnerhub.partners.models import Partner, PartnerType
from partnerhub.tenancy.context import tenant_scope
from partnerhub.tenancy.models import AuditEvent, Membership

CREATE = reverse("partner_create")


def reseller(tenant) -> PartnerType:
    with tenant_scope(tenant):
        return PartnerType.objects.get(key="reseller")


def payload(world, **overrides) -> dict:
    data = {
        "name": "Alpine Systems",
        "partner_type": reseller(world.a.tenant).pk,
        "lifecycle_stage": "growing",
        "status": "active",
        "region": "EMEA — DACH",
        "manager": world.a.users["partner_manager"].pk,
        "size": "12",
        "joined_on": "2024-03-01",
        "website": "https://alpine.example",
        "product_lines": "Cloud, Analytics, cloud,, ",
        "hubspot_company_id": "18340021",
        "salesforce_account_id": "0015g00000AbCdEAAZ",
        "external_ids": "erp=P-0042\n\n netsuite = 88122 ",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def partners_named(tenant, name: str):
    with tenant_scope(tenant):
        return list(Partner.objects.filter(name=name))


@pytest.fixture
def admin_client(client, world):
    client.force_login(world.a.users["admin"])
    return client


# --- Adding ---------------------------------------------------------------------------------------


def test_adding_a_partner_saves_it_audits_it_and_opens_its_page(admin_client, world):
    response = admin_client.post(CREATE, payload(world), follow=True)

    (partner,) = partners_named(world.a.tenant, "Alpine Systems")
    assert response.redirect_chain == [(reverse("partner_detail", args=[partner.pk]), 302)]
    assert "Alpine Systems added." in response.content.decode()
    assert partner.product_lines == ["Analytics", "Cloud"]
    assert partner.external_ids == {"erp": "P-0042", "netsuite": "88122"}
    assert partner.size == Decimal("12")
    assert partner.joined_on == datetime.date(2024, 3, 1)
    assert partner.manager == world.a.users["partner_manager"]
    assert partner.tenant_id == world.a.tenant.pk
    with tenant_scope(world.a.tenant):
        event = AuditEvent.objects.get(verb="partner.created", target_id=str(partner.pk))
    assert event.actor == world.a.users["admin"]
    assert event.changes["name"] == [None, "Alpine Systems"]


def test_partner_managers_may_add_partners_too(client, world):
    client.force_login(world.a.users["partner_manager"])

    response = client.post(CREATE, payload(world, name="Managed Co"))

    assert response.status_code == 302
    assert partners_named(world.a.tenant, "Managed Co")


def test_only_a_name_type_stage_and_status_are_required(admin_client, world):
    minimal = {
        "name": "Bare",
        "partner_type": reseller(world.a.tenant).pk,
        "lifecycle_stage": "onboarding",
        "status": "active",
    }

    assert admin_client.post(CREATE, minimal).status_code == 302
    (partner,) = partners_named(world.a.tenant, "Bare")
    assert (partner.size, partner.manager, partner.product_lines, partner.external_ids) == (None, None, [], {})


def test_a_website_without_a_scheme_is_taken_as_https(admin_client, world):
    admin_client.post(CREATE, payload(world, website="alpine.example"))

    assert partners_named(world.a.tenant, "Alpine Systems")[0].website == "https://alpine.example"


@pytest.mark.parametrize("role", ["executive", "partner_admin", "partner_member"])
def test_people_who_may_not_edit_cannot_add_a_partner(client, world, role):
    client.force_login(world.a.users[role])

    response = client.post(CREATE, payload(world))

    assert response.status_code == 403
    assert not partners_named(world.a.tenant, "Alpine Systems")


# --- Errors on the right field --------------------------------------------------------------------


def field_errors(response) -> dict[str, list[str]]:
    assert response.status_code == 200
    return {field: list(errors) for field, errors in response.context["form"].errors.items()}


def test_a_duplicate_name_is_reported_on_the_name_field_whatever_its_case(admin_client, world):
    errors = field_errors(admin_client.post(CREATE, payload(world, name="ACME partner 1")))

    assert errors == {"name": ["A partner with this name already exists."]}


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("hubspot_company_id", "Another partner already has this HubSpot company id."),
        ("salesforce_account_id", "Another partner already has this Salesforce account id."),
    ],
)
def test_a_crm_id_another_partner_has_is_reported_on_its_field(admin_client, world, field, message):
    with tenant_scope(world.a.tenant):
        Partner.objects.filter(pk=world.a.partners[0].pk).update(**{field: payload(world)[field]})

    errors = field_errors(admin_client.post(CREATE, payload(world)))

    assert errors == {field: [message]}
    assert not partners_named(world.a.tenant, "Alpine Systems")


def test_the_same_crm_id_in_another_tenant_is_no_conflict(admin_client, world):
    with tenant_scope(world.b.tenant):
        Partner.objects.filter(pk=world.b.partners[0].pk).update(hubspot_company_id="18340021")

    assert admin_client.post(CREATE, payload(world)).status_code == 302


def test_a_manager_the_service_refuses_is_reported_on_the_manager_field(world):
    """The form offers internal members only; if one stops being internal before saving, the
    service's refusal lands on the manager field rather than failing the request."""
    manager_membership = world.a.memberships["partner_manager"]
    with tenant_scope(world.a.tenant, user=world.a.users["admin"]):
        form = PartnerForm(payload(world))
        assert form.is_valid(), form.errors
        Membership.objects.filter(pk=manager_membership.pk).update(role="partner_member", partner=world.a.partners[0])

        assert form.save(by=world.a.users["admin"]) is None

        assert form.errors == {"manager": ["The partner manager must be an internal member of this workspace."]}
        assert not Partner.objects.filter(name="Alpine Systems").exists()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 10_000}, "name"),
        ({"size": "-1"}, "size"),
        ({"size": "1e20"}, "size"),
        ({"size": "99999999999999"}, "size"),
        ({"size": "12.345"}, "size"),
        ({"size": "NaN"}, "size"),
        ({"size": "Infinity"}, "size"),
        ({"size": "twelve"}, "size"),
        ({"joined_on": "2024-13-45"}, "joined_on"),
        ({"joined_on": "yesterday"}, "joined_on"),
        ({"joined_on": "99999-01-01"}, "joined_on"),
        ({"website": "javascript:alert(1)"}, "website"),
        ({"website": "not a url"}, "website"),
        ({"lifecycle_stage": "legendary"}, "lifecycle_stage"),
        ({"status": ""}, "status"),
        ({"partner_type": "abc"}, "partner_type"),
        ({"partner_type": "999999"}, "partner_type"),
        ({"manager": "abc"}, "manager"),
        ({"manager": "999999"}, "manager"),
        ({"salesforce_account_id": "0015g00000AbCdEAAZ-too-long"}, "salesforce_account_id"),
        ({"hubspot_company_id": "9" * 65}, "hubspot_company_id"),
        ({"region": "r" * 101}, "region"),
        ({"product_lines": "p" * 101}, "product_lines"),
        ({"product_lines": ", ".join(f"Line {n}" for n in range(60))}, "product_lines"),
        ({"product_lines": "x" * 5000}, "product_lines"),
        ({"external_ids": "erp P-0042"}, "external_ids"),
        ({"external_ids": "=P-0042"}, "external_ids"),
        ({"external_ids": "erp="}, "external_ids"),
        ({"external_ids": "erp=1\nERP=2"}, "external_ids"),
        ({"external_ids": "erp=" + "9" * 300}, "external_ids"),
        ({"external_ids": "x" * 20_000}, "external_ids"),
    ],
)
def test_bad_input_is_a_form_error_on_its_field_and_saves_nothing(admin_client, world, overrides, field):
    errors = field_errors(admin_client.post(CREATE, payload(world, **overrides)))

    assert list(errors) == [field]
    with tenant_scope(world.a.tenant):
        assert Partner.objects.count() == 2


def test_another_tenants_partner_type_or_manager_is_an_invalid_choice(admin_client, world):
    foreign_type = reseller(world.b.tenant)
    foreign_manager = world.b.users["partner_manager"]

    errors = field_errors(
        admin_client.post(CREATE, payload(world, partner_type=foreign_type.pk, manager=foreign_manager.pk))
    )

    assert set(errors) == {"partner_type", "manager"}
    assert "Select a valid choice" in errors["manager"][0]


def test_a_partner_user_cannot_be_made_a_partner_manager(admin_client, world):
    errors = field_errors(admin_client.post(CREATE, payload(world, manager=world.a.users["partner_admin"].pk)))

    assert list(errors) == ["manager"]


def test_malformed_external_id_lines_are_each_named_by_line_number(admin_client, world):
    errors = field_errors(admin_client.post(CREATE, payload(world, external_ids="erp=1\njust text\n\nERP=2")))

    assert errors["external_ids"] == [
        "Line 2: “just text” is not in the form system=id.",
        "Line 4: “ERP” is given twice; keep one id per system.",
    ]


def test_the_form_shows_a_summary_above_the_fields(admin_client, world):
    body = admin_client.post(CREATE, payload(world, name="", size="-3")).content.decode()

    assert "Nothing was saved. Please correct the 2 fields marked below." in body
    assert 'class="field has-error' in body


def test_a_script_in_a_name_is_shown_as_text(admin_client, world):
    admin_client.post(CREATE, payload(world, name="<script>alert(1)</script>"))
    (partner,) = partners_named(world.a.tenant, "<script>alert(1)</script>")

    body = admin_client.get(reverse("partner_detail", args=[partner.pk])).content.decode()

    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body


# --- Editing --------------------------------------------------------------------------------------


def edit_url(partner) -> str:
    return reverse("partner_edit", args=[partner.pk])


def test_the_edit_form_starts_from_the_partners_current_details(admin_client, world):
    partner = world.a.partners[0]
    with tenant_scope(world.a.tenant):
        Partner.objects.filter(pk=partner.pk).update(
            product_lines=["Analytics", "Cloud"], external_ids={"erp": "P-1"}, size=Decimal("14.00")
        )

    form = admin_client.get(edit_url(partner)).context["form"]

    assert form["name"].value() == "Acme Partner 1"
    assert form["product_lines"].value() == "Analytics, Cloud"
    assert "erp=P-1" in str(form["external_ids"])
    assert form["size"].value() == "14"
    assert form["partner_type"].value() == partner.partner_type_id


def test_editing_records_exactly_which_fields_changed(admin_client, world):
    partner = world.a.partners[0]
    with tenant_scope(world.a.tenant):
        before = Partner.objects.get(pk=partner.pk)
    data = payload(
        world,
        name=before.name,
        region=before.region,
        size="10",
        lifecycle_stage="at_risk",
        manager="",
        joined_on="",
        website="",
        product_lines="",
        hubspot_company_id="",
        salesforce_account_id="",
        external_ids="",
    )

    response = admin_client.post(edit_url(partner), data)

    assert response.status_code == 302
    assert response["Location"] == reverse("partner_detail", args=[partner.pk])
    with tenant_scope(world.a.tenant):
        event = AuditEvent.objects.get(verb="partner.updated", target_id=str(partner.pk))
    assert event.changes == {"lifecycle_stage": ["growing", "at_risk"]}
    assert event.actor == world.a.users["admin"]


def test_saving_an_unchanged_partner_writes_no_audit_event(admin_client, world):
    partner = world.a.partners[0]
    form = admin_client.get(edit_url(partner)).context["form"]
    data = {name: ("" if value is None else value) for name, value in form.initial.items()}
    data["product_lines"] = ""
    data["external_ids"] = ""

    assert admin_client.post(edit_url(partner), data).status_code == 302
    with tenant_scope(world.a.tenant):
        assert not AuditEvent.objects.filter(verb="partner.updated").exists()


def test_a_refused_edit_changes_nothing_and_keeps_the_saved_name_in_the_heading(admin_client, world):
    partner = world.a.partners[1]

    response = admin_client.post(edit_url(partner), payload(world, name="acme PARTNER 1"))

    assert field_errors(response) == {"name": ["A partner with this name already exists."]}
    assert "Edit Acme Partner 2" in response.content.decode()
    with tenant_scope(world.a.tenant):
        assert Partner.objects.get(pk=partner.pk).name == "Acme Partner 2"


def test_a_manager_who_left_the_internal_team_is_flagged_on_the_edit_form(admin_client, world):
    partner = world.a.partners[0]
    leaver = world.a.users["executive"]
    with tenant_scope(world.a.tenant):
        Partner.objects.filter(pk=partner.pk).update(manager=leaver)
        Membership.objects.filter(user=leaver).delete()

    body = admin_client.get(edit_url(partner)).content.decode()

    assert "is no longer an internal member of this workspace" in body


def test_executives_cannot_edit_a_partner(client, world):
    partner = world.a.partners[0]
    client.force_login(world.a.users["executive"])

    assert client.post(edit_url(partner), payload(world, name="Renamed")).status_code == 403
    assert not partners_named(world.a.tenant, "Renamed")


def test_renaming_a_partner_to_another_tenants_partner_name_is_allowed(admin_client, world):
    partner = world.a.partners[0]

    # Names are unique within a tenant only.
    response = admin_client.post(edit_url(partner), payload(world, name="Globex Partner 1"))

    assert response.status_code == 302
