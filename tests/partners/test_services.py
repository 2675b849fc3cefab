"""partner_create and partner_update: normalization, validation inside the tenant, and audit."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from partnerhub.partners.models import Partner, PartnerType
from partnerhub.partners.services import partner_create, partner_types_seed_defaults, partner_update
from partnerhub.tenancy.audit import actor_label
from partnerhub.tenancy.context import tenant_scope
from partnerhub.tenancy.models import AuditEvent


@pytest.fixture
def in_a(world):
    with tenant_scope(world.a.tenant, user=world.a.users["admin"]):
        yield world


def reseller() -> PartnerType:
    return PartnerType.objects.get(key="reseller")


def create(world, **fields) -> Partner:
    fields.setdefault("name", "Alpine Systems")
    fields.setdefault("partner_type", reseller())
    return partner_create(by=world.a.users["admin"], **fields)


def messages(error: ValidationError) -> dict[str, list[str]]:
    return error.message_dict


def errors_about(error: ValidationError, field: str) -> list[str]:
    """The messages the service put on ``field``."""
    return error.message_dict.get(field, [])


def test_creating_a_partner_normalizes_its_text_lists_and_ids(in_a):
    partner = create(
        in_a,
        name="  Alpine Systems  ",
        region=" EMEA ",
        product_lines=[" Cloud", "Analytics", "", "Cloud "],
        external_ids={" erp ": " P-1 ", "crm": 42, " ": "dropped"},
    )

    partner.refresh_from_db()
    assert partner.name == "Alpine Systems"
    assert partner.region == "EMEA"
    assert partner.product_lines == ["Analytics", "Cloud"]
    assert partner.external_ids == {"erp": "P-1", "crm": "42"}
    assert partner.tenant_id == in_a.a.tenant.pk


def test_creating_a_partner_writes_an_audit_event_with_every_field(in_a):
    partner = create(in_a, size=Decimal("4.5"))

    event = AuditEvent.objects.get(verb="partner.created")
    assert event.target_id == str(partner.pk)
    assert event.target_type == "partners.partner"
    assert event.actor == in_a.a.users["admin"]
    assert event.changes["name"] == [None, "Alpine Systems"]
    assert event.changes["size"] == [None, "4.5"]


def test_an_api_key_is_recorded_as_the_actor(in_a):
    key, _plaintext = in_a.a.write_key

    partner_create(by=key, name="Via API", partner_type=reseller())

    event = AuditEvent.objects.get(verb="partner.created", target_repr="Via API")
    assert event.actor is None
    assert event.actor_label == actor_label(key)


def test_names_are_unique_per_tenant_whatever_their_case(in_a):
    with pytest.raises(ValidationError) as refused:
        create(in_a, name="ACME PARTNER 1")

    assert errors_about(refused.value, "name") == ["A partner with this name already exists."]
    with tenant_scope(in_a.b.tenant):
        partner_create(by=in_a.b.users["admin"], name="Acme Partner 1", partner_type=reseller())


def test_crm_ids_are_unique_per_tenant_but_blank_ids_never_clash(in_a):
    create(in_a, name="One", hubspot_company_id="123", salesforce_account_id="")
    create(in_a, name="Two", hubspot_company_id="", salesforce_account_id="")

    with pytest.raises(ValidationError) as refused:
        create(in_a, name="Three", hubspot_company_id="123")

    assert errors_about(refused.value, "hubspot_company_id") == ["Another partner already has this HubSpot company id."]


@pytest.mark.parametrize("who", ["partner_admin", "foreign_manager"])
def test_the_manager_must_be_an_internal_member_of_this_tenant(in_a, who):
    manager = in_a.a.users["partner_admin"] if who == "partner_admin" else in_a.b.users["partner_manager"]

    with pytest.raises(ValidationError) as refused:
        create(in_a, manager=manager)

    assert messages(refused.value) == {"manager": ["The partner manager must be an internal member of this workspace."]}
    assert not Partner.objects.filter(name="Alpine Systems").exists()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"product_lines": "Cloud"}, "product_lines"),
        ({"product_lines": [1, 2]}, "product_lines"),
        ({"external_ids": ["erp", "1"]}, "external_ids"),
        ({"external_ids": {"erp": ["nested"]}}, "external_ids"),
        ({"size": Decimal("-1")}, "size"),
        ({"tenant_id": 999}, "tenant_id"),
        ({"created_at": None}, "created_at"),
    ],
)
def test_malformed_or_system_owned_fields_are_refused_by_name(in_a, fields, field):
    with pytest.raises(ValidationError) as refused:
        create(in_a, **fields)

    assert field in messages(refused.value)


def test_updating_records_only_the_fields_that_changed(in_a):
    partner = in_a.a.partners[0]

    partner_update(partner=partner, by=in_a.a.users["admin"], name="Acme Partner 1", lifecycle_stage="mature")

    event = AuditEvent.objects.get(verb="partner.updated")
    assert event.changes == {"lifecycle_stage": ["growing", "mature"]}


def test_an_update_that_changes_nothing_writes_no_event(in_a):
    partner = in_a.a.partners[0]

    partner_update(partner=partner, by=in_a.a.users["admin"], name=" Acme Partner 1 ", region="EMEA")

    assert not AuditEvent.objects.filter(verb="partner.updated").exists()


def test_a_refused_update_leaves_the_stored_partner_unchanged(in_a):
    partner = in_a.a.partners[1]

    with pytest.raises(ValidationError):
        partner_update(partner=partner, by=in_a.a.users["admin"], name="acme partner 1", region="APAC")

    stored = Partner.objects.get(pk=partner.pk)
    assert (stored.name, stored.region) == ("Acme Partner 2", "EMEA")
    assert not AuditEvent.objects.filter(verb="partner.updated").exists()


@pytest.mark.postgres
def test_a_concurrent_duplicate_is_reported_as_a_validation_error(committed_world):
    """Two writers race for one name: the loser waits on the unique index and gets a clear error."""
    import threading
    import time

    from django.db import connection, transaction

    world = committed_world
    admin = world.a.users["admin"]
    first_inserted, release_first = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def first_writer():
        try:
            with tenant_scope(world.a.tenant), transaction.atomic():
                partner_create(by=admin, name="Racer", partner_type=PartnerType.objects.get(key="reseller"))
                first_inserted.set()
                release_first.wait(timeout=20)  # holds the row uncommitted while the second writer runs
        finally:
            connection.close()

    def second_writer():
        try:
            with tenant_scope(world.a.tenant):
                partner_create(by=admin, name="racer", partner_type=PartnerType.objects.get(key="reseller"))
            outcome["result"] = "created"
        except ValidationError as error:
            outcome["result"] = error
        finally:
            connection.close()

    first = threading.Thread(target=first_writer)
    first.start()
    assert first_inserted.wait(timeout=20)
    second = threading.Thread(target=second_writer)
    second.start()
    # The second writer's validation cannot see the uncommitted row; its INSERT then waits on the
    # unique index. Release the first writer once the second is waiting on that lock.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
            if cursor.fetchone()[0]:
                break
        time.sleep(0.05)
    release_first.set()
    first.join(timeout=20)
    second.join(timeout=20)

    error = outcome["result"]
    assert isinstance(error, ValidationError), error
    assert "at the same time" in error.messages[0]
    with tenant_scope(world.a.tenant):
        assert Partner.objects.filter(name__iexact="racer").count() == 1


def test_seeding_default_partner_types_is_safe_to_repeat(in_a):
    before = PartnerType.objects.count()

    partner_types_seed_defaults()

    assert PartnerType.objects.count() == before == 6


def test_product_lines_are_deduplicated_whatever_their_case_keeping_the_first_spelling(in_a):
    partner = create(in_a, product_lines=["cloud", " Analytics", "Cloud", "CLOUD", "analytics", "Edge"])
    assert partner.product_lines == ["Analytics", "cloud", "Edge"]


def test_audit_events_name_related_rows_instead_of_ids(in_a):
    manager = in_a.a.users["partner_manager"]
    partner = create(in_a, manager=manager)
    event = AuditEvent.objects.get(verb="partner.created", target_id=str(partner.pk))
    assert event.changes["manager"] == [None, manager.email]
    assert event.changes["partner_type"] == [None, "Reseller"]


def test_a_refused_update_leaves_the_callers_object_as_stored(in_a):
    partner = Partner.objects.get(pk=in_a.a.partners[1].pk)
    with pytest.raises(ValidationError):
        partner_update(partner=partner, by=in_a.a.users["admin"], name="Acme Partner 1", region="APAC")
    assert (partner.name, partner.region) == ("Acme Partner 2", "EMEA")
