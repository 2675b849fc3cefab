"""Reads for the scorecard pages: a partner's scorecard and its baseline, the portfolio, recompute runs.

Everything a page shows comes from stored scores and benchmarks; nothing here computes a score.
Each read runs a fixed number of queries whatever the number of partners or metrics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from django.db.models import F, QuerySet
from django.utils import timezone

from partnerhub.partners.models import Partner
from scorecards.models import Metric, MetricObservation, Rating, RecomputeRun, Score
from scorecards.periods import QUARTER, Period, PeriodError, last_closed, parse_period
from scorecards.selectors import baseline_comparison, benchmarks_for, metric_history, score_history

PORTFOLIO_SORTS = {
    "partner": ("partner__name",),
    "segment": ("segment", "partner__name"),
    "score": ("total", "partner__name"),
    "change": ("change", "partner__name"),
    "rank": ("rank", "partner__name"),
}
FLAG_FIELDS = {
    "regression": "flag_regression",
    "stagnation": "flag_stagnation",
    "improving": "flag_improving",
    "data_gap": "flag_data_gap",
}
FLAG_LABELS = {
    "regression": "Regression",
    "stagnation": "Stagnation",
    "improving": "Improving",
    "data_gap": "Data gap",
}


@dataclass(frozen=True)
class ComponentRow:
    metric_key: str
    metric_name: str
    unit: str
    raw: float | None
    normalized: float | None
    points: float | None
    weight: float
    effective_weight: float | None
    contribution: float | None
    present: bool
    median: float | None
    p75: float | None
    trend: list[float | None]


@dataclass(frozen=True)
class ChangeTerm:
    label: str
    delta: float


@dataclass
class PartnerScorecard:
    """What a scorecard page shows for one partner and period."""

    partner: Partner
    period: str
    score: Score | None
    periods: list[str]  # every period with a current score, newest first
    history: list[dict] = field(default_factory=list)  # last 8 periods, oldest first
    rows: list[ComponentRow] = field(default_factory=list)
    terms: list[ChangeTerm] = field(default_factory=list)
    previous_period: str | None = None
    previous_total: float | None = None
    segment_size: int = 0
    version_changed: bool = False

    @property
    def flags(self) -> list[str]:
        return score_flags(self.score) if self.score else []


def score_flags(score: Score) -> list[tuple[str, str]]:
    return [(key, FLAG_LABELS[key]) for key, name in FLAG_FIELDS.items() if getattr(score, name)]


def _float(value) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def default_period(partner: Partner) -> str:
    """The latest period the partner has a score for, else the tenant's last closed quarter."""
    latest = Score.objects.current().filter(partner=partner).order_by("-period").values_list("period", flat=True)
    for period in latest[:1]:
        return period
    tenant = partner.tenant
    return last_closed(timezone.localdate(), kind=QUARTER, start_month=tenant.fiscal_year_start_month).key


def clean_period(value: str | None) -> str | None:
    """A period key as written in a link, or None when it does not name a period."""
    try:
        return parse_period(value or "", start_month=1).key
    except PeriodError:
        return None


def partner_scorecard(*, partner: Partner, period: str) -> PartnerScorecard:
    """A partner's score for ``period`` with components, segment benchmarks, trends and the change."""
    periods = list(Score.objects.current().filter(partner=partner).order_by("-period").values_list("period", flat=True))
    score = Score.objects.current().filter(partner=partner, period=period).select_related("version").first()
    page = PartnerScorecard(partner=partner, period=period, score=score, periods=periods)
    page.history = score_history(partner=partner, period=period)
    if score is None:
        return page

    keys = [component["metric_key"] for component in score.components or []]
    metrics = {metric.key: metric for metric in Metric.objects.filter(key__in=keys)}
    benchmarks = {
        benchmark.metric.key: benchmark
        for benchmark in benchmarks_for(version=score.version, period=period, segment=score.segment)
    }
    trends = metric_history(partner=partner, period=period)
    for component in score.components or []:
        key = component["metric_key"]
        metric = metrics.get(key)
        benchmark = benchmarks.get(key)
        trend = [_float(value) for value in trends.loc[key]] if key in trends.index else []
        page.rows.append(
            ComponentRow(
                metric_key=key,
                metric_name=component.get("metric") or (metric.name if metric else key),
                unit=metric.unit if metric else "",
                raw=_float(component.get("raw")),
                normalized=_float(component.get("normalized")),
                points=_float(component.get("points")),
                weight=float(component.get("weight") or 0),
                effective_weight=_float(component.get("effective_weight")),
                contribution=_float(component.get("contribution")),
                present=bool(component.get("present")),
                median=_float(benchmark.median) if benchmark else None,
                p75=_float(benchmark.p75) if benchmark else None,
                trend=trend,
            )
        )

    names = {row.metric_key: row.metric_name for row in page.rows}
    explanation = score.explanation or {}
    page.previous_period = explanation.get("previous_period")
    page.previous_total = _float(explanation.get("previous_total"))
    previous_version = explanation.get("previous_version")
    page.version_changed = previous_version is not None and previous_version != score.version_id
    for term in explanation.get("terms") or []:
        if term.get("term") == "version":
            label = "New scorecard rules"
        else:
            label = names.get(term.get("metric_key"), term.get("metric_key") or "")
        page.terms.append(ChangeTerm(label=label, delta=float(term.get("delta") or 0.0)))
    page.segment_size = (
        Score.objects.current().filter(period=period, segment=score.segment, version_id=score.version_id).count()
    )
    return page


