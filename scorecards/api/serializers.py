"""Serializers for metrics, scorecards, versions, items and observations.

They shape input and output only: every rule (drafts only, weights, bounds, supersession) lives in
the services, whose errors the API answers as 400s with field messages.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from partnerhub.partners.models import Partner
from partnerhub.partners.selectors import internal_users
from partnerhub.tenancy.api.fields import ScopedSlugRelatedField
from partnerhub.tenancy.models import User
from scorecards.models import (
    PERIOD_KINDS,
    Metric,
    MetricObservation,
    MissingData,
    Normalization,
    RubricKind,
    Scorecard,
    ScorecardItem,
    ScorecardVersion,
)
from scorecards.services.metrics import METRIC_EDITABLE_FIELDS
from scorecards.services.observations import MAX_BULK_ITEMS

MAX_ID = 2**63 - 1


class ScopedPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A relation by id over a tenant-owned model, resolved in the active tenant at request time.

    Another tenant's id is answered exactly like an id that does not exist.
    """

    def __init__(self, *, model, noun: str, **kwargs):
        self.model = model
        self.noun = noun
        if not kwargs.get("read_only"):
            kwargs["queryset"] = model.objects.none()  # replaced per request in get_queryset()
        super().__init__(**kwargs)
        self.error_messages["does_not_exist"] = f"There is no {noun} with this id."
        self.error_messages["incorrect_type"] = f"Give the {noun}'s id as a number."

    def get_queryset(self):
        return self.model.objects.all()

    def to_internal_value(self, data):
        if isinstance(data, bool):
            self.fail("incorrect_type", data_type=type(data).__name__)
        try:
            number = int(data)
        except (TypeError, ValueError):
            self.fail("incorrect_type", data_type=type(data).__name__)
        if not 0 < number <= MAX_ID:
            self.fail("does_not_exist", pk_value=data)
        return super().to_internal_value(number)


class UserEmailField(serializers.SlugRelatedField):
    """An internal member of the tenant, by email."""

    def __init__(self, **kwargs):
        super().__init__(slug_field="email", queryset=User.objects.none(), **kwargs)

    def get_queryset(self):
        return internal_users()


class HidesInternalFields:
    """Drops fields that name the vendor's people when a partner user reads the row."""

    internal_fields: tuple[str, ...] = ()

    def to_representation(self, instance):
        data = super().to_representation(instance)
        membership = self.context.get("membership")
        if membership is not None and membership.is_partner_user:
            for name in self.internal_fields:
                data.pop(name, None)
        return data


# --- Metrics ---------------------------------------------------------------------------------------


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A partner-sourced pipeline metric",
            value={
                "key": "sourced_pipeline",
                "name": "Partner-sourced pipeline",
                "definition": "The value of new deals the partner found itself, at the amount first registered.",
                "unit": "currency",
                "direction": "higher",
                "indicator": "leading",
                "pillar": "performance",
                "aggregation": "sum",
                "data_source": "CRM deals with lead source “Partner”.",
                "plausible_min": "0",
                "plausible_max": "1000000000",
            },
            request_only=True,
        )
    ]
)
class MetricSerializer(HidesInternalFields, serializers.ModelSerializer):
    internal_fields = ("owner",)

    numerator = ScopedSlugRelatedField(model=Metric, slug_field="key", required=False, allow_null=True)
    denominator = ScopedSlugRelatedField(model=Metric, slug_field="key", required=False, allow_null=True)
    owner = UserEmailField(required=False, allow_null=True)

    class Meta:
        model = Metric
        fields = ["id", *METRIC_EDITABLE_FIELDS, "created_at"]
        read_only_fields = ["id", "created_at"]
        validators: list = []  # the service checks the key inside the tenant, with the constraint's message


# --- Scorecards and versions --------------------------------------------------------------------------


class ScorecardSerializer(serializers.ModelSerializer):
    active_version = serializers.SerializerMethodField(help_text="The id of the version in force, if any.")

    class Meta:
        model = Scorecard
        fields = ["id", "name", "description", "active_version", "created_at"]
        read_only_fields = ["id", "created_at"]
        validators: list = []

    def get_active_version(self, scorecard) -> int | None:
        return getattr(scorecard, "active_version_id", None)


