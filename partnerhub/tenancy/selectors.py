"""Reads about tenants, memberships and principals that several callers share."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.db.models import F, Q

from partnerhub.tenancy.models import ApiKey, AuditEvent, Invitation, Membership, User
from partnerhub.tenancy.roles import PARTNER_ADMIN_INVITABLE, Capability


def memberships_of(user: User):
    """Every membership of a person across tenants, for the workspace switcher.

    Spans tenants on purpose: this is how a principal finds its tenants. On PostgreSQL the
    membership policy shows a session its own user's rows (``visible_to_own_user``).
    """
    # Not select_related("partner"): this runs before any tenant is bound, when row-level security
    # hides every partner row, so the join would come back empty and cache ``partner = None`` on a
    # partner user's membership. Loaded on first use instead, once the request's tenant is bound.
    # Spans tenants: a person's workspaces are listed before a tenant is chosen.
    return (
        Membership.all_tenants.filter(user=user, tenant__is_active=True)
        .select_related("tenant")
        .order_by("tenant__name")
    )


def acting_membership(by: Any) -> Membership | None:
    """The acting person's membership of the active tenant, with its partner; None for anyone else.

    None for an API key, an inactive person, or a person who is not a member of the workspace.
    """
    if not isinstance(by, User) or not by.is_active:
        return None
    return Membership.objects.filter(user=by).select_related("partner").first()


def active_membership_for(user: User, *, preferred_tenant_id: int | None) -> Membership | None:
    """The membership a request runs under: the one chosen in the session, else the first."""
    memberships = list(memberships_of(user))
    for membership in memberships:
        if membership.tenant_id == preferred_tenant_id:
            return membership
    return memberships[0] if memberships else None


# --- People ---------------------------------------------------------------------------------------


def may_manage_people(membership: Membership | None) -> bool:
    """Administrators manage everyone; partner admins manage the colleagues of their own partner."""
    if membership is None:
        return False
    return membership.can(Capability.MANAGE_MEMBERS) or (
        membership.is_partner_user and membership.can(Capability.INVITE_PARTNER_USERS)
    )


def members_visible_to(actor: Membership, *, search: str = "", role: str = ""):
    """The memberships the People page lists for ``actor``: all of them, or their own partner's."""
    members = Membership.objects.select_related("user", "partner").order_by("user__email", "pk")
    if not actor.can(Capability.MANAGE_MEMBERS):
        members = members.filter(partner_id=actor.partner_id, role__in=PARTNER_ADMIN_INVITABLE)
    search = search.strip()
    if search:
        members = members.filter(Q(user__email__icontains=search) | Q(user__full_name__icontains=search))
    if role:
        members = members.filter(role=role)
    return members


def invitations_visible_to(actor: Membership):
    """Every invitation ``actor`` may handle: all of them, or those for their own partner."""
    invitations = Invitation.objects.select_related("partner", "invited_by").order_by("-created_at", "-pk")
    if not actor.can(Capability.MANAGE_MEMBERS):
        invitations = invitations.filter(partner_id=actor.partner_id, role__in=PARTNER_ADMIN_INVITABLE)
    return invitations


def open_invitations_visible_to(actor: Membership):
    """Invitations not yet accepted or revoked (pending or expired) that ``actor`` may handle."""
    return invitations_visible_to(actor).filter(accepted_at__isnull=True, revoked_at__isnull=True)


# --- API keys -------------------------------------------------------------------------------------


def api_keys_for_listing():
    """Active keys first, newest first; revoked ones stay listed for the record."""
    return ApiKey.objects.select_related("created_by").order_by(
        F("revoked_at").asc(nulls_first=True), "-created_at", "-pk"
    )


# --- Audit log ------------------------------------------------------------------------------------


_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_MICROSECOND = datetime.timedelta(microseconds=1)


@dataclass(frozen=True)
class AuditCursor:
    """A position in the newest-first audit log: the (created_at, id) of a row."""

    created_at: datetime.datetime
    pk: int

    def encode(self) -> str:
        return f"{(self.created_at - _EPOCH) // _MICROSECOND}.{self.pk}"

    @classmethod
    def decode(cls, value: str | None) -> AuditCursor | None:
        """None for anything that is not a cursor this module wrote; a bad link shows the first page."""
        micros, _, pk = (value or "").partition(".")
        if not (micros.isdigit() and pk.isdigit()) or len(micros) > 18 or len(pk) > 18:
            return None
        try:
            moment = _EPOCH + int(micros) * _MICROSECOND
        except OverflowError:
            return None
        return cls(created_at=moment, pk=int(pk))

    @classmethod
    def of(cls, event: AuditEvent) -> AuditCursor:
        return cls(created_at=event.created_at, pk=event.pk)


