"""What the actions API reads and accepts: action items with their history, remediation plans.

Escalations (who was asked to sponsor an action, and why) are the program's own: they are absent
from what partner users read, as is the score data that prompted a plan.
"""

from __future__ import annotations

from rest_framework import serializers

from actions.models import (
    ActionItem,
    ActionTarget,
    ActionUpdate,
    Checkpoint,
    CheckpointOutcome,
    Comparison,
    Milestone,
    Priority,
    RemediationPlan,
    RootCause,
)

LARGEST_ID = 2**63 - 1
MAX_TEXT = 20_000
# Kinds and statuses are plain text in the schema: several models name different choice sets so.
STATUS_HELP = "`open`, `in_progress`, `blocked`, `done` or `cancelled`."


def _name(user) -> str | None:
    return (user.get_full_name() or user.email) if user is not None else None


class PartnerShapedSerializer(serializers.ModelSerializer):
    """Drops the fields named in ``Meta.internal_fields`` when a partner user reads."""

    def get_fields(self):
        fields = super().get_fields()
        membership = self.context.get("membership")
        if membership is not None and membership.is_partner_user:
            for name in getattr(self.Meta, "internal_fields", ()):
                fields.pop(name, None)
        return fields


class TargetSerializer(serializers.ModelSerializer):
    metric = serializers.CharField(source="metric.key", read_only=True)

    class Meta:
        model = ActionTarget
        fields = ["metric", "target_value"]
        read_only_fields = fields


class ActionUpdateSerializer(serializers.ModelSerializer):
    kind = serializers.CharField(read_only=True, help_text="`comment`, `progress`, `status` or `escalation`.")
    status_from = serializers.CharField(read_only=True, help_text=STATUS_HELP)
    status_to = serializers.CharField(read_only=True, help_text=STATUS_HELP)
    author_name = serializers.SerializerMethodField()

    class Meta:
        model = ActionUpdate
        fields = ["id", "kind", "body", "status_from", "status_to", "progress", "author_name", "created_at"]
        read_only_fields = fields

    def get_author_name(self, update: ActionUpdate) -> str | None:
        return _name(update.author)


ACTION_FIELDS = [
    "id",
    "partner",
    "partner_name",
    "review",
    "plan",
    "title",
    "description",
    "owner",
    "owner_name",
    "due_on",
    "priority",
    "root_cause",
    "impact_estimate",
    "success_criteria",
    "resources",
    "contingency",
    "kind",
    "status",
    "progress",
    "targets",
    "created_at",
    "updated_at",
    "completed_at",
    "escalated_to",
    "escalated_at",
    "escalation_reason",
]


class ActionItemSerializer(PartnerShapedSerializer):
    partner_name = serializers.CharField(source="partner.name", read_only=True)
    owner_name = serializers.SerializerMethodField()
    kind = serializers.CharField(read_only=True, help_text="`quick_win` or `mid_term`.")
    status = serializers.CharField(read_only=True, help_text=STATUS_HELP)
    targets = TargetSerializer(many=True, read_only=True)

    class Meta:
        model = ActionItem
        fields = ACTION_FIELDS
        read_only_fields = fields
        internal_fields = ("escalated_to", "escalated_at", "escalation_reason")

    def get_owner_name(self, action: ActionItem) -> str | None:
        return _name(action.owner)


class ActionItemDetailSerializer(ActionItemSerializer):
    """One action with its history: comments, progress reports, status changes and escalations."""

    history = serializers.SerializerMethodField()

    class Meta(ActionItemSerializer.Meta):
        fields = [*ACTION_FIELDS, "history"]
        read_only_fields = fields

    def get_history(self, action: ActionItem) -> list[dict]:
        updates = self.context.get("history", [])
        membership = self.context.get("membership")
        if membership is not None and membership.is_partner_user:
            updates = [update for update in updates if update.kind != "escalation"]
        return ActionUpdateSerializer(updates, many=True).data


class TargetInputSerializer(serializers.Serializer):
    metric = serializers.CharField(max_length=100, help_text="A metric's key.")
    target_value = serializers.CharField(max_length=40, allow_null=True, required=False)