class BandSerializer(serializers.Serializer):
    at_least = serializers.DecimalField(max_digits=20, decimal_places=6, help_text="The threshold the value reaches.")
    points = serializers.DecimalField(max_digits=6, decimal_places=2, help_text="Points for reaching it.")


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Revenue against a per-segment target, banded",
            value={
                "version": 12,
                "metric": "revenue_won",
                "weight": "40",
                "applies_to": [],
                "normalization": "attainment",
                "segment_targets": {"reseller": "250000", "msp": "120000"},
                "rubric": "banded",
                "bands": [
                    {"at_least": "0.5", "points": "40"},
                    {"at_least": "0.8", "points": "70"},
                    {"at_least": "1.0", "points": "90"},
                    {"at_least": "1.2", "points": "100"},
                ],
            },
            request_only=True,
        )
    ]
)
class ScorecardItemSerializer(serializers.ModelSerializer):
    version = ScopedPrimaryKeyRelatedField(model=ScorecardVersion, noun="scorecard version")
    metric = ScopedSlugRelatedField(model=Metric, slug_field="key")
    metric_name = serializers.CharField(source="metric.name", read_only=True)
    applies_to = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="Partner type keys of a plug-in; empty for core."
    )
    normalization = serializers.ChoiceField(choices=Normalization.choices, required=False)
    segment_targets = serializers.DictField(
        child=serializers.DecimalField(max_digits=20, decimal_places=6),
        required=False,
        help_text="For attainment: the target per partner type key.",
    )
    rubric = serializers.ChoiceField(choices=RubricKind.choices, required=False)
    bands = BandSerializer(many=True, required=False)
    is_core = serializers.BooleanField(read_only=True)

    class Meta:
        model = ScorecardItem
        fields = [
            "id",
            "version",
            "metric",
            "metric_name",
            "weight",
            "applies_to",
            "normalization",
            "segment_targets",
            "rubric",
            "floor",
            "target",
            "cap",
            "bands",
            "position",
            "is_core",
        ]
        read_only_fields = ["id"]
        validators: list = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance is not None and "version" in self.fields:
            self.fields["version"].read_only = True  # an item stays in its version


class ScorecardVersionSerializer(HidesInternalFields, serializers.ModelSerializer):
    internal_fields = ("created_by", "proposed_by", "approved_by")

    scorecard = ScopedPrimaryKeyRelatedField(model=Scorecard, noun="scorecard")
    scorecard_name = serializers.CharField(source="scorecard.name", read_only=True)
    copy_latest = serializers.BooleanField(
        write_only=True, required=False, default=True, help_text="Start from the latest version's settings and items."
    )
    partner_types = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="Keys of the partner types it scores."
    )
    period_kind = serializers.ChoiceField(choices=PERIOD_KINDS, required=False)
    missing_data = serializers.ChoiceField(choices=MissingData.choices, required=False)
    created_by = serializers.SlugRelatedField(slug_field="email", read_only=True)
    proposed_by = serializers.SlugRelatedField(slug_field="email", read_only=True)
    approved_by = serializers.SlugRelatedField(slug_field="email", read_only=True)
    items = ScorecardItemSerializer(many=True, read_only=True)

    class Meta:
        model = ScorecardVersion
        fields = [
            "id",
            "scorecard",
            "scorecard_name",
            "number",
            "status",
            "copy_latest",
            "partner_types",
            "period_kind",
            "band_excellent",
            "band_good",
            "missing_data",
            "min_completeness",
            "rationale",
            "effective_from",
            "created_by",
            "created_at",
            "proposed_by",
            "proposed_at",
            "approved_by",
            "approved_at",
            "activated_at",
            "items",
        ]
        read_only_fields = [
            "id",
            "number",
            "status",
            "effective_from",
            "created_at",
            "proposed_at",
            "approved_at",
            "activated_at",
        ]
        validators: list = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance is not None and "scorecard" in self.fields:
            self.fields["scorecard"].read_only = True  # a version stays with its scorecard


