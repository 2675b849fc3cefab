"""Reviews over the API: cadence rules, review cycles, and each review's workspace and life.

Reading is for every member and API key of the workspace; partner users see only their own
partner's reviews that are shared with them or await their input, and never internal notes, the
pre-read or the ranking by need. Writes are people's (API keys read only here) and go through the
services in ``reviews.services``, which check roles again: administrators set cadences and cycles,
the people who run reviews write the workspace, the partner's own people submit its voice.
"""

from __future__ import annotations

import django_filters
from django.db.models import Count, Q
from django.http import Http404
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from actions.models import ActionItem
from partnerhub.partners.models import PartnerType
from partnerhub.tenancy.api.lookups import row_or_invalid
from partnerhub.tenancy.api.permissions import PeopleWrite as BasePeopleWrite
from partnerhub.tenancy.api.viewsets import TenantViewSet
from partnerhub.tenancy.models import ApiKey, Membership
from partnerhub.tenancy.roles import Capability
from reviews import selectors
from reviews.api import serializers as s
from reviews.models import (
    CadenceRule,
    CollaborationPrompt,
    Review,
    ReviewCycle,
    ReviewState,
    ReviewTrack,
)
from reviews.services import cadences, cycles, lifecycle, workspace

MAX_ID = 2**63 - 1
VOICE_STATES = (ReviewState.SCHEDULED, ReviewState.PREPARING)


class PeopleWrite(BasePeopleWrite):
    api_key_message = "Reviews are run by people; API keys read them only."


def _is_partner_user(request) -> bool:
    membership = getattr(request, "membership", None)
    return not isinstance(request.auth, ApiKey) and membership is not None and membership.is_partner_user


