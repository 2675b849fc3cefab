"""What the action and plan pages share: guards, display helpers, safe redirects."""

from __future__ import annotations

import functools

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.utils.http import url_has_allowed_host_and_scheme

from actions.models import (
    ACTION_TRANSITIONS,
    ActionItem,
    ActionStatus,
    MilestoneStatus,
    PlanStatus,
    Priority,
)
from actions.services.escalation import ESCALATION_OVERDUE_DAYS
from partnerhub.tenancy.decorators import member_required

PAGE_SIZE = 50
STATUS_BADGES = {
    ActionStatus.OPEN: "pending",
    ActionStatus.IN_PROGRESS: "active",
    ActionStatus.BLOCKED: "warn",
    ActionStatus.DONE: "ok",
    ActionStatus.CANCELLED: "",
}
PRIORITY_BADGES = {Priority.LOW: "", Priority.MEDIUM: "pending", Priority.HIGH: "warn", Priority.CRITICAL: "bad"}
PLAN_BADGES = {PlanStatus.SUGGESTED: "pending", PlanStatus.ACTIVE: "active", PlanStatus.COMPLETED: "ok"}
MILESTONE_BADGES = {MilestoneStatus.PENDING: "pending", MilestoneStatus.MET: "ok", MilestoneStatus.MISSED: "bad"}
# The words on a status button: where the action goes.
MOVE_LABELS = {
    ActionStatus.OPEN: "Back to open",
    ActionStatus.IN_PROGRESS: "Start",
    ActionStatus.BLOCKED: "Blocked",
    ActionStatus.DONE: "Done",
    ActionStatus.CANCELLED: "Cancel",
}


def program_page(view):
    """The program's (internal people's) pages: a partner user finds nothing here, like a missing page."""

    @member_required()
    @functools.wraps(view)
    def guarded(request, *args, **kwargs):
        if not request.membership.is_internal:
            raise Http404("No such page.")
        return view(request, *args, **kwargs)

    return guarded


def portal_page(view):
    """A partner's own pages: the partner comes from the membership, never from the URL."""

    @member_required()
    @functools.wraps(view)
    def guarded(request, *args, **kwargs):
        if not request.membership.is_partner_user:
            raise Http404("No such page.")
        return view(request, *args, **kwargs)

    return guarded


def legal_moves(action: ActionItem, *, internal: bool) -> list[tuple[str, str]]:
    """(status, button label) of the moves the services allow this person from the action's status."""
    return [
        (to, MOVE_LABELS[to]) for to in ACTION_TRANSITIONS[action.status] if internal or to != ActionStatus.CANCELLED
    ]


def may_escalate(action: ActionItem, *, internal: bool, today) -> bool:
    """Whether the escalate form is offered: the service's own conditions, checked again when it is sent."""
    if not internal or action.is_finished:
        return False
    return action.priority == Priority.CRITICAL or (today - action.due_on).days > ESCALATION_OVERDUE_DAYS


def decorate(actions, *, today, internal: bool) -> list[ActionItem]:
    """Actions with what a row or a card shows computed once: overdue, badges, legal moves."""
    rows = list(actions)
    for action in rows:
        action.overdue = action.is_overdue(today)
        action.status_badge = STATUS_BADGES.get(action.status, "")
        action.priority_badge = PRIORITY_BADGES.get(action.priority, "")
        action.moves = legal_moves(action, internal=internal)
    return rows


def error_text(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return " ".join(error.messages)
    if isinstance(error, PermissionDenied):
        return str(error) or "You may not do this."
    return str(error)


def safe_next(request, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=False):
        return target
    return fallback


def flash(request, *, ok: str = "", error: str = "") -> None:
    if error:
        messages.error(request, error)
    elif ok:
        messages.success(request, ok)
