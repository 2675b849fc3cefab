"""The scoring engine, rule by rule (docs/scoring.md states each rule these tests check)."""

from __future__ import annotations

import hashlib
import math
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from scorecards.scoring import (
    BENCHMARK_COLUMNS,
    CHANGE_COLUMNS,
    COMPONENT_COLUMNS,
    SCORE_COLUMNS,
    Rules,
    ScoringError,
    compute_period,
    explain_change,
    fingerprint,
    items_frame,
    rules_problems,
)

MILLI = Decimal("0.001")


def rules_of(*items, missing_data="renormalize", min_completeness=0.0, band_excellent=80, band_good=60) -> Rules:
    records = [
        {"item_id": i, "metric_key": f"m{i}", "weight": 100 / len(items), **item} for i, item in enumerate(items, 1)
    ]
    return Rules(
        items=items_frame(records),
        band_excellent=band_excellent,
        band_good=band_good,
        missing_data=missing_data,
        min_completeness=min_completeness,
    )


def partners_of(*rows) -> pd.DataFrame:
    """Rows of (partner_id, segment) or (partner_id, segment, size)."""
    rows = [(*row, math.nan) if len(row) == 2 else row for row in rows]
    return pd.DataFrame(rows, columns=["partner_id", "segment", "size"])


def observations_of(*rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["partner_id", "metric_key", "value"]).astype({"value": float})


def one_metric(values: dict[int, float], *, segment="reseller", sizes=None, **item):
    """Score a single item m1 for partners with the given values; returns the components by partner_id."""
    ids = sorted(set(values) | set(sizes or {}))
    partners = partners_of(*[(pid, segment, (sizes or {}).get(pid, math.nan)) for pid in ids])
    observations = observations_of(*[(pid, "m1", value) for pid, value in values.items()])
    result = compute_period(rules=rules_of(item), partners=partners, observations=observations)
    return result.components.set_index("partner_id")


def milli(value: float) -> Decimal:
    return Decimal(value).quantize(MILLI)


# ---------------------------------------------------------------------------------------------
# Which items apply


def test_core_items_apply_to_every_partner_and_plug_in_items_only_to_their_segments():
    linear = {"floor": 0, "target": 1}
    rules = rules_of(linear, {**linear, "applies_to": ("msp",)}, {**linear, "applies_to": ("msp", "referral")})
    partners = partners_of((1, "reseller"), (2, "msp"), (3, "referral"))
    observations = observations_of(*[(pid, f"m{i}", 1.0) for pid in (1, 2, 3) for i in (1, 2, 3)])
    result = compute_period(rules=rules, partners=partners, observations=observations)
    applied = result.components.groupby("partner_id")["metric_key"].agg(tuple).to_dict()
    assert applied == {1: ("m1",), 2: ("m1", "m2", "m3"), 3: ("m1", "m3")}


def test_a_partner_to_whom_no_item_applies_has_no_components_and_is_incomplete():
    rules = rules_of({"applies_to": ("msp",), "floor": 0, "target": 1}, min_completeness=0)
    result = compute_period(
        rules=rules, partners=partners_of((1, "reseller")), observations=observations_of((1, "m1", 5))
    )
    assert result.components.empty
    assert result.scores.iloc[0][["total", "completeness", "rating", "rank"]].tolist() == [0.0, 0.0, "incomplete", 1]


# ---------------------------------------------------------------------------------------------
# Normalization


def test_no_normalization_scores_the_raw_value():
    components = one_metric({1: 37.5}, floor=0, target=50)
    assert components.loc[1, ["raw", "normalized", "points"]].tolist() == [37.5, 37.5, 75.0]


def test_per_size_normalization_divides_by_the_partner_size():
    components = one_metric({1: 600.0, 2: 600.0}, sizes={1: 3, 2: 12}, normalization="per_size", floor=0, target=200)
    assert components["normalized"].tolist() == [200.0, 50.0]
    assert components["points"].tolist() == [100.0, 25.0]


@pytest.mark.parametrize("size", [math.nan, 0.0, -4.0])
def test_a_per_size_item_is_missing_when_the_size_is_unknown_or_not_above_zero(size):
    components = one_metric({1: 600.0}, sizes={1: size}, normalization="per_size", floor=0, target=200)
    assert components.loc[1, "raw"] == 600.0
    assert math.isnan(components.loc[1, "normalized"]) and not components.loc[1, "present"]


def test_percentile_ranks_within_the_segment_with_ties_sharing_the_average_rank():
    components = one_metric({1: 25, 2: 32, 3: 32, 4: 40, 5: 10}, normalization="percentile")
    assert components["normalized"].to_dict() == {1: 25.0, 2: 62.5, 3: 62.5, 4: 100.0, 5: 0.0}
    assert components["points"].to_dict() == {1: 25.0, 2: 62.5, 3: 62.5, 4: 100.0, 5: 0.0}


def test_percentile_of_a_lower_is_better_metric_gives_100_to_the_lowest_value():
    components = one_metric({1: 2.0, 2: 30.0, 3: 10.0}, normalization="percentile", direction="lower")
    assert components["normalized"].to_dict() == {1: 100.0, 2: 0.0, 3: 50.0}


