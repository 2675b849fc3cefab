"""A partner's recent changes from the audit log, worded for people rather than machines."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import FieldDoesNotExist

from partnerhub.partners.models import LifecycleStage, Partner, PartnerStatus
from partnerhub.partners.selectors import partner_recent_changes

AUDIT_VERBS = {"partner.created": "added this partner", "partner.updated": "changed"}


def _pairs(events) -> list[tuple[Any, str, list]]:
    """(event, field, [old, new]) for every well-formed field change in the events."""
    pairs = []
    for event in events:
        changes = event.changes if isinstance(event.changes, dict) else {}
        for field, pair in changes.items():
            if isinstance(pair, list | tuple) and len(pair) == 2:
                pairs.append((event, field, list(pair)))
    return pairs


def _display_value(field: str, value: Any) -> str:
    # Events name related rows as they were (type name, manager email), so nothing is looked up.
    if value in (None, "", [], {}):
        return "—"
    if field == "lifecycle_stage" and value in LifecycleStage.values:
        return LifecycleStage(value).label
    if field == "status" and value in PartnerStatus.values:
        return PartnerStatus(value).label
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    if isinstance(value, dict):
        return ", ".join(f"{key}={item}" for key, item in value.items())
    return str(value)


def _field_label(field: str) -> str:
    try:
        label = str(Partner._meta.get_field(field).verbose_name)
    except FieldDoesNotExist:  # a field since removed from the model still shows in old events
        label = field.replace("_", " ")
    return label[:1].upper() + label[1:]


def _change_rows(events) -> list[dict]:
    """The audit events as the “Recent changes” panel shows them: who, what, and each field's old → new."""
    pairs = _pairs(events)
    fields_by_event: dict[int, list[dict]] = {}
    for event, field, (old, new) in pairs:
        fields_by_event.setdefault(event.pk, []).append(
            {
                "label": "Type" if field == "partner_type" else _field_label(field),
                "old": _display_value(field, old),
                "new": _display_value(field, new),
            }
        )
    return [
        {"event": event, "action": AUDIT_VERBS.get(event.verb, event.verb), "fields": fields_by_event.get(event.pk, [])}
        for event in events
    ]


def partner_change_history(partner: Partner, *, limit: int = 10) -> list[dict]:
    """The partner's latest audit events, each with who acted and every field's old and new value."""
    return _change_rows(partner_recent_changes(partner, limit=limit))
