"""Data sources, their sync runs, and the facts they bring: deals and marketing facts.

A data source is one CRM or feed of one tenant. A sync run pulls what changed since the last
successful run, page by page; each committed page moves the run's cursor, so a worker killed in
the middle loses nothing and duplicates nothing. Facts are upserted by (tenant, source, external
id); a fact whose partner cannot be matched is kept with no partner (the unmatched queue) until an
administrator maps its partner reference.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from partnerhub.integrations import secrets
from partnerhub.tenancy.models import Tenant, TenantOwnedModel


class SourceKind(models.TextChoices):
    HUBSPOT = "hubspot", "HubSpot"
    SALESFORCE = "salesforce", "Salesforce"
    FILE = "file", "File upload"
    API = "api", "API push"


PULLED_KINDS = (SourceKind.HUBSPOT, SourceKind.SALESFORCE)

DEFAULT_ENDPOINTS = {
    SourceKind.HUBSPOT: {"base_url": "https://api.hubapi.com", "token_url": "", "api_version": ""},
    SourceKind.SALESFORCE: {
        "base_url": "https://login.salesforce.com",
        "token_url": "https://login.salesforce.com/services/oauth2/token",
        "api_version": "v61.0",
    },
}

# The credentials each kind needs; pages show only which are set, never their values.
CREDENTIAL_FIELDS = {
    SourceKind.HUBSPOT: ("access_token",),
    SourceKind.SALESFORCE: ("client_id", "client_secret"),
    SourceKind.FILE: (),
    SourceKind.API: (),
}


class Attribution(models.TextChoices):
    """How a CRM record names its partner."""

    DEAL_PROPERTY = "deal_property", "A deal property (HubSpot) or opportunity field (Salesforce)"
    ASSOCIATION_LABEL = "association_label", "A labelled deal-to-company association (HubSpot)"
    PARTNER_ACCOUNT = "partner_account", "Opportunity.PartnerAccountId (Salesforce)"


class PartnerMatch(models.TextChoices):
    """Which partner field the CRM's partner reference is compared with."""

    HUBSPOT_COMPANY_ID = "hubspot_company_id", "The partner's HubSpot company id"
    SALESFORCE_ACCOUNT_ID = "salesforce_account_id", "The partner's Salesforce account id"
    PARTNER_ID = "partner_id", "The partner's PartnerHub id"
    MAPPING_ONLY = "mapping", "Only the mappings entered here"


class DataSource(TenantOwnedModel):
    """One CRM or feed a tenant's facts come from."""

    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=12, choices=SourceKind.choices)
    is_active = models.BooleanField(default=True)
    base_url = models.URLField(
        blank=True, help_text="HubSpot: the API base. Salesforce: the login host (the token names the instance)."
    )
    token_url = models.URLField(blank=True, help_text="Salesforce: where OAuth tokens are requested.")
    api_version = models.CharField(max_length=12, blank=True, help_text="Salesforce: the REST API version, e.g. v61.0.")
    credentials = models.TextField(blank=True, editable=False, help_text="Encrypted; never shown again once saved.")
    credentials_set = models.JSONField(default=list, blank=True, editable=False)
    attribution = models.CharField(max_length=20, choices=Attribution.choices, blank=True)
    attribution_field = models.CharField(
        max_length=120,
        blank=True,
        help_text="The deal property, custom field or association label that names the partner.",
    )
    partner_match = models.CharField(max_length=24, choices=PartnerMatch.choices, default=PartnerMatch.MAPPING_ONLY)
    currency = models.CharField(max_length=3, default="USD", help_text="The reporting currency of derived amounts.")
    schedule_minutes = models.PositiveIntegerField(
        default=60, help_text="Minutes between scheduled syncs; 0 syncs only when asked."
    )
    overlap_minutes = models.PositiveIntegerField(
        default=10, help_text="Each incremental sync re-reads this many minutes before the last one's end."
    )
    stale_after_hours = models.PositiveIntegerField(
        default=24, help_text="Without a successful sync for this long, data health marks the source stale."
    )
    synced_until = models.DateTimeField(null=True, blank=True, help_text="Changes up to here have been read.")
    last_success_at = models.DateTimeField(null=True, blank=True)
    next_run_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="data_source_name_unique"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def pulled(self) -> bool:
        return self.kind in PULLED_KINDS

    def set_credentials(self, values: dict[str, str]) -> None:
        """Encrypt ``values``; blank values keep what was stored before."""
        current = self.read_credentials() if self.credentials else {}
        current.update({key: value for key, value in values.items() if value})
        self.credentials = secrets.encrypt(current)
        self.credentials_set = sorted(current)

    def read_credentials(self) -> dict[str, str]:
        """The decrypted credentials (raises ``CredentialsUnreadable`` when the keys changed)."""
        return secrets.decrypt(self.credentials)

    def is_stale(self, now=None) -> bool:
        now = now or timezone.now()
        if not self.pulled:
            return False
        return self.last_success_at is None or now - self.last_success_at > timedelta(hours=self.stale_after_hours)