def test_percentile_of_a_partner_alone_in_its_segment_is_50():
    rules = rules_of({"normalization": "percentile"})
    partners = partners_of((1, "reseller"), (2, "reseller"), (3, "msp"))
    observations = observations_of((1, "m1", 5), (2, "m1", 9), (3, "m1", 1))
    components = compute_period(rules=rules, partners=partners, observations=observations).components
    assert components.set_index("partner_id")["normalized"].to_dict() == {1: 0.0, 2: 100.0, 3: 50.0}


def test_percentile_compares_only_partners_of_the_segment_with_a_value():
    rules = rules_of({"normalization": "percentile"})
    partners = partners_of((1, "reseller"), (2, "reseller"), (3, "reseller"), (4, "msp"))
    observations = observations_of((1, "m1", 5), (2, "m1", 9), (4, "m1", 100))
    components = compute_period(rules=rules, partners=partners, observations=observations).components
    normalized = components.set_index("partner_id")["normalized"]
    assert (normalized[1], normalized[2], normalized[4]) == (0.0, 100.0, 50.0)
    assert math.isnan(normalized[3])


def test_percentile_thirds_are_rounded_to_six_decimals():
    components = one_metric({1: 1, 2: 2, 3: 3, 4: 4}, normalization="percentile")
    assert components["normalized"].tolist() == [0.0, 33.333333, 66.666667, 100.0]
    assert components["points"].tolist() == [0.0, 33.333, 66.667, 100.0]


def test_attainment_divides_by_the_segment_target():
    rules = rules_of(
        {"normalization": "attainment", "segment_targets": {"reseller": 200, "msp": 50}, "floor": 0, "target": 1}
    )
    partners = partners_of((1, "reseller"), (2, "msp"))
    observations = observations_of((1, "m1", 150), (2, "m1", 150))
    components = compute_period(rules=rules, partners=partners, observations=observations).components
    assert components["normalized"].tolist() == [0.75, 3.0]
    assert components["points"].tolist() == [75.0, 100.0]


def test_attainment_is_missing_for_a_segment_without_a_target():
    components = one_metric(
        {1: 150}, segment="referral", normalization="attainment", segment_targets={"reseller": 200}, floor=0, target=1
    )
    assert not components.loc[1, "present"] and math.isnan(components.loc[1, "points"])


def test_non_finite_observation_values_count_as_missing():
    components = one_metric({1: math.nan, 2: math.inf, 3: 4.0}, floor=0, target=8)
    assert components["present"].tolist() == [False, False, True]
    assert math.isnan(components.loc[2, "raw"])


# ---------------------------------------------------------------------------------------------
# Rubrics


@pytest.mark.parametrize(
    ("value", "points"),
    [(-10, 0.0), (20, 0.0), (30, 25.0), (50, 75.0), (60, 100.0), (70, 100.0)],
)
def test_linear_points_run_from_zero_at_the_floor_to_100_at_the_target(value, points):
    assert one_metric({1: value}, floor=20, target=60).loc[1, "points"] == points


def test_a_cap_above_100_rewards_going_beyond_the_target_up_to_the_cap():
    components = one_metric({1: 1.05, 2: 1.2, 3: 3.0}, floor=0.5, target=1.0, cap=120)
    assert components["points"].tolist() == [110.0, 120.0, 120.0]


def test_a_cap_below_100_limits_the_points():
    components = one_metric({1: 40, 2: 100}, floor=0, target=100, cap=50)
    assert components["points"].tolist() == [40.0, 50.0]


def test_a_floor_above_the_target_scores_a_lower_is_better_metric():
    components = one_metric({1: 10, 2: 30, 3: 2, 4: 60}, floor=48, target=4, direction="lower")
    assert components["points"].tolist() == [86.364, 40.909, 100.0, 0.0]


def test_percentile_items_default_to_floor_0_and_target_100_unless_given():
    components = one_metric({1: 1, 2: 2, 3: 3}, normalization="percentile", floor=50)
    assert components["points"].tolist() == [0.0, 0.0, 100.0]
    components = one_metric({1: 1, 2: 2, 3: 3}, normalization="percentile")
    assert components["points"].tolist() == [0.0, 50.0, 100.0]


def test_a_floor_equal_to_the_target_is_a_step_giving_the_cap_at_or_beyond_the_target():
    higher = one_metric({1: 9.99, 2: 10, 3: 12}, floor=10, target=10, cap=90)
    assert higher["points"].tolist() == [0.0, 90.0, 90.0]
    lower = one_metric({1: 9.99, 2: 10, 3: 12}, floor=10, target=10, direction="lower")
    assert lower["points"].tolist() == [100.0, 100.0, 0.0]


def test_banded_points_come_from_the_highest_threshold_reached():
    bands = ((1, 40), (3, 70), (5, 100))
    components = one_metric({1: 0, 2: 1, 3: 2.5, 4: 3, 5: 6}, rubric="banded", bands=bands)
    assert components["points"].tolist() == [0.0, 40.0, 40.0, 70.0, 100.0]


def test_banded_thresholds_of_a_lower_is_better_metric_are_ceilings():
    bands = ((4, 100), (12, 70), (24, 40))
    components = one_metric({1: 3, 2: 4, 3: 10, 4: 24, 5: 30}, rubric="banded", bands=bands, direction="lower")
    assert components["points"].tolist() == [100.0, 100.0, 70.0, 40.0, 0.0]


