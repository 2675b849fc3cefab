"""The demo's scorecard: governed rules, eight quarters of plausible observations, computed scores.

Everything here is deterministic: the quarters end with the last one closed on a fixed reference
date (never today), and each partner's numbers come from a random generator seeded with the
workspace and the partner's name. Partners follow an archetype (improving, regressing, stagnant,
gappy, or just noisy), so the demo shows every trend flag, waterfalls and benchmarks.

The rules go through the governance services like any change of rules: the administrator drafts
and proposes them, the head of channel (a second administrator) approves them, and they are
activated from the first of the eight quarters. Observations are recorded in bulk through the
observation service (source "upload", reference "demo-seed"), then the quarters are scored in
order, so each quarter's change and flags are measured against the one before. Running it again
finds the rules in place, records nothing new and writes no new score revision.
"""

from __future__ import annotations

import datetime
import random
from dataclasses import dataclass, field

from partnerhub.partners.models import DEFAULT_PARTNER_TYPES, Partner, PartnerStatus
from partnerhub.tenancy.models import Tenant, User
from scorecards.models import Metric, ObservationSource, Scorecard, ScorecardVersion, VersionStatus
from scorecards.periods import QUARTER, last_closed, period_containing
from scorecards.services.governance import (
    item_add,
    scorecard_create,
    version_activate,
    version_approve,
    version_create_draft,
    version_propose,
)
from scorecards.services.observations import MAX_BULK_ITEMS, observations_bulk_record
from scorecards.services.recompute import recompute_period

SCORECARD_NAME = "Partner performance"
# The scored quarters end with the last quarter closed on this date, whatever the date of the run.
SCORES_REFERENCE_DATE = datetime.date(2026, 11, 1)
QUARTERS = 8
SOURCE_REF = "demo-seed"

IMPROVING, REGRESSING, STAGNANT, GAPPY, NOISY = "improving", "regressing", "stagnant", "gappy", "noisy"
ARCHETYPES = [IMPROVING, REGRESSING, STAGNANT, GAPPY, NOISY]
ARCHETYPE_WEIGHTS = [16, 16, 12, 10, 46]
# A gappy partner's missing quarters lack these metrics: 52 of 100 weight points, so completeness
# falls to 0.48, under the version's minimum of 0.7.
GAP_METRICS = ("revenue_won", "customer_satisfaction", "training_completion_rate", "mdf_utilization")

ALL_TYPES = [key for key, _ in DEFAULT_PARTNER_TYPES]
NOT_MSP = [key for key in ALL_TYPES if key != "msp"]


@dataclass(frozen=True)
class ItemSpec:
    metric: str
    weight: str
    fields: dict = field(default_factory=dict)


def _bands(*pairs: tuple[float, float]) -> dict:
    return {"rubric": "banded", "bands": [{"at_least": at_least, "points": points} for at_least, points in pairs]}


ITEMS = [
    # Performance results: 60
    ItemSpec("revenue_won", "22", {"normalization": "per_size", "floor": "5000", "target": "30000"}),
    ItemSpec("pipeline_created", "10", {"normalization": "percentile", "applies_to": NOT_MSP}),
    ItemSpec("renewal_rate", "10", {"applies_to": ["msp"], "floor": "70", "target": "97"}),
    ItemSpec("win_rate", "10", {"floor": "0.10", "target": "0.45"}),
    ItemSpec("deal_velocity", "8", {"floor": "120", "target": "40"}),
    ItemSpec("customer_satisfaction", "10", {"floor": "5", "target": "9.5"}),
    # Collaboration health: 15
    ItemSpec("joint_marketing_events", "8", _bands((1, 40), (2, 70), (4, 100))),
    ItemSpec("mdf_utilization", "7", {"floor": "20", "target": "90"}),
    # Development: 25
    ItemSpec("certifications_completed", "12", _bands((1, 40), (3, 70), (5, 100))),
    ItemSpec("training_completion_rate", "13", {"floor": "40", "target": "95"}),
]
RATIONALE = (
    "One scorecard for every partner type, balanced across the three pillars: performance results "
    "(60 points: revenue won per sales rep, so small partners are not judged by a big one's volume; "
    "pipeline created against the partner's own segment; win rate; deal velocity; customer satisfaction), "
    "collaboration health (15 points: joint marketing events and use of market development funds) and "
    "development (25 points: certifications and training). Managed service providers sell recurring "
    "services, so for them renewal rate takes the 10 points of pipeline created. A score needs data for "
    "at least 70% of the weight to be rated."
)
APPROVAL_NOTE = "Checked against last year's quarters with the regional partner managers."


