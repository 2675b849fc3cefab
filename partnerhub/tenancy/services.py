"""Writes for tenants, memberships, invitations and API keys. Each one audits what it changes."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import secrets

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from partnerhub.tenancy.audit import audit, diff
from partnerhub.tenancy.context import current_tenant_id, tenant_scope
from partnerhub.tenancy.models import ApiKey, ApiKeyAccess, Invitation, Membership, Tenant, User
from partnerhub.tenancy.roles import INTERNAL_ROLES, PARTNER_ADMIN_INVITABLE, PARTNER_ROLES, Capability, Role

API_KEY_PREFIX = "phk"
MAX_BIGINT = 2**63 - 1
INVITATION_PREFIX = "inv"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _lock(instance, *fields: str):
    """Lock the row behind ``instance`` and refresh ``fields`` from it, in the caller's transaction."""
    row = type(instance).objects.select_for_update().filter(pk=instance.pk).values(*fields).first()
    if row is None:
        raise ValidationError(f"This {instance._meta.verbose_name} no longer exists.")
    for name, value in row.items():
        setattr(instance, name, value)
    return instance


# --- Tenants --------------------------------------------------------------------------------------


@transaction.atomic
def tenant_create(*, name: str, slug: str, fiscal_year_start_month: int = 1, **fields) -> Tenant:
    """Create a tenant with the default partner types, metric catalogue and collaboration prompts."""
    from partnerhub.partners.services import partner_types_seed_defaults
    from reviews.services.prompts import prompts_ensure_defaults
    from scorecards.services.metrics import metrics_seed_defaults

    tenant = Tenant(name=name, slug=slug, fiscal_year_start_month=fiscal_year_start_month, **fields)
    tenant.full_clean()
    tenant.save()
    with tenant_scope(tenant):
        partner_types_seed_defaults()
        metrics_seed_defaults()
        prompts_ensure_defaults(tenant)
    return tenant


TENANT_EDITABLE_FIELDS = (
    "name",
    "fiscal_year_start_month",
    "size_measure_label",
    "require_mfa_for_admins",
    "suspect_values_count",
)


@transaction.atomic
def tenant_update(*, tenant: Tenant, by: User, **fields) -> Tenant:
    """Change the active tenant's workspace settings."""
    if tenant.pk != current_tenant_id():
        # Settings are only ever changed from inside the workspace they belong to.
        raise PermissionDenied("This is not the active workspace.")
    unknown = set(fields) - set(TENANT_EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"Not editable: {', '.join(sorted(unknown))}")
    # Work on a fresh copy so a refused change leaves the caller's instance untouched.
    updated = Tenant.objects.select_for_update().get(pk=tenant.pk)
    before = {name: getattr(updated, name) for name in fields}
    for name, value in fields.items():
        setattr(updated, name, value)
    if isinstance(updated.name, str):
        updated.name = updated.name.strip()
    updated.full_clean(exclude=["slug"])
    changes = diff(before, {name: getattr(updated, name) for name in fields})
    if not changes:
        return updated
    updated.save(update_fields=sorted(changes))
    audit(actor=by, verb="tenant.updated", target=updated, changes=changes)
    return updated


# --- Memberships ----------------------------------------------------------------------------------


def _check_role_and_partner(role: str, partner) -> None:
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role “{role}”."})
    if role in PARTNER_ROLES and partner is None:
        raise ValidationError({"partner": "Partner roles need a partner."})
    if role in INTERNAL_ROLES and partner is not None:
        raise ValidationError({"partner": "Internal roles are not tied to a partner."})
    if partner is not None and partner.tenant_id != current_tenant_id():
        # The foreign key does not include the tenant, so the database would accept this row.
        raise ValidationError({"partner": "Choose a partner of this workspace."})


def _check_may_manage(actor: Membership, membership: Membership) -> None:
    """Administrators manage everyone; partner admins manage the partner users of their own partner."""
    if actor.tenant_id != membership.tenant_id:
        raise PermissionDenied("This person is not part of your workspace.")
    if actor.can(Capability.MANAGE_MEMBERS):
        return
    if (
        actor.can(Capability.INVITE_PARTNER_USERS)
        and actor.is_partner_user
        and membership.partner_id == actor.partner_id
        and membership.role in PARTNER_ADMIN_INVITABLE
    ):
        return
    raise PermissionDenied("Your role does not let you manage this person.")


