"""Metrics, governed scorecard versions, append-only observations, and the scores computed from them."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from partnerhub.tenancy.managers import TenantQuerySet, TenantScopedManager, UnscopedManager
from partnerhub.tenancy.models import TenantOwnedModel

PERIOD_KEY_LENGTH = 12  # FY2026-M07
PERIOD_KINDS = [("quarter", "Quarter"), ("month", "Month")]


class Unit(models.TextChoices):
    COUNT = "count", "Count"
    CURRENCY = "currency", "Currency"
    PERCENT = "percent", "Percent"
    DAYS = "days", "Days"
    HOURS = "hours", "Hours"
    SCORE = "score", "Score"
    RATIO = "ratio", "Ratio"


class Direction(models.TextChoices):
    HIGHER_IS_BETTER = "higher", "Higher is better"
    LOWER_IS_BETTER = "lower", "Lower is better"


class IndicatorKind(models.TextChoices):
    LEADING = "leading", "Leading"
    LAGGING = "lagging", "Lagging"


class Pillar(models.TextChoices):
    PERFORMANCE = "performance", "Performance results"
    COLLABORATION = "collaboration", "Collaboration health"
    DEVELOPMENT = "development", "Development"


class Aggregation(models.TextChoices):
    SUM = "sum", "Sum over the period"
    AVERAGE = "average", "Average over the period"
    LAST = "last", "Last value in the period"
    RATIO = "ratio", "Ratio of two metrics"


class Metric(TenantOwnedModel):
    """Something measured about a partner each period, defined in plain language."""

    key = models.SlugField(max_length=60)
    name = models.CharField(max_length=120)
    definition = models.TextField(help_text="What the number means, in words a partner understands.")
    unit = models.CharField(max_length=16, choices=Unit.choices, default=Unit.COUNT)
    direction = models.CharField(max_length=8, choices=Direction.choices, default=Direction.HIGHER_IS_BETTER)
    indicator = models.CharField(max_length=8, choices=IndicatorKind.choices, default=IndicatorKind.LAGGING)
    pillar = models.CharField(max_length=16, choices=Pillar.choices, default=Pillar.PERFORMANCE)
    aggregation = models.CharField(max_length=8, choices=Aggregation.choices, default=Aggregation.SUM)
    numerator = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="+", help_text="For ratio metrics."
    )
    denominator = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="+", help_text="For ratio metrics."
    )
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    data_source = models.CharField(max_length=300, blank=True, help_text="Where the numbers come from.")
    plausible_min = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    plausible_max = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["pillar", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "key"],
                name="metric_key_unique_per_tenant",
                violation_error_message="A metric with this key already exists.",
            ),
            models.CheckConstraint(
                condition=~models.Q(aggregation="ratio") | models.Q(numerator__isnull=False, denominator__isnull=False),
                name="metric_ratio_names_both_metrics",
                violation_error_message="A ratio metric names its numerator and denominator metrics.",
            ),
            models.CheckConstraint(
                condition=models.Q(plausible_min__isnull=True)
                | models.Q(plausible_max__isnull=True)
                | models.Q(plausible_min__lte=models.F("plausible_max")),
                name="metric_plausible_bounds_ordered",
                violation_error_message="The plausible minimum must not exceed the maximum.",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Scorecard(TenantOwnedModel):
    """A named scorecard; its rules live in versions, exactly one of which is active at a time."""

    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "name"],
                name="scorecard_name_unique_per_tenant",
                violation_error_message="A scorecard with this name already exists.",
            )
        ]

    def __str__(self) -> str:
        return self.name


class VersionStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PROPOSED = "proposed", "Proposed"
    APPROVED = "approved", "Approved"
    ACTIVE = "active", "Active"
    RETIRED = "retired", "Retired"


class MissingData(models.TextChoices):
    RENORMALIZE = "renormalize", "Re-weight over the metrics present"
    ZERO = "zero", "Count missing metrics as zero points"


class ScorecardVersion(TenantOwnedModel):
    """One governed set of rules: items, weights, rubrics, bands. Immutable once approved."""

    scorecard = models.ForeignKey(Scorecard, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=12, choices=VersionStatus.choices, default=VersionStatus.DRAFT)
    partner_types = models.JSONField(default=list, help_text="Keys of the partner types (segments) it scores.")
    period_kind = models.CharField(max_length=8, choices=PERIOD_KINDS, default="quarter")
    # Rating bands: a total at or above `excellent` is excellent, at or above `good` is good.
    band_excellent = models.DecimalField(max_digits=6, decimal_places=2, default=Decimal("80"))
    band_good = models.DecimalField(max_digits=6, decimal_places=2, default=Decimal("60"))
    missing_data = models.CharField(max_length=12, choices=MissingData.choices, default=MissingData.RENORMALIZE)
    min_completeness = models.DecimalField(
        max_digits=4,
        decimal_places=3,
        default=Decimal("0.7"),
        validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text="Share of weight with data below which a score is marked incomplete.",
    )
    rationale = models.TextField(blank=True, help_text="Why these rules; published to partners.")
    effective_from = models.CharField(max_length=PERIOD_KEY_LENGTH, blank=True, help_text="First period it scores.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    proposed_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["scorecard", "-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "scorecard", "number"],
                name="scorecardversion_number_unique",
                violation_error_message="This scorecard already has a version with this number.",
            ),
            models.UniqueConstraint(
                fields=["tenant", "scorecard"],
                condition=models.Q(status="active"),
                name="scorecardversion_one_active",
                violation_error_message="A scorecard has one active version at a time.",
            ),
            models.CheckConstraint(
                condition=models.Q(band_good__lte=models.F("band_excellent")),
                name="scorecardversion_bands_ordered",
                violation_error_message="The “good” threshold must not exceed the “excellent” one.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.scorecard} v{self.number}"

    @property
    def is_editable(self) -> bool:
        return self.status == VersionStatus.DRAFT


class RubricKind(models.TextChoices):
    LINEAR = "linear", "Linear between a floor and a target"
    BANDED = "banded", "Banded thresholds"


class Normalization(models.TextChoices):
    NONE = "none", "None (the raw value)"
    PER_SIZE = "per_size", "Per unit of partner size"
    PERCENTILE = "percentile", "Percentile within segment and period"
    TARGET_ATTAINMENT = "attainment", "Attainment of the segment's target"


class ScorecardItem(TenantOwnedModel):
    """One metric in a version: its weight, how it is normalized, and how it turns into points."""

    version = models.ForeignKey(ScorecardVersion, on_delete=models.CASCADE, related_name="items")
    metric = models.ForeignKey(Metric, on_delete=models.PROTECT, related_name="+")
    weight = models.DecimalField(max_digits=6, decimal_places=2, validators=[MinValueValidator(0)])
    applies_to = models.JSONField(
        default=list, blank=True, help_text="Partner type keys for a plug-in item; empty for a core item (all)."
    )
    normalization = models.CharField(max_length=12, choices=Normalization.choices, default=Normalization.NONE)
    segment_targets = models.JSONField(
        default=dict, blank=True, help_text="For attainment: {partner type key: target value}."
    )
    rubric = models.CharField(max_length=8, choices=RubricKind.choices, default=RubricKind.LINEAR)
    floor = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    target = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    cap = models.DecimalField(
        max_digits=6, decimal_places=2, default=Decimal("100"), help_text="Most points the item can give."
    )
    bands = models.JSONField(
        default=list, blank=True, help_text='For banded rubrics: [{"at_least": 1.2, "points": 100}, ...].'
    )
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["version", "position", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "version", "metric"],
                name="scorecarditem_metric_once_per_version",
                violation_error_message="This metric is already in the version.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.metric} ({self.weight})"

    @property
    def is_core(self) -> bool:
        return not self.applies_to


class ObservationSource(models.TextChoices):
    MANUAL = "manual", "Entered by hand"
    UPLOAD = "upload", "File upload"
    API = "api", "API"
    CORRECTION = "correction", "Approved correction"
    HUBSPOT = "hubspot", "HubSpot"
    SALESFORCE = "salesforce", "Salesforce"
    DERIVED = "derived", "Derived from facts"


class ObservationQuerySet(TenantQuerySet):
    def current(self):
        """The observations in force: those nothing has superseded."""
        return self.filter(superseded_by__isnull=True)


class MetricObservation(TenantOwnedModel):
    """A metric's value for a partner and period. Append-only: a change supersedes, never overwrites."""

    partner = models.ForeignKey("partners.Partner", on_delete=models.CASCADE, related_name="observations")
    metric = models.ForeignKey(Metric, on_delete=models.PROTECT, related_name="observations")
    period = models.CharField(max_length=PERIOD_KEY_LENGTH)
    value = models.DecimalField(max_digits=20, decimal_places=6)
    source = models.CharField(max_length=16, choices=ObservationSource.choices)
    source_ref = models.CharField(max_length=200, blank=True, help_text="The sync run, upload or request.")
    recorded_at = models.DateTimeField(default=timezone.now, editable=False)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    superseded_by = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="supersedes"
    )

    objects = TenantScopedManager.from_queryset(ObservationQuerySet)()
    # Spans tenants: the unscoped escape hatch, declared after ``objects`` so the scoped manager
    # stays the default. No product code reads through it; tests/tenancy/test_rls.py reads every
    # tenant-owned model through it to prove row-level security alone hides other tenants' rows.
    all_tenants = UnscopedManager.from_queryset(ObservationQuerySet)()
    partner_path = "partner"

    class Meta:
        ordering = ["period", "partner", "metric", "recorded_at"]
        indexes = [
            models.Index(
                fields=["tenant", "period", "metric", "partner"],
                condition=models.Q(superseded_by__isnull=True),
                name="observation_current",
            ),
            models.Index(fields=["tenant", "partner", "period"], name="observation_partner_period"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "partner", "metric", "period"],
                condition=models.Q(superseded_by__isnull=True),
                name="observation_one_current_per_key",
                violation_error_message="This partner already has a current value for this metric and period.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.metric} = {self.value} ({self.period})"


class Rating(models.TextChoices):
    EXCELLENT = "excellent", "Excellent"
    GOOD = "good", "Good"
    NEEDS_IMPROVEMENT = "needs_improvement", "Needs improvement"
    INCOMPLETE = "incomplete", "Incomplete data"


class ScoreQuerySet(TenantQuerySet):
    def current(self):
        return self.filter(is_current=True)


class Score(TenantOwnedModel):
    """A partner's computed score for a period under one scorecard version; revisions keep history."""

    partner = models.ForeignKey("partners.Partner", on_delete=models.CASCADE, related_name="scores")
    version = models.ForeignKey(ScorecardVersion, on_delete=models.PROTECT, related_name="scores")
    period = models.CharField(max_length=PERIOD_KEY_LENGTH)
    revision = models.PositiveIntegerField(default=1)
    is_current = models.BooleanField(default=True)
    segment = models.CharField(max_length=50, help_text="The partner type key it was scored in.")
    total = models.DecimalField(max_digits=7, decimal_places=3)
    rating = models.CharField(max_length=20, choices=Rating.choices)
    completeness = models.DecimalField(max_digits=4, decimal_places=3)
    rank = models.PositiveIntegerField(help_text="1 is best within the segment and period.")
    percentile = models.DecimalField(max_digits=6, decimal_places=3)
    change = models.DecimalField(
        max_digits=7, decimal_places=3, null=True, blank=True, help_text="Since the previous period's score."
    )
    components = models.JSONField(default=list, help_text="Per item: raw, normalized, points, weight, contribution.")
    explanation = models.JSONField(default=dict, blank=True, help_text="The change decomposed per metric.")
    flag_regression = models.BooleanField(default=False)
    flag_stagnation = models.BooleanField(default=False)
    flag_improving = models.BooleanField(default=False)
    flag_data_gap = models.BooleanField(default=False)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the observations and rules used.")
    computed_at = models.DateTimeField(default=timezone.now)

    objects = TenantScopedManager.from_queryset(ScoreQuerySet)()
    # Spans tenants: the unscoped escape hatch, declared after ``objects`` so the scoped manager
    # stays the default. No product code reads through it; tests/tenancy/test_rls.py reads every
    # tenant-owned model through it to prove row-level security alone hides other tenants' rows.
    all_tenants = UnscopedManager.from_queryset(ScoreQuerySet)()
    partner_path = "partner"

    class Meta:
        ordering = ["period", "rank"]
        indexes = [
            models.Index(fields=["tenant", "period", "segment", "rank"], name="score_period_segment_rank"),
            models.Index(fields=["tenant", "partner", "period"], name="score_partner_period"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "partner", "period", "revision"],
                name="score_revision_unique",
                violation_error_message="This score revision already exists.",
            ),
            models.UniqueConstraint(
                fields=["tenant", "partner", "period"],
                condition=models.Q(is_current=True),
                name="score_one_current_per_period",
                violation_error_message="A partner has one current score per period.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.partner} {self.period}: {self.total}"


class SegmentBenchmark(TenantOwnedModel):
    """Median and quartiles of a metric within a segment and period, for comparisons."""

    version = models.ForeignKey(ScorecardVersion, on_delete=models.CASCADE, related_name="benchmarks")
    period = models.CharField(max_length=PERIOD_KEY_LENGTH)
    segment = models.CharField(max_length=50)
    metric = models.ForeignKey(Metric, on_delete=models.CASCADE, related_name="+")
    partners = models.PositiveIntegerField(help_text="How many partners had a value.")
    p25 = models.DecimalField(max_digits=20, decimal_places=6)
    median = models.DecimalField(max_digits=20, decimal_places=6)
    p75 = models.DecimalField(max_digits=20, decimal_places=6)
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["period", "segment", "metric"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "version", "period", "segment", "metric"],
                name="benchmark_unique",
                violation_error_message="This benchmark already exists.",
            )
        ]


class RecomputeStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class RecomputeRun(TenantOwnedModel):
    """One recompute of a period's scores, with progress the pages show."""

    version = models.ForeignKey(ScorecardVersion, on_delete=models.CASCADE, related_name="recomputes")
    period = models.CharField(max_length=PERIOD_KEY_LENGTH)
    status = models.CharField(max_length=8, choices=RecomputeStatus.choices, default=RecomputeStatus.QUEUED)
    reason = models.CharField(max_length=200, blank=True)
    partners_total = models.PositiveIntegerField(default=0)
    partners_done = models.PositiveIntegerField(default=0)
    scores_written = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    queued_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-queued_at"]
        indexes = [models.Index(fields=["tenant", "version", "period", "status"], name="recompute_lookup")]

    @property
    def progress(self) -> int:
        """Percent done, 0-100."""
        if self.status == RecomputeStatus.DONE:
            return 100
        if not self.partners_total:
            return 0
        return int(100 * self.partners_done / self.partners_total)


class CheckReview(models.TextChoices):
    UNREVIEWED = "unreviewed", "Not reviewed"
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"


class ObservationCheck(TenantOwnedModel):
    """The data-health check of one observation: how far it lies from the partner's history and segment.

    Written once per observation (observations are append-only, so a new value gets a new check).
    A suspect value is reviewed by a manager: accepted, it counts; rejected, it never counts. Until
    then the tenant's policy (``Tenant.suspect_values_count``) decides. See docs/ingestion.md.
    """

    partner_path = "partner"

    observation = models.OneToOneField(MetricObservation, on_delete=models.CASCADE, related_name="health_check")
    partner = models.ForeignKey("partners.Partner", on_delete=models.CASCADE, related_name="+")
    metric = models.ForeignKey(Metric, on_delete=models.CASCADE, related_name="+")
    period = models.CharField(max_length=PERIOD_KEY_LENGTH)
    suspect = models.BooleanField(default=False)
    reasons = models.JSONField(default=list, blank=True)
    history_z = models.FloatField(null=True, blank=True)
    segment_z = models.FloatField(null=True, blank=True)
    checked_at = models.DateTimeField(default=timezone.now)
    review = models.CharField(max_length=10, choices=CheckReview.choices, default=CheckReview.UNREVIEWED)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.TextField(blank=True)

    class Meta:
        ordering = ["-checked_at", "-pk"]
        indexes = [
            models.Index(
                fields=["tenant", "period", "review"], condition=models.Q(suspect=True), name="check_suspects"
            ),
            models.Index(fields=["tenant", "partner", "period"], name="check_partner_period"),
        ]


