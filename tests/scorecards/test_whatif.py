"""What-if preview: a draft's rules applied to a closed period and compared with the stored scores.

The world (tests/scorecards/world_data.py) scores two resellers in FY2026-Q3 under version 1:

    partner 1: pipeline 310,000 (best of 2: percentile 100), satisfaction 8.4, training 91%
    partner 2: pipeline  60,000 (worst:      percentile 0),   satisfaction 5.9, training 35%

    item                 weight  points partner 1        points partner 2
    pipeline percentile  40      100                     0
    satisfaction 5 → 9   30      (8.4 - 5) / 4 = 85      (5.9 - 5) / 4 = 22.5
    training bands       30      91 ≥ 80 → 80            35 < 50 → 0
    total                        40 + 25.5 + 24 = 89.5   0 + 6.75 + 0 = 6.75
                                 excellent               needs improvement
"""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from partnerhub.tenancy.context import tenant_scope
from partnerhub.tenancy.models import AuditEvent, Tenant
from scorecards.models import (
    MetricObservation,
    MissingData,
    ObservationSource,
    Rating,
    RecomputeRun,
    Score,
    ScorecardItem,
    ScorecardVersion,
    SegmentBenchmark,
)
from scorecards.services.governance import item_add, item_remove, item_update, version_create_draft, version_update
from scorecards.whatif import Outcome, latest_closed_period, preview_periods, preview_version
from tests.factories import PartnerFactory
from tests.scorecards.world_data import WORLD_TODAY

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme(world):
    with tenant_scope(world.a.tenant):
        yield world.a


@pytest.fixture
def draft(acme):
    """A draft of the world's scorecard copying version 1 (the rules in force)."""
    return version_create_draft(scorecard=acme.extra["scorecards"].scorecard, by=acme.users["admin"])


def period_of(acme) -> str:
    return acme.extra["scorecards"].periods[-1]


def item_for(version, key: str) -> ScorecardItem:
    return ScorecardItem.objects.select_related("version", "metric").get(version=version, metric__key=key)


def counts(preview) -> dict[str, tuple[int, int]]:
    return {row.rating: (row.before, row.after) for row in preview.distribution}


def observe(partner, metric, period, value):
    MetricObservation.objects.create(
        partner=partner, metric=metric, period=period, value=Decimal(value), source=ObservationSource.MANUAL
    )


# --- The numbers ----------------------------------------------------------------------------------


def test_the_rules_in_force_previewed_against_their_own_scores_change_nothing(acme, draft):
    preview = preview_version(draft, period=period_of(acme))
    assert preview.outcome == Outcome.READY
    assert preview.compared == 2
    assert preview.average_change == Decimal("0.000")
    assert preview.movers_up == preview.movers_down == []
    assert counts(preview)[Rating.EXCELLENT] == (1, 1)
    assert counts(preview)[Rating.NEEDS_IMPROVEMENT] == (1, 1)
    assert preview.in_force == [1]


def test_moving_weight_from_pipeline_to_satisfaction_moves_each_partner_by_a_known_amount(acme, draft):
    admin = acme.users["admin"]
    item_update(item=item_for(draft, "pipeline_created"), by=admin, weight="30")
    item_update(item=item_for(draft, "customer_satisfaction"), by=admin, weight="40")
    first, second = acme.partners

    preview = preview_version(draft, period=period_of(acme))

    # Partner 1: 100 * 0.3 + 85 * 0.4 + 80 * 0.3 = 30 + 34 + 24 = 88, down 1.5 from 89.5.
    # Partner 2: 0 * 0.3 + 22.5 * 0.4 + 0 * 0.3 = 9, up 2.25 from 6.75.
    [up] = preview.movers_up
    [down] = preview.movers_down
    assert (up.partner_id, up.name, up.before, up.after, up.change) == (
        second.pk,
        second.name,
        Decimal("6.750"),
        Decimal("9.000"),
        Decimal("2.250"),
    )
    assert (down.partner_id, down.before, down.after, down.change) == (
        first.pk,
        Decimal("89.500"),
        Decimal("88.000"),
        Decimal("-1.500"),
    )
    assert (down.rating_before, down.rating_after) == (Rating.EXCELLENT, Rating.EXCELLENT)
    assert preview.average_change == Decimal("0.375")  # (2.25 - 1.5) / 2
    assert preview.rating_changes == 0


