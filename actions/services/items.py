"""Action items: create, change, move through their statuses, follow up, escalate.

Every write locks the action's row first, so two people acting at once take turns and the second
sees what the first did (a status move that is no longer legal is refused, not applied twice).
Each write appends an audit event; status changes, progress reports, comments and escalations also
append an :class:`ActionUpdate`, the action's visible history.

Who may act is checked here, not only by the pages (see :mod:`actions.services.access`). Partner
users work on their own partner's actions, within limits: they change the working notes
(description, impact, success criteria, resources, contingency) but not what was agreed with the
program (title, owner, due date, priority, kind, root cause, links and targets), and they never
cancel or escalate.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404
from django.template.loader import render_to_string
from django.utils import timezone

from actions.models import (
    ACTION_TRANSITIONS,
    ActionItem,
    ActionKind,
    ActionStatus,
    ActionTarget,
    ActionUpdate,
    Priority,
    RemediationPlan,
    RootCause,
    UpdateKind,
)
from actions.services.access import (
    NO_SUCH_ACTION,
    ensure_in_workspace,
    ensure_sees_partner,
    is_eligible_person,
    require_internal,
    require_member,
)
from partnerhub.partners.models import Partner
from partnerhub.tenancy.audit import audit, diff
from partnerhub.tenancy.context import current_tenant_id
from partnerhub.tenancy.emails import Email, send_on_commit, subject
from partnerhub.tenancy.models import Membership, User
from partnerhub.tenancy.roles import Role
from reviews.models import Review
from scorecards.models import Metric
from scorecards.services.observations import clean_value

# An action that is not critical may be escalated once it is overdue by more than this many days.
ESCALATION_OVERDUE_DAYS = 14
MAX_TITLE_CHARS = 200
MAX_TEXT_CHARS = 10_000

# What a partner's own people may change on their partner's actions; the rest is agreed with the program.
PARTNER_EDITABLE_FIELDS = frozenset({"description", "impact_estimate", "success_criteria", "resources", "contingency"})
FIELD_LABELS = {"due_on": "due date", "root_cause": "root cause", "kind": "kind", "targets": "targets"}
TEXT_FIELDS = ("description", "impact_estimate", "success_criteria", "resources", "contingency")
# Moves that need a word of explanation in the history.
NOTE_REQUIRED = {
    ActionStatus.BLOCKED: "Say what blocks the action.",
    ActionStatus.CANCELLED: "Say why the action is cancelled.",
}
REOPEN_NOTE = "Say why the action is reopened: what did not hold?"


class _Keep:
    """The default of ``action_update``'s fields: leave the field as it is."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP: Any = _Keep()


# --- Validation ----------------------------------------------------------------------------------------


