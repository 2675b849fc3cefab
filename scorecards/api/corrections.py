"""Corrections and appeals over the API: partners ask and follow, the program's people decide.

Partner users see and act on their own partner's requests only; another partner's or tenant's
request, value or score answers 404, exactly like a missing one. Requests are made by a partner's
own people (partner roles), never by API keys or internal roles; decisions by internal people who
decide corrections. The services in ``scorecards.services.corrections`` check the same again.
"""

from __future__ import annotations

from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from partnerhub.tenancy.api.permissions import TenantMember
from partnerhub.tenancy.api.viewsets import TenantViewSet
from partnerhub.tenancy.models import ApiKey
from partnerhub.tenancy.roles import Capability
from scorecards.correction_forms import CorrectionRequestFilter
from scorecards.correction_views import age_text, evidence_response
from scorecards.models import CorrectionKind, CorrectionRequest, MetricObservation, Score
from scorecards.services import corrections

LARGEST_ID = 2**63 - 1


# --- Serializers ------------------------------------------------------------------------------------------


class CorrectionRequestSerializer(serializers.ModelSerializer):
    """A correction or appeal with its decision; the same for partner users and the program's people."""

    partner_name = serializers.CharField(source="partner.name", read_only=True)
    metric = serializers.CharField(source="metric.key", read_only=True, allow_null=True, default=None)
    metric_name = serializers.CharField(source="metric.name", read_only=True, allow_null=True, default=None)
    requested_by = serializers.EmailField(source="requested_by.email", read_only=True, allow_null=True, default=None)
    decided_by = serializers.SerializerMethodField(help_text="The name of who decided; null while open.")
    evidence = serializers.SerializerMethodField(help_text="Where to download the evidence file; null without one.")
    age = serializers.SerializerMethodField(help_text="“open 6 days”, or “approved after 2 days”.")

    class Meta:
        model = CorrectionRequest
        fields = [
            "id",
            "kind",
            "status",
            "partner",
            "partner_name",
            "observation",
            "score",
            "metric",
            "metric_name",
            "period",
            "value_at_request",
            "proposed_value",
            "reason",
            "evidence",
            "evidence_name",
            "evidence_type",
            "evidence_size",
            "requested_by",
            "requested_at",
            "decided_by",
            "decided_at",
            "decision_comment",
            "resulting_observation",
            "age",
        ]
        read_only_fields = fields

    def get_decided_by(self, request: CorrectionRequest) -> str | None:
        return request.decided_by.get_full_name() if request.decided_by else None

    def get_evidence(self, request: CorrectionRequest) -> str | None:
        if not request.evidence:
            return None
        return reverse("correction-evidence", args=[request.pk])

    def get_age(self, request: CorrectionRequest) -> str:
        return age_text(request, now=self.context.get("now") or timezone.now())


class CorrectionCreateSerializer(serializers.Serializer):
    """A new request: an observation and a proposed value (a correction), or a score (an appeal)."""

    # Plain text here: the answer's `kind` is the one enum of that name in the schema.
    kind = serializers.CharField(
        required=False, max_length=20, help_text="`correction` or `appeal`; optional, it follows from what is named."
    )
    observation = serializers.IntegerField(
        required=False, min_value=1, max_value=LARGEST_ID, help_text="The id of the value disputed (a correction)."
    )
    score = serializers.IntegerField(
        required=False, min_value=1, max_value=LARGEST_ID, help_text="The id of the score appealed (an appeal)."
    )
    proposed_value = serializers.CharField(
        required=False, allow_blank=True, max_length=40, help_text='The right value (corrections), e.g. "7.1".'
    )
    reason = serializers.CharField(
        required=False, allow_blank=True, max_length=corrections.MAX_REASON_CHARS * 2, help_text="Why; required."
    )
    evidence = serializers.FileField(
        required=False,
        allow_empty_file=True,
        help_text="A PDF, PNG, JPEG, CSV or Excel (.xlsx) file of at most 10 MB (multipart requests).",
    )

    def validate(self, attrs):
        observation, score = attrs.get("observation"), attrs.get("score")
        if (observation is None) == (score is None):
            raise serializers.ValidationError(
                "Name either the observation to correct or the score to appeal.", code="what"
            )
        kind = CorrectionKind.CORRECTION if observation is not None else CorrectionKind.APPEAL
        if attrs.get("kind") not in (None, "", *CorrectionKind.values):
            raise serializers.ValidationError({"kind": "Either `correction` or `appeal`."})
        if attrs.get("kind") not in (None, "", kind):
            raise serializers.ValidationError(
                {"kind": f"A {attrs['kind']} names {'a score' if attrs['kind'] == 'appeal' else 'an observation'}."}
            )
        if kind == CorrectionKind.APPEAL and attrs.get("proposed_value") not in (None, ""):
            raise serializers.ValidationError({"proposed_value": "An appeal proposes no value; say why in `reason`."})
        attrs["kind"] = kind
        return attrs


class DecisionSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=[("approve", "Approve"), ("reject", "Reject")])
    comment = serializers.CharField(
        required=False, allow_blank=True, max_length=corrections.MAX_COMMENT_CHARS, help_text="Required to reject."
    )


# --- Who may call what ----------------------------------------------------------------------------------------


