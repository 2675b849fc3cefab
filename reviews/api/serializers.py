"""What the reviews API reads and accepts: cadence rules, cycles, reviews and their workspace.

Partner users get the partner's shape of a review: no manager, track, ranking by need, pre-read or
internal notes (those are never even loaded for them; see ``reviews.selectors``).
"""

from __future__ import annotations

from rest_framework import serializers

from reviews.models import (
    CadenceRule,
    CollaborationRating,
    CommitmentParty,
    DevelopmentCommitment,
    MeetingNote,
    NoteVisibility,
    PartnerVoice,
    Review,
    ReviewCycle,
    ReviewDecision,
    ReviewState,
)
from reviews.services.workspace import MAX_SHORT_TEXT

LARGEST_ID = 2**63 - 1
MAX_TEXT = 8000
# Kinds and statuses are plain text in the schema: several models name different choice sets so.
KIND_HELP = "`check_in`, `qbr` or `deep_dive`."


def _name(user) -> str | None:
    return (user.get_full_name() or user.email) if user is not None else None


# --- Cadence rules and cycles --------------------------------------------------------------------------------


class CadenceRuleSerializer(serializers.ModelSerializer):
    kind = serializers.CharField(read_only=True, help_text=KIND_HELP)
    partner_type_key = serializers.CharField(source="partner_type.key", read_only=True, allow_null=True, default=None)

    class Meta:
        model = CadenceRule
        fields = ["id", "partner_type", "partner_type_key", "lifecycle_stage", "tier", "kind", "position", "active"]
        read_only_fields = fields


class CadenceRuleInputSerializer(serializers.Serializer):
    """A rule's segment and kind of review; a blank partner type or stage matches any."""

    partner_type = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=LARGEST_ID, help_text="A partner type's id, or null."
    )
    lifecycle_stage = serializers.CharField(required=False, allow_blank=True, max_length=16)
    tier = serializers.CharField(
        required=False, allow_blank=True, max_length=50, help_text="Leave blank (not used yet)."
    )
    kind = serializers.CharField(required=False, max_length=12, help_text="`check_in`, `qbr` or `deep_dive`.")
    position = serializers.IntegerField(required=False, min_value=0, max_value=32767)
    active = serializers.BooleanField(required=False)


class ReviewCycleSerializer(serializers.ModelSerializer):
    kind = serializers.CharField(read_only=True, help_text=KIND_HELP)
    status = serializers.CharField(read_only=True, help_text="`open` or `closed`.")
    review_count = serializers.IntegerField(read_only=True, help_text="Current reviews in the cycle.")

    class Meta:
        model = ReviewCycle
        fields = [
            "id",
            "name",
            "kind",
            "period",
            "opens_on",
            "due_on",
            "capacity_per_manager",
            "status",
            "created_at",
            "closed_at",
            "review_count",
        ]
        read_only_fields = fields


class CycleGenerateSerializer(serializers.Serializer):
    # Plain text: the answer's `kind` is the one enum of that name in the schema.
    kind = serializers.CharField(max_length=12, help_text="`check_in`, `qbr` or `deep_dive`.")
    period = serializers.CharField(max_length=20, help_text="FY2026-Q3 (quarterly kinds) or FY2026-M07 (check-ins).")
    opens_on = serializers.DateField()
    due_on = serializers.DateField()
    capacity_per_manager = serializers.IntegerField(
        required=False, default=8, min_value=0, max_value=32767, help_text="Detailed reviews per manager."
    )


class CycleCloseSerializer(serializers.Serializer):
    confirm_unfinished = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Close even though reviews are still scheduled or preparing; they stay as they are and the memo "
        "counts them as not held.",
    )


# --- Reviews ------------------------------------------------------------------------------------------------------


