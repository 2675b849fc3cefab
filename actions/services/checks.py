"""What every write to an action checks: its fields one by one, and the action as stored now.

The ``clean_*`` functions collect problems by field into ``errors`` so a form or an API call hears
of every problem at once; ``raise_errors`` then refuses the write. ``locked_action`` reads the
action for a write, locked until the transaction ends, and answers "not found" for an action the
caller may not see.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.http import Http404

from actions.models import (
    ActionItem,
    ActionStatus,
    ActionTarget,
    ActionUpdate,
    RemediationPlan,
)
from actions.services.access import (
    NO_SUCH_ACTION,
    ensure_in_workspace,
    ensure_sees_partner,
    is_eligible_person,
)
from partnerhub.partners.models import Partner
from partnerhub.tenancy.context import current_tenant_id
from partnerhub.tenancy.models import Membership, User
from reviews.models import Review
from scorecards.models import Metric
from scorecards.services.observations import clean_value

MAX_TITLE_CHARS = 200
MAX_TEXT_CHARS = 10_000


# --- Fields ----------------------------------------------------------------------------------------------


def clean_text(
    value: Any,
    field: str,
    errors: dict[str, list[str]],
    *,
    label: str = "",
    required: bool = False,
    missing: str = "",
) -> str:
    """Stripped text within its length limit; ``missing`` (or "Give the action a <label>.") when required and blank."""
    if value is None:
        value = ""
    it = f"the {label}" if label else "it"
    if not isinstance(value, str):
        errors.setdefault(field, []).append(f"Give {it} as text.")
        return ""
    text = value.strip()
    limit = MAX_TITLE_CHARS if field == "title" else MAX_TEXT_CHARS
    if (required or missing) and not text:
        errors.setdefault(field, []).append(missing or f"Give the action a {label}.")
    elif len(text) > limit:
        errors.setdefault(field, []).append(f"Keep {it} under {limit:,} characters ({len(text):,} now).")
    return text


def clean_choice(value: Any, choices: type, field: str, errors: dict[str, list[str]], *, label: str) -> str:
    if value not in choices.values:
        allowed = ", ".join(str(choice_label).lower() for choice_label in choices.labels)
        errors.setdefault(field, []).append(f"“{value}” is not a {label}; choose one of: {allowed}.")
        return ""
    return str(value)


def clean_due_on(value: Any, errors: dict[str, list[str]], *, today: datetime.date) -> datetime.date | None:
    if not isinstance(value, datetime.date) or isinstance(value, datetime.datetime):
        errors.setdefault("due_on", []).append("Give the due date as a day.")
        return None
    if value < today:
        errors.setdefault("due_on", []).append(
            f"{value:%d %B %Y} has passed; an action is due today or later (today is {today:%d %B %Y})."
        )
        return None
    return value


def clean_owner(owner: Any, partner: Partner, errors: dict[str, list[str]]) -> User | None:
    if owner is None:
        return None
    if not is_eligible_person(owner, partner):
        errors.setdefault("owner", []).append(
            f"The owner must be one of the program's people or a user of {partner.name}; "
            f"{owner if isinstance(owner, User) else 'this person'} is neither."
        )
        return None
    return owner


def clean_review(review: Any, partner: Partner, errors: dict[str, list[str]]) -> Review | None:
    if review is None:
        return None
    if not isinstance(review, Review) or review.tenant_id != current_tenant_id() or review.partner_id != partner.pk:
        errors.setdefault("review", []).append(f"Link a review of {partner.name}.")
        return None
    return review


def clean_plan(plan: Any, partner: Partner, errors: dict[str, list[str]]) -> RemediationPlan | None:
    if plan is None:
        return None
    if not isinstance(plan, RemediationPlan) or plan.tenant_id != current_tenant_id() or plan.partner_id != partner.pk:
        errors.setdefault("plan", []).append(f"Link a remediation plan of {partner.name}.")
        return None
    if not plan.is_open:
        errors.setdefault("plan", []).append(f"The plan is {plan.get_status_display().lower()}; link an open plan.")
        return None
    return plan


def clean_targets(targets: Any, errors: dict[str, list[str]]) -> list[tuple[Metric, Decimal | None]]:
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


def clean_note(note: Any) -> str:
    if note is None:
        return ""
    if not isinstance(note, str):
        raise ValidationError({"note": "Give the note as text."})
    text = note.strip()
    if len(text) > MAX_TEXT_CHARS:
        raise ValidationError({"note": f"Keep the note under {MAX_TEXT_CHARS:,} characters ({len(text):,} now)."})
    return text


def raise_errors(errors: dict[str, list[str]]) -> None:
    if errors:
        raise ValidationError(errors)


def targets_text(pairs: Iterable[tuple[Metric, Decimal | None]]) -> list[str]:
    return sorted(f"{metric.key}={'' if value is None else format(value.normalize(), 'f')}" for metric, value in pairs)


def stored_targets(action: ActionItem) -> list[tuple[Metric, Decimal | None]]:
    return [(target.metric, target.target_value) for target in action.targets.select_related("metric")]


def write_targets(action: ActionItem, pairs: list[tuple[Metric, Decimal | None]]) -> None:
    ActionTarget.objects.bulk_create(
        ActionTarget(tenant_id=action.tenant_id, action=action, metric=metric, target_value=value)
        for metric, value in pairs
    )


# --- Reading one action for a write -------------------------------------------------------------------


def locked_action(action: Any, membership: Membership) -> ActionItem:
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


def finished_refusal(action: ActionItem) -> str:
    if action.status == ActionStatus.CANCELLED:
        return "A cancelled action stays cancelled; create a new one."
    return "A done action is finished; reopen it (back to in progress) to change it."


def add_history(action: ActionItem, *, kind: str, by: User, body: str = "", **fields: Any) -> ActionUpdate:
    return ActionUpdate.objects.create(action=action, kind=kind, body=body, author=by, **fields)
