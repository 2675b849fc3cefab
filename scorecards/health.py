"""Data-health checks on incoming observations: is a value plausible for this partner?

Each incoming value is compared, set-based with pandas, with two references:

* **its own history**: the partner's values of the same metric in the previous periods (up to
  :data:`HISTORY_PERIODS`), when there are at least :data:`MIN_HISTORY` of them;
* **its segment**: the values of the same metric and period of the other partners of its segment
  (partner type), when there are at least :data:`MIN_PEERS` of them.

The distance is a *robust z-score* (Iglewicz and Hoaglin's modified z-score), which a single wild
value in the reference cannot distort the way it distorts a mean and a standard deviation::

    z = 0.6745 * (x - median) / MAD          MAD = median(|reference - median|)

Amounts and counts are heavy-tailed (one partner sells a hundred times what another does), so for
metrics in currency or counts the score is taken on ``log(1 + x)``: doubling is the same distance
for a small and a large partner. When the reference does not vary at all (MAD = 0), the spread is
floored at 5 % of the median's magnitude (or 1 unit on the log scale's equivalent), so a partner
that entered 10 every quarter and now enters 11 is not an outlier, but 10 to 1,000 is.

A value is **suspect** when

1. it is far from its own history (``|z| > 3.5``), and the segment does not vouch for it (the
   value is also far from the segment, or the segment is too small to say); or
2. it is far *above* its own history and the activity that should stand behind it is missing:
   revenue won jumping with no deal won in the period, pipeline jumping with no deal registered
   (see :data:`SUPPORT`).

A partner with no history yet is never suspect for want of history: its first values are judged
against the segment alone (``|z| > 3.5`` there and a segment large enough). Every suspect value
carries plain-language reasons that the data-health page shows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

THRESHOLD = 3.5
CONSISTENCY = 0.6745  # makes the MAD comparable to a standard deviation for normal data
HISTORY_PERIODS = 8
MIN_HISTORY = 3
MIN_PEERS = 5
FLAT_SPREAD = 0.05  # the spread assumed, relative to the median, when the reference does not vary

LOG_UNITS = frozenset({"currency", "count"})

# metric -> the metric whose activity must be there when the metric jumps
SUPPORT: dict[str, str] = {
    "revenue_won": "deals_won",
    "average_deal_size": "deals_won",
    "pipeline_created": "deals_registered",
}


@dataclass(frozen=True)
class MetricInfo:
    name: str
    unit: str


def _scale(values: pd.Series, units: pd.Series) -> pd.Series:
    """Values on the scale the distance is taken on: log(1 + x) for amounts and counts."""
    logged = units.isin(LOG_UNITS)
    result = values.astype(float).copy()
    result[logged] = np.sign(result[logged]) * np.log1p(result[logged].abs())
    return result


def _robust_reference(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Median, MAD and size of ``frame['scaled']`` per group of ``keys``."""
    grouped = frame.groupby(keys, sort=False)["scaled"]
    median = grouped.median().rename("median")
    size = grouped.size().rename("size")
    deviations = (frame["scaled"] - frame.join(median, on=keys)["median"]).abs()
    mad = deviations.groupby([frame[key] for key in keys], sort=False).median().rename("mad")
    return pd.concat([median, mad, size], axis=1).reset_index()


def _z(values: pd.Series, median: pd.Series, mad: pd.Series, logged: pd.Series) -> pd.Series:
    floor = np.where(logged, math.log1p(FLAT_SPREAD), FLAT_SPREAD * median.abs())
    floor = np.maximum(floor, 1e-9)
    spread = np.maximum(mad.to_numpy(dtype=float), floor)
    return CONSISTENCY * (values - median) / spread


