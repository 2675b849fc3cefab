"""The scoring engine: a period's observations and a version's rules in; scores, components and benchmarks out.

Pure computation with pandas and numpy: no ORM, no database, no clock. A selector builds the input
frames and a service stores the result. Every formula here is stated, with a worked example, in
``docs/scoring.md``; keep the two in step.

Exactness: points, contributions and totals are carried as integers in thousandths of a point, and
a total is the sum of its rounded contributions, so score changes decompose exactly. Inputs are
put in a canonical order first, so the same inputs in any row order give bit-identical frames.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

# Bumped whenever a formula changes, so a fingerprint never vouches for a score computed differently.
METHOD_VERSION = "1"

# The same strings as the choices in scorecards.models; repeated so this module never imports Django.
NORMALIZATIONS = ("none", "per_size", "percentile", "attainment")
RUBRICS = ("linear", "banded")
DIRECTIONS = ("higher", "lower")
MISSING_DATA = ("renormalize", "zero")
EXCELLENT, GOOD, NEEDS_IMPROVEMENT, INCOMPLETE = "excellent", "good", "needs_improvement", "incomplete"

ITEM_COLUMNS = (
    "item_id",
    "metric_key",
    "weight",
    "applies_to",
    "normalization",
    "segment_targets",
    "rubric",
    "floor",
    "target",
    "cap",
    "bands",
    "direction",
)
SCORE_COLUMNS = ("partner_id", "segment", "total", "rating", "completeness", "rank", "percentile")
COMPONENT_COLUMNS = (
    "partner_id",
    "item_id",
    "metric_key",
    "raw",
    "normalized",
    "points",
    "weight",
    "effective_weight",
    "contribution",
    "present",
)
BENCHMARK_COLUMNS = ("segment", "metric_key", "partners", "p25", "median", "p75")
CHANGE_COLUMNS = ("partner_id", "term", "metric_key", "delta", "before", "after")

_DEFAULT_CAP = 100.0
_PERCENTILE_FLOOR, _PERCENTILE_TARGET = 0.0, 100.0
_WEIGHT_UNITS = 1_000_000  # weights are taken to 6 decimals and summed as integers


class ScoringError(ValueError):
    """Rules or input frames the engine cannot score; the message names every problem."""


@dataclass(frozen=True)
class Rules:
    """One scorecard version's rules, as the engine reads them.

    ``items`` has one row per scorecard item with the columns in ``ITEM_COLUMNS`` (build it with
    ``items_frame``): item_id, metric_key, weight, applies_to (tuple of segment keys, empty for a
    core item), normalization, segment_targets (dict), rubric, floor, target (NaN when unset),
    cap (max points, default 100), bands (((at_least, points), ...)), direction ('higher'|'lower').
    """

    items: pd.DataFrame
    band_excellent: float
    band_good: float
    missing_data: str  # 'renormalize' | 'zero'
    min_completeness: float  # 0..1


@dataclass(frozen=True)
class ScoringResult:
    """Everything one period's computation produces; each frame is sorted by its key columns."""

    scores: pd.DataFrame  # SCORE_COLUMNS, one row per partner, by partner_id
    components: pd.DataFrame  # COMPONENT_COLUMNS, one row per partner and applicable item, by partner_id, item_id
    benchmarks: pd.DataFrame  # BENCHMARK_COLUMNS, by segment, metric_key


@dataclass(frozen=True)
class _Item:
    item_id: int
    metric_key: str
    weight_units: int
    applies_to: tuple[str, ...]
    normalization: str
    segment_targets: dict[str, float]
    rubric: str
    floor: float
    target: float
    cap: float
    bands: tuple[tuple[float, float], ...]
    direction: str

    @property
    def weight(self) -> float:
        return self.weight_units / _WEIGHT_UNITS

    @property
    def better_is_higher(self) -> bool:
        # A percentile is already turned so that higher is better, whatever the metric's direction.
        return self.normalization == "percentile" or self.direction == "higher"


# ---------------------------------------------------------------------------------------------
# Rules


