"""The cycle memo: reviews completed, ratings against the previous cycle, plans, improvements, overdue actions."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from actions.models import ActionItem, ActionStatus, PlanStatus, PlanTrigger, RemediationPlan
from partnerhub.partners.models import PartnerStatus
from reviews.selectors import cycle_memo, cycle_memo_csv
from reviews.services.cycles import cycle_close
from reviews.services.lifecycle import review_transition
from tests.reviews.conftest import add_score, generate, new_partner, review_of

TODAY = datetime.date(2026, 10, 15)
UTC = datetime.UTC


def at(day: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(day).replace(hour=12, tzinfo=UTC)


def plan(partner, *, opened: str, status=PlanStatus.SUGGESTED, closed: str | None = None):
    return RemediationPlan.objects.create(
        partner=partner,
        status=status,
        trigger=PlanTrigger.MANUAL,
        trigger_period="FY2026-Q3",
        opened_at=at(opened),
        closed_at=at(closed) if closed else None,
    )


def action(partner, title, *, due_on: str, status=ActionStatus.OPEN):
    return ActionItem.objects.create(
        partner=partner,
        title=title,
        due_on=datetime.date.fromisoformat(due_on),
        status=status,
        completed_at=timezone.now() if status == ActionStatus.DONE else None,
    )


@pytest.fixture
def memo_world(a):
    """Two quarters of reviews of four partners, with plans and actions in and out of the Q3 cycle's window."""
    manager = a.users["partner_manager"]
    acme1, acme2 = a.partners
    newcomer = new_partner(a, "Newcomer")  # never scored
    riser = new_partner(a, "=Riser")  # a name a spreadsheet would run
    add_score(a, riser, total="70", change="20")
    previous = generate(a, period="FY2026-Q2", opens_on=datetime.date(2026, 7, 1), due_on=datetime.date(2026, 7, 31))
    cycle = generate(a, capacity=2)
    outsider = new_partner(a, "Outsider", status=PartnerStatus.SUSPENDED)

    for state in ("preparing", "in_meeting", "finalized"):
        review_transition(review=review_of(cycle, acme1), to=state, by=manager)
    for state in ("preparing", "in_meeting", "finalized", "shared"):
        review_transition(review=review_of(cycle, acme2), to=state, by=manager)

    plan(acme2, opened="2026-10-05")
    plan(acme2, opened="2026-10-02", status=PlanStatus.CANCELLED, closed="2026-10-03")
    plan(acme1, opened="2026-08-01", status=PlanStatus.COMPLETED, closed="2026-10-10")
    plan(newcomer, opened="2026-09-15")  # before the window
    plan(outsider, opened="2026-10-06")  # not in the cycle

    action(acme2, "Rebuild the pipeline", due_on="2026-10-01")
    action(riser, "Send the forecast", due_on="2026-10-14", status=ActionStatus.IN_PROGRESS)
    action(acme1, "Done late", due_on="2026-09-01", status=ActionStatus.DONE)
    action(acme1, "Dropped", due_on="2026-09-01", status=ActionStatus.CANCELLED)
    action(newcomer, "Due today", due_on="2026-10-15")
    action(outsider, "Outside the cycle", due_on="2026-09-01")
    return cycle, previous


def test_the_memo_counts_what_the_cycle_produced(a, memo_world):
    cycle, previous = memo_world

    memo = cycle_memo(cycle=cycle, today=TODAY)

    assert memo.previous_cycle == previous
    assert (memo.reviews, memo.completed, memo.detailed, memo.monitored) == (4, 2, 2, 2)
    assert memo.states == {"scheduled": 2, "preparing": 0, "in_meeting": 0, "finalized": 1, "shared": 1}
    assert [(r.rating, r.label, r.count, r.previous, r.change) for r in memo.ratings] == [
        ("excellent", "Excellent", 1, 0, 1),
        ("good", "Good", 1, 1, 0),
        ("needs_improvement", "Needs improvement", 1, 1, 0),
        ("incomplete", "Incomplete data", 0, 0, 0),
        ("none", "No score", 1, 2, -1),
    ]
    assert (memo.plans_opened, memo.plans_closed) == (2, 2)
    assert [(i.partner, i.period, str(i.total), str(i.change)) for i in memo.improvements] == [
        ("=Riser", "FY2026-Q3", "70.000", "20.000"),
        ("Acme Partner 1", "FY2026-Q3", "89.500", "11.250"),
    ]
    assert [(o.title, o.partner, o.days_overdue) for o in memo.overdue_actions] == [
        ("Rebuild the pipeline", "Acme Partner 2", 14),
        ("Send the forecast", "=Riser", 1),
    ]


