"""Reads of action items and remediation plans, for the board, the lists, "my actions" and the portal.

Everything starts from what the person may see (:func:`actions_visible_to`): every action of the
workspace for the program's people, their own partner's for a partner user. Lists are built with a
fixed number of queries whatever the number of rows: relations are joined or prefetched, never
read row by row. A filter that makes no sense is a clear error, not an empty list.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Prefetch, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from actions.models import (
    FINISHED_STATUSES,
    ActionItem,
    ActionStatus,
    ActionTarget,
    ActionUpdate,
    Milestone,
    MilestoneStatus,
    PlanStatus,
    RemediationPlan,
    RootCause,
)
from actions.services.access import NO_SUCH_ACTION, NO_SUCH_PLAN, NOT_A_MEMBER
from partnerhub.tenancy.models import Membership, User
from partnerhub.tenancy.selectors import acting_membership

# The board's columns, left to right.
BOARD_COLUMNS = (
    ActionStatus.OPEN,
    ActionStatus.IN_PROGRESS,
    ActionStatus.BLOCKED,
    ActionStatus.DONE,
    ActionStatus.CANCELLED,
)
# What a partner's own people see of their plans: the plan they work on and the ones they finished.
# Suggestions and cancelled plans are the program's deliberations.
PARTNER_VISIBLE_PLAN_STATUSES = (PlanStatus.ACTIVE, PlanStatus.COMPLETED)


def _member(by: Any) -> Membership:
    membership = acting_membership(by)
    if membership is None:
        raise PermissionDenied(NOT_A_MEMBER)
    return membership


def _id(value: Any, field: str) -> int:
    """A filter given as a row or its id."""
    pk = getattr(value, "pk", value)
    if isinstance(pk, bool) or not isinstance(pk, int):
        try:
            return int(str(pk))
        except ValueError:
            raise ValidationError({field: f"Filter by {field} with a row or its id; “{value}” is neither."}) from None
    return pk


# --- Actions -------------------------------------------------------------------------------------------


def actions_visible_to(by: User) -> QuerySet:
    """Every action ``by`` may see: the workspace's, or their own partner's for a partner user."""
    membership = _member(by)
    actions = ActionItem.objects.all()
    if membership.is_partner_user:
        actions = actions.filter(partner_id=membership.partner_id)
    return actions


def _with_listing_relations(actions: QuerySet) -> QuerySet:
    """What a row of a list or a card of the board shows, in two queries whatever the number of rows."""
    return actions.select_related("partner", "owner", "plan", "escalated_to").prefetch_related(
        Prefetch("targets", queryset=ActionTarget.objects.select_related("metric").order_by("pk"))
    )


def action_get(*, pk: Any, by: User) -> ActionItem:
    """One action ``by`` may see; a missing one, another partner's or another workspace's is "not found"."""
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        raise Http404(NO_SUCH_ACTION) from None
    action = _with_listing_relations(actions_visible_to(by)).filter(pk=pk).first()
    if action is None:
        raise Http404(NO_SUCH_ACTION)
    return action


def action_history(*, action: ActionItem, by: User) -> list[ActionUpdate]:
    """The action's comments, progress reports, status changes and escalations, oldest first."""
    action = action_get(pk=action.pk, by=by)
    return list(ActionUpdate.objects.filter(action=action).select_related("author").order_by("created_at", "pk"))


def actions_list(
    *,
    by: User,
    owner: Any = None,
    partner: Any = None,
    status: str | None = None,
    overdue: bool | None = None,
    root_cause: str | None = None,
    today: datetime.date | None = None,
) -> QuerySet:
    """The actions ``by`` may see, filtered; by due date. ``overdue``: True only overdue, False none."""
    actions = actions_visible_to(by)
    if owner is not None:
        actions = actions.filter(owner_id=_id(owner, "owner"))
    if partner is not None:
        actions = actions.filter(partner_id=_id(partner, "partner"))
    if status:
        if status not in ActionStatus.values:
            raise ValidationError({"status": f"“{status}” is not a status of an action."})
        actions = actions.filter(status=status)
    if root_cause:
        if root_cause not in RootCause.values:
            raise ValidationError({"root_cause": f"“{root_cause}” is not a root cause."})
        actions = actions.filter(root_cause=root_cause)
    if overdue is not None:
        overdue_ids = ActionItem.objects.overdue(today or timezone.localdate()).values("pk")
        actions = actions.filter(pk__in=overdue_ids) if overdue else actions.exclude(pk__in=overdue_ids)
    return _with_listing_relations(actions).order_by("due_on", "pk")


