"""A small, complete two-tenant world for isolation tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.utils import timezone

from partnerhub.integrations.source_models import DataSource, Deal, SourceKind, SyncRun, SyncStatus
from partnerhub.partners.models import Partner
from partnerhub.tenancy.context import tenant_scope
from partnerhub.tenancy.models import ApiKey, Membership, Tenant, User
from partnerhub.tenancy.roles import Role
from partnerhub.tenancy.services import api_key_create
from scorecards.models import CorrectionKind, CorrectionRequest, MetricObservation
from tests.factories import MembershipFactory, PartnerFactory, TenantFactory
from tests.scorecards.scoring_setup import score_scorecard_world
from tests.scorecards.world_data import build_scorecard_world

PASSWORD = "correct-horse-battery-staple"


@dataclass
class TenantWorld:
    tenant: Tenant
    partners: list[Partner]
    users: dict[str, User]  # by role name; partner roles are of partners[0], "other_partner_admin" of partners[1]
    memberships: dict[str, Membership]
    read_key: tuple[ApiKey, str]
    write_key: tuple[ApiKey, str]
    extra: dict = field(default_factory=dict)


@dataclass
class World:
    a: TenantWorld
    b: TenantWorld


def build_tenant_world(slug: str, *, source_facts: bool = False) -> TenantWorld:
    tenant = TenantFactory(slug=slug, name=slug.title())
    with tenant_scope(tenant):
        partners = [PartnerFactory(tenant=tenant, name=f"{slug.title()} Partner {n}") for n in (1, 2)]
        memberships = {}
        for role in (Role.ADMIN, Role.PARTNER_MANAGER, Role.EXECUTIVE):
            memberships[role.value] = MembershipFactory(tenant=tenant, role=role, user__email=f"{role}@{slug}.test")
        for role in (Role.PARTNER_ADMIN, Role.PARTNER_MEMBER):
            memberships[role.value] = MembershipFactory(
                tenant=tenant, role=role, partner=partners[0], user__email=f"{role}@{slug}.test"
            )
        memberships["other_partner_admin"] = MembershipFactory(
            tenant=tenant, role=Role.PARTNER_ADMIN, partner=partners[1], user__email=f"p2admin@{slug}.test"
        )
        admin = memberships["admin"].user
        read_key = api_key_create(name="read", access="read_only", by=admin)
        write_key = api_key_create(name="write", access="read_write", by=admin)
    scorecards = build_scorecard_world(tenant=tenant, partners=partners, admin=admin)
    score_scorecard_world(tenant=tenant, scorecards=scorecards)
    extra = {"scorecards": scorecards, "correction_request": add_correction_request(tenant, memberships)}
    if source_facts:
        extra.update(add_source_facts(tenant=tenant, partner=partners[1]))
        extra.update(add_review_and_action_rows(tenant=tenant, partner=partners[0]))
    return TenantWorld(
        tenant=tenant,
        partners=partners,
        users={name: m.user for name, m in memberships.items()},
        memberships=memberships,
        read_key=read_key,
        write_key=write_key,
        extra=extra,
    )


def add_correction_request(tenant: Tenant, memberships: dict[str, Membership]) -> CorrectionRequest:
    """An open correction request of the second partner, for its latest satisfaction value (no audit, no email)."""
    requester = memberships["other_partner_admin"]
    with tenant_scope(tenant):
        observation = (
            MetricObservation.objects.current()
            .filter(partner=requester.partner, metric__key="customer_satisfaction")
            .latest("period")
        )
        return CorrectionRequest.objects.create(
            partner=requester.partner,
            kind=CorrectionKind.CORRECTION,
            observation=observation,
            metric=observation.metric,
            period=observation.period,
            value_at_request=observation.value,
            proposed_value=observation.value + 1,
            reason="The survey closed after the export.",
            requested_by=requester.user,
        )


def add_source_facts(*, tenant: Tenant, partner: Partner) -> dict:
    """An API-push source with one deal, and a CRM source (synced by hand only) with one finished run."""
    now = timezone.now()
    with tenant_scope(tenant):
        push = DataSource.objects.create(name="API push", kind=SourceKind.API, schedule_minutes=0)
        deal = Deal.objects.create(
            source=push,
            external_id="W-1",
            partner=partner,
            name="World deal",
            amount=Decimal("1000.00"),
            currency="USD",
            stage="Proposal",
            created_on=date(2026, 7, 1),
            modified_at=now,
        )
        crm = DataSource.objects.create(
            name="CRM", kind=SourceKind.HUBSPOT, schedule_minutes=0, synced_until=now, last_success_at=now
        )
        run = SyncRun.objects.create(
            source=crm, status=SyncStatus.SUCCEEDED, trigger="manual", started_at=now, finished_at=now, until=now
        )
    return {"api_source": push, "deal": deal, "crm_source": crm, "sync_run": run}


def add_review_and_action_rows(*, tenant: Tenant, partner: Partner) -> dict:
    """A cadence rule, a cycle with one review, an action and a suggested plan: rows for isolation tests."""
    from actions.models import ActionItem, PlanTrigger, RemediationPlan
    from reviews.models import CadenceRule, Review, ReviewCycle

    with tenant_scope(tenant):
        rule = CadenceRule.objects.create(kind="qbr")
        cycle = ReviewCycle.objects.create(
            name="FY2026-Q3 business reviews",
            kind="qbr",
            period="FY2026-Q3",
            opens_on=date(2026, 10, 1),
            due_on=date(2026, 10, 31),
        )
        review = Review.objects.create(
            cycle=cycle, partner=partner, kind="qbr", period="FY2026-Q3", due_on=cycle.due_on
        )
        action = ActionItem.objects.create(partner=partner, title="World action", due_on=date(2026, 12, 1))
        plan = RemediationPlan.objects.create(partner=partner, trigger=PlanTrigger.MANUAL, trigger_period="FY2026-Q3")
    return {"cadence_rule": rule, "review_cycle": cycle, "review": review, "action_item": action, "plan": plan}


def build_world() -> World:
    # Only the other tenant holds source facts: every endpoint then has a foreign row to hide, and
    # tenant a's sources, deals and runs start empty for the tests that count them.
    return World(a=build_tenant_world("acme"), b=build_tenant_world("globex", source_facts=True))
