"""What-if preview: a version's rules applied to a closed period, next to the scores stored for it.

The period's observations go through the real engine under the previewed version (usually a draft
or a proposal), and the result is compared with the current scores stored for the same scorecard
and period, which were computed under the version in force then. Nothing is written: no score,
no benchmark, no recompute run. Every read is set-based, a fixed number of queries whatever the
number of partners.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import pandas as pd
from django.utils import timezone

from partnerhub.partners.models import Partner
from scorecards.models import Rating, Score, ScorecardItem, ScorecardVersion
from scorecards.periods import Period, PeriodError, last_closed, parse_period
from scorecards.scoring import ScoringError, compute_period, rules_problems
from scorecards.selectors import scoring_inputs

RATING_ORDER = (Rating.EXCELLENT, Rating.GOOD, Rating.NEEDS_IMPROVEMENT, Rating.INCOMPLETE)
MOVERS_SHOWN = 10
# Partners listed by name as gaining or losing a score; the counts are always complete.
CHANGES_LISTED = 50
MILLI = Decimal("0.001")


class Outcome:
    """Why a preview has (or has no) comparison to show."""

    READY = "ready"
    NOT_A_CLOSED_PERIOD = "not_a_closed_period"
    NO_STORED_SCORES = "no_stored_scores"
    NOT_SCORABLE = "not_scorable"


@dataclass(frozen=True, slots=True)
class RatingCount:
    rating: str
    label: str
    before: int
    after: int

    @property
    def change(self) -> int:
        return self.after - self.before


@dataclass(frozen=True, slots=True)
class PartnerChange:
    """One partner's total and rating now (stored) and under the previewed rules; None where it has none."""

    partner_id: int
    name: str
    segment: str
    before: Decimal | None
    after: Decimal | None
    rating_before: str | None
    rating_after: str | None

    @property
    def change(self) -> Decimal | None:
        if self.before is None or self.after is None:
            return None
        return self.after - self.before

    @property
    def rating_changed(self) -> bool:
        return self.rating_before != self.rating_after


@dataclass
class WhatIf:
    """What a version's rules would change in a closed period, against the scores stored for it."""

    version: ScorecardVersion
    period: str | None
    outcome: str
    message: str = ""
    problems: list[str] = field(default_factory=list)
    in_force: list[int] = field(default_factory=list)  # numbers of the versions the stored scores came from
    distribution: list[RatingCount] = field(default_factory=list)
    movers_up: list[PartnerChange] = field(default_factory=list)
    movers_down: list[PartnerChange] = field(default_factory=list)
    gained: list[PartnerChange] = field(default_factory=list)
    lost: list[PartnerChange] = field(default_factory=list)
    gained_count: int = 0
    lost_count: int = 0
    compared: int = 0  # partners with a score both now and under the previewed rules
    rating_changes: int = 0
    average_change: Decimal | None = None
    scored_before: int = 0
    scored_after: int = 0

    @property
    def is_ready(self) -> bool:
        return self.outcome == Outcome.READY


def _milli(value) -> int:
    return int((Decimal(str(value)) * 1000).to_integral_value())


def _points(milli: int) -> Decimal:
    return (Decimal(milli) / 1000).quantize(MILLI)


def latest_closed_period(version: ScorecardVersion, *, today: datetime.date | None = None) -> Period:
    """The most recent period of the version's kind that ended before ``today``, in the tenant's fiscal year."""
    today = today or timezone.localdate()
    return last_closed(today, kind=version.period_kind, start_month=version.tenant.fiscal_year_start_month)


def preview_periods(version: ScorecardVersion, *, today: datetime.date | None = None) -> list[str]:
    """Closed periods of the version's kind with stored scores of its scorecard, newest first (one query)."""
    latest = latest_closed_period(version, today=today)
    keys = (
        Score.objects.current()
        .filter(version__scorecard_id=version.scorecard_id)
        .order_by("-period")
        .values_list("period", flat=True)
        .distinct()
    )
    periods = []
    for key in keys:
        try:
            period = parse_period(key, start_month=latest.start_month)
        except PeriodError:
            continue
        if period.kind == latest.kind and period <= latest:
            periods.append(period.key)
    return periods


def _resolve_period(version: ScorecardVersion, period: str | None, today: datetime.date | None) -> Period | str:
    """The period to preview, or a sentence saying why ``period`` cannot be previewed."""
    latest = latest_closed_period(version, today=today)
    if period is None:
        return latest
    try:
        chosen = parse_period(period, start_month=latest.start_month)
    except PeriodError as error:
        return str(error)
    if chosen.kind != latest.kind:
        return f"This version scores {latest.kind}s; choose a {latest.kind} such as {latest.key}."
    if chosen > latest:
        return f"{chosen.key} has not closed yet; the preview uses closed periods, the latest being {latest.key}."
    return chosen


def _stored_scores(version: ScorecardVersion, period: str) -> pd.DataFrame:
    rows = list(
        Score.objects.current()
        .filter(period=period, version__scorecard_id=version.scorecard_id)
        .values_list("partner_id", "segment", "total", "rating", "version__number")
    )
    frame = pd.DataFrame(rows, columns=["partner_id", "segment", "total", "rating", "in_force"])
    frame["milli"] = frame["total"].map(_milli).astype("int64") if len(frame) else frame["total"].astype("int64")
    return frame.set_index("partner_id")


