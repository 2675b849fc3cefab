"""Serializers of the scores and benchmarks API (read-only: scores are written by recomputes)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from scorecards.models import Score, SegmentBenchmark
from scorecards.selectors import FLAGS, baseline_comparison


class ComponentSerializer(serializers.Serializer):
    """One item of the scorecard as it scored this partner."""

    item_id = serializers.IntegerField()
    metric_key = serializers.CharField()
    metric = serializers.CharField(help_text="The metric's name when the score was computed.")
    raw = serializers.FloatField(allow_null=True, help_text="The observed value; null when there was none.")
    normalized = serializers.FloatField(allow_null=True, help_text="The value after normalization.")
    points = serializers.FloatField(allow_null=True, help_text="0 to the item's cap, from the rubric.")
    weight = serializers.FloatField(help_text="The item's published weight.")
    effective_weight = serializers.FloatField(help_text="The weight after re-weighting over the data present.")
    contribution = serializers.FloatField(help_text="Points times effective weight / 100: its share of the total.")
    present = serializers.BooleanField(help_text="Whether the partner had a value.")


class ChangeTermSerializer(serializers.Serializer):
    """One term of the change since the previous period; the terms add up exactly to the change."""

    term = serializers.ChoiceField(
        choices=["metric", "version"], help_text="`version`: the effect of new rules since the previous period."
    )
    metric_key = serializers.CharField(allow_null=True)
    metric = serializers.CharField(allow_null=True)
    delta = serializers.FloatField(help_text="Points this term added (negative: removed).")


class ExplanationSerializer(serializers.Serializer):
    previous_period = serializers.CharField(allow_null=True)
    previous_total = serializers.DecimalField(max_digits=7, decimal_places=3, allow_null=True)
    previous_version = serializers.IntegerField(allow_null=True, help_text="The version that scored it.")
    terms = ChangeTermSerializer(many=True)


class BaselineMetricSerializer(serializers.Serializer):
    """One metric in the baseline period and in this score; a metric scored in only one of them counts 0."""

    metric_key = serializers.CharField()
    metric = serializers.CharField(help_text="The metric's name when it was scored.")
    points = serializers.FloatField(allow_null=True, help_text="Rubric points in the baseline period.")
    points_now = serializers.FloatField(allow_null=True, help_text="Rubric points in this score.")
    points_change = serializers.FloatField(allow_null=True, help_text="Null unless both periods have points.")
    contribution = serializers.FloatField(allow_null=True, help_text="Its share of the baseline's total.")
    contribution_now = serializers.FloatField(allow_null=True, help_text="Its share of this score's total.")
    contribution_change = serializers.FloatField(
        allow_null=True, help_text="The contribution changes add up exactly to `change`."
    )


class BaselineSerializer(serializers.Serializer):
    """The same partner's score in a baseline period, and what changed since."""

    period = serializers.CharField(help_text="The baseline period.")
    scored = serializers.BooleanField(help_text="Whether the partner has a score in the baseline period.")
    note = serializers.CharField(help_text="Why nothing is compared; empty when `scored`.")
    total = serializers.DecimalField(max_digits=7, decimal_places=3, allow_null=True, help_text="The baseline's.")
    change = serializers.DecimalField(
        max_digits=7, decimal_places=3, allow_null=True, help_text="This score's total minus the baseline's."
    )
    version = serializers.IntegerField(allow_null=True, help_text="The version that scored the baseline.")
    same_rules = serializers.BooleanField(help_text="Whether both periods were scored by the same version.")
    metrics = BaselineMetricSerializer(many=True)


def baseline_data(score: Score, baseline: str) -> dict:
    """The ``baseline`` object of a score compared with the partner's current score in ``baseline``."""
    comparison = baseline_comparison(partner=score.partner, period=score.period, baseline=baseline, score=score)
    base_version = comparison["baseline_version"]
    return {
        "period": baseline,
        "scored": comparison["scored"],
        "note": comparison["note"],
        "total": comparison["baseline_total"],
        "change": comparison["difference"],
        "version": base_version.pk if base_version else None,
        "same_rules": comparison["same_rules"],
        "metrics": [
            {
                "metric_key": row["metric_key"],
                "metric": row["metric"],
                "points": row["points_baseline"],
                "points_now": row["points_current"],
                "points_change": row["points_change"],
                "contribution": row["baseline"],
                "contribution_now": row["current"],
                "contribution_change": row["change"],
            }
            for row in comparison["metrics"]
        ],
    }


