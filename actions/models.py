"""Actions: action items with owners and due dates, reminders, escalations, and remediation plans.

An action item has an owner (an internal user or a user of the partner), a due date and a
measurable target; it is followed up through updates until done or cancelled. Overdue items are
reminded once per due date (:class:`ActionReminder` holds the "once"), and critical or long-overdue
ones can be escalated to an executive sponsor. A partner rated "needs improvement" or regressing gets
a remediation plan: a root-cause analysis, an accountable leader, milestones with target metric
values checked each period against what was observed, and checkpoints.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from partnerhub.tenancy.managers import TenantQuerySet, TenantScopedManager, UnscopedManager
from partnerhub.tenancy.models import TenantOwnedModel
from scorecards.models import PERIOD_KEY_LENGTH


class RootCause(models.TextChoices):
    CAPABILITY_GAP = "capability_gap", "Capability gap"
    MISALIGNED_INCENTIVES = "misaligned_incentives", "Misaligned incentives"
    GTM_MESSAGING = "gtm_messaging", "Go-to-market messaging"
    ENABLEMENT = "enablement", "Enablement resources"
    CHANNEL_CONFLICT = "channel_conflict", "Channel conflict"
    DATA_QUALITY = "data_quality", "Data quality"
    OTHER = "other", "Other"


class Priority(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


class ActionKind(models.TextChoices):
    QUICK_WIN = "quick_win", "Quick win"
    MID_TERM = "mid_term", "Mid-term"


class ActionStatus(models.TextChoices):
    OPEN = "open", "Open"
    IN_PROGRESS = "in_progress", "In progress"
    BLOCKED = "blocked", "Blocked"
    DONE = "done", "Done"
    CANCELLED = "cancelled", "Cancelled"


ACTION_TRANSITIONS: dict[str, tuple[str, ...]] = {
    ActionStatus.OPEN: (ActionStatus.IN_PROGRESS, ActionStatus.BLOCKED, ActionStatus.DONE, ActionStatus.CANCELLED),
    ActionStatus.IN_PROGRESS: (ActionStatus.BLOCKED, ActionStatus.DONE, ActionStatus.CANCELLED, ActionStatus.OPEN),
    ActionStatus.BLOCKED: (ActionStatus.IN_PROGRESS, ActionStatus.CANCELLED, ActionStatus.OPEN),
    ActionStatus.DONE: (ActionStatus.IN_PROGRESS,),  # reopened when the result did not hold
    ActionStatus.CANCELLED: (),
}
FINISHED_STATUSES = frozenset({ActionStatus.DONE, ActionStatus.CANCELLED})


class ActionItemQuerySet(TenantQuerySet):
    def unfinished(self):
        return self.exclude(status__in=FINISHED_STATUSES)

    def overdue(self, today):
        return self.unfinished().filter(due_on__lt=today)


class ActionItem(TenantOwnedModel):
    """An improvement with an owner, a due date, a measurable target, and its follow-up."""

    partner = models.ForeignKey("partners.Partner", on_delete=models.CASCADE, related_name="action_items")
    review = models.ForeignKey(
        "reviews.Review", on_delete=models.SET_NULL, null=True, blank=True, related_name="action_items"
    )
    plan = models.ForeignKey(
        "actions.RemediationPlan", on_delete=models.SET_NULL, null=True, blank=True, related_name="action_items"
    )
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="An internal user, or a user of the partner.",
    )
    due_on = models.DateField()
    priority = models.CharField(max_length=8, choices=Priority.choices, default=Priority.MEDIUM)
    root_cause = models.CharField(max_length=24, choices=RootCause.choices, default=RootCause.OTHER)
    impact_estimate = models.TextField(blank=True, help_text="What changes if it is done, and by how much.")
    success_criteria = models.TextField(blank=True)
    resources = models.TextField(blank=True, help_text="People, budget and material it needs.")
    contingency = models.TextField(blank=True, help_text="What happens if it slips.")
    kind = models.CharField(max_length=10, choices=ActionKind.choices, default=ActionKind.QUICK_WIN)
    status = models.CharField(max_length=12, choices=ActionStatus.choices, default=ActionStatus.OPEN)
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent done, as last reported.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    escalated_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The executive sponsor it was escalated to.",
    )
    escalated_at = models.DateTimeField(null=True, blank=True)
    escalation_reason = models.TextField(blank=True)

    objects = TenantScopedManager.from_queryset(ActionItemQuerySet)()
    # Spans tenants: the unscoped escape hatch, declared after ``objects`` so the scoped manager
    # stays the default. No product code reads through it; tests/tenancy/test_rls.py reads every
    # tenant-owned model through it to prove row-level security alone hides other tenants' rows.
    all_tenants = UnscopedManager.from_queryset(ActionItemQuerySet)()
    partner_path = "partner"

    class Meta:
        ordering = ["due_on", "pk"]
        indexes = [
            models.Index(fields=["tenant", "status", "due_on"], name="action_status_due"),
            models.Index(fields=["tenant", "owner", "status", "due_on"], name="action_owner_queue"),
            models.Index(fields=["tenant", "partner", "status", "due_on"], name="action_partner_queue"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(progress__lte=100),
                name="action_progress_percent",
                violation_error_message="Progress is a percentage, 0 to 100.",
            ),
            models.CheckConstraint(
                condition=~models.Q(status=ActionStatus.DONE) | models.Q(completed_at__isnull=False),
                name="action_done_when_completed",
                violation_error_message="A done action records when it was completed.",
            ),
            models.CheckConstraint(
                condition=models.Q(escalated_at__isnull=True) | ~models.Q(escalation_reason=""),
                name="action_escalation_explained",
                violation_error_message="An escalation says why.",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    def is_overdue(self, today) -> bool:
        return not self.is_finished and self.due_on < today


class ActionTarget(TenantOwnedModel):
    """A metric an action item means to move, with the value it aims for."""

    action = models.ForeignKey(ActionItem, on_delete=models.CASCADE, related_name="targets")
    metric = models.ForeignKey("scorecards.Metric", on_delete=models.PROTECT, related_name="+")
    target_value = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)

    partner_path = "action__partner"

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "action", "metric"],
                name="action_target_once",
                violation_error_message="This action already targets this metric.",
            ),
        ]


class UpdateKind(models.TextChoices):
    COMMENT = "comment", "Comment"
    PROGRESS = "progress", "Progress update"
    STATUS = "status", "Status change"
    ESCALATION = "escalation", "Escalation"


class ActionUpdate(TenantOwnedModel):
    """A comment, progress report, status change or escalation on an action item, in order."""

    action = models.ForeignKey(ActionItem, on_delete=models.CASCADE, related_name="updates")
    kind = models.CharField(max_length=10, choices=UpdateKind.choices)
    body = models.TextField(blank=True)
    status_from = models.CharField(max_length=12, choices=ActionStatus.choices, blank=True)
    status_to = models.CharField(max_length=12, choices=ActionStatus.choices, blank=True)
    progress = models.PositiveSmallIntegerField(null=True, blank=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    partner_path = "action__partner"

    class Meta:
        ordering = ["created_at", "pk"]
        indexes = [models.Index(fields=["tenant", "action", "created_at"], name="action_update_history")]


class ActionReminder(TenantOwnedModel):
    """One overdue reminder sent to an action's owner for one due date: the row makes it once."""

    action = models.ForeignKey(ActionItem, on_delete=models.CASCADE, related_name="reminders")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    due_on = models.DateField(help_text="The due date it reminded of; a new due date is reminded again.")
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-sent_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "action", "owner", "due_on"],
                name="reminder_once_per_due_date",
                violation_error_message="This reminder was already sent.",
            ),
        ]


