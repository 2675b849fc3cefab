"""Reviews: cadence rules, review cycles, and the review workspace (pre-read, pillars, voice, notes, decisions).

A cycle ("FY2026-Q3 business reviews") lists the partners due for one kind of review in one period.
Each partner due gets a :class:`Review`; within a manager's capacity the review is *detailed*
(a meeting with the whole workspace), beyond it the partner is *monitored*, ranked by its score's
flags so the partners who most need a deep review get one. A review moves
scheduled -> preparing -> in meeting -> finalized -> shared with the partner; the pre-read is
frozen when it starts, and a finalized review never changes: an amendment is a new revision.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from partnerhub.partners.models import LifecycleStage
from partnerhub.tenancy.managers import TenantQuerySet, TenantScopedManager, UnscopedManager
from partnerhub.tenancy.models import TenantOwnedModel
from scorecards.models import PERIOD_KEY_LENGTH


class ReviewKind(models.TextChoices):
    CHECK_IN = "check_in", "Monthly check-in"
    QBR = "qbr", "Quarterly business review"
    DEEP_DIVE = "deep_dive", "Biannual deep dive"


class CadenceRule(TenantOwnedModel):
    """Which review a segment gets: partner type and lifecycle stage (and tier) -> a kind of review.

    A blank partner type, stage or tier matches any; the most specific rule that matches a partner
    wins (ties go to the lower ``position``).
    """

    partner_type = models.ForeignKey(
        "partners.PartnerType", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    lifecycle_stage = models.CharField(max_length=16, choices=LifecycleStage.choices, blank=True)
    tier = models.CharField(max_length=50, blank=True, help_text="A recognition tier's key; blank matches any.")
    kind = models.CharField(max_length=12, choices=ReviewKind.choices)
    position = models.PositiveSmallIntegerField(default=0)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["position", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "partner_type", "lifecycle_stage", "tier", "kind"],
                nulls_distinct=False,
                name="cadence_rule_unique",
                violation_error_message="A rule for this segment and kind of review already exists.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.partner_type or 'any type'} / {self.lifecycle_stage or 'any stage'}"


class CycleStatus(models.TextChoices):
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"


class ReviewCycle(TenantOwnedModel):
    """The reviews of one kind due in one period, with each manager's capacity for detailed reviews."""

    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=12, choices=ReviewKind.choices)
    period = models.CharField(max_length=PERIOD_KEY_LENGTH, help_text="The period reviewed, e.g. FY2026-Q3.")
    opens_on = models.DateField()
    due_on = models.DateField(help_text="Reviews are due by this day.")
    capacity_per_manager = models.PositiveSmallIntegerField(
        default=8, help_text="Detailed reviews each manager runs; partners beyond it are monitored."
    )
    status = models.CharField(max_length=8, choices=CycleStatus.choices, default=CycleStatus.OPEN)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opens_on", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "kind", "period"],
                name="cycle_one_per_kind_and_period",
                violation_error_message="There is already a cycle of this kind for this period.",
            ),
            models.CheckConstraint(
                condition=models.Q(due_on__gte=models.F("opens_on")),
                name="cycle_due_after_open",
                violation_error_message="A cycle is due on or after the day it opens.",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ReviewState(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    PREPARING = "preparing", "Preparing"
    IN_MEETING = "in_meeting", "In meeting"
    FINALIZED = "finalized", "Finalized"
    SHARED = "shared", "Shared with partner"


# The moves a review may make; anything else is refused with the message in services.
REVIEW_TRANSITIONS: dict[str, tuple[str, ...]] = {
    ReviewState.SCHEDULED: (ReviewState.PREPARING,),
    ReviewState.PREPARING: (ReviewState.IN_MEETING, ReviewState.SCHEDULED),
    ReviewState.IN_MEETING: (ReviewState.FINALIZED,),
    ReviewState.FINALIZED: (ReviewState.SHARED,),
    ReviewState.SHARED: (),
}
CLOSED_STATES = frozenset({ReviewState.FINALIZED, ReviewState.SHARED})


class ReviewTrack(models.TextChoices):
    DETAILED = "detailed", "Detailed review"
    MONITORED = "monitored", "Monitored"


class ReviewQuerySet(TenantQuerySet):
    def current(self):
        """The latest revision of each review (amendments supersede the revision they amend)."""
        return self.filter(superseded_by__isnull=True)

    def open(self):
        return self.exclude(state__in=CLOSED_STATES)


class Review(TenantOwnedModel):
    """One partner's review in a cycle: the workspace a manager runs the meeting in."""

    cycle = models.ForeignKey(ReviewCycle, on_delete=models.CASCADE, related_name="reviews")
    partner = models.ForeignKey("partners.Partner", on_delete=models.CASCADE, related_name="reviews")
    manager = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    kind = models.CharField(max_length=12, choices=ReviewKind.choices)
    period = models.CharField(max_length=PERIOD_KEY_LENGTH)
    track = models.CharField(max_length=10, choices=ReviewTrack.choices, default=ReviewTrack.DETAILED)
    priority = models.PositiveIntegerField(
        default=0, help_text="Rank by need within the manager's partners: 1 needs a deep review most."
    )
    priority_reasons = models.JSONField(default=list, blank=True, help_text="Why it ranks where it does.")
    state = models.CharField(max_length=12, choices=ReviewState.choices, default=ReviewState.SCHEDULED)
    due_on = models.DateField()
    meeting_at = models.DateTimeField(null=True, blank=True)
    revision = models.PositiveSmallIntegerField(default=1)
    amends = models.OneToOneField(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="superseded_by",
        help_text="The finalized revision this one amends.",
    )
    amendment_reason = models.TextField(blank=True)
    pre_read = models.JSONField(default=dict, blank=True, help_text="Frozen when the review starts preparing.")
    pre_read_frozen_at = models.DateTimeField(null=True, blank=True)
    summary = models.TextField(blank=True, help_text="Shared with the partner once the review is shared.")
    started_at = models.DateTimeField(null=True, blank=True)
    meeting_started_at = models.DateTimeField(null=True, blank=True)
    finalized_at = models.DateTimeField(null=True, blank=True)
    finalized_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    shared_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = TenantScopedManager.from_queryset(ReviewQuerySet)()
    # Spans tenants: the unscoped escape hatch, declared after ``objects`` so the scoped manager
    # stays the default. No product code reads through it; tests/tenancy/test_rls.py reads every
    # tenant-owned model through it to prove row-level security alone hides other tenants' rows.
    all_tenants = UnscopedManager.from_queryset(ReviewQuerySet)()
    partner_path = "partner"

    class Meta:
        ordering = ["due_on", "priority", "pk"]
        indexes = [
            models.Index(fields=["tenant", "manager", "state", "due_on"], name="review_manager_queue"),
            models.Index(fields=["tenant", "partner", "period"], name="review_partner_period"),
            models.Index(fields=["tenant", "cycle", "track", "priority"], name="review_cycle_rank"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "cycle", "partner", "revision"],
                name="review_revision_unique",
                violation_error_message="This partner already has this revision of a review in the cycle.",
            ),
            models.CheckConstraint(
                condition=models.Q(revision=1, amends__isnull=True) | models.Q(revision__gt=1, amends__isnull=False),
                name="review_amendment_names_its_revision",
                violation_error_message="An amendment names the revision it amends, and only an amendment does.",
            ),
            models.CheckConstraint(
                condition=~models.Q(state__in=[ReviewState.FINALIZED, ReviewState.SHARED])
                | models.Q(finalized_at__isnull=False),
                name="review_finalized_when_closed",
                violation_error_message="A finalized review records when it was finalized.",
            ),
        ]

    def __str__(self) -> str:
        suffix = f" (revision {self.revision})" if self.revision > 1 else ""
        return f"{self.partner} — {self.get_kind_display()} {self.period}{suffix}"

    @property
    def is_closed(self) -> bool:
        return self.state in CLOSED_STATES


class CollaborationPrompt(TenantOwnedModel):
    """A question of the collaboration-health pillar, rated 1-5 in every review."""

    key = models.SlugField(max_length=50)
    label = models.CharField(max_length=120)
    help_text = models.CharField(max_length=255, blank=True)
    position = models.PositiveSmallIntegerField(default=0)
    built_in = models.BooleanField(default=False, help_text="One of the standard prompts every workspace has.")
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["position", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "key"], name="prompt_key_unique", violation_error_message="This prompt exists."
            ),
        ]

    def __str__(self) -> str:
        return self.label


