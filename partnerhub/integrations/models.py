"""Data sources, CRM connectors, sync runs, facts, and the files people upload."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from partnerhub.tenancy.managers import TenantQuerySet, TenantScopedManager, UnscopedManager
from partnerhub.tenancy.models import TenantOwnedModel


class UploadKind(models.TextChoices):
    """What an uploaded file holds, which decides the service that reads it."""

    OBSERVATIONS = "observations", "Metric observations"
    DEALS = "deals", "Deals"
    MARKETING = "marketing", "Marketing facts"


class UploadStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    CHECKING = "checking", "Checking"
    CHECKED = "checked", "Ready to record"
    INVALID = "invalid", "Has problems"
    COMMITTING = "committing", "Recording"
    COMMITTED = "committed", "Recorded"
    FAILED = "failed", "Failed"


# Statuses in which a task is working on the upload (the page polls for progress).
UPLOAD_RUNNING = frozenset({UploadStatus.RECEIVED, UploadStatus.CHECKING, UploadStatus.COMMITTING})


class UploadQuerySet(TenantQuerySet):
    def without_content(self):
        """Everything but the file itself, for lists (a file may be megabytes)."""
        return self.defer("content")


class Upload(TenantOwnedModel):
    """A file someone uploaded, kept with its check report until it is recorded.

    The file is stored in the database: the web process that receives it and the worker that
    reads it may run in different containers, and PostgreSQL is the one thing both reach.
    ``rows_done`` of ``rows_total`` is the progress of the step under way; a commit counts each
    row twice (checked again, then written).
    """

    kind = models.CharField(max_length=20, choices=UploadKind.choices, default=UploadKind.OBSERVATIONS)
    file_name = models.CharField(max_length=255)
    size = models.PositiveIntegerField(help_text="Bytes.")
    sha256 = models.CharField(max_length=64, help_text="Hex digest of the content.")
    content = models.BinaryField()
    status = models.CharField(max_length=12, choices=UploadStatus.choices, default=UploadStatus.RECEIVED)
    rows_total = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)
    result = models.JSONField(
        default=dict, blank=True, help_text="The check report and the commit's outcome: counts, periods, row errors."
    )
    error = models.TextField(blank=True, help_text="Why the last step failed, when it did.")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    committed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    checked_at = models.DateTimeField(null=True, blank=True)
    committed_at = models.DateTimeField(null=True, blank=True)

    objects = TenantScopedManager.from_queryset(UploadQuerySet)()
    # Spans tenants: the unscoped escape hatch, declared after ``objects`` so the scoped manager
    # stays the default. No product code reads through it; tests/tenancy/test_rls.py reads every
    # tenant-owned model through it to prove row-level security alone hides other tenants' rows.
    all_tenants = UnscopedManager.from_queryset(UploadQuerySet)()
    partner_path = None  # internal data: partner users never see uploads

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "-created_at"], name="upload_recent"),
            models.Index(fields=["tenant", "sha256"], name="upload_same_file"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(rows_done__lte=models.F("rows_total")),
                name="upload_rows_done_within_total",
                violation_error_message="An upload cannot have done more rows than it has.",
            ),
            models.CheckConstraint(
                condition=~models.Q(status="committed") | models.Q(committed_at__isnull=False),
                name="upload_committed_has_time",
                violation_error_message="A recorded upload says when it was recorded.",
            ),
        ]

    def __str__(self) -> str:
        return self.file_name

    @property
    def is_running(self) -> bool:
        return self.status in UPLOAD_RUNNING

    @property
    def percent(self) -> int | None:
        """Progress of the step under way, 0-100; None while its size is not known yet."""
        if not self.is_running:
            return 100
        if not self.rows_total:
            return None
        return min(100, 100 * self.rows_done // self.rows_total)

    @property
    def check_report(self) -> dict:
        return self.result.get("check") or {}

    @property
    def commit_report(self) -> dict:
        return self.result.get("commit") or {}


# Data sources, sync runs and facts live in their own module; importing them here registers them.
from partnerhub.integrations.source_models import (  # noqa: E402, F401
    DataSource,
    Deal,
    MarketingFact,
    PartnerMapping,
    SyncRun,
)


class IdempotentRequest(TenantOwnedModel):
    """A write request sent with an ``Idempotency-Key``, and the answer it got.

    The row is inserted, and committed, before the request's work starts: a duplicate sent while
    the first is still running hits the unique constraint and is told to wait (409). Once the
    work is done its answer is stored in the work's own transaction, so a stored answer always
    describes work that was committed. ``response_status`` is empty while the request runs.
    """

    principal = models.CharField(max_length=40, help_text="Who sent it: key:<API key id> or user:<user id>.")
    key = models.CharField(max_length=200)
    endpoint = models.CharField(max_length=200, help_text="The method and path, e.g. POST /api/v1/deals/bulk/.")
    request_hash = models.CharField(max_length=64, help_text="SHA-256 of the request's JSON content.")
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    # The answer as it was sent, byte for byte: a jsonb column would reorder its keys.
    response_body = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant", "created_at"], name="idempotent_request_age")]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "principal", "key"],
                name="idempotent_request_unique",
                violation_error_message="This Idempotency-Key was used before.",
            ),
            models.CheckConstraint(
                condition=models.Q(response_status__isnull=True) | models.Q(completed_at__isnull=False),
                name="idempotent_request_answer_has_time",
                violation_error_message="A stored answer says when it was stored.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.endpoint} · {self.key}"

    @property
    def in_flight(self) -> bool:
        return self.response_status is None