def test_bands_may_be_given_in_any_order_and_as_mappings():
    bands = [{"at_least": 5, "points": 100}, {"at_least": 1, "points": 40}, {"at_least": 3, "points": 70}]
    components = one_metric({1: 4}, rubric="banded", bands=bands)
    assert components.loc[1, "points"] == 70.0


def test_band_points_are_limited_to_the_cap():
    components = one_metric({1: 9}, rubric="banded", bands=((1, 50), (5, 150)), cap=120)
    assert components.loc[1, "points"] == 120.0


def test_a_percentile_item_with_bands_reads_bands_as_floors_even_for_a_lower_is_better_metric():
    components = one_metric(
        {1: 1, 2: 2, 3: 3}, normalization="percentile", direction="lower", rubric="banded", bands=((50, 60), (90, 100))
    )
    assert components["normalized"].tolist() == [100.0, 50.0, 0.0]
    assert components["points"].tolist() == [100.0, 60.0, 0.0]


def test_negative_values_are_scored_like_any_other():
    linear = one_metric({1: -20, 2: -5}, floor=-10, target=0)
    assert linear["points"].tolist() == [0.0, 50.0]
    banded = one_metric({1: -3}, rubric="banded", bands=((-5, 30), (0, 100)))
    assert banded.loc[1, "points"] == 30.0
    per_size = one_metric({1: -100}, sizes={1: 4}, normalization="per_size", floor=-50, target=0)
    assert per_size.loc[1, ["normalized", "points"]].tolist() == [-25.0, 50.0]


# ---------------------------------------------------------------------------------------------
# Missing data, weights and completeness


def two_items_one_missing(missing_data: str, min_completeness: float = 0.0):
    rules = Rules(
        items=items_frame(
            [
                {"item_id": 1, "metric_key": "a", "weight": 60, "floor": 0, "target": 100},
                {"item_id": 2, "metric_key": "b", "weight": 30, "floor": 0, "target": 100},
                {"item_id": 3, "metric_key": "c", "weight": 10, "floor": 0, "target": 100},
            ]
        ),
        band_excellent=80,
        band_good=60,
        missing_data=missing_data,
        min_completeness=min_completeness,
    )
    observations = observations_of((1, "a", 50), (1, "c", 80))
    return compute_period(rules=rules, partners=partners_of((1, "reseller")), observations=observations)


def test_renormalize_shares_a_missing_items_weight_among_the_present_ones():
    result = two_items_one_missing("renormalize")
    components = result.components.set_index("metric_key")
    assert components["effective_weight"].tolist() == [85.714, 0.0, 14.286]
    assert components["contribution"].tolist() == [42.857, 0.0, 11.429]
    assert math.isnan(components.loc["b", "points"])
    assert result.scores.iloc[0]["total"] == 54.286  # 50 * 60/70 + 80 * 10/70, each rounded
    assert result.scores.iloc[0]["completeness"] == 0.7


def test_the_zero_policy_gives_a_missing_item_zero_points_at_its_full_weight():
    result = two_items_one_missing("zero")
    components = result.components.set_index("metric_key")
    assert components["points"].tolist() == [50.0, 0.0, 80.0]
    assert components["effective_weight"].tolist() == [60.0, 30.0, 10.0]
    assert components["contribution"].tolist() == [30.0, 0.0, 8.0]
    assert result.scores.iloc[0][["total", "completeness"]].tolist() == [38.0, 0.7]


def test_weights_not_adding_up_to_100_are_used_relative_to_each_other():
    rules = rules_of({"weight": 1, "floor": 0, "target": 100}, {"weight": 3, "floor": 0, "target": 100})
    observations = observations_of((1, "m1", 100), (1, "m2", 20))
    result = compute_period(rules=rules, partners=partners_of((1, "reseller")), observations=observations)
    assert result.components["effective_weight"].tolist() == [25.0, 75.0]
    assert result.scores.iloc[0]["total"] == 40.0


def test_a_score_below_the_minimum_completeness_is_incomplete_but_keeps_its_total():
    result = two_items_one_missing("renormalize", min_completeness=0.75)
    assert result.scores.iloc[0][["total", "rating", "completeness"]].tolist() == [54.286, "incomplete", 0.7]


def test_completeness_exactly_at_the_minimum_is_rated_normally():
    result = two_items_one_missing("renormalize", min_completeness=0.7)
    assert result.scores.iloc[0]["rating"] == "needs_improvement"


@pytest.mark.parametrize("missing_data", ["renormalize", "zero"])
def test_a_partner_with_no_weight_present_is_incomplete_with_total_zero_whatever_the_minimum(missing_data):
    rules = rules_of({"floor": 0, "target": 1}, {"floor": 0, "target": 1}, missing_data=missing_data)
    result = compute_period(rules=rules, partners=partners_of((1, "reseller")), observations=observations_of())
    assert result.scores.iloc[0][["total", "completeness", "rating"]].tolist() == [0.0, 0.0, "incomplete"]
    assert result.components["contribution"].tolist() == [0.0, 0.0]


def test_no_observations_at_all_gives_zero_incomplete_scores_and_no_benchmarks():
    rules = rules_of({"floor": 0, "target": 1}, {"normalization": "percentile"})
    partners = partners_of((1, "reseller"), (2, "reseller"), (3, "msp"))
    result = compute_period(rules=rules, partners=partners, observations=observations_of())
    assert result.scores["rating"].tolist() == ["incomplete"] * 3
    assert result.scores["rank"].tolist() == [1, 1, 1]
    assert result.benchmarks.empty and list(result.benchmarks.columns) == list(BENCHMARK_COLUMNS)
    assert len(result.components) == 6 and not result.components["present"].any()


