"""Action items and remediation plans over the API.

Internal people and API keys read every action and plan of the workspace; partner users read
their own partner's actions, and its active and completed plans, and anything else answers 404.
Writes are people's and go through ``actions.services``, which check again who may: partner users
update the working notes of their partner's actions, move them along, comment and report progress;
creating, escalating and every write to a plan are the program's.
"""

from __future__ import annotations

import django_filters
from django.core.exceptions import ValidationError
from django.db.models import Prefetch
from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from actions.api import serializers as s
from actions.models import (
    ActionItem,
    ActionStatus,
    ActionTarget,
    ActionUpdate,
    Milestone,
    RemediationPlan,
    RootCause,
)
from actions.selectors import PARTNER_VISIBLE_PLAN_STATUSES
from actions.services import escalation, followup, items, plans
from partnerhub.partners.models import Partner
from partnerhub.tenancy.api.lookups import row_or_invalid
from partnerhub.tenancy.api.permissions import PeopleWrite as BasePeopleWrite
from partnerhub.tenancy.api.viewsets import TenantViewSet
from partnerhub.tenancy.models import Membership
from reviews.models import Review
from scorecards.models import Metric

MAX_ID = 2**63 - 1


class PeopleWrite(BasePeopleWrite):
    api_key_message = "Actions and plans are changed by people; API keys read them only."


def _person(pk, field: str):
    """A person of this workspace by user id; anyone else (another workspace's too) is a 400 on ``field``."""
    if pk is None:
        return None
    membership = Membership.objects.filter(user_id=pk).select_related("user").first()
    if membership is None:
        raise ValidationError({field: "Choose a person of this workspace."})
    return membership.user


def _metric(key: str, field: str):
    found = Metric.objects.filter(key=key).first()
    if found is None:
        raise ValidationError({field: f"“{key}” is not a metric of this workspace."})
    return found


def _by_id(queryset, field_name: str, value):
    if value != value.to_integral_value() or not 0 < value <= MAX_ID:
        return queryset.none()
    return queryset.filter(**{field_name: int(value)})


class YesNoFilter(django_filters.TypedChoiceFilter):
    def __init__(self, *args, **kwargs):
        choices = [("true", "true"), ("false", "false"), ("1", "1"), ("0", "0")]
        super().__init__(*args, choices=choices, coerce=lambda value: value in ("true", "1"), **kwargs)


class ActionItemFilter(django_filters.FilterSet):
    owner = django_filters.NumberFilter(method="filter_owner", label="Owner's user id")
    partner = django_filters.NumberFilter(method="filter_partner", label="Partner id")
    status = django_filters.ChoiceFilter(choices=ActionStatus.choices)
    root_cause = django_filters.ChoiceFilter(choices=RootCause.choices)
    overdue = YesNoFilter(field_name="due_on", method="filter_overdue", label="Past due and not finished")

    class Meta:
        model = ActionItem
        fields = ["owner", "partner", "status", "root_cause", "overdue"]

    def filter_owner(self, queryset, name, value):
        return _by_id(queryset, "owner_id", value)

    def filter_partner(self, queryset, name, value):
        return _by_id(queryset, "partner_id", value)

    def filter_overdue(self, queryset, name, value):
        overdue = ActionItem.objects.overdue(timezone.localdate()).values("pk")
        return queryset.filter(pk__in=overdue) if value else queryset.exclude(pk__in=overdue)


CREATE_EXAMPLE = OpenApiExample(
    "A quick win",
    value={
        "partner": 12,
        "title": "Run a joint webinar for the new product line",
        "due_on": "2026-12-15",
        "owner": 7,
        "priority": "high",
        "root_cause": "enablement",
        "targets": [{"metric": "pipeline_generated", "target_value": "250000"}],
    },
    request_only=True,
)


