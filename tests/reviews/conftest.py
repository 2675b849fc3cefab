"""The reviews tests' world: tenant a's scope, a cadence rule for everyone, cycles and scores on demand."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from partnerhub.partners.models import Partner
from reviews.models import CLOSED_STATES, Review, ReviewCycle
from reviews.services.cadences import cadence_rule_create
from reviews.services.cycles import cycle_generate
from scorecards.models import Rating, Score
from tests.factories import MembershipFactory, PartnerFactory

PERIOD = "FY2026-Q3"  # the world's latest closed quarter (scores for FY2026-Q2 and FY2026-Q3)
OPENS_ON = datetime.date(2026, 10, 1)
DUE_ON = datetime.date(2026, 10, 31)


@pytest.fixture
def a(world):
    """Tenant a, inside its scope, with one rule giving every partner a quarterly business review."""
    from partnerhub.tenancy.context import tenant_scope

    with tenant_scope(world.a.tenant):
        cadence_rule_create(kind="qbr", by=world.a.users["admin"])
        yield world.a


@pytest.fixture
def b(world):
    """Tenant b's world (its scope is opened by the test where it is needed)."""
    return world.b


def generate(tw, *, period=PERIOD, kind="qbr", capacity=8, opens_on=OPENS_ON, due_on=DUE_ON) -> ReviewCycle:
    return cycle_generate(
        kind=kind, period=period, opens_on=opens_on, due_on=due_on, capacity_per_manager=capacity, by=tw.users["admin"]
    )


def review_of(cycle: ReviewCycle, partner: Partner) -> Review:
    return Review.objects.current().get(cycle=cycle, partner=partner)


def force_state(review: Review, state: str) -> Review:
    """Put a review in ``state`` directly, for tests of what each state allows."""
    finalized_at = timezone.now() if state in CLOSED_STATES else None
    Review.objects.filter(pk=review.pk).update(state=state, finalized_at=finalized_at)
    review.refresh_from_db()
    return review


def new_manager(tw, email: str):
    return MembershipFactory(tenant=tw.tenant, role="partner_manager", user__email=email).user


def new_partner(tw, name: str, *, manager=None, **fields) -> Partner:
    return PartnerFactory(tenant=tw.tenant, name=name, manager=manager, **fields)


def add_score(
    tw,
    partner: Partner,
    *,
    total: str,
    period: str = PERIOD,
    rating: str = Rating.GOOD,
    change: str | None = None,
    regression: bool = False,
    data_gap: bool = False,
    stagnation: bool = False,
) -> Score:
    """A current score written directly (the scoring engine is tested elsewhere)."""
    Score.objects.filter(partner=partner, period=period, is_current=True).update(is_current=False)
    revision = Score.objects.filter(partner=partner, period=period).count() + 1
    return Score.objects.create(
        partner=partner,
        version=tw.extra["scorecards"].version,
        period=period,
        revision=revision,
        segment="reseller",
        total=Decimal(total),
        rating=rating,
        completeness=Decimal("1"),
        rank=1,
        percentile=Decimal("50"),
        change=None if change is None else Decimal(change),
        flag_regression=regression,
        flag_data_gap=data_gap,
        flag_stagnation=stagnation,
        fingerprint="test",
    )