def test_no_partners_gives_empty_frames_with_the_interface_columns():
    result = compute_period(
        rules=rules_of({"floor": 0, "target": 1}), partners=partners_of(), observations=observations_of((1, "m1", 3))
    )
    assert (list(result.scores.columns), list(result.components.columns)) == (
        list(SCORE_COLUMNS),
        list(COMPONENT_COLUMNS),
    )
    assert result.scores.empty and result.components.empty and result.benchmarks.empty


def test_a_scorecard_without_items_leaves_every_partner_incomplete():
    rules = Rules(items=items_frame([]), band_excellent=80, band_good=60, missing_data="zero", min_completeness=0)
    result = compute_period(rules=rules, partners=partners_of((1, "reseller")), observations=observations_of())
    assert result.scores.iloc[0][["total", "rating"]].tolist() == [0.0, "incomplete"]


# ---------------------------------------------------------------------------------------------
# Ratings, rank and percentile


@pytest.mark.parametrize(
    ("value", "rating"),
    [(80, "excellent"), (100, "excellent"), (79.999, "good"), (60, "good"), (59.999, "needs_improvement")],
)
def test_ratings_follow_the_published_thresholds_which_are_inclusive(value, rating):
    rules = rules_of({"floor": 0, "target": 100})
    result = compute_period(
        rules=rules, partners=partners_of((1, "reseller")), observations=observations_of((1, "m1", value))
    )
    assert result.scores.iloc[0][["total", "rating"]].tolist() == [value, rating]


def segment_scores(totals: dict[int, float], segment: str = "reseller") -> pd.DataFrame:
    rules = rules_of({"floor": 0, "target": 100})
    partners = partners_of(*[(pid, segment) for pid in totals])
    observations = observations_of(*[(pid, "m1", total) for pid, total in totals.items()])
    return compute_period(rules=rules, partners=partners, observations=observations).scores.set_index("partner_id")


def test_rank_one_is_the_best_total_and_tied_partners_share_the_best_rank_among_them():
    scores = segment_scores({10: 70, 11: 80, 12: 90, 13: 80})
    assert scores["rank"].to_dict() == {10: 4, 11: 2, 12: 1, 13: 2}


def test_percentile_is_the_share_of_the_other_partners_of_the_segment_with_a_lower_total():
    scores = segment_scores({10: 70, 11: 80, 12: 90, 13: 80})
    assert scores["percentile"].to_dict() == {10: 0.0, 11: 33.333, 12: 100.0, 13: 33.333}


def test_a_partner_alone_in_its_segment_ranks_first_at_percentile_50():
    scores = segment_scores({7: 12.5})
    assert scores.loc[7, ["rank", "percentile"]].tolist() == [1, 50.0]


def test_segments_are_ranked_separately():
    rules = rules_of({"floor": 0, "target": 100})
    partners = partners_of((1, "reseller"), (2, "reseller"), (3, "msp"), (4, "msp"))
    observations = observations_of((1, "m1", 10), (2, "m1", 20), (3, "m1", 5), (4, "m1", 99))
    scores = compute_period(rules=rules, partners=partners, observations=observations).scores
    assert scores["rank"].tolist() == [2, 1, 2, 1]


def test_incomplete_partners_are_ranked_by_their_total_like_everyone_else():
    rules = rules_of({"floor": 0, "target": 100}, {"floor": 0, "target": 100}, min_completeness=0.9)
    partners = partners_of((1, "reseller"), (2, "reseller"))
    observations = observations_of((1, "m1", 95), (2, "m1", 60), (2, "m2", 60))
    scores = compute_period(rules=rules, partners=partners, observations=observations).scores
    assert scores[["rating", "total", "rank"]].values.tolist() == [["incomplete", 95.0, 1], ["good", 60.0, 2]]


# ---------------------------------------------------------------------------------------------
# Benchmarks


def test_benchmarks_are_quartiles_of_raw_values_with_linear_interpolation():
    rng = np.random.default_rng(11)
    values = rng.normal(50, 20, 37).round(3)
    rules = rules_of({"normalization": "per_size", "floor": 0, "target": 10})
    partners = partners_of(*[(pid, "reseller", 2.0) for pid in range(37)])
    observations = observations_of(*[(pid, "m1", value) for pid, value in enumerate(values)])
    benchmark = compute_period(rules=rules, partners=partners, observations=observations).benchmarks.iloc[0]
    expected = np.round(np.percentile(values, [25, 50, 75], method="linear"), 6)
    assert benchmark[["p25", "median", "p75"]].tolist() == expected.tolist()
    assert benchmark["partners"] == 37


def test_benchmarks_cover_partners_with_a_value_in_segments_the_item_applies_to():
    rules = rules_of({"floor": 0, "target": 1}, {"floor": 0, "target": 1, "applies_to": ("msp",)})
    partners = partners_of((1, "reseller"), (2, "reseller"), (3, "msp"))
    observations = observations_of((1, "m1", 4), (1, "m2", 7), (3, "m1", 8), (3, "m2", 9))
    benchmarks = compute_period(rules=rules, partners=partners, observations=observations).benchmarks
    assert benchmarks[["segment", "metric_key", "partners", "median"]].values.tolist() == [
        ["msp", "m1", 1, 8.0],
        ["msp", "m2", 1, 9.0],
        ["reseller", "m1", 1, 4.0],
    ]


