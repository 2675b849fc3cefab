""" "How you are scored": the rules in force for a partner type, as partners read them.

The active version of each scorecard that scores the type, with the items that apply to it (core
items and the type's plug-ins), their weights and thresholds, the rating bands, the rationale,
and the history of earlier versions with their rationale and the periods they were in force.
Nothing here names people: partners see the rules, not who inside the vendor wrote them.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Prefetch

from scorecards.models import ScorecardItem, ScorecardVersion, VersionStatus
from scorecards.periods import PeriodError, parse_period


@dataclass(frozen=True, slots=True)
class PublishedItem:
    metric_key: str
    metric_name: str
    definition: str
    unit: str
    direction: str
    pillar: str
    weight: Decimal
    is_core: bool
    normalization: str
    segment_target: float | None
    rubric: str
    floor: Decimal | None
    target: Decimal | None
    cap: Decimal
    bands: list


@dataclass(frozen=True, slots=True)
class PastVersion:
    number: int
    status: str
    rationale: str
    effective_from: str
    effective_until: str | None  # the last period it scored; None while in force
    approved_at: datetime.datetime | None


@dataclass(frozen=True, slots=True)
class PublishedScorecard:
    scorecard_id: int
    scorecard_name: str
    version_id: int
    version_number: int
    partner_types: list[str]
    period_kind: str
    effective_from: str
    band_excellent: Decimal
    band_good: Decimal
    missing_data: str
    min_completeness: Decimal
    rationale: str
    approved_at: datetime.datetime | None
    items: list[PublishedItem]
    history: list[PastVersion]


def _period_before(key: str) -> str | None:
    try:
        return parse_period(key, start_month=1).previous().key  # keys do not depend on the start month
    except PeriodError:
        return None


def _item(item: ScorecardItem, partner_type: str | None) -> PublishedItem:
    metric = item.metric
    targets = item.segment_targets or {}
    return PublishedItem(
        metric_key=metric.key,
        metric_name=metric.name,
        definition=metric.definition,
        unit=metric.unit,
        direction=metric.direction,
        pillar=metric.pillar,
        weight=item.weight,
        is_core=item.is_core,
        normalization=item.normalization,
        segment_target=targets.get(partner_type) if partner_type else None,
        rubric=item.rubric,
        floor=item.floor,
        target=item.target,
        cap=item.cap,
        bands=list(item.bands or []),
    )


def published_rules(*, partner_type: str | None) -> list[PublishedScorecard]:
    """The rules in force for ``partner_type`` (every active version when None); three queries."""
    active = list(
        ScorecardVersion.objects.filter(status=VersionStatus.ACTIVE)
        .select_related("scorecard")
        .prefetch_related(
            Prefetch(
                "items",
                queryset=ScorecardItem.objects.select_related("metric").order_by("position", "pk"),
            )
        )
        .order_by("scorecard__name", "scorecard_id")
    )
    if partner_type is not None:
        active = [version for version in active if partner_type in (version.partner_types or [])]
    past_by_scorecard: dict[int, list[ScorecardVersion]] = {}
    if active:
        for version in ScorecardVersion.objects.filter(
            scorecard_id__in=[version.scorecard_id for version in active],
            status__in=[VersionStatus.ACTIVE, VersionStatus.RETIRED],
        ).order_by("-number"):
            past_by_scorecard.setdefault(version.scorecard_id, []).append(version)
    published = []
    for version in active:
        items = [
            _item(item, partner_type)
            for item in version.items.all()
            if partner_type is None or not item.applies_to or partner_type in item.applies_to
        ]
        history = []
        successor_from = None
        for past in past_by_scorecard.get(version.scorecard_id, []):
            history.append(
                PastVersion(
                    number=past.number,
                    status=past.status,
                    rationale=past.rationale,
                    effective_from=past.effective_from,
                    effective_until=_period_before(successor_from) if successor_from else None,
                    approved_at=past.approved_at,
                )
            )
            successor_from = past.effective_from
        published.append(
            PublishedScorecard(
                scorecard_id=version.scorecard_id,
                scorecard_name=version.scorecard.name,
                version_id=version.pk,
                version_number=version.number,
                partner_types=list(version.partner_types or []),
                period_kind=version.period_kind,
                effective_from=version.effective_from,
                band_excellent=version.band_excellent,
                band_good=version.band_good,
                missing_data=version.missing_data,
                min_completeness=version.min_completeness,
                rationale=version.rationale,
                approved_at=version.approved_at,
                items=items,
                history=history,
            )
        )
    return published
