"""Forms of the action and remediation pages. They parse input; ``actions.services`` validates and writes.

Choices are built from what the page may offer (eligible owners and leaders of the partner, the
executives of the workspace, metrics in use); the services check the same again, so a forged choice
is refused with the service's own words.
"""

from __future__ import annotations

import hashlib
import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q

from actions.models import (
    ActionItem,
    ActionKind,
    CheckpointOutcome,
    Comparison,
    PlanStatus,
    Priority,
    RemediationPlan,
    RootCause,
)
from actions.services.access import eligible_people
from partnerhub.partners.models import Partner
from partnerhub.tenancy.models import Membership, User
from partnerhub.tenancy.roles import Role
from scorecards.models import Metric

TARGET_ROWS = 3
MAX_TEXT = 20_000


class ServiceErrorsMixin:
    """Put a service's ValidationError on the form: by field where the form has it, else on the form."""

    field_aliases: dict[str, str] = {}

    def add_service_errors(self, error: ValidationError) -> None:
        if hasattr(error, "error_dict"):
            for name, messages in error.message_dict.items():
                name = self.field_aliases.get(name, name)
                for message in messages:
                    self.add_error(name if name in self.fields else None, message)
        else:
            for message in error.messages:
                self.add_error(None, message)

    def all_messages(self) -> list[str]:
        return [message for messages in self.errors.values() for message in messages]


def _date_input() -> forms.DateInput:
    return forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def _text(label: str, *, rows: int = 3, help_text: str = "") -> forms.CharField:
    # Bounds and "required" are the service's, so the page and the API say the same.
    return forms.CharField(
        label=label,
        required=False,
        max_length=MAX_TEXT,
        help_text=help_text,
        widget=forms.Textarea(attrs={"rows": rows}),
    )


class PersonChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: User) -> str:
        return obj.get_full_name() or obj.email


def eligible_users(partner: Partner | None):
    """The people who may own an action of ``partner`` (or lead its plan); the program's people without one."""
    memberships = (
        Membership.objects.filter(eligible_people(partner))
        if partner
        else Membership.objects.filter(role__in=[Role.ADMIN, Role.PARTNER_MANAGER, Role.EXECUTIVE])
    )
    return User.objects.filter(pk__in=memberships.values("user_id"), is_active=True).order_by("full_name", "email")


def executives():
    return User.objects.filter(
        pk__in=Membership.objects.filter(role=Role.EXECUTIVE).values("user_id"), is_active=True
    ).order_by("full_name", "email")


class ActionFieldsForm(ServiceErrorsMixin, forms.Form):
    """The fields of an action a person fills in, shared by creating and editing one."""

    title = forms.CharField(label="Title", required=False, max_length=MAX_TEXT)
    owner = PersonChoiceField(
        queryset=User.objects.none(),
        required=False,
        label="Owner",
        empty_label="Nobody yet",
        help_text="One of the program's people or a user of the partner.",
    )
    due_on = forms.DateField(label="Due on", widget=_date_input())
    priority = forms.ChoiceField(choices=Priority.choices, initial=Priority.MEDIUM, label="Priority")
    kind = forms.ChoiceField(choices=ActionKind.choices, initial=ActionKind.QUICK_WIN, label="Kind")
    root_cause = forms.ChoiceField(choices=RootCause.choices, initial=RootCause.OTHER, label="Root cause")
    plan = forms.ModelChoiceField(
        queryset=RemediationPlan.objects.none(), required=False, label="Remediation plan", empty_label="None"
    )
    description = _text("Description")
    impact_estimate = _text("Impact estimate", help_text="What changes if it is done, and by how much.")
    success_criteria = _text("Success criteria")
    resources = _text("Resources", help_text="People, budget and material it needs.")
    contingency = _text("Contingency", help_text="What happens if it slips.")

    target_row_count = 0

    def add_target_rows(self, metrics, count: int) -> None:
        """``count`` rows of a metric and the value it aims for."""
        self.target_row_count = count
        for row in range(1, count + 1):
            self.fields[f"target_metric_{row}"] = forms.ModelChoiceField(
                queryset=metrics, required=False, label=f"Target metric {row}", empty_label="No metric"
            )
            self.fields[f"target_value_{row}"] = forms.CharField(
                required=False, max_length=40, label=f"Target value {row}"
            )

    def target_rows(self):
        return [
            (self[f"target_metric_{row}"], self[f"target_value_{row}"]) for row in range(1, self.target_row_count + 1)
        ]