def _check_may_assign(actor: Membership, role: str, partner) -> None:
    """The roles (and partner) the acting member may hand out, by invitation or role change."""
    if role not in assignable_roles(actor):
        raise ValidationError({"role": "You cannot give people this role."})
    if actor.is_partner_user and partner is not None and partner.pk != actor.partner_id:
        raise ValidationError({"partner": "You can only add colleagues of your own partner."})


def assignable_roles(actor: Membership) -> list[str]:
    """Roles the acting member may hand out, in the order they are listed."""
    if actor.can(Capability.INVITE_INTERNAL):
        return list(Role.values)
    if actor.can(Capability.INVITE_PARTNER_USERS) and actor.is_partner_user:
        return [role for role in Role.values if role in PARTNER_ADMIN_INVITABLE]
    return []


# Kept under its earlier name for callers that ask about invitations specifically.
invitation_allowed_roles = assignable_roles


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
def membership_change_role(*, membership: Membership, role: str, partner=None, by_membership: Membership) -> Membership:
    """Give a member another role (and, for partner roles, a partner)."""
    _check_may_manage(by_membership, membership)
    if by_membership.is_partner_user:
        partner = by_membership.partner if partner is None else partner
    _check_may_assign(by_membership, role, partner)
    _check_role_and_partner(role, partner)
    if membership.role == role and membership.partner_id == getattr(partner, "pk", None):
        return membership
    _refuse_removing_last_admin(membership, new_role=role)
    before = {"role": membership.role, "partner": str(membership.partner or "")}
    membership.role, membership.partner = role, partner
    membership.save(update_fields=["role", "partner"])
    audit(
        actor=by_membership.user,
        verb="membership.role_changed",
        target=membership,
        changes=diff(before, {"role": role, "partner": str(partner or "")}),
    )
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership, by_membership: Membership) -> None:
    """Take a person out of the workspace; their account stays, with its other workspaces."""
    _check_may_manage(by_membership, membership)
    _refuse_removing_last_admin(membership, new_role=None)
    audit(
        actor=by_membership.user,
        verb="membership.removed",
        target=membership,
        changes={"user": [membership.user.email, None], "role": [membership.role, None]},
    )
    membership.delete()


LAST_ADMIN_MESSAGE = "A workspace needs at least one administrator: make someone else an administrator first."


def _refuse_removing_last_admin(membership: Membership, *, new_role: str | None) -> None:
    if membership.role == Role.ADMIN and new_role != Role.ADMIN:
        # Lock every admin row so two admins demoting each other at once cannot both succeed.
        # (PostgreSQL refuses FOR UPDATE together with COUNT, hence the list.)
        admins = list(Membership.objects.select_for_update().filter(role=Role.ADMIN).values_list("pk", flat=True))
        if len(admins) <= 1:
            raise ValidationError(LAST_ADMIN_MESSAGE, code="last_admin")


# --- Invitations ----------------------------------------------------------------------------------


def _normalized_email(email: str) -> str:
    email = (email or "").strip().lower()
    if not email:
        raise ValidationError({"email": "Enter the email address of the person to invite."})
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationError({"email": "Enter a valid email address."}) from None
    return email


def _new_invitation_token() -> tuple[str, str]:
    """A fresh token naming the active tenant, and the digest that is stored for it."""
    token = f"{INVITATION_PREFIX}_{current_tenant_id()}_{secrets.token_urlsafe(32)}"
    return token, _digest(token)


def _schedule_invitation_email(invitation: Invitation, token: str) -> None:
    from partnerhub.tenancy.tasks import invitation_send_task

    transaction.on_commit(
        lambda: invitation_send_task.delay(tenant_id=invitation.tenant_id, invitation_id=invitation.pk, token=token)
    )


@transaction.atomic
def invitation_create(*, email: str, role: str, partner=None, by_membership: Membership) -> tuple[Invitation, str]:
    """Invite someone by email; returns the invitation and its one-time token.

    A partner admin may only invite colleagues to their own partner. A pending invitation for
    the same address is replaced, so the newest email is the one that works.
    """
    email = _normalized_email(email)
    if by_membership.is_partner_user and partner is None:
        partner = by_membership.partner
    _check_may_assign(by_membership, role, partner)
    _check_role_and_partner(role, partner)
    if Membership.objects.filter(user__email__iexact=email).exists():
        raise ValidationError({"email": "This person already belongs to the workspace."})
    now = timezone.now()
    replaced = list(
        Invitation.objects.select_for_update().filter(
            email__iexact=email, accepted_at__isnull=True, revoked_at__isnull=True
        )
    )
    if not all(_may_handle_invitation(by_membership, old) for old in replaced):
        # Replacing would withdraw an invitation this person may not touch (e.g. a partner admin
        # re-inviting someone an administrator invited to an internal role).
        raise ValidationError({"email": "This address already has an open invitation from a workspace administrator."})
    for old in replaced:
        old.revoked_at = now
        old.save(update_fields=["revoked_at"])
        audit(actor=by_membership.user, verb="invitation.revoked", target=old, changes={"replaced": [None, True]})
    token, digest = _new_invitation_token()
    invitation = Invitation.objects.create(
        email=email,
        role=role,
        partner=partner,
        digest=digest,
        invited_by=by_membership.user,
        expires_at=now + datetime.timedelta(days=settings.INVITATION_TTL_DAYS),
    )
    audit(
        actor=by_membership.user,
        verb="invitation.created",
        target=invitation,
        changes={"email": [None, email], "role": [None, role], "partner": [None, str(partner or "")]},
    )
    _schedule_invitation_email(invitation, token)
    return invitation, token


