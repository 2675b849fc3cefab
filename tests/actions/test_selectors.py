"""The board, the lists and their filters, "my actions", the portal's list and plans with milestones."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from actions.models import ActionStatus, Priority, RootCause
from actions.selectors import (
    actions_board,
    actions_list,
    my_actions,
    partner_actions,
    plan_get,
    plans_with_milestones,
)
from actions.services.followup import action_transition
from actions.services.plans import milestone_add, plan_activate, plan_close, plan_open, plans_suggest
from scorecards.models import Metric
from tests.actions.conftest import backdate, days, new_action


@pytest.fixture
def mix(a):
    """Actions of both partners in every status, owned by different people."""
    manager, member, admin = a.users["partner_manager"], a.users["partner_member"], a.users["admin"]
    metric = Metric.objects.get(key="pipeline_created")
    actions = {
        "open": new_action(a, title="Open", owner=manager, root_cause=RootCause.ENABLEMENT, targets=[(metric, "1")]),
        "late": backdate(new_action(a, title="Late", owner=member, root_cause=RootCause.ENABLEMENT), due_days_ago=3),
        "moving": new_action(a, title="Moving", owner=manager, partner_index=1),
        "stuck": new_action(a, title="Stuck", owner=member),
        "done": new_action(a, title="Done", owner=manager),
        "dropped": new_action(a, title="Dropped", partner_index=1),
    }
    action_transition(action=actions["moving"], to=ActionStatus.IN_PROGRESS, by=admin)
    action_transition(action=actions["stuck"], to=ActionStatus.BLOCKED, by=admin, note="Waiting on legal.")
    action_transition(action=actions["done"], to=ActionStatus.DONE, by=admin)
    action_transition(action=actions["dropped"], to=ActionStatus.CANCELLED, by=admin, note="Duplicate.")
    return actions


def titles(actions) -> list[str]:
    return [action.title for action in actions]


def test_the_board_has_a_column_per_status(a, mix):
    board = actions_board(by=a.users["partner_manager"])
    assert list(board) == ["open", "in_progress", "blocked", "done", "cancelled"]
    assert {status: titles(column) for status, column in board.items()} == {
        "open": ["Late", "Open"],
        "in_progress": ["Moving"],
        "blocked": ["Stuck"],
        "done": ["Done"],
        "cancelled": ["Dropped"],
    }
    partner_board = actions_board(by=a.users["partner_member"])
    assert {status: titles(column) for status, column in partner_board.items()} == {
        "open": ["Late", "Open"],
        "in_progress": [],
        "blocked": ["Stuck"],
        "done": ["Done"],
        "cancelled": [],
    }


def test_the_list_filters_by_owner_partner_status_overdue_and_root_cause(a, mix):
    by = a.users["admin"]
    assert titles(actions_list(by=by, owner=a.users["partner_member"])) == ["Late", "Stuck"]
    assert titles(actions_list(by=by, partner=a.partners[1])) == ["Moving", "Dropped"]
    assert titles(actions_list(by=by, partner=a.partners[1].pk, status="cancelled")) == ["Dropped"]
    assert titles(actions_list(by=by, overdue=True)) == ["Late"]
    assert "Late" not in titles(actions_list(by=by, overdue=False))
    assert titles(actions_list(by=by, overdue=True, today=days(8))) == ["Late", "Open", "Moving", "Stuck"]
    assert titles(actions_list(by=by, root_cause=RootCause.ENABLEMENT)) == ["Late", "Open"]


def test_a_filter_that_makes_no_sense_is_named(a):
    by = a.users["admin"]
    with pytest.raises(ValidationError) as refused:
        actions_list(by=by, status="paused")
    assert refused.value.message_dict == {"status": ["“paused” is not a status of an action."]}
    with pytest.raises(ValidationError) as refused:
        actions_list(by=by, root_cause="gremlins")
    assert refused.value.message_dict == {"root_cause": ["“gremlins” is not a root cause."]}
    with pytest.raises(ValidationError) as refused:
        actions_list(by=by, owner="someone")
    assert refused.value.message_dict == {"owner": ["Filter by owner with a row or its id; “someone” is neither."]}


def test_my_actions_are_the_ones_i_own_still_to_do(a, mix):
    assert titles(my_actions(user=a.users["partner_manager"])) == ["Open", "Moving"]
    assert titles(my_actions(user=a.users["partner_manager"], include_finished=True)) == ["Open", "Moving", "Done"]
    assert titles(my_actions(user=a.users["partner_member"])) == ["Late", "Stuck"]


def test_a_partner_users_list_is_their_partners_only(a, mix):
    assert titles(partner_actions(by=a.users["partner_admin"])) == ["Late", "Open", "Stuck", "Done"]
    assert titles(partner_actions(by=a.users["other_partner_admin"], include_finished=False)) == ["Moving"]


def many_actions(tw, count: int) -> None:
    metric = Metric.objects.get(key="pipeline_created")
    owners = [tw.users["partner_manager"], tw.users["partner_member"], tw.users["admin"]]
    for n in range(count):
        new_action(
            tw,
            title=f"Action {count}-{n}",
            owner=owners[n % 3],
            priority=Priority.HIGH,
            targets=[(metric, str(n + 1))],
            due_on=days(n % 5),
        )


def read_everything(actions) -> None:
    """What a row shows: partner, owner, plan, sponsor and targets with their metrics."""
    for action in actions:
        _ = (action.partner.name, action.owner and action.owner.email, action.plan, action.escalated_to)
        _ = [(target.metric.name, target.target_value) for target in action.targets.all()]


@pytest.mark.parametrize(
    "read",
    [
        lambda tw: read_everything(actions_list(by=tw.users["admin"], overdue=False)),
        lambda tw: [read_everything(column) for column in actions_board(by=tw.users["partner_manager"]).values()],
        lambda tw: read_everything(my_actions(user=tw.users["partner_manager"])),
        lambda tw: read_everything(partner_actions(by=tw.users["partner_member"])),
    ],
    ids=["list", "board", "mine", "partner"],
)
def test_lists_take_as_many_queries_for_thirty_actions_as_for_three(a, read):
    many_actions(a, 3)
    with CaptureQueriesContext(connection) as few:
        read(a)
    many_actions(a, 27)
    with CaptureQueriesContext(connection) as many:
        read(a)
    assert len(many) == len(few) <= 4, [query["sql"][:100] for query in many.captured_queries]


def open_plans(tw, count: int) -> None:
    from tests.factories import PartnerFactory

    metric = Metric.objects.get(key="deals_won")
    for n in range(count):
        plan = plan_open(
            partner=PartnerFactory(name=f"Plan partner {count}-{n}"), by=tw.users["admin"], trigger_period="FY2026-Q3"
        )
        for m in range(2):
            milestone_add(
                plan=plan,
                by=tw.users["admin"],
                title=f"Milestone {m}",
                due_on=days(30 + m),
                period="FY2026-Q4",
                metric=metric,
                target_value=m + 1,
            )


def test_plans_with_milestones_take_as_many_queries_for_thirty_plans_as_for_three(a):
    def read():
        for plan in plans_with_milestones(by=a.users["executive"], status="open"):
            _ = (plan.partner.name, plan.leader, [(m.metric.name, m.target_value) for m in plan.milestones.all()])
            _ = list(plan.checkpoints.all())

    open_plans(a, 3)
    with CaptureQueriesContext(connection) as few:
        read()
    open_plans(a, 27)
    with CaptureQueriesContext(connection) as many:
        read()
    assert len(many) == len(few) <= 4


def test_partner_users_see_their_own_active_and_completed_plans_only(a):
    [suggested] = plans_suggest(period=a.extra["scorecards"].periods[1])  # of partner 2
    assert list(plans_with_milestones(by=a.users["other_partner_admin"])) == []  # a suggestion is internal
    plan_activate(
        plan=suggested,
        leader=a.users["partner_manager"],
        root_cause=RootCause.ENABLEMENT,
        root_cause_analysis="No demo staff.",
        by=a.users["admin"],
    )
    assert list(plans_with_milestones(by=a.users["other_partner_admin"])) == [suggested]
    assert plan_get(pk=suggested.pk, by=a.users["other_partner_admin"]) == suggested
    assert list(plans_with_milestones(by=a.users["partner_admin"])) == []  # another partner's plan
    plan_close(plan=suggested, status="completed", note="", by=a.users["admin"])
    assert list(plans_with_milestones(by=a.users["other_partner_admin"], status="completed")) == [suggested]
    assert list(plans_with_milestones(by=a.users["admin"], partner=a.partners[1])) == [suggested]
    with pytest.raises(ValidationError):
        plans_with_milestones(by=a.users["admin"], status="paused")