class ActionCreateForm(ActionFieldsForm):
    """A new action for a partner: what, who, when, why, and the metrics it means to move."""

    partner = forms.ModelChoiceField(queryset=Partner.objects.none(), label="Partner")
    field_order = ["partner"]

    def __init__(self, *args, partner: Partner | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.chosen_partner = partner
        self.fields["partner"].queryset = Partner.objects.order_by("name")
        self.fields["owner"].queryset = eligible_users(partner)
        self.fields["plan"].queryset = (
            RemediationPlan.objects.open().filter(partner=partner) if partner else RemediationPlan.objects.none()
        )
        self.add_target_rows(Metric.objects.filter(is_active=True).order_by("name"), TARGET_ROWS)

    def targets(self) -> list[tuple[Metric, str]]:
        pairs = []
        for row in range(1, self.target_row_count + 1):
            metric = self.cleaned_data.get(f"target_metric_{row}")
            value = self.cleaned_data.get(f"target_value_{row}", "")
            if metric is not None:
                pairs.append((metric, value))
            elif value.strip():
                self.add_error(f"target_metric_{row}", "Choose the metric this target value is for.")
        return pairs

    def save(self, *, by: User):
        """The new action; None with the form's errors set when it cannot be made."""
        from actions.services.items import action_create

        if not self.is_valid():
            return None
        data = self.cleaned_data
        targets = self.targets()
        if self.errors:
            return None
        try:
            return action_create(
                partner=data["partner"],
                by=by,
                title=data["title"],
                due_on=data["due_on"],
                owner=data["owner"],
                plan=data["plan"],
                description=data["description"],
                priority=data["priority"],
                root_cause=data["root_cause"],
                impact_estimate=data["impact_estimate"],
                success_criteria=data["success_criteria"],
                resources=data["resources"],
                contingency=data["contingency"],
                kind=data["kind"],
                targets=targets,
            )
        except ValidationError as error:
            self.add_service_errors(error)
            return None


# What the edit page calls each field in its "Saved: ..." message.
EDIT_LABELS = {
    "title": "title",
    "owner": "owner",
    "due_on": "due date",
    "priority": "priority",
    "kind": "kind",
    "root_cause": "root cause",
    "plan": "remediation plan",
    "description": "description",
    "impact_estimate": "impact estimate",
    "success_criteria": "success criteria",
    "resources": "resources",
    "contingency": "contingency",
    "targets": "targets",
}
PARTNER_EDIT_FIELDS = ("description", "impact_estimate", "success_criteria", "resources", "contingency")
_TARGET_POSITION = re.compile(r"^Target (\d+):")


def _lines(text: str) -> str:
    # Browsers send a textarea's line breaks as CRLF; compared as LF, untouched text is not "changed".
    return (text or "").replace("\r\n", "\n")


def _comparable_targets(pairs) -> list[list[Any]]:
    return sorted([metric.pk, _decimal_text(value) or ""] for metric, value in pairs)


def _fingerprint(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _seen_token(values: dict[str, Any]) -> str:
    return json.dumps({name: _fingerprint(value) for name, value in values.items()}, separators=(",", ":"))


def _display(action: ActionItem, name: str) -> str:
    """A field's stored value in words, for the message about a change made meanwhile."""
    if name == "targets":
        targets = [f"{t.metric.name} {_decimal_text(t.target_value) or '(no value)'}" for t in action.targets.all()]
        return "“" + ", ".join(targets) + "”" if targets else "no targets"
    value = getattr(action, name)
    if name == "due_on":
        return f"{value:%d %B %Y}"
    if name in ("priority", "kind", "root_cause"):
        return f"“{getattr(action, f'get_{name}_display')()}”"
    if value is None or value == "":
        return "empty"
    return f"“{value}”"


def _decimal_text(value: Any) -> str | None:
    """A target value as the service would compare it; None when blank, the raw text when not a number."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    text = str(value).strip()
    if not text:
        return None
    try:
        return format(Decimal(text).normalize(), "f")
    except InvalidOperation:
        return text


class ActionEditForm(ActionFieldsForm):
    """An unfinished action's fields, prefilled; ``changes()`` gives ``action_update`` only what was changed.

    The partner stays as it is. The program's people change every field; a partner's own users
    (``partner_user=True``) get only the working notes, as the service allows.
    """

    # The action's last change as this form showed it, so a save never quietly undoes a later change.
    seen = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, action: ActionItem, partner_user: bool = False, **kwargs):
        self.action = action
        self.partner_user = partner_user
        self.stored_targets = [(t.metric, t.target_value) for t in action.targets.all()]
        kwargs["initial"] = self._initial()
        super().__init__(*args, **kwargs)
        if partner_user:
            for name in list(self.fields):
                if name not in PARTNER_EDIT_FIELDS and name != "seen":
                    del self.fields[name]
            return
        partner = action.partner
        # The current owner and plan stay choosable even when no longer eligible or open: keeping
        # them is not a change, and the service checks only what changes.
        eligible = Membership.objects.filter(eligible_people(partner)).values("user_id")
        self.fields["owner"].queryset = User.objects.filter(
            Q(pk__in=eligible, is_active=True) | Q(pk=action.owner_id)
        ).order_by("full_name", "email")
        self.fields["plan"].queryset = RemediationPlan.objects.filter(
            Q(pk__in=RemediationPlan.objects.open().filter(partner=partner).values("pk")) | Q(pk=action.plan_id)
        ).order_by("-opened_at", "-pk")
        metrics = Metric.objects.filter(Q(is_active=True) | Q(pk__in=[m.pk for m, _ in self.stored_targets]))
        # Room for every stored target, even when more were set through the API than the page shows by default.
        self.add_target_rows(metrics.order_by("name"), max(TARGET_ROWS, len(self.stored_targets)))

    def _initial(self) -> dict[str, Any]:
        action = self.action
        initial: dict[str, Any] = {
            "title": action.title,
            "owner": action.owner_id,
            "due_on": action.due_on,
            "priority": action.priority,
            "kind": action.kind,
            "root_cause": action.root_cause,
            "plan": action.plan_id,
            **{name: getattr(action, name) for name in PARTNER_EDIT_FIELDS},
        }
        for row, (metric, value) in enumerate(self.stored_targets, start=1):
            initial[f"target_metric_{row}"] = metric.pk
            initial[f"target_value_{row}"] = _decimal_text(value) or ""
        initial["seen"] = _seen_token(self._stored_values())
        return initial

    # --- What changed, and who changed it ---------------------------------------------------------------
    #
    # The form carries, in ``seen``, a fingerprint of every field as it showed it. On saving, a field
    # the person changed is saved; a field they left as shown keeps whatever is stored now, even if
    # someone else changed it meanwhile; a field both changed, differently, is a conflict the person
    # settles by saving again. Without the fingerprint (a form from elsewhere), every field that
    # differs from what is stored is saved.

    def _editable(self) -> list[str]:
        if self.partner_user:
            return list(PARTNER_EDIT_FIELDS)
        return ["title", "owner", "due_on", "priority", "kind", "root_cause", "plan", *PARTNER_EDIT_FIELDS, "targets"]

    def _stored_values(self) -> dict[str, Any]:
        action = self.action
        values = {
            "title": action.title,
            "owner": action.owner_id,
            "due_on": action.due_on.isoformat(),
            "priority": action.priority,
            "kind": action.kind,
            "root_cause": action.root_cause,
            "plan": action.plan_id,
            **{name: _lines(getattr(action, name)) for name in PARTNER_EDIT_FIELDS},
            "targets": _comparable_targets(self.stored_targets),
        }
        return {name: values[name] for name in self._editable()}

    def _posted_values(self, pairs: list[tuple[Metric, str]]) -> dict[str, Any]:
        data = self.cleaned_data
        values = {
            "title": data.get("title"),
            "owner": getattr(data.get("owner"), "pk", None),
            "due_on": data["due_on"].isoformat() if data.get("due_on") else None,
            "priority": data.get("priority"),
            "kind": data.get("kind"),
            "root_cause": data.get("root_cause"),
            "plan": getattr(data.get("plan"), "pk", None),
            **{name: _lines(data.get(name, "")) for name in PARTNER_EDIT_FIELDS},
            "targets": _comparable_targets(pairs),
        }
        return {name: values[name] for name in self._editable()}

    def _seen(self) -> dict[str, str] | None:
        try:
            seen = json.loads(self.cleaned_data.get("seen") or "")
        except ValueError:
            return None
        return seen if isinstance(seen, dict) and all(isinstance(v, str) for v in seen.values()) else None

    def _targets(self) -> list[tuple[Metric, str]]:
        pairs, self._pair_rows = [], []
        for row in range(1, self.target_row_count + 1):
            metric = self.cleaned_data.get(f"target_metric_{row}")
            value = self.cleaned_data.get(f"target_value_{row}", "")
            if metric is not None:
                pairs.append((metric, value))
                self._pair_rows.append(row)
            elif value.strip():
                self.add_error(f"target_metric_{row}", "Choose the metric this target value is for.")
        return pairs

    def changes(self) -> dict[str, Any]:
        """The fields to save, as ``action_update`` takes them; fields both people changed go to ``conflicts``.

        Call after ``is_valid()``. A field left as it was is not given, so the service keeps it as
        it is: a due date that has passed stays, an owner no longer eligible stays.
        """
        pairs = [] if self.partner_user else self._targets()
        posted, stored, seen = self._posted_values(pairs), self._stored_values(), self._seen()
        self.conflicts: list[str] = []
        changed: dict[str, Any] = {}
        for name, value in posted.items():
            if value == stored[name]:
                continue
            if seen is not None:
                if seen.get(name) == _fingerprint(value):
                    continue  # left as shown; what is stored now stays
                if seen.get(name) != _fingerprint(stored[name]):
                    self.conflicts.append(name)
                    continue
            if name == "targets":
                changed[name] = pairs
            elif name in PARTNER_EDIT_FIELDS:
                changed[name] = value
            else:
                changed[name] = self.cleaned_data[name]
        return changed

    def show_conflicts(self) -> None:
        """Name each field someone else changed meanwhile, keep this person's value there, and show the rest as stored.

        The fingerprint now stands for what is stored, so saving again keeps this person's values.
        """
        stored, seen = self._stored_values(), self._seen() or {}
        posted_fingerprints = {
            name: _fingerprint(value) for name, value in self._posted_values(self._targets_quietly()).items()
        }
        fresh = self._initial()
        data = self.data.copy()
        for name in self._editable():
            if name in self.conflicts:
                now = _display(self.action, name)
                self.add_error(
                    None if name == "targets" else name,
                    f"Changed by someone else since you opened this page; it is now {now}. "
                    "Save again to replace it with yours.",
                )
            elif posted_fingerprints.get(name) == seen.get(name):
                # Untouched here: show what is stored now, so saving again does not undo the other change.
                keys = [key for key in fresh if key.startswith("target_")] if name == "targets" else [name]
                if name == "targets":
                    for key in list(data):
                        if key.startswith("target_"):
                            del data[key]
                for key in keys:
                    data[self.add_prefix(key)] = "" if fresh[key] is None else str(fresh[key])
        data[self.add_prefix("seen")] = _seen_token(stored)
        self.data = data

    def _targets_quietly(self) -> list[tuple[Metric, str]]:
        return [
            (self.cleaned_data[f"target_metric_{row}"], self.cleaned_data.get(f"target_value_{row}", ""))
            for row in range(1, self.target_row_count + 1)
            if self.cleaned_data.get(f"target_metric_{row}") is not None
        ]

    def add_service_errors(self, error: ValidationError) -> None:
        """As the mixin, with a target's problem put next to the row it came from."""
        if hasattr(error, "error_dict") and "targets" in error.error_dict:
            messages = error.message_dict
            for message in messages.pop("targets"):
                match = _TARGET_POSITION.match(message)
                position = int(match.group(1)) if match else 0
                rows = getattr(self, "_pair_rows", [])
                row = rows[position - 1] if 0 < position <= len(rows) else 1
                self.add_error(f"target_metric_{row}", message)
            error = ValidationError(messages) if messages else None
        if error is not None:
            super().add_service_errors(error)


class CommentForm(ServiceErrorsMixin, forms.Form):
    body = _text("Comment", rows=3)


class ProgressForm(ServiceErrorsMixin, forms.Form):
    percent = forms.CharField(
        label="Progress (%)", max_length=8, widget=forms.NumberInput(attrs={"min": 0, "max": 100})
    )
    note = _text("What moved", rows=2)


class TransitionForm(ServiceErrorsMixin, forms.Form):
    to = forms.CharField(max_length=32)
    note = _text("Note", rows=2, help_text="Required to block, cancel or reopen.")
    field_aliases = {"to": None}


class EscalateForm(ServiceErrorsMixin, forms.Form):
    to = PersonChoiceField(queryset=User.objects.none(), label="Executive sponsor")
    reason = _text("Why it is escalated", rows=3)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["to"].queryset = executives()


class PlanActivateForm(ServiceErrorsMixin, forms.Form):
    leader = PersonChoiceField(queryset=User.objects.none(), label="Leader", required=False)
    root_cause = forms.ChoiceField(choices=[("", "Choose…"), *RootCause.choices], label="Root cause", required=False)
    root_cause_analysis = _text("Root-cause analysis", rows=5, help_text="What went wrong, and why.")

    def __init__(self, *args, partner: Partner, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["leader"].queryset = eligible_users(partner)


class MilestoneForm(ServiceErrorsMixin, forms.Form):
    title = forms.CharField(label="Title", required=False, max_length=MAX_TEXT)
    due_on = forms.DateField(label="Due on", widget=_date_input())
    period = forms.CharField(
        label="Period", max_length=20, help_text="The period whose value is checked, e.g. 2026-Q3."
    )
    metric = forms.ModelChoiceField(queryset=Metric.objects.none(), label="Metric")
    comparison = forms.ChoiceField(choices=Comparison.choices, initial=Comparison.AT_LEAST, label="Comparison")
    target_value = forms.CharField(label="Target value", max_length=40)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["metric"].queryset = Metric.objects.filter(is_active=True).order_by("name")


class CheckpointForm(ServiceErrorsMixin, forms.Form):
    held_on = forms.DateField(label="Held on", widget=_date_input())
    outcome = forms.ChoiceField(choices=CheckpointOutcome.choices, label="Outcome")
    note = _text("Note", rows=3, help_text="Required when the plan is at risk or off track.")


class PlanCloseForm(ServiceErrorsMixin, forms.Form):
    status = forms.ChoiceField(
        choices=[(PlanStatus.COMPLETED, "Completed"), (PlanStatus.CANCELLED, "Cancelled")], label="Close as"
    )
    note = _text("Closing note", rows=3, help_text="Required to cancel.")
