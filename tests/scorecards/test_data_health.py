"""Data health in the database: checks written once, the tenant's policy, and reviews that rescore."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from partnerhub.tenancy.context import tenant_scope
from scorecards import selectors
from scorecards.models import (
    CheckReview,
    Metric,
    MetricObservation,
    ObservationCheck,
    ObservationSource,
    RecomputeRun,
    Score,
)
from scorecards.services.health import check_observations, check_review, counted_observations, suspects
from scorecards.services.observations import observation_record
from scorecards.services.recompute import recompute_partner, run_recompute
from tests.scorecards.world_data import world_periods

METRIC = "customer_satisfaction"


@pytest.fixture
def setting(world):
    """Partner 1 of tenant a with a steady satisfaction history, then a wild value in the last period."""
    tenant = world.a.tenant
    with tenant_scope(tenant):
        partner = world.a.partners[0]
        admin = world.a.users["admin"]
        metric = Metric.objects.get(key=METRIC)
        earlier, last = world_periods(tenant)
        history = selectors.previous_periods(earlier, 3)
        for period, value in zip(history, ("8.0", "8.2", "8.3"), strict=True):
            observation_record(partner=partner, metric=metric, period=period, value=value, by=admin)
        wild, _ = observation_record(partner=partner, metric=metric, period=last, value="1", by=admin)
        yield {"tenant": tenant, "partner": partner, "metric": metric, "period": last, "wild": wild, "world": world}


def counted_keys(partner, period):
    version = Score.objects.current().filter(partner=partner, period=period).first().version
    inputs = selectors.scoring_inputs(version=version, period=period, partner_ids=[partner.pk])
    return set(inputs.observations["metric_key"])


def test_each_current_observation_is_checked_once(setting):
    period = setting["period"]
    current = MetricObservation.objects.current().filter(period=period).count()

    assert check_observations(period=period) == current
    assert ObservationCheck.objects.filter(period=period).count() == current
    assert check_observations(period=period) == 0


def test_a_wild_value_is_suspect_with_its_reasons(setting):
    check_observations(period=setting["period"])
    check = ObservationCheck.objects.get(observation=setting["wild"])
    assert check.suspect
    assert check.history_z < -3.5
    assert check.reasons[0].startswith("Customer satisfaction is far below this partner's own history")
    steady = ObservationCheck.objects.filter(period=setting["period"]).exclude(observation=setting["wild"])
    assert not steady.filter(suspect=True).exists()
    assert list(suspects(period=setting["period"])) == [check]


def test_the_policy_decides_whether_an_unreviewed_suspect_counts(setting):
    tenant, partner, period = setting["tenant"], setting["partner"], setting["period"]
    check_observations(period=period)
    assert METRIC in counted_keys(partner, period)

    tenant.suspect_values_count = False
    tenant.save()
    assert METRIC not in counted_keys(partner, period)
    assert not counted_observations(MetricObservation.objects.filter(pk=setting["wild"].pk)).exists()


def test_an_accepted_value_counts_and_a_rejected_one_never(setting, django_capture_on_commit_callbacks):
    tenant, partner, period = setting["tenant"], setting["partner"], setting["period"]
    manager = setting["world"].a.users["partner_manager"]
    check_observations(period=period)
    check = ObservationCheck.objects.get(observation=setting["wild"])

    tenant.suspect_values_count = False
    tenant.save()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        check_review(check=check, accept=True, by=manager)
    assert len(callbacks) == 1
    assert METRIC in counted_keys(partner, period)
    # The recompute the review queued has scored the accepted value (1 is below the rubric's floor).
    score = Score.objects.current().get(partner=partner, period=period)
    component = next(c for c in score.components if c["metric_key"] == METRIC)
    assert Decimal(str(component["points"])) == 0

    tenant.suspect_values_count = True
    tenant.save()
    check.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        check_review(check=check, accept=False, note="Survey export cut off; the real figure follows.", by=manager)
    assert METRIC not in counted_keys(partner, period)


def test_rejecting_needs_a_reason_and_only_managers_review(setting):
    check_observations(period=setting["period"])
    check = ObservationCheck.objects.get(observation=setting["wild"])
    users = setting["world"].a.users
    with pytest.raises(ValidationError, match="Say why"):
        check_review(check=check, accept=False, note=" ", by=users["admin"])
    for role in ("executive", "partner_admin", "partner_member"):
        with pytest.raises(PermissionDenied):
            check_review(check=check, accept=True, by=users[role])
    check.refresh_from_db()
    assert check.review == CheckReview.UNREVIEWED


def test_a_replaced_value_is_not_reviewed(setting):
    check_observations(period=setting["period"])
    check = ObservationCheck.objects.get(observation=setting["wild"])
    observation_record(
        partner=setting["partner"],
        metric=setting["metric"],
        period=setting["period"],
        value="8.5",
        by=setting["world"].a.users["admin"],
    )
    with pytest.raises(ValidationError, match="newer value"):
        check_review(check=check, accept=True, by=setting["world"].a.users["partner_manager"])
    assert suspects(period=setting["period"]).count() == 0


def test_an_approved_correction_is_a_reviewed_value(setting):
    tenant, partner, period = setting["tenant"], setting["partner"], setting["period"]
    tenant.suspect_values_count = False
    tenant.save()
    corrected, _ = observation_record(
        partner=partner,
        metric=setting["metric"],
        period=period,
        value="1.5",
        source=ObservationSource.CORRECTION,
        source_ref="correction:1",
        by=setting["world"].a.users["partner_manager"],
    )
    check_observations(period=period)
    check = ObservationCheck.objects.get(observation=corrected)
    assert check.suspect and check.review == CheckReview.ACCEPTED
    assert METRIC in counted_keys(partner, period)


def test_the_period_recompute_checks_first_and_the_one_partner_path_leaves_it_to_it(setting):
    partner, period = setting["partner"], setting["period"]
    recompute_partner(partner=partner, period=period)
    assert not ObservationCheck.objects.exists()

    version = Score.objects.current().filter(partner=partner, period=period).first().version
    run = RecomputeRun.objects.create(version=version, period=period, reason="test")
    run_recompute(run_id=run.pk)
    assert ObservationCheck.objects.filter(observation=setting["wild"], suspect=True).exists()
    assert (
        ObservationCheck.objects.filter(period=period).count()
        == MetricObservation.objects.current().filter(period=period).count()
    )


def test_checks_stay_inside_their_tenant(setting):
    check_observations(period=setting["period"])
    other = setting["world"].b.tenant
    with tenant_scope(other):
        assert ObservationCheck.objects.count() == 0
        assert (
            check_observations(period=setting["period"])
            == MetricObservation.objects.current().filter(period=setting["period"]).count()
        )
