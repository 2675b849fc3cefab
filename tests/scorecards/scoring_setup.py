"""Scorecards with active versions, partners and observations, built from the models for scoring tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from partnerhub.partners.models import Partner, PartnerType
from partnerhub.tenancy.context import tenant_scope
from scorecards.models import (
    Metric,
    MetricObservation,
    ObservationSource,
    Scorecard,
    ScorecardItem,
    ScorecardVersion,
    VersionStatus,
)
from scorecards.services.observations import observation_record
from tests.factories import PartnerFactory

PERIODS = ["FY2025-Q1", "FY2025-Q2", "FY2025-Q3", "FY2025-Q4", "FY2026-Q1", "FY2026-Q2", "FY2026-Q3", "FY2026-Q4"]


@dataclass
class ScoringSetup:
    version: ScorecardVersion
    metrics: dict[str, Metric]
    partners: list[Partner]
    extra: dict = field(default_factory=dict)


def metric(key: str, *, direction: str = "higher") -> Metric:
    found = Metric.objects.filter(key=key).first()
    if found:
        return found
    return Metric.objects.create(key=key, name=key.replace("_", " ").capitalize(), definition=key, direction=direction)


def partner_type(key: str) -> PartnerType:
    found = PartnerType.objects.filter(key=key).first()
    return found or PartnerType.objects.create(key=key, name=key.title())


def active_version(
    *,
    segments=("reseller",),
    items=None,
    number: int = 1,
    scorecard: Scorecard | None = None,
    effective_from: str = "",
    min_completeness: str = "0.5",
    missing_data: str = "renormalize",
) -> ScorecardVersion:
    """An active version; ``items`` is a list of (metric key, weight, item fields)."""
    scorecard = scorecard or Scorecard.objects.get_or_create(name="Partner performance")[0]
    items = items or [
        ("revenue_won", "50", {"floor": "0", "target": "100"}),
        ("win_rate", "30", {"floor": "0", "target": "50"}),
        (
            "certifications",
            "20",
            {"rubric": "banded", "bands": [{"at_least": 1, "points": 50}, {"at_least": 3, "points": 100}]},
        ),
    ]
    # Written as a draft and then put in force: a published version's items never change.
    version = ScorecardVersion.objects.create(
        scorecard=scorecard,
        number=number,
        status=VersionStatus.DRAFT,
        partner_types=list(segments),
        min_completeness=Decimal(min_completeness),
        missing_data=missing_data,
        effective_from=effective_from,
        rationale="Test rules.",
    )
    for position, (key, weight, fields) in enumerate(items):
        fields = dict(fields)
        direction = fields.pop("direction", "higher")
        ScorecardItem.objects.create(
            version=version,
            metric=metric(key, direction=direction),
            weight=Decimal(weight),
            position=position,
            **{
                name: (Decimal(value) if name in ("floor", "target", "cap") else value)
                for name, value in fields.items()
            },
        )
    version.status = VersionStatus.ACTIVE
    version.save(update_fields=["status"])
    return version


def partners(count: int, *, segment: str = "reseller", prefix: str = "Partner", size=None) -> list[Partner]:
    kind = partner_type(segment)
    return [
        PartnerFactory(
            name=f"{prefix} {segment} {n:03d}", partner_type=kind, **({} if size is None else {"size": size})
        )
        for n in range(count)
    ]


def observe(partner: Partner, key: str, period: str, value) -> MetricObservation:
    return MetricObservation.objects.create(
        partner=partner, metric=metric(key), period=period, value=Decimal(str(value)), source=ObservationSource.MANUAL
    )


def correct(partner: Partner, key: str, period: str, value) -> MetricObservation:
    """An approved correction: a new observation that supersedes the current one (the old row stays)."""
    observation, created = observation_record(
        partner=partner, metric=metric(key), period=period, value=value, source=ObservationSource.CORRECTION, by=None
    )
    assert created
    return observation


def observe_all(partners_values: dict[Partner, dict[str, object]], period: str) -> None:
    for partner, values in partners_values.items():
        for key, value in values.items():
            observe(partner, key, period, value)


def score_scorecard_world(*, tenant, scorecards) -> None:
    """The test world's scores and benchmarks: its scorecard computed for both of its periods."""
    from scorecards.services.recompute import recompute_period

    with tenant_scope(tenant):
        for period in scorecards.periods:
            recompute_period(version=scorecards.version, period=period)