def test_benchmarks_use_the_raw_value_even_when_it_cannot_be_normalized():
    components_and_benchmarks = compute_period(
        rules=rules_of({"normalization": "per_size", "floor": 0, "target": 1}),
        partners=partners_of((1, "reseller"), (2, "reseller", 2.0)),
        observations=observations_of((1, "m1", 10), (2, "m1", 30)),
    )
    assert components_and_benchmarks.benchmarks.iloc[0][["partners", "median"]].tolist() == [2, 20.0]


# ---------------------------------------------------------------------------------------------
# Rounding and exactness


def test_exact_halves_round_to_the_even_thousandth():
    rules = rules_of({"floor": 0, "target": 100}, {"floor": 0, "target": 100})
    observations = observations_of((1, "m1", 0.001), (1, "m2", 0.003))
    result = compute_period(rules=rules, partners=partners_of((1, "reseller")), observations=observations)
    assert result.components["points"].tolist() == [0.001, 0.003]
    assert result.components["contribution"].tolist() == [0.0, 0.002]  # 0.0005 → 0.000, 0.0015 → 0.002
    assert result.scores.iloc[0]["total"] == 0.002


def random_period(rng: np.random.Generator, partner_ids: np.ndarray, *, missing=0.15):
    segments = np.array(["reseller", "msp", "referral"], dtype=object)
    partners = pd.DataFrame(
        {
            "partner_id": partner_ids,
            "segment": segments[rng.integers(0, 3, len(partner_ids))],
            "size": np.where(rng.random(len(partner_ids)) < 0.1, np.nan, rng.integers(1, 40, len(partner_ids))),
        }
    )
    keys = np.array([f"metric_{j}" for j in range(8)], dtype=object)
    observations = pd.DataFrame(
        {
            "partner_id": np.repeat(partner_ids, len(keys)),
            "metric_key": np.tile(keys, len(partner_ids)),
            "value": np.round(rng.normal(50, 35, len(partner_ids) * len(keys)), 4),
        }
    )
    observations = observations[rng.random(len(observations)) > missing].reset_index(drop=True)
    return partners, observations


def random_rules(rng: np.random.Generator, *, missing_data: str = "renormalize") -> Rules:
    normalizations = ["none", "per_size", "percentile", "attainment"]
    core = rng.dirichlet(np.ones(6)) * 75
    records = []
    for j in range(8):
        normalization = normalizations[int(rng.integers(0, 4))]
        lower = bool(rng.random() < 0.3)
        floor, target = {
            "none": (0.0, 100.0),
            "per_size": (0.0, 10.0),
            "percentile": (math.nan, math.nan),
            "attainment": (0.0, 1.2),
        }[normalization]
        if lower and normalization != "percentile":
            floor, target = target, floor
        banded = bool(rng.random() < 0.3)
        records.append(
            {
                "item_id": 100 + j,
                "metric_key": f"metric_{j}",
                "weight": round(float(core[j]), 2) if j < 6 else 25.0,
                "applies_to": () if j < 6 else (("reseller",) if j == 6 else ("msp", "referral")),
                "normalization": normalization,
                "segment_targets": {"reseller": 60.0, "msp": 40.0},
                "rubric": "banded" if banded else "linear",
                "floor": floor,
                "target": target,
                "cap": float(rng.choice([80.0, 100.0, 120.0])),
                "bands": ((0.0, 10.0), (0.5, 35.0), (30.0, 60.0), (60.0, 100.0)),
                "direction": "lower" if lower else "higher",
            }
        )
    return Rules(
        items=items_frame(records),
        band_excellent=80,
        band_good=55,
        missing_data=missing_data,
        min_completeness=0.6,
    )


def test_every_total_is_exactly_the_sum_of_its_rounded_contributions():
    rng = np.random.default_rng(2024)
    partners, observations = random_period(rng, np.arange(1, 801))
    result = compute_period(rules=random_rules(rng), partners=partners, observations=observations)
    sums: dict[int, Decimal] = {}
    for pid, contribution in zip(result.components["partner_id"], result.components["contribution"], strict=True):
        sums[int(pid)] = sums.get(int(pid), Decimal(0)) + milli(contribution)
    totals = {
        int(pid): milli(total) for pid, total in zip(result.scores["partner_id"], result.scores["total"], strict=True)
    }
    assert totals == {pid: sums.get(pid, Decimal("0.000")) for pid in totals}


def test_computing_twice_gives_bit_identical_frames():
    rng = np.random.default_rng(7)
    partners, observations = random_period(rng, np.arange(1, 301))
    rules = random_rules(rng)
    first = compute_period(rules=rules, partners=partners, observations=observations)
    second = compute_period(rules=rules, partners=partners.copy(), observations=observations.copy())
    for name in ("scores", "components", "benchmarks"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(second, name), check_exact=True)