PARTNER_REVIEW_FIELDS = [
    "id",
    "cycle",
    "partner",
    "partner_name",
    "kind",
    "period",
    "state",
    "due_on",
    "meeting_at",
    "revision",
    "shared_at",
]
INTERNAL_REVIEW_FIELDS = [
    *PARTNER_REVIEW_FIELDS,
    "manager",
    "manager_name",
    "track",
    "priority",
    "priority_reasons",
    "amends",
    "amendment_reason",
    "started_at",
    "meeting_started_at",
    "finalized_at",
    "updated_at",
]


class ReviewSerializer(serializers.ModelSerializer):
    """A review in a list. Internal-only fields (manager, track, ranking) are absent for partner users."""

    partner_name = serializers.CharField(source="partner.name", read_only=True)
    kind = serializers.CharField(read_only=True, help_text=KIND_HELP)
    manager_name = serializers.SerializerMethodField()

    class Meta:
        model = Review
        fields = INTERNAL_REVIEW_FIELDS
        read_only_fields = fields

    def get_manager_name(self, review: Review) -> str | None:
        return _name(review.manager)

    def get_fields(self):
        fields = super().get_fields()
        membership = self.context.get("membership")
        if membership is not None and membership.is_partner_user:
            return {name: field for name, field in fields.items() if name in PARTNER_REVIEW_FIELDS}
        return fields


class CollaborationRatingSerializer(serializers.ModelSerializer):
    prompt_key = serializers.CharField(source="prompt.key", read_only=True)
    prompt_label = serializers.CharField(source="prompt.label", read_only=True)

    class Meta:
        model = CollaborationRating
        fields = ["id", "prompt", "prompt_key", "prompt_label", "score", "comment", "rated_at"]
        read_only_fields = fields


class CommitmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = DevelopmentCommitment
        fields = ["id", "party", "text", "due_on", "action_item", "created_at"]
        read_only_fields = fields


class MeetingNoteSerializer(serializers.ModelSerializer):
    author_name = serializers.SerializerMethodField()

    class Meta:
        model = MeetingNote
        fields = ["id", "body", "visibility", "author_name", "created_at"]
        read_only_fields = fields

    def get_author_name(self, note: MeetingNote) -> str | None:
        return _name(note.author)


class ReviewDecisionSerializer(serializers.ModelSerializer):
    decided_by_display = serializers.SerializerMethodField(help_text="Who decided.")

    class Meta:
        model = ReviewDecision
        fields = ["id", "decision", "rationale", "decided_by", "decided_by_name", "decided_by_display", "created_at"]
        read_only_fields = fields

    def get_decided_by_display(self, entry: ReviewDecision) -> str | None:
        return entry.decided_by_name or _name(entry.decided_by)


class PartnerVoiceSerializer(serializers.ModelSerializer):
    class Meta:
        model = PartnerVoice
        fields = ["id", "wins", "lessons_learned", "needs", "asks", "forecast", "risks", "submitted_at", "updated_at"]
        read_only_fields = fields


class RevisionSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    revision = serializers.IntegerField()
    state = serializers.ChoiceField(choices=ReviewState.choices)