@extend_schema_view(
    list=extend_schema(
        summary="List action items",
        description="By due date. Filter by `owner`, `partner`, `status`, `overdue` and `root_cause`. Partner users "
        "see their own partner's actions, without escalations.",
    ),
    retrieve=extend_schema(summary="Get an action item with its history", responses=s.ActionItemDetailSerializer),
    create=extend_schema(
        summary="Create an action item",
        description="The program's people. Every problem is answered at once, by field, and nothing is stored.",
        request=s.ActionInputSerializer,
        responses={201: s.ActionItemDetailSerializer},
        examples=[CREATE_EXAMPLE],
    ),
    partial_update=extend_schema(
        summary="Change an action item",
        description="Only the fields sent change. Partner users change the working notes only (description, "
        "impact estimate, success criteria, resources, contingency); `targets` replaces all targets.",
        request=s.ActionInputSerializer,
        responses=s.ActionItemDetailSerializer,
    ),
)
class ActionItemViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, mixins.UpdateModelMixin, TenantViewSet
):
    """Action items with owners, due dates and targets, and their follow-up."""

    model = ActionItem
    serializer_class = s.ActionItemSerializer
    filterset_class = ActionItemFilter
    permission_classes = [PeopleWrite]
    partner_access = True
    http_method_names = ["get", "post", "patch", "head", "options"]

    def refine_queryset(self, queryset):
        return (
            queryset.select_related("partner", "owner", "escalated_to")
            .prefetch_related(
                Prefetch("targets", queryset=ActionTarget.objects.select_related("metric").order_by("pk"))
            )
            .order_by("due_on", "pk")
        )

    def _answer(self, pk: int, code=status.HTTP_200_OK) -> Response:
        found = self.get_queryset().get(pk=pk)
        history = list(ActionUpdate.objects.filter(action=found).select_related("author").order_by("created_at", "pk"))
        context = {**self.get_serializer_context(), "history": history}
        return Response(s.ActionItemDetailSerializer(found, context=context).data, status=code)

    def _links(self, data: dict) -> dict:
        """The ids sent, as the rows the services take (rows of this workspace only)."""
        if "owner" in data:
            data["owner"] = _person(data["owner"], "owner")
        if "review" in data:
            data["review"] = row_or_invalid(
                Review, data["review"], field="review", missing="Link a review of this partner."
            )
        if "plan" in data:
            data["plan"] = row_or_invalid(
                RemediationPlan, data["plan"], field="plan", missing="Link a remediation plan of this partner."
            )
        if "targets" in data:
            data["targets"] = [
                (_metric(target["metric"], "targets"), target.get("target_value")) for target in data["targets"]
            ]
        return data

    def retrieve(self, request, *args, **kwargs):
        return self._answer(self.get_object().pk)

    def create(self, request, *args, **kwargs):
        data = self.validated_input(s.ActionInputSerializer)
        missing = {name: ["This field is required."] for name in ("partner", "title", "due_on") if name not in data}
        if missing:
            return Response(missing, status=status.HTTP_400_BAD_REQUEST)
        data["partner"] = row_or_invalid(
            Partner, data["partner"], field="partner", missing="Choose a partner of this workspace."
        )
        created = items.action_create(by=request.user, **self._links(data))
        return self._answer(created.pk, status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        found = self.get_object()
        data = self.validated_input(s.ActionInputSerializer, partial=True)
        if "partner" in data:
            return Response(
                {"partner": ["An action stays with its partner; create one for the other partner."]},
                status=status.HTTP_400_BAD_REQUEST,
            )
        items.action_update(action=found, by=request.user, **self._links(data))
        return self._answer(found.pk)

    @extend_schema(
        summary="Move an action to another status",
        description="open, in progress, blocked, done, cancelled; blocking and cancelling say why (`note`), "
        "cancelling is the program's, and a move that is not allowed answers 400 with the reason.",
        request=s.ActionTransitionSerializer,
        responses=s.ActionItemDetailSerializer,
        examples=[OpenApiExample("Start", value={"to": "in_progress"})],
    )
    @action(detail=True, methods=["post"])
    def transition(self, request, pk=None):
        found = self.get_object()
        data = self.validated_input(s.ActionTransitionSerializer)
        followup.action_transition(action=found, to=data["to"], note=data.get("note", ""), by=request.user)
        return self._answer(found.pk)

    @extend_schema(
        summary="Comment on an action",
        request=s.ActionCommentSerializer,
        responses={201: s.ActionUpdateSerializer},
        examples=[OpenApiExample("Comment", value={"body": "Venue booked."})],
    )
    @action(detail=True, methods=["post"])
    def comment(self, request, pk=None):
        update = followup.action_comment(
            action=self.get_object(), body=self.validated_input(s.ActionCommentSerializer)["body"], by=request.user
        )
        return Response(s.ActionUpdateSerializer(update).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Report an action's progress",
        description="A whole percentage from 0 to 100, for unfinished actions.",
        request=s.ActionProgressSerializer,
        responses={201: s.ActionUpdateSerializer},
        examples=[OpenApiExample("Halfway", value={"percent": 50, "note": "Invitations sent."})],
    )
    @action(detail=True, methods=["post"])
    def progress(self, request, pk=None):
        data = self.validated_input(s.ActionProgressSerializer)
        update = followup.action_progress(
            action=self.get_object(), percent=data["percent"], note=data.get("note", ""), by=request.user
        )
        return Response(s.ActionUpdateSerializer(update).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Escalate an action to an executive sponsor",
        description="The program's people; critical actions, or actions overdue by more than 14 days. The sponsor "
        "is emailed.",
        request=s.ActionEscalateSerializer,
        responses=s.ActionItemDetailSerializer,
        examples=[OpenApiExample("Escalate", value={"to": 3, "reason": "Blocked on the partner's budget."})],
    )
    @action(detail=True, methods=["post"])
    def escalate(self, request, pk=None):
        found = self.get_object()
        data = self.validated_input(s.ActionEscalateSerializer)
        escalation.action_escalate(action=found, to=_person(data["to"], "to"), reason=data["reason"], by=request.user)
        return self._answer(found.pk)


# --- Remediation plans ----------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="List remediation plans",
        description="Newest first, with milestones and checkpoints. Partner users see their own partner's active "
        "and completed plans.",
    ),
    retrieve=extend_schema(summary="Get a remediation plan"),
)
class RemediationPlanViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """Remediation plans: suggested after a poor score, activated with a leader, followed, closed."""

    model = RemediationPlan
    serializer_class = s.RemediationPlanSerializer
    permission_classes = [PeopleWrite]
    partner_access = True

    def restrict_to_partner(self, queryset, membership):
        return queryset.filter(partner_id=membership.partner_id, status__in=PARTNER_VISIBLE_PLAN_STATUSES)

    def refine_queryset(self, queryset):
        return (
            queryset.select_related("partner", "leader")
            .prefetch_related(
                Prefetch("milestones", queryset=Milestone.objects.select_related("metric").order_by("due_on", "pk")),
                "checkpoints",
            )
            .order_by("-opened_at", "-pk")
        )

    def _answer(self, pk: int, code=status.HTTP_200_OK) -> Response:
        return Response(self.get_serializer(self.get_queryset().get(pk=pk)).data, status=code)

    @extend_schema(
        summary="Activate a suggested plan",
        description="With an accountable leader (one of ours or of the partner), the root cause and its analysis.",
        request=s.PlanActivateSerializer,
        responses=s.RemediationPlanSerializer,
        examples=[
            OpenApiExample(
                "Activate",
                value={"leader": 7, "root_cause": "enablement", "root_cause_analysis": "No certified engineers."},
            )
        ],
    )
    @action(detail=True, methods=["post"])
    def activate(self, request, pk=None):
        found = self.get_object()
        data = self.validated_input(s.PlanActivateSerializer)
        plans.plan_activate(
            plan=found,
            leader=_person(data["leader"], "leader"),
            root_cause=data["root_cause"],
            root_cause_analysis=data["root_cause_analysis"],
            by=request.user,
        )
        return self._answer(found.pk)

    @extend_schema(
        summary="Close a plan",
        description="`completed` (active plans) or `cancelled` (saying why, in `note`). A closed plan stays closed.",
        request=s.PlanCloseSerializer,
        responses=s.RemediationPlanSerializer,
        examples=[OpenApiExample("Complete", value={"status": "completed", "note": "Targets met two quarters."})],
    )
    @action(detail=True, methods=["post"])
    def close(self, request, pk=None):
        found = self.get_object()
        data = self.validated_input(s.PlanCloseSerializer)
        plans.plan_close(plan=found, status=data["status"], note=data.get("note", ""), by=request.user)
        return self._answer(found.pk)

    @extend_schema(
        summary="Add a milestone",
        description="A metric's target for a period, judged met or missed once the period is observed.",
        request=s.MilestoneInputSerializer,
        responses={201: s.MilestoneSerializer},
        examples=[
            OpenApiExample(
                "Milestone",
                value={
                    "title": "Two certified engineers",
                    "due_on": "2027-03-31",
                    "period": "FY2027-Q1",
                    "metric": "certified_engineers",
                    "target_value": "2",
                },
            )
        ],
    )
    @action(detail=True, methods=["post"])
    def milestones(self, request, pk=None):
        found = self.get_object()
        data = self.validated_input(s.MilestoneInputSerializer)
        data["metric"] = _metric(data["metric"], "metric")
        milestone = plans.milestone_add(plan=found, by=request.user, **data)
        return Response(s.MilestoneSerializer(milestone).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Record a checkpoint",
        description="How an active plan is doing: on track, at risk or off track (the latter two say why).",
        request=s.CheckpointInputSerializer,
        responses={201: s.CheckpointSerializer},
        examples=[OpenApiExample("Checkpoint", value={"held_on": "2026-11-20", "outcome": "on_track"})],
    )
    @action(detail=True, methods=["post"])
    def checkpoints(self, request, pk=None):
        found = self.get_object()
        data = self.validated_input(s.CheckpointInputSerializer)
        checkpoint = plans.checkpoint_add(
            plan=found, held_on=data["held_on"], outcome=data["outcome"], note=data.get("note", ""), by=request.user
        )
        return Response(s.CheckpointSerializer(checkpoint).data, status=status.HTTP_201_CREATED)