def test_shuffled_input_rows_give_bit_identical_frames():
    rng = np.random.default_rng(8)
    partners, observations = random_period(rng, rng.permutation(np.arange(1000, 1400)))
    rules = random_rules(rng)
    reference = compute_period(rules=rules, partners=partners, observations=observations)
    shuffled_rules = Rules(
        items=rules.items.sample(frac=1, random_state=3).reset_index(drop=True),
        band_excellent=rules.band_excellent,
        band_good=rules.band_good,
        missing_data=rules.missing_data,
        min_completeness=rules.min_completeness,
    )
    for seed in (1, 2):
        again = compute_period(
            rules=shuffled_rules,
            partners=partners.sample(frac=1, random_state=seed),
            observations=observations.sample(frac=1, random_state=seed),
        )
        for name in ("scores", "components", "benchmarks"):
            pd.testing.assert_frame_equal(getattr(reference, name), getattr(again, name), check_exact=True)


def test_observations_of_other_partners_or_metrics_outside_the_rules_are_ignored():
    rules = rules_of({"floor": 0, "target": 100})
    partners = partners_of((1, "reseller"))
    plain = compute_period(rules=rules, partners=partners, observations=observations_of((1, "m1", 40)))
    noisy = compute_period(
        rules=rules,
        partners=partners,
        observations=observations_of((1, "m1", 40), (2, "m1", 99), (1, "other", 5)),
    )
    for name in ("scores", "components", "benchmarks"):
        pd.testing.assert_frame_equal(getattr(plain, name), getattr(noisy, name), check_exact=True)


def test_the_output_frames_have_the_interface_columns_and_types():
    rng = np.random.default_rng(5)
    partners, observations = random_period(rng, np.arange(1, 51))
    result = compute_period(rules=random_rules(rng), partners=partners, observations=observations)
    assert list(result.scores.columns) == list(SCORE_COLUMNS)
    assert list(result.components.columns) == list(COMPONENT_COLUMNS)
    assert list(result.benchmarks.columns) == list(BENCHMARK_COLUMNS)
    assert result.scores["partner_id"].is_monotonic_increasing
    assert result.scores["rank"].dtype == np.int64 and result.components["present"].dtype == bool
    assert set(result.scores["rating"]) <= {"excellent", "good", "needs_improvement", "incomplete"}


# ---------------------------------------------------------------------------------------------
# Explaining changes


def assert_changes_add_up(change: pd.DataFrame, previous, current):
    before = dict(zip(previous.scores["partner_id"], previous.scores["total"], strict=True))
    after = dict(zip(current.scores["partner_id"], current.scores["total"], strict=True))
    explained: dict[int, Decimal] = {}
    for pid, delta in zip(change["partner_id"], change["delta"], strict=True):
        explained[int(pid)] = explained.get(int(pid), Decimal(0)) + milli(delta)
    assert set(explained) == set(before) & set(after)
    for pid, total in explained.items():
        assert total == milli(after[pid]) - milli(before[pid]), pid


@pytest.mark.parametrize("missing_data", ["renormalize", "zero"])
def test_metric_terms_add_up_exactly_to_the_change_of_total_for_random_inputs(missing_data):
    rng = np.random.default_rng(31 if missing_data == "renormalize" else 32)
    rules = random_rules(rng, missing_data=missing_data)
    previous_partners, previous_observations = random_period(rng, np.arange(1, 1501))
    # Some partners leave, some join, and every partner may change segment between the periods.
    current_partners, current_observations = random_period(rng, np.arange(101, 1601), missing=0.25)
    previous = compute_period(rules=rules, partners=previous_partners, observations=previous_observations)
    current = compute_period(rules=rules, partners=current_partners, observations=current_observations)
    change = explain_change(previous=previous, current=current)
    assert set(change["term"]) == {"metric"}
    assert_changes_add_up(change, previous, current)


def test_the_version_term_carries_the_effect_of_new_rules_and_the_terms_still_add_up():
    rng = np.random.default_rng(77)
    old_rules, new_rules = random_rules(rng), random_rules(rng, missing_data="zero")
    partners, previous_observations = random_period(rng, np.arange(1, 1001))
    _, current_observations = random_period(rng, np.arange(1, 1001))
    previous = compute_period(rules=old_rules, partners=partners, observations=previous_observations)
    rescored = compute_period(rules=new_rules, partners=partners, observations=previous_observations)
    current = compute_period(rules=new_rules, partners=partners, observations=current_observations)
    change = explain_change(previous=previous, current=current, previous_under_current_rules=rescored)
    assert_changes_add_up(change, previous, current)

    version = change[change["term"] == "version"].set_index("partner_id")
    assert len(version) == 1000 and version["metric_key"].isna().all()
    expected = rescored.scores.set_index("partner_id")["total"] - previous.scores.set_index("partner_id")["total"]
    assert [milli(v) for v in version["delta"]] == [milli(v) for v in expected.round(3).loc[version.index]]
    metric = change[change["term"] == "metric"]
    assert_changes_add_up(metric, rescored, current)


def test_the_version_term_comes_first_and_names_no_metric():
    rules = rules_of({"floor": 0, "target": 100}, {"floor": 0, "target": 100})
    reweighted = Rules(
        items=rules.items.assign(weight=[80.0, 20.0]),
        band_excellent=80,
        band_good=60,
        missing_data="renormalize",
        min_completeness=0,
    )
    partners = partners_of((1, "reseller"))
    before = observations_of((1, "m1", 40), (1, "m2", 80))
    after = observations_of((1, "m1", 50), (1, "m2", 80))
    previous = compute_period(rules=rules, partners=partners, observations=before)
    rescored = compute_period(rules=reweighted, partners=partners, observations=before)
    current = compute_period(rules=reweighted, partners=partners, observations=after)
    change = explain_change(previous=previous, current=current, previous_under_current_rules=rescored)
    assert list(change.columns) == list(CHANGE_COLUMNS)
    assert change[["term", "metric_key", "delta"]].values.tolist() == [
        ["version", None, -12.0],  # 60 → 48: the same results weigh differently under the new rules
        ["metric", "m1", 8.0],
        ["metric", "m2", 0.0],
    ]
    assert change["metric_key"].iloc[0] is None


