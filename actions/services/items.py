"""Action items: recorded by the program's people, then changed as plans change.

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
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from actions.models import (
    ActionItem,
    ActionKind,
    Priority,
    RemediationPlan,
    RootCause,
)
from actions.services.access import (
    require_internal,
    require_member,
)
from actions.services.checks import (
    clean_choice,
    clean_due_on,
    clean_owner,
    clean_plan,
    clean_review,
    clean_targets,
    clean_text,
    finished_refusal,
    locked_action,
    raise_errors,
    stored_targets,
    targets_text,
    write_targets,
)
from partnerhub.partners.models import Partner
from partnerhub.tenancy.audit import audit, diff
from partnerhub.tenancy.context import current_tenant_id
from partnerhub.tenancy.emails import Email, send_on_commit, subject
from partnerhub.tenancy.models import User
from reviews.models import Review
from scorecards.models import Metric

# What a partner's own people may change on their partner's actions; the rest is agreed with the program.
PARTNER_EDITABLE_FIELDS = frozenset({"description", "impact_estimate", "success_criteria", "resources", "contingency"})
FIELD_LABELS = {"due_on": "due date", "root_cause": "root cause", "kind": "kind", "targets": "targets"}
TEXT_FIELDS = ("description", "impact_estimate", "success_criteria", "resources", "contingency")


class _Keep:
    """The default of ``action_update``'s fields: leave the field as it is."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP: Any = _Keep()


def _assigned_email(action: ActionItem, *, by: User) -> Email | None:
    """Tell a new owner the action is theirs; nobody is told of what they did themselves."""
    owner = action.owner
    if owner is None or owner.pk == by.pk or not owner.email:
        return None
    return Email(
        subject=subject(f"Assigned to you: {action.title} ({action.partner.name})"),
        body=render_to_string("actions/email/assigned.txt", {"action": action, "owner": owner, "by": by}),
        recipients=(owner.email,),
    )


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
        "title": clean_text(title, "title", errors, label="title", required=True),
        "due_on": clean_due_on(due_on, errors, today=timezone.localdate()),
        "owner": clean_owner(owner, partner, errors),
        "review": clean_review(review, partner, errors),
        "plan": clean_plan(plan, partner, errors),
        "priority": clean_choice(priority, Priority, "priority", errors, label="priority"),
        "root_cause": clean_choice(root_cause, RootCause, "root_cause", errors, label="root cause"),
        "kind": clean_choice(kind, ActionKind, "kind", errors, label="kind of action"),
        **{name: clean_text(value, name, errors, label=name.replace("_", " ")) for name, value in texts.items()},
    }
    pairs = clean_targets(targets, errors)
    raise_errors(errors)
    now = timezone.now()
    action = ActionItem.objects.create(partner=partner, created_by=by, created_at=now, updated_at=now, **values)
    write_targets(action, pairs)
    audit(
        actor=by,
        verb="action.created",
        target=action,
        changes={
            **diff({}, {"partner": partner.name, **{name: value for name, value in values.items() if value}}),
            **({"targets": [None, targets_text(pairs)]} if pairs else {}),
        },
    )
    send_on_commit([_assigned_email(action, by=by)])
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
    action = locked_action(action, membership)
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
        raise ValidationError(finished_refusal(action), code="finished")
    partner = action.partner
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, Any] = {}
    for name, value in given.items():
        if name == "title":
            cleaned[name] = clean_text(value, name, errors, label="title", required=True)
        elif name in TEXT_FIELDS:
            cleaned[name] = clean_text(value, name, errors, label=name.replace("_", " "))
        elif name == "owner":
            cleaned[name] = clean_owner(value, partner, errors)
        elif name == "due_on":
            # Keeping a due date that has passed is fine; moving it into the past is not.
            cleaned[name] = value if value == action.due_on else clean_due_on(value, errors, today=timezone.localdate())
        elif name == "priority":
            cleaned[name] = clean_choice(value, Priority, name, errors, label="priority")
        elif name == "root_cause":
            cleaned[name] = clean_choice(value, RootCause, name, errors, label="root cause")
        elif name == "kind":
            cleaned[name] = clean_choice(value, ActionKind, name, errors, label="kind of action")
        elif name == "review":
            cleaned[name] = clean_review(value, partner, errors)
        elif name == "plan":
            # An action keeps the plan it was linked to, even once the plan closes.
            keeps = value is not None and getattr(value, "pk", None) == action.plan_id
            cleaned[name] = action.plan if keeps else clean_plan(value, partner, errors)
        elif name == "targets":
            cleaned[name] = clean_targets(value, errors)
    raise_errors(errors)

    before = {name: getattr(action, name) for name in cleaned if name != "targets"}
    after = {name: value for name, value in cleaned.items() if name != "targets"}
    changes = diff(before, after)
    if "targets" in cleaned:
        old_targets, new_targets = targets_text(stored_targets(action)), targets_text(cleaned["targets"])
        if old_targets != new_targets:
            changes["targets"] = [old_targets, new_targets]
            action.targets.all().delete()
            write_targets(action, cleaned["targets"])
    if not changes:
        return action
    for name, value in after.items():
        setattr(action, name, value)
    action.updated_at = timezone.now()
    action.save(update_fields=[*after, "updated_at"])
    audit(actor=by, verb="action.updated", target=action, changes=changes)
    if "owner" in changes:
        send_on_commit([_assigned_email(action, by=by)])
    return action
