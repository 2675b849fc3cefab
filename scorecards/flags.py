"""Trend flags on a partner's score: regression, stagnation, improving, data gap.

Pure computation over totals of consecutive periods, vectorized over partners. Totals are compared
in integer thousandths of a point (scores are stored to 3 decimals), so a change of exactly
-10.000 is a regression of 10 points, never -9.9999999.

- regression: this period's change is a drop of at least ``regression_points``, or this and the
  previous period both declined;
- stagnation: the change stayed under ``stagnation_points`` (either way) in each of the last
  ``streak`` periods, without being a steady trend: a partner gaining (or losing) a little every
  period is improving (or regressing), not stagnant;
- improving: a gain in each of the last ``streak`` periods;
- data gap: completeness below the version's minimum (or no data at all).

A period with no score breaks a streak: a trend needs a score in every period it spans.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

FLAG_COLUMNS = ("flag_regression", "flag_stagnation", "flag_improving", "flag_data_gap")


@dataclass(frozen=True)
class FlagRules:
    regression_points: float = 10.0
    stagnation_points: float = 2.0
    streak: int = 3
    min_completeness: float = 0.0

    @property
    def history_needed(self) -> int:
        """Previous periods whose totals the flags read: ``streak`` changes need ``streak`` + 1 totals."""
        return max(self.streak, 2)


def _milli(values) -> np.ndarray:
    """Thousandths as float (NaN kept): exact for totals with 3 decimals."""
    return np.rint(np.asarray(values, dtype=np.float64) * 1000.0)


def trend_flags(totals: pd.DataFrame, completeness: pd.Series, rules: FlagRules) -> pd.DataFrame:
    """Flags per partner.

    ``totals``: indexed by partner_id, column 0 is this period's total, column k the total k
    periods earlier (NaN where there was no score), at least ``rules.history_needed`` + 1 columns.
    ``completeness``: this period's completeness (0-1), same index.
    """
    matrix = _milli(totals.to_numpy(dtype=np.float64, na_value=np.nan))
    # changes[:, k] is the change k periods ago: total[k] - total[k + 1]
    changes = matrix[:, :-1] - matrix[:, 1:]
    known = ~np.isnan(changes)
    drop = round(rules.regression_points * 1000)
    still = round(rules.stagnation_points * 1000)
    streak = rules.streak
    with np.errstate(invalid="ignore"):
        regression = (known[:, 0] & (changes[:, 0] <= -drop)) | (
            known[:, 0] & known[:, 1] & (changes[:, 0] < 0) & (changes[:, 1] < 0)
        )
        improving = (known[:, :streak] & (changes[:, :streak] > 0)).all(axis=1)
        small = (known[:, :streak] & (np.abs(changes[:, :streak]) < still)).all(axis=1)
        stagnation = small & ~improving & ~regression
    complete = _milli(completeness.reindex(totals.index).to_numpy(dtype=np.float64, na_value=0.0))
    data_gap = (complete < round(rules.min_completeness * 1000)) | (complete == 0)
    return pd.DataFrame(
        {
            "flag_regression": regression,
            "flag_stagnation": stagnation,
            "flag_improving": improving,
            "flag_data_gap": data_gap,
        },
        index=totals.index,
    )