def test_a_metric_scored_in_only_one_period_counts_zero_in_the_other():
    rules = rules_of({"floor": 0, "target": 100}, {"floor": 0, "target": 100, "applies_to": ("msp",)})
    observations = observations_of((1, "m1", 60), (1, "m2", 90))
    previous = compute_period(rules=rules, partners=partners_of((1, "reseller")), observations=observations)
    current = compute_period(rules=rules, partners=partners_of((1, "msp")), observations=observations)
    change = explain_change(previous=previous, current=current)
    assert change[["metric_key", "delta", "before", "after"]].values.tolist() == [
        ["m1", -30.0, 60.0, 30.0],
        ["m2", 45.0, 0.0, 45.0],
    ]


def test_partners_without_a_previous_score_get_no_rows():
    rules = rules_of({"floor": 0, "target": 100})
    previous = compute_period(
        rules=rules, partners=partners_of((1, "reseller")), observations=observations_of((1, "m1", 10))
    )
    current = compute_period(
        rules=rules,
        partners=partners_of((1, "reseller"), (2, "reseller")),
        observations=observations_of((1, "m1", 20), (2, "m1", 30)),
    )
    assert explain_change(previous=previous, current=current)["partner_id"].tolist() == [1]


def test_without_a_previous_period_there_is_nothing_to_explain():
    current = compute_period(
        rules=rules_of({"floor": 0, "target": 100}),
        partners=partners_of((1, "reseller")),
        observations=observations_of((1, "m1", 20)),
    )
    change = explain_change(previous=None, current=current)
    assert change.empty and list(change.columns) == list(CHANGE_COLUMNS)


# ---------------------------------------------------------------------------------------------
# Fingerprints


def fingerprint_case():
    rules = rules_of(
        {"floor": 0, "target": 100},
        {"normalization": "percentile"},
        {"normalization": "per_size", "floor": 0, "target": 10, "applies_to": ("msp",)},
    )
    partners = partners_of((1, "reseller", 4.0), (2, "reseller", 5.0), (3, "msp", 2.5))
    observations = observations_of(
        (1, "m1", 10.0), (1, "m2", 3.0), (2, "m1", 0.945), (2, "m2", 7.0), (3, "m3", 12.0), (1, "unused", 1.0)
    )
    return rules, partners, observations


def test_the_fingerprint_is_the_sha256_of_the_documented_text():
    rules, partners, observations = fingerprint_case()
    peers = hashlib.sha256(b"3.0,7.0").hexdigest()
    text = f"partnerhub-scoring/1\nrules v7\nsegment reseller\nobs m1 0.945\nobs m2 7.0\npeers m2 {peers}"
    digests = fingerprint(rules_fingerprint="v7", observations=observations, partners=partners, rules=rules)
    assert digests[2] == hashlib.sha256(text.encode()).hexdigest()
    nobody = hashlib.sha256(b"").hexdigest()  # no msp partner reported m2
    text = f"partnerhub-scoring/1\nrules v7\nsegment msp\nsize 2.5\nobs m3 12.0\npeers m2 {nobody}"
    assert digests[3] == hashlib.sha256(text.encode()).hexdigest()
    digests = fingerprint(rules_fingerprint="v7", observations=observations, partners=partners)
    text = "partnerhub-scoring/1\nrules v7\nsegment reseller\nsize 4.0\nobs m1 10.0\nobs m2 3.0\nobs unused 1.0"
    assert digests[1] == hashlib.sha256(text.encode()).hexdigest()


def test_the_fingerprint_ignores_row_order_and_changes_with_any_value_it_covers():
    rules, partners, observations = fingerprint_case()
    base = fingerprint(rules_fingerprint="v7", observations=observations, partners=partners, rules=rules)
    shuffled = fingerprint(
        rules_fingerprint="v7",
        observations=observations.sample(frac=1, random_state=4),
        partners=partners.sample(frac=1, random_state=4),
        rules=rules,
    )
    pd.testing.assert_series_equal(base, shuffled, check_exact=True)
    assert base.index.tolist() == [1, 2, 3]

    changed_value = observations.assign(value=observations["value"].where(observations["partner_id"] != 3, 12.5))
    after = fingerprint(rules_fingerprint="v7", observations=changed_value, partners=partners, rules=rules)
    assert (after != base).tolist() == [False, False, True]
    other_rules = fingerprint(rules_fingerprint="v8", observations=observations, partners=partners, rules=rules)
    assert (other_rules != base).all()
    moved = partners.assign(segment=["reseller", "msp", "msp"])
    assert (fingerprint(rules_fingerprint="v7", observations=observations, partners=moved, rules=rules) != base)[2]


