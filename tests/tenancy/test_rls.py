"""PostgreSQL row-level security: the database refuses foreign rows even with the app filter off."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import DatabaseError, connection, transaction

from partnerhub.partners.models import Partner
from partnerhub.tenancy.context import tenant_scope
from partnerhub.tenancy.models import AuditEvent, Membership
from tests.tenancy.test_isolation_inventory import tenant_fk_models

pytestmark = pytest.mark.postgres


def fetch(sql, params=()):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def test_queries_run_as_an_application_role_that_cannot_bypass_rls(db):
    [(current_user,)] = fetch("SELECT current_user")
    assert current_user == settings.DATABASE_APP_ROLE
    [(superuser, bypass)] = fetch("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
    assert superuser is False and bypass is False
    owners = {
        owner
        for (owner,) in fetch(
            "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public' AND tablename = ANY(%s)",
            [[model._meta.db_table for model in tenant_fk_models()]],
        )
    }
    assert current_user not in owners


def test_rls_is_enabled_and_forced_with_a_policy_on_every_tenant_owned_table(db):
    tables = sorted(model._meta.db_table for model in tenant_fk_models())
    rows = fetch(
        """
        SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, count(p.polname)
        FROM pg_class c LEFT JOIN pg_policy p ON p.polrelid = c.oid
        WHERE c.relname = ANY(%s) GROUP BY 1, 2, 3 ORDER BY 1
        """,
        [tables],
    )
    assert [row[0] for row in rows] == tables
    for table, enabled, forced, policies in rows:
        assert enabled and forced and policies >= 1, table


def test_with_the_app_filter_off_only_the_active_tenants_rows_come_back(world):
    a, b = world.a, world.b
    with tenant_scope(a.tenant):
        # all_tenants skips the application filter: only the database policy is left.
        seen = set(Partner.all_tenants.values_list("tenant_id", flat=True))
        assert seen == {a.tenant.pk}
        assert Partner.all_tenants.filter(pk=b.partners[0].pk).count() == 0
        assert {t for (t,) in fetch("SELECT DISTINCT tenant_id FROM partners_partner")} == {a.tenant.pk}
    for model in tenant_fk_models():
        with tenant_scope(b.tenant):
            assert set(model.all_tenants.values_list("tenant_id", flat=True)) <= {b.tenant.pk}, model


def test_without_a_tenant_the_database_returns_no_rows_at_all(world):
    with tenant_scope(None):
        for model in tenant_fk_models():
            if model is Membership:
                continue  # visible to the session's own user only; no user is set here
            assert model.all_tenants.count() == 0, model
        assert Membership.all_tenants.count() == 0


def test_a_session_sees_its_own_users_memberships_in_every_tenant_and_no_one_elses(world):
    person = world.a.users["partner_admin"]
    with tenant_scope(world.b.tenant):
        from tests.factories import MembershipFactory

        MembershipFactory(tenant=world.b.tenant, user=person, role="partner_admin", partner=world.b.partners[0])
    with tenant_scope(None, user=person):
        rows = list(Membership.all_tenants.values_list("tenant_id", "user_id"))
    assert sorted(rows) == sorted([(world.a.tenant.pk, person.pk), (world.b.tenant.pk, person.pk)])


def test_writing_a_row_into_another_tenant_is_refused_by_the_database(world):
    with tenant_scope(world.a.tenant), pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
        fetch(
            "INSERT INTO partners_partner (tenant_id, name, partner_type_id, lifecycle_stage, status, region,"
            " product_lines, hubspot_company_id, salesforce_account_id, external_ids, website, created_at,"
            " updated_at) SELECT %s, 'Intruder', partner_type_id, 'growing', 'active', '', '[]', '', '', '{}',"
            " '', now(), now() FROM partners_partner LIMIT 1",
            [world.b.tenant.pk],
        )
    with tenant_scope(world.a.tenant), transaction.atomic():
        updated = fetch(
            "UPDATE partners_partner SET region = 'hacked' WHERE id = %s RETURNING id", [world.b.partners[0].pk]
        )
        assert updated == []


def test_audit_events_cannot_be_changed_or_deleted_by_the_application_role(world):
    with tenant_scope(world.a.tenant):
        event = AuditEvent.objects.first()
        for statement in (
            "UPDATE tenancy_auditevent SET verb = 'x' WHERE id = %s",
            "DELETE FROM tenancy_auditevent WHERE id = %s",
        ):
            with pytest.raises(DatabaseError, match="permission denied"), transaction.atomic():
                fetch(statement, [event.pk])