def _text(value: Any, field: str, errors: dict[str, list[str]], *, label: str, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        errors.setdefault(field, []).append(f"Give the {label} as text.")
        return ""
    text = value.strip()
    limit = MAX_TITLE_CHARS if field == "title" else MAX_TEXT_CHARS
    if required and not text:
        errors.setdefault(field, []).append(f"Give the action a {label}.")
    elif len(text) > limit:
        errors.setdefault(field, []).append(f"Keep the {label} under {limit:,} characters ({len(text):,} now).")
    return text


def _choice(value: Any, choices: type, field: str, errors: dict[str, list[str]], *, label: str) -> str:
    if value not in choices.values:
        allowed = ", ".join(str(choice_label).lower() for choice_label in choices.labels)
        errors.setdefault(field, []).append(f"“{value}” is not a {label}; choose one of: {allowed}.")
        return ""
    return str(value)


def _due_on(value: Any, errors: dict[str, list[str]], *, today: datetime.date) -> datetime.date | None:
    if not isinstance(value, datetime.date) or isinstance(value, datetime.datetime):
        errors.setdefault("due_on", []).append("Give the due date as a day.")
        return None
    if value < today:
        errors.setdefault("due_on", []).append(
            f"{value:%d %B %Y} has passed; an action is due today or later (today is {today:%d %B %Y})."
        )
        return None
    return value


def _owner(owner: Any, partner: Partner, errors: dict[str, list[str]]) -> User | None:
    if owner is None:
        return None
    if not is_eligible_person(owner, partner):
        errors.setdefault("owner", []).append(
            f"The owner must be one of the program's people or a user of {partner.name}; "
            f"{owner if isinstance(owner, User) else 'this person'} is neither."
        )
        return None
    return owner


def _review(review: Any, partner: Partner, errors: dict[str, list[str]]) -> Review | None:
    if review is None:
        return None
    if not isinstance(review, Review) or review.tenant_id != current_tenant_id() or review.partner_id != partner.pk:
        errors.setdefault("review", []).append(f"Link a review of {partner.name}.")
        return None
    return review


def _plan(plan: Any, partner: Partner, errors: dict[str, list[str]]) -> RemediationPlan | None:
    if plan is None:
        return None
    if not isinstance(plan, RemediationPlan) or plan.tenant_id != current_tenant_id() or plan.partner_id != partner.pk:
        errors.setdefault("plan", []).append(f"Link a remediation plan of {partner.name}.")
        return None
    if not plan.is_open:
        errors.setdefault("plan", []).append(f"The plan is {plan.get_status_display().lower()}; link an open plan.")
        return None
    return plan


def _targets(targets: Any, errors: dict[str, list[str]]) -> list[tuple[Metric, Decimal | None]]:
    """(metric, target value) pairs: metrics of this workspace in use, each once, values within bounds."""
    cleaned: list[tuple[Metric, Decimal | None]] = []
    seen: set[int] = set()
    problems: list[str] = []
    for position, pair in enumerate(targets or (), start=1):
        try:
            metric, value = pair
        except (TypeError, ValueError):
            problems.append(f"Target {position}: give a metric and a target value.")
            continue
        if not isinstance(metric, Metric) or metric.tenant_id != current_tenant_id():
            problems.append(f"Target {position}: choose a metric of this workspace.")
            continue
        if not metric.is_active:
            problems.append(f"Target {position}: {metric.name} is no longer in use in the catalogue.")
            continue
        if metric.pk in seen:
            problems.append(f"Target {position}: {metric.name} is already targeted; each metric is targeted once.")
            continue
        seen.add(metric.pk)
        if value is None or (isinstance(value, str) and not value.strip()):
            cleaned.append((metric, None))
            continue
        try:
            cleaned.append((metric, clean_value(value, metric=metric)))
        except ValidationError as error:
            problems.extend(f"Target {position}: {message}" for message in error.message_dict["value"])
    if problems:
        errors.setdefault("targets", []).extend(problems)
    return cleaned


def _note(note: Any) -> str:
    if note is None:
        return ""
    if not isinstance(note, str):
        raise ValidationError({"note": "Give the note as text."})
    text = note.strip()
    if len(text) > MAX_TEXT_CHARS:
        raise ValidationError({"note": f"Keep the note under {MAX_TEXT_CHARS:,} characters ({len(text):,} now)."})
    return text


def _raise(errors: dict[str, list[str]]) -> None:
    if errors:
        raise ValidationError(errors)


def _targets_text(pairs: Iterable[tuple[Metric, Decimal | None]]) -> list[str]:
    return sorted(f"{metric.key}={'' if value is None else format(value.normalize(), 'f')}" for metric, value in pairs)


def _stored_targets(action: ActionItem) -> list[tuple[Metric, Decimal | None]]:
    return [(target.metric, target.target_value) for target in action.targets.select_related("metric")]


def _write_targets(action: ActionItem, pairs: list[tuple[Metric, Decimal | None]]) -> None:
    ActionTarget.objects.bulk_create(
        ActionTarget(tenant_id=action.tenant_id, action=action, metric=metric, target_value=value)
        for metric, value in pairs
    )


# --- Reading one action for a write -------------------------------------------------------------------


def _locked(action: Any, membership: Membership) -> ActionItem:
    """The action as stored now, locked until the transaction ends; "not found" when not the caller's."""
    ensure_in_workspace(action, ActionItem, missing=NO_SUCH_ACTION)
    ensure_sees_partner(membership, action.partner_id)
    locked = (
        ActionItem.objects.select_for_update(of=("self",))
        .select_related("partner", "owner")
        .filter(pk=action.pk)
        .first()
    )
    if locked is None:
        raise Http404(NO_SUCH_ACTION)
    return locked


def _finished_refusal(action: ActionItem) -> str:
    if action.status == ActionStatus.CANCELLED:
        return "A cancelled action stays cancelled; create a new one."
    return "A done action is finished; reopen it (back to in progress) to change it."


def _history(action: ActionItem, *, kind: str, by: User, body: str = "", **fields: Any) -> ActionUpdate:
    return ActionUpdate.objects.create(action=action, kind=kind, body=body, author=by, **fields)


# --- Create and change ------------------------------------------------------------------------------------


@transaction.atomic
def action_create(
    *,
    partner: Partner,
    by: User,
    title: str,
    due_on: datetime.date,
    owner: User | None = None,
    review: Review | None = None,
    plan: RemediationPlan | None = None,
    description: str = "",
    priority: str = Priority.MEDIUM,
    root_cause: str = RootCause.OTHER,
    impact_estimate: str = "",
    success_criteria: str = "",
    resources: str = "",
    contingency: str = "",
    kind: str = ActionKind.QUICK_WIN,
    targets: Iterable[tuple[Metric, Any]] = (),
) -> ActionItem:
    """One of the program's people records an action for a partner, with its owner, due date and targets.

    Every problem is reported at once, by field, and nothing is stored unless all is well.
    """
    require_internal(by, "Action items are created by the program's people.")
    if not isinstance(partner, Partner) or partner.tenant_id != current_tenant_id():
        raise ValidationError({"partner": "Choose a partner of this workspace."})
    errors: dict[str, list[str]] = {}
    texts = {
        "description": description,
        "impact_estimate": impact_estimate,
        "success_criteria": success_criteria,
        "resources": resources,
        "contingency": contingency,
    }
    values = {
        "title": _text(title, "title", errors, label="title", required=True),
        "due_on": _due_on(due_on, errors, today=timezone.localdate()),
        "owner": _owner(owner, partner, errors),
        "review": _review(review, partner, errors),
        "plan": _plan(plan, partner, errors),
        "priority": _choice(priority, Priority, "priority", errors, label="priority"),
        "root_cause": _choice(root_cause, RootCause, "root_cause", errors, label="root cause"),
        "kind": _choice(kind, ActionKind, "kind", errors, label="kind of action"),
        **{name: _text(value, name, errors, label=name.replace("_", " ")) for name, value in texts.items()},
    }
    pairs = _targets(targets, errors)
    _raise(errors)
    now = timezone.now()
    action = ActionItem.objects.create(partner=partner, created_by=by, created_at=now, updated_at=now, **values)
    _write_targets(action, pairs)
    audit(
        actor=by,
        verb="action.created",
        target=action,
        changes={
            **diff({}, {"partner": partner.name, **{name: value for name, value in values.items() if value}}),
            **({"targets": [None, _targets_text(pairs)]} if pairs else {}),
        },
    )
    return action


@transaction.atomic
def action_update(
    *,
    action: ActionItem,
    by: User,
    title: Any = KEEP,
    description: Any = KEEP,
    owner: Any = KEEP,
    due_on: Any = KEEP,
    priority: Any = KEEP,
    root_cause: Any = KEEP,
    impact_estimate: Any = KEEP,
    success_criteria: Any = KEEP,
    resources: Any = KEEP,
    contingency: Any = KEEP,
    kind: Any = KEEP,
    review: Any = KEEP,
    plan: Any = KEEP,
    targets: Any = KEEP,
) -> ActionItem:
    """Change an unfinished action's fields; only the fields given change, and only if they differ.

    A new due date must not have passed; once it passes the owner is reminded of it, even if the
    old one was reminded already. ``targets`` replaces the whole set of targets.
    """
    membership = require_member(by)
    action = _locked(action, membership)
    fields = {
        "title": title,
        "description": description,
        "owner": owner,
        "due_on": due_on,
        "priority": priority,
        "root_cause": root_cause,
        "impact_estimate": impact_estimate,
        "success_criteria": success_criteria,
        "resources": resources,
        "contingency": contingency,
        "kind": kind,
        "review": review,
        "plan": plan,
        "targets": targets,
    }
    given = {name: value for name, value in fields.items() if value is not KEEP}
    if membership.is_partner_user and set(given) - PARTNER_EDITABLE_FIELDS:
        names = ", ".join(sorted(FIELD_LABELS.get(name, name) for name in set(given) - PARTNER_EDITABLE_FIELDS))
        raise PermissionDenied(
            f"An action's {names} are agreed with the program's people; ask them to change it. "
            "You can update its description, impact, success criteria, resources and contingency."
        )
    if action.is_finished:
        raise ValidationError(_finished_refusal(action), code="finished")
    partner = action.partner
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, Any] = {}
    for name, value in given.items():
        if name == "title":
            cleaned[name] = _text(value, name, errors, label="title", required=True)
        elif name in TEXT_FIELDS:
            cleaned[name] = _text(value, name, errors, label=name.replace("_", " "))
        elif name == "owner":
            cleaned[name] = _owner(value, partner, errors)
        elif name == "due_on":
            # Keeping a due date that has passed is fine; moving it into the past is not.
            cleaned[name] = value if value == action.due_on else _due_on(value, errors, today=timezone.localdate())
        elif name == "priority":
            cleaned[name] = _choice(value, Priority, name, errors, label="priority")
        elif name == "root_cause":
            cleaned[name] = _choice(value, RootCause, name, errors, label="root cause")
        elif name == "kind":
            cleaned[name] = _choice(value, ActionKind, name, errors, label="kind of action")
        elif name == "review":
            cleaned[name] = _review(value, partner, errors)
        elif name == "plan":
            # An action keeps the plan it was linked to, even once the plan closes.
            keeps = value is not None and getattr(value, "pk", None) == action.plan_id
            cleaned[name] = action.plan if keeps else _plan(value, partner, errors)
        elif name == "targets":
            cleaned[name] = _targets(value, errors)
    _raise(errors)

    before = {name: getattr(action, name) for name in cleaned if name != "targets"}
    after = {name: value for name, value in cleaned.items() if name != "targets"}
    changes = diff(before, after)
    if "targets" in cleaned:
        old_targets, new_targets = _targets_text(_stored_targets(action)), _targets_text(cleaned["targets"])
        if old_targets != new_targets:
            changes["targets"] = [old_targets, new_targets]
            action.targets.all().delete()
            _write_targets(action, cleaned["targets"])
    if not changes:
        return action
    for name, value in after.items():
        setattr(action, name, value)
    action.updated_at = timezone.now()
    action.save(update_fields=[*after, "updated_at"])
    audit(actor=by, verb="action.updated", target=action, changes=changes)
    return action


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
    action = _locked(action, membership)
    note = _note(note)
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
    _history(
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


# --- Follow-up ------------------------------------------------------------------------------------------


@transaction.atomic
def action_comment(*, action: ActionItem, by: User, body: str) -> ActionUpdate:
    """Add a comment to an action's history (finished actions too: the discussion may go on)."""
    membership = require_member(by)
    action = _locked(action, membership)
    text = _note(body)
    if not text:
        raise ValidationError({"body": "Write the comment."})
    update = _history(action, kind=UpdateKind.COMMENT, by=by, body=text)
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
    action = _locked(action, membership)
    percent = _percent(percent)
    text = _note(note)
    if action.is_finished:
        raise ValidationError(_finished_refusal(action), code="finished")
    previous = action.progress
    action.progress = percent
    action.updated_at = timezone.now()
    action.save(update_fields=["progress", "updated_at"])
    update = _history(action, kind=UpdateKind.PROGRESS, by=by, body=text, progress=percent)
    audit(
        actor=by,
        verb="action.progress_reported",
        target=action,
        changes={"progress": [previous, percent], **({"note": [None, text]} if text else {})},
    )
    return update


# --- Escalation ------------------------------------------------------------------------------------------


def _escalation_email(action: ActionItem, *, sponsor: User, by: User, reason: str, days_overdue: int) -> Email:
    context = {
        "action": action,
        "partner": action.partner,
        "sponsor": sponsor,
        "by": by,
        "reason": reason,
        "days_overdue": days_overdue,
    }
    return Email(
        subject=subject(f"Escalated to you: {action.title} ({action.partner.name})"),
        body=render_to_string("actions/email/escalated.txt", context),
        recipients=(sponsor.email,),
    )


@transaction.atomic
def action_escalate(*, action: ActionItem, to: User, reason: str, by: User) -> ActionItem:
    """Escalate an unfinished action to an executive sponsor, who is emailed once this commits.

    Only critical actions, or actions overdue by more than ``ESCALATION_OVERDUE_DAYS`` days, are
    escalated; the sponsor is an executive of this workspace. Escalating again names a new sponsor.
    """
    membership = require_internal(by, "Only the program's people escalate an action.")
    action = _locked(action, membership)
    if action.is_finished:
        raise ValidationError(_finished_refusal(action), code="finished")
    errors: dict[str, list[str]] = {}
    reason = _text(reason, "reason", errors, label="reason")
    if not reason and "reason" not in errors:
        errors["reason"] = ["Say why the action is escalated; the sponsor reads this."]
    is_executive = (
        isinstance(to, User)
        and to.pk is not None
        and to.is_active
        and Membership.objects.filter(user=to, role=Role.EXECUTIVE).exists()
    )
    if not is_executive:
        errors.setdefault("to", []).append("Escalate to an executive of this workspace.")
    elif action.escalated_to_id == to.pk:
        errors.setdefault("to", []).append(f"This action is already escalated to {to}.")
    today = timezone.localdate()
    days_overdue = (today - action.due_on).days
    if action.priority != Priority.CRITICAL and days_overdue <= ESCALATION_OVERDUE_DAYS:
        when = f"is {days_overdue} days overdue" if days_overdue > 0 else f"is due on {action.due_on:%d %B %Y}"
        errors.setdefault("__all__", []).append(
            f"Only critical actions, or actions overdue by more than {ESCALATION_OVERDUE_DAYS} days, are escalated; "
            f"this one is {action.get_priority_display().lower()} priority and {when}."
        )
    _raise(errors)
    previous = action.escalated_to
    now = timezone.now()
    action.escalated_to = to
    action.escalated_at = now
    action.escalation_reason = reason
    action.updated_at = now
    action.save(update_fields=["escalated_to", "escalated_at", "escalation_reason", "updated_at"])
    _history(action, kind=UpdateKind.ESCALATION, by=by, body=reason)
    audit(
        actor=by,
        verb="action.escalated",
        target=action,
        changes={"escalated_to": [None if previous is None else previous.email, to.email], "reason": [None, reason]},
    )
    send_on_commit([_escalation_email(action, sponsor=to, by=by, reason=reason, days_overdue=max(days_overdue, 0))])
    return action