def items_frame(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """An items frame from dicts, with defaults for the optional columns."""
    defaults = {
        "applies_to": (),
        "normalization": "none",
        "segment_targets": {},
        "rubric": "linear",
        "floor": math.nan,
        "target": math.nan,
        "cap": _DEFAULT_CAP,
        "bands": (),
        "direction": "higher",
    }
    rows = [{**defaults, **record} for record in records]
    for row in rows:
        row["applies_to"] = tuple(row["applies_to"] or ())
        row["bands"] = tuple(band if isinstance(band, Mapping) else tuple(band) for band in row["bands"] or ())
        row["segment_targets"] = dict(row["segment_targets"] or {})
    return pd.DataFrame(rows, columns=list(ITEM_COLUMNS))


_SEQUENCES = (list, tuple, set, frozenset, np.ndarray)


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA:
        return True
    if isinstance(value, (*_SEQUENCES, Mapping, str)):
        return False
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return False


def _number(value: Any, default: float = math.nan) -> float:
    """A float, ``default`` when missing; NaN (refused by the checks) when not a number at all."""
    if _missing(value):
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _band_pairs(value: Any) -> list[tuple[Any, Any]]:
    pairs = []
    for band in value:
        if isinstance(band, Mapping):
            pairs.append((band.get("at_least"), band.get("points")))
        else:
            at_least, points = band
            pairs.append((at_least, points))
    return pairs


def _parse_item(row: Mapping[str, Any], problems: list[str]) -> _Item | None:
    label = f"item {row.get('item_id')} ({row.get('metric_key')})"
    before = len(problems)
    weight = _number(row.get("weight"))
    if not math.isfinite(weight) or weight < 0:
        problems.append(f"{label}: the weight must be a number of at least 0.")
    normalization = row.get("normalization") or "none"
    if normalization not in NORMALIZATIONS:
        problems.append(f"{label}: unknown normalization “{normalization}”.")
    rubric = row.get("rubric") or "linear"
    if rubric not in RUBRICS:
        problems.append(f"{label}: unknown rubric “{rubric}”.")
    direction = row.get("direction") or "higher"
    if direction not in DIRECTIONS:
        problems.append(f"{label}: the direction must be “higher” or “lower”, not “{direction}”.")
    applies_to = row.get("applies_to")
    if _missing(applies_to):
        applies_to = ()
    if not isinstance(applies_to, _SEQUENCES) or not all(isinstance(key, str) for key in applies_to):
        problems.append(f"{label}: applies_to must be a list of segment keys.")
        applies_to = ()
    targets = row.get("segment_targets")
    if _missing(targets):
        targets = {}
    if not isinstance(targets, Mapping):
        problems.append(f"{label}: segment targets must map segment keys to numbers.")
        targets = {}
    segment_targets = {}
    for segment, value in targets.items():
        target_value = _number(value)
        if not math.isfinite(target_value) or target_value <= 0:
            problems.append(f"{label}: the target for segment “{segment}” must be a number above 0.")
        segment_targets[str(segment)] = target_value
    floor, target = _number(row.get("floor")), _number(row.get("target"))
    if normalization == "percentile":
        floor = _PERCENTILE_FLOOR if math.isnan(floor) else floor
        target = _PERCENTILE_TARGET if math.isnan(target) else target
    if rubric == "linear" and not (math.isfinite(floor) and math.isfinite(target)):
        problems.append(f"{label}: a linear rubric needs a floor and a target.")
    cap = _number(row.get("cap"), _DEFAULT_CAP)
    if not math.isfinite(cap) or cap < 0:
        problems.append(f"{label}: the cap must be a number of at least 0.")
    raw_bands = row.get("bands")
    if _missing(raw_bands):
        raw_bands = ()
    try:
        if not isinstance(raw_bands, _SEQUENCES):
            raise TypeError
        bands = tuple(sorted((_number(at_least), _number(points)) for at_least, points in _band_pairs(raw_bands)))
    except (TypeError, ValueError):
        problems.append(f"{label}: bands must be pairs of (at least, points).")
        bands = ()
    if any(not math.isfinite(at_least) or not math.isfinite(points) or points < 0 for at_least, points in bands):
        problems.append(f"{label}: every band needs a threshold and points of at least 0.")
    if len({at_least for at_least, _ in bands}) != len(bands):
        problems.append(f"{label}: two bands have the same threshold.")
    if rubric == "banded" and not bands:
        problems.append(f"{label}: a banded rubric needs at least one band.")
    if len(problems) > before:
        return None
    return _Item(
        item_id=int(row["item_id"]),
        metric_key=str(row["metric_key"]),
        weight_units=round(weight * _WEIGHT_UNITS),
        applies_to=tuple(sorted(set(applies_to))),
        normalization=normalization,
        segment_targets=segment_targets,
        rubric=rubric,
        floor=floor,
        target=target,
        cap=cap,
        bands=bands,
        direction=direction,
    )


def _parse_rules(rules: Rules) -> tuple[list[_Item], list[str]]:
    problems: list[str] = []
    items_in = rules.items
    required = {"item_id", "metric_key", "weight"}
    missing_columns = sorted(required - set(items_in.columns))
    if missing_columns:
        return [], [f"The items frame lacks the column(s) {', '.join(missing_columns)}."]
    records = items_in.to_dict("records")
    items = [item for row in records if (item := _parse_item(row, problems)) is not None]
    items.sort(key=lambda item: item.item_id)
    if items_in["item_id"].duplicated().any():
        problems.append("Two items have the same item_id.")
    if items_in["metric_key"].duplicated().any():
        problems.append("A metric appears in more than one item.")
    excellent, good = _number(rules.band_excellent), _number(rules.band_good)
    if not (math.isfinite(excellent) and math.isfinite(good)) or good > excellent:
        problems.append("The “good” threshold must be a number that does not exceed the “excellent” one.")
    if rules.missing_data not in MISSING_DATA:
        problems.append(f"Missing data must be “renormalize” or “zero”, not “{rules.missing_data}”.")
    min_completeness = _number(rules.min_completeness)
    if not 0 <= min_completeness <= 1:
        problems.append("The minimum completeness must be between 0 and 1.")
    return items, problems


def rules_problems(rules: Rules) -> list[str]:
    """Why the engine cannot apply these rules, one sentence per problem; empty when it can."""
    return _parse_rules(rules)[1]


def _checked_rules(rules: Rules) -> list[_Item]:
    items, problems = _parse_rules(rules)
    if problems:
        raise ScoringError(" ".join(problems))
    return items


# ---------------------------------------------------------------------------------------------
# Inputs


@dataclass(frozen=True)
class _Partners:
    ids: np.ndarray  # int64, ascending
    segments: np.ndarray  # object, the segment key of each partner
    codes: np.ndarray  # int64 index into labels
    labels: np.ndarray  # the distinct segment keys, sorted
    size: np.ndarray  # float64, NaN when unknown


def _prepare_partners(partners: pd.DataFrame) -> _Partners:
    missing_columns = sorted({"partner_id", "segment"} - set(partners.columns))
    if missing_columns:
        raise ScoringError(f"The partners frame lacks the column(s) {', '.join(missing_columns)}.")
    frame = partners.sort_values("partner_id", kind="stable")
    ids = frame["partner_id"].to_numpy(dtype=np.int64)
    if len(ids) and (np.diff(ids) == 0).any():
        raise ScoringError("A partner appears more than once in the partners frame.")
    segments = frame["segment"].astype(object).to_numpy()
    if pd.isna(segments).any():
        raise ScoringError("Every partner needs a segment (its partner type key).")
    segments = np.array([str(segment) for segment in segments], dtype=object)
    codes, labels = pd.factorize(segments, sort=True)
    size = (
        pd.to_numeric(frame["size"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        if "size" in frame.columns
        else np.full(len(ids), np.nan)
    )
    return _Partners(ids, segments, codes.astype(np.int64), np.asarray(labels, dtype=object), size)


def _observation_frame(observations: pd.DataFrame) -> pd.DataFrame:
    missing_columns = sorted({"partner_id", "metric_key", "value"} - set(observations.columns))
    if missing_columns:
        raise ScoringError(f"The observations frame lacks the column(s) {', '.join(missing_columns)}.")
    return pd.DataFrame(
        {
            "partner_id": observations["partner_id"].to_numpy(dtype=np.int64),
            "metric_key": observations["metric_key"].astype(object).to_numpy(),
            "value": pd.to_numeric(observations["value"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan),
        }
    )


def _raw_matrix(observations: pd.DataFrame, partners: _Partners, items: list[_Item]) -> np.ndarray:
    """Partners x items matrix of raw values; NaN where there is no (finite) observation."""
    raw = np.full((len(partners.ids), len(items)), np.nan)
    obs = _observation_frame(observations)
    rows = pd.Index(partners.ids).get_indexer(obs["partner_id"].to_numpy())
    cols = pd.Index([item.metric_key for item in items], dtype=object).get_indexer(obs["metric_key"].to_numpy())
    used = (rows >= 0) & (cols >= 0)
    rows, cols, values = rows[used], cols[used], obs["value"].to_numpy()[used]
    cells = rows.astype(np.int64) * len(items) + cols
    if len(cells) and np.bincount(cells, minlength=raw.size).max() > 1:
        raise ScoringError("A partner has more than one observation of the same metric.")
    values = np.where(np.isfinite(values), values, np.nan) + 0.0  # -0.0 reads as 0.0
    raw[rows, cols] = values
    return raw


# ---------------------------------------------------------------------------------------------
# Normalization and rubrics


def _applies(item: _Item, partners: _Partners) -> np.ndarray:
    if not item.applies_to:
        return np.ones(len(partners.ids), dtype=bool)
    return np.isin(partners.segments, np.asarray(item.applies_to, dtype=object))


def _normalize(item: _Item, raw: np.ndarray, has_raw: np.ndarray, partners: _Partners) -> np.ndarray:
    """The normalized value where it can be computed, NaN elsewhere; rounded to 6 decimals."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if item.normalization == "none":
            normalized = np.where(has_raw, raw, np.nan)
        elif item.normalization == "per_size":
            usable = has_raw & np.isfinite(partners.size) & (partners.size > 0)
            normalized = np.where(usable, raw / partners.size, np.nan)
        elif item.normalization == "attainment":
            by_code = np.array([item.segment_targets.get(label, np.nan) for label in partners.labels], dtype=float)
            target = by_code[partners.codes] if len(by_code) else np.full(len(raw), np.nan)
            normalized = np.where(has_raw & np.isfinite(target), raw / target, np.nan)
        else:
            normalized = _percentile(item, raw, has_raw, partners.codes)
    return np.round(normalized, 6) + 0.0


def _percentile(item: _Item, raw: np.ndarray, has_raw: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Mid-rank percentile within the segment among partners with a value: worst 0, best 100, alone 50."""
    normalized = np.full(len(raw), np.nan)
    where = np.flatnonzero(has_raw)
    if not len(where):
        return normalized
    groups = pd.Series(raw[where]).groupby(codes[where])
    # Ranked from the worst value up, ties sharing the average of their ranks.
    rank = groups.rank(method="average", ascending=item.direction == "higher").to_numpy()
    count = groups.transform("size").to_numpy()
    normalized[where] = np.where(count > 1, 100.0 * (rank - 1.0) / np.maximum(count - 1.0, 1.0), 50.0)
    return normalized


def _points(item: _Item, normalized: np.ndarray) -> np.ndarray:
    """Points before rounding; NaN where the normalized value is NaN."""
    x = normalized
    if item.rubric == "linear":
        if item.target == item.floor:
            # No slope to follow: a step, all the cap at or beyond the target and nothing before it.
            reached = x >= item.target if item.better_is_higher else x <= item.target
            points = np.where(reached, item.cap, 0.0)
        else:
            points = np.clip(100.0 * (x - item.floor) / (item.target - item.floor), 0.0, item.cap)
    else:
        thresholds = np.array([at_least for at_least, _ in item.bands])
        band_points = np.minimum(np.array([points for _, points in item.bands]), item.cap)
        filled = np.where(np.isnan(x), 0.0, x)
        if item.better_is_higher:
            # The band with the highest threshold the value reaches (value >= threshold).
            index = np.searchsorted(thresholds, filled, side="right") - 1
            reached = index >= 0
        else:
            # The band with the lowest threshold the value stays within (value <= threshold).
            index = np.searchsorted(thresholds, filled, side="left")
            reached = index < len(thresholds)
        points = np.where(reached, band_points[np.clip(index, 0, len(thresholds) - 1)], 0.0)
    return np.where(np.isnan(x), np.nan, points)


def _milli(values: np.ndarray) -> np.ndarray:
    """Round to thousandths, half to even, as integers."""
    return np.rint(values * 1000.0).astype(np.int64)


def _from_milli(values: np.ndarray) -> np.ndarray:
    return values.astype(np.float64) / 1000.0


def _milli_of(column: pd.Series) -> np.ndarray:
    return _milli(column.to_numpy(dtype=np.float64, na_value=0.0))


# ---------------------------------------------------------------------------------------------
# The period


def compute_period(*, rules: Rules, partners: pd.DataFrame, observations: pd.DataFrame) -> ScoringResult:
    """Score every partner of one period under one version's rules.

    ``partners``: partner_id, segment (partner type key), size (NaN when unknown).
    ``observations``: partner_id, metric_key, value; at most one per partner and metric. Observations
    of other partners or of metrics outside the rules are ignored.
    """
    items = _checked_rules(rules)
    people = _prepare_partners(partners)
    raw = _raw_matrix(observations, people, items)
    n_partners, n_items = raw.shape

    applicable = np.zeros((n_partners, n_items), dtype=bool)
    normalized = np.full((n_partners, n_items), np.nan)
    points_milli = np.zeros((n_partners, n_items), dtype=np.int64)
    for j, item in enumerate(items):  # one pass per item, vectorized over partners
        applicable[:, j] = _applies(item, people)
        has_raw = applicable[:, j] & ~np.isnan(raw[:, j])
        normalized[:, j] = np.where(applicable[:, j], _normalize(item, raw[:, j], has_raw, people), np.nan)
        points = _points(item, normalized[:, j])
        points_milli[:, j] = _milli(np.where(np.isnan(points), 0.0, points))
    present = applicable & ~np.isnan(normalized)

    weights = np.array([item.weight_units for item in items], dtype=np.int64)
    applicable_units = np.where(applicable, weights, 0).sum(axis=1)
    present_units = np.where(present, weights, 0).sum(axis=1)
    renormalize = rules.missing_data == "renormalize"
    base_units = present_units if renormalize else applicable_units
    counted = present if renormalize else applicable  # the items base_units is shared among
    divisor = np.where(base_units > 0, base_units, 1).astype(np.float64)[:, None]
    # Integer products are exact (below 2**53), so each value below is rounded once, in the
    # division, and then to the thousandth: half to even of the exact quotient.
    contribution_milli = np.where(counted, np.rint((points_milli * weights) / divisor), 0).astype(np.int64)
    effective_weight_milli = np.where(counted, np.rint((weights * 100_000) / divisor), 0).astype(np.int64)
    completeness_milli = np.rint(
        (present_units * 1000) / np.where(applicable_units > 0, applicable_units, 1).astype(np.float64)
    ).astype(np.int64)
    contribution_milli = np.where(present, contribution_milli, 0)
    total_milli = contribution_milli.sum(axis=1)

    scores = _scores(rules, people, total_milli, completeness_milli)
    components = _components(items, people, applicable, present, raw, normalized, points_milli, renormalize,
                             effective_weight_milli, contribution_milli)  # fmt: skip
    benchmarks = _benchmarks(items, people, applicable, raw)
    return ScoringResult(scores=scores, components=components, benchmarks=benchmarks)


def _scores(rules: Rules, people: _Partners, total_milli: np.ndarray, completeness_milli: np.ndarray) -> pd.DataFrame:
    excellent = round(float(rules.band_excellent) * 1000)
    good = round(float(rules.band_good) * 1000)
    minimum = round(float(rules.min_completeness) * 1000)
    incomplete = (completeness_milli == 0) | (completeness_milli < minimum)
    rating = np.select(
        [incomplete, total_milli >= excellent, total_milli >= good],
        [INCOMPLETE, EXCELLENT, GOOD],
        default=NEEDS_IMPROVEMENT,
    ).astype(object)

    by_segment = pd.Series(total_milli).groupby(people.codes)
    rank = by_segment.rank(method="min", ascending=False).to_numpy(dtype=np.int64, na_value=0)
    below = by_segment.rank(method="min", ascending=True).to_numpy(dtype=np.int64, na_value=0) - 1
    others = by_segment.transform("size").to_numpy(dtype=np.int64, na_value=0) - 1
    percentile_milli = np.where(others > 0, np.rint(100_000.0 * below / np.maximum(others, 1)), 50_000).astype(np.int64)
    return pd.DataFrame(
        {
            "partner_id": people.ids,
            "segment": people.segments,
            "total": _from_milli(total_milli),
            "rating": rating,
            "completeness": _from_milli(completeness_milli),
            "rank": rank,
            "percentile": _from_milli(percentile_milli),
        }
    )


def _components(
    items: list[_Item],
    people: _Partners,
    applicable: np.ndarray,
    present: np.ndarray,
    raw: np.ndarray,
    normalized: np.ndarray,
    points_milli: np.ndarray,
    renormalize: bool,
    effective_weight_milli: np.ndarray,
    contribution_milli: np.ndarray,
) -> pd.DataFrame:
    rows, cols = np.nonzero(applicable)  # row-major: by partner, then by item_id
    is_present = present[rows, cols]
    points = _from_milli(points_milli[rows, cols])
    # Renormalize: a missing item is not scored (its weight went to the others); zero: it scores 0.
    points = np.where(is_present, points, np.nan if renormalize else 0.0)
    return pd.DataFrame(
        {
            "partner_id": people.ids[rows],
            "item_id": np.array([item.item_id for item in items], dtype=np.int64)[cols],
            "metric_key": np.array([item.metric_key for item in items], dtype=object)[cols],
            "raw": raw[rows, cols],
            "normalized": normalized[rows, cols],
            "points": points,
            "weight": np.array([item.weight for item in items], dtype=np.float64)[cols],
            "effective_weight": _from_milli(effective_weight_milli[rows, cols]),
            "contribution": _from_milli(contribution_milli[rows, cols]),
            "present": is_present,
        }
    )


def _benchmarks(items: list[_Item], people: _Partners, applicable: np.ndarray, raw: np.ndarray) -> pd.DataFrame:
    rows, cols = np.nonzero(applicable & ~np.isnan(raw))
    values = pd.DataFrame({"segment": people.codes[rows], "item": cols, "raw": raw[rows, cols]})
    grouped = values.groupby(["segment", "item"], sort=True)["raw"]
    quartiles = grouped.quantile([0.25, 0.5, 0.75], interpolation="linear").unstack()
    counts = grouped.size()
    if not len(counts):
        return pd.DataFrame(
            {
                "segment": pd.Series([], dtype=object),
                "metric_key": pd.Series([], dtype=object),
                "partners": pd.Series([], dtype=np.int64),
                "p25": pd.Series([], dtype=np.float64),
                "median": pd.Series([], dtype=np.float64),
                "p75": pd.Series([], dtype=np.float64),
            }
        )
    segment_codes = counts.index.get_level_values("segment").to_numpy()
    item_positions = counts.index.get_level_values("item").to_numpy()
    frame = pd.DataFrame(
        {
            "segment": people.labels[segment_codes],
            "metric_key": np.array([item.metric_key for item in items], dtype=object)[item_positions],
            "partners": counts.to_numpy(dtype=np.int64),
            "p25": np.round(quartiles[0.25].to_numpy(dtype=np.float64), 6) + 0.0,
            "median": np.round(quartiles[0.5].to_numpy(dtype=np.float64), 6) + 0.0,
            "p75": np.round(quartiles[0.75].to_numpy(dtype=np.float64), 6) + 0.0,
        }
    )
    return frame.sort_values(["segment", "metric_key"], kind="stable", ignore_index=True)


# ---------------------------------------------------------------------------------------------
# Changes between periods


def explain_change(
    *,
    previous: ScoringResult | None,
    current: ScoringResult,
    previous_under_current_rules: ScoringResult | None = None,
) -> pd.DataFrame:
    """Each partner's change of total since the previous period, split into terms that add up exactly.

    Metric terms: contribution now minus contribution before, per metric (a metric scored in only one
    of the two counts 0 in the other). When the rules changed, pass last period's observations scored
    under this period's rules as ``previous_under_current_rules``: the metric terms are then taken
    against it, and one 'version' term (its total minus the previous total) carries the effect of the
    new rules; a partner it lacks is measured against ``previous`` and gets no version term.
    Partners without a previous score get no rows. Rows: by partner_id, the version term first,
    then the metric terms by metric_key.
    """
    if previous is None:
        return _empty_change()
    prior = previous.scores[["partner_id", "total"]]
    now = current.scores[["partner_id", "total"]]
    ids = np.intersect1d(now["partner_id"].to_numpy(np.int64), prior["partner_id"].to_numpy(np.int64))
    if not len(ids):
        return _empty_change()

    rescored_ids = np.array([], dtype=np.int64)
    if previous_under_current_rules is not None:
        rescored_ids = np.intersect1d(ids, previous_under_current_rules.scores["partner_id"].to_numpy(np.int64))

    def contributions(result: ScoringResult, partner_ids: np.ndarray) -> pd.DataFrame:
        frame = result.components[result.components["partner_id"].isin(partner_ids)]
        return (
            pd.DataFrame(
                {
                    "partner_id": frame["partner_id"].to_numpy(np.int64),
                    "metric_key": frame["metric_key"].astype(object).to_numpy(),
                    "milli": _milli_of(frame["contribution"]),
                }
            )
            .groupby(["partner_id", "metric_key"], sort=False)["milli"]
            .sum()
        )

    # The base the metric terms are measured against: last period under this period's rules when
    # available, last period as scored otherwise.
    base = contributions(previous, np.setdiff1d(ids, rescored_ids))
    if len(rescored_ids):
        base = pd.concat([base, contributions(previous_under_current_rules, rescored_ids)])
    after = contributions(current, ids)
    metric = pd.concat([base.rename("before"), after.rename("after")], axis=1).fillna(0).astype(np.int64)
    metric = metric.reset_index()
    metric["term"] = "metric"

    parts = [metric]
    if len(rescored_ids):
        prior_milli = pd.Series(_milli_of(prior["total"]), index=prior["partner_id"].to_numpy(np.int64))
        rescored = previous_under_current_rules.scores
        rescored_milli = pd.Series(_milli_of(rescored["total"]), index=rescored["partner_id"].to_numpy(np.int64))
        parts.append(
            pd.DataFrame(
                {
                    "partner_id": rescored_ids,
                    "metric_key": np.full(len(rescored_ids), None, dtype=object),
                    "before": prior_milli.loc[rescored_ids].to_numpy(np.int64),
                    "after": rescored_milli.loc[rescored_ids].to_numpy(np.int64),
                    "term": "version",
                }
            )
        )
    change = pd.concat(parts, ignore_index=True)
    change["order"] = np.where(change["term"] == "version", 0, 1)
    change["sort_key"] = change["metric_key"].fillna("")
    change = change.sort_values(["partner_id", "order", "sort_key"], kind="stable", ignore_index=True)
    before, after_milli = change["before"].to_numpy(np.int64), change["after"].to_numpy(np.int64)
    return pd.DataFrame(
        {
            "partner_id": change["partner_id"].to_numpy(np.int64),
            "term": change["term"].astype(object).to_numpy(),
            # object dtype keeps None for the version term (a string column would turn it into NaN)
            "metric_key": pd.Series(
                np.where(change["term"].to_numpy(object) == "version", None, change["metric_key"].to_numpy(object)),
                dtype=object,
            ),
            "delta": _from_milli(after_milli - before),
            "before": _from_milli(before),
            "after": _from_milli(after_milli),
        }
    )


def _empty_change() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "partner_id": pd.Series([], dtype=np.int64),
            "term": pd.Series([], dtype=object),
            "metric_key": pd.Series([], dtype=object),
            "delta": pd.Series([], dtype=np.float64),
            "before": pd.Series([], dtype=np.float64),
            "after": pd.Series([], dtype=np.float64),
        }
    )


# ---------------------------------------------------------------------------------------------
# Fingerprints


def _canonical(values: np.ndarray) -> list[str]:
    """Numbers as the shortest decimal that reads back as the same double; 'none' for missing."""
    finite = np.isfinite(values)
    texts = list(map(repr, (np.where(finite, values, 0.0) + 0.0).tolist()))  # + 0.0 turns -0.0 into 0.0
    if not finite.all():
        texts = [text if ok else "none" for text, ok in zip(texts, finite.tolist(), strict=True)]
    return texts


def fingerprint(
    *,
    rules_fingerprint: str,
    observations: pd.DataFrame,
    partners: pd.DataFrame,
    rules: Rules | None = None,
) -> pd.Series:
    """Per partner_id (ascending), the SHA-256 hex digest of the inputs that determine its score.

    Covers the method version, ``rules_fingerprint``, the partner's segment and size and its
    observations. With ``rules`` it covers exactly what the engine reads: only observations of the
    items that apply to the partner, the size only when a per-size item applies, and for each
    percentile item the values of every partner of the segment (they set the percentile). Without
    ``rules`` every observation and the size are covered, and peers' values are not. Rank and
    percentile within the segment are not covered: they depend on every partner of the segment.
    """
    people = _prepare_partners(partners)
    obs = _observation_frame(observations)
    rows = pd.Index(people.ids).get_indexer(obs["partner_id"].to_numpy())
    keep = (rows >= 0) & np.isfinite(obs["value"].to_numpy())  # a non-finite value counts as no value
    rows, keys, values = rows[keep], obs["metric_key"].to_numpy(object)[keep], obs["value"].to_numpy()[keep]
    size_used = np.ones(len(people.ids), dtype=bool)
    peer_rows, peer_keys, peer_texts = np.array([], dtype=np.int64), np.array([], dtype=object), []

    if rules is not None:
        items = _checked_rules(rules)
        applicable = np.zeros((len(people.ids), len(items)), dtype=bool)
        for j, item in enumerate(items):
            applicable[:, j] = _applies(item, people)
        cols = pd.Index([item.metric_key for item in items], dtype=object).get_indexer(keys)
        used = cols >= 0
        used[used] = applicable[rows[used], cols[used]]
        rows, keys, values, cols = rows[used], keys[used], values[used], cols[used]
        per_size = np.array([item.normalization == "per_size" for item in items], dtype=bool)
        size_used = (applicable & per_size).any(axis=1)
        peer_rows, peer_keys, peer_texts = _peer_lines(items, people, applicable, rows, cols, values)

    cells = pd.DataFrame({"row": rows, "key": keys})
    if cells.duplicated().any():
        raise ScoringError("A partner has more than one observation of the same metric.")
    # One line per input, ordered by partner, then kind (obs before peers), then metric key.
    all_rows = np.concatenate([rows.astype(np.int64), peer_rows])
    all_keys = np.concatenate([keys, peer_keys])
    texts = [f"obs {key} {value}" for key, value in zip(keys.tolist(), _canonical(values), strict=True)]
    texts += peer_texts
    kinds = np.concatenate([np.zeros(len(rows), dtype=np.int64), np.ones(len(peer_rows), dtype=np.int64)])
    key_codes = pd.factorize(all_keys.astype(str), sort=True)[0] if len(all_keys) else all_keys
    order = np.lexsort((key_codes, kinds, all_rows))
    ordered = [texts[i] for i in order.tolist()]
    bounds = np.searchsorted(all_rows[order], np.arange(len(people.ids) + 1)).tolist()

    head = f"partnerhub-scoring/{METHOD_VERSION}\nrules {rules_fingerprint}\n"
    sizes = _canonical(np.where(people.size > 0, people.size, np.nan))
    digests = []
    for i, (segment, size, uses_size) in enumerate(zip(people.segments, sizes, size_used.tolist(), strict=True)):
        lines = [f"segment {segment}", *([f"size {size}"] if uses_size else []), *ordered[bounds[i] : bounds[i + 1]]]
        digests.append(hashlib.sha256((head + "\n".join(lines)).encode("utf-8")).hexdigest())
    return pd.Series(digests, index=pd.Index(people.ids, name="partner_id"), name="fingerprint", dtype=object)


def _peer_lines(
    items: list[_Item],
    people: _Partners,
    applicable: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    values: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """For each percentile item, on every partner it applies to, the digest of its segment's values."""
    peer_rows, peer_keys, peer_texts = [], [], []
    for j, item in enumerate(items):
        if item.normalization != "percentile":
            continue
        mine = cols == j
        codes, mine_values = people.codes[rows[mine]], values[mine]
        order = np.lexsort((mine_values, codes))
        codes, texts = codes[order], _canonical(mine_values[order])
        bounds = np.searchsorted(codes, np.arange(len(people.labels) + 1)).tolist()
        digest_by_code = np.array(
            [
                hashlib.sha256(",".join(texts[bounds[c] : bounds[c + 1]]).encode("utf-8")).hexdigest()
                for c in range(len(people.labels))  # one per segment
            ],
            dtype=object,
        )
        partner_rows = np.flatnonzero(applicable[:, j])
        peer_rows.append(partner_rows)
        peer_keys.append(np.full(len(partner_rows), item.metric_key, dtype=object))
        peer_texts += [f"peers {item.metric_key} {digest}" for digest in digest_by_code[people.codes[partner_rows]]]
    if not peer_rows:
        return np.array([], dtype=np.int64), np.array([], dtype=object), []
    return np.concatenate(peer_rows).astype(np.int64), np.concatenate(peer_keys), peer_texts