class ScoreSerializer(serializers.ModelSerializer):
    partner_name = serializers.CharField(source="partner.name", read_only=True)
    version_number = serializers.IntegerField(source="version.number", read_only=True)
    scorecard = serializers.CharField(source="version.scorecard.name", read_only=True)
    flags = serializers.SerializerMethodField()

    class Meta:
        model = Score
        fields = [
            "id",
            "partner",
            "partner_name",
            "period",
            "scorecard",
            "version",
            "version_number",
            "revision",
            "is_current",
            "segment",
            "total",
            "rating",
            "completeness",
            "rank",
            "percentile",
            "change",
            "flags",
            "computed_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.ChoiceField(choices=list(FLAGS))))
    def get_flags(self, score: Score) -> list[str]:
        return [flag for flag in FLAGS if getattr(score, f"flag_{flag}")]


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A reseller's quarter",
            value={
                "id": 812,
                "partner": 41,
                "partner_name": "Alpine Systems GmbH",
                "period": "FY2026-Q3",
                "scorecard": "Partner performance",
                "version": 3,
                "version_number": 2,
                "revision": 1,
                "is_current": True,
                "segment": "reseller",
                "total": "74.500",
                "rating": "good",
                "completeness": "1.000",
                "rank": 12,
                "percentile": "81.250",
                "change": "-3.000",
                "flags": [],
                "computed_at": "2026-10-02T02:31:07Z",
                "components": [
                    {
                        "item_id": 17,
                        "metric_key": "revenue_won",
                        "metric": "Revenue won",
                        "raw": 410000.0,
                        "normalized": 0.82,
                        "points": 82.0,
                        "weight": 50.0,
                        "effective_weight": 50.0,
                        "contribution": 41.0,
                        "present": True,
                    }
                ],
                "explanation": {
                    "previous_period": "FY2026-Q2",
                    "previous_total": "77.500",
                    "previous_version": 3,
                    "terms": [
                        {
                            "term": "metric",
                            "metric_key": "revenue_won",
                            "metric": "Revenue won",
                            "delta": -3.0,
                        }
                    ],
                },
                "fingerprint": "9f2c…",
                "baseline": {
                    "period": "FY2025-Q3",
                    "scored": True,
                    "note": "",
                    "total": "68.000",
                    "change": "6.500",
                    "version": 3,
                    "same_rules": True,
                    "metrics": [
                        {
                            "metric_key": "revenue_won",
                            "metric": "Revenue won",
                            "points": 69.0,
                            "points_now": 82.0,
                            "points_change": 13.0,
                            "contribution": 34.5,
                            "contribution_now": 41.0,
                            "contribution_change": 6.5,
                        }
                    ],
                },
            },
            response_only=True,
        )
    ]
)
class ScoreDetailSerializer(ScoreSerializer):
    components = ComponentSerializer(many=True, read_only=True)
    explanation = serializers.SerializerMethodField()
    baseline = serializers.SerializerMethodField()

    class Meta(ScoreSerializer.Meta):
        fields = [*ScoreSerializer.Meta.fields, "components", "explanation", "fingerprint", "baseline"]
        read_only_fields = fields

    @extend_schema_field(BaselineSerializer(allow_null=True))
    def get_baseline(self, score: Score) -> dict | None:
        # Asked for with ?baseline=<period>; the view checked the key. Always the score's own partner.
        baseline = self.context.get("baseline")
        if not baseline:
            return None
        return BaselineSerializer(baseline_data(score, baseline)).data

    @extend_schema_field(ExplanationSerializer)
    def get_explanation(self, score: Score) -> dict:
        # Terms name their metric by key; the name is the one the components were scored with.
        names = {component["metric_key"]: component.get("metric") for component in score.components or []}
        stored = score.explanation or {}
        explanation = {key: stored.get(key) for key in ("previous_period", "previous_total", "previous_version")}
        explanation["terms"] = [
            {**term, "metric": names.get(term.get("metric_key"))} for term in stored.get("terms", [])
        ]
        return ExplanationSerializer(explanation).data


class SegmentBenchmarkSerializer(serializers.ModelSerializer):
    metric = serializers.CharField(source="metric.key", read_only=True)
    metric_name = serializers.CharField(source="metric.name", read_only=True)

    class Meta:
        model = SegmentBenchmark
        fields = ["id", "version", "period", "segment", "metric", "metric_name", "partners", "p25", "median", "p75"]
        read_only_fields = fields
