"""Data-health checks: robust z-scores against a partner's history and its segment."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scorecards.health import MetricInfo, check_values

METRICS = {
    "revenue_won": MetricInfo("Revenue won", "currency"),
    "deals_won": MetricInfo("Deals won", "count"),
    "customer_satisfaction": MetricInfo("Customer satisfaction", "score"),
}


def frame(rows, columns):
    return pd.DataFrame(rows, columns=columns)


def incoming(*rows):
    return frame(rows, ["partner_id", "segment", "metric", "period", "value"])


def history(partner_id, metric, values):
    return frame([(partner_id, metric, value) for value in values], ["partner_id", "metric", "value"])


def peers(segment, metric, period, values):
    return frame([(segment, metric, period, value) for value in values], ["segment", "metric", "period", "value"])


NO_PEERS = peers("reseller", "revenue_won", "FY2026-Q3", [])


def test_a_value_in_line_with_history_is_fine():
    checked = check_values(
        incoming((1, "reseller", "revenue_won", "FY2026-Q3", 110_000)),
        history=history(1, "revenue_won", [90_000, 100_000, 105_000, 95_000]),
        peers=NO_PEERS,
        metrics=METRICS,
    )
    row = checked.iloc[0]
    assert not row["suspect"]
    assert row["reasons"] == []
    assert abs(row["history_z"]) < 3.5


def test_the_robust_z_score_is_the_documented_formula():
    # log1p scale for currency: history medians and MAD worked out in numpy.
    values = [100.0, 200.0, 300.0, 400.0]
    scaled = np.log1p(values)
    median = np.median(scaled)
    mad = np.median(np.abs(scaled - median))
    expected = 0.6745 * (np.log1p(10_000) - median) / mad
    checked = check_values(
        incoming((1, "reseller", "revenue_won", "FY2026-Q3", 10_000)),
        history=history(1, "revenue_won", values),
        peers=NO_PEERS,
        metrics=METRICS,
    )
    assert checked.iloc[0]["history_z"] == pytest.approx(expected)


def test_a_jump_far_from_history_and_segment_is_suspect():
    checked = check_values(
        incoming((1, "reseller", "revenue_won", "FY2026-Q3", 9_000_000), (1, "reseller", "deals_won", "FY2026-Q3", 3)),
        history=history(1, "revenue_won", [90_000, 100_000, 105_000, 95_000]),
        peers=peers("reseller", "revenue_won", "FY2026-Q3", [80_000, 120_000, 150_000, 60_000, 110_000]),
        metrics=METRICS,
    )
    row = checked.iloc[0]
    assert row["suspect"]
    assert row["history_z"] > 3.5 and row["segment_z"] > 3.5
    assert "far above this partner's own history" in row["reasons"][0]
    assert "also far from the segment" in row["reasons"][1]
    assert not checked.iloc[1]["suspect"]


def test_a_jump_the_segment_vouches_for_is_not_suspect():
    checked = check_values(
        incoming((1, "reseller", "revenue_won", "FY2026-Q3", 900_000), (1, "reseller", "deals_won", "FY2026-Q3", 4)),
        history=history(1, "revenue_won", [90_000, 100_000, 105_000, 95_000]),
        peers=peers("reseller", "revenue_won", "FY2026-Q3", [800_000, 1_200_000, 950_000, 700_000, 1_000_000]),
        metrics=METRICS,
    )
    row = checked.iloc[0]
    assert row["history_z"] > 3.5
    assert abs(row["segment_z"]) < 3.5
    assert not row["suspect"]


def test_revenue_jumping_with_no_won_deal_is_suspect_even_if_the_segment_vouches():
    checked = check_values(
        incoming((1, "reseller", "revenue_won", "FY2026-Q3", 900_000)),
        history=history(1, "revenue_won", [90_000, 100_000, 105_000, 95_000]),
        peers=peers("reseller", "revenue_won", "FY2026-Q3", [800_000, 1_200_000, 950_000, 700_000, 1_000_000]),
        metrics=METRICS,
        activity=frame([(1, "deals_won", "FY2026-Q3", 0)], ["partner_id", "metric", "period", "value"]),
    )
    row = checked.iloc[0]
    assert row["suspect"]
    assert row["reasons"] == ["Revenue won jumped with no deals won in the period to support it."]


def test_recorded_activity_supports_the_jump():
    checked = check_values(
        incoming((1, "reseller", "revenue_won", "FY2026-Q3", 900_000)),
        history=history(1, "revenue_won", [90_000, 100_000, 105_000, 95_000]),
        peers=peers("reseller", "revenue_won", "FY2026-Q3", [800_000, 1_200_000, 950_000, 700_000, 1_000_000]),
        metrics=METRICS,
        activity=frame([(1, "deals_won", "FY2026-Q3", 5)], ["partner_id", "metric", "period", "value"]),
    )
    assert not checked.iloc[0]["suspect"]


def test_a_drop_far_below_history_is_suspect_when_no_segment_can_say():
    checked = check_values(
        incoming((1, "reseller", "customer_satisfaction", "FY2026-Q3", 1.0)),
        history=history(1, "customer_satisfaction", [8.1, 8.3, 8.0, 8.2]),
        peers=NO_PEERS,
        metrics=METRICS,
    )
    row = checked.iloc[0]
    assert row["suspect"] and row["history_z"] < -3.5
    assert row["reasons"] == [
        f"Customer satisfaction is far below this partner's own history (robust z {row['history_z']:+.1f}).",
        "The segment is too small to vouch for it.",
    ]


def test_a_flat_history_tolerates_small_changes():
    checked = check_values(
        incoming((1, "reseller", "deals_won", "FY2026-Q3", 11), (2, "reseller", "deals_won", "FY2026-Q3", 1000)),
        history=pd.concat([history(1, "deals_won", [10, 10, 10, 10]), history(2, "deals_won", [10, 10, 10, 10])]),
        peers=NO_PEERS,
        metrics=METRICS,
    )
    assert checked["suspect"].tolist() == [False, True]


def test_too_little_history_defers_to_the_segment():
    checked = check_values(
        incoming((1, "reseller", "deals_won", "FY2026-Q3", 400), (2, "reseller", "deals_won", "FY2026-Q3", 5)),
        history=history(1, "deals_won", [3, 4]),
        peers=peers("reseller", "deals_won", "FY2026-Q3", [3, 5, 4, 6, 2, 5]),
        metrics=METRICS,
    )
    first, second = checked.iloc[0], checked.iloc[1]
    assert pd.isna(first["history_z"])
    assert first["suspect"] and "not enough history" in first["reasons"][0]
    assert not second["suspect"]


def test_a_new_partner_in_a_small_segment_is_never_suspect():
    checked = check_values(
        incoming((1, "reseller", "deals_won", "FY2026-Q3", 400)),
        history=history(1, "deals_won", []),
        peers=peers("reseller", "deals_won", "FY2026-Q3", [3, 5]),
        metrics=METRICS,
    )
    assert not checked.iloc[0]["suspect"]
    assert pd.isna(checked.iloc[0]["history_z"]) and pd.isna(checked.iloc[0]["segment_z"])


def test_one_wild_value_in_the_history_does_not_hide_the_next():
    checked = check_values(
        incoming((1, "reseller", "customer_satisfaction", "FY2026-Q3", 1.0)),
        history=history(1, "customer_satisfaction", [8.1, 8.3, 8.0, 8.2, 80.0]),
        peers=NO_PEERS,
        metrics=METRICS,
    )
    assert checked.iloc[0]["suspect"]


def test_nothing_incoming():
    checked = check_values(incoming(), history=history(1, "deals_won", []), peers=NO_PEERS, metrics=METRICS)
    assert checked.empty
