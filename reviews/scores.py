"""Partners' scores as reviews read them: the latest current score up to a review's period.

A review of FY2026-Q3 looks at the Q3 score when there is one, else the most recent earlier one
(a partner scored late, a monthly check-in between quarterly scores). Scores of either period
kind count when the period they score ended by the end of the reviewed period; of two ending the
same day the quarter is preferred. Only the last two fiscal years are looked at: an older score
says nothing about the partner today. One query, whatever the number of partners.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from scorecards.models import Score
from scorecards.periods import MONTH, QUARTER, Period, PeriodError, parse_period, period_containing

LOOKBACK_YEARS = 2
SCORE_VALUES = (
    "pk",
    "partner_id",
    "period",
    "total",
    "rating",
    "change",
    "flag_regression",
    "flag_stagnation",
    "flag_improving",
    "flag_data_gap",
)


def keys_up_to(period: Period) -> list[str]:
    """Keys of the quarters and months that ended by the end of ``period``, within the lookback."""
    end = period.end
    keys = []
    for kind, per_year in ((QUARTER, 4), (MONTH, 12)):
        last = period_containing(end, kind=kind, start_month=period.start_month)
        if last.end > end:
            last = last.previous()
        keys.extend(p.key for p in last.last(per_year * LOOKBACK_YEARS))
    return keys


def _recency(key: str, start_month: int) -> tuple:
    try:
        scored = parse_period(key, start_month=start_month)
    except PeriodError:
        return (None,)
    return (scored.end, scored.kind == QUARTER)


def latest_scores(
    *, period: Period, partners: QuerySet, fields: tuple[str, ...] = SCORE_VALUES
) -> dict[int, dict[str, Any]]:
    """Per partner id (of the ``partners`` queryset): the latest current score up to ``period``, as a dict."""
    rows = (
        Score.objects.current()
        .filter(period__in=keys_up_to(period), partner_id__in=partners.values("pk"))
        .order_by()
        .values(*dict.fromkeys(("partner_id", "period", *fields)))
    )
    latest: dict[int, dict[str, Any]] = {}
    recency: dict[int, tuple] = {}
    for row in rows:
        when = _recency(row["period"], period.start_month)
        if when == (None,):
            continue
        partner_id = row["partner_id"]
        if partner_id not in latest or when > recency[partner_id]:
            latest[partner_id] = row
            recency[partner_id] = when
    return latest
