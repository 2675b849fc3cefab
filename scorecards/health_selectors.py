"""Reads for the data-health pages: suspect values, completeness, sources and unmatched deals.

Each read costs a fixed number of queries whatever the number of partners, values or sources:
counts come from one aggregate each, the completeness histogram is counted by the database, and
the references of a page of values are resolved in bulk.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Avg, Case, Count, IntegerField, Max, OuterRef, Q, QuerySet, Subquery, Value, When
from django.utils import timezone

from partnerhub.integrations.source_models import PULLED_KINDS, DataSource, Deal, PartnerMapping, SyncRun, SyncStatus
from partnerhub.integrations.views import source_health
from partnerhub.partners.models import Partner
from scorecards.models import (
    CheckReview,
    CorrectionKind,
    CorrectionRequest,
    MetricObservation,
    ObservationCheck,
    Score,
)
from scorecards.periods import PeriodError, parse_period
from scorecards.services.health import suspects

HISTOGRAM_STEP = Decimal("0.1")
HISTOGRAM_BINS = 10
ATTENTION = ("failing", "stale", "never")
TREND_PERIODS = 8
# Unreviewed values first: they are the ones waiting for someone.
REVIEW_ORDER = Case(
    When(review=CheckReview.UNREVIEWED, then=Value(0)),
    When(review=CheckReview.REJECTED, then=Value(1)),
    default=Value(2),
    output_field=IntegerField(),
)
_SYNC_REF = re.compile(r"^sync:(\d{1,18})$")
_MAPPING_REF = re.compile(r"^mapping:(\d{1,18})(?::removed)?$")


def _sorted_periods(keys: Iterable[str], *, start_month: int) -> list[str]:
    """Period keys newest first; keys that do not name a period are left out."""
    periods = []
    for key in set(keys):
        try:
            periods.append(parse_period(key, start_month=start_month))
        except PeriodError:
            continue
    periods.sort(key=lambda period: (period.start, period.kind), reverse=True)
    return [period.key for period in periods]


def period_label(key: str, *, start_month: int) -> str:
    """FY2026-Q3 as FY26 Q3."""
    try:
        return parse_period(key, start_month=start_month).label
    except PeriodError:
        return key


def health_periods(*, start_month: int) -> tuple[list[str], str | None]:
    """Periods with current scores or checked values, newest first (what the period picker offers),
    and the newest scored one (the program page's default)."""
    scored = _sorted_periods(
        Score.objects.current().order_by().values_list("period", flat=True).distinct(), start_month=start_month
    )
    checked = ObservationCheck.objects.order_by().values_list("period", flat=True).distinct()
    return _sorted_periods([*scored, *checked], start_month=start_month), (scored[0] if scored else None)


# --- Suspect values ------------------------------------------------------------------------------------


def _current_checks(*, period: str | None = None, partner: Partner | None = None, manager=None) -> QuerySet:
    checks = ObservationCheck.objects.filter(observation__superseded_by__isnull=True)
    if period:
        checks = checks.filter(period=period)
    if partner is not None:
        checks = checks.filter(partner=partner)
    if manager is not None:
        checks = checks.filter(partner__manager=manager)
    return checks


def review_counts(*, period: str | None = None, partner: Partner | None = None, manager=None) -> dict[str, int]:
    """Current values checked, and suspect ones by review state, in one query."""
    suspect = Q(suspect=True)
    return _current_checks(period=period, partner=partner, manager=manager).aggregate(
        checked=Count("pk"),
        suspects=Count("pk", filter=suspect),
        unreviewed=Count("pk", filter=suspect & Q(review=CheckReview.UNREVIEWED)),
        accepted=Count("pk", filter=suspect & Q(review=CheckReview.ACCEPTED)),
        rejected=Count("pk", filter=suspect & Q(review=CheckReview.REJECTED)),
    )


def suspect_values(
    *, period: str | None = None, partner: Partner | None = None, review: str | None = None, manager=None
) -> QuerySet:
    """Suspect current values, those awaiting review first, then the newest, with what a row shows."""
    rows = suspects(
        period=period,
        partner_ids=None if partner is None else [partner.pk],
        review=review if review in CheckReview.values else None,
    )
    if manager is not None:
        rows = rows.filter(partner__manager=manager)
    return rows.order_by(REVIEW_ORDER, "-checked_at", "-pk")


@dataclass(frozen=True)
class SourceLink:
    """Where a value came from, when its reference names a sync run or a partner mapping."""

    source_id: int
    source_name: str
    url_name: str  # data_source_detail or mapping_list, both taking the source id


def source_links(observations: Iterable[MetricObservation]) -> dict[int, SourceLink]:
    """Per observation id: the data source its reference names (at most two queries for a page)."""
    runs: dict[int, list[int]] = {}
    mappings: dict[int, list[int]] = {}
    for observation in observations:
        if match := _SYNC_REF.match(observation.source_ref or ""):
            runs.setdefault(int(match.group(1)), []).append(observation.pk)
        elif match := _MAPPING_REF.match(observation.source_ref or ""):
            mappings.setdefault(int(match.group(1)), []).append(observation.pk)
    links: dict[int, SourceLink] = {}
    if runs:
        for run_id, source_id, name in SyncRun.objects.filter(pk__in=list(runs)).values_list(
            "pk", "source_id", "source__name"
        ):
            for observation_id in runs[run_id]:
                links[observation_id] = SourceLink(source_id, name, "data_source_detail")
    if mappings:
        for mapping_id, source_id, name in PartnerMapping.objects.filter(pk__in=list(mappings)).values_list(
            "pk", "source_id", "source__name"
        ):
            for observation_id in mappings[mapping_id]:
                links[observation_id] = SourceLink(source_id, name, "mapping_list")
    return links


# --- Completeness --------------------------------------------------------------------------------------


@dataclass
class Completeness:
    """How complete a period's scores are."""

    scored: int = 0
    average: Decimal | None = None
    under_minimum: int = 0
    bins: list[tuple[Decimal, Decimal, int]] = field(default_factory=list)  # (low, high, partners)
    minimum: Decimal | None = None  # the minimum, when every score of the period shares one
    minimums: int = 0  # how many different minimums the period's scorecard versions set


def _bin(index: int) -> Q:
    low = HISTOGRAM_STEP * index
    if index == HISTOGRAM_BINS - 1:
        return Q(completeness__gte=low)
    return Q(completeness__gte=low, completeness__lt=low + HISTOGRAM_STEP)


def completeness(*, period: str, manager=None) -> Completeness:
    """Scored partners, average completeness, those under their version's minimum, and a histogram.

    Two queries: the aggregate (with the histogram counted by the database) and the minimums.
    """
    scores = Score.objects.current().filter(period=period)
    if manager is not None:
        scores = scores.filter(partner__manager=manager)
    counts = scores.aggregate(
        scored=Count("pk"),
        average=Avg("completeness"),
        # The stored data-gap flag is completeness under the version's minimum (or no data at all).
        under_minimum=Count("pk", filter=Q(flag_data_gap=True)),
        **{f"bin_{index}": Count("pk", filter=_bin(index)) for index in range(HISTOGRAM_BINS)},
    )
    minimums = sorted(set(scores.order_by().values_list("version__min_completeness", flat=True).distinct()))
    result = Completeness(
        scored=counts["scored"],
        average=None if counts["average"] is None else Decimal(str(counts["average"])),
        under_minimum=counts["under_minimum"],
        minimum=minimums[0] if len(minimums) == 1 else None,
        minimums=len(minimums),
    )
    result.bins = [
        (HISTOGRAM_STEP * index, HISTOGRAM_STEP * (index + 1), counts[f"bin_{index}"])
        for index in range(HISTOGRAM_BINS)
    ]
    return result


def lowest_completeness(*, period: str, manager=None, limit: int = 10) -> list[Score]:
    """The period's least complete scores, with partner, manager and version joined."""
    scores = (
        Score.objects.current()
        .filter(period=period)
        .select_related("partner", "partner__partner_type", "partner__manager", "version")
        .defer("components", "explanation", "fingerprint")
    )
    if manager is not None:
        scores = scores.filter(partner__manager=manager)
    return list(scores.order_by("completeness", "partner__name", "pk")[:limit])


def completeness_history(*, partner: Partner, count: int = TREND_PERIODS) -> list[Score]:
    """The partner's current scores of its last ``count`` scored periods, oldest first."""
    scores = (
        Score.objects.current()
        .filter(partner=partner)
        .select_related("version")
        .defer("components", "explanation", "fingerprint")
        .order_by("-period")[:count]
    )
    return list(reversed(scores))


# --- The partner's observations -----------------------------------------------------------------------


def observation_periods(*, partner: Partner, start_month: int) -> list[str]:
    """Periods the partner has current values for, newest first."""
    keys = (
        MetricObservation.objects.current()
        .filter(partner=partner)
        .order_by()
        .values_list("period", flat=True)
        .distinct()
    )
    return _sorted_periods(keys, start_month=start_month)


def partner_observations(*, partner: Partner, period: str) -> QuerySet:
    """The partner's current values of a period with metric, recorder and check joined."""
    return (
        MetricObservation.objects.current()
        .filter(partner=partner, period=period)
        .select_related("metric", "recorded_by", "health_check", "health_check__reviewed_by")
        .order_by("metric__pillar", "metric__name", "pk")
    )


# --- Sources and deals ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceAttention:
    source: DataSource
    health: object  # partnerhub.integrations.views.SourceHealth
    last_finished: SyncRun | None


def sources_needing_attention() -> list[SourceAttention]:
    """Active CRM sources that are failing, stale or never synced (two queries).

    Sources that receive facts (uploads, API pushes) are never stale, and inactive ones are not
    expected to sync: neither needs attention here.
    """
    finished = (
        SyncRun.objects.filter(source=OuterRef("pk"))
        .exclude(status__in=(SyncStatus.QUEUED, SyncStatus.RUNNING))
        .order_by("-queued_at", "-pk")
    )
    sources = list(
        DataSource.objects.filter(is_active=True, kind__in=list(PULLED_KINDS))
        .annotate(last_finished_id=Subquery(finished.values("pk")[:1]))
        .order_by("name", "pk")
    )
    runs = SyncRun.objects.in_bulk([source.last_finished_id for source in sources if source.last_finished_id])
    now = timezone.now()
    rows = []
    for source in sources:
        last = runs.get(source.last_finished_id)
        health = source_health(source, last, now)
        if health.key in ATTENTION:
            rows.append(SourceAttention(source, health, last))
    order = {key: index for index, key in enumerate(ATTENTION)}
    rows.sort(key=lambda row: order[row.health.key])
    return rows


def unmatched_deal_count() -> int:
    """Deals kept without a partner because their reference matched none (deleted ones aside)."""
    return Deal.objects.filter(partner__isnull=True, deleted_at__isnull=True).count()


# --- One partner at a glance ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PartnerDataSummary:
    """What the partner's page shows of its data: requests to decide, values to review, the last value recorded."""

    open_corrections: int
    open_appeals: int
    suspects_to_review: int
    last_recorded_at: datetime.datetime | None


def partner_data_summary(partner: Partner) -> PartnerDataSummary:
    """``partner``'s open correction requests and appeals, its suspect values not yet reviewed, and when its
    latest value was recorded; three queries."""
    requests = (
        CorrectionRequest.objects.open()
        .filter(partner=partner)
        .aggregate(
            corrections=Count("pk", filter=Q(kind=CorrectionKind.CORRECTION)),
            appeals=Count("pk", filter=Q(kind=CorrectionKind.APPEAL)),
        )
    )
    to_review = suspects(partner_ids=[partner.pk], review=CheckReview.UNREVIEWED).order_by().values("pk").count()
    last = MetricObservation.objects.filter(partner=partner).aggregate(last=Max("recorded_at"))["last"]
    return PartnerDataSummary(
        open_corrections=requests["corrections"],
        open_appeals=requests["appeals"],
        suspects_to_review=to_review,
        last_recorded_at=last,
    )