class CollaborationRating(TenantOwnedModel):
    """A review's 1-5 rating of one collaboration prompt, with a comment."""

    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="ratings")
    prompt = models.ForeignKey(CollaborationPrompt, on_delete=models.PROTECT, related_name="+")
    score = models.PositiveSmallIntegerField()
    comment = models.TextField(blank=True)
    rated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    rated_at = models.DateTimeField(default=timezone.now)

    partner_path = "review__partner"

    class Meta:
        ordering = ["prompt__position", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "review", "prompt"],
                name="rating_one_per_prompt",
                violation_error_message="This prompt is already rated in this review.",
            ),
            models.CheckConstraint(
                condition=models.Q(score__gte=1, score__lte=5),
                name="rating_one_to_five",
                violation_error_message="Ratings go from 1 to 5.",
            ),
        ]


class CommitmentParty(models.TextChoices):
    VENDOR = "vendor", "We commit"
    PARTNER = "partner", "The partner commits"


class DevelopmentCommitment(TenantOwnedModel):
    """A development commitment made in a review, by us or by the partner; the next pre-read recalls it."""

    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="commitments")
    party = models.CharField(max_length=8, choices=CommitmentParty.choices)
    text = models.TextField()
    due_on = models.DateField(null=True, blank=True)
    action_item = models.ForeignKey(
        "actions.ActionItem",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The action item that follows it up, if any.",
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    partner_path = "review__partner"

    class Meta:
        ordering = ["created_at", "pk"]


class PartnerVoice(TenantOwnedModel):
    """What the partner brings to a review, submitted through the portal before the meeting."""

    review = models.OneToOneField(Review, on_delete=models.CASCADE, related_name="voice")
    wins = models.TextField(blank=True)
    lessons_learned = models.TextField(blank=True)
    needs = models.TextField(blank=True)
    asks = models.TextField(blank=True)
    forecast = models.TextField(blank=True, help_text="The partner's forecast for the coming period.")
    risks = models.TextField(blank=True)
    submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    submitted_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    partner_path = "review__partner"

    class Meta:
        ordering = ["submitted_at", "pk"]


class NoteVisibility(models.TextChoices):
    INTERNAL = "internal", "Internal"
    SHARED = "shared", "Shared with the partner"


class MeetingNote(TenantOwnedModel):
    """A note taken in a review; internal notes are never shown or serialized to partner users."""

    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="notes")
    body = models.TextField()
    visibility = models.CharField(max_length=8, choices=NoteVisibility.choices, default=NoteVisibility.INTERNAL)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    partner_path = "review__partner"

    class Meta:
        ordering = ["created_at", "pk"]
        indexes = [models.Index(fields=["tenant", "review", "visibility"], name="note_review_visibility")]


class ReviewDecision(TenantOwnedModel):
    """An entry of a review's decision log: what was decided, why, and by whom."""

    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="decisions")
    decision = models.TextField()
    rationale = models.TextField()
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    decided_by_name = models.CharField(
        max_length=200, blank=True, help_text="Who decided, when not a user (a partner's executive, say)."
    )
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    partner_path = "review__partner"

    class Meta:
        ordering = ["created_at", "pk"]