class PartnerMapping(TenantOwnedModel):
    """A CRM partner reference an administrator mapped to a partner (resolves unmatched facts)."""

    source = models.ForeignKey(DataSource, on_delete=models.CASCADE, related_name="mappings")
    external_ref = models.CharField(max_length=200)
    partner = models.ForeignKey("partners.Partner", on_delete=models.CASCADE, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["external_ref"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "source", "external_ref"], name="partner_mapping_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.external_ref} → {self.partner}"


class SyncStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    RESCHEDULED = "rescheduled", "Rescheduled (rate limited)"
    FAILED = "failed", "Failed"


class SyncErrorKind(models.TextChoices):
    NONE = "", "None"
    AUTHENTICATION = "authentication", "Authentication failed"
    CONFIGURATION = "configuration", "Configuration error"
    RATE_LIMIT = "rate_limit", "Rate limited"
    TRANSIENT = "transient", "Temporary failure"
    OTHER = "other", "Error"


class SyncRun(TenantOwnedModel):
    """One pull from a data source, with what it read and wrote."""

    source = models.ForeignKey(DataSource, on_delete=models.CASCADE, related_name="runs")
    status = models.CharField(max_length=12, choices=SyncStatus.choices, default=SyncStatus.QUEUED)
    trigger = models.CharField(max_length=12, default="schedule", help_text="schedule or manual")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    queued_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    since = models.DateTimeField(null=True, blank=True, help_text="Changes from here (overlap included) are read.")
    until = models.DateTimeField(null=True, blank=True, help_text="Changes up to here are read.")
    cursor = models.JSONField(null=True, blank=True, help_text="Where to resume: after the last committed page.")
    pages = models.PositiveIntegerField(default=0)
    fetched = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    deleted = models.PositiveIntegerField(default=0)
    unmatched = models.PositiveIntegerField(default=0)
    observations_written = models.PositiveIntegerField(default=0)
    error_kind = models.CharField(max_length=16, choices=SyncErrorKind.choices, default=SyncErrorKind.NONE, blank=True)
    error = models.TextField(blank=True)
    retry_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-queued_at", "-pk"]
        indexes = [models.Index(fields=["tenant", "source", "status"], name="sync_run_lookup")]
        constraints = [
            # One sync per source at a time: at most one run queued or running.
            models.UniqueConstraint(
                fields=["tenant", "source"],
                condition=models.Q(status__in=["queued", "running"]),
                name="one_open_sync_per_source",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source} sync of {self.queued_at:%Y-%m-%d %H:%M}"

    @property
    def duration(self) -> timedelta | None:
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None


class Deal(TenantOwnedModel):
    """A partner-attributed deal (HubSpot deal, Salesforce opportunity, uploaded or pushed row)."""

    partner_path = "partner"

    # Deals arrive by the million: each index and each foreign-key check costs every upsert.
    # Lookups go through the composite indexes below (every query carries the tenant), so the
    # foreign keys get no index of their own; deleting a source, partner, run or upload (rare)
    # scans instead. No foreign key is checked row by row by the database either (a million
    # deferred checks cost a file's load three times over, see docs/performance.md): row-level
    # security already holds every row to the current tenant (its WITH CHECK); every writer takes
    # the source from the tenant's own sources, the partner from the tenant's partners or a mapping
    # (itself checked) in the same statement, the run or upload from the one it is writing under;
    # and deleting any of them goes through the ORM, which cascades, protects or clears as declared.
    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, related_name="+", editable=False, db_index=False, db_constraint=False
    )
    source = models.ForeignKey(
        DataSource, on_delete=models.PROTECT, related_name="deals", db_index=False, db_constraint=False
    )
    external_id = models.CharField(max_length=64)
    partner = models.ForeignKey(
        "partners.Partner",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="deals",
        db_index=False,
        db_constraint=False,
    )
    partner_ref = models.CharField(max_length=200, blank=True, help_text="The partner as the source names it.")
    name = models.CharField(max_length=255, blank=True)
    amount = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    stage = models.CharField(max_length=120, blank=True)
    closed = models.BooleanField(default=False)
    won = models.BooleanField(default=False)
    created_on = models.DateField(help_text="The day the deal was created (registered).")
    close_date = models.DateField(null=True, blank=True)
    modified_at = models.DateTimeField()
    deleted_at = models.DateTimeField(null=True, blank=True, help_text="Deleted or archived at the source.")
    sync_run = models.ForeignKey(
        SyncRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False, db_constraint=False
    )
    upload = models.ForeignKey(
        "integrations.Upload",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    first_seen_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-modified_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "source", "external_id"], name="deal_external_id_unique"),
            models.CheckConstraint(condition=models.Q(won=False) | models.Q(closed=True), name="deal_won_is_closed"),
        ]
        indexes = [
            models.Index(fields=["tenant", "partner"], name="deal_partner"),
            models.Index(
                fields=["tenant", "source", "partner_ref"],
                condition=models.Q(partner__isnull=True),
                name="deal_unmatched",
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.external_id


class MarketingKind(models.TextChoices):
    MQL = "mql", "Marketing-qualified lead"
    CAMPAIGN_PIPELINE = "campaign_pipeline", "Campaign-influenced pipeline"
    EVENT_ATTENDED = "event_attended", "Event attended"


class MarketingFact(TenantOwnedModel):
    """A marketing fact, by file or API: an MQL, campaign-influenced pipeline, an event attended."""

    partner_path = "partner"

    source = models.ForeignKey(DataSource, on_delete=models.PROTECT, related_name="marketing_facts")
    external_id = models.CharField(max_length=64)
    partner = models.ForeignKey(
        "partners.Partner", null=True, blank=True, on_delete=models.PROTECT, related_name="marketing_facts"
    )
    partner_ref = models.CharField(max_length=200, blank=True)
    kind = models.CharField(max_length=20, choices=MarketingKind.choices)
    occurred_on = models.DateField()
    quantity = models.DecimalField(max_digits=18, decimal_places=2, default=1)
    currency = models.CharField(max_length=3, blank=True)
    campaign = models.CharField(max_length=200, blank=True)
    upload = models.ForeignKey(
        "integrations.Upload", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    recorded_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-occurred_on", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "source", "external_id"], name="marketing_fact_unique"),
        ]
        indexes = [models.Index(fields=["tenant", "partner", "occurred_on"], name="marketing_partner_day")]
