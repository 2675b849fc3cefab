"""Deals to per-period observations: every metric against numbers worked out by hand."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pandas as pd
import pytest

from partnerhub.integrations.derive import (
    DEAL_COLUMNS,
    MARKETING_COLUMNS,
    derive_deal_observations,
    derive_marketing_observations,
    period_keys,
)
from scorecards.periods import MONTH, QUARTER, period_containing

D = datetime.date


def deals(*rows) -> pd.DataFrame:
    return pd.DataFrame([dict(zip(DEAL_COLUMNS, row, strict=True)) for row in rows], columns=list(DEAL_COLUMNS))


def derive(frame, **options):
    options = {"kind": QUARTER, "start_month": 1, "currency": "USD", **options}
    return derive_deal_observations(frame, **options)


@pytest.mark.parametrize("start_month", [1, 2, 4, 7, 11, 12])
@pytest.mark.parametrize("kind", [QUARTER, MONTH])
def test_period_keys_agree_with_the_fiscal_calendar(kind, start_month):
    days = [D(2025, 1, 1) + datetime.timedelta(days=offset) for offset in range(0, 800, 13)]
    keys = period_keys(pd.Series(days), kind=kind, start_month=start_month).tolist()
    assert keys == [period_containing(day, kind=kind, start_month=start_month).key for day in days]


def test_missing_dates_have_no_period():
    keys = period_keys(pd.Series([D(2026, 3, 31), None]), kind=QUARTER, start_month=1)
    assert keys.iloc[0] == "FY2026-Q1"
    assert pd.isna(keys.iloc[1])


def test_every_deal_metric_for_one_partner_and_quarter():
    frame = deals(
        # partner, amount, currency, created, close date, closed, won
        (7, Decimal("1000.10"), "USD", D(2026, 7, 1), D(2026, 7, 11), True, True),  # won in 10 days
        (7, Decimal("2000.05"), "usd", D(2026, 7, 5), D(2026, 8, 4), True, True),  # won in 30 days
        (7, Decimal("500"), "USD", D(2026, 8, 1), D(2026, 9, 30), True, False),  # lost
        (7, Decimal("250.25"), "USD", D(2026, 9, 1), None, False, False),  # still open
    )
    values = derive(frame).values()
    q3 = {metric: value for (partner, metric, period), value in values.items() if period == "FY2026-Q3"}
    assert q3 == {
        "pipeline_created": Decimal("3750.40"),
        "deals_registered": Decimal(4),
        "revenue_won": Decimal("3000.15"),
        "deals_won": Decimal(2),
        "deals_closed": Decimal(3),
        "win_rate": Decimal("0.666667"),
        "average_deal_size": Decimal("1500.08"),  # 1500.075 rounds half-even to .08
        "deal_velocity": Decimal("20.000000"),
    }


def test_creation_and_close_fall_in_their_own_periods():
    frame = deals((3, Decimal("900"), "USD", D(2026, 6, 20), D(2026, 7, 2), True, True))
    values = derive(frame).values()
    assert values[(3, "pipeline_created", "FY2026-Q2")] == Decimal("900.00")
    assert values[(3, "deals_registered", "FY2026-Q2")] == 1
    assert (3, "revenue_won", "FY2026-Q2") not in values
    assert values[(3, "revenue_won", "FY2026-Q3")] == Decimal("900.00")
    assert values[(3, "deal_velocity", "FY2026-Q3")] == Decimal(12)
    assert (3, "pipeline_created", "FY2026-Q3") not in values


def test_a_quarter_with_only_lost_deals_has_a_zero_win_rate_and_no_revenue():
    frame = deals((5, Decimal("100"), "USD", D(2026, 1, 2), D(2026, 2, 2), True, False))
    values = derive(frame).values()
    assert values[(5, "win_rate", "FY2026-Q1")] == 0
    assert values[(5, "deals_won", "FY2026-Q1")] == 0
    assert values[(5, "deals_closed", "FY2026-Q1")] == 1
    assert (5, "revenue_won", "FY2026-Q1") not in values
    assert (5, "average_deal_size", "FY2026-Q1") not in values
    assert (5, "deal_velocity", "FY2026-Q1") not in values


def test_sums_of_many_amounts_are_exact():
    frame = deals(*[(1, Decimal("0.10"), "USD", D(2026, 4, 1), D(2026, 4, 2), True, True)] * 10_001)
    values = derive(frame).values()
    assert values[(1, "revenue_won", "FY2026-Q2")] == Decimal("1000.10")
    assert values[(1, "average_deal_size", "FY2026-Q2")] == Decimal("0.10")


def test_other_currencies_are_left_out_of_amounts_but_counted():
    frame = deals(
        (2, Decimal("100"), "USD", D(2026, 4, 1), D(2026, 4, 3), True, True),
        (2, Decimal("999"), "EUR", D(2026, 4, 1), D(2026, 4, 3), True, True),
        (2, Decimal("5"), None, D(2026, 4, 1), None, False, False),
    )
    derived = derive(frame)
    values = derived.values()
    assert values[(2, "revenue_won", "FY2026-Q2")] == Decimal("100.00")
    assert values[(2, "average_deal_size", "FY2026-Q2")] == Decimal("100.00")
    assert values[(2, "deals_won", "FY2026-Q2")] == 2
    assert values[(2, "deals_registered", "FY2026-Q2")] == 3
    assert derived.skipped_currency == {"EUR": 1, "": 1}


def test_fiscal_calendar_and_period_filter():
    frame = deals(
        (4, Decimal("10"), "USD", D(2026, 2, 1), D(2026, 2, 1), True, True),
        (4, Decimal("20"), "USD", D(2026, 5, 1), D(2026, 5, 1), True, True),
    )
    derived = derive(frame, start_month=2, periods={"FY2027-Q2"})
    assert set(derived.observations["period"]) == {"FY2027-Q2"}
    assert derived.values()[(4, "revenue_won", "FY2027-Q2")] == Decimal("20.00")


def test_monthly_periods():
    frame = deals((4, Decimal("10"), "USD", D(2026, 2, 1), D(2026, 3, 9), True, True))
    values = derive(frame, kind=MONTH).values()
    assert values[(4, "deals_registered", "FY2026-M02")] == 1
    assert values[(4, "revenue_won", "FY2026-M03")] == Decimal("10.00")


def test_partners_are_kept_apart_and_the_order_is_stable():
    frame = deals(
        (9, Decimal("1"), "USD", D(2026, 4, 1), None, False, False),
        (8, Decimal("2"), "USD", D(2026, 4, 1), None, False, False),
    )
    first = derive(frame).observations
    second = derive(frame.iloc[::-1].reset_index(drop=True)).observations
    pd.testing.assert_frame_equal(first, second)
    assert first["partner_id"].tolist() == [8, 8, 9, 9]
    assert first["deals"].tolist() == [1, 1, 1, 1]


def test_no_deals_no_observations():
    derived = derive(deals())
    assert derived.observations.empty
    assert derived.values() == {}


def marketing(*rows) -> pd.DataFrame:
    return pd.DataFrame(
        [dict(zip(MARKETING_COLUMNS, row, strict=True)) for row in rows], columns=list(MARKETING_COLUMNS)
    )


def test_marketing_facts_by_kind_period_and_currency():
    facts = marketing(
        (1, "mql", D(2026, 7, 3), Decimal(1), ""),
        (1, "mql", D(2026, 8, 3), Decimal(2), ""),
        (1, "mql", D(2026, 10, 1), Decimal(1), ""),  # next quarter
        (1, "campaign_pipeline", D(2026, 7, 9), Decimal("1500.25"), "USD"),
        (1, "campaign_pipeline", D(2026, 7, 9), Decimal("99"), "EUR"),  # other currency: left out
        (2, "event_attended", D(2026, 9, 30), Decimal(1), ""),
        (2, "unknown_kind", D(2026, 9, 30), Decimal(1), ""),
    )
    derived = derive_marketing_observations(facts, kind=QUARTER, start_month=1, currency="USD")
    assert derived.values() == {
        (1, "mqls_generated", "FY2026-Q3"): Decimal("3.00"),
        (1, "mqls_generated", "FY2026-Q4"): Decimal("1.00"),
        (1, "campaign_influenced_pipeline", "FY2026-Q3"): Decimal("1500.25"),
        (2, "joint_marketing_events", "FY2026-Q3"): Decimal("1.00"),
    }
    assert derived.skipped_currency == {"EUR": 1}
    limited = derive_marketing_observations(facts, kind=QUARTER, start_month=1, currency="USD", periods={"FY2026-Q4"})
    assert limited.values() == {(1, "mqls_generated", "FY2026-Q4"): Decimal("1.00")}


def test_no_marketing_facts_no_observations():
    assert derive_marketing_observations(marketing(), kind=QUARTER, start_month=1, currency="USD").values() == {}