class PlanTrigger(models.TextChoices):
    NEEDS_IMPROVEMENT = "needs_improvement", "Rated “needs improvement”"
    REGRESSING = "regressing", "Flagged as regressing"
    MANUAL = "manual", "Opened by a manager"


class PlanStatus(models.TextChoices):
    SUGGESTED = "suggested", "Suggested"
    ACTIVE = "active", "Active"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"


OPEN_PLAN_STATUSES = (PlanStatus.SUGGESTED, PlanStatus.ACTIVE)


class RemediationPlanQuerySet(TenantQuerySet):
    def open(self):
        return self.filter(status__in=OPEN_PLAN_STATUSES)


class RemediationPlan(TenantOwnedModel):
    """A plan to bring a struggling partner back: root causes, a leader, milestones and checkpoints."""

    partner = models.ForeignKey("partners.Partner", on_delete=models.CASCADE, related_name="remediation_plans")
    status = models.CharField(max_length=10, choices=PlanStatus.choices, default=PlanStatus.SUGGESTED)
    trigger = models.CharField(max_length=20, choices=PlanTrigger.choices)
    trigger_period = models.CharField(max_length=PERIOD_KEY_LENGTH, help_text="The period whose score prompted it.")
    trigger_detail = models.JSONField(default=dict, blank=True, help_text="The score, rating and flags then.")
    root_cause = models.CharField(max_length=24, choices=RootCause.choices, blank=True)
    root_cause_analysis = models.TextField(blank=True)
    leader = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The person accountable for the plan.",
    )
    opened_at = models.DateTimeField(default=timezone.now)
    activated_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    closing_note = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    objects = TenantScopedManager.from_queryset(RemediationPlanQuerySet)()
    # Spans tenants: the unscoped escape hatch, declared after ``objects`` so the scoped manager
    # stays the default. No product code reads through it; tests/tenancy/test_rls.py reads every
    # tenant-owned model through it to prove row-level security alone hides other tenants' rows.
    all_tenants = UnscopedManager.from_queryset(RemediationPlanQuerySet)()
    partner_path = "partner"

    class Meta:
        ordering = ["-opened_at", "-pk"]
        indexes = [models.Index(fields=["tenant", "status", "opened_at"], name="plan_status")]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "partner"],
                condition=models.Q(status__in=OPEN_PLAN_STATUSES),
                name="plan_one_open_per_partner",
                violation_error_message="This partner already has an open remediation plan.",
            ),
            models.CheckConstraint(
                condition=~models.Q(status=PlanStatus.ACTIVE) | models.Q(leader__isnull=False),
                name="plan_active_has_leader",
                violation_error_message="An active plan has an accountable leader.",
            ),
        ]

    def __str__(self) -> str:
        return f"Remediation plan for {self.partner}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_PLAN_STATUSES