@dataclass
class AuditPage:
    events: list[AuditEvent]
    newer: AuditCursor | None  # the cursor for the page before (newer events), if any
    older: AuditCursor | None  # the cursor for the page after (older events), if any
    is_first: bool


def audit_events(
    *,
    verb: str = "",
    actor: str = "",
    target_type: str = "",
    since: datetime.datetime | None = None,
    until: datetime.datetime | None = None,
):
    """The active tenant's audit events, newest first, filtered."""
    events = AuditEvent.objects.order_by("-created_at", "-pk")
    verb = verb.strip()
    if verb:
        # "membership" or "membership." matches every membership verb; a full verb only itself.
        if "." not in verb.rstrip("."):
            events = events.filter(verb__startswith=verb.rstrip(".") + ".")
        else:
            events = events.filter(verb=verb)
    actor = actor.strip()
    if actor:
        events = events.filter(actor_label__icontains=actor)
    if target_type:
        events = events.filter(target_type=target_type)
    if since is not None:
        events = events.filter(created_at__gte=since)
    if until is not None:
        events = events.filter(created_at__lt=until)
    return events


def audit_page(
    events, *, after: AuditCursor | None = None, before: AuditCursor | None = None, size: int = 50
) -> AuditPage:
    """One page of ``events`` by keyset: the cost stays the same on page 1 and page 10,000.

    ``after`` continues to older events than the cursor, ``before`` goes back to newer ones. The
    (tenant, -created_at) index serves both; no COUNT and no OFFSET are ever run.
    """
    if before is not None:
        newer_than = Q(created_at__gt=before.created_at) | Q(created_at=before.created_at, pk__gt=before.pk)
        rows = list(events.filter(newer_than).order_by("created_at", "pk")[: size + 1])
        has_newer = len(rows) > size
        rows = list(reversed(rows[:size]))
        if not has_newer:
            # Back at the top: show a full first page rather than a short one.
            return audit_page(events, size=size)
        return AuditPage(
            events=rows,
            newer=AuditCursor.of(rows[0]),
            older=AuditCursor.of(rows[-1]),
            is_first=False,
        )
    if after is not None:
        older_than = Q(created_at__lt=after.created_at) | Q(created_at=after.created_at, pk__lt=after.pk)
        events = events.filter(older_than)
    rows = list(events[: size + 1])
    has_older = len(rows) > size
    rows = rows[:size]
    return AuditPage(
        events=rows,
        newer=AuditCursor.of(rows[0]) if (after is not None and rows) else None,
        older=AuditCursor.of(rows[-1]) if (has_older and rows) else None,
        is_first=after is None,
    )


def audit_change_rows(changes) -> list[tuple[str, object, object, bool]]:
    """An event's ``changes`` as (field, old, new, is_pair) rows for display.

    Services write ``{field: [old, new]}``; anything else (a single value, a nested object) is
    shown as written rather than guessed at.
    """
    if not isinstance(changes, dict):
        return [("", None, changes, False)] if changes not in (None, "", [], {}) else []
    rows = []
    for field, value in changes.items():
        if isinstance(value, list | tuple) and len(value) == 2:
            if value[0] in (None, "") and value[1] in (None, ""):
                continue  # "nothing" became "nothing": not a change worth a line
            rows.append((str(field), value[0], value[1], True))
        else:
            rows.append((str(field), None, value, False))
    return rows


def audit_target_types() -> list[tuple[str, str]]:
    """(label_lower, verbose name) of every model an audit event can point at, for the filter."""
    from partnerhub.tenancy.models import Tenant, TenantOwnedModel

    models = [model for model in apps.get_models() if issubclass(model, TenantOwnedModel) or model is Tenant]
    models = [model for model in models if model is not AuditEvent]
    return sorted(
        ((model._meta.label_lower, str(model._meta.verbose_name).capitalize()) for model in models),
        key=lambda choice: choice[1],
    )