def quarters(tenant: Tenant) -> list[str]:
    """The eight scored quarters, oldest first, in the tenant's fiscal calendar."""
    last = last_closed(SCORES_REFERENCE_DATE, kind=QUARTER, start_month=tenant.fiscal_year_start_month)
    return [period.key for period in last.last(QUARTERS)]


# --- The rules ----------------------------------------------------------------------------------------


def active_version(*, admin: User, approver: User, first_period: str) -> tuple[ScorecardVersion, bool]:
    """The scorecard's version in force, taken through the governance steps it still needs."""
    created = False
    scorecard = Scorecard.objects.filter(name__iexact=SCORECARD_NAME).first()
    if scorecard is None:
        scorecard = scorecard_create(
            name=SCORECARD_NAME,
            description="How the partner program measures results, collaboration and development each quarter.",
            by=admin,
        )
    version = ScorecardVersion.objects.filter(scorecard=scorecard, status=VersionStatus.ACTIVE).first()
    if version is not None:
        return version, created
    version = ScorecardVersion.objects.filter(scorecard=scorecard).order_by("number").first()
    if version is None:
        created = True
        version = version_create_draft(
            scorecard=scorecard, by=admin, copy_latest=False, partner_types=ALL_TYPES, period_kind=QUARTER
        )
        metrics = {metric.key: metric for metric in Metric.objects.filter(key__in=[item.metric for item in ITEMS])}
        for position, item in enumerate(ITEMS):
            fields = {"metric": metrics[item.metric], "weight": item.weight, "position": position, **item.fields}
            item_add(version=version, by=admin, **fields)
    if version.status == VersionStatus.DRAFT:
        version = version_propose(version=version, by=admin, rationale=RATIONALE)
    if version.status == VersionStatus.PROPOSED:
        version = version_approve(version=version, by=approver, note=APPROVAL_NOTE)
    if version.status == VersionStatus.APPROVED:
        version = version_activate(version=version, by=admin, effective_from=first_period)
    return version, created


# --- The observations ---------------------------------------------------------------------------------


def _archetype(index: int, name: str, fixed: dict[str, str], rng: random.Random) -> str:
    if name in fixed:
        return fixed[name]
    # The first partners walk through every archetype, so each one appears.
    if index < len(ARCHETYPES) * 2:
        return ARCHETYPES[index % len(ARCHETYPES)]
    return rng.choices(ARCHETYPES, ARCHETYPE_WEIGHTS)[0]


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def _qualities(archetype: str, rng: random.Random) -> list[float]:
    """How well the partner does each quarter, 0 (poorly) to 1 (very well)."""
    if archetype == IMPROVING:
        start, step = rng.uniform(0.26, 0.40), rng.uniform(0.05, 0.07)
        return [start + step * t + rng.gauss(0, 0.004) for t in range(QUARTERS)]
    if archetype == REGRESSING:
        base = rng.uniform(0.70, 0.84)
        # Either a sharp fall a quarter ago that goes on, or a slide that ends in a sharp fall.
        tail = [-0.04, -0.21, -0.27] if rng.random() < 0.5 else [-0.03, -0.08, -0.25]
        return [base + rng.gauss(0, 0.008) for _ in range(QUARTERS - 3)] + [base + drop for drop in tail]
    if archetype == STAGNANT:
        return [rng.uniform(0.45, 0.70)] * QUARTERS
    quality, values = rng.uniform(0.35, 0.80), []
    for _ in range(QUARTERS):
        values.append(quality)
        quality = _clamp(quality + rng.gauss(0, 0.035), 0.12, 0.92)
    return values


NOISE = {IMPROVING: 0.015, REGRESSING: 0.015, STAGNANT: 0.0, GAPPY: 0.06, NOISY: 0.06}
# Alpine Systems, whose people use the demo's partner portal: steadily better, with one dip.
ALPINE_QUALITIES = [0.40, 0.46, 0.52, 0.46, 0.55, 0.61, 0.67, 0.74]


