"""Reads about partners that pages, the API and services share."""

from __future__ import annotations

from partnerhub.partners.models import Partner
from partnerhub.tenancy.models import AuditEvent, Membership, User
from partnerhub.tenancy.roles import INTERNAL_ROLES


def internal_users():
    """People with an internal role in the active tenant (who can manage partners)."""
    return User.objects.filter(pk__in=Membership.objects.filter(role__in=INTERNAL_ROLES).values("user_id")).order_by(
        "full_name", "email"
    )


def partner_regions() -> list[str]:
    """The distinct regions in use, for filter choices."""
    return list(Partner.objects.exclude(region="").order_by("region").values_list("region", flat=True).distinct())


def partner_recent_changes(partner: Partner, *, limit: int = 10) -> list[AuditEvent]:
    """The latest audit events about one partner, newest first."""
    return list(
        AuditEvent.objects.filter(target_type=Partner._meta.label_lower, target_id=str(partner.pk)).order_by(
            "-created_at", "-id"
        )[:limit]
    )