def _may_handle_invitation(actor: Membership, invitation: Invitation) -> bool:
    """Administrators handle every invitation; partner admins those for their own partner."""
    if actor.tenant_id != invitation.tenant_id:
        return False
    if actor.can(Capability.MANAGE_MEMBERS):
        return True
    own_partner = actor.is_partner_user and invitation.partner_id == actor.partner_id
    return own_partner and actor.can(Capability.INVITE_PARTNER_USERS)


def _check_may_handle_invitation(actor: Membership, invitation: Invitation) -> None:
    if not _may_handle_invitation(actor, invitation):
        raise PermissionDenied("Your role does not let you manage this invitation.")


@transaction.atomic
def invitation_resend(*, invitation: Invitation, by_membership: Membership) -> tuple[Invitation, str]:
    """Email a pending or expired invitation again with a new link; the previous link stops working.

    Only a digest of the token is stored, so the old link cannot be sent twice: a new token is
    issued and the expiry starts over.
    """
    _check_may_handle_invitation(by_membership, invitation)
    _lock(invitation, "accepted_at", "revoked_at", "expires_at")
    if invitation.accepted_at or invitation.revoked_at:
        raise ValidationError(f"This invitation is {invitation.status} and cannot be sent again.")
    before = {"expires_at": invitation.expires_at}
    token, invitation.digest = _new_invitation_token()
    invitation.expires_at = timezone.now() + datetime.timedelta(days=settings.INVITATION_TTL_DAYS)
    invitation.save(update_fields=["digest", "expires_at"])
    audit(
        actor=by_membership.user,
        verb="invitation.resent",
        target=invitation,
        changes=diff(before, {"expires_at": invitation.expires_at}),
    )
    _schedule_invitation_email(invitation, token)
    return invitation, token


def invitation_email_send(*, invitation_id: int, token: str) -> None:
    """Send the invitation email (runs in a task, inside the invitation's tenant)."""
    invitation = Invitation.objects.select_related("tenant", "partner", "invited_by").filter(pk=invitation_id).first()
    # Gone, no longer pending, or re-sent since (the token in hand is no longer the valid one).
    if invitation is None or not invitation.is_pending or not hmac.compare_digest(invitation.digest, _digest(token)):
        return
    context = {
        "invitation": invitation,
        "tenant": invitation.tenant,
        "role": invitation.get_role_display(),
        "accept_url": settings.SITE_URL.rstrip("/") + reverse("invitation_accept", args=[token]),
    }
    send_mail(
        subject=f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}You are invited to {invitation.tenant.name}",
        message=render_to_string("tenancy/email/invitation.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[invitation.email],
    )


def _token_tenant_id(text: str) -> int | None:
    """The tenant id a presented token names, when it could be one (a positive 64-bit integer).

    Tokens come from strangers: anything else is simply not a token, rather than a number the
    database would refuse.
    """
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        return None
    value = int(text)
    return value if 0 < value <= MAX_BIGINT else None


def invitation_tenant_id(token: str) -> int | None:
    """The tenant an invitation token names; the token is checked against it afterwards."""
    parts = (token or "").split("_", 2)
    if len(parts) != 3 or parts[0] != INVITATION_PREFIX or not parts[2]:
        return None
    return _token_tenant_id(parts[1])


def invitation_for_token(token: str) -> Invitation | None:
    """The active tenant's invitation with this token, or None."""
    return Invitation.objects.select_related("tenant", "partner", "invited_by").filter(digest=_digest(token)).first()


def _lock_pending(invitation: Invitation) -> Invitation:
    # Two accepts of one link (a double click, two tabs) must not both succeed.
    _lock(invitation, "accepted_at", "revoked_at", "expires_at")
    if not invitation.is_pending:
        raise ValidationError(f"This invitation is {invitation.status}.", code=invitation.status)
    return invitation


