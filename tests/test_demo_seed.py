"""The demo seed: reproducible, safe to run again, and every demo account can sign in."""

from __future__ import annotations

import datetime
from collections import Counter
from decimal import Decimal
from io import StringIO

import pytest
from allauth.account.models import EmailAddress
from django.core.management import call_command
from django.db.models import Count, F
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from actions.models import (
    ActionItem,
    ActionReminder,
    ActionStatus,
    ActionUpdate,
    Checkpoint,
    Milestone,
    MilestoneStatus,
    PlanStatus,
    RemediationPlan,
)
from actions.services.reminders import overdue_reminders_send
from partnerhub.integrations.source_models import (
    DataSource,
    Deal,
    PartnerMapping,
    SourceKind,
    SyncErrorKind,
    SyncRun,
    SyncStatus,
)
from partnerhub.partners.models import LifecycleStage, Partner, PartnerStatus, PartnerType
from partnerhub.tenancy.context import tenant_scope
from partnerhub.tenancy.management.commands.seed_demo import (
    DEMO_PASSWORD,
    NORTHWIND,
    REGIONS,
    SHARED_PARTNER_NAME,
    WORKSPACES,
    partner_specs,
)
from partnerhub.tenancy.management.demo_ingestion import (
    ACCEPT_NOTE,
    MAPPED_REF,
    UNMATCHED_REFS,
    WILD_CSAT,
    WILD_REF,
    WILD_TRAINING,
)
from partnerhub.tenancy.management.demo_scorecards import (
    GAPPY,
    IMPROVING,
    REGRESSING,
    SCORECARD_NAME,
    SCORES_REFERENCE_DATE,
    STAGNANT,
    observation_plan,
    quarters,
)
from partnerhub.tenancy.models import ApiKey, AuditEvent, Invitation, Membership, Tenant, User
from partnerhub.tenancy.roles import INTERNAL_ROLES, Role
from partnerhub.tenancy.selectors import memberships_of
from reviews.models import (
    CadenceRule,
    CollaborationRating,
    CycleStatus,
    DevelopmentCommitment,
    MeetingNote,
    NoteVisibility,
    PartnerVoice,
    Review,
    ReviewCycle,
    ReviewDecision,
    ReviewKind,
    ReviewState,
    ReviewTrack,
)
from reviews.selectors import cycle_memo
from scorecards.models import (
    CheckReview,
    CorrectionKind,
    CorrectionRequest,
    CorrectionStatus,
    MetricObservation,
    ObservationCheck,
    ObservationSource,
    RecomputeRun,
    Score,
    Scorecard,
    ScorecardItem,
    ScorecardVersion,
    SegmentBenchmark,
    VersionStatus,
)
from scorecards.periods import parse_period
from scorecards.services.governance import version_validate

TENANT_OWNED = [
    Partner,
    PartnerType,
    Membership,
    ApiKey,
    Invitation,
    AuditEvent,
    Scorecard,
    ScorecardVersion,
    ScorecardItem,
    MetricObservation,
    Score,
    SegmentBenchmark,
    RecomputeRun,
    DataSource,
    SyncRun,
    Deal,
    PartnerMapping,
    ObservationCheck,
    CorrectionRequest,
    CadenceRule,
    ReviewCycle,
    Review,
    PartnerVoice,
    ActionItem,
    ActionUpdate,
    ActionReminder,
    RemediationPlan,
    Milestone,
    Checkpoint,
]
PEOPLE = sorted({(person.email, person.role) for workspace in WORKSPACES for person in workspace.people})


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def row_counts() -> dict[str, int]:
    """Rows per table, read tenant by tenant (row-level security shows a scope its own rows only)."""
    counts = {"tenants": Tenant.objects.count(), "users": User.objects.count(), "emails": EmailAddress.objects.count()}
    for tenant in Tenant.objects.order_by("slug"):
        with tenant_scope(tenant):
            for model in TENANT_OWNED:
                counts[f"{tenant.slug}.{model._meta.label_lower}"] = model.objects.count()
    return counts


@pytest.fixture
def seeded(db) -> str:
    return seed()


