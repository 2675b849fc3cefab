"""Tenants, people, memberships, API keys, invitations and the audit trail."""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from partnerhub.tenancy.context import current_tenant_id
from partnerhub.tenancy.managers import TenantScopedManager, UnscopedManager
from partnerhub.tenancy.roles import INTERNAL_ROLES, PARTNER_ROLES, ROLE_CAPABILITIES, Capability, Role


class CrossTenantWrite(RuntimeError):
    """Raised when saving a row that belongs to a tenant other than the active one."""


class Tenant(models.Model):
    """A vendor running a partner program; owns every other row in the portal."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=60, unique=True)
    fiscal_year_start_month = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(12)],
        help_text="Month (1-12) in which the fiscal year starts; periods follow fiscal quarters.",
    )
    size_measure_label = models.CharField(
        max_length=60,
        default="Sales reps",
        help_text="What a partner's size counts, used for per-size normalization.",
    )
    require_mfa_for_admins = models.BooleanField(
        default=False, help_text="Administrators must set up an authenticator app before using the portal."
    )
    suspect_values_count = models.BooleanField(
        default=True,
        help_text="Values the data-health check finds suspect count in scores until a manager reviews them. "
        "Off: they wait out of the scores until they are accepted.",
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(fiscal_year_start_month__gte=1, fiscal_year_start_month__lte=12),
                name="tenant_fiscal_month_in_range",
                violation_error_message="The fiscal year must start in a month between 1 and 12.",
            )
        ]

    def __str__(self) -> str:
        return self.name


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create(self, email: str, password: str | None, **extra):
        if not email:
            raise ValueError("An email address is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra):
        extra.update(is_staff=True, is_superuser=True)
        return self._create(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person. Signs in with an email address; belongs to tenants through memberships."""

    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=200, blank=True)
    is_staff = models.BooleanField(default=False, help_text="May use the support admin site.")
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.full_name or self.email

    def get_full_name(self) -> str:
        return self.full_name or self.email

    def get_short_name(self) -> str:
        return (self.full_name.split() or [self.email])[0]


class TenantOwnedModel(models.Model):
    """Base for every row that belongs to one tenant.

    The default manager fails closed (``TenantScopedManager``); saving fills ``tenant`` from the
    active scope and refuses a row of another tenant. On PostgreSQL each subclass's migration adds
    ``EnableTenantRLS`` so the database enforces the same rule.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", editable=False)

    objects = TenantScopedManager()
    # Spans tenants: the loudly named escape hatch every tenant-owned model inherits (see managers.py).
    # Product code reads across tenants only through Membership.all_tenants, to list a person's
    # workspaces; tests/tenancy/test_rls.py reads through it to prove row-level security alone.
    all_tenants = UnscopedManager()

    # Path from this model to the partner it belongs to, for partner users' restriction.
    # None means partner users never see rows of this model.
    partner_path: str | None = None

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        self.adopt_active_tenant()
        super().save(*args, **kwargs)

    def adopt_active_tenant(self) -> None:
        """Give a new row the active tenant; refuse a row that belongs to another one."""
        active = current_tenant_id()
        if self.tenant_id is None:
            self.tenant_id = active
        elif self.tenant_id != active:
            raise CrossTenantWrite(f"{type(self).__name__} of tenant {self.tenant_id} used in tenant {active}")

    def full_clean(self, *args, **kwargs):
        # Per-tenant unique constraints can only be checked once the row knows its tenant.
        self.adopt_active_tenant()
        super().full_clean(*args, **kwargs)


class MembershipQuerySet(models.QuerySet):
    def internal(self):
        return self.filter(role__in=INTERNAL_ROLES)

    def of_partner(self, partner):
        return self.filter(partner=partner)


class Membership(TenantOwnedModel):
    """A person's role in one tenant; partner roles are tied to exactly one partner."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=32, choices=Role.choices)
    partner = models.ForeignKey(
        "partners.Partner", on_delete=models.CASCADE, null=True, blank=True, related_name="memberships"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = TenantScopedManager.from_queryset(MembershipQuerySet)()
    # Spans tenants on purpose: a person's workspaces are listed before any tenant is chosen
    # (partnerhub.tenancy.selectors.memberships_of is its one reader).
    all_tenants = UnscopedManager.from_queryset(MembershipQuerySet)()
    partner_path = "partner"

    class Meta:
        ordering = ["user__email"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "user"],
                name="membership_one_per_user_and_tenant",
                violation_error_message="This person already belongs to the workspace.",
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(role__in=sorted(PARTNER_ROLES), partner__isnull=False)
                    | models.Q(role__in=sorted(INTERNAL_ROLES), partner__isnull=True)
                ),
                name="membership_partner_iff_partner_role",
                violation_error_message="Partner roles need a partner; internal roles must not have one.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} — {self.get_role_display()}"

    @property
    def is_internal(self) -> bool:
        return self.role in INTERNAL_ROLES

    @property
    def is_partner_user(self) -> bool:
        return self.role in PARTNER_ROLES

    def can(self, capability: Capability) -> bool:
        return capability in ROLE_CAPABILITIES.get(self.role, frozenset())