# --- Cadence rules -------------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="List cadence rules", description="Which kind of review each segment of partners gets."),
    retrieve=extend_schema(summary="Get a cadence rule"),
    create=extend_schema(
        summary="Add a cadence rule",
        description="Administrators. The most specific active rule matching a partner decides its reviews.",
        request=s.CadenceRuleInputSerializer,
        responses={201: s.CadenceRuleSerializer},
        examples=[
            OpenApiExample("Resellers in growth", value={"partner_type": 3, "lifecycle_stage": "growth", "kind": "qbr"})
        ],
    ),
    partial_update=extend_schema(
        summary="Change a cadence rule", request=s.CadenceRuleInputSerializer, responses=s.CadenceRuleSerializer
    ),
    destroy=extend_schema(summary="Remove a cadence rule", description="Administrators."),
)
class CadenceRuleViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    TenantViewSet,
):
    """Cadence rules: partner type and lifecycle stage -> the kind of review."""

    model = CadenceRule
    serializer_class = s.CadenceRuleSerializer
    permission_classes = [PeopleWrite]
    partner_access = True  # partner users find nothing: rules belong to no partner
    read_capability = Capability.VIEW_PARTNERS
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def refine_queryset(self, queryset):
        return queryset.select_related("partner_type").order_by("position", "pk")

    def _fields(self, *, partial: bool) -> dict:
        fields = self.validated_input(s.CadenceRuleInputSerializer, partial=partial)
        if "partner_type" in fields:
            fields["partner_type"] = row_or_invalid(
                PartnerType,
                fields["partner_type"],
                field="partner_type",
                missing="Choose a partner type of this workspace, or none for every type.",
            )
        return fields

    def create(self, request, *args, **kwargs):
        fields = self._fields(partial=False)
        if "kind" not in fields:
            return Response({"kind": ["Choose the kind of review."]}, status=status.HTTP_400_BAD_REQUEST)
        rule = cadences.cadence_rule_create(by=request.user, **fields)
        return Response(self.get_serializer(self.get_queryset().get(pk=rule.pk)).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        rule = self.get_object()
        cadences.cadence_rule_update(rule=rule, by=request.user, **self._fields(partial=True))
        return Response(self.get_serializer(self.get_queryset().get(pk=rule.pk)).data)

    def destroy(self, request, *args, **kwargs):
        cadences.cadence_rule_delete(rule=self.get_object(), by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Cycles -------------------------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="List review cycles", description="Newest first."),
    retrieve=extend_schema(summary="Get a review cycle"),
    create=extend_schema(
        summary="Generate a review cycle",
        description="Administrators. Opens the cycle of a kind for a period with a review for every partner due, "
        "each manager's partners ranked by need: detailed reviews within capacity, the rest monitored. Refused "
        "with the reason for a kind that has no review in that period, a cycle that exists, or no partner due.",
        request=s.CycleGenerateSerializer,
        responses={201: s.ReviewCycleSerializer},
        examples=[
            OpenApiExample(
                "A quarter's business reviews",
                value={"kind": "qbr", "period": "FY2026-Q3", "opens_on": "2026-10-01", "due_on": "2026-10-31"},
            )
        ],
    ),
)
class ReviewCycleViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, TenantViewSet):
    """The reviews of one kind due in one period."""

    model = ReviewCycle
    serializer_class = s.ReviewCycleSerializer
    permission_classes = [PeopleWrite]
    partner_access = True  # partner users find nothing: cycles belong to no partner
    read_capability = Capability.VIEW_PARTNERS

    def refine_queryset(self, queryset):
        return queryset.annotate(review_count=Count("reviews", filter=Q(reviews__superseded_by__isnull=True))).order_by(
            "-opens_on", "-pk"
        )

    def create(self, request, *args, **kwargs):
        cycle = cycles.cycle_generate(by=request.user, **self.validated_input(s.CycleGenerateSerializer))
        return Response(self.get_serializer(self.get_queryset().get(pk=cycle.pk)).data, status=status.HTTP_201_CREATED)

    def _answer(self, cycle: ReviewCycle) -> Response:
        return Response(self.get_serializer(self.get_queryset().get(pk=cycle.pk)).data)

    @extend_schema(
        summary="Close a review cycle",
        description="Administrators. Refused (400, naming the partners) while a review is in its meeting; while "
        "reviews are still scheduled or preparing, refused unless `confirm_unfinished` is true, and then they stay "
        "as they are and the memo counts them as not held. A closed cycle starts no review; its finished reviews "
        "are still finalized, shared and amended. Closing a closed cycle answers 400. Answers the cycle.",
        request=s.CycleCloseSerializer,
        responses=s.ReviewCycleSerializer,
        examples=[
            OpenApiExample("Every review is finished", value={}),
            OpenApiExample("Close anyway", value={"confirm_unfinished": True}),
        ],
    )
    @action(detail=True, methods=["post"])
    def close(self, request, pk=None):
        data = self.validated_input(s.CycleCloseSerializer)
        cycle = cycles.cycle_close(
            cycle=self.get_object(), by=request.user, confirm_unfinished=data["confirm_unfinished"]
        )
        return self._answer(cycle)

    @extend_schema(
        summary="Reopen a review cycle",
        description="Administrators. Its reviews may start again. Reopening an open cycle answers 400. Answers the "
        "cycle.",
        request=None,
        responses=s.ReviewCycleSerializer,
    )
    @action(detail=True, methods=["post"])
    def reopen(self, request, pk=None):
        return self._answer(cycles.cycle_reopen(cycle=self.get_object(), by=request.user))


# --- Reviews -------------------------------------------------------------------------------------------------------


class ReviewFilter(django_filters.FilterSet):
    cycle = django_filters.NumberFilter(method="by_id", label="Review cycle id")
    partner = django_filters.NumberFilter(method="by_id", label="Partner id")
    manager = django_filters.NumberFilter(method="by_id", label="Manager's user id")
    state = django_filters.ChoiceFilter(choices=ReviewState.choices)
    track = django_filters.ChoiceFilter(choices=ReviewTrack.choices, method="by_track")

    class Meta:
        model = Review
        fields = ["cycle", "partner", "manager", "state", "track"]

    def by_id(self, queryset, name, value):
        if value != value.to_integral_value() or not 0 < value <= MAX_ID:
            return queryset.none()
        return queryset.filter(**{f"{name}_id": int(value)})

    def by_track(self, queryset, name, value):
        if _is_partner_user(self.request):
            return queryset  # the ranking by need is internal: partner users cannot probe it
        return queryset.filter(track=value)