class ProposeSerializer(serializers.Serializer):
    rationale = serializers.CharField(
        required=False, allow_blank=True, help_text="Why these rules; published to partners. Kept if omitted."
    )


class WithdrawSerializer(serializers.Serializer):
    note = serializers.CharField(help_text="Why the proposal goes back to draft.")


class ApproveSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="")


class ActivateSerializer(serializers.Serializer):
    effective_from = serializers.CharField(max_length=12, help_text="The first period it scores, e.g. FY2026-Q3.")


class VersionProblemSerializer(serializers.Serializer):
    message = serializers.CharField()
    item_id = serializers.IntegerField(allow_null=True)
    partner_type = serializers.CharField(allow_null=True)


class VersionProblemsSerializer(serializers.Serializer):
    ready = serializers.BooleanField(help_text="True when the version can be proposed.")
    problems = VersionProblemSerializer(many=True)


# --- "How you are scored" ---------------------------------------------------------------------------


class PublishedItemSerializer(serializers.Serializer):
    metric_key = serializers.CharField()
    metric_name = serializers.CharField()
    definition = serializers.CharField()
    unit = serializers.CharField()
    direction = serializers.CharField()
    pillar = serializers.CharField()
    weight = serializers.DecimalField(max_digits=6, decimal_places=2)
    is_core = serializers.BooleanField()
    normalization = serializers.CharField()
    segment_target = serializers.FloatField(allow_null=True)
    rubric = serializers.CharField()
    floor = serializers.DecimalField(max_digits=20, decimal_places=6, allow_null=True)
    target = serializers.DecimalField(max_digits=20, decimal_places=6, allow_null=True)
    cap = serializers.DecimalField(max_digits=6, decimal_places=2)
    bands = BandSerializer(many=True)


class PastVersionSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    status = serializers.CharField()
    rationale = serializers.CharField()
    effective_from = serializers.CharField()
    effective_until = serializers.CharField(allow_null=True)
    approved_at = serializers.DateTimeField(allow_null=True)


class PublishedScorecardSerializer(serializers.Serializer):
    scorecard_id = serializers.IntegerField()
    scorecard_name = serializers.CharField()
    version_id = serializers.IntegerField()
    version_number = serializers.IntegerField()
    partner_types = serializers.ListField(child=serializers.CharField())
    period_kind = serializers.CharField()
    effective_from = serializers.CharField()
    band_excellent = serializers.DecimalField(max_digits=6, decimal_places=2)
    band_good = serializers.DecimalField(max_digits=6, decimal_places=2)
    missing_data = serializers.CharField()
    min_completeness = serializers.DecimalField(max_digits=4, decimal_places=3)
    rationale = serializers.CharField()
    approved_at = serializers.DateTimeField(allow_null=True)
    items = PublishedItemSerializer(many=True)
    history = PastVersionSerializer(many=True)


# --- Observations -----------------------------------------------------------------------------------

VALUE_HELP = "A number; a dot for decimals, no thousands separators. Stored with six decimal places."


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Revenue won by a partner in a quarter",
            value={"partner": 42, "metric": "revenue_won", "period": "FY2026-Q2", "value": "184500.00"},
            request_only=True,
        )
    ]
)
class ObservationSerializer(HidesInternalFields, serializers.ModelSerializer):
    internal_fields = ("recorded_by",)  # who inside the vendor entered a value

    partner = ScopedPrimaryKeyRelatedField(model=Partner, noun="partner")
    partner_name = serializers.CharField(source="partner.name", read_only=True)
    metric = ScopedSlugRelatedField(model=Metric, slug_field="key")
    metric_name = serializers.CharField(source="metric.name", read_only=True)
    period = serializers.CharField(max_length=20, help_text="A fiscal period, e.g. FY2026-Q3 or FY2026-M07.")
    value = serializers.DecimalField(max_digits=None, decimal_places=None, help_text=VALUE_HELP)
    source_ref = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        default="",
        help_text="Your reference for the value (a request or record id). The same value with the same "
        "reference is recorded once, however often it is sent.",
    )
    note = serializers.CharField(required=False, allow_blank=True, default="", write_only=True, max_length=500)
    recorded_by = serializers.SlugRelatedField(slug_field="email", read_only=True, allow_null=True)
    is_current = serializers.SerializerMethodField()

    class Meta:
        model = MetricObservation
        fields = [
            "id",
            "partner",
            "partner_name",
            "metric",
            "metric_name",
            "period",
            "value",
            "source",
            "source_ref",
            "note",
            "recorded_at",
            "recorded_by",
            "superseded_by",
            "is_current",
        ]
        read_only_fields = ["id", "source", "recorded_at", "superseded_by"]
        validators: list = []

    def get_is_current(self, observation) -> bool:
        return observation.superseded_by_id is None