class ActionInputSerializer(serializers.Serializer):
    """An action's fields; on create `partner`, `title` and `due_on` are required."""

    partner = serializers.IntegerField(min_value=1, max_value=LARGEST_ID, required=False)
    title = serializers.CharField(max_length=400, allow_blank=True, required=False)
    description = serializers.CharField(max_length=MAX_TEXT, allow_blank=True, required=False)
    owner = serializers.IntegerField(min_value=1, max_value=LARGEST_ID, allow_null=True, required=False)
    due_on = serializers.DateField(required=False)
    priority = serializers.ChoiceField(choices=Priority.choices, required=False)
    root_cause = serializers.ChoiceField(choices=RootCause.choices, required=False)
    impact_estimate = serializers.CharField(max_length=MAX_TEXT, allow_blank=True, required=False)
    success_criteria = serializers.CharField(max_length=MAX_TEXT, allow_blank=True, required=False)
    resources = serializers.CharField(max_length=MAX_TEXT, allow_blank=True, required=False)
    contingency = serializers.CharField(max_length=MAX_TEXT, allow_blank=True, required=False)
    kind = serializers.CharField(max_length=10, required=False, help_text="`quick_win` or `mid_term`.")
    review = serializers.IntegerField(min_value=1, max_value=LARGEST_ID, allow_null=True, required=False)
    plan = serializers.IntegerField(min_value=1, max_value=LARGEST_ID, allow_null=True, required=False)
    targets = TargetInputSerializer(many=True, required=False)


class ActionTransitionSerializer(serializers.Serializer):
    to = serializers.CharField(max_length=20, help_text="open, in_progress, blocked, done or cancelled.")
    note = serializers.CharField(max_length=MAX_TEXT, allow_blank=True, required=False)


class ActionCommentSerializer(serializers.Serializer):
    body = serializers.CharField(max_length=MAX_TEXT, allow_blank=True)


class ActionProgressSerializer(serializers.Serializer):
    percent = serializers.IntegerField(min_value=0, max_value=100)
    note = serializers.CharField(max_length=MAX_TEXT, allow_blank=True, required=False)


class ActionEscalateSerializer(serializers.Serializer):
    to = serializers.IntegerField(min_value=1, max_value=LARGEST_ID, help_text="An executive's user id.")
    reason = serializers.CharField(max_length=MAX_TEXT, allow_blank=True)


# --- Remediation plans -------------------------------------------------------------------------------------------


class MilestoneSerializer(serializers.ModelSerializer):
    status = serializers.CharField(read_only=True, help_text="`pending`, `met` or `missed`.")
    metric = serializers.CharField(source="metric.key", read_only=True)

    class Meta:
        model = Milestone
        fields = [
            "id",
            "title",
            "due_on",
            "period",
            "metric",
            "comparison",
            "target_value",
            "status",
            "observed_value",
            "evaluated_at",
        ]
        read_only_fields = fields


class CheckpointSerializer(serializers.ModelSerializer):
    class Meta:
        model = Checkpoint
        fields = ["id", "held_on", "outcome", "note", "created_at"]
        read_only_fields = fields


class RemediationPlanSerializer(PartnerShapedSerializer):
    partner_name = serializers.CharField(source="partner.name", read_only=True)
    leader_name = serializers.SerializerMethodField()
    status = serializers.CharField(read_only=True, help_text="`suggested`, `active`, `completed` or `cancelled`.")
    milestones = MilestoneSerializer(many=True, read_only=True)
    checkpoints = CheckpointSerializer(many=True, read_only=True)

    class Meta:
        model = RemediationPlan
        fields = [
            "id",
            "partner",
            "partner_name",
            "status",
            "trigger",
            "trigger_period",
            "trigger_detail",
            "root_cause",
            "root_cause_analysis",
            "leader",
            "leader_name",
            "opened_at",
            "activated_at",
            "closed_at",
            "closing_note",
            "milestones",
            "checkpoints",
        ]
        read_only_fields = fields
        internal_fields = ("trigger_detail",)

    def get_leader_name(self, plan: RemediationPlan) -> str | None:
        return _name(plan.leader)


class PlanActivateSerializer(serializers.Serializer):
    leader = serializers.IntegerField(min_value=1, max_value=LARGEST_ID, help_text="The accountable person's id.")
    root_cause = serializers.ChoiceField(choices=RootCause.choices)
    root_cause_analysis = serializers.CharField(max_length=MAX_TEXT, allow_blank=True)


class PlanCloseSerializer(serializers.Serializer):
    status = serializers.CharField(max_length=12, help_text="`completed` or `cancelled`.")
    note = serializers.CharField(max_length=MAX_TEXT, allow_blank=True, required=False)


class MilestoneInputSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=400, allow_blank=True)
    due_on = serializers.DateField()
    period = serializers.CharField(max_length=20, help_text="The period whose value is checked, e.g. FY2026-Q4.")
    metric = serializers.CharField(max_length=100, help_text="A metric's key.")
    target_value = serializers.CharField(max_length=40)
    comparison = serializers.ChoiceField(choices=Comparison.choices, default=Comparison.AT_LEAST)


class CheckpointInputSerializer(serializers.Serializer):
    held_on = serializers.DateField()
    outcome = serializers.ChoiceField(choices=CheckpointOutcome.choices)
    note = serializers.CharField(max_length=MAX_TEXT, allow_blank=True, required=False)
