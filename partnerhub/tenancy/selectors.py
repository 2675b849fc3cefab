"""Reads about tenants, memberships and principals that several callers share."""

from __future__ import annotations

from partnerhub.tenancy.models import Membership, User


def memberships_of(user: User):
    """Every membership of a person across tenants, for the workspace switcher.

    Spans tenants on purpose: this is how a principal finds its tenants. On PostgreSQL the
    membership policy shows a session its own user's rows (``visible_to_own_user``).
    """
    return (
        Membership.all_tenants.filter(user=user, tenant__is_active=True)
        .select_related("tenant", "partner")
        .order_by("tenant__name")
    )


def active_membership_for(user: User, *, preferred_tenant_id: int | None) -> Membership | None:
    """The membership a request runs under: the one chosen in the session, else the first."""
    memberships = list(memberships_of(user))
    for membership in memberships:
        if membership.tenant_id == preferred_tenant_id:
            return membership
    return memberships[0] if memberships else None