def test_raising_the_excellent_threshold_moves_a_partner_to_good(acme, draft):
    version_update(version=draft, by=acme.users["admin"], band_excellent="90")
    preview = preview_version(draft, period=period_of(acme))
    assert counts(preview) == {
        Rating.EXCELLENT: (1, 0),
        Rating.GOOD: (0, 1),
        Rating.NEEDS_IMPROVEMENT: (1, 1),
        Rating.INCOMPLETE: (0, 0),
    }
    assert preview.rating_changes == 1
    assert preview.average_change == Decimal("0.000")
    assert preview.movers_up == preview.movers_down == []


def test_a_metric_nobody_reports_makes_every_score_incomplete_without_moving_totals(acme, draft):
    # Revenue won (weight 50) has no observations: re-weighting leaves the totals as they were, but
    # only 100 of 150 points of weight have data, 0.667 < 0.7, so both scores become incomplete.
    metrics = acme.extra["scorecards"].metrics
    item_add(version=draft, by=acme.users["admin"], metric=metrics["revenue_won"], weight="50", floor="0", target="1")
    assert draft.missing_data == MissingData.RENORMALIZE
    preview = preview_version(draft, period=period_of(acme))
    assert counts(preview)[Rating.INCOMPLETE] == (0, 2)
    assert counts(preview)[Rating.EXCELLENT] == (1, 0)
    assert preview.average_change == Decimal("0.000")
    assert preview.rating_changes == 2


def test_counting_missing_metrics_as_zero_lowers_the_totals_by_their_share(acme, draft):
    metrics = acme.extra["scorecards"].metrics
    admin = acme.users["admin"]
    item_add(version=draft, by=admin, metric=metrics["revenue_won"], weight="50", floor="0", target="1")
    version_update(version=draft, by=admin, missing_data=MissingData.ZERO)
    # Every total is now scaled by 100 / 150: 89.5 → 59.667, 6.75 → 4.5.
    preview = preview_version(draft, period=period_of(acme))
    changes = {row.partner_id: row.change for row in preview.movers_down}
    assert changes == {acme.partners[0].pk: Decimal("-29.833"), acme.partners[1].pk: Decimal("-2.250")}
    assert [row.partner_id for row in preview.movers_down] == [acme.partners[0].pk, acme.partners[1].pk]


def test_partners_outside_the_drafts_segments_would_lose_their_score(acme, draft):
    version_update(version=draft, by=acme.users["admin"], partner_types=["msp"])
    item_remove(item=item_for(draft, "training_completion_rate"), by=acme.users["admin"])
    preview = preview_version(draft, period=period_of(acme))
    assert preview.lost_count == 2
    assert sorted(row.partner_id for row in preview.lost) == sorted(p.pk for p in acme.partners)
    assert all(row.after is None and row.rating_after is None for row in preview.lost)
    assert preview.compared == 0
    assert preview.average_change is None
    assert counts(preview)[Rating.EXCELLENT] == (1, 0)


def test_a_partner_with_data_but_no_stored_score_would_gain_one(acme, draft):
    # A third reseller: pipeline 200,000 sits between the others (percentile 50), satisfaction 7
    # gives 50 points and training 80% the 80 band: 50 * 0.4 + 50 * 0.3 + 80 * 0.3 = 59.
    metrics = acme.extra["scorecards"].metrics
    period = period_of(acme)
    newcomer = PartnerFactory(tenant=acme.tenant, name="Acme Newcomer")
    observe(newcomer, metrics["pipeline_created"], period, "200000")
    observe(newcomer, metrics["customer_satisfaction"], period, "7")
    observe(newcomer, metrics["training_completion_rate"], period, "80")

    preview = preview_version(draft, period=period)

    [gained] = preview.gained
    assert (gained.partner_id, gained.name, gained.before, gained.after) == (
        newcomer.pk,
        "Acme Newcomer",
        None,
        Decimal("59.000"),
    )
    assert gained.rating_after == Rating.NEEDS_IMPROVEMENT
    assert preview.gained_count == 1
    assert counts(preview)[Rating.NEEDS_IMPROVEMENT] == (1, 2)
    assert preview.average_change == Decimal("0.000")  # the other two keep their percentiles


# --- Which period ---------------------------------------------------------------------------------


def test_by_default_the_last_closed_period_is_previewed(acme, draft):
    preview = preview_version(draft, today=WORLD_TODAY)
    assert preview.period == period_of(acme) == "FY2026-Q3"
    assert preview.is_ready


