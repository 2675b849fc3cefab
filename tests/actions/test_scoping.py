"""Who sees and changes which actions: partner users their own partner's only, another partner's or
another workspace's action answering exactly like a missing one."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404

from actions.models import ActionItem, ActionStatus, ActionUpdate
from actions.selectors import action_get, action_history, actions_list, partner_actions
from actions.services.escalation import action_escalate
from actions.services.followup import action_comment, action_progress, action_transition
from actions.services.items import action_update
from partnerhub.tenancy.context import tenant_scope
from tests.actions.conftest import new_action
from tests.factories import UserFactory

NOT_FOUND = "No such action."

# Every write a partner user may make on their own partner's action, as (name, call).
WRITES = [
    ("update", lambda action, by: action_update(action=action, by=by, description="Our notes")),
    ("comment", lambda action, by: action_comment(action=action, by=by, body="Any news?")),
    ("progress", lambda action, by: action_progress(action=action, by=by, percent=30)),
    ("transition", lambda action, by: action_transition(action=action, to=ActionStatus.IN_PROGRESS, by=by)),
]


def missing_action(tw) -> ActionItem:
    """An action object whose row does not exist (deleted since the page was opened)."""
    action = new_action(tw)
    ActionItem.objects.filter(pk=action.pk).delete()
    return action


def refusal(call) -> str:
    with pytest.raises(Http404) as refused:
        call()
    return str(refused.value)


@pytest.mark.parametrize(("name", "write"), WRITES, ids=[name for name, _ in WRITES])
def test_a_partner_user_works_on_their_own_partners_actions(a, name, write):
    action = new_action(a)
    write(action, a.users["partner_member"])
    assert ActionUpdate.objects.filter(action=action).count() == (0 if name == "update" else 1)


@pytest.mark.parametrize(("name", "write"), WRITES, ids=[name for name, _ in WRITES])
def test_another_partners_action_is_refused_exactly_like_a_missing_one(a, name, write):
    foreign = new_action(a, partner_index=1)
    gone = missing_action(a)
    by = a.users["partner_member"]

    assert refusal(lambda: write(foreign, by)) == refusal(lambda: write(gone, by)) == NOT_FOUND
    foreign.refresh_from_db()
    assert foreign.status == ActionStatus.OPEN and foreign.description == ""
    assert not ActionUpdate.objects.filter(action=foreign).exists()


@pytest.mark.parametrize(("name", "write"), WRITES, ids=[name for name, _ in WRITES])
def test_another_workspaces_action_is_refused_exactly_like_a_missing_one(world, name, write):
    with tenant_scope(world.b.tenant):
        foreign = new_action(world.b)
    with tenant_scope(world.a.tenant):
        gone = missing_action(world.a)
        for role in ("admin", "partner_member"):
            by = world.a.users[role]
            assert refusal(lambda by=by: write(foreign, by)) == refusal(lambda by=by: write(gone, by)) == NOT_FOUND
    with tenant_scope(world.b.tenant):
        assert not ActionUpdate.objects.filter(action=foreign).exists()


def test_reading_another_partners_or_workspaces_action_is_like_reading_a_missing_one(world):
    with tenant_scope(world.b.tenant):
        other_workspace = new_action(world.b)
    with tenant_scope(world.a.tenant):
        own = new_action(world.a)
        other_partner = new_action(world.a, partner_index=1)
        gone = missing_action(world.a)
        member = world.a.users["partner_member"]

        assert action_get(pk=own.pk, by=member) == own
        for pk in (other_partner.pk, other_workspace.pk, gone.pk, "not-a-number"):
            assert refusal(lambda pk=pk: action_get(pk=pk, by=member)) == NOT_FOUND
        assert refusal(lambda: action_history(action=other_partner, by=member)) == NOT_FOUND
        assert refusal(lambda: action_get(pk=other_workspace.pk, by=world.a.users["admin"])) == NOT_FOUND
        assert action_get(pk=other_partner.pk, by=world.a.users["executive"]) == other_partner


def test_partner_users_list_only_their_own_partners_actions(a):
    own = [new_action(a, title=f"Own {n}") for n in range(2)]
    new_action(a, partner_index=1, title="Theirs")

    assert list(partner_actions(by=a.users["partner_admin"])) == own
    assert list(actions_list(by=a.users["partner_member"])) == own
    # Filtering by another partner does not widen the view.
    assert list(actions_list(by=a.users["partner_member"], partner=a.partners[1])) == []
    assert len(actions_list(by=a.users["admin"])) == 3
    with pytest.raises(PermissionDenied):
        partner_actions(by=a.users["partner_manager"])


@pytest.mark.parametrize("role", ["partner_admin", "partner_member"])
def test_partner_users_do_not_escalate_or_cancel(a, role):
    action = new_action(a, priority="critical")
    with pytest.raises(PermissionDenied, match=r"Only the program's people escalate an action."):
        action_escalate(action=action, to=a.users["executive"], reason="Stuck", by=a.users[role])
    with pytest.raises(PermissionDenied, match=r"Only the program's people cancel an action."):
        action_transition(action=action, to=ActionStatus.CANCELLED, by=a.users[role], note="No longer needed.")


def test_someone_outside_the_workspace_is_refused(world, a):
    action = new_action(a)
    for stranger in (world.b.users["admin"], UserFactory(email="nobody@nowhere.test")):
        with pytest.raises(PermissionDenied, match=r"You are not a member of this workspace."):
            action_comment(action=action, by=stranger, body="Hi")
        with pytest.raises(PermissionDenied):
            actions_list(by=stranger)