class CorrectionKind(models.TextChoices):
    CORRECTION = "correction", "Correction of a value"
    APPEAL = "appeal", "Appeal of a score"


class CorrectionStatus(models.TextChoices):
    OPEN = "open", "Open"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    WITHDRAWN = "withdrawn", "Withdrawn"


def correction_evidence_path(instance: CorrectionRequest, filename: str) -> str:
    """evidence/<tenant id>/<random name><extension>: the partner's own file name is never a path."""
    import uuid
    from pathlib import PurePath

    return f"evidence/{instance.tenant_id}/{uuid.uuid4().hex}{PurePath(filename).suffix.lower()}"


class CorrectionRequestQuerySet(TenantQuerySet):
    def open(self):
        return self.filter(status=CorrectionStatus.OPEN)


class CorrectionRequest(TenantOwnedModel):
    """A partner's request to correct an observed value, or appeal of a score, and its decision.

    Nothing here changes data by itself: an approved correction records the proposed value as a new
    observation (source ``correction``) that supersedes the disputed one, named in
    ``resulting_observation``. Metric, period and the value at the time are copied so that lists
    need no joins and the request reads the same after the data has moved on.
    """

    partner = models.ForeignKey("partners.Partner", on_delete=models.CASCADE, related_name="correction_requests")
    kind = models.CharField(max_length=12, choices=CorrectionKind.choices)
    # RESTRICT, not PROTECT: deleting a partner deletes its requests together with its data.
    observation = models.ForeignKey(
        MetricObservation,
        on_delete=models.RESTRICT,
        null=True,
        blank=True,
        related_name="correction_requests",
        help_text="The value disputed (corrections).",
    )
    score = models.ForeignKey(
        Score, on_delete=models.RESTRICT, null=True, blank=True, related_name="appeals", help_text="The score appealed."
    )
    metric = models.ForeignKey(Metric, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    period = models.CharField(max_length=PERIOD_KEY_LENGTH)
    value_at_request = models.DecimalField(
        max_digits=20, decimal_places=6, help_text="The observed value (corrections) or the total (appeals) then."
    )
    proposed_value = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    reason = models.TextField()
    evidence = models.FileField(upload_to=correction_evidence_path, max_length=255, blank=True)
    evidence_name = models.CharField(max_length=255, blank=True, help_text="The file's name as the partner sent it.")
    evidence_type = models.CharField(max_length=100, blank=True, help_text="Content type found in the file itself.")
    evidence_size = models.PositiveIntegerField(null=True, blank=True, help_text="Bytes.")
    status = models.CharField(max_length=10, choices=CorrectionStatus.choices, default=CorrectionStatus.OPEN)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    requested_at = models.DateTimeField(default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True, help_text="When it was decided or withdrawn.")
    decision_comment = models.TextField(blank=True)
    resulting_observation = models.ForeignKey(
        MetricObservation, on_delete=models.RESTRICT, null=True, blank=True, related_name="+"
    )

    objects = TenantScopedManager.from_queryset(CorrectionRequestQuerySet)()
    # Spans tenants: the unscoped escape hatch, declared after ``objects`` so the scoped manager
    # stays the default. No product code reads through it; tests/tenancy/test_rls.py reads every
    # tenant-owned model through it to prove row-level security alone hides other tenants' rows.
    all_tenants = UnscopedManager.from_queryset(CorrectionRequestQuerySet)()
    partner_path = "partner"

    class Meta:
        ordering = ["requested_at", "pk"]
        indexes = [
            models.Index(fields=["tenant", "status", "requested_at"], name="correction_queue"),
            models.Index(fields=["tenant", "partner", "requested_at"], name="correction_partner"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "observation"],
                condition=models.Q(status="open", observation__isnull=False),
                name="correction_one_open_per_observation",
                violation_error_message="There is already an open correction request for this value.",
            ),
            models.UniqueConstraint(
                fields=["tenant", "score"],
                condition=models.Q(status="open", score__isnull=False),
                name="correction_one_open_appeal_per_score",
                violation_error_message="There is already an open appeal of this score.",
            ),
            models.CheckConstraint(
                condition=models.Q(
                    kind="correction",
                    observation__isnull=False,
                    score__isnull=True,
                    metric__isnull=False,
                    proposed_value__isnull=False,
                )
                | models.Q(kind="appeal", observation__isnull=True, score__isnull=False, proposed_value__isnull=True),
                name="correction_names_what_it_disputes",
                violation_error_message="A correction names an observation and a proposed value; an appeal a score.",
            ),
            models.CheckConstraint(
                condition=~models.Q(status="rejected") | ~models.Q(decision_comment=""),
                name="correction_rejection_explained",
                violation_error_message="A rejection says why.",
            ),
            models.CheckConstraint(
                condition=models.Q(status="open", decided_at__isnull=True)
                | (~models.Q(status="open") & models.Q(decided_at__isnull=False)),
                name="correction_decided_when_closed",
                violation_error_message="A closed request records when it was closed.",
            ),
        ]

    def __str__(self) -> str:
        what = self.metric.name if self.kind == CorrectionKind.CORRECTION and self.metric_id else "score"
        return f"{self.get_kind_display()} #{self.pk}: {what} {self.period}"

    @property
    def is_open(self) -> bool:
        return self.status == CorrectionStatus.OPEN
