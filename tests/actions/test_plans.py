"""Remediation plans: suggested from a period's scores (never twice), activated, followed, closed."""

from __future__ import annotations

import threading
import time

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.http import Http404
from django.utils import timezone

from actions.models import (
    CheckpointOutcome,
    PlanStatus,
    PlanTrigger,
    RemediationPlan,
    RootCause,
)
from actions.services.plans import (
    checkpoint_add,
    milestone_add,
    plan_activate,
    plan_close,
    plan_open,
    plans_suggest,
)
from actions.tasks import plans_suggest_task
from partnerhub.partners.models import PartnerStatus
from partnerhub.tenancy.context import tenant_scope
from partnerhub.tenancy.models import AuditEvent
from scorecards.models import Metric, Rating, Score
from scorecards.periods import QUARTER, period_containing
from scorecards.services.recompute import schedule_recompute
from tests.actions.conftest import days

ANALYSIS = "Their two certified engineers left in Q2; nobody could run demos, so pipeline dried up."


def q(tw, index: int) -> str:
    """The world's closed quarters: 0 the older, 1 the latest."""
    return tw.extra["scorecards"].periods[index]


def score(tw, partner_index: int, period: str) -> Score:
    return Score.objects.current().get(partner=tw.partners[partner_index], period=period)


# --- Suggestions -----------------------------------------------------------------------------------------


def test_a_partner_rated_needs_improvement_gets_a_suggested_plan_with_its_score(a):
    latest = score(a, 1, q(a, 1))
    assert latest.rating == Rating.NEEDS_IMPROVEMENT and score(a, 0, q(a, 1)).rating == Rating.EXCELLENT

    [plan] = plans_suggest(period=q(a, 1))

    assert plan.partner == a.partners[1] and plan.status == PlanStatus.SUGGESTED
    assert (plan.trigger, plan.trigger_period) == (PlanTrigger.NEEDS_IMPROVEMENT, q(a, 1))
    assert plan.trigger_detail == {
        "score_id": latest.pk,
        "version_id": latest.version_id,
        "total": "6.750",
        "rating": "needs_improvement",
        "change": "-2.250",
        "flags": [
            name for name in ("regression", "stagnation", "improving", "data_gap") if getattr(latest, f"flag_{name}")
        ],
    }
    event = AuditEvent.objects.get(verb="plan.suggested")
    assert event.actor_label == "system" and event.target_id == str(plan.pk)


def test_suggesting_twice_never_duplicates_a_plan(a):
    assert len(plans_suggest(period=q(a, 1))) == 1
    assert plans_suggest(period=q(a, 1)) == []
    assert plans_suggest(period=q(a, 0)) == []  # the older quarter: the partner already has an open plan
    assert RemediationPlan.objects.count() == 1 and AuditEvent.objects.filter(verb="plan.suggested").count() == 1


def test_a_partner_with_an_open_plan_gets_no_suggestion(a):
    manual = plan_open(partner=a.partners[1], by=a.users["partner_manager"], trigger_period=q(a, 0))
    plan_activate(
        plan=manual,
        leader=a.users["partner_manager"],
        root_cause=RootCause.CAPABILITY_GAP,
        root_cause_analysis=ANALYSIS,
        by=a.users["admin"],
    )
    assert plans_suggest(period=q(a, 1)) == []
    assert list(RemediationPlan.objects.values_list("trigger", "status")) == [(PlanTrigger.MANUAL, PlanStatus.ACTIVE)]


def test_a_regressing_partner_gets_a_plan_even_when_rated_well(a):
    Score.objects.filter(pk=score(a, 0, q(a, 1)).pk).update(flag_regression=True)  # as a recompute would flag it
    plans = plans_suggest(period=q(a, 1))
    by_partner = {plan.partner_id: plan for plan in plans}
    assert by_partner[a.partners[0].pk].trigger == PlanTrigger.REGRESSING
    assert by_partner[a.partners[0].pk].trigger_detail["flags"] == ["regression"]
    assert by_partner[a.partners[1].pk].trigger == PlanTrigger.NEEDS_IMPROVEMENT


