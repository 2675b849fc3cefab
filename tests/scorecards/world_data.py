"""The scorecard part of each tenant world: rules in force and two closed quarters of observations.

Rows are written directly (no services), so the world's audit log holds only what the tenancy part
writes. The scorecard, its metrics and periods stay clear of what scoring tests build on top of the
world (they use their own scorecard, revenue and win rate).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone

from partnerhub.partners.models import Partner
from partnerhub.tenancy.context import tenant_scope
from partnerhub.tenancy.models import Tenant, User
from scorecards.models import (
    Metric,
    MetricObservation,
    Normalization,
    ObservationSource,
    RubricKind,
    Scorecard,
    ScorecardItem,
    ScorecardVersion,
    VersionStatus,
)
from scorecards.periods import QUARTER, last_closed

SCORECARD_NAME = "Partner health"
SEGMENTS = ["reseller", "msp"]
# metric key, weight, plug-in for, item fields
ITEMS = [
    ("pipeline_created", "40", [], {"normalization": Normalization.PERCENTILE, "floor": "0", "target": "100"}),
    ("customer_satisfaction", "30", [], {"floor": "5", "target": "9"}),
    (
        "training_completion_rate",
        "30",
        ["reseller"],
        {
            "rubric": RubricKind.BANDED,
            "bands": [{"at_least": 50, "points": 50}, {"at_least": 80, "points": 80}, {"at_least": 95, "points": 100}],
        },
    ),
    ("lead_response_time", "30", ["msp"], {"floor": "48", "target": "4"}),
]
# Per partner (by position in the world) and metric: the values of the two periods, oldest first.
VALUES = {
    0: {
        "pipeline_created": ("250000", "310000"),
        "customer_satisfaction": ("8.1", "8.4"),
        "training_completion_rate": ("72", "91"),
    },
    1: {
        "pipeline_created": ("90000", "60000"),
        "customer_satisfaction": ("6.2", "5.9"),
        "training_completion_rate": ("40", "35"),
    },
}


@dataclass
class ScorecardWorld:
    scorecard: Scorecard
    version: ScorecardVersion
    items: dict[str, ScorecardItem]
    metrics: dict[str, Metric]
    periods: list[str]  # two closed quarters, oldest first
    observations: list[MetricObservation]


# The world's data is pinned to a fixed day, so that tests naming its periods keep passing as the
# calendar moves on. Tests of behaviour relative to today compute their periods from today.
WORLD_TODAY = datetime.date(2026, 10, 15)


def world_periods(tenant: Tenant) -> list[str]:
    latest = last_closed(WORLD_TODAY, kind=QUARTER, start_month=tenant.fiscal_year_start_month)
    return [period.key for period in latest.last(2)]


def build_scorecard_world(*, tenant: Tenant, partners: list[Partner], admin: User) -> ScorecardWorld:
    """An active scorecard version with core and plug-in items, and current observations of both partners."""
    with tenant_scope(tenant):
        metrics = {metric.key: metric for metric in Metric.objects.all()}
        periods = world_periods(tenant)
        now = timezone.now()
        scorecard = Scorecard.objects.create(
            name=SCORECARD_NAME, description="How healthy each partnership is, quarter by quarter."
        )
        # Written as a draft and then put in force: a published version's items never change.
        version = ScorecardVersion.objects.create(
            scorecard=scorecard,
            number=1,
            status=VersionStatus.DRAFT,
            partner_types=SEGMENTS,
            rationale="Pipeline and satisfaction for everyone; training for resellers, responsiveness for MSPs.",
            effective_from=periods[0],
            created_by=admin,
            proposed_by=admin,
            proposed_at=now,
            approved_at=now,
            activated_at=now,
        )
        items = {}
        for position, (key, weight, applies_to, fields) in enumerate(ITEMS):
            fields = {name: Decimal(value) if name in ("floor", "target") else value for name, value in fields.items()}
            items[key] = ScorecardItem.objects.create(
                version=version,
                metric=metrics[key],
                weight=Decimal(weight),
                applies_to=applies_to,
                position=position,
                **fields,
            )
        version.status = VersionStatus.ACTIVE
        version.save(update_fields=["status"])
        observations = MetricObservation.objects.bulk_create(
            MetricObservation(
                tenant=tenant,
                partner=partners[index],
                metric=metrics[key],
                period=period,
                value=Decimal(value),
                source=ObservationSource.UPLOAD,
                source_ref="world",
                recorded_at=now,
                recorded_by=admin,
            )
            for index, values in VALUES.items()
            for key, pair in values.items()
            for period, value in zip(periods, pair, strict=True)
        )
    return ScorecardWorld(
        scorecard=scorecard, version=version, items=items, metrics=metrics, periods=periods, observations=observations
    )
