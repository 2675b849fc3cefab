"""Reads about partners that pages, the API and services share."""

from __future__ import annotations

from django.db import connection

from partnerhub.partners.models import Partner
from partnerhub.tenancy.context import current_tenant_id
from partnerhub.tenancy.models import AuditEvent, Membership, User
from partnerhub.tenancy.roles import INTERNAL_ROLES


def internal_users():
    """People with an internal role in the active tenant (who can manage partners)."""
    return User.objects.filter(pk__in=Membership.objects.filter(role__in=INTERNAL_ROLES).values("user_id")).order_by(
        "full_name", "email"
    )


def partner_regions() -> list[str]:
    """The distinct regions in use in the active tenant, for filter choices.

    A loose index scan: one probe of the (tenant, region, name) index per distinct region, where
    SELECT DISTINCT would read every partner of the tenant (neither PostgreSQL nor SQLite skip).
    Raw SQL does not pass through the scoped manager, so the tenant is named explicitly, from
    the scope (fail closed); on PostgreSQL row-level security applies as to any query.
    """
    table = connection.ops.quote_name(Partner._meta.db_table)
    # The table name comes from the model, not from input; values are bound parameters.
    sql = f"""
        WITH RECURSIVE regions(region) AS (
            SELECT (SELECT region FROM {table} WHERE tenant_id = %s AND region > '' ORDER BY region LIMIT 1)
            UNION ALL
            SELECT (
                SELECT p.region FROM {table} p
                WHERE p.tenant_id = %s AND p.region > regions.region ORDER BY p.region LIMIT 1
            )
            FROM regions WHERE regions.region IS NOT NULL
        )
        SELECT region FROM regions WHERE region IS NOT NULL
    """  # noqa: S608
    tenant_id = current_tenant_id()
    with connection.cursor() as cursor:
        cursor.execute(sql, [tenant_id, tenant_id])
        return [region for (region,) in cursor.fetchall()]


def partner_recent_changes(partner: Partner, *, limit: int = 10) -> list[AuditEvent]:
    """The latest audit events about one partner, newest first."""
    return list(
        AuditEvent.objects.filter(target_type=Partner._meta.label_lower, target_id=str(partner.pk)).order_by(
            "-created_at", "-id"
        )[:limit]
    )