class Comparison(models.TextChoices):
    AT_LEAST = "at_least", "At least"
    AT_MOST = "at_most", "At most"


class MilestoneStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    MET = "met", "Met"
    MISSED = "missed", "Missed"


class Milestone(TenantOwnedModel):
    """A dated step of a plan with a target value for a metric, checked against the period observed."""

    plan = models.ForeignKey(RemediationPlan, on_delete=models.CASCADE, related_name="milestones")
    title = models.CharField(max_length=200)
    due_on = models.DateField()
    period = models.CharField(max_length=PERIOD_KEY_LENGTH, help_text="The period whose value is checked.")
    metric = models.ForeignKey("scorecards.Metric", on_delete=models.PROTECT, related_name="+")
    comparison = models.CharField(max_length=8, choices=Comparison.choices, default=Comparison.AT_LEAST)
    target_value = models.DecimalField(max_digits=20, decimal_places=6)
    status = models.CharField(max_length=8, choices=MilestoneStatus.choices, default=MilestoneStatus.PENDING)
    observed_value = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    evaluated_at = models.DateTimeField(null=True, blank=True)

    partner_path = "plan__partner"

    class Meta:
        ordering = ["due_on", "pk"]
        indexes = [models.Index(fields=["tenant", "status", "period"], name="milestone_due_check")]


class CheckpointOutcome(models.TextChoices):
    ON_TRACK = "on_track", "On track"
    AT_RISK = "at_risk", "At risk"
    OFF_TRACK = "off_track", "Off track"


class Checkpoint(TenantOwnedModel):
    """A dated look at a plan's progress: on track, at risk or off track, and why."""

    plan = models.ForeignKey(RemediationPlan, on_delete=models.CASCADE, related_name="checkpoints")
    held_on = models.DateField()
    outcome = models.CharField(max_length=10, choices=CheckpointOutcome.choices)
    note = models.TextField(blank=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    partner_path = "plan__partner"

    class Meta:
        ordering = ["held_on", "pk"]
