"""An action's follow-up: status moves, comments and progress reports, each kept in its history.

The status moves an action may make are ``actions.models.ACTION_TRANSITIONS``; every other move is
refused with a reason a person can act on. Partner users follow their own partner's actions but
never cancel one.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from actions.models import (
    ACTION_TRANSITIONS,
    ActionItem,
    ActionStatus,
    ActionUpdate,
    UpdateKind,
)
from actions.services.access import (
    require_member,
)
from actions.services.checks import add_history, clean_note, finished_refusal, locked_action
from partnerhub.tenancy.audit import audit
from partnerhub.tenancy.models import User

# Moves that need a word of explanation in the history.
NOTE_REQUIRED = {
    ActionStatus.BLOCKED: "Say what blocks the action.",
    ActionStatus.CANCELLED: "Say why the action is cancelled.",
}
REOPEN_NOTE = "Say why the action is reopened: what did not hold?"


# --- Status ----------------------------------------------------------------------------------------------


def transition_refusal(current: str, to: str) -> str:
    """Why an action in ``current`` cannot move to ``to``, in the words a person needs to act on it."""
    if current == ActionStatus.CANCELLED:
        return "A cancelled action stays cancelled; create a new one."
    if current == to:
        return f"This action is already {ActionStatus(to).label.lower()}."
    if current == ActionStatus.DONE:
        return "A done action can only be reopened (back to in progress) when its result did not hold."
    if current == ActionStatus.BLOCKED and to == ActionStatus.DONE:
        return "A blocked action is unblocked before it is done: move it to in progress first."
    return f"An action cannot move from {ActionStatus(current).label.lower()} to {ActionStatus(to).label.lower()}."


@transaction.atomic
def action_transition(*, action: ActionItem, to: str, by: User, note: str = "") -> ActionItem:
    """Move an action to another status along ``ACTION_TRANSITIONS``; every other move is refused.

    Done records when it was completed and 100% progress; reopening clears the completion.
    Cancelling is for the program's people, and blocking or cancelling says why.
    """
    membership = require_member(by)
    action = locked_action(action, membership)
    note = clean_note(note)
    if to not in ActionStatus.values:
        raise ValidationError({"to": f"“{to}” is not a status of an action."})
    current = action.status
    if to not in ACTION_TRANSITIONS[current]:
        raise ValidationError(transition_refusal(current, to), code="illegal_transition")
    if to == ActionStatus.CANCELLED and not membership.is_internal:
        raise PermissionDenied("Only the program's people cancel an action.")
    if not note and to in NOTE_REQUIRED:
        raise ValidationError({"note": NOTE_REQUIRED[to]})
    if not note and current == ActionStatus.DONE:
        raise ValidationError({"note": REOPEN_NOTE})
    now = timezone.now()
    fields = ["status", "updated_at"]
    action.status = to
    action.updated_at = now
    changes: dict[str, list[Any]] = {"status": [current, to]}
    if to == ActionStatus.DONE:
        action.completed_at = now
        changes["progress"] = [action.progress, 100]
        action.progress = 100
        fields += ["completed_at", "progress"]
    elif current == ActionStatus.DONE:
        action.completed_at = None
        fields.append("completed_at")
    action.save(update_fields=fields)
    add_history(
        action,
        kind=UpdateKind.STATUS,
        by=by,
        body=note,
        status_from=current,
        status_to=to,
        progress=100 if to == ActionStatus.DONE else None,
    )
    if note:
        changes["note"] = [None, note]
    audit(actor=by, verb="action.status_changed", target=action, changes=changes)
    return action


# --- Comments and progress ------------------------------------------------------------------------------


@transaction.atomic
def action_comment(*, action: ActionItem, by: User, body: str) -> ActionUpdate:
    """Add a comment to an action's history (finished actions too: the discussion may go on)."""
    membership = require_member(by)
    action = locked_action(action, membership)
    text = clean_note(body)
    if not text:
        raise ValidationError({"body": "Write the comment."})
    update = add_history(action, kind=UpdateKind.COMMENT, by=by, body=text)
    audit(actor=by, verb="action.commented", target=action, changes={"comment": [None, text]})
    return update


def _percent(value: Any) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise ValidationError({"percent": "Progress is a whole percentage from 0 to 100."})
    return value


@transaction.atomic
def action_progress(*, action: ActionItem, by: User, percent: Any, note: str = "") -> ActionUpdate:
    """Report how far an unfinished action has come (0-100%), with a note on what moved."""
    membership = require_member(by)
    action = locked_action(action, membership)
    percent = _percent(percent)
    text = clean_note(note)
    if action.is_finished:
        raise ValidationError(finished_refusal(action), code="finished")
    previous = action.progress
    action.progress = percent
    action.updated_at = timezone.now()
    action.save(update_fields=["progress", "updated_at"])
    update = add_history(action, kind=UpdateKind.PROGRESS, by=by, body=text, progress=percent)
    audit(
        actor=by,
        verb="action.progress_reported",
        target=action,
        changes={"progress": [previous, percent], **({"note": [None, text]} if text else {})},
    )
    return update
