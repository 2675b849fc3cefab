"""The demo's data ingestion: sources with a sync history, deals, data-health checks and corrections.

Northwind gets the whole story, once its scorecard is scored:

* **Sources.** A HubSpot source (deals name their partner in the ``partner_company`` property,
  matched on the partner's HubSpot company id) with a week of sync runs: the first full sync, an
  incremental one, a run stopped by HubSpot's rate limit and the retry that finished it, and, most
  recently, a run HubSpot refused because the (deliberately fake) token is not a real one. It syncs
  only when asked (``schedule_minutes=0``), so the demo never reaches out to HubSpot by itself. A
  Salesforce source that was connected and then deactivated; the "File uploads" and "API push"
  sources that uploads and pushes use.
* **Deals** of the HubSpot source over the scored quarters, written directly (no connector runs):
  the partners' deals, two company ids no partner has (the unmatched queue's two groups) and a
  third one an administrator mapped to a partner without a HubSpot id. The deals derive no
  observations: the scorecard's numbers stay those of the demo's upload.
* **Data health.** Two wild values entered by hand (a customer satisfaction far below the
  partner's history, a training completion rate that collapsed), every scored quarter checked,
  the second value accepted by the partner's manager with a note; the first waits for review.
* **Corrections** of Alpine Systems' data, whose people use the partner portal, through the
  correction services: one approved (the score follows), one rejected with a comment, one open,
  and an open appeal of the quarter Alpine dipped.

Sync runs and deals are dated on the scorecard's own calendar (the days before
``SCORES_REFERENCE_DATE``), never today's. Every step looks for what it would create first, so a
second run creates nothing; ``seed_ingestion`` returns how many rows of each kind it created.
"""

from __future__ import annotations

import datetime
import math
import random
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from django.db.models import Max

from partnerhub.integrations.deals import api_push_source
from partnerhub.integrations.services import mapping_create, source_create, source_deactivate
from partnerhub.integrations.source_models import (
    Attribution,
    DataSource,
    Deal,
    PartnerMatch,
    SourceKind,
    SyncErrorKind,
    SyncRun,
    SyncStatus,
)
from partnerhub.integrations.uploads import file_upload_source
from partnerhub.partners.models import Partner, PartnerStatus
from partnerhub.tenancy.management.demo_scorecards import (
    NOISY,
    SCORES_REFERENCE_DATE,
    PlannedPartner,
    SeededScorecard,
    observation_plan,
)
from partnerhub.tenancy.models import Membership, Tenant, User
from partnerhub.tenancy.roles import Role
from scorecards.models import (
    CheckReview,
    CorrectionKind,
    CorrectionRequest,
    CorrectionStatus,
    Metric,
    MetricObservation,
    ObservationCheck,
    ObservationSource,
    Score,
)
from scorecards.periods import parse_period
from scorecards.services.corrections import appeal_request, correction_request, request_decide
from scorecards.services.health import check_observations, check_review
from scorecards.services.observations import observation_record
from scorecards.services.recompute import recompute_period

if TYPE_CHECKING:  # the command imports this module
    from partnerhub.tenancy.management.commands.seed_demo import Workspace

