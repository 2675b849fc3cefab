"""Partners and their segmentation: type, lifecycle stage, region, size and manager."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from partnerhub.tenancy.managers import TenantQuerySet, TenantScopedManager, UnscopedManager
from partnerhub.tenancy.models import TenantOwnedModel

DEFAULT_PARTNER_TYPES = [
    ("reseller", "Reseller"),
    ("referral", "Referral"),
    ("technology", "Technology / ISV"),
    ("msp", "Managed service provider"),
    ("systems_integrator", "Systems integrator"),
    ("distributor", "Distributor"),
]


class LifecycleStage(models.TextChoices):
    ONBOARDING = "onboarding", "Onboarding"
    GROWING = "growing", "Growing"
    MATURE = "mature", "Mature"
    AT_RISK = "at_risk", "At risk"
    EXITING = "exiting", "Exiting"


class PartnerStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"
    TERMINATED = "terminated", "Terminated"


class PartnerType(TenantOwnedModel):
    """A tenant-configurable partner segment (reseller, MSP, ...); scorecards target these."""

    key = models.SlugField(max_length=50)
    name = models.CharField(max_length=100)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "key"],
                name="partnertype_key_unique_per_tenant",
                violation_error_message="A partner type with this key already exists.",
            ),
            models.UniqueConstraint(
                Lower("name"),
                "tenant",
                name="partnertype_name_unique_per_tenant",
                violation_error_message="A partner type with this name already exists.",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class PartnerQuerySet(TenantQuerySet):
    def with_listing_relations(self):
        """What a directory row or API list item shows, fetched in the same query."""
        return self.select_related("partner_type", "manager")

    def search(self, text: str):
        text = text.strip()
        if not text:
            return self
        return self.filter(
            models.Q(name__icontains=text)
            | models.Q(hubspot_company_id=text)
            | models.Q(salesforce_account_id=text)
            | models.Q(region__icontains=text)
        )


class Partner(TenantOwnedModel):
    """A company in the tenant's partner program."""

    name = models.CharField(max_length=200)
    partner_type = models.ForeignKey(PartnerType, on_delete=models.PROTECT, related_name="partners")
    lifecycle_stage = models.CharField(max_length=16, choices=LifecycleStage.choices, default=LifecycleStage.ONBOARDING)
    status = models.CharField(max_length=16, choices=PartnerStatus.choices, default=PartnerStatus.ACTIVE)
    region = models.CharField(max_length=100, blank=True, help_text="Region or market, e.g. “EMEA — DACH”.")
    product_lines = models.JSONField(default=list, blank=True, help_text="Product lines the partner sells.")
    size = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text="The tenant's size measure (e.g. number of sales reps), used for fair normalization.",
    )
    hubspot_company_id = models.CharField("HubSpot company id", max_length=64, blank=True)
    salesforce_account_id = models.CharField("Salesforce account id", max_length=18, blank=True)
    external_ids = models.JSONField(
        default=dict, blank=True, help_text='Other systems\' ids for this partner, e.g. {"erp": "P-0042"}.'
    )
    manager = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="managed_partners",
        help_text="The partner manager responsible for this partner.",
    )
    website = models.URLField(blank=True)
    joined_on = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantScopedManager.from_queryset(PartnerQuerySet)()
    # Spans tenants: the unscoped escape hatch, declared after ``objects`` so the scoped manager
    # stays the default. No product code reads through it; tests/tenancy/test_rls.py reads every
    # tenant-owned model through it to prove row-level security alone hides other tenants' rows.
    all_tenants = UnscopedManager.from_queryset(PartnerQuerySet)()
    partner_path = "pk"

    class Meta:
        ordering = ["name", "id"]
        indexes = [
            models.Index(fields=["tenant", "name"], name="partner_tenant_name"),
            models.Index(fields=["tenant", "partner_type", "name"], name="partner_tenant_type"),
            models.Index(fields=["tenant", "lifecycle_stage", "name"], name="partner_tenant_stage"),
            models.Index(fields=["tenant", "region", "name"], name="partner_tenant_region"),
            models.Index(fields=["tenant", "manager", "name"], name="partner_tenant_manager"),
            models.Index(fields=["tenant", "status", "name"], name="partner_tenant_status"),
            models.Index(fields=["tenant", "size", "name"], name="partner_tenant_size"),
            models.Index(fields=["tenant", "joined_on", "name"], name="partner_tenant_joined"),
            models.Index(fields=["tenant", "updated_at", "name"], name="partner_tenant_updated"),
        ]
        constraints = [
            models.UniqueConstraint(
                Lower("name"),
                "tenant",
                name="partner_name_unique_per_tenant",
                violation_error_message="A partner with this name already exists.",
            ),
            models.UniqueConstraint(
                fields=["tenant", "hubspot_company_id"],
                condition=~models.Q(hubspot_company_id=""),
                name="partner_hubspot_id_unique_per_tenant",
                violation_error_message="Another partner already has this HubSpot company id.",
            ),
            models.UniqueConstraint(
                fields=["tenant", "salesforce_account_id"],
                condition=~models.Q(salesforce_account_id=""),
                name="partner_salesforce_id_unique_per_tenant",
                violation_error_message="Another partner already has this Salesforce account id.",
            ),
        ]

    def __str__(self) -> str:
        return self.name