def test_seed_run_twice_creates_nothing_the_second_time(seeded):
    first = row_counts()
    # The reviews story is checked here, on this test's seed, to keep the suite to the seeds it has.
    assert_reviews_and_follow_up_are_in_place()

    output = seed()

    assert row_counts() == first
    # The seed's overdue digest ran again and reminded nobody a second time; so does the next one.
    assert first["northwind.actions.actionreminder"] >= 3
    with tenant_scope(northwind()):
        assert overdue_reminders_send(today=timezone.localdate()).reminders == 0
    assert "nothing to create" in output
    assert first["tenants"] == 2
    assert first["northwind.partners.partner"] == 80
    assert first["contoso.partners.partner"] == 20
    # The ingestion story is Northwind's; the second run found every part of it in place.
    assert first["northwind.integrations.datasource"] == 4
    assert first["northwind.integrations.syncrun"] == 6
    assert first["northwind.integrations.deal"] > 500
    assert first["northwind.integrations.partnermapping"] == 1
    assert first["northwind.scorecards.observationcheck"] == first["northwind.scorecards.metricobservation"] - 3
    assert first["northwind.scorecards.correctionrequest"] == 4


def test_seed_has_no_duplicate_rows(seeded):
    seed()
    emails = list(User.objects.values_list("email", flat=True))
    assert len(emails) == len(set(emails))
    for tenant in Tenant.objects.all():
        with tenant_scope(tenant):
            names = [name.lower() for name in Partner.objects.values_list("name", flat=True)]
            assert len(names) == len(set(names))
            members = list(Membership.objects.values_list("user_id", flat=True))
            assert len(members) == len(set(members))
            assert ApiKey.objects.filter(revoked_at__isnull=True).count() == (1 if tenant.slug == "northwind" else 0)


def test_seed_is_the_same_on_every_run():
    for workspace in WORKSPACES:
        assert partner_specs(workspace) == partner_specs(workspace)


def test_northwind_partners_cover_every_segment(seeded):
    northwind = Tenant.objects.get(slug="northwind")
    assert northwind.name == "Northwind Software"
    assert northwind.fiscal_year_start_month == 2
    with tenant_scope(northwind):
        partners = Partner.objects.all()
        assert set(partners.values_list("partner_type__key", flat=True)) == set(
            PartnerType.objects.values_list("key", flat=True)
        )
        assert set(partners.values_list("lifecycle_stage", flat=True)) == set(LifecycleStage.values)
        assert set(partners.values_list("status", flat=True)) == set(PartnerStatus.values)
        assert set(partners.values_list("region", flat=True)) == set(REGIONS)
        assert partners.filter(manager__isnull=True).count() == 0
        assert partners.values("manager").distinct().count() == 3
        assert partners.exclude(hubspot_company_id="").count() > 60
        assert partners.exclude(salesforce_account_id="").count() > 50
        assert AuditEvent.objects.filter(verb="partner.created").count() == 80


def test_api_key_secret_is_printed_only_by_the_run_that_creates_it(db):
    first = seed()
    second = seed()

    assert first.count("phk_") >= 1
    assert "phk_" not in second
    with tenant_scope(Tenant.objects.get(slug="northwind")):
        key = ApiKey.objects.get()
        assert not key.can_write
        assert key.digest not in first


def test_every_demo_account_signs_in_and_lands_on_its_start_page(seeded):
    # One seed for every account: seeding is the slow part, and each failure names the account.
    for email, role in PEOPLE:
        client = Client()
        assert client.login(email=email, password=DEMO_PASSWORD), email

        response = client.get(reverse("home"))

        expected = "partner_list" if role in INTERNAL_ROLES else "portal_home"
        assert (response.status_code, response.get("Location")) == (302, reverse(expected)), email
        assert client.get(response["Location"]).status_code == 200, email


def test_the_reseller_admin_belongs_to_both_workspaces(seeded):
    user = User.objects.get(email="admin@alpine.demo")
    with tenant_scope(None, user=user):
        memberships = list(memberships_of(user))
    assert {m.tenant.slug for m in memberships} == {"northwind", "contoso"}
    assert {m.role for m in memberships} == {Role.PARTNER_ADMIN}
    for membership in memberships:
        with tenant_scope(membership.tenant):
            assert Partner.objects.get(pk=membership.partner_id).name == SHARED_PARTNER_NAME


# --- The scorecard -----------------------------------------------------------------------------------


def northwind_plan(tenant: Tenant):
    return observation_plan(
        slug=tenant.slug,
        seed=NORTHWIND.seed,
        specs=partner_specs(NORTHWIND),
        periods=quarters(tenant),
        start_month=tenant.fiscal_year_start_month,
        fixed=NORTHWIND.fixed_histories,
    )