def test_a_dismissed_suggestion_is_not_suggested_again_for_the_same_period(a):
    # The older quarter stands for the newest scored one: the latest quarter's scores are set aside.
    Score.objects.filter(period=q(a, 1)).update(is_current=False)
    Score.objects.filter(period=q(a, 0), partner=a.partners[1]).update(rating=Rating.NEEDS_IMPROVEMENT)
    [plan] = plans_suggest(period=q(a, 0))
    plan_close(plan=plan, status=PlanStatus.CANCELLED, note="Known issue, handled in the QBR.", by=a.users["admin"])
    assert plans_suggest(period=q(a, 0)) == []

    # A later period that is still bad prompts a new suggestion.
    Score.objects.filter(period=q(a, 1)).update(is_current=True)
    [again] = plans_suggest(period=q(a, 1))
    assert again.trigger_period == q(a, 1) and again.partner == a.partners[1]


def test_only_the_newest_closed_period_a_partner_was_scored_for_prompts_a_suggestion(a):
    Score.objects.filter(period=q(a, 0)).update(rating=Rating.NEEDS_IMPROVEMENT)
    assert plans_suggest(period=q(a, 0)) == []  # both partners were scored since
    assert RemediationPlan.objects.count() == 0


def test_a_period_still_running_prompts_no_suggestion(a):
    running = period_containing(timezone.localdate(), kind=QUARTER, start_month=a.tenant.fiscal_year_start_month).key
    Score.objects.filter(period=q(a, 1)).update(period=running)
    assert plans_suggest(period=running) == []
    assert RemediationPlan.objects.count() == 0


def test_a_partner_that_left_the_program_gets_no_suggestion(a):
    a.partners[1].status = PartnerStatus.TERMINATED
    a.partners[1].save(update_fields=["status"])
    assert plans_suggest(period=q(a, 1)) == []


def test_suggestions_stay_in_their_workspace(world):
    with tenant_scope(world.a.tenant):
        plans_suggest(period=q(world.a, 1))
    with tenant_scope(world.b.tenant):
        assert not RemediationPlan.objects.filter(partner=world.b.partners[1]).exists()
        [plan] = plans_suggest(period=q(world.b, 1))
        assert plan.partner == world.b.partners[1]


def test_a_finished_recompute_suggests_plans_through_the_task(a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        schedule_recompute(period=q(a, 1), reason="a test of the hook")
    [plan] = RemediationPlan.objects.all()
    assert plan.partner == a.partners[1] and plan.trigger_period == q(a, 1)
    assert plans_suggest_task.delay(tenant_id=a.tenant.pk, period=q(a, 1)).get() == []


@pytest.mark.postgres
def test_two_suggestion_runs_at_once_make_one_plan(committed_world):
    """The second run's insert waits on the first's uncommitted plan, then skips that partner."""
    world = committed_world
    first_done, release_first = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}
    period = q(world.a, 1)

    def first_run():
        try:
            with tenant_scope(world.a.tenant), transaction.atomic():
                outcome["first"] = plans_suggest(period=period)
                first_done.set()
                release_first.wait(timeout=20)
        finally:
            connection.close()

    def second_run():
        try:
            with tenant_scope(world.a.tenant):
                outcome["second"] = plans_suggest(period=period)
        except Exception as error:  # reported by the assertion below
            outcome["second"] = error
        finally:
            connection.close()

    first = threading.Thread(target=first_run)
    first.start()
    assert first_done.wait(timeout=20)
    second = threading.Thread(target=second_run)
    second.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
            if cursor.fetchone()[0]:
                break
        time.sleep(0.05)
    release_first.set()
    first.join(timeout=20)
    second.join(timeout=20)

    assert len(outcome["first"]) == 1
    assert outcome["second"] == [], outcome["second"]
    with tenant_scope(world.a.tenant):
        assert RemediationPlan.objects.count() == 1


# --- Lifecycle -----------------------------------------------------------------------------------------------


@pytest.fixture
def suggested(a) -> RemediationPlan:
    [plan] = plans_suggest(period=q(a, 1))
    return plan


def test_a_plan_is_activated_with_a_leader_a_root_cause_and_its_analysis(a, suggested):
    plan = plan_activate(
        plan=suggested,
        leader=a.users["partner_manager"],
        root_cause=RootCause.ENABLEMENT,
        root_cause_analysis=ANALYSIS,
        by=a.users["admin"],
    )
    assert plan.status == PlanStatus.ACTIVE and plan.activated_at is not None
    assert (plan.leader, plan.root_cause, plan.root_cause_analysis) == (
        a.users["partner_manager"],
        RootCause.ENABLEMENT,
        ANALYSIS,
    )
    assert AuditEvent.objects.get(verb="plan.activated").changes["status"] == ["suggested", "active"]
    with pytest.raises(ValidationError, match=r"This plan is already active."):
        plan_activate(
            plan=plan, leader=a.users["admin"], root_cause=RootCause.OTHER, root_cause_analysis="x", by=a.users["admin"]
        )


