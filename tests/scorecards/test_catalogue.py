"""The default metric catalogue, and admins' changes to the catalogue."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from partnerhub.tenancy.context import tenant_scope
from partnerhub.tenancy.models import AuditEvent
from scorecards.catalogue import DEFAULT_METRIC_KEYS, DEFAULT_METRICS
from scorecards.models import Aggregation, Direction, Metric, ScorecardItem, Unit, VersionStatus
from scorecards.services.metrics import metric_create, metric_update, metrics_seed_defaults
from tests.factories import TenantFactory

EXPECTED_KEYS = {
    "pipeline_created",
    "revenue_won",
    "win_rate",
    "deals_won",
    "deals_closed",
    "deal_velocity",
    "renewal_rate",
    "time_to_first_sale",
    "certifications_completed",
    "training_completion_rate",
    "customer_satisfaction",
    "lead_response_time",
    "joint_marketing_events",
    "mdf_utilization",
    "deals_registered",
    "mqls_generated",
    "campaign_influenced_pipeline",
    "active_certified_staff",
    "qbr_attendance",
}


@pytest.fixture
def in_a(world):
    with tenant_scope(world.a.tenant):
        yield world.a


def test_a_new_tenant_starts_with_the_default_catalogue(db):
    tenant = TenantFactory()
    with tenant_scope(tenant):
        keys = set(Metric.objects.values_list("key", flat=True))
    assert keys == DEFAULT_METRIC_KEYS
    assert keys >= EXPECTED_KEYS


def test_every_default_metric_is_fully_described(db):
    tenant = TenantFactory()
    with tenant_scope(tenant):
        for metric in Metric.objects.all():
            assert metric.name and len(metric.definition) > 30, metric.key
            assert metric.data_source, metric.key
            assert metric.plausible_min is not None and metric.plausible_max is not None, metric.key
            assert metric.plausible_min < metric.plausible_max, metric.key
            metric.full_clean()


def test_win_rate_divides_deals_won_by_deals_closed(db):
    with tenant_scope(TenantFactory()):
        win_rate = Metric.objects.select_related("numerator", "denominator").get(key="win_rate")
    assert win_rate.aggregation == Aggregation.RATIO
    assert (win_rate.numerator.key, win_rate.denominator.key) == ("deals_won", "deals_closed")
    assert (win_rate.plausible_min, win_rate.plausible_max) == (Decimal("0"), Decimal("1"))


@pytest.mark.parametrize(
    "key, unit, direction",
    [
        ("deal_velocity", Unit.DAYS, Direction.LOWER_IS_BETTER),
        ("time_to_first_sale", Unit.DAYS, Direction.LOWER_IS_BETTER),
        ("lead_response_time", Unit.HOURS, Direction.LOWER_IS_BETTER),
        ("revenue_won", Unit.CURRENCY, Direction.HIGHER_IS_BETTER),
        ("renewal_rate", Unit.PERCENT, Direction.HIGHER_IS_BETTER),
        ("mdf_utilization", Unit.PERCENT, Direction.HIGHER_IS_BETTER),
    ],
)
def test_default_metrics_say_which_way_is_better(db, key, unit, direction):
    spec = next(spec for spec in DEFAULT_METRICS if spec.key == key)
    assert (spec.unit, spec.direction) == (unit, direction)


def test_seeding_again_adds_nothing_and_restores_a_missing_metric(in_a):
    before = Metric.objects.count()
    assert metrics_seed_defaults() == 0
    Metric.objects.filter(key="qbr_attendance").delete()
    assert metrics_seed_defaults() == 1
    assert Metric.objects.count() == before


def test_seeding_leaves_a_tenants_own_changes_alone(in_a):
    metric = Metric.objects.get(key="revenue_won")
    metric_update(metric=metric, by=in_a.users["admin"], name="Bookings")
    metrics_seed_defaults()
    assert Metric.objects.get(key="revenue_won").name == "Bookings"


def test_each_tenant_has_its_own_catalogue(world):
    with tenant_scope(world.a.tenant):
        metric_update(metric=Metric.objects.get(key="revenue_won"), by=world.a.users["admin"], name="Bookings")
    with tenant_scope(world.b.tenant):
        assert Metric.objects.get(key="revenue_won").name == "Revenue won"


def test_admin_adds_a_metric_and_the_audit_records_it(in_a):
    metric = metric_create(
        by=in_a.users["admin"],
        key=" Sourced_Pipeline ",
        name="Partner-sourced pipeline",
        definition="Deals the partner found itself.",
        unit=Unit.CURRENCY,
        plausible_min="0",
        plausible_max="1000000",
    )
    assert metric.key == "sourced_pipeline"
    event = AuditEvent.objects.get(verb="metric.created")
    assert event.target_id == str(metric.pk) and event.changes["key"] == [None, "sourced_pipeline"]


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"key": "revenue_won", "name": "Again", "definition": "x"}, "key"),
        ({"key": "ratio_x", "name": "R", "definition": "x", "aggregation": "ratio"}, "numerator"),
        (
            {"key": "bad_bounds", "name": "B", "definition": "x", "plausible_min": "5", "plausible_max": "1"},
            "plausible_max",
        ),
        ({"key": "not_a_number", "name": "N", "definition": "x", "plausible_min": "lots"}, "plausible_min"),
        ({"key": "no name", "name": "", "definition": "x"}, "name"),
    ],
)
def test_bad_metrics_are_refused_on_the_field_concerned(in_a, fields, field):
    with pytest.raises(ValidationError) as error:
        metric_create(by=in_a.users["admin"], **fields)
    assert field in error.value.message_dict


def test_a_ratio_names_two_different_metrics(in_a):
    won = Metric.objects.get(key="deals_won")
    with pytest.raises(ValidationError) as error:
        metric_create(
            by=in_a.users["admin"], key="self_ratio", name="S", definition="x", aggregation="ratio",
            numerator=won, denominator=won,
        )  # fmt: skip
    assert "denominator" in error.value.message_dict


def test_a_metric_key_never_changes(in_a):
    metric = Metric.objects.get(key="revenue_won")
    with pytest.raises(ValidationError) as error:
        metric_update(metric=metric, by=in_a.users["admin"], key="bookings")
    assert "key" in error.value.message_dict
    assert Metric.objects.filter(key="revenue_won").exists()


def test_what_a_metric_means_is_fixed_once_governed_rules_use_it(in_a):
    metric = in_a.extra["scorecards"].metrics["customer_satisfaction"]  # in the world's active version
    with pytest.raises(ValidationError) as error:
        metric_update(metric=metric, by=in_a.users["admin"], direction=Direction.LOWER_IS_BETTER)
    assert "direction" in error.value.message_dict
    metric.refresh_from_db()
    assert metric.direction == Direction.HIGHER_IS_BETTER
    # Words may still be improved.
    metric_update(metric=metric, by=in_a.users["admin"], definition="Average of 1-10 survey answers.")


def test_a_metric_only_in_drafts_may_still_change_meaning(in_a):
    metric = Metric.objects.get(key="renewal_rate")
    assert not ScorecardItem.objects.filter(metric=metric).exclude(version__status=VersionStatus.DRAFT).exists()
    metric_update(metric=metric, by=in_a.users["admin"], unit=Unit.RATIO, plausible_max="1")
    metric.refresh_from_db()
    assert metric.unit == Unit.RATIO


def test_an_update_that_changes_nothing_writes_no_audit_event(in_a):
    metric = Metric.objects.get(key="revenue_won")
    metric_update(metric=metric, by=in_a.users["admin"], name="Revenue won")
    assert not AuditEvent.objects.filter(verb="metric.updated").exists()
