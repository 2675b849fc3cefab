"""Reads for scoring: engine inputs without per-partner queries, rule fingerprints, history and baselines."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from partnerhub.partners.models import PartnerStatus
from partnerhub.tenancy.context import tenant_scope
from scorecards.models import ScorecardItem
from scorecards.selectors import (
    baseline_comparison,
    metric_history,
    score_history,
    scoring_inputs,
    version_for_period,
    version_rules,
)
from scorecards.services.governance import version_create_draft
from scorecards.services.recompute import recompute_period
from tests.factories import TenantFactory
from tests.scorecards.scoring_setup import active_version, observe_all, partners

Q1, Q2, Q3 = "FY2026-Q1", "FY2026-Q2", "FY2026-Q3"


@pytest.fixture
def tenant(db):
    tenant = TenantFactory()
    with tenant_scope(tenant):
        yield tenant


def test_engine_inputs_take_the_same_queries_for_3_or_30_partners(tenant):
    version = active_version(segments=("reseller", "msp"))

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            scoring_inputs(version=version, period=Q1)
        return len(ctx.captured_queries)

    observe_all({p: {"revenue_won": 10, "win_rate": 20} for p in partners(3)}, Q1)
    few = queries()
    observe_all({p: {"revenue_won": 10, "win_rate": 20} for p in partners(27, segment="msp")}, Q1)
    assert queries() == few


def test_engine_inputs_hold_the_versions_segments_current_values_and_sizes(tenant):
    version = active_version(segments=("reseller",))
    resellers = partners(2, size=12)
    resellers[1].status = PartnerStatus.TERMINATED
    resellers[1].save()
    other = partners(1, segment="msp")
    values = {resellers[0]: {"revenue_won": "10.5"}, resellers[1]: {"revenue_won": 3}, other[0]: {"win_rate": 4}}
    observe_all(values, Q1)
    inputs = scoring_inputs(version=version, period=Q1)
    assert inputs.partners.to_dict("records") == [{"partner_id": resellers[0].pk, "segment": "reseller", "size": 12.0}]
    assert inputs.observations.to_dict("records") == [
        {"partner_id": resellers[0].pk, "metric_key": "revenue_won", "value": 10.5}
    ]
    assert list(inputs.rules.items["metric_key"]) == ["revenue_won", "win_rate", "certifications"]


def test_the_rules_fingerprint_names_the_rules_not_their_spelling(tenant):
    version = active_version()
    rules, first = version_rules(version)
    # A draft copy has the same rules, so the same fingerprint; unlike the active version's, its items change.
    draft = version_create_draft(scorecard=version.scorecard, by=None)
    assert version_rules(draft)[1] == first
    item = ScorecardItem.objects.get(version=draft, metric__key="win_rate")
    item.weight = Decimal("30.00")  # the same weight written differently
    item.position = 9  # the editor's order is not a rule
    item.save()
    assert version_rules(draft)[1] == first
    item.weight = Decimal("31")
    item.save()
    assert version_rules(draft)[1] != first
    assert rules.band_excellent == 80.0 and rules.missing_data == "renormalize"


def test_a_past_period_is_scored_by_the_version_in_force_then(tenant):
    first = active_version(effective_from="FY2025-Q1")
    first.status = "retired"
    first.save()
    second = active_version(number=2, scorecard=first.scorecard, effective_from=Q2)
    assert version_for_period(scorecard_id=first.scorecard_id, period=Q1) == first
    assert version_for_period(scorecard_id=first.scorecard_id, period=Q3) == second
    assert version_for_period(scorecard_id=first.scorecard_id, period="FY2024-Q4") is None
    assert version_for_period(scorecard_id=first.scorecard_id, period="FY2026-M01") is None


def test_history_shows_eight_periods_oldest_first_with_gaps(tenant):
    version = active_version(items=[("revenue_won", "100", {"floor": "0", "target": "100"})])
    (partner,) = partners(1)
    for period, value in (("FY2025-Q3", 40), ("FY2026-Q1", 55), ("FY2026-Q2", 61)):
        observe_all({partner: {"revenue_won": value}}, period)
        recompute_period(version=version, period=period)
    history = score_history(partner=partner, period=Q3)
    assert [row["period"] for row in history] == [
        "FY2024-Q4",
        "FY2025-Q1",
        "FY2025-Q2",
        "FY2025-Q3",
        "FY2025-Q4",
        "FY2026-Q1",
        "FY2026-Q2",
        "FY2026-Q3",
    ]
    totals = [row["total"] for row in history]
    assert totals == [None, None, None, Decimal("40.000"), None, Decimal("55"), Decimal("61"), None]
    values = metric_history(partner=partner, period=Q3)
    assert list(values.index) == ["revenue_won"] and len(values.columns) == 8
    assert values.loc["revenue_won", "FY2026-Q2"] == 61 and math.isnan(values.loc["revenue_won", "FY2025-Q4"])


def test_a_baseline_comparison_shows_the_difference_in_total_and_per_metric(tenant):
    version = active_version()
    (partner,) = partners(1)
    observe_all({partner: {"revenue_won": 50, "win_rate": 25, "certifications": 1}}, Q1)
    observe_all({partner: {"revenue_won": 80, "win_rate": 25, "certifications": 3}}, Q3)
    for period in (Q1, Q3):
        recompute_period(version=version, period=period)
    comparison = baseline_comparison(partner=partner, period=Q3, baseline=Q1)
    assert comparison["difference"] == comparison["total"] - comparison["baseline_total"] == Decimal("25.000")
    metrics = {row["metric_key"]: row for row in comparison["metrics"]}
    assert metrics["revenue_won"]["current"] - metrics["revenue_won"]["baseline"] == 15
    assert metrics["win_rate"]["current"] == metrics["win_rate"]["baseline"]


def test_a_version_without_items_has_no_inputs_on_either_database(tenant):
    version = active_version(segments=("reseller",))

    inputs = scoring_inputs(version=version, period=Q1, metric_keys=[])

    assert inputs.observations.empty
    assert list(inputs.observations.columns) == ["partner_id", "metric_key", "value"]