def test_scorecard_rules_are_governed_by_two_administrators(seeded):
    assert f"Scorecard “{SCORECARD_NAME}”" in seeded
    assert "scores for 8 quarters, FY2025-Q4 to FY2027-Q3" in seeded
    for tenant in Tenant.objects.all():
        with tenant_scope(tenant):
            version = ScorecardVersion.objects.select_related("proposed_by", "approved_by").get(
                scorecard__name=SCORECARD_NAME
            )
            assert version.status == VersionStatus.ACTIVE
            assert version.proposed_by is not None and version.approved_by is not None
            assert version.proposed_by != version.approved_by
            for user in (version.proposed_by, version.approved_by):
                assert Membership.objects.get(user=user).role == Role.ADMIN
            assert version.rationale
            assert version.effective_from == quarters(tenant)[0]
            assert version_validate(version) == []
            items = list(version.items.select_related("metric"))
            assert {item.metric.pillar for item in items} == {"performance", "collaboration", "development"}
            assert {item.normalization for item in items} >= {"per_size", "percentile", "none"}
            assert {item.rubric for item in items} == {"linear", "banded"}
            for key in version.partner_types:
                weights = [item.weight for item in items if not item.applies_to or key in item.applies_to]
                assert sum(weights) == Decimal("100"), key
            assert [item.metric.key for item in items if item.applies_to == ["msp"]] == ["renewal_rate"]
            events = set(
                AuditEvent.objects.filter(target_type="scorecards.scorecardversion").values_list("verb", flat=True)
            )
            assert {"scorecard_version.proposed", "scorecard_version.approved", "scorecard_version.activated"} <= events


def test_eight_quarters_are_scored_with_every_kind_of_trend(seeded):
    northwind = Tenant.objects.get(slug="northwind")
    periods = quarters(northwind)
    assert periods == [
        f"FY{y}-Q{q}" for y, q in [(2025, 4), *((2026, n) for n in range(1, 5)), (2027, 1), (2027, 2), (2027, 3)]
    ]
    plan = {partner.name: partner.archetype for partner in northwind_plan(northwind)}
    with tenant_scope(northwind):
        scored = Partner.objects.exclude(status=PartnerStatus.TERMINATED)
        assert set(plan) == set(scored.values_list("name", flat=True))
        scores = Score.objects.current().select_related("partner")
        assert sorted(set(scores.values_list("period", flat=True))) == periods
        for period in periods:
            assert scores.filter(period=period).count() == scored.count()
            assert SegmentBenchmark.objects.filter(period=period).exists()
        last = {score.partner.name: score for score in scores.filter(period=periods[-1])}
        ratings = Counter(score.rating for score in last.values())
        assert ratings.keys() == {"excellent", "good", "needs_improvement", "incomplete"}

        def flagged(archetype: str, flag: str) -> list[str]:
            return [name for name, kind in plan.items() if kind == archetype and getattr(last[name], f"flag_{flag}")]

        # Every partner of an archetype carries its flag in the last quarter.
        for archetype, flag in [(IMPROVING, "improving"), (REGRESSING, "regression"), (GAPPY, "data_gap")]:
            everyone = [name for name, kind in plan.items() if kind == archetype]
            assert everyone and flagged(archetype, flag) == everyone, archetype
        assert len(flagged(STAGNANT, "stagnation")) >= 3
        # Regressing partners fell by 10 points or more in one quarter, and declined twice in a row.
        for name in (name for name, kind in plan.items() if kind == REGRESSING):
            changes = [s.change for s in scores.filter(partner__name=name).order_by("period")][1:]
            assert min(changes) <= Decimal("-10"), name
            assert changes[-1] < 0 and changes[-2] < 0, name
        for name in (name for name, kind in plan.items() if kind == GAPPY):
            assert last[name].completeness < Decimal("0.7")
            assert last[name].rating == "incomplete"

        # Alpine Systems, whose people use the partner portal: improving, with one dip on the way.
        alpine = list(scores.filter(partner__name=SHARED_PARTNER_NAME).order_by("period"))
        assert [score.period for score in alpine] == periods
        changes = [score.change for score in alpine[1:]]
        assert sum(change < 0 for change in changes) == 1
        assert alpine[-1].flag_improving and alpine[-1].total > alpine[0].total + 20

        # Observations came in as an upload (but the data-health story's two values entered by hand and
        # Alpine's approved correction), and every current score explains its change exactly.
        sources = Counter(MetricObservation.objects.values_list("source", flat=True))
        assert sources.keys() == {ObservationSource.UPLOAD, ObservationSource.MANUAL, ObservationSource.CORRECTION}
        assert (sources[ObservationSource.MANUAL], sources[ObservationSource.CORRECTION]) == (2, 1)
        assert set(
            MetricObservation.objects.filter(source=ObservationSource.UPLOAD).values_list("source_ref", flat=True)
        ) == {"demo-seed"}
        explained = 0
        for score in scores.exclude(change=None):
            terms = score.explanation["terms"]
            assert sum((Decimal(repr(term["delta"])) for term in terms), Decimal("0")) == score.change, score
            explained += 1
        assert explained >= 7 * len(last) - 10