def test_a_plan_needs_a_leader_of_the_program_or_the_partner_to_be_activated(a, suggested):
    with pytest.raises(ValidationError) as refused:
        plan_activate(plan=suggested, leader=None, root_cause="", root_cause_analysis=" ", by=a.users["admin"])
    assert refused.value.message_dict == {
        "leader": ["An active plan has an accountable leader; choose one."],
        "root_cause": ["Choose the root cause the plan addresses."],
        "root_cause_analysis": ["Write the root-cause analysis: what went wrong, why."],
    }
    with pytest.raises(ValidationError) as refused:
        plan_activate(
            plan=suggested,
            leader=a.users["partner_admin"],  # a user of the other partner
            root_cause=RootCause.ENABLEMENT,
            root_cause_analysis=ANALYSIS,
            by=a.users["admin"],
        )
    assert refused.value.message_dict == {
        "leader": [f"The leader must be one of the program's people or a user of {a.partners[1].name}."]
    }
    plan_activate(
        plan=suggested,
        leader=a.users["other_partner_admin"],
        root_cause=RootCause.ENABLEMENT,
        root_cause_analysis=ANALYSIS,
        by=a.users["admin"],
    )
    suggested.refresh_from_db()
    assert suggested.leader == a.users["other_partner_admin"]


@pytest.mark.parametrize("role", ["partner_admin", "partner_member", "other_partner_admin"])
def test_partner_users_do_not_run_plans(a, suggested, role):
    with pytest.raises(PermissionDenied, match=r"Remediation plans are run by the program's people."):
        plan_activate(
            plan=suggested, leader=a.users[role], root_cause="other", root_cause_analysis="x", by=a.users[role]
        )
    with pytest.raises(PermissionDenied):
        plan_close(plan=suggested, status=PlanStatus.CANCELLED, note="x", by=a.users[role])


def test_another_workspaces_plan_is_not_found(world):
    with tenant_scope(world.b.tenant):
        [foreign] = plans_suggest(period=q(world.b, 1))
    with tenant_scope(world.a.tenant), pytest.raises(Http404, match=r"No such remediation plan."):
        plan_close(plan=foreign, status=PlanStatus.CANCELLED, note="x", by=world.a.users["admin"])


def test_only_an_active_plan_is_completed_and_a_cancelled_one_says_why(a, suggested):
    with pytest.raises(ValidationError) as refused:
        plan_close(plan=suggested, status=PlanStatus.COMPLETED, note="", by=a.users["admin"])
    assert refused.value.message_dict == {
        "status": ["Only an active plan is completed; cancel a suggestion that is not needed."]
    }
    with pytest.raises(ValidationError) as refused:
        plan_close(plan=suggested, status=PlanStatus.CANCELLED, note="", by=a.users["admin"])
    assert refused.value.message_dict == {"note": ["Say why the plan is cancelled."]}
    with pytest.raises(ValidationError) as refused:
        plan_close(plan=suggested, status=PlanStatus.ACTIVE, note="", by=a.users["admin"])
    assert refused.value.message_dict["status"] == ["A plan is closed as completed or cancelled."]

    plan_activate(
        plan=suggested,
        leader=a.users["partner_manager"],
        root_cause=RootCause.ENABLEMENT,
        root_cause_analysis=ANALYSIS,
        by=a.users["admin"],
    )
    plan = plan_close(plan=suggested, status=PlanStatus.COMPLETED, note="Back to good.", by=a.users["admin"])
    assert plan.status == PlanStatus.COMPLETED and plan.closed_at is not None and plan.closing_note == "Back to good."
    with pytest.raises(ValidationError, match=r"This plan is completed; a closed plan stays closed. Open a new one."):
        plan_close(plan=plan, status=PlanStatus.CANCELLED, note="Oops", by=a.users["admin"])
    # Closed, the partner may have a new plan.
    assert plan_open(partner=a.partners[1], by=a.users["admin"], trigger_period=q(a, 1)).is_open