WORKSPACE_DESCRIPTION = "Answers the workspace as the caller may see it, like `GET /reviews/{id}/`."


@extend_schema_view(
    list=extend_schema(
        summary="List reviews",
        description="The latest revision of each review, soonest due first. Filter by `cycle`, `state`, `manager`, "
        "`partner` and `track`. Partner users see their own partner's reviews that are shared with them or await "
        "their input, without the manager, track or ranking.",
    ),
    retrieve=extend_schema(
        summary="Get a review's workspace",
        description="Ratings, commitments, notes, decisions, summary and the partner's voice. Partner users read a "
        "shared review's shared notes only (never internal notes), or only their input before the meeting.",
        responses=s.WorkspaceSerializer,
    ),
)
class ReviewViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """Reviews and their workspace; each command calls the service that owns it."""

    model = Review
    serializer_class = s.ReviewSerializer
    filterset_class = ReviewFilter
    permission_classes = [PeopleWrite]
    partner_access = True
    read_capability = Capability.VIEW_PARTNERS

    def restrict_to_partner(self, queryset, membership):
        # Shared reviews (every shared revision), and the latest revision while it awaits their input.
        return queryset.filter(partner_id=membership.partner_id).filter(
            Q(state=ReviewState.SHARED) | Q(state__in=VOICE_STATES, superseded_by__isnull=True)
        )

    def refine_queryset(self, queryset):
        if self.action == "list" and not _is_partner_user(self.request):
            queryset = queryset.current()
        return queryset.select_related("partner", "manager").order_by("due_on", "priority", "pk")

    def _workspace(self, review: Review):
        if isinstance(self.request.auth, ApiKey):
            return selectors.review_workspace_for_integration(review=review)
        return selectors.review_workspace(review_id=review.pk, viewer=self.request.user)

    def _answer(self, review: Review, code=status.HTTP_200_OK) -> Response:
        return Response(s.WorkspaceSerializer(self._workspace(review)).data, status=code)

    def retrieve(self, request, *args, **kwargs):
        return self._answer(self.get_object())

    @extend_schema(
        summary="Move a review to its next state",
        description="scheduled → preparing (freezes the pre-read) → in_meeting → finalized → shared (emails the "
        "partner's people); preparing may go back to scheduled. Any other move answers 400 with the reason. "
        + WORKSPACE_DESCRIPTION,
        request=s.ReviewTransitionSerializer,
        responses=s.WorkspaceSerializer,
        examples=[OpenApiExample("Start preparing", value={"to": "preparing"})],
    )
    @action(detail=True, methods=["post"])
    def transition(self, request, pk=None):
        review = lifecycle.review_transition(
            review=self.get_object(), to=self.validated_input(s.ReviewTransitionSerializer)["to"], by=request.user
        )
        return self._answer(review)

    @extend_schema(
        summary="Amend a finalized or shared review",
        description="Starts revision n+1, in its meeting, with everything the review held; the amended revision "
        "stays as it was. " + WORKSPACE_DESCRIPTION + " (of the new revision)",
        request=s.AmendSerializer,
        responses={201: s.WorkspaceSerializer},
        examples=[OpenApiExample("Amend", value={"reason": "The partner's pipeline figure was corrected."})],
    )
    @action(detail=True, methods=["post"])
    def amend(self, request, pk=None):
        amendment = lifecycle.review_amend(
            review=self.get_object(), reason=self.validated_input(s.AmendSerializer)["reason"], by=request.user
        )
        return self._answer(amendment, status.HTTP_201_CREATED)

    @extend_schema(
        summary="Rate a collaboration prompt",
        description="1 to 5, with a comment; rating it again replaces the rating. Open reviews only.",
        request=s.RatingInputSerializer,
        responses={201: s.CollaborationRatingSerializer},
        examples=[OpenApiExample("Rate", value={"prompt": 4, "score": 4, "comment": "Joint planning improved."})],
    )
    @action(detail=True, methods=["post"])
    def ratings(self, request, pk=None):
        review = self.get_object()
        data = self.validated_input(s.RatingInputSerializer)
        prompt = CollaborationPrompt.objects.filter(pk=data["prompt"]).first()
        if prompt is None:
            raise Http404("No such prompt.")
        rating = workspace.rating_set(
            review=review, prompt=prompt, score=data["score"], comment=data.get("comment", ""), by=request.user
        )
        return Response(s.CollaborationRatingSerializer(rating).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Record a development commitment",
        description="By us (`vendor`) or by the partner, optionally followed up by an action item of this partner.",
        request=s.CommitmentInputSerializer,
        responses={201: s.CommitmentSerializer},
        examples=[OpenApiExample("Commit", value={"party": "partner", "text": "Certify two engineers."})],
    )
    @action(detail=True, methods=["post"])
    def commitments(self, request, pk=None):
        review = self.get_object()
        data = self.validated_input(s.CommitmentInputSerializer)
        action_item = row_or_invalid(
            ActionItem, data.get("action_item"), field="action_item", missing="Choose an action item of this partner."
        )
        commitment = workspace.commitment_add(
            review=review,
            party=data["party"],
            text=data["text"],
            due_on=data.get("due_on"),
            action_item=action_item,
            by=request.user,
        )
        return Response(s.CommitmentSerializer(commitment).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Take a note",
        description="`internal` notes are never shown to the partner; `shared` notes are, once the review is shared.",
        request=s.NoteInputSerializer,
        responses={201: s.MeetingNoteSerializer},
        examples=[
            OpenApiExample("Internal note", value={"body": "Margin pressure in EMEA.", "visibility": "internal"})
        ],
    )
    @action(detail=True, methods=["post"])
    def notes(self, request, pk=None):
        review = self.get_object()
        data = self.validated_input(s.NoteInputSerializer)
        note = workspace.note_add(review=review, body=data["body"], visibility=data["visibility"], by=request.user)
        return Response(s.MeetingNoteSerializer(note).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Log a decision",
        description="What was decided, why, and who decided: a user of ours or of this partner (`decided_by`), a "
        "name (`decided_by_name`), or by default the caller.",
        request=s.DecisionInputSerializer,
        responses={201: s.ReviewDecisionSerializer},
        examples=[OpenApiExample("Decide", value={"decision": "Co-fund one event.", "rationale": "Pipeline gap."})],
    )
    @action(detail=True, methods=["post"])
    def decisions(self, request, pk=None):
        review = self.get_object()
        data = self.validated_input(s.DecisionInputSerializer)
        decided_by = None
        if data.get("decided_by") is not None:
            member = Membership.objects.filter(user_id=data["decided_by"]).select_related("user").first()
            decided_by = member.user if member else None
            if decided_by is None:
                return Response(
                    {"decided_by": ["Choose one of our people or of this partner's people."]},
                    status=status.HTTP_400_BAD_REQUEST,
                )
        entry = workspace.decision_record(
            review=review,
            decision=data["decision"],
            rationale=data["rationale"],
            decided_by=decided_by,
            decided_by_name=data.get("decided_by_name", ""),
            by=request.user,
        )
        return Response(s.ReviewDecisionSerializer(entry).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Write the review's summary",
        description="The partner reads it once the review is shared; blank clears it. " + WORKSPACE_DESCRIPTION,
        request=s.SummaryInputSerializer,
        responses=s.WorkspaceSerializer,
    )
    @action(detail=True, methods=["post"])
    def summary(self, request, pk=None):
        review = workspace.summary_set(
            review=self.get_object(), summary=self.validated_input(s.SummaryInputSerializer)["summary"], by=request.user
        )
        return self._answer(review)

    @extend_schema(
        summary="Submit the partner's voice",
        description="The partner's own people, before the meeting starts (scheduled or preparing); submitting "
        "again replaces it. At least one field.",
        request=s.VoiceInputSerializer,
        responses=s.PartnerVoiceSerializer,
        examples=[OpenApiExample("Voice", value={"wins": "Closed the bank deal.", "asks": "Demo licences."})],
    )
    @action(detail=True, methods=["post"])
    def voice(self, request, pk=None):
        voice = workspace.partner_voice_submit(
            review=self.get_object(), by=request.user, **self.validated_input(s.VoiceInputSerializer)
        )
        return Response(s.PartnerVoiceSerializer(voice).data)
