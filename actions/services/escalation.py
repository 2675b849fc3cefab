"""Escalation of an action to an executive sponsor, for critical or long-overdue actions."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from actions.models import (
    ActionItem,
    Priority,
    UpdateKind,
)
from actions.services.access import (
    require_internal,
)
from actions.services.checks import add_history, clean_text, finished_refusal, locked_action, raise_errors
from partnerhub.tenancy.audit import audit
from partnerhub.tenancy.emails import Email, send_on_commit, subject
from partnerhub.tenancy.models import Membership, User
from partnerhub.tenancy.roles import Role

# An action that is not critical may be escalated once it is overdue by more than this many days.
ESCALATION_OVERDUE_DAYS = 14


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
    action = locked_action(action, membership)
    if action.is_finished:
        raise ValidationError(finished_refusal(action), code="finished")
    errors: dict[str, list[str]] = {}
    reason = clean_text(reason, "reason", errors, label="reason")
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
    raise_errors(errors)
    previous = action.escalated_to
    now = timezone.now()
    action.escalated_to = to
    action.escalated_at = now
    action.escalation_reason = reason
    action.updated_at = now
    action.save(update_fields=["escalated_to", "escalated_at", "escalation_reason", "updated_at"])
    add_history(action, kind=UpdateKind.ESCALATION, by=by, body=reason)
    audit(
        actor=by,
        verb="action.escalated",
        target=action,
        changes={"escalated_to": [None if previous is None else previous.email, to.email], "reason": [None, reason]},
    )
    send_on_commit([_escalation_email(action, sponsor=to, by=by, reason=reason, days_overdue=max(days_overdue, 0))])
    return action
