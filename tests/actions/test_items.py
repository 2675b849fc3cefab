"""Action items: creating with owners, links and targets, changing, moving through statuses, follow-up."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from actions.models import (
    ACTION_TRANSITIONS,
    ActionItem,
    ActionStatus,
    ActionTarget,
    ActionUpdate,
    Priority,
    RemediationPlan,
    UpdateKind,
)
from actions.services.followup import action_comment, action_progress, action_transition
from actions.services.items import action_create, action_update
from actions.services.plans import plan_close, plan_open
from partnerhub.tenancy.models import AuditEvent
from reviews.models import Review, ReviewCycle, ReviewKind
from scorecards.models import Metric
from tests.actions.conftest import days, new_action
from tests.factories import MembershipFactory, UserFactory


def review_of(partner, *, period="FY2026-Q3") -> Review:
    cycle, _ = ReviewCycle.objects.get_or_create(
        kind=ReviewKind.QBR,
        period=period,
        defaults={"name": f"{period} business reviews", "opens_on": days(-30), "due_on": days(30)},
    )
    return Review.objects.create(cycle=cycle, partner=partner, kind=ReviewKind.QBR, period=period, due_on=days(30))


# --- Creating -------------------------------------------------------------------------------------------------


def test_an_action_is_created_with_its_targets_and_an_audit_event(a):
    metric = Metric.objects.get(key="pipeline_created")
    review = review_of(a.partners[0])
    action = new_action(
        a,
        owner=a.users["partner_member"],
        review=review,
        priority=Priority.HIGH,
        success_criteria="Two webinars held, 40 registrations each",
        targets=[(metric, "350000")],
    )

    assert action.status == ActionStatus.OPEN and action.progress == 0
    assert action.owner == a.users["partner_member"] and action.review == review
    assert action.created_by == a.users["partner_manager"]
    [target] = ActionTarget.objects.filter(action=action)
    assert target.metric == metric and target.target_value == Decimal("350000")
    event = AuditEvent.objects.get(verb="action.created", target_id=str(action.pk))
    assert event.changes["partner"] == [None, a.partners[0].name]
    assert event.changes["owner"] == [None, str(a.users["partner_member"])]
    assert event.changes["targets"] == [None, ["pipeline_created=350000"]]


@pytest.mark.parametrize("role", ["admin", "partner_manager", "executive", "partner_admin", "partner_member"])
def test_the_owner_may_be_one_of_the_programs_people_or_a_user_of_the_partner(a, role):
    action = new_action(a, owner=a.users[role])
    assert action.owner == a.users[role]


def test_a_user_of_another_partner_cannot_own_the_action(a):
    with pytest.raises(ValidationError) as refused:
        new_action(a, owner=a.users["other_partner_admin"])
    assert refused.value.message_dict["owner"] == [
        f"The owner must be one of the program's people or a user of {a.partners[0].name}; "
        f"{a.users['other_partner_admin']} is neither."
    ]
    assert not ActionItem.objects.exists()


def test_a_person_of_another_workspace_or_without_one_cannot_own_the_action(world, a):
    outsider = UserFactory(email="someone@elsewhere.test")
    for owner in (world.b.users["partner_manager"], outsider):
        with pytest.raises(ValidationError) as refused:
            new_action(a, owner=owner)
        assert "The owner must be one of the program's people or a user of" in refused.value.message_dict["owner"][0]


def test_a_deactivated_person_cannot_own_the_action(a):
    person = MembershipFactory(tenant=a.tenant, role="partner_manager", user__email="gone@acme.test").user
    person.is_active = False
    person.save(update_fields=["is_active"])
    with pytest.raises(ValidationError) as refused:
        new_action(a, owner=person)
    assert "owner" in refused.value.message_dict


def test_the_review_and_the_plan_must_be_of_the_same_partner(a):
    other_review = review_of(a.partners[1])
    other_plan = plan_open(partner=a.partners[1], by=a.users["admin"], trigger_period="FY2026-Q3")
    with pytest.raises(ValidationError) as refused:
        new_action(a, review=other_review, plan=other_plan)
    assert refused.value.message_dict == {
        "review": [f"Link a review of {a.partners[0].name}."],
        "plan": [f"Link a remediation plan of {a.partners[0].name}."],
    }


def test_a_closed_plan_takes_no_new_actions(a):
    plan = plan_open(partner=a.partners[0], by=a.users["admin"], trigger_period="FY2026-Q3")
    plan_close(plan=plan, status="cancelled", note="Not needed after all.", by=a.users["admin"])
    with pytest.raises(ValidationError) as refused:
        new_action(a, plan=RemediationPlan.objects.get(pk=plan.pk))
    assert refused.value.message_dict["plan"] == ["The plan is cancelled; link an open plan."]


def test_every_problem_is_named_at_once_and_nothing_is_stored(a):
    metric = Metric.objects.get(key="training_completion_rate")
    with pytest.raises(ValidationError) as refused:
        new_action(
            a,
            title="  ",
            due_on=days(-1),
            priority="urgent",
            root_cause="bad luck",
            kind="forever",
            targets=[(metric, "140"), (metric, "90"), ("not a metric",)],
        )
    errors = refused.value.message_dict
    assert errors["title"] == ["Give the action a title."]
    assert errors["due_on"][0].endswith(f"an action is due today or later (today is {days(0):%d %B %Y}).")
    assert errors["priority"] == ["“urgent” is not a priority; choose one of: low, medium, high, critical."]
    assert "“bad luck” is not a root cause" in errors["root_cause"][0]
    assert "“forever” is not a kind of action" in errors["kind"][0]
    assert errors["targets"][0].startswith("Target 1: 140 is outside the plausible range for Training completion rate")
    assert errors["targets"][1] == (
        "Target 2: Training completion rate is already targeted; each metric is targeted once."
    )
    assert errors["targets"][2] == "Target 3: give a metric and a target value."
    assert not ActionItem.objects.exists() and not ActionTarget.objects.exists()


@pytest.mark.parametrize("role", ["partner_admin", "partner_member"])
def test_partner_users_do_not_create_actions(a, role):
    with pytest.raises(PermissionDenied, match=r"Action items are created by the program's people."):
        new_action(a, by=role)


def test_a_partner_of_another_workspace_is_refused(world, a):
    with pytest.raises(ValidationError) as refused:
        action_create(partner=world.b.partners[0], by=a.users["admin"], title="Cross", due_on=days(3))
    assert refused.value.message_dict == {"partner": ["Choose a partner of this workspace."]}


# --- Changing -------------------------------------------------------------------------------------------------


def test_an_update_changes_only_what_differs_and_audits_it(a):
    action = new_action(a, owner=a.users["partner_member"])
    metric = Metric.objects.get(key="customer_satisfaction")

    action_update(
        action=action,
        by=a.users["partner_manager"],
        title=action.title,
        due_on=days(20),
        owner=a.users["partner_admin"],
        targets=[(metric, "8.5")],
    )

    action.refresh_from_db()
    assert action.due_on == days(20) and action.owner == a.users["partner_admin"]
    event = AuditEvent.objects.get(verb="action.updated")
    assert set(event.changes) == {"due_on", "owner", "targets"}
    assert event.changes["targets"] == [[], ["customer_satisfaction=8.5"]]

    action_update(action=action, by=a.users["partner_manager"], due_on=days(20))
    assert AuditEvent.objects.filter(verb="action.updated").count() == 1


def test_partner_users_change_the_working_notes_but_not_what_was_agreed(a):
    action = new_action(a)
    action_update(action=action, by=a.users["partner_member"], resources="Two presales engineers")
    action.refresh_from_db()
    assert action.resources == "Two presales engineers"

    with pytest.raises(PermissionDenied, match=r"An action's due date, priority are agreed with the program's people"):
        action_update(action=action, by=a.users["partner_member"], due_on=days(60), priority=Priority.LOW)


def test_a_due_date_cannot_move_into_the_past(a):
    action = new_action(a)
    with pytest.raises(ValidationError) as refused:
        action_update(action=action, by=a.users["admin"], due_on=days(-2))
    assert "has passed" in refused.value.message_dict["due_on"][0]


def test_a_finished_action_is_not_changed(a):
    action = new_action(a)
    action_transition(action=action, to=ActionStatus.CANCELLED, by=a.users["admin"], note="Merged into another.")
    with pytest.raises(ValidationError, match=r"A cancelled action stays cancelled; create a new one."):
        action_update(action=action, by=a.users["admin"], title="New title")


# --- Statuses -----------------------------------------------------------------------------------------------

# How an action reaches each status from open, through legal moves.
ROUTE = {
    ActionStatus.OPEN: [],
    ActionStatus.IN_PROGRESS: [ActionStatus.IN_PROGRESS],
    ActionStatus.BLOCKED: [ActionStatus.BLOCKED],
    ActionStatus.DONE: [ActionStatus.DONE],
    ActionStatus.CANCELLED: [ActionStatus.CANCELLED],
}
ILLEGAL = [(f, t) for f in ActionStatus for t in ActionStatus if t not in ACTION_TRANSITIONS[f]]
LEGAL = [(f, t) for f in ActionStatus for t in ACTION_TRANSITIONS[f]]


def expected_refusal(current: ActionStatus, to: ActionStatus) -> str:
    if current == ActionStatus.CANCELLED:
        return "A cancelled action stays cancelled; create a new one."
    if current == to:
        return f"This action is already {to.label.lower()}."
    if current == ActionStatus.DONE:
        return "A done action can only be reopened (back to in progress) when its result did not hold."
    return "A blocked action is unblocked before it is done: move it to in progress first."


def brought_to(a, status: ActionStatus) -> ActionItem:
    action = new_action(a)
    for step in ROUTE[status]:
        action = action_transition(action=action, to=step, by=a.users["admin"], note="On the way.")
    return action


def test_the_illegal_moves_are_the_thirteen_outside_the_transition_table():
    assert len(ILLEGAL) == 13 and len(LEGAL) == 12


@pytest.mark.parametrize(("current", "to"), ILLEGAL, ids=[f"{f.value}-to-{t.value}" for f, t in ILLEGAL])
def test_every_illegal_move_is_refused_with_a_clear_message(a, current, to):
    action = brought_to(a, current)
    updates = ActionUpdate.objects.count()

    with pytest.raises(ValidationError) as refused:
        action_transition(action=action, to=to, by=a.users["admin"], note="Trying anyway.")

    assert refused.value.messages == [expected_refusal(current, to)]
    action.refresh_from_db()
    assert action.status == current and ActionUpdate.objects.count() == updates


@pytest.mark.parametrize(("current", "to"), LEGAL, ids=[f"{f.value}-to-{t.value}" for f, t in LEGAL])
def test_every_legal_move_is_made_and_written_to_the_history(a, current, to):
    action = brought_to(a, current)

    action_transition(action=action, to=to, by=a.users["admin"], note="Because.")

    action.refresh_from_db()
    assert action.status == to
    update = ActionUpdate.objects.filter(action=action).latest("pk")
    assert (update.kind, update.status_from, update.status_to, update.body) == (
        UpdateKind.STATUS,
        current,
        to,
        "Because.",
    )
    assert AuditEvent.objects.filter(verb="action.status_changed", changes__status=[current, to]).exists()


def test_an_unknown_status_is_named(a):
    with pytest.raises(ValidationError) as refused:
        action_transition(action=new_action(a), to="paused", by=a.users["admin"])
    assert refused.value.message_dict == {"to": ["“paused” is not a status of an action."]}


def test_done_records_completion_and_full_progress_and_reopening_clears_the_completion(a):
    action = new_action(a)
    action_progress(action=action, by=a.users["partner_member"], percent=40)
    before = timezone.now()

    action = action_transition(action=action, to=ActionStatus.DONE, by=a.users["partner_member"])

    assert action.progress == 100 and action.completed_at >= before
    assert ActionUpdate.objects.filter(action=action, kind=UpdateKind.STATUS).get().progress == 100
    with pytest.raises(ValidationError) as refused:
        action_transition(action=action, to=ActionStatus.IN_PROGRESS, by=a.users["partner_member"])
    assert refused.value.message_dict == {"note": ["Say why the action is reopened: what did not hold?"]}

    action = action_transition(
        action=action, to=ActionStatus.IN_PROGRESS, by=a.users["partner_member"], note="Numbers fell back."
    )
    assert action.completed_at is None and action.status == ActionStatus.IN_PROGRESS


def test_blocking_and_cancelling_say_why(a):
    action = new_action(a)
    with pytest.raises(ValidationError) as refused:
        action_transition(action=action, to=ActionStatus.BLOCKED, by=a.users["admin"])
    assert refused.value.message_dict == {"note": ["Say what blocks the action."]}
    with pytest.raises(ValidationError) as refused:
        action_transition(action=action, to=ActionStatus.CANCELLED, by=a.users["admin"], note="  ")
    assert refused.value.message_dict == {"note": ["Say why the action is cancelled."]}


@pytest.mark.parametrize("role", ["partner_admin", "partner_member"])
def test_partner_users_move_their_actions_but_never_cancel_them(a, role):
    action = new_action(a)
    action = action_transition(action=action, to=ActionStatus.IN_PROGRESS, by=a.users[role])
    assert action.status == ActionStatus.IN_PROGRESS
    with pytest.raises(PermissionDenied, match=r"Only the program's people cancel an action."):
        action_transition(action=action, to=ActionStatus.CANCELLED, by=a.users[role], note="Not for us.")


# --- Follow-up ----------------------------------------------------------------------------------------------


def test_progress_is_a_percentage_and_is_written_to_the_history(a):
    action = new_action(a)
    action_progress(action=action, by=a.users["partner_admin"], percent="60", note="Webinar one held.")
    action.refresh_from_db()
    assert action.progress == 60
    update = ActionUpdate.objects.get(action=action, kind=UpdateKind.PROGRESS)
    assert (update.progress, update.body, update.author) == (60, "Webinar one held.", a.users["partner_admin"])
    for wrong in (-1, 101, 12.5, "half", True, None):
        with pytest.raises(ValidationError) as refused:
            action_progress(action=action, by=a.users["partner_admin"], percent=wrong)
        assert refused.value.message_dict == {"percent": ["Progress is a whole percentage from 0 to 100."]}
    action.refresh_from_db()
    assert action.progress == 60


def test_progress_is_not_reported_on_a_finished_action(a):
    action = brought_to(a, ActionStatus.DONE)
    with pytest.raises(ValidationError, match=r"A done action is finished; reopen it"):
        action_progress(action=action, by=a.users["partner_admin"], percent=50)


def test_comments_are_added_to_the_history_even_of_a_finished_action(a):
    action = brought_to(a, ActionStatus.CANCELLED)
    update = action_comment(action=action, by=a.users["partner_member"], body="  We will pick it up next quarter. ")
    assert (update.kind, update.body) == (UpdateKind.COMMENT, "We will pick it up next quarter.")
    with pytest.raises(ValidationError) as refused:
        action_comment(action=action, by=a.users["partner_member"], body="")
    assert refused.value.message_dict == {"body": ["Write the comment."]}


def test_a_due_date_kept_as_it_was_may_have_passed(a):
    action = new_action(a)
    ActionItem.objects.filter(pk=action.pk).update(due_on=datetime.date(2026, 1, 5))
    action.refresh_from_db()
    action_update(action=action, by=a.users["admin"], due_on=datetime.date(2026, 1, 5), title="Renamed")
    action.refresh_from_db()
    assert action.title == "Renamed" and action.due_on == datetime.date(2026, 1, 5)


# --- The owner hears of it -------------------------------------------------------------------------------


def test_a_new_owner_is_emailed_once_the_action_is_stored(a, mailoutbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        action = new_action(a, owner=a.users["partner_member"], success_criteria="Forty registered attendees")
        assert mailoutbox == []  # not before the commit

    [email] = mailoutbox
    assert email.to == [a.users["partner_member"].email]
    assert email.subject.endswith(f"Assigned to you: {action.title} ({a.partners[0].name})")
    assert "made you the owner of an action" in email.body and "Forty registered attendees" in email.body


def test_nobody_is_emailed_of_an_action_they_gave_themselves_or_that_has_no_owner(
    a, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        new_action(a, owner=a.users["partner_manager"], by="partner_manager")
        new_action(a)
    assert mailoutbox == []


def test_changing_the_owner_emails_the_new_owner_only(a, mailoutbox, django_capture_on_commit_callbacks):
    action = new_action(a, owner=a.users["partner_member"])
    with django_capture_on_commit_callbacks(execute=True):
        action_update(action=action, by=a.users["partner_manager"], due_on=days(30))  # same owner: nobody
        action_update(action=action, by=a.users["partner_manager"], owner=a.users["partner_admin"])
    [email] = mailoutbox
    assert email.to == [a.users["partner_admin"].email]


def test_a_refused_change_of_owner_sends_nothing(a, mailoutbox, django_capture_on_commit_callbacks):
    action = new_action(a)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ValidationError):
        action_update(action=action, by=a.users["partner_manager"], owner=a.users["partner_member"], due_on=days(-3))
    assert mailoutbox == []