@transaction.atomic
def invitation_accept(*, invitation: Invitation, user: User) -> Membership:
    """Join the invitation's workspace as ``user``, whose email address must be the invited one."""
    invitation = _lock_pending(invitation)
    if user.email.lower() != invitation.email.lower():
        raise ValidationError("This invitation was sent to a different email address.", code="other_email")
    membership = membership_create(user=user, role=invitation.role, partner=invitation.partner, by=user)
    _record_verified_address(user, invitation.email)
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    audit(actor=user, verb="invitation.accepted", target=invitation)
    return membership


def _record_verified_address(user: User, email: str) -> None:
    """Accepting proves the person reads this mailbox: record the address as verified.

    allauth refuses to add an authenticator while an address is unverified, and a workspace may
    require one of its administrators, so this also keeps that path open.
    """
    from allauth.account.models import EmailAddress

    email = email.lower()
    updated = EmailAddress.objects.filter(user=user, email__iexact=email).update(verified=True)
    if not updated:
        has_primary = EmailAddress.objects.filter(user=user, primary=True).exists()
        EmailAddress.objects.create(user=user, email=email, verified=True, primary=not has_primary)


@transaction.atomic
def invitation_accept_as_new_user(*, invitation: Invitation, full_name: str, password: str) -> tuple[User, Membership]:
    """Create the invited person's account and join the workspace.

    The invitation link proves the person reads that mailbox, so the address is recorded as
    verified and primary: they are not asked to confirm it again.
    """
    invitation = _lock_pending(invitation)
    email = invitation.email.lower()
    if User.objects.filter(email__iexact=email).exists():
        raise ValidationError("An account with this email address already exists: sign in to accept.", code="exists")
    full_name = (full_name or "").strip()
    if not full_name:
        raise ValidationError({"full_name": "Enter your name as colleagues should see it."})
    user = User(email=email, full_name=full_name)
    try:
        validate_password(password, user=user)
    except ValidationError as error:
        raise ValidationError({"password1": error.messages}) from None
    user.set_password(password)
    user.save()
    membership = invitation_accept(invitation=invitation, user=user)
    return user, membership


@transaction.atomic
def invitation_revoke(*, invitation: Invitation, by_membership: Membership) -> Invitation:
    """Withdraw an invitation; its link stops working."""
    _check_may_handle_invitation(by_membership, invitation)
    _lock(invitation, "accepted_at", "revoked_at")
    if invitation.accepted_at or invitation.revoked_at:
        raise ValidationError(f"This invitation is already {invitation.status}.")
    invitation.revoked_at = timezone.now()
    invitation.save(update_fields=["revoked_at"])
    audit(actor=by_membership.user, verb="invitation.revoked", target=invitation)
    return invitation


# --- API keys -------------------------------------------------------------------------------------


@transaction.atomic
def api_key_create(*, name: str, access: str = ApiKeyAccess.READ_ONLY, by: User) -> tuple[ApiKey, str]:
    """Create an API key; returns the key and its plaintext, which is shown once and never stored."""
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Give the key a name that says which integration uses it."})
    if len(name) > ApiKey._meta.get_field("name").max_length:
        raise ValidationError({"name": "Keep the name under 100 characters."})
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
    """Revoke a key; requests made with it are refused from now on."""
    _lock(key, "revoked_at")
    if key.revoked_at is not None:
        raise ValidationError("This key is already revoked.")
    key.revoked_at = timezone.now()
    key.save(update_fields=["revoked_at"])
    audit(actor=by, verb="api_key.revoked", target=key)
    return key


def api_key_parse(plaintext: str) -> tuple[int, str] | None:
    """(tenant id, prefix) named by a presented key, or None when it is not shaped like one."""
    parts = plaintext.split("_", 3)
    if len(parts) != 4 or parts[0] != API_KEY_PREFIX or not parts[3]:
        return None
    tenant_id = _token_tenant_id(parts[1])
    return None if tenant_id is None else (tenant_id, parts[2])


def api_key_verify(*, key: ApiKey, plaintext: str) -> bool:
    return key.is_active and hmac.compare_digest(key.digest, _digest(plaintext))


API_KEY_TOUCH_INTERVAL = datetime.timedelta(minutes=1)


def api_key_touch(*, key: ApiKey) -> None:
    """Record use; written at most once a minute so busy integrations do not write on every call."""
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at >= API_KEY_TOUCH_INTERVAL:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