# --- Comparing with a baseline period ---------------------------------------------------------------

NO_BASELINE = "none"


@dataclass
class BaselineView:
    """The "Compare with" part of a scorecard page."""

    options: list[str]  # periods the partner was scored in before this one, newest first
    selected: str | None = None  # the period compared with; None for no comparison
    comparison: dict | None = None  # ``baseline_comparison`` when there is a score to compare
    note: str = ""  # why nothing is compared, or what to keep in mind when reading it
    chosen: bool = False  # picked by the person (else the default: the same period a year earlier)


def year_earlier(period: str) -> str | None:
    """The same quarter (or month) one fiscal year earlier: FY2026-Q3 -> FY2025-Q3."""
    try:
        current = parse_period(period, start_month=1)
    except PeriodError:
        return None
    return Period(current.fiscal_year - 1, current.kind, current.number, current.start_month).key


def baseline_view(*, page: PartnerScorecard, requested: str | None, start_month: int) -> BaselineView:
    """What to compare a scorecard page with: the period asked for (``?baseline=``), else the same
    period a year earlier when it was scored, else nothing. Nothing asked for is an error: a period
    that cannot be compared gets a note saying why."""
    now = parse_period(page.period, start_month=start_month)
    earlier = []
    for key in page.periods:
        try:
            scored = parse_period(key, start_month=start_month)
        except PeriodError:
            continue
        if scored.kind == now.kind and scored.start < now.start:
            earlier.append(key)
    view = BaselineView(options=earlier)
    if page.score is None:
        return view
    if requested is None:
        default = year_earlier(page.period)
        if default not in earlier:
            return view
        key = default
    else:
        view.chosen = True
        if requested.strip().lower() in ("", NO_BASELINE):
            return view
        key = clean_period(requested)
        if key is None:
            shown = requested.strip()[:40]
            view.note = f"“{shown}” is not a period; write it like {year_earlier(page.period)}."
            return view
        asked = parse_period(key, start_month=start_month)
        if asked.kind != now.kind:
            view.note = f"{page.period} is a {now.kind}; compare it with another {now.kind}."
            return view
        if asked.start >= now.start:
            view.note = f"{key} is not before {page.period}; compare with an earlier period."
            return view
    view.selected = key
    view.comparison = baseline_comparison(partner=page.partner, period=page.period, baseline=key, score=page.score)
    view.note = view.comparison["note"]
    return view


def latest_score(partner: Partner) -> Score | None:
    """The partner's most recent current score (the partner detail card)."""
    return Score.objects.current().filter(partner=partner).order_by("-period").first()


def scored_periods() -> list[str]:
    """Every period with current scores in the tenant, newest first."""
    return list(Score.objects.current().order_by("-period").values_list("period", flat=True).distinct())


def portfolio_scores(
    *,
    period: str,
    segment: str | None = None,
    rating: str | None = None,
    flag: str | None = None,
    manager=None,
    sort: str = "score",
    descending: bool = True,
) -> QuerySet:
    """The current scores of a period, filtered and sorted, with partner, type and manager joined."""
    queryset = (
        Score.objects.current()
        .filter(period=period)
        .select_related("partner", "partner__partner_type", "partner__manager")
        # The JSON columns are the bulk of a score row and the table shows none of them.
        .defer("components", "explanation", "fingerprint")
    )
    if segment:
        queryset = queryset.filter(segment=segment)
    if rating in Rating.values:
        queryset = queryset.filter(rating=rating)
    if flag in FLAG_FIELDS:
        queryset = queryset.filter(**{FLAG_FIELDS[flag]: True})
    if manager is not None:
        queryset = queryset.filter(partner__manager=manager)
    first, *rest = PORTFOLIO_SORTS.get(sort, PORTFOLIO_SORTS["score"])
    # Partners without a change (their first scored period) sort last either way.
    first = F(first).desc(nulls_last=True) if descending else F(first).asc(nulls_last=True)
    return queryset.order_by(first, *rest, "pk")


# --- Recompute runs ---------------------------------------------------------------------------------


def recompute_runs() -> QuerySet:
    """Recompute runs, newest first, with the scorecard version each recomputes (joined, not queried per row)."""
    return RecomputeRun.objects.select_related("version__scorecard").order_by("-queued_at", "-pk")


def recomputable_periods(*, start_month: int, limit: int = 12) -> list[str]:
    """Periods with recorded values or scores, newest first: what an administrator may recompute."""
    observed = set(MetricObservation.objects.current().order_by().values_list("period", flat=True).distinct())
    scored = set(Score.objects.current().order_by().values_list("period", flat=True).distinct())
    periods = []
    for key in observed | scored:
        try:
            periods.append(parse_period(key, start_month=start_month))
        except PeriodError:
            continue
    periods.sort(key=lambda period: (period.start, period.kind), reverse=True)
    return [period.key for period in periods[:limit]]