def test_with_rules_the_fingerprint_ignores_inputs_the_engine_does_not_read():
    rules, partners, observations = fingerprint_case()
    base = fingerprint(rules_fingerprint="v7", observations=observations, partners=partners, rules=rules)
    # Partner 1 has no per-size item (size unused), and "unused" is in no item.
    noise = observations.assign(value=observations["value"].where(observations["metric_key"] != "unused", 99.0))
    resized = partners.assign(size=[40.0, 5.0, 2.5])
    after = fingerprint(rules_fingerprint="v7", observations=noise, partners=resized, rules=rules)
    pd.testing.assert_series_equal(base, after)
    resized_msp = partners.assign(size=[4.0, 5.0, 3.0])
    assert (fingerprint(rules_fingerprint="v7", observations=observations, partners=resized_msp, rules=rules) != base)[
        3
    ]


def test_with_rules_a_peers_percentile_value_changes_the_fingerprints_of_its_segment():
    rules, partners, observations = fingerprint_case()
    base = fingerprint(rules_fingerprint="v7", observations=observations, partners=partners, rules=rules)
    peer_change = observations.copy()
    peer_change.loc[(peer_change["partner_id"] == 2) & (peer_change["metric_key"] == "m2"), "value"] = 8.0
    after = fingerprint(rules_fingerprint="v7", observations=peer_change, partners=partners, rules=rules)
    assert (after != base).tolist() == [True, True, False]


def test_fingerprints_of_random_inputs_are_stable_under_reordering_and_distinct():
    rng = np.random.default_rng(12)
    partners, observations = random_period(rng, np.arange(1, 201))
    rules = random_rules(rng)
    digests = fingerprint(rules_fingerprint="r", observations=observations, partners=partners, rules=rules)
    again = fingerprint(
        rules_fingerprint="r", observations=observations.sample(frac=1, random_state=1), partners=partners, rules=rules
    )
    pd.testing.assert_series_equal(digests, again, check_exact=True)
    assert digests.str.fullmatch(r"[0-9a-f]{64}").all() and digests.is_unique


# ---------------------------------------------------------------------------------------------
# Rules and inputs the engine refuses


def test_rules_problems_name_every_problem():
    rules = Rules(
        items=items_frame(
            [
                {"item_id": 1, "metric_key": "a", "weight": -1, "floor": 0, "target": 1},
                {"item_id": 2, "metric_key": "b", "weight": 10, "normalization": "log"},
                {"item_id": 3, "metric_key": "c", "weight": 10},
                {"item_id": 4, "metric_key": "d", "weight": 10, "rubric": "banded"},
                {"item_id": 5, "metric_key": "d", "weight": 10, "floor": 0, "target": 1},
                {"item_id": 6, "metric_key": "e", "weight": 10, "rubric": "banded", "bands": ((1, 5), (1, 9))},
                {"item_id": 7, "metric_key": "f", "weight": 10, "floor": 0, "target": 1, "direction": "up"},
                {"item_id": 8, "metric_key": "g", "weight": 10, "floor": 0, "target": 1, "cap": -5},
                {
                    "item_id": 9,
                    "metric_key": "h",
                    "weight": 10,
                    "floor": 0,
                    "target": 1,
                    "normalization": "attainment",
                    "segment_targets": {"msp": 0},
                },
            ]
        ),
        band_excellent=50,
        band_good=70,
        missing_data="ignore",
        min_completeness=1.5,
    )
    problems = rules_problems(rules)
    for fragment in (
        "item 1 (a): the weight",
        "item 2 (b): unknown normalization",
        "item 3 (c): a linear rubric needs a floor and a target",
        "item 4 (d): a banded rubric needs at least one band",
        "A metric appears in more than one item",
        "item 6 (e): two bands have the same threshold",
        "item 7 (f): the direction",
        "item 8 (g): the cap",
        "item 9 (h): the target for segment “msp”",
        "“good” threshold",
        "Missing data must be",
        "minimum completeness",
    ):
        assert any(fragment in problem for problem in problems), fragment
    with pytest.raises(ScoringError, match="unknown normalization"):
        compute_period(rules=rules, partners=partners_of((1, "reseller")), observations=observations_of())


def test_sound_rules_have_no_problems():
    assert rules_problems(random_rules(np.random.default_rng(1))) == []


def test_two_observations_of_the_same_metric_for_a_partner_are_refused():
    with pytest.raises(ScoringError, match="more than one observation"):
        compute_period(
            rules=rules_of({"floor": 0, "target": 1}),
            partners=partners_of((1, "reseller")),
            observations=observations_of((1, "m1", 1), (1, "m1", 2)),
        )


def test_a_partner_listed_twice_or_without_a_segment_is_refused():
    rules = rules_of({"floor": 0, "target": 1})
    with pytest.raises(ScoringError, match="more than once"):
        compute_period(rules=rules, partners=partners_of((1, "a"), (1, "b")), observations=observations_of())
    with pytest.raises(ScoringError, match="needs a segment"):
        compute_period(rules=rules, partners=partners_of((1, None)), observations=observations_of())


def test_frames_missing_a_column_are_refused():
    rules = rules_of({"floor": 0, "target": 1})
    with pytest.raises(ScoringError, match="segment"):
        compute_period(rules=rules, partners=pd.DataFrame({"partner_id": [1]}), observations=observations_of())
    with pytest.raises(ScoringError, match="value"):
        compute_period(
            rules=rules,
            partners=partners_of((1, "a")),
            observations=pd.DataFrame({"partner_id": [1], "metric_key": ["m1"]}),
        )