def test_the_last_closed_period_follows_the_tenants_fiscal_year(acme, draft):
    Tenant.objects.filter(pk=acme.tenant.pk).update(fiscal_year_start_month=4)
    draft.tenant.refresh_from_db()
    # With an April start, 15 October 2026 falls in FY2027 Q3 (October to December).
    assert latest_closed_period(draft, today=WORLD_TODAY).key == "FY2027-Q2"


def test_a_period_that_has_not_closed_is_refused_with_a_reason(acme, draft):
    preview = preview_version(draft, period="FY2026-Q4", today=WORLD_TODAY)
    assert preview.outcome == Outcome.NOT_A_CLOSED_PERIOD
    assert "FY2026-Q4 has not closed yet" in preview.message


@pytest.mark.parametrize(
    "period, words", [("next quarter", "is not a period"), ("FY2026-M07", "scores quarters; choose a quarter")]
)
def test_a_period_that_is_not_one_of_the_versions_kind_is_refused(acme, draft, period, words):
    preview = preview_version(draft, period=period, today=WORLD_TODAY)
    assert preview.outcome == Outcome.NOT_A_CLOSED_PERIOD
    assert words in preview.message


def test_a_closed_period_without_stored_scores_has_nothing_to_compare(acme, draft):
    preview = preview_version(draft, period="FY2024-Q1", today=WORLD_TODAY)
    assert preview.outcome == Outcome.NO_STORED_SCORES
    assert "nothing to compare" in preview.message
    assert preview.distribution == []


def test_the_preview_periods_are_the_closed_ones_with_stored_scores_newest_first(acme, draft):
    assert preview_periods(draft, today=WORLD_TODAY) == ["FY2026-Q3", "FY2026-Q2"]
    # On the last day of Q3 the quarter has not closed yet.
    assert preview_periods(draft, today=datetime.date(2026, 9, 30)) == ["FY2026-Q2"]


def test_rules_the_engine_cannot_apply_are_named_instead_of_scored(acme, draft):
    item = item_for(draft, "customer_satisfaction")
    item_update(item=item, by=acme.users["admin"], floor=None)
    preview = preview_version(draft, period=period_of(acme))
    assert preview.outcome == Outcome.NOT_SCORABLE
    assert any("linear rubric needs a floor and a target" in problem for problem in preview.problems)


def test_a_draft_without_items_asks_for_a_metric(acme):
    empty = version_create_draft(
        scorecard=acme.extra["scorecards"].scorecard, by=acme.users["admin"], copy_latest=False
    )
    preview = preview_version(empty, period=period_of(acme))
    assert preview.outcome == Outcome.NOT_SCORABLE
    assert preview.problems == ["Add at least one metric to see what the rules would do."]


# --- Reads only, set-based -------------------------------------------------------------------------


def test_a_preview_writes_nothing(acme, draft):
    item_update(item=item_for(draft, "pipeline_created"), by=acme.users["admin"], weight="10")

    def snapshot():
        return (
            Score.objects.count(),
            Score.objects.current().count(),
            RecomputeRun.objects.count(),
            SegmentBenchmark.objects.count(),
            AuditEvent.objects.count(),
            sorted(Score.objects.values_list("pk", "total", "rating", "revision", "is_current")),
        )

    before = snapshot()
    preview = preview_version(draft, period=period_of(acme))
    assert preview.is_ready and preview.movers_down  # it did compute something different
    assert snapshot() == before


def test_a_previews_queries_do_not_grow_with_partners(acme, draft):
    metrics = acme.extra["scorecards"].metrics
    period = period_of(acme)
    from scorecards.services.recompute import recompute_period

    def queries() -> tuple[int, int]:
        fresh = ScorecardVersion.objects.get(pk=draft.pk)  # nothing cached from an earlier call
        with CaptureQueriesContext(connection) as captured:
            preview = preview_version(fresh, period=period)
        assert preview.is_ready
        return len(captured), preview.compared

    def add_partners(count: int) -> None:
        for n in range(count):
            partner = PartnerFactory(tenant=acme.tenant)
            observe(partner, metrics["pipeline_created"], period, str(1000 * (n + 1)))
            observe(partner, metrics["customer_satisfaction"], period, "7")
        recompute_period(version=acme.extra["scorecards"].version, period=period)

    item_update(item=item_for(draft, "pipeline_created"), by=acme.users["admin"], weight="20")
    add_partners(1)
    few, compared_few = queries()
    add_partners(24)
    many, compared_many = queries()
    assert (compared_few, compared_many) == (3, 27)
    assert few == many <= 9