def test_scorecard_seed_is_the_same_on_every_run(db):
    tenant = Tenant(slug="northwind", fiscal_year_start_month=2)
    first, second = northwind_plan(tenant), northwind_plan(tenant)
    assert first == second
    assert sum(len(values) for partner in first for values in partner.observations.values()) > 5000


# --- Data ingestion ----------------------------------------------------------------------------------


def northwind() -> Tenant:
    return Tenant.objects.get(slug="northwind")


def test_the_demo_has_a_source_of_each_kind_and_a_hubspot_sync_history(seeded):
    with tenant_scope(northwind()):
        sources = {source.kind: source for source in DataSource.objects.all()}
        assert sources.keys() == set(SourceKind.values)
        hubspot, salesforce = sources[SourceKind.HUBSPOT], sources[SourceKind.SALESFORCE]
        assert hubspot.is_active and hubspot.base_url == "https://api.hubapi.com"
        assert (hubspot.attribution, hubspot.attribution_field, hubspot.partner_match) == (
            "deal_property",
            "partner_company",
            "hubspot_company_id",
        )
        assert hubspot.credentials_set == ["access_token"]
        assert hubspot.read_credentials() == {"access_token": "demo-token-not-real"}
        assert not salesforce.is_active
        assert {sources[SourceKind.FILE].name, sources[SourceKind.API].name} == {"File uploads", "API push"}
        # Nothing syncs by itself, and nothing is queued: the demo never reaches out to a CRM.
        assert not DataSource.objects.filter(schedule_minutes__gt=0).exists()
        assert not SyncRun.objects.filter(status__in=[SyncStatus.QUEUED, SyncStatus.RUNNING]).exists()

        runs = list(SyncRun.objects.filter(source=hubspot).order_by("queued_at"))
        assert {run.status for run in runs} == {SyncStatus.SUCCEEDED, SyncStatus.RESCHEDULED, SyncStatus.FAILED}
        reference = datetime.datetime.combine(SCORES_REFERENCE_DATE, datetime.time(), tzinfo=datetime.UTC)
        assert all(run.finished_at < reference for run in runs)  # the scorecard's calendar, not today's
        succeeded = [run for run in runs if run.status == SyncStatus.SUCCEEDED]
        assert all(run.fetched == run.created + run.updated and run.pages for run in succeeded)
        assert sum(run.created for run in runs) == Deal.objects.filter(source=hubspot).count()
        [limited] = [run for run in runs if run.status == SyncStatus.RESCHEDULED]
        assert limited.error_kind == SyncErrorKind.RATE_LIMIT and limited.retry_at > limited.finished_at
        retry = runs[runs.index(limited) + 1]
        assert (retry.trigger, retry.status, retry.since) == ("retry", SyncStatus.SUCCEEDED, limited.since)
        assert (runs[-1].status, runs[-1].error_kind) == (SyncStatus.FAILED, SyncErrorKind.AUTHENTICATION)
        assert hubspot.last_success_at == succeeded[-1].finished_at
        assert hubspot.synced_until == succeeded[-1].until
        verbs = set(AuditEvent.objects.values_list("verb", flat=True))
        assert {"data_source.created", "data_source.deactivated", "partner_mapping.created"} <= verbs


