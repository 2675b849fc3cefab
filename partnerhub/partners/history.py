"""A partner's recent changes from the audit log, worded for people rather than machines."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import FieldDoesNotExist

from partnerhub.partners.models import LifecycleStage, Partner, PartnerStatus, PartnerType
from partnerhub.partners.selectors import partner_recent_changes
from partnerhub.tenancy.models import Membership, User

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


def _related_names(pairs) -> dict[str, dict[str, str]]:
    """Names for the type and manager ids that partner events record, in two queries at most.

    Only people who are members of this workspace are named; anyone else shows as a former member.
    """
    ids: dict[str, set[int]] = {"partner_type": set(), "manager": set()}
    for _event, field, pair in pairs:
        if field in ids:
            ids[field].update(int(value) for value in pair if str(value).isdigit())
    names: dict[str, dict[str, str]] = {"partner_type": {}, "manager": {}}
    if ids["partner_type"]:
        names["partner_type"] = {
            str(pk): name
            for pk, name in PartnerType.objects.filter(pk__in=ids["partner_type"]).values_list("pk", "name")
        }
    if ids["manager"]:
        members = User.objects.filter(pk__in=ids["manager"]).filter(pk__in=Membership.objects.values("user_id"))
        names["manager"] = {str(user.pk): user.get_full_name() for user in members}
    return names


def _display_value(field: str, value: Any, names: dict[str, dict[str, str]]) -> str:
    if value in (None, "", [], {}):
        return "—"
    if field in names:
        return names[field].get(str(value), "a former member" if field == "manager" else "a removed type")
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
    names = _related_names(pairs)
    fields_by_event: dict[int, list[dict]] = {}
    for event, field, (old, new) in pairs:
        fields_by_event.setdefault(event.pk, []).append(
            {
                "label": "Type" if field == "partner_type" else _field_label(field),
                "old": _display_value(field, old, names),
                "new": _display_value(field, new, names),
            }
        )
    return [
        {"event": event, "action": AUDIT_VERBS.get(event.verb, event.verb), "fields": fields_by_event.get(event.pk, [])}
        for event in events
    ]


def partner_change_history(partner: Partner, *, limit: int = 10) -> list[dict]:
    """The partner's latest audit events, each with who acted and every field's old and new value."""
    return _change_rows(partner_recent_changes(partner, limit=limit))