def check_values(
    incoming: pd.DataFrame,
    *,
    history: pd.DataFrame,
    peers: pd.DataFrame,
    metrics: dict[str, MetricInfo],
    activity: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Score incoming values against history and segment; one row per incoming row, same order.

    ``incoming``: partner_id, segment, metric, period, value (numbers, any float-convertible);
    ``history``: partner_id, metric, value — the partner's current values of earlier periods
    (already limited to the last :data:`HISTORY_PERIODS`); ``peers``: segment, metric, period,
    value — the current values of the segment's partners in the same periods, the incoming
    partner's own value excluded; ``metrics``: key -> name and unit.

    Returns the incoming columns plus ``history_z``, ``segment_z`` (NaN where the reference is
    too small), ``suspect`` (bool) and ``reasons`` (a list of sentences, empty when fine).
    """
    result = incoming.copy().reset_index(drop=True)
    if result.empty:
        return result.assign(history_z=[], segment_z=[], suspect=[], reasons=[])
    unit_of = {key: info.unit for key, info in metrics.items()}
    result["unit"] = result["metric"].map(unit_of).fillna("")
    result["scaled"] = _scale(result["value"], result["unit"])
    logged = result["unit"].isin(LOG_UNITS)

    own = history.copy()
    own["scaled"] = _scale(own["value"], own["metric"].map(unit_of).fillna(""))
    reference = _robust_reference(own, ["partner_id", "metric"]) if not own.empty else None
    result["history_z"] = np.nan
    if reference is not None:
        joined = result.merge(reference, on=["partner_id", "metric"], how="left")
        enough = joined["size"].fillna(0) >= MIN_HISTORY
        z = _z(joined["scaled"], joined["median"], joined["mad"], logged)
        result["history_z"] = z.where(enough)

    group = peers.copy()
    group["scaled"] = _scale(group["value"], group["metric"].map(unit_of).fillna(""))
    reference = _robust_reference(group, ["segment", "metric", "period"]) if not group.empty else None
    result["segment_z"] = np.nan
    if reference is not None:
        joined = result.merge(reference, on=["segment", "metric", "period"], how="left")
        enough = joined["size"].fillna(0) >= MIN_PEERS
        z = _z(joined["scaled"], joined["median"], joined["mad"], logged)
        result["segment_z"] = z.where(enough)

    supported = _supported(result, activity)
    suspects, reasons = [], []
    for row, has_support in zip(result.itertuples(index=False), supported, strict=True):
        name = metrics[row.metric].name if row.metric in metrics else row.metric
        why = _reasons(row.history_z, row.segment_z, name=name, has_support=has_support, metric=row.metric)
        suspects.append(bool(why))
        reasons.append(why)
    result["suspect"] = suspects
    result["reasons"] = reasons
    return result.drop(columns=["scaled", "unit"])


def _supported(result: pd.DataFrame, activity: pd.DataFrame | None) -> list[bool | None]:
    """Per incoming row: is the supporting activity there (None when the metric needs none)?"""
    counts = {}
    if activity is not None and not activity.empty:
        counts = activity.set_index(["partner_id", "period", "metric"])["value"].to_dict()
    counts.update(result.set_index(["partner_id", "period", "metric"])["value"].to_dict())
    answers: list[bool | None] = []
    for partner_id, period, metric in zip(result["partner_id"], result["period"], result["metric"], strict=True):
        needed = SUPPORT.get(metric)
        if needed is None:
            answers.append(None)
            continue
        activity = counts.get((partner_id, period, needed))
        answers.append(activity is not None and float(activity) > 0)
    return answers


def _reasons(history_z: float, segment_z: float, *, name: str, has_support: bool | None, metric: str) -> list[str]:
    far_own = not math.isnan(history_z) and abs(history_z) > THRESHOLD
    far_segment = not math.isnan(segment_z) and abs(segment_z) > THRESHOLD
    reasons = []
    if far_own and (far_segment or math.isnan(segment_z)):
        direction = "above" if history_z > 0 else "below"
        reasons.append(f"{name} is far {direction} this partner's own history (robust z {history_z:+.1f}).")
        if far_segment:
            reasons.append(f"It is also far from the segment's values for the period (robust z {segment_z:+.1f}).")
        else:
            reasons.append("The segment is too small to vouch for it.")
    elif math.isnan(history_z) and far_segment:
        direction = "above" if segment_z > 0 else "below"
        reasons.append(
            f"{name} is far {direction} the segment's values for the period (robust z {segment_z:+.1f}), "
            "and there is not enough history to compare with."
        )
    if far_own and history_z > 0 and has_support is False:
        activity = SUPPORT[metric].replace("_", " ")
        reasons.append(f"{name} jumped with no {activity} in the period to support it.")
    return reasons
