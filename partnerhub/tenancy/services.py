"""Writes for tenants, memberships, invitations and API keys. Each one audits what it changes."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from partnerhub.tenancy.audit import audit
from partnerhub.tenancy.context import current_tenant_id, tenant_scope
from partnerhub.tenancy.models import ApiKey, ApiKeyAccess, Invitation, Membership, Tenant, User
from partnerhub.tenancy.roles import INTERNAL_ROLES, PARTNER_ADMIN_INVITABLE, PARTNER_ROLES, Capability, Role

API_KEY_PREFIX = "phk"
INVITATION_PREFIX = "inv"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# --- Tenants --------------------------------------------------------------------------------------


@transaction.atomic
def tenant_create(*, name: str, slug: str, fiscal_year_start_month: int = 1, **fields) -> Tenant:
    """Create a tenant with the default partner types."""
    from partnerhub.partners.services import partner_types_seed_defaults

    tenant = Tenant(name=name, slug=slug, fiscal_year_start_month=fiscal_year_start_month, **fields)
    tenant.full_clean()
    tenant.save()
    with tenant_scope(tenant):
        partner_types_seed_defaults()
    return tenant


# --- Memberships ----------------------------------------------------------------------------------


def _check_role_and_partner(role: str, partner) -> None:
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role “{role}”."})
    if role in PARTNER_ROLES and partner is None:
        raise ValidationError({"partner": "Partner roles need a partner."})
    if role in INTERNAL_ROLES and partner is not None:
        raise ValidationError({"partner": "Internal roles are not tied to a partner."})


@transaction.atomic
def membership_create(*, user: User, role: str, partner=None, by: User | None) -> Membership:
    """Add a person to the active tenant."""
    _check_role_and_partner(role, partner)
    if Membership.objects.filter(user=user).exists():
        raise ValidationError("This person already belongs to the workspace.")
    membership = Membership.objects.create(user=user, role=role, partner=partner)
    audit(
        actor=by,
        verb="membership.created",
        target=membership,
        changes={"user": [None, user.email], "role": [None, role], "partner": [None, str(partner or "")]},
    )
    return membership


@transaction.atomic
def membership_change_role(*, membership: Membership, role: str, partner=None, by: User) -> Membership:
    _check_role_and_partner(role, partner)
    _refuse_removing_last_admin(membership, new_role=role)
    before = {"role": membership.role, "partner": str(membership.partner or "")}
    membership.role, membership.partner = role, partner
    membership.save(update_fields=["role", "partner"])
    audit(
        actor=by,
        verb="membership.role_changed",
        target=membership,
        changes={key: [before[key], value] for key, value in {"role": role, "partner": str(partner or "")}.items()},
    )
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership, by: User) -> None:
    _refuse_removing_last_admin(membership, new_role=None)
    audit(actor=by, verb="membership.removed", target=membership, changes={"role": [membership.role, None]})
    membership.delete()


def _refuse_removing_last_admin(membership: Membership, *, new_role: str | None) -> None:
    if membership.role == Role.ADMIN and new_role != Role.ADMIN:
        admins = Membership.objects.select_for_update().filter(role=Role.ADMIN)
        if admins.count() <= 1:
            raise ValidationError("A workspace needs at least one administrator.")


# --- Invitations ----------------------------------------------------------------------------------


def invitation_allowed_roles(membership: Membership) -> list[str]:
    """Roles the inviting member may hand out."""
    if membership.can(Capability.INVITE_INTERNAL):
        return list(Role.values)
    if membership.can(Capability.INVITE_PARTNER_USERS):
        return sorted(PARTNER_ADMIN_INVITABLE)
    return []


@transaction.atomic
def invitation_create(*, email: str, role: str, partner=None, by_membership: Membership) -> tuple[Invitation, str]:
    """Invite someone by email; returns the invitation and its one-time token.

    A partner admin may only invite colleagues to their own partner. A pending invitation for
    the same address is replaced, so the newest email is the one that works.
    """
    email = email.strip().lower()
    if role not in invitation_allowed_roles(by_membership):
        raise ValidationError({"role": "You cannot invite people with this role."})
    if by_membership.is_partner_user:
        partner = by_membership.partner
    _check_role_and_partner(role, partner)
    if Membership.objects.filter(user__email__iexact=email).exists():
        raise ValidationError({"email": "This person already belongs to the workspace."})
    now = timezone.now()
    Invitation.objects.filter(email__iexact=email, accepted_at__isnull=True, revoked_at__isnull=True).update(
        revoked_at=now
    )
    secret = secrets.token_urlsafe(32)
    token = f"{INVITATION_PREFIX}_{current_tenant_id()}_{secret}"
    invitation = Invitation.objects.create(
        email=email,
        role=role,
        partner=partner,
        digest=_digest(token),
        invited_by=by_membership.user,
        expires_at=now + datetime.timedelta(days=settings.INVITATION_TTL_DAYS),
    )
    audit(
        actor=by_membership.user,
        verb="invitation.created",
        target=invitation,
        changes={"email": [None, email], "role": [None, role], "partner": [None, str(partner or "")]},
    )
    from partnerhub.tenancy.tasks import invitation_send_task

    transaction.on_commit(
        lambda: invitation_send_task.delay(tenant_id=invitation.tenant_id, invitation_id=invitation.pk, token=token)
    )
    return invitation, token


def invitation_email_send(*, invitation_id: int, token: str) -> None:
    invitation = Invitation.objects.select_related("tenant", "partner", "invited_by").get(pk=invitation_id)
    if not invitation.is_pending:
        return
    context = {
        "invitation": invitation,
        "tenant": invitation.tenant,
        "accept_url": settings.SITE_URL.rstrip("/") + reverse("invitation_accept", args=[token]),
    }
    send_mail(
        subject=f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}You are invited to {invitation.tenant.name}",
        message=render_to_string("tenancy/email/invitation.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[invitation.email],
    )


def invitation_tenant_id(token: str) -> int | None:
    """The tenant an invitation token names; the token is checked against it afterwards."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != INVITATION_PREFIX or not parts[1].isdigit():
        return None
    return int(parts[1])