class ObservationBulkItemSerializer(serializers.Serializer):
    """One observation of a bulk request (documentation; items are validated by the service)."""

    partner = serializers.IntegerField(help_text="The partner's id.")
    metric = serializers.CharField(help_text="The metric's key.")
    period = serializers.CharField(help_text="A fiscal period, e.g. FY2026-Q3.")
    value = serializers.DecimalField(max_digits=None, decimal_places=None, help_text=VALUE_HELP)
    source_ref = serializers.CharField(required=False, allow_blank=True)
    note = serializers.CharField(required=False, allow_blank=True)


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Two values, all or nothing",
            value={
                "atomic": True,
                "observations": [
                    {"partner": 42, "metric": "revenue_won", "period": "FY2026-Q2", "value": "184500"},
                    {"partner": 42, "metric": "win_rate", "period": "FY2026-Q2", "value": "0.31"},
                ],
            },
            request_only=True,
        )
    ]
)
class ObservationBulkSerializer(serializers.Serializer):
    atomic = serializers.BooleanField(
        default=True, help_text="True: one invalid observation means none is recorded. False: record the valid ones."
    )
    observations = ObservationBulkItemSerializer(many=True)


class ObservationBulkEnvelopeSerializer(serializers.Serializer):
    """What the bulk endpoint actually parses: the items stay raw so each gets its own errors."""

    atomic = serializers.BooleanField(default=True)
    observations = serializers.ListField(
        child=serializers.JSONField(),
        allow_empty=False,
        max_length=MAX_BULK_ITEMS,
        error_messages={"max_length": f"Send at most {MAX_BULK_ITEMS:,} observations per request."},
    )


@extend_schema_field({"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}})
class FieldErrorsField(serializers.DictField):
    pass


class BulkItemResultSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="The position of the observation in the request, from 0.")
    status = serializers.ChoiceField(choices=["created", "unchanged", "invalid", "valid"])
    id = serializers.IntegerField(allow_null=True, help_text="The observation in force for its key.")
    errors = FieldErrorsField()


class BulkResultSerializer(serializers.Serializer):
    written = serializers.BooleanField()
    created = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    invalid = serializers.IntegerField()
    results = BulkItemResultSerializer(many=True)


class ObservationUploadSerializer(serializers.Serializer):
    file = serializers.FileField(
        help_text="CSV, UTF-8 (with or without BOM): partner (name, HubSpot or Salesforce id) or partner_id, "
        "metric, period, value, and an optional note."
    )
    dry_run = serializers.BooleanField(default=False, help_text="Check the file and report; write nothing.")


class RowErrorSerializer(serializers.Serializer):
    row = serializers.IntegerField(allow_null=True, help_text="The row number; the header is row 1.")
    column = serializers.CharField(allow_blank=True)
    message = serializers.CharField()


class ImportResultSerializer(serializers.Serializer):
    rows = serializers.IntegerField()
    created = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    periods = serializers.ListField(child=serializers.CharField())
    dry_run = serializers.BooleanField()
    written = serializers.BooleanField()
    errors = RowErrorSerializer(many=True)