HUBSPOT_NAME = "HubSpot"
SALESFORCE_NAME = "Salesforce"
DEMO_TOKEN = "demo-token-not-real"  # noqa: S105 - a placeholder HubSpot refuses, by design
PARTNER_PROPERTY = "partner_company"
# The sync history ends on the morning of the scorecard's reference date.
SYNC_CLOCK = datetime.datetime.combine(SCORES_REFERENCE_DATE, datetime.time(9, 0), tzinfo=datetime.UTC)
PAGE_SIZE = 100  # deals per HubSpot search page
# HubSpot company ids of the demo partners have 8 digits: these 9-digit ones belong to none.
UNMATCHED_REFS = {"104729311": 6, "118842007": 3}
MAPPED_REF = "121905586"  # a partner's second HubSpot company, which an administrator mapped
MAPPED_DEALS = 4
HUBSPOT_AUTH_ERROR = (
    "HubSpot rejected the access token: Authentication credentials not found. This API supports OAuth 2.0 "
    "authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)
HUBSPOT_RATE_LIMIT = (
    "HubSpot rate limit reached: You have reached your secondly limit. (policy TEN_SECONDLY_ROLLING, "
    "retry after 600 seconds)"
)
CUSTOMERS = [
    "Bergbahnen", "Helvetic Foods", "Rheinland Logistik", "Kestrel Health", "Marlow Insurance", "Tamarind Retail",
    "Northshore Utilities", "Quayside Media", "Granada Hotels", "Lumen Pharma", "Oberland Bank", "Saffron Airlines",
    "Corvid Manufacturing", "Pelican Freight", "Aster Telecom", "Birchwood Schools", "Condor Mining", "Solstice Energy",
]  # fmt: skip
PRODUCTS = ["Analytics", "Cloud Platform", "Data Integration", "Security", "Collaboration", "Edge Devices"]
OPEN_STAGES = ["appointmentscheduled", "qualifiedtobuy", "presentationscheduled", "decisionmakerboughtin",
               "contractsent"]  # fmt: skip

# The two values data health finds suspect, both entered by hand by the partner's manager.
WILD_REF = "demo-seed:entered-by-hand"
WILD_CSAT = ("customer_satisfaction", -3, "2.1", "Quarterly survey result as reported by the customer success team.")
WILD_TRAINING = ("training_completion_rate", -2, "6", "From the learning platform's quarterly export.")
ACCEPT_NOTE = (
    "Checked with the partner: their learning platform was migrated this quarter and most courses were offline "
    "for ten weeks. The figure is right."
)


@dataclass(frozen=True)
class DemoCorrection:
    metric: str
    period_index: int
    change: Decimal  # added to the value in force to give the proposed value
    reason: str
    outcome: str  # approved, rejected or open
    comment: str = ""


CORRECTIONS = [
    DemoCorrection(
        "training_completion_rate",
        -1,
        Decimal("8.5"),
        "Our learning platform's export stopped on 20 October; the last ten days of completions are missing. "
        "The full export for the quarter is attached to our partner ticket #4471.",
        CorrectionStatus.APPROVED,
        "Confirmed against the full export: 8.5 points were missing.",
    ),
    DemoCorrection(
        "customer_satisfaction",
        -2,
        Decimal("1.2"),
        "Two of the survey answers came from a customer we handed over to another partner in May.",
        CorrectionStatus.REJECTED,
        "The satisfaction score is the independent survey's, per customer of record at the time of the survey; "
        "the customer was still yours then, so the answers stand.",
    ),
    DemoCorrection(
        "revenue_won",
        -1,
        Decimal("48000"),
        "The renewal with Bergbahnen AG (48,000) was signed on 30 October but booked in November.",
        CorrectionStatus.OPEN,
    ),
]
APPEAL_PERIOD_INDEX = 3  # the quarter Alpine Systems dipped
APPEAL_REASON = (
    "This quarter we moved our two largest customers to the new cloud platform, which held back new deals on "
    "purpose; the migration was agreed with our partner manager in advance."
)


def seed_ingestion(
    *, tenant: Tenant, admin: User, seeded: SeededScorecard, workspace: Workspace, specs: list[dict]
) -> Counter[str]:
    """The workspace's sources, deals, checks and corrections (in the active tenant scope); what was created."""
    created: Counter[str] = Counter()
    periods = seeded.periods
    plan = observation_plan(
        slug=tenant.slug,
        seed=workspace.seed,
        specs=specs,
        periods=periods,
        start_month=tenant.fiscal_year_start_month,
        fixed=workspace.fixed_histories,
    )
    _sources(tenant, admin=admin, periods=periods, created=created)
    changed = _wild_values(plan, periods=periods, created=created)
    # The partner whose people use the partner portal asks for the corrections.
    alpine = Partner.objects.select_related("manager").get(
        pk=Membership.objects.filter(role=Role.PARTNER_MEMBER).values("partner_id")[:1]
    )
    approved = _corrections(alpine, periods=periods, outcomes={CorrectionStatus.APPROVED}, created=created)
    changed |= approved
    for period in periods:
        created["data-health check"] += check_observations(period=period)
    _accept_training_drop(periods=periods, created=created)
    if changed:
        # The new values count at once, and each later quarter's change is measured against them.
        first = periods.index(min(changed))
        for period in periods[first:]:
            created["score"] += recompute_period(version=seeded.version, period=period).written
    _corrections(alpine, periods=periods, outcomes={CorrectionStatus.REJECTED, CorrectionStatus.OPEN}, created=created)
    _appeal(alpine, periods=periods, created=created)
    return +created


# --- Sources ---------------------------------------------------------------------------------------------


def _sources(tenant: Tenant, *, admin: User, periods: list[str], created: Counter) -> None:
    if not DataSource.objects.filter(name=HUBSPOT_NAME).exists():
        _hubspot(tenant, admin=admin, periods=periods, created=created)
    if not DataSource.objects.filter(name=SALESFORCE_NAME).exists():
        salesforce = source_create(kind=SourceKind.SALESFORCE, name=SALESFORCE_NAME, by=admin, schedule_minutes=0)
        source_deactivate(source=salesforce, by=admin)
        created["data source"] += 1
    for make in (file_upload_source, api_push_source):
        before = DataSource.objects.count()
        make()
        created["data source"] += DataSource.objects.count() - before


@dataclass
class _Run:
    """A sync run as the demo tells it: when, how it ended, and the deals it created and updated."""

    at: datetime.datetime
    status: str
    trigger: str = "manual"
    creates: list[Deal] | None = None
    updates: list[Deal] | None = None
    error_kind: str = SyncErrorKind.NONE
    error: str = ""
    minutes: int = 3


def _hubspot(tenant: Tenant, *, admin: User, periods: list[str], created: Counter) -> None:
    source = source_create(
        kind=SourceKind.HUBSPOT,
        name=HUBSPOT_NAME,
        by=admin,
        credentials={"access_token": DEMO_TOKEN},
        base_url="https://api.hubapi.com",
        attribution=Attribution.DEAL_PROPERTY,
        attribution_field=PARTNER_PROPERTY,
        partner_match=PartnerMatch.HUBSPOT_COMPANY_ID,
        schedule_minutes=0,
    )
    created["data source"] += 1
    # Mapped before its deals arrive: the mapping matches them as they come, and derives nothing now.
    mapped_partner = (
        Partner.objects.filter(hubspot_company_id="").exclude(status=PartnerStatus.TERMINATED).order_by("name").first()
    )
    mapping_create(source=source, external_ref=MAPPED_REF, partner=mapped_partner, by=admin)
    created["partner mapping"] += 1

    deals = _deals(tenant, source, periods=periods, mapped_partner=mapped_partner)
    rng = random.Random(f"{tenant.slug}:hubspot-runs")  # noqa: S311 - demo data, deliberately reproducible
    # The last month's deals arrive in the later runs; everything before came with the first full sync.
    recent_from = SYNC_CLOCK.date() - datetime.timedelta(days=30)
    old = [deal for deal in deals if deal.created_on < recent_from]
    recent = [deal for deal in deals if deal.created_on >= recent_from]
    open_old = [deal for deal in old if not deal.closed]
    half = len(recent) // 2
    runs = [
        _Run(SYNC_CLOCK - datetime.timedelta(days=7), SyncStatus.SUCCEEDED, creates=old, minutes=9),
        _Run(SYNC_CLOCK - datetime.timedelta(days=6), SyncStatus.SUCCEEDED, updates=rng.sample(open_old, 12)),
        _Run(
            SYNC_CLOCK - datetime.timedelta(days=5),
            SyncStatus.RESCHEDULED,
            creates=recent[:half],
            error_kind=SyncErrorKind.RATE_LIMIT,
            error=HUBSPOT_RATE_LIMIT,
            minutes=1,
        ),
        _Run(SYNC_CLOCK - datetime.timedelta(days=5, minutes=-11), SyncStatus.SUCCEEDED, "retry", recent[half:]),
        _Run(SYNC_CLOCK - datetime.timedelta(days=3), SyncStatus.SUCCEEDED, updates=rng.sample(open_old, 7)),
        _Run(
            SYNC_CLOCK - datetime.timedelta(days=1),
            SyncStatus.FAILED,
            error_kind=SyncErrorKind.AUTHENTICATION,
            error=HUBSPOT_AUTH_ERROR,
            minutes=0,
        ),
    ]
    synced_until = last_success = run = None
    for spec in runs:
        # A retry resumes the stopped run's cursor: the same window, from the same point.
        resumed = run if spec.trigger == "retry" else None
        run = _write_run(source, spec, since=synced_until, by=admin, resumed=resumed)
        created["sync run"] += 1
        if run.status == SyncStatus.SUCCEEDED:
            synced_until, last_success = run.until, run.finished_at
    Deal.objects.bulk_create(deals, batch_size=500)
    created["deal"] += len(deals)
    DataSource.objects.filter(pk=source.pk).update(
        synced_until=synced_until, last_success_at=last_success, next_run_at=None
    )


def _write_run(
    source: DataSource, spec: _Run, *, since: datetime.datetime | None, by: User, resumed: SyncRun | None
) -> SyncRun:
    creates, updates = spec.creates or [], spec.updates or []
    fetched = len(creates) + len(updates)
    started = spec.at + datetime.timedelta(seconds=4)
    finished = started + datetime.timedelta(minutes=spec.minutes, seconds=17)
    stopped = spec.status == SyncStatus.RESCHEDULED
    window_end = resumed.until if resumed is not None else spec.at
    run = SyncRun.objects.create(
        source=source,
        status=spec.status,
        trigger=spec.trigger,
        requested_by=by if spec.trigger == "manual" else None,
        queued_at=spec.at,
        started_at=started,
        finished_at=finished,
        since=since - datetime.timedelta(minutes=source.overlap_minutes) if since else None,
        until=window_end,
        cursor=_cursor(window_end, done=not stopped),
        pages=math.ceil(fetched / PAGE_SIZE) if fetched else (0 if spec.status == SyncStatus.FAILED else 1),
        fetched=fetched,
        created=len(creates),
        updated=len(updates),
        unmatched=sum(deal.partner_id is None for deal in creates + updates),
        error_kind=spec.error_kind,
        error=spec.error,
        retry_at=finished + datetime.timedelta(seconds=600) if stopped else None,
    )
    for deal in creates:
        deal.sync_run, deal.first_seen_at, deal.updated_at = run, finished, finished
    for deal in updates:  # an open deal that moved on in HubSpot since the last run
        deal.sync_run, deal.updated_at, deal.modified_at = run, finished, window_end - datetime.timedelta(hours=20)
    return run


def _cursor(window_end: datetime.datetime, *, done: bool) -> dict:
    """A HubSpot connector cursor: done, or part-way through the run's window (a rate-limited run)."""
    end_ms = int(window_end.timestamp() * 1000)
    return {
        "version": 1,
        "kind": "hubspot",
        "window_end": window_end.isoformat(),
        "state": {
            "phase": "done" if done else "search",
            "windows": [] if done else [[end_ms - 86_400_000, end_ms]],
            "after": None if done else str(PAGE_SIZE),
            "floor_ts": None,
            "floor_ids": [],
            "archived_from": None,
            "archived_after": None,
        },
    }


def _deals(tenant: Tenant, source: DataSource, *, periods: list[str], mapped_partner: Partner) -> list[Deal]:
    """The source's deals over the scored quarters, the same on every run (not saved yet)."""
    rng = random.Random(f"{tenant.slug}:hubspot-deals")  # noqa: S311 - demo data, deliberately reproducible
    start_month = tenant.fiscal_year_start_month
    quarters = [parse_period(key, start_month=start_month) for key in periods]
    # Deals the first run (a week before the clock) or the retry (five days before) brought in.
    last_created = SYNC_CLOCK.date() - datetime.timedelta(days=6)
    last_closed = SYNC_CLOCK.date() - datetime.timedelta(days=8)
    owners: list[tuple[Partner | None, str, int]] = [
        (partner, partner.hubspot_company_id, 2)
        for partner in Partner.objects.exclude(hubspot_company_id="")
        .exclude(status=PartnerStatus.TERMINATED)
        .order_by("name")
    ]
    owners += [(None, ref, count) for ref, count in UNMATCHED_REFS.items()]
    owners.append((mapped_partner, MAPPED_REF, MAPPED_DEALS))
    deals = []
    number = 0
    for partner, ref, per_quarter in owners:
        own = [quarter for quarter in quarters if partner is None or quarter.end >= partner.joined_on]
        if partner is None or ref == MAPPED_REF:
            own = own[-2:]  # references not (yet) matched: recent deals only
        for quarter in own:
            for _ in range(rng.randint(1, per_quarter) if partner is not None and ref != MAPPED_REF else per_quarter):
                number += 1
                span = (min(quarter.end, last_created) - quarter.start).days
                created_on = quarter.start + datetime.timedelta(days=rng.randint(0, max(span, 0)))
                close_date = created_on + datetime.timedelta(days=rng.randint(20, 110))
                outcome = rng.random()
                closed = close_date <= last_closed and outcome < 0.75
                won = closed and outcome < 0.5
                size = float(partner.size) if partner is not None and partner.size else 6.0
                amount = Decimal(round(rng.uniform(4_000, 45_000) * (1 + size / 60), -2)).quantize(Decimal("0.01"))
                deals.append(
                    Deal(
                        tenant_id=tenant.pk,
                        source=source,
                        external_id=f"{18_400_000_000 + number * 7919}",
                        partner=partner,
                        partner_ref=ref,
                        name=f"{rng.choice(CUSTOMERS)} — {rng.choice(PRODUCTS)}",
                        amount=amount,
                        currency="USD",
                        stage=("closedwon" if won else "closedlost") if closed else rng.choice(OPEN_STAGES),
                        closed=closed,
                        won=won,
                        created_on=created_on,
                        close_date=close_date if closed else None,
                        modified_at=datetime.datetime.combine(
                            close_date if closed else created_on, datetime.time(17, 30), tzinfo=datetime.UTC
                        ),
                    )
                )
    return deals


# --- Data health ------------------------------------------------------------------------------------------


def _noisy_partners(plan: list[PlannedPartner], periods: list[str]) -> list[str]:
    """Partners with every quarter's satisfaction and training data, whose trend no other demo relies on."""
    return [
        partner.name
        for partner in plan
        if partner.archetype == NOISY
        and all(
            {"customer_satisfaction", "training_completion_rate"} <= set(partner.observations.get(period, {}))
            for period in periods
        )
    ]


def _wild_values(plan: list[PlannedPartner], *, periods: list[str], created: Counter) -> set[str]:
    """Record the two wild values (once: their source reference makes a repeat add nothing)."""
    names = _noisy_partners(plan, periods)[:2]
    changed = set()
    for name, (key, index, value, note) in zip(names, (WILD_CSAT, WILD_TRAINING), strict=True):
        partner = Partner.objects.select_related("manager").get(name=name)
        _observation, new = observation_record(
            partner=partner,
            metric=Metric.objects.get(key=key),
            period=periods[index],
            value=value,
            source=ObservationSource.MANUAL,
            source_ref=WILD_REF,
            by=partner.manager,
            note=note,
        )
        if new:
            created["observation"] += 1
            changed.add(periods[index])
    return changed


def _accept_training_drop(*, periods: list[str], created: Counter) -> None:
    key, index, _value, _note = WILD_TRAINING
    check = (
        ObservationCheck.objects.select_related("partner__manager")
        .filter(
            observation__source_ref=WILD_REF,
            observation__superseded_by__isnull=True,
            metric__key=key,
            period=periods[index],
            suspect=True,
        )
        .first()
    )
    if check is not None and check.review == CheckReview.UNREVIEWED:
        check_review(check=check, accept=True, note=ACCEPT_NOTE, by=check.partner.manager)
        created["reviewed value"] += 1


# --- Corrections and appeals --------------------------------------------------------------------------


def _partner_user(partner: Partner, role: str) -> User:
    return Membership.objects.select_related("user").get(partner=partner, role=role).user


def _corrections(alpine: Partner, *, periods: list[str], outcomes: set[str], created: Counter) -> set[str]:
    """Alpine's correction requests with the given outcomes; returns the periods whose data changed."""
    requester = _partner_user(alpine, Role.PARTNER_MEMBER)
    changed = set()
    for spec in CORRECTIONS:
        if spec.outcome not in outcomes:
            continue
        period = periods[spec.period_index]
        metric = Metric.objects.get(key=spec.metric)
        if CorrectionRequest.objects.filter(
            partner=alpine, kind=CorrectionKind.CORRECTION, metric=metric, period=period
        ).exists():
            continue
        observation = MetricObservation.objects.current().get(partner=alpine, metric=metric, period=period)
        request = correction_request(
            observation=observation, proposed_value=observation.value + spec.change, reason=spec.reason, by=requester
        )
        created["correction request"] += 1
        if spec.outcome != CorrectionStatus.OPEN:
            approve = spec.outcome == CorrectionStatus.APPROVED
            request_decide(request=request, approve=approve, comment=spec.comment, by=alpine.manager)
            if approve:
                created["observation"] += 1
                changed.add(period)
    return changed


def _appeal(alpine: Partner, *, periods: list[str], created: Counter) -> None:
    period = periods[APPEAL_PERIOD_INDEX]
    if CorrectionRequest.objects.filter(partner=alpine, kind=CorrectionKind.APPEAL, period=period).exists():
        return
    score = Score.objects.current().filter(partner=alpine, period=period).aggregate(pk=Max("pk"))["pk"]
    appeal_request(
        score=Score.objects.get(pk=score), reason=APPEAL_REASON, by=_partner_user(alpine, Role.PARTNER_ADMIN)
    )
    created["appeal"] += 1
