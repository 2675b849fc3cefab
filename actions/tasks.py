"""Action tasks: thin wrappers over the services, safe to run twice or to redeliver.

Retries, ``acks_late`` and time limits come from ``tenant_task``; each service is idempotent, so a
redelivered task changes nothing the first delivery did.
"""

from __future__ import annotations

import datetime

from celery import shared_task
from django.utils import timezone

from partnerhub.tenancy.tasks import TASK_DEFAULTS, tenant_task


@tenant_task(name="actions.overdue_reminders_task")
def overdue_reminders_task(*, tenant_id: int, today: str | None = None) -> dict:
    """Send the tenant's overdue digest (for ``today``, an ISO date, or the current day)."""
    from actions.services.reminders import overdue_reminders_send

    day = datetime.date.fromisoformat(today) if today else timezone.localdate()
    sent = overdue_reminders_send(today=day)
    return {"emails": sent.emails, "reminders": sent.reminders}


@shared_task(name="actions.overdue_reminders_fanout_task", **TASK_DEFAULTS)
def overdue_reminders_fanout_task() -> int:
    """Celery beat's daily entry point: one digest task per active tenant; reads no tenant data."""
    from partnerhub.tenancy.models import Tenant

    # Tenant is global (not tenant-owned): listing tenants needs no scope.
    tenant_ids = list(Tenant.objects.filter(is_active=True).order_by("pk").values_list("pk", flat=True))
    for tenant_id in tenant_ids:
        overdue_reminders_task.delay(tenant_id=tenant_id)
    return len(tenant_ids)


@tenant_task(name="actions.plans_suggest_task")
def plans_suggest_task(*, tenant_id: int, period: str) -> list[int]:
    """Suggest remediation plans from a period's scores, after its recompute; returns the plans created."""
    from actions.services.plans import plans_suggest

    return [plan.pk for plan in plans_suggest(period=period)]


@tenant_task(name="actions.milestones_evaluate_task")
def milestones_evaluate_task(*, tenant_id: int, period: str) -> dict:
    """Judge the open plans' milestones against the values observed, after a period's recompute."""
    from actions.services.milestones import milestones_evaluate

    result = milestones_evaluate(period=period)
    return {"met": result.met, "missed": result.missed, "pending_again": result.pending_again}