def test_hubspot_deals_cover_the_quarters_with_two_unmatched_groups_and_a_mapped_reference(seeded):
    tenant = northwind()
    periods = quarters(tenant)
    with tenant_scope(tenant):
        deals = Deal.objects.all()
        assert deals.filter(won=True).exists() and deals.filter(closed=True, won=False).exists()
        assert deals.filter(closed=False).exists()
        # Deals were registered in every scored quarter, and in none outside them.
        scored = [parse_period(key, start_month=tenant.fiscal_year_start_month) for key in periods]
        days = set(deals.values_list("created_on", flat=True))
        assert min(days) >= scored[0].start and max(days) <= scored[-1].end < SCORES_REFERENCE_DATE
        assert all(any(quarter.contains(day) for day in days) for quarter in scored)
        matched = deals.filter(partner__isnull=False).exclude(partner_ref=MAPPED_REF)
        assert matched.count() > 400
        assert not matched.exclude(partner_ref=F("partner__hubspot_company_id")).exists()

        groups = dict(
            deals.filter(partner__isnull=True).values_list("partner_ref").annotate(count=Count("pk")).order_by()
        )
        assert groups.keys() == UNMATCHED_REFS.keys()
        assert not Partner.objects.filter(hubspot_company_id__in=list(groups)).exists()

        mapping = PartnerMapping.objects.select_related("partner").get()
        assert mapping.external_ref == MAPPED_REF and mapping.partner.hubspot_company_id == ""
        assert set(deals.filter(partner_ref=MAPPED_REF).values_list("partner_id", flat=True)) == {mapping.partner_id}


def test_data_health_has_checked_every_quarter_with_a_suspect_value_and_an_accepted_one(seeded):
    tenant = northwind()
    periods = quarters(tenant)
    with tenant_scope(tenant):
        unchecked = MetricObservation.objects.current().filter(period__in=periods, health_check__isnull=True)
        assert not unchecked.exists()
        wild = ObservationCheck.objects.select_related("partner", "reviewed_by").filter(
            observation__source_ref=WILD_REF
        )
        csat = wild.get(metric__key=WILD_CSAT[0])
        assert (csat.period, csat.suspect, csat.review) == (periods[WILD_CSAT[1]], True, CheckReview.UNREVIEWED)
        assert csat.history_z < -3.5 and "far below this partner's own history" in csat.reasons[0]
        training = wild.get(metric__key=WILD_TRAINING[0])
        assert (training.suspect, training.review, training.review_note) == (True, CheckReview.ACCEPTED, ACCEPT_NOTE)
        assert training.reviewed_by == training.partner.manager
        assert Membership.objects.get(user=training.reviewed_by).role == Role.PARTNER_MANAGER
        assert AuditEvent.objects.filter(verb="observation.reviewed").count() == 1


def test_alpine_has_corrections_in_every_state_and_its_score_follows_the_approved_one(seeded):
    tenant = northwind()
    periods = quarters(tenant)
    with tenant_scope(tenant):
        requests = CorrectionRequest.objects.select_related("partner", "metric", "requested_by", "decided_by")
        corrections = {request.status: request for request in requests.filter(kind=CorrectionKind.CORRECTION)}
        assert corrections.keys() == {CorrectionStatus.OPEN, CorrectionStatus.APPROVED, CorrectionStatus.REJECTED}
        [appeal] = requests.filter(kind=CorrectionKind.APPEAL)
        assert appeal.status == CorrectionStatus.OPEN and appeal.score.is_current
        for request in requests:
            assert request.partner.name == SHARED_PARTNER_NAME
            assert Membership.objects.get(user=request.requested_by).partner_id == request.partner_id
        rejected = corrections[CorrectionStatus.REJECTED]
        assert rejected.decision_comment and rejected.decided_by == rejected.partner.manager

        approved = corrections[CorrectionStatus.APPROVED]
        resulting = approved.resulting_observation
        assert resulting.value == approved.proposed_value and resulting.superseded_by_id is None
        assert resulting.health_check.review == CheckReview.ACCEPTED
        score = Score.objects.current().get(partner=approved.partner, period=approved.period)
        assert approved.period == periods[-1] and score.revision > 1
        [component] = [item for item in score.components if item["metric_key"] == approved.metric.key]
        assert Decimal(str(component["raw"])) == approved.proposed_value

        verbs = Counter(AuditEvent.objects.values_list("verb", flat=True))
        assert verbs["correction.requested"] == 3 and verbs["appeal.requested"] == 1
        assert verbs["correction.approved"] == verbs["correction.rejected"] == 1


# --- Reviews and their follow-up ---------------------------------------------------------------------