def invitation_for_token(token: str) -> Invitation | None:
    """The active tenant's invitation with this token, or None."""
    invitation = Invitation.objects.select_related("tenant", "partner").filter(digest=_digest(token)).first()
    return invitation


@transaction.atomic
def invitation_accept(*, invitation: Invitation, user: User) -> Membership:
    if not invitation.is_pending:
        raise ValidationError(f"This invitation is {invitation.status}.")
    if user.email.lower() != invitation.email.lower():
        raise ValidationError("This invitation was sent to a different email address.")
    membership = membership_create(
        user=user, role=invitation.role, partner=invitation.partner, by=invitation.invited_by
    )
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    audit(actor=user, verb="invitation.accepted", target=invitation)
    return membership


@transaction.atomic
def invitation_revoke(*, invitation: Invitation, by: User) -> None:
    if not invitation.is_pending:
        raise ValidationError(f"This invitation is already {invitation.status}.")
    invitation.revoked_at = timezone.now()
    invitation.save(update_fields=["revoked_at"])
    audit(actor=by, verb="invitation.revoked", target=invitation)


# --- API keys -------------------------------------------------------------------------------------


@transaction.atomic
def api_key_create(*, name: str, access: str = ApiKeyAccess.READ_ONLY, by: User) -> tuple[ApiKey, str]:
    """Create an API key; returns the key and its plaintext, which is shown once and never stored."""
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Give the key a name that says which integration uses it."})
    if access not in ApiKeyAccess.values:
        raise ValidationError({"access": "Choose read only or read and write."})
    if ApiKey.objects.filter(name__iexact=name, revoked_at__isnull=True).exists():
        raise ValidationError({"name": "An active API key with this name already exists."})
    prefix = secrets.token_hex(6)
    plaintext = f"{API_KEY_PREFIX}_{current_tenant_id()}_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(name=name, access=access, prefix=prefix, digest=_digest(plaintext), created_by=by)
    audit(actor=by, verb="api_key.created", target=key, changes={"name": [None, name], "access": [None, access]})
    return key, plaintext


@transaction.atomic
def api_key_revoke(*, key: ApiKey, by: User) -> ApiKey:
    if key.revoked_at is not None:
        raise ValidationError("This key is already revoked.")
    key.revoked_at = timezone.now()
    key.save(update_fields=["revoked_at"])
    audit(actor=by, verb="api_key.revoked", target=key)
    return key


def api_key_parse(plaintext: str) -> tuple[int, str] | None:
    """(tenant id, prefix) named by a presented key, or None when it is not shaped like one."""
    parts = plaintext.split("_", 3)
    if len(parts) != 4 or parts[0] != API_KEY_PREFIX or not parts[1].isdigit() or not parts[3]:
        return None
    return int(parts[1]), parts[2]


def api_key_verify(*, key: ApiKey, plaintext: str) -> bool:
    return key.is_active and hmac.compare_digest(key.digest, _digest(plaintext))


API_KEY_TOUCH_INTERVAL = datetime.timedelta(minutes=1)


def api_key_touch(*, key: ApiKey) -> None:
    """Record use; written at most once a minute so busy integrations do not write on every call."""
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at >= API_KEY_TOUCH_INTERVAL:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