def test_the_first_cycle_of_a_kind_has_nothing_to_compare_with(a, memo_world):
    _, previous = memo_world

    memo = cycle_memo(cycle=previous, today=TODAY)

    assert memo.previous_cycle is None
    assert [(r.rating, r.count, r.previous, r.change) for r in memo.ratings] == [
        ("excellent", 0, None, None),
        ("good", 1, None, None),
        ("needs_improvement", 1, None, None),
        ("incomplete", 0, None, None),
        ("none", 2, None, None),
    ]


def test_the_memo_csv_has_every_figure_and_no_cell_a_spreadsheet_would_run(a, memo_world):
    cycle, _ = memo_world

    assert cycle_memo_csv(cycle, today=TODAY) == [
        ["Section", "Item", "Value", "Previous cycle", "Change"],
        ["Cycle", "FY2026-Q3 business reviews", "2026-10-01 to 2026-10-31", "FY2026-Q2 business reviews", ""],
        ["Reviews", "Partners in the cycle", "4", "", ""],
        ["Reviews", "Detailed", "2", "", ""],
        ["Reviews", "Monitored", "2", "", ""],
        ["Reviews", "Completed", "2", "", ""],
        ["Ratings", "Excellent", "1", "0", "+1"],
        ["Ratings", "Good", "1", "1", "0"],
        ["Ratings", "Needs improvement", "1", "1", "0"],
        ["Ratings", "Incomplete data", "0", "0", "0"],
        ["Ratings", "No score", "1", "2", "-1"],
        ["Remediation plans", "Opened", "2", "", ""],
        ["Remediation plans", "Closed", "2", "", ""],
        ["Top improvements", "'=Riser (FY2026-Q3)", "70.000", "", "+20.000"],
        ["Top improvements", "Acme Partner 1 (FY2026-Q3)", "89.500", "", "+11.250"],
        ["Overdue actions", "Rebuild the pipeline — Acme Partner 2", "14 days overdue", "2026-10-01", ""],
        ["Overdue actions", "Send the forecast — =Riser", "1 day overdue", "2026-10-14", ""],
    ]


def test_the_memo_reads_a_fixed_number_of_queries(a, memo_world, django_assert_max_num_queries):
    cycle, _ = memo_world

    with django_assert_max_num_queries(9):
        cycle_memo(cycle=cycle, today=TODAY)


def test_a_closed_cycles_memo_says_when_it_closed_and_how_many_reviews_were_not_held(
    a, memo_world, django_assert_max_num_queries
):
    cycle, _ = memo_world
    cycle_close(cycle=cycle, by=a.users["admin"], confirm_unfinished=True)
    cycle.refresh_from_db()
    closed_on = timezone.localdate(cycle.closed_at)

    with django_assert_max_num_queries(9):
        memo = cycle_memo(cycle=cycle, today=TODAY)

    assert (memo.closed_on, memo.not_held) == (closed_on, 2)
    rows = cycle_memo_csv(cycle, today=TODAY)
    assert rows[2] == ["Cycle", "Closed on", closed_on.isoformat(), "", ""]
    assert ["Reviews", "Not held", "2", "", ""] in rows


def test_an_open_cycles_memo_has_no_closing_day(a, memo_world):
    cycle, _ = memo_world

    memo = cycle_memo(cycle=cycle, today=TODAY)

    assert (memo.closed_on, memo.not_held) == (None, 0)