class CorrectionAccess(TenantMember):
    """Reading as for any tenant data; asking and withdrawing for a partner's own people; deciding for
    internal people who decide corrections. API keys read only here: requests and decisions are people's."""

    def has_permission(self, request, view) -> bool:
        command = getattr(view, "action", None)
        if command not in ("create", "withdraw", "decide"):
            return super().has_permission(request, view)
        if getattr(request, "tenant", None) is None:
            return False
        if isinstance(request.auth, ApiKey):
            self.message = "Corrections and appeals are asked for and decided by people, not by API keys."
            return False
        membership = getattr(request, "membership", None)
        if membership is None:
            return False
        if command == "decide":
            if not membership.is_internal or not membership.can(Capability.DECIDE_CORRECTIONS):
                self.message = "Your role does not decide corrections and appeals."
                return False
            return True
        if not membership.can(Capability.REQUEST_CORRECTIONS):
            self.message = "Corrections and appeals are requested by the partner's own people."
            return False
        return True


# --- The viewset --------------------------------------------------------------------------------------------

CREATE_EXAMPLES = [
    OpenApiExample(
        "A correction",
        value={"observation": 48213, "proposed_value": "7.1", "reason": "Two surveys came in after the export."},
        request_only=True,
    ),
    OpenApiExample(
        "An appeal", value={"score": 9120, "reason": "The peers' pipeline is counted twice."}, request_only=True
    ),
]


@extend_schema_view(
    list=extend_schema(
        summary="List corrections and appeals",
        description="Oldest first. Partner users see their own partner's requests only. Filter by `status`, "
        "`partner`, `kind` and `period`.",
    ),
    retrieve=extend_schema(summary="Get a correction or appeal"),
)
class CorrectionRequestViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """Partners' corrections of values and appeals of scores, with their decisions."""

    model = CorrectionRequest
    serializer_class = CorrectionRequestSerializer
    filterset_class = CorrectionRequestFilter
    permission_classes = [CorrectionAccess]
    parser_classes = [JSONParser, MultiPartParser, FormParser]
    partner_access = True
    read_capability = Capability.VIEW_SCORECARDS
    write_capability = Capability.DECIDE_CORRECTIONS

    def refine_queryset(self, queryset):
        return queryset.select_related("partner", "metric", "requested_by", "decided_by").order_by("requested_at", "pk")

    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["now"] = timezone.now()
        return context

    def _answer(self, request_id: int, code=status.HTTP_200_OK) -> Response:
        found = self.get_queryset().get(pk=request_id)
        return Response(self.get_serializer(found).data, status=code)

    def _own(self, model, pk: int):
        """A value or score of the caller's own partner; anything else is not found, like a missing one."""
        found = model.objects.filter(partner_id=self.request.membership.partner_id, pk=pk).first()
        if found is None:
            raise NotFound(f"No {model._meta.verbose_name} matches the given id.")
        return found

    @extend_schema(
        summary="Request a correction or appeal a score",
        description="Partner users only, for their own partner's values and scores. A correction names the "
        "observation in force and the right value, held to the metric's plausible bounds; an appeal names the "
        "score in force. A reason is required; evidence is optional (multipart). One open request per value and "
        "per score. Another partner's or tenant's id answers 404.",
        request={"application/json": CorrectionCreateSerializer, "multipart/form-data": CorrectionCreateSerializer},
        responses={201: CorrectionRequestSerializer},
        examples=CREATE_EXAMPLES,
    )
    def create(self, request, *args, **kwargs):
        serializer = CorrectionCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        evidence = data.get("evidence")
        if data["kind"] == CorrectionKind.CORRECTION:
            created = corrections.correction_request(
                observation=self._own(MetricObservation, data["observation"]),
                proposed_value=data.get("proposed_value", ""),
                reason=data.get("reason", ""),
                evidence=evidence,
                by=request.user,
            )
        else:
            created = corrections.appeal_request(
                score=self._own(Score, data["score"]), reason=data.get("reason", ""), evidence=evidence, by=request.user
            )
        return self._answer(created.pk, status.HTTP_201_CREATED)

    @extend_schema(
        summary="Withdraw an open request",
        description="Only by the person who made it, while it is open.",
        request=None,
        responses=CorrectionRequestSerializer,
    )
    @action(detail=True, methods=["post"])
    def withdraw(self, request, pk=None):
        found = self.get_object()
        corrections.request_withdraw(request=found, by=request.user)
        return self._answer(found.pk)

    @extend_schema(
        summary="Approve or reject an open request",
        description="Internal people who decide corrections. Approving a correction records the proposed value "
        "as a new observation (source `correction`) that supersedes the disputed one and recomputes the partner's "
        "score as a new revision; it is refused if the value changed since the request. Approving an appeal "
        "recomputes the partner's score for the period. Rejecting needs a `comment`, which the partner reads.",
        request=DecisionSerializer,
        responses=CorrectionRequestSerializer,
        examples=[
            OpenApiExample("Approve", value={"decision": "approve", "comment": "Checked in the survey tool."}),
            OpenApiExample("Reject", value={"decision": "reject", "comment": "The export already has them."}),
        ],
    )
    @action(detail=True, methods=["post"])
    def decide(self, request, pk=None):
        found = self.get_object()
        serializer = DecisionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        corrections.request_decide(
            request=found,
            approve=serializer.validated_data["decision"] == "approve",
            comment=serializer.validated_data.get("comment", ""),
            by=request.user,
        )
        return self._answer(found.pk)

    @extend_schema(
        summary="Download a request's evidence file",
        description="As an attachment, with the content type found in the file itself.",
        responses={(200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY), 404: None},
        filters=False,
    )
    @action(detail=True, methods=["get"], filterset_class=None, pagination_class=None)
    def evidence(self, request, pk=None):
        found = self.get_object()
        if not found.evidence:
            raise NotFound("This request has no evidence file.")
        response = evidence_response(found)
        if response is None:
            raise NotFound("The evidence file is no longer stored.")
        return response
