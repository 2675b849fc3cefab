"""Escalations: to an executive sponsor, for critical or long-overdue actions, with an email on commit."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from actions.models import ActionStatus, ActionUpdate, Priority, UpdateKind
from actions.services.escalation import ESCALATION_OVERDUE_DAYS, action_escalate
from actions.services.followup import action_transition
from partnerhub.tenancy.models import AuditEvent
from tests.actions.conftest import backdate, new_action
from tests.factories import MembershipFactory

REASON = "The partner's sales lead has not answered for three weeks; we need their VP."


def test_a_critical_action_is_escalated_and_the_sponsor_is_emailed_on_commit(
    a, mailoutbox, django_capture_on_commit_callbacks
):
    action = new_action(a, priority=Priority.CRITICAL, owner=a.users["partner_member"])
    sponsor = a.users["executive"]

    with django_capture_on_commit_callbacks(execute=True):
        action = action_escalate(action=action, to=sponsor, reason=REASON, by=a.users["partner_manager"])
        assert mailoutbox == []  # not before the commit

    assert action.escalated_to == sponsor and action.escalated_at is not None
    assert action.escalation_reason == REASON
    update = ActionUpdate.objects.get(action=action, kind=UpdateKind.ESCALATION)
    assert (update.body, update.author) == (REASON, a.users["partner_manager"])
    event = AuditEvent.objects.get(verb="action.escalated")
    assert event.changes["escalated_to"] == [None, sponsor.email]
    [email] = mailoutbox
    assert email.to == [sponsor.email]
    assert email.subject == f"[PartnerHub] Escalated to you: {action.title} ({a.partners[0].name})"
    assert REASON in email.body and "Priority: Critical" in email.body


def test_an_action_overdue_by_more_than_the_limit_is_escalated_whatever_its_priority(a, mailoutbox):
    action = backdate(new_action(a, priority=Priority.LOW), due_days_ago=ESCALATION_OVERDUE_DAYS + 1)
    action = action_escalate(action=action, to=a.users["executive"], reason=REASON, by=a.users["admin"])
    assert action.escalated_to == a.users["executive"]


def test_an_action_neither_critical_nor_overdue_long_enough_is_not_escalated(a):
    assert ESCALATION_OVERDUE_DAYS == 14
    action = backdate(new_action(a, priority=Priority.HIGH), due_days_ago=ESCALATION_OVERDUE_DAYS)
    with pytest.raises(ValidationError) as refused:
        action_escalate(action=action, to=a.users["executive"], reason=REASON, by=a.users["admin"])
    assert refused.value.message_dict == {
        "__all__": [
            "Only critical actions, or actions overdue by more than 14 days, are escalated; "
            "this one is high priority and is 14 days overdue."
        ]
    }
    action.refresh_from_db()
    assert action.escalated_to is None
    assert not ActionUpdate.objects.filter(kind=UpdateKind.ESCALATION).exists()


def test_a_not_yet_due_action_says_when_it_is_due(a):
    action = new_action(a)
    with pytest.raises(ValidationError) as refused:
        action_escalate(action=action, to=a.users["executive"], reason=REASON, by=a.users["admin"])
    assert refused.value.messages[0].endswith(f"this one is medium priority and is due on {action.due_on:%d %B %Y}.")


@pytest.mark.parametrize("role", ["admin", "partner_manager", "partner_admin"])
def test_the_sponsor_must_be_an_executive_of_the_workspace(a, role):
    action = new_action(a, priority=Priority.CRITICAL)
    with pytest.raises(ValidationError) as refused:
        action_escalate(action=action, to=a.users[role], reason=REASON, by=a.users["admin"])
    assert refused.value.message_dict == {"to": ["Escalate to an executive of this workspace."]}


def test_an_executive_of_another_workspace_is_not_a_sponsor(world, a):
    action = new_action(a, priority=Priority.CRITICAL)
    with pytest.raises(ValidationError) as refused:
        action_escalate(action=action, to=world.b.users["executive"], reason=REASON, by=a.users["admin"])
    assert refused.value.message_dict == {"to": ["Escalate to an executive of this workspace."]}


def test_an_escalation_says_why_and_goes_to_a_new_sponsor_each_time(a):
    action = new_action(a, priority=Priority.CRITICAL)
    with pytest.raises(ValidationError) as refused:
        action_escalate(action=action, to=a.users["executive"], reason="  ", by=a.users["admin"])
    assert refused.value.message_dict == {"reason": ["Say why the action is escalated; the sponsor reads this."]}

    action_escalate(action=action, to=a.users["executive"], reason=REASON, by=a.users["admin"])
    with pytest.raises(ValidationError) as refused:
        action_escalate(action=action, to=a.users["executive"], reason=REASON, by=a.users["admin"])
    assert refused.value.message_dict == {"to": [f"This action is already escalated to {a.users['executive']}."]}

    chief = MembershipFactory(tenant=a.tenant, role="executive", user__email="chief@acme.test").user
    action = action_escalate(action=action, to=chief, reason="Still stuck.", by=a.users["admin"])
    assert action.escalated_to == chief
    assert ActionUpdate.objects.filter(action=action, kind=UpdateKind.ESCALATION).count() == 2


def test_a_finished_action_is_not_escalated(a):
    action = new_action(a, priority=Priority.CRITICAL)
    action_transition(action=action, to=ActionStatus.DONE, by=a.users["admin"])
    with pytest.raises(ValidationError, match=r"A done action is finished"):
        action_escalate(action=action, to=a.users["executive"], reason=REASON, by=a.users["admin"])


def test_a_refused_escalation_sends_no_email(a, mailoutbox, django_capture_on_commit_callbacks):
    action = new_action(a)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ValidationError):
        action_escalate(action=action, to=a.users["executive"], reason=REASON, by=a.users["admin"])
    assert mailoutbox == []
