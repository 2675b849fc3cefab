"""Stored facts to observations: every source counts, touched periods without facts read zero."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from partnerhub.integrations.facts import record_deal_observations, record_marketing_observations
from partnerhub.integrations.source_models import DataSource, Deal, MarketingFact, SourceKind
from partnerhub.tenancy.context import tenant_scope
from scorecards.models import MetricObservation, ObservationSource

D = datetime.date


@pytest.fixture
def tenant_a(world):
    with tenant_scope(world.a.tenant):
        yield world.a


def value(partner, key, period):
    row = MetricObservation.objects.current().filter(partner=partner, metric__key=key, period=period).first()
    return None if row is None else row.value


def deal(source, partner, external_id, amount, *, created, closed=None, won=False, deleted=False):
    return Deal.objects.create(
        source=source,
        external_id=external_id,
        partner=partner,
        amount=Decimal(amount),
        currency="USD",
        closed=closed is not None,
        won=won,
        created_on=created,
        close_date=closed,
        modified_at=timezone.now(),
        deleted_at=timezone.now() if deleted else None,
    )


def test_deals_of_every_source_count_for_the_partner(tenant_a):
    partner = tenant_a.partners[0]
    crm = DataSource.objects.create(name="CRM", kind=SourceKind.HUBSPOT)
    pushed = DataSource.objects.create(name="API push", kind=SourceKind.API)
    deal(crm, partner, "a", "100", created=D(2026, 7, 1), closed=D(2026, 7, 20), won=True)
    deal(pushed, partner, "b", "50", created=D(2026, 7, 2), closed=D(2026, 8, 1), won=True)
    deal(pushed, partner, "c", "999", created=D(2026, 7, 3), closed=D(2026, 8, 1), won=True, deleted=True)

    added = record_deal_observations(
        partner_ids={partner.pk}, days={D(2026, 7, 1)}, currency="USD", source_ref="test:1"
    )

    assert added >= 6
    assert value(partner, "revenue_won", "FY2026-Q3") == Decimal("150.00")
    assert value(partner, "deals_won", "FY2026-Q3") == 2
    row = MetricObservation.objects.current().get(partner=partner, metric__key="deals_won", period="FY2026-Q3")
    assert row.source == ObservationSource.DERIVED and row.source_ref == "test:1"
    again = record_deal_observations(
        partner_ids={partner.pk}, days={D(2026, 7, 1)}, currency="USD", source_ref="test:2"
    )
    assert again == 0


def test_a_touched_period_with_no_deal_left_reads_zero(tenant_a):
    partner = tenant_a.partners[0]
    crm = DataSource.objects.create(name="CRM", kind=SourceKind.HUBSPOT)
    only = deal(crm, partner, "a", "100", created=D(2026, 7, 1), closed=D(2026, 7, 20), won=True)
    record_deal_observations(partner_ids={partner.pk}, days={D(2026, 7, 1)}, currency="USD", source_ref="t:1")
    only.deleted_at = timezone.now()
    only.save()

    record_deal_observations(partner_ids={partner.pk}, days={D(2026, 7, 1)}, currency="USD", source_ref="t:2")

    assert value(partner, "revenue_won", "FY2026-Q3") == 0
    assert value(partner, "deals_registered", "FY2026-Q3") == 0


def test_marketing_facts_become_marketing_metrics(tenant_a):
    first, second = tenant_a.partners
    source = DataSource.objects.create(name="Marketing file", kind=SourceKind.FILE)
    for number, day in enumerate([D(2026, 7, 1), D(2026, 7, 2), D(2026, 8, 30)]):
        MarketingFact.objects.create(
            source=source, external_id=f"m{number}", partner=first, kind="mql", occurred_on=day
        )
    MarketingFact.objects.create(
        source=source,
        external_id="p1",
        partner=first,
        kind="campaign_pipeline",
        occurred_on=D(2026, 9, 1),
        quantity=Decimal("2500.50"),
        currency="USD",
    )
    MarketingFact.objects.create(
        source=source, external_id="e1", partner=second, kind="event_attended", occurred_on=D(2026, 9, 2)
    )

    record_marketing_observations(
        partner_ids={first.pk, second.pk}, days={D(2026, 7, 1)}, currency="USD", source_ref="upload:1"
    )

    assert value(first, "mqls_generated", "FY2026-Q3") == 3
    assert value(first, "campaign_influenced_pipeline", "FY2026-Q3") == Decimal("2500.50")
    assert value(first, "joint_marketing_events", "FY2026-Q3") == 0
    assert value(second, "joint_marketing_events", "FY2026-Q3") == 1
    assert value(second, "mqls_generated", "FY2026-Q3") == 0


def test_nothing_touched_records_nothing(tenant_a):
    assert record_deal_observations(partner_ids=set(), days={D(2026, 7, 1)}, currency="USD", source_ref="x") == 0
    assert record_marketing_observations(partner_ids={1}, days=set(), currency="USD", source_ref="x") == 0