def assert_reviews_and_follow_up_are_in_place():
    tenant = northwind()
    with tenant_scope(tenant):
        assert CadenceRule.objects.values("kind").distinct().count() == len(ReviewKind.values)
        cycle = ReviewCycle.objects.get(kind=ReviewKind.QBR, period=quarters(tenant)[-1])
        assert ReviewCycle.objects.filter(kind=ReviewKind.CHECK_IN).exists()
        # A closed cycle: two check-ins held and finalized, the rest counted as not held.
        [closed] = ReviewCycle.objects.filter(status=CycleStatus.CLOSED)
        assert closed.kind == ReviewKind.CHECK_IN and closed.closed_at is not None
        assert closed.reviews.filter(state=ReviewState.FINALIZED).count() == 2
        assert cycle_memo(cycle=closed).not_held == closed.reviews.exclude(state=ReviewState.FINALIZED).count()
        reviews = Review.objects.filter(cycle=cycle).select_related("amends")
        current = reviews.current()
        assert set(current.values_list("state", flat=True)) == set(ReviewState.values)
        assert set(current.values_list("track", flat=True)) == set(ReviewTrack.values)
        assert current.filter(track=ReviewTrack.MONITORED).count() > current.filter(track=ReviewTrack.DETAILED).count()
        [amendment] = reviews.filter(revision=2)
        assert amendment.state == ReviewState.SHARED and amendment.amendment_reason
        assert amendment.amends.state == ReviewState.SHARED and amendment.amends.revision == 1
        assert not current.filter(state=ReviewState.PREPARING, pre_read_frozen_at__isnull=True).exists()
        assert current.filter(state=ReviewState.PREPARING).count() == 2
        assert not current.filter(state=ReviewState.SHARED, summary="").exists()
        for review in current.filter(state=ReviewState.IN_MEETING):
            assert CollaborationRating.objects.filter(review=review).count() == 4
            assert set(MeetingNote.objects.filter(review=review).values_list("visibility", flat=True)) == set(
                NoteVisibility.values
            )
            assert ReviewDecision.objects.filter(review=review).exists()
            assert DevelopmentCommitment.objects.filter(review=review).count() >= 2
        followed_up = DevelopmentCommitment.objects.filter(review__cycle=cycle, action_item__isnull=False)
        assert followed_up.filter(review__state=ReviewState.IN_MEETING).exists()
        voice = PartnerVoice.objects.select_related("review__partner", "submitted_by").get(review__cycle=cycle)
        assert voice.review.partner.name == SHARED_PARTNER_NAME and voice.wins and voice.asks
        assert Membership.objects.get(user=voice.submitted_by).role == Role.PARTNER_MEMBER

        today = timezone.localdate()
        actions = ActionItem.objects.all()
        assert set(actions.values_list("status", flat=True)) == set(ActionStatus.values)
        overdue = actions.overdue(today)
        assert overdue.count() >= 3 and overdue.filter(owner__memberships__partner__isnull=False).exists()
        [escalated] = actions.filter(escalated_to__isnull=False)
        assert Membership.objects.get(user=escalated.escalated_to).role == Role.EXECUTIVE
        assert actions.filter(owner__memberships__role=Role.PARTNER_MEMBER).exists()
        assert set(ActionUpdate.objects.values_list("kind", flat=True)) == {
            "comment",
            "progress",
            "status",
            "escalation",
        }
        assert ActionReminder.objects.count() == overdue.filter(owner__isnull=False).count()

        [plan] = RemediationPlan.objects.filter(status=PlanStatus.ACTIVE)
        assert plan.leader_id and plan.root_cause and plan.root_cause_analysis
        statuses = Counter(Milestone.objects.filter(plan=plan).values_list("status", flat=True))
        assert statuses == {MilestoneStatus.MET: 1, MilestoneStatus.MISSED: 1, MilestoneStatus.PENDING: 1}
        for milestone in Milestone.objects.filter(plan=plan).exclude(status=MilestoneStatus.PENDING):
            assert milestone.observed_value is not None and milestone.evaluated_at is not None
        assert Checkpoint.objects.filter(plan=plan).count() == 2
        assert RemediationPlan.objects.filter(status=PlanStatus.SUGGESTED).exists()
        assert actions.filter(plan=plan).exists()
    with tenant_scope(Tenant.objects.get(slug="contoso")):
        voice = PartnerVoice.objects.select_related("review__partner").get()
        assert voice.review.partner.name == SHARED_PARTNER_NAME
        assert Review.objects.exclude(state=ReviewState.SCHEDULED).count() == 0
