"""Milestones judged against the values observed: met or missed exactly, again after a correction."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from actions.models import Milestone, MilestoneStatus, PlanStatus, RootCause
from actions.services.milestones import milestones_evaluate
from actions.services.plans import milestone_add, plan_activate, plan_close, plan_open, plans_suggest
from actions.tasks import milestones_evaluate_task
from partnerhub.tenancy.models import AuditEvent
from scorecards.models import CheckReview, Metric, MetricObservation, ObservationCheck
from scorecards.periods import QUARTER, period_containing
from scorecards.services.health import check_review
from scorecards.services.observations import observation_record
from scorecards.services.recompute import schedule_recompute
from tests.actions.conftest import days
from tests.factories import PartnerFactory


def q(tw, index: int) -> str:
    return tw.extra["scorecards"].periods[index]


def metric(key: str) -> Metric:
    return Metric.objects.get(key=key)


def record(tw, partner, key: str, period: str, value) -> MetricObservation:
    """A value entered by one of the program's people, through the observation service."""
    observation, _ = observation_record(
        partner=partner, metric=metric(key), period=period, value=value, by=tw.users["partner_manager"]
    )
    return observation


@pytest.fixture
def plan(a):
    [plan] = plans_suggest(period=q(a, 1))
    return plan_activate(
        plan=plan,
        leader=a.users["partner_manager"],
        root_cause=RootCause.ENABLEMENT,
        root_cause_analysis="Nobody left who can demo the product.",
        by=a.users["admin"],
    )


def add(tw, plan, key: str, period: str, target, comparison="at_least", title=None) -> Milestone:
    return milestone_add(
        plan=plan,
        by=tw.users["partner_manager"],
        title=title or f"{key} {comparison} {target} in {period}",
        due_on=days(30),
        period=period,
        metric=metric(key),
        target_value=target,
        comparison=comparison,
    )


def statuses(*milestones: Milestone) -> list[tuple[str, Decimal | None]]:
    found = {m.pk: m for m in Milestone.objects.filter(pk__in=[m.pk for m in milestones])}
    return [(found[m.pk].status, found[m.pk].observed_value) for m in milestones]


def test_milestones_are_met_or_missed_exactly_against_the_observed_values(a, plan):
    partner = a.partners[1]  # the world holds its values; one more is recorded here through the service
    record(a, partner, "deals_won", q(a, 1), "12")
    milestones = [
        add(a, plan, "customer_satisfaction", q(a, 1), "6", "at_least"),  # observed 5.9: missed
        add(a, plan, "customer_satisfaction", q(a, 1), "5.9", "at_least"),  # exactly at the target: met
        add(a, plan, "training_completion_rate", q(a, 1), "35", "at_most"),  # 35 at most 35: met
        add(a, plan, "training_completion_rate", q(a, 1), "34.999999", "at_most"),  # missed by a millionth
        add(a, plan, "pipeline_created", q(a, 0), "90000.000001", "at_least"),  # 90000: missed
        add(a, plan, "deals_won", q(a, 1), "12", "at_least"),  # recorded above: met
        add(a, plan, "deals_closed", q(a, 1), "1", "at_least"),  # nothing observed: stays pending
    ]

    result = milestones_evaluate(period=q(a, 1))

    assert statuses(*milestones) == [
        (MilestoneStatus.MISSED, Decimal("5.9")),
        (MilestoneStatus.MET, Decimal("5.9")),
        (MilestoneStatus.MET, Decimal("35")),
        (MilestoneStatus.MISSED, Decimal("35")),
        (MilestoneStatus.MISSED, Decimal("90000")),
        (MilestoneStatus.MET, Decimal("12")),
        (MilestoneStatus.PENDING, None),
    ]
    assert (result.met, result.missed, result.pending_again) == (3, 3, 0)
    judged = Milestone.objects.get(pk=milestones[0].pk)
    assert judged.evaluated_at is not None
    event = AuditEvent.objects.filter(verb="plan.milestone_evaluated", target_id=str(plan.pk)).first()
    assert event.actor_label == "system"
    assert AuditEvent.objects.filter(verb="plan.milestone_evaluated").count() == 6


def test_evaluating_again_changes_nothing(a, plan):
    milestone = add(a, plan, "customer_satisfaction", q(a, 1), "6")
    milestones_evaluate(period=q(a, 1))
    evaluated_at = Milestone.objects.get(pk=milestone.pk).evaluated_at
    events = AuditEvent.objects.count()

    result = milestones_evaluate(period=q(a, 1))

    assert result.changed == 0 and AuditEvent.objects.count() == events
    assert Milestone.objects.get(pk=milestone.pk).evaluated_at == evaluated_at


