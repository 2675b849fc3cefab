"""Trend flags: regression, stagnation, improving and data gap, for crafted score histories."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from partnerhub.tenancy.context import tenant_scope
from scorecards.flags import FlagRules, trend_flags
from scorecards.models import Score
from scorecards.selectors import scores_flagged
from scorecards.services.recompute import recompute_period
from tests.factories import TenantFactory
from tests.scorecards.scoring_setup import active_version, observe_all, partners

NAN = math.nan
RULES = FlagRules(regression_points=10, stagnation_points=2, streak=3, min_completeness=0.7)


def flags_for(history: list[float], completeness: float = 1.0, rules: FlagRules = RULES) -> set[str]:
    """``history``: totals oldest first, the last is this period's."""
    totals = pd.DataFrame([list(reversed(history))], index=pd.Index([1], name="partner_id"))
    frame = trend_flags(totals, pd.Series([completeness], index=totals.index), rules)
    return {name.removeprefix("flag_") for name, value in frame.iloc[0].items() if value}


@pytest.mark.parametrize(
    "history, expected",
    [
        ([70, 70, 70, 60], {"regression"}),  # a drop of exactly 10 points
        ([70, 70, 70, 60.001], set()),  # 9.999 is not a regression of 10
        ([70, 70, 69, 68], {"regression"}),  # two declines in a row, however small
        ([70, 75, 76, 75], set()),  # one small decline
        ([70, 71, 72, 73], {"improving"}),  # three gains in a row, small ones too: not stagnation
        ([70, 71, 70, 73], set()),
        ([70, 71.5, 70, 71.9], {"stagnation"}),  # under 2 points either way, three times
        ([70, 72, 72, 72], set()),  # a change of exactly 2 is not stagnation
        ([70, 70, 70, 70], {"stagnation"}),
        ([NAN, 70, 71, 72], set()),  # two gains only: the streak needs a score in every period
        ([70, NAN, 71, 72], set()),
        ([NAN, NAN, NAN, 50], set()),  # a first score has no trend
        ([70, 70, 71, 70], {"stagnation"}),  # small moves either way
        ([70, 69.5, 69, 68.5], {"regression"}),  # a slow slide is a regression, not stagnation
    ],
)
def test_trend_flags_for_crafted_histories(history, expected):
    assert flags_for(history) == expected


def test_data_gap_below_the_minimum_completeness_or_without_data():
    assert flags_for([NAN, NAN, NAN, 50], completeness=0.6) == {"data_gap"}
    assert flags_for([NAN, NAN, NAN, 50], completeness=0.7) == set()
    assert flags_for([NAN, NAN, NAN, 0], completeness=0, rules=FlagRules(min_completeness=0)) == {"data_gap"}


def test_the_regression_threshold_is_configurable():
    assert flags_for([70, 70, 70, 64], rules=FlagRules(regression_points=5)) == {"regression"}
    assert flags_for([70, 70, 70, 64]) == set()


@pytest.fixture
def tenant(db):
    tenant = TenantFactory()
    with tenant_scope(tenant):
        yield tenant


def test_recomputed_scores_carry_flags_and_managers_list_partners_by_flag(tenant, settings):
    settings.SCORECARD_REGRESSION_POINTS = 10
    version = active_version(items=[("revenue_won", "100", {"floor": "0", "target": "100"})])
    riser, faller, flat, gappy = partners(4)
    periods = ["FY2025-Q4", "FY2026-Q1", "FY2026-Q2", "FY2026-Q3"]
    for n, period in enumerate(periods):
        values = {riser: {"revenue_won": 50 + 5 * n}, faller: {"revenue_won": 90 - 15 * n}, flat: {"revenue_won": 60}}
        if n % 2 == 0:
            values[gappy] = {"revenue_won": 40}
        observe_all(values, period)
        recompute_period(version=version, period=period)
    last = {s.partner_id: s for s in Score.objects.current().filter(period=periods[-1])}
    assert last[riser.pk].flag_improving and not last[riser.pk].flag_regression
    assert last[faller.pk].flag_regression and not last[faller.pk].flag_improving
    assert last[flat.pk].flag_stagnation
    assert last[gappy.pk].flag_data_gap and last[gappy.pk].rating == "incomplete"
    regressions = scores_flagged(flag="regression", period=periods[-1])
    assert [s.partner_id for s in regressions] == [gappy.pk, faller.pk]  # worst first
    assert [s.partner_id for s in scores_flagged(flag="improving")] == [riser.pk]
    with pytest.raises(ValueError, match="Unknown flag"):
        scores_flagged(flag="sparkly")