def _values(quality: float, size: float, partner_type: str, noise: float, rng: random.Random) -> dict[str, str]:
    """One quarter's metric values for a partner of ``size`` sales reps doing this well."""
    q = _clamp(quality, 0.05, 0.97)

    def jitter() -> float:
        return 1 + rng.gauss(0, noise)

    revenue = round(size * (3000 + 27000 * q) * jitter(), -2)
    values = {
        "revenue_won": f"{revenue:.0f}",
        "pipeline_created": f"{round(revenue * (2.2 + 1.5 * q) * jitter(), -2):.0f}",
        "win_rate": f"{_clamp(0.10 + 0.38 * q + rng.gauss(0, 0.4 * noise), 0.03, 0.80):.3f}",
        "deal_velocity": f"{_clamp((140 - 105 * q) * jitter(), 12, 300):.0f}",
        "customer_satisfaction": f"{_clamp(5.0 + 4.6 * q + rng.gauss(0, 3 * noise), 1, 10):.1f}",
        "joint_marketing_events": f"{max(0, round(5 * q + rng.gauss(0, 10 * noise)))}",
        "mdf_utilization": f"{_clamp(20 + 78 * q + rng.gauss(0, 60 * noise), 0, 100):.1f}",
        "certifications_completed": f"{max(0, round(6.5 * q + rng.gauss(0, 10 * noise)))}",
        "training_completion_rate": f"{_clamp(30 + 68 * q + rng.gauss(0, 60 * noise), 0, 100):.1f}",
    }
    if partner_type == "msp":
        values["renewal_rate"] = f"{_clamp(68 + 30 * q + rng.gauss(0, 40 * noise), 0, 100):.1f}"
    return values


@dataclass(frozen=True)
class PlannedPartner:
    name: str
    archetype: str
    observations: dict[str, dict[str, str]]  # period -> metric key -> value


def observation_plan(
    *, slug: str, seed: int, specs: list[dict], periods: list[str], start_month: int, fixed: dict[str, str]
) -> list[PlannedPartner]:
    """Every scored partner's observations, the same on every run: one archetype per partner.

    A partner has no data for the quarters before it joined. Terminated partners are not scored.
    """
    rng = random.Random(seed)  # noqa: S311 - demo data, deliberately reproducible
    planned = []
    index = 0
    for spec in specs:
        if spec["status"] == PartnerStatus.TERMINATED:
            continue
        name = spec["name"]
        archetype = _archetype(index, name, fixed, rng)
        index += 1
        own = random.Random(f"{slug}:{name}")  # noqa: S311 - each partner's numbers depend on it alone
        qualities = ALPINE_QUALITIES if archetype == "alpine" else _qualities(archetype, own)
        noise = 0.01 if archetype == "alpine" else NOISE[archetype]
        size = float(spec["size"]) if spec.get("size") else 4.0  # a referral partner of unknown size
        joined = period_containing(spec["joined_on"], kind=QUARTER, start_month=start_month).key
        gaps = {len(periods) - 1, *own.sample(range(1, len(periods) - 1), 2)} if archetype == GAPPY else set()
        observations = {}
        for t, period in enumerate(periods):
            values = _values(qualities[t], size, spec["partner_type"], noise, own)
            if period < joined:
                continue
            if t in gaps:
                values = {key: value for key, value in values.items() if key not in GAP_METRICS}
            elif archetype == NOISY and own.random() < 0.15:
                values.pop(own.choice(sorted(values)))  # now and then one value arrives late
            observations[period] = values
        shown = IMPROVING if archetype == "alpine" else archetype
        planned.append(PlannedPartner(name=name, archetype=shown, observations=observations))
    return planned


def record_observations(plan: list[PlannedPartner], *, by: User) -> int:
    """Record the plan through the observation service, in bulk; returns how many were new."""
    ids = dict(Partner.objects.values_list("name", "pk"))
    items = [
        {"partner": ids[partner.name], "metric": key, "period": period, "value": value, "source_ref": SOURCE_REF}
        for partner in plan
        for period, values in partner.observations.items()
        for key, value in values.items()
    ]
    created = 0
    for start in range(0, len(items), MAX_BULK_ITEMS):
        result = observations_bulk_record(
            items=items[start : start + MAX_BULK_ITEMS], by=by, source=ObservationSource.UPLOAD
        )
        if result.errors:
            raise ValueError(f"Demo observations rejected: {result.errors[:3]}")
        created += result.count("created")
    return created


@dataclass
class SeededScorecard:
    version: ScorecardVersion
    periods: list[str]
    version_created: bool
    observations_created: int
    scores_written: int


def seed_scorecard(
    *, tenant: Tenant, admin: User, approver: User, seed: int, specs: list[dict], fixed: dict[str, str]
) -> SeededScorecard:
    """The workspace's governed scorecard, observations and scores (in the active tenant scope)."""
    periods = quarters(tenant)
    version, created = active_version(admin=admin, approver=approver, first_period=periods[0])
    plan = observation_plan(
        slug=tenant.slug,
        seed=seed,
        specs=specs,
        periods=periods,
        start_month=tenant.fiscal_year_start_month,
        fixed=fixed,
    )
    observations = record_observations(plan, by=admin)
    written = 0
    for period in periods:
        written += recompute_period(version=version, period=period).written
    return SeededScorecard(
        version=version,
        periods=periods,
        version_created=created,
        observations_created=observations,
        scores_written=written,
    )