def test_a_corrected_value_turns_a_missed_milestone_met_when_evaluated_again(a, plan):
    milestone = add(a, plan, "customer_satisfaction", q(a, 1), "6")
    milestones_evaluate(period=q(a, 1))
    assert statuses(milestone) == [(MilestoneStatus.MISSED, Decimal("5.9"))]

    record(a, a.partners[1], "customer_satisfaction", q(a, 1), "6.4")  # supersedes 5.9
    result = milestones_evaluate(period=q(a, 1))

    assert statuses(milestone) == [(MilestoneStatus.MET, Decimal("6.4"))]
    assert (result.met, result.missed) == (1, 0)
    event = AuditEvent.objects.filter(verb="plan.milestone_evaluated").latest("pk")
    assert event.changes["observed"] == ["5.9", "6.4"] and event.changes["status"] == ["missed", "met"]


def test_a_rejected_value_puts_the_milestone_back_to_pending(a, plan):
    milestone = add(a, plan, "deals_won", q(a, 1), "10")
    observation = record(a, a.partners[1], "deals_won", q(a, 1), "12")
    milestones_evaluate(period=q(a, 1))
    assert statuses(milestone) == [(MilestoneStatus.MET, Decimal("12"))]
    # The data-health check finds it suspect (as its job would) and a manager rejects it.
    check = ObservationCheck.objects.create(
        observation=observation, partner=observation.partner, metric=observation.metric, period=q(a, 1), suspect=True
    )
    check_review(check=check, accept=False, note="Double-counted deals.", by=a.users["partner_manager"])
    assert ObservationCheck.objects.get(pk=check.pk).review == CheckReview.REJECTED

    result = milestones_evaluate(period=q(a, 1))

    assert statuses(milestone) == [(MilestoneStatus.PENDING, None)]
    assert result.pending_again == 1 and Milestone.objects.get(pk=milestone.pk).evaluated_at is None


def test_only_this_period_or_earlier_ones_that_have_ended_are_judged(a, plan):
    current = period_containing(timezone.localdate(), kind=QUARTER, start_month=a.tenant.fiscal_year_start_month).key
    record(a, a.partners[1], "deals_won", current, "3")  # a partial quarter: too early to judge
    older = add(a, plan, "customer_satisfaction", q(a, 0), "6")
    latest = add(a, plan, "customer_satisfaction", q(a, 1), "6")
    running = add(a, plan, "deals_won", current, "1")

    milestones_evaluate(period=q(a, 0))
    assert statuses(older, latest) == [(MilestoneStatus.MET, Decimal("6.2")), (MilestoneStatus.PENDING, None)]

    milestones_evaluate(period=current)
    assert statuses(latest, running) == [(MilestoneStatus.MISSED, Decimal("5.9")), (MilestoneStatus.PENDING, None)]


def test_a_closed_plans_milestones_keep_their_last_judgement(a, plan):
    milestone = add(a, plan, "customer_satisfaction", q(a, 1), "6")
    milestones_evaluate(period=q(a, 1))
    plan_close(plan=plan, status=PlanStatus.COMPLETED, note="Handled.", by=a.users["admin"])
    record(a, a.partners[1], "customer_satisfaction", q(a, 1), "7.5")

    assert milestones_evaluate(period=q(a, 1)).changed == 0
    assert statuses(milestone) == [(MilestoneStatus.MISSED, Decimal("5.9"))]


def test_a_finished_recompute_evaluates_milestones_through_the_task(a, plan, django_capture_on_commit_callbacks):
    milestone = add(a, plan, "customer_satisfaction", q(a, 1), "5")
    with django_capture_on_commit_callbacks(execute=True):
        schedule_recompute(period=q(a, 1), reason="a test of the hook")
    assert statuses(milestone) == [(MilestoneStatus.MET, Decimal("5.9"))]
    assert milestones_evaluate_task.delay(tenant_id=a.tenant.pk, period=q(a, 1)).get() == {
        "met": 0,
        "missed": 0,
        "pending_again": 0,
    }


def plans_with_milestones(tw, count: int) -> None:
    """``count`` partners, each with an open plan and a milestone judged on a value recorded for it."""
    for n in range(count):
        partner = PartnerFactory(name=f"Struggling {count}-{n:02d}")
        record(tw, partner, "deals_won", q(tw, 1), n)
        plan = plan_open(partner=partner, by=tw.users["admin"], trigger_period=q(tw, 1))
        add(tw, plan, "deals_won", q(tw, 1), "10", title=f"Ten deals ({n})")


def test_evaluating_takes_as_many_queries_for_thirty_milestones_as_for_three(a):
    plans_with_milestones(a, 3)
    with CaptureQueriesContext(connection) as few:
        assert milestones_evaluate(period=q(a, 1)).changed == 3
    Milestone.objects.update(status=MilestoneStatus.PENDING, observed_value=None, evaluated_at=None)
    plans_with_milestones(a, 27)
    with CaptureQueriesContext(connection) as many:
        assert milestones_evaluate(period=q(a, 1)).changed == 30

    assert len(many) == len(few) <= 8, [query["sql"][:120] for query in many]
