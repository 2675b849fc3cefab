"""Roles a membership can hold, and what each may do."""

from __future__ import annotations

from enum import StrEnum

from django.db import models


class Role(models.TextChoices):
    ADMIN = "admin", "Administrator"
    PARTNER_MANAGER = "partner_manager", "Partner manager"
    EXECUTIVE = "executive", "Executive"
    PARTNER_ADMIN = "partner_admin", "Partner admin"
    PARTNER_MEMBER = "partner_member", "Partner member"


INTERNAL_ROLES = frozenset({Role.ADMIN, Role.PARTNER_MANAGER, Role.EXECUTIVE})
PARTNER_ROLES = frozenset({Role.PARTNER_ADMIN, Role.PARTNER_MEMBER})


class Capability(StrEnum):
    VIEW_PARTNERS = "view_partners"  # the internal directory and every partner's detail
    EDIT_PARTNERS = "edit_partners"
    VIEW_OWN_PARTNER = "view_own_partner"  # the partner portal
    INVITE_INTERNAL = "invite_internal"
    INVITE_PARTNER_USERS = "invite_partner_users"  # any partner (admins) or one's own (partner admins)
    MANAGE_MEMBERS = "manage_members"
    MANAGE_API_KEYS = "manage_api_keys"
    VIEW_AUDIT = "view_audit"
    CONFIGURE_TENANT = "configure_tenant"
    VIEW_SCORECARDS = "view_scorecards"  # every scorecard version, draft or not, and every observation
    MANAGE_SCORECARDS = "manage_scorecards"  # the metric catalogue, drafts, and the governance steps
    ENTER_OBSERVATIONS = "enter_observations"  # manual entry and uploads of metric values
    MANAGE_DATA_SOURCES = "manage_data_sources"  # CRM connections, credentials, syncs, partner mappings
    VIEW_DATA_HEALTH = "view_data_health"  # suspect values, completeness, stale sources, sync history
    DECIDE_CORRECTIONS = "decide_corrections"  # approve or reject partners' corrections and appeals
    REQUEST_CORRECTIONS = "request_corrections"  # a partner's own: ask to correct a value, appeal a score


ROLE_CAPABILITIES: dict[str, frozenset[Capability]] = {
    Role.ADMIN: frozenset(
        {
            Capability.VIEW_PARTNERS,
            Capability.EDIT_PARTNERS,
            Capability.INVITE_INTERNAL,
            Capability.INVITE_PARTNER_USERS,
            Capability.MANAGE_MEMBERS,
            Capability.MANAGE_API_KEYS,
            Capability.VIEW_AUDIT,
            Capability.CONFIGURE_TENANT,
            Capability.VIEW_SCORECARDS,
            Capability.MANAGE_SCORECARDS,
            Capability.ENTER_OBSERVATIONS,
            Capability.MANAGE_DATA_SOURCES,
            Capability.VIEW_DATA_HEALTH,
            Capability.DECIDE_CORRECTIONS,
        }
    ),
    Role.PARTNER_MANAGER: frozenset(
        {
            Capability.VIEW_PARTNERS,
            Capability.EDIT_PARTNERS,
            Capability.VIEW_SCORECARDS,
            Capability.ENTER_OBSERVATIONS,
            Capability.VIEW_DATA_HEALTH,
            Capability.DECIDE_CORRECTIONS,
        }
    ),
    Role.EXECUTIVE: frozenset({Capability.VIEW_PARTNERS, Capability.VIEW_SCORECARDS, Capability.VIEW_DATA_HEALTH}),
    Role.PARTNER_ADMIN: frozenset(
        {Capability.VIEW_OWN_PARTNER, Capability.INVITE_PARTNER_USERS, Capability.REQUEST_CORRECTIONS}
    ),
    Role.PARTNER_MEMBER: frozenset({Capability.VIEW_OWN_PARTNER, Capability.REQUEST_CORRECTIONS}),
}

# Roles a partner admin may hand out when inviting colleagues of their own partner.
PARTNER_ADMIN_INVITABLE = frozenset({Role.PARTNER_ADMIN, Role.PARTNER_MEMBER})