def preview_version(
    version: ScorecardVersion,
    *,
    period: str | None = None,
    today: datetime.date | None = None,
    movers: int = MOVERS_SHOWN,
) -> WhatIf:
    """Score ``period`` (by default the last closed one) under ``version`` and compare with the stored scores.

    Reads only; the comparison covers the partners the version scores and those with a stored
    score of the same scorecard in the period.
    """
    resolved = _resolve_period(version, period, today)
    if isinstance(resolved, str):
        return WhatIf(version=version, period=period, outcome=Outcome.NOT_A_CLOSED_PERIOD, message=resolved)
    key = resolved.key
    stored = _stored_scores(version, key)
    if stored.empty:
        return WhatIf(
            version=version,
            period=key,
            outcome=Outcome.NO_STORED_SCORES,
            message=f"No scores of {version.scorecard.name} are stored for {key}, so there is nothing to compare with.",
        )
    if not ScorecardItem.objects.filter(version=version).exists():
        # Checked first: the observations selector cannot read "the observations of no metric".
        return WhatIf(
            version=version,
            period=key,
            outcome=Outcome.NOT_SCORABLE,
            message="These rules cannot be applied yet.",
            problems=["Add at least one metric to see what the rules would do."],
        )
    inputs = scoring_inputs(version=version, period=key)
    problems = rules_problems(inputs.rules)
    if problems:
        return WhatIf(
            version=version,
            period=key,
            outcome=Outcome.NOT_SCORABLE,
            message="These rules cannot be applied yet.",
            problems=problems,
        )
    try:
        result = compute_period(rules=inputs.rules, partners=inputs.partners, observations=inputs.observations)
    except ScoringError as error:
        return WhatIf(
            version=version, period=key, outcome=Outcome.NOT_SCORABLE, message=str(error), problems=[str(error)]
        )
    after = result.scores.set_index("partner_id")
    after = after.assign(milli=np.rint(after["total"].to_numpy(dtype=np.float64) * 1000).astype(np.int64))
    return _compare(version, key, stored, after, movers=movers)


def _compare(version: ScorecardVersion, period: str, stored: pd.DataFrame, after: pd.DataFrame, *, movers: int):
    preview = WhatIf(
        version=version,
        period=period,
        outcome=Outcome.READY,
        in_force=sorted({int(number) for number in stored["in_force"]}),
        scored_before=len(stored),
        scored_after=len(after),
    )
    before_counts = stored["rating"].value_counts()
    after_counts = after["rating"].value_counts()
    preview.distribution = [
        RatingCount(
            rating=rating.value,
            label=rating.label,
            before=int(before_counts.get(rating.value, 0)),
            after=int(after_counts.get(rating.value, 0)),
        )
        for rating in RATING_ORDER
    ]

    both = stored.index.intersection(after.index)
    change = pd.Series(after.loc[both, "milli"].to_numpy() - stored.loc[both, "milli"].to_numpy(), index=both)
    preview.compared = len(both)
    preview.rating_changes = int((stored.loc[both, "rating"] != after.loc[both, "rating"]).sum())
    if len(both):
        # The mean of exact thousandths, rounded once.
        preview.average_change = (Decimal(int(change.sum())) / len(both) / 1000).quantize(MILLI)
    ups = change[change > 0]
    downs = change[change < 0]
    # Ties are broken by partner id, so the same data always lists the same partners.
    up_ids = sorted(ups.index, key=lambda pk: (-int(ups[pk]), int(pk)))[:movers]
    down_ids = sorted(downs.index, key=lambda pk: (int(downs[pk]), int(pk)))[:movers]
    gained_ids = sorted(after.index.difference(stored.index))
    lost_ids = sorted(stored.index.difference(after.index))
    preview.gained_count, preview.lost_count = len(gained_ids), len(lost_ids)
    gained_ids, lost_ids = gained_ids[:CHANGES_LISTED], lost_ids[:CHANGES_LISTED]

    shown = [int(pk) for pk in (*up_ids, *down_ids, *gained_ids, *lost_ids)]
    names = dict(Partner.objects.filter(pk__in=shown).values_list("pk", "name")) if shown else {}

    def line(pk) -> PartnerChange:
        has_before, has_after = pk in stored.index, pk in after.index
        return PartnerChange(
            partner_id=int(pk),
            name=names.get(int(pk), f"Partner {pk}"),
            segment=str(after.at[pk, "segment"] if has_after else stored.at[pk, "segment"]),
            before=_points(int(stored.at[pk, "milli"])) if has_before else None,
            after=_points(int(after.at[pk, "milli"])) if has_after else None,
            rating_before=str(stored.at[pk, "rating"]) if has_before else None,
            rating_after=str(after.at[pk, "rating"]) if has_after else None,
        )

    preview.movers_up = [line(pk) for pk in up_ids]
    preview.movers_down = [line(pk) for pk in down_ids]
    preview.gained = sorted((line(pk) for pk in gained_ids), key=lambda row: (row.name.lower(), row.partner_id))
    preview.lost = sorted((line(pk) for pk in lost_ids), key=lambda row: (row.name.lower(), row.partner_id))
    return preview