class WorkspaceSerializer(serializers.Serializer):
    """A review's workspace as the caller may see it (``reviews.selectors.review_workspace``).

    ``audience`` is ``partner`` for partner users: they read a shared review's summary, ratings,
    commitments, decisions, shared notes and their own input, or only their input form before the
    meeting; ``internal``, ``pre_read``, ``track`` and ``priority_reasons`` are null for them.
    """

    id = serializers.IntegerField(source="header.id")
    partner = serializers.CharField(source="header.partner")
    kind = serializers.CharField(source="header.kind", help_text=KIND_HELP)
    period = serializers.CharField(source="header.period")
    state = serializers.ChoiceField(source="header.state", choices=ReviewState.choices)
    due_on = serializers.DateField(source="header.due_on")
    meeting_at = serializers.DateTimeField(source="header.meeting_at", allow_null=True)
    revision = serializers.IntegerField(source="header.revision")
    shared_at = serializers.DateTimeField(source="header.shared_at", allow_null=True)
    audience = serializers.ChoiceField(choices=[("internal", "internal"), ("partner", "partner")])
    summary = serializers.CharField()
    ratings = serializers.SerializerMethodField()
    commitments = CommitmentSerializer(many=True)
    notes = MeetingNoteSerializer(many=True)
    decisions = ReviewDecisionSerializer(many=True)
    voice = PartnerVoiceSerializer(allow_null=True)
    revisions = RevisionSerializer(many=True)
    can_edit = serializers.BooleanField()
    can_submit_voice = serializers.BooleanField()
    internal = serializers.SerializerMethodField(help_text="Manager, track, ranking and pre-read; internal only.")

    def get_ratings(self, workspace) -> list[dict]:
        ratings = sorted(workspace.ratings.values(), key=lambda rating: (rating.prompt.position, rating.prompt_id))
        return CollaborationRatingSerializer(ratings, many=True).data

    def get_internal(self, workspace) -> dict | None:
        review = workspace.review
        if workspace.audience != "internal" or review is None:
            return None
        return {
            "manager": review.manager_id,
            "track": review.track,
            "priority": review.priority,
            "priority_reasons": review.priority_reasons,
            "pre_read": review.pre_read,
            "pre_read_frozen_at": review.pre_read_frozen_at,
            "amendment_reason": review.amendment_reason,
        }


# --- Commands ------------------------------------------------------------------------------------------------------


class ReviewTransitionSerializer(serializers.Serializer):
    to = serializers.CharField(max_length=20, help_text="preparing, in_meeting, finalized, shared (or scheduled).")


class AmendSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=MAX_TEXT, allow_blank=True, help_text="Why the review is amended.")


class RatingInputSerializer(serializers.Serializer):
    prompt = serializers.IntegerField(min_value=1, max_value=LARGEST_ID, help_text="A collaboration prompt's id.")
    score = serializers.IntegerField(min_value=1, max_value=5)
    comment = serializers.CharField(required=False, allow_blank=True, max_length=MAX_SHORT_TEXT * 2)


class CommitmentInputSerializer(serializers.Serializer):
    party = serializers.ChoiceField(choices=CommitmentParty.choices)
    text = serializers.CharField(allow_blank=True, max_length=MAX_SHORT_TEXT * 2)
    due_on = serializers.DateField(required=False, allow_null=True)
    action_item = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=LARGEST_ID, help_text="The follow-up action's id."
    )


class NoteInputSerializer(serializers.Serializer):
    body = serializers.CharField(allow_blank=True, max_length=MAX_TEXT * 2)
    visibility = serializers.ChoiceField(choices=NoteVisibility.choices, default=NoteVisibility.INTERNAL)


class DecisionInputSerializer(serializers.Serializer):
    decision = serializers.CharField(allow_blank=True, max_length=MAX_SHORT_TEXT * 2)
    rationale = serializers.CharField(allow_blank=True, max_length=MAX_SHORT_TEXT * 2)
    decided_by = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=LARGEST_ID, help_text="A user's id; default: you."
    )
    decided_by_name = serializers.CharField(required=False, allow_blank=True, max_length=400)


class SummaryInputSerializer(serializers.Serializer):
    summary = serializers.CharField(allow_blank=True, max_length=MAX_TEXT * 2)


class VoiceInputSerializer(serializers.Serializer):
    wins = serializers.CharField(required=False, allow_blank=True, max_length=MAX_SHORT_TEXT * 2)
    lessons_learned = serializers.CharField(required=False, allow_blank=True, max_length=MAX_SHORT_TEXT * 2)
    needs = serializers.CharField(required=False, allow_blank=True, max_length=MAX_SHORT_TEXT * 2)
    asks = serializers.CharField(required=False, allow_blank=True, max_length=MAX_SHORT_TEXT * 2)
    forecast = serializers.CharField(required=False, allow_blank=True, max_length=MAX_SHORT_TEXT * 2)
    risks = serializers.CharField(required=False, allow_blank=True, max_length=MAX_SHORT_TEXT * 2)
