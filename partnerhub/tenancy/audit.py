"""Writing audit events: called by every service that changes partners, memberships or keys."""

from __future__ import annotations

import datetime
import decimal
from typing import Any

from django.db import models

from partnerhub.tenancy.models import ApiKey, AuditEvent, User


def _plain(value: Any) -> Any:
    if isinstance(value, models.Model):
        return str(value)
    if isinstance(value, datetime.date | datetime.datetime | decimal.Decimal):
        return str(value)
    return value


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    """Field-by-field changes as {field: [old, new]}, JSON-safe."""
    return {
        key: [_plain(before.get(key)), _plain(after.get(key))]
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    }


def actor_label(actor: User | ApiKey | None) -> str:
    if actor is None:
        return "system"
    if isinstance(actor, ApiKey):
        return f"API key “{actor.name}” ({actor.prefix})"
    return actor.email


def audit(*, actor: User | ApiKey | None, verb: str, target: models.Model, changes: dict | None = None) -> AuditEvent:
    """Append one audit event in the active tenant."""
    return AuditEvent.objects.create(
        actor=actor if isinstance(actor, User) else None,
        actor_label=actor_label(actor),
        verb=verb,
        target_type=target._meta.label_lower,
        target_id=str(target.pk),
        target_repr=str(target)[:300],
        changes=changes or {},
    )