def actions_board(*, by: User, **filters: Any) -> dict[str, list[ActionItem]]:
    """The actions by status, one column per status (empty ones too), each by due date.

    Takes the filters of :func:`actions_list`; a ``status`` filter leaves the other columns empty.
    """
    columns: dict[str, list[ActionItem]] = {status.value: [] for status in BOARD_COLUMNS}
    for action in actions_list(by=by, **filters):
        columns[action.status].append(action)
    return columns


def my_actions(*, user: User, include_finished: bool = False) -> QuerySet:
    """The actions ``user`` owns, the ones still to do first by default."""
    actions = actions_visible_to(user).filter(owner=user)
    if not include_finished:
        actions = actions.unfinished()
    return _with_listing_relations(actions).order_by("due_on", "pk")


def partner_actions(*, by: User, include_finished: bool = True) -> QuerySet:
    """A partner user's view: their own partner's actions (the portal's list); internal people use the lists."""
    membership = _member(by)
    if not membership.is_partner_user:
        raise PermissionDenied("This list is a partner's own; the program's people use the actions board.")
    actions = ActionItem.objects.filter(partner_id=membership.partner_id)
    if not include_finished:
        actions = actions.unfinished()
    return _with_listing_relations(actions).order_by("due_on", "pk")


# --- Plans ---------------------------------------------------------------------------------------------


def plans_visible_to(by: User) -> QuerySet:
    """Every plan of the workspace for the program's people; a partner user's own active and completed plans."""
    membership = _member(by)
    plans = RemediationPlan.objects.all()
    if membership.is_partner_user:
        plans = plans.filter(partner_id=membership.partner_id, status__in=PARTNER_VISIBLE_PLAN_STATUSES)
    return plans


def _with_plan_relations(plans: QuerySet) -> QuerySet:
    return plans.select_related("partner", "leader").prefetch_related(
        Prefetch("milestones", queryset=Milestone.objects.select_related("metric").order_by("due_on", "pk")),
        "checkpoints",
    )


def plans_with_milestones(*, by: User, status: str | None = None, partner: Any = None) -> QuerySet:
    """Plans with their partner, leader, milestones (and metrics) and checkpoints; newest first.

    Three queries whatever the number of plans.
    """
    plans = plans_visible_to(by)
    if status:
        if status == "open":
            plans = plans.open()
        elif status in PlanStatus.values:
            plans = plans.filter(status=status)
        else:
            raise ValidationError({"status": f"“{status}” is not a status of a plan."})
    if partner is not None:
        plans = plans.filter(partner_id=_id(partner, "partner"))
    return _with_plan_relations(plans).order_by("-opened_at", "-pk")


def plan_get(*, pk: Any, by: User) -> RemediationPlan:
    """One plan ``by`` may see, with its milestones and checkpoints; otherwise "not found"."""
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        raise Http404(NO_SUCH_PLAN) from None
    plan = _with_plan_relations(plans_visible_to(by)).filter(pk=pk).first()
    if plan is None:
        raise Http404(NO_SUCH_PLAN)
    return plan


# --- One partner at a glance ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PartnerActionsOverview:
    """What the partner's page shows of its follow-up: unfinished actions, the soonest due, the open plan."""

    unfinished: dict[str, int]  # by status, every unfinished status present (0 when none)
    overdue: int
    soonest: list[ActionItem]
    plan: RemediationPlan | None

    @property
    def unfinished_total(self) -> int:
        return sum(self.unfinished.values())


def partner_actions_overview(
    *, partner: Any, by: User, today: datetime.date | None = None, show: int = 5
) -> PartnerActionsOverview:
    """One partner's unfinished actions by status, how many are overdue, the ``show`` soonest due and its open plan.

    Four queries, whatever the number of actions.
    """
    today = today or timezone.localdate()
    actions = actions_visible_to(by).filter(partner_id=_id(partner, "partner")).unfinished()
    counts = {status: 0 for status in BOARD_COLUMNS if status not in FINISHED_STATUSES}
    counts.update(actions.order_by().values_list("status").annotate(n=Count("pk")))
    overdue = actions.filter(due_on__lt=today).count()
    soonest = list(_with_listing_relations(actions).order_by("due_on", "pk")[:show])
    plan = (
        plans_visible_to(by)
        .open()
        .filter(partner_id=_id(partner, "partner"))
        .select_related("leader")
        .annotate(
            milestones_met=Count("milestones", filter=Q(milestones__status=MilestoneStatus.MET)),
            milestones_missed=Count("milestones", filter=Q(milestones__status=MilestoneStatus.MISSED)),
            milestones_total=Count("milestones"),
        )
        .first()
    )
    return PartnerActionsOverview(unfinished=counts, overdue=overdue, soonest=soonest, plan=plan)