class ApiKeyAccess(models.TextChoices):
    READ_ONLY = "read_only", "Read only"
    READ_WRITE = "read_write", "Read and write"


class ApiKey(TenantOwnedModel):
    """A credential for integrations. Only a SHA-256 digest of the secret is stored."""

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    digest = models.CharField(max_length=64, editable=False)
    access = models.CharField(max_length=16, choices=ApiKeyAccess.choices, default=ApiKeyAccess.READ_ONLY)
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                Lower("name"),
                "tenant",
                condition=models.Q(revoked_at__isnull=True),
                name="apikey_active_name_unique_per_tenant",
                violation_error_message="An active API key with this name already exists.",
            )
        ]

    def __str__(self) -> str:
        return f"API key “{self.name}”"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @property
    def can_write(self) -> bool:
        return self.access == ApiKeyAccess.READ_WRITE


class Invitation(TenantOwnedModel):
    """An emailed offer to join a tenant with a role. Only a digest of the token is stored."""

    email = models.EmailField()
    role = models.CharField(max_length=32, choices=Role.choices)
    partner = models.ForeignKey(
        "partners.Partner", on_delete=models.CASCADE, null=True, blank=True, related_name="invitations"
    )
    digest = models.CharField(max_length=64, unique=True, editable=False)
    invited_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)

    partner_path = "partner"

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(role__in=sorted(PARTNER_ROLES), partner__isnull=False)
                    | models.Q(role__in=sorted(INTERNAL_ROLES), partner__isnull=True)
                ),
                name="invitation_partner_iff_partner_role",
                violation_error_message="Partner roles need a partner; internal roles must not have one.",
            ),
        ]

    def __str__(self) -> str:
        return f"Invitation for {self.email}"

    @property
    def status(self) -> str:
        if self.accepted_at:
            return "accepted"
        if self.revoked_at:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "pending"

    @property
    def is_pending(self) -> bool:
        return self.status == "pending"


class AuditEvent(TenantOwnedModel):
    """An append-only record of who changed what. Never updated or deleted."""

    actor = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    actor_label = models.CharField(max_length=200, help_text="Who acted, as shown when the event was written.")
    verb = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=64)
    target_id = models.CharField(max_length=64)
    target_repr = models.CharField(max_length=300)
    changes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "-created_at"], name="audit_tenant_recent"),
            models.Index(fields=["tenant", "target_type", "target_id"], name="audit_tenant_target"),
        ]

    def __str__(self) -> str:
        return f"{self.actor_label} {self.verb} {self.target_repr}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise RuntimeError("Audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise RuntimeError("Audit events are append-only")