def test_a_second_open_plan_is_refused_by_hand_too(a, suggested):
    with pytest.raises(ValidationError, match=f"{a.partners[1].name} already has an open remediation plan."):
        plan_open(partner=a.partners[1], by=a.users["admin"], trigger_period=q(a, 1))


# --- Milestones and checkpoints -------------------------------------------------------------------------------


def test_milestones_are_added_to_open_plans_with_a_period_a_metric_and_a_target(a, suggested):
    metric = Metric.objects.get(key="customer_satisfaction")
    milestone = milestone_add(
        plan=suggested,
        by=a.users["partner_manager"],
        title="Satisfaction back above 7",
        due_on=days(60),
        period="fy2026-q4",
        metric=metric,
        target_value="7",
    )
    assert (milestone.period, milestone.comparison, str(milestone.target_value)) == (
        "FY2026-Q4",
        "at_least",
        "7.000000",
    )
    assert milestone.status == "pending"

    with pytest.raises(ValidationError) as refused:
        milestone_add(
            plan=suggested,
            by=a.users["partner_manager"],
            title="",
            due_on="soon",
            period="next quarter",
            metric=metric,
            target_value="eleven",
            comparison="about",
        )
    errors = refused.value.message_dict
    assert errors["title"] == ["Give the milestone a title."]
    assert errors["due_on"] == ["Give the due date as a day."]
    assert errors["period"] == ["“next quarter” is not a period; write it like FY2026-Q3 or FY2026-M07."]
    assert errors["comparison"] == ["Compare with “at least” or “at most”."]
    assert errors["target_value"][0].startswith("“eleven” is not a number")


def test_checkpoints_follow_an_active_plan_and_a_worrying_one_says_why(a, suggested):
    with pytest.raises(ValidationError, match=r"Checkpoints follow an active plan; activate the plan first."):
        checkpoint_add(plan=suggested, by=a.users["admin"], held_on=days(0), outcome=CheckpointOutcome.ON_TRACK)
    plan_activate(
        plan=suggested,
        leader=a.users["partner_manager"],
        root_cause=RootCause.ENABLEMENT,
        root_cause_analysis=ANALYSIS,
        by=a.users["admin"],
    )
    with pytest.raises(ValidationError) as refused:
        checkpoint_add(plan=suggested, by=a.users["admin"], held_on=days(1), outcome=CheckpointOutcome.AT_RISK)
    assert refused.value.message_dict == {
        "held_on": ["A checkpoint is recorded once it has been held; that day is still to come."],
        "note": ["Say what puts the plan at risk or off track."],
    }
    checkpoint = checkpoint_add(
        plan=suggested,
        by=a.users["admin"],
        held_on=days(0),
        outcome=CheckpointOutcome.AT_RISK,
        note="Training slipped a month.",
    )
    assert (checkpoint.outcome, checkpoint.author) == (CheckpointOutcome.AT_RISK, a.users["admin"])
    assert AuditEvent.objects.filter(verb="plan.checkpoint_added").count() == 1


def test_the_partner_manager_is_emailed_the_suggested_plans_once(a, mailoutbox, django_capture_on_commit_callbacks):
    manager = a.users["partner_manager"]
    a.partners[1].manager = manager
    a.partners[1].save(update_fields=["manager"])

    with django_capture_on_commit_callbacks(execute=True):
        assert len(plans_suggest(period=q(a, 1))) == 1
        assert plans_suggest(period=q(a, 1)) == []  # the second run suggests, and so sends, nothing

    [email] = mailoutbox
    assert email.to == [manager.email]
    assert email.subject.endswith(f"Remediation plan suggested: {a.partners[1].name}")
    assert f"{a.partners[1].name} — rated “needs improvement”: score 6.750 (-2.250 on the period before)" in email.body


def test_a_suggestion_for_a_partner_without_a_current_manager_emails_nobody(
    a, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        assert len(plans_suggest(period=q(a, 1))) == 1  # the partner has no manager
    assert mailoutbox == []

    # A manager who has since become a partner user is not the program's to tell.
    RemediationPlan.objects.all().delete()
    a.partners[1].manager = a.users["partner_member"]
    a.partners[1].save(update_fields=["manager"])
    with django_capture_on_commit_callbacks(execute=True):
        assert len(plans_suggest(period=q(a, 1))) == 1
    assert mailoutbox == []
