"""Scoring tasks: thin wrappers over the recompute services, safe to redeliver."""

from __future__ import annotations

from celery import shared_task

from partnerhub.tenancy.tasks import TASK_DEFAULTS, tenant_task

# A full recompute of a large tenant takes tens of seconds; give it room beyond the default.
RECOMPUTE_LIMITS = {"soft_time_limit": 1500, "time_limit": 1800}


@tenant_task(name="scorecards.score_recompute_task", **RECOMPUTE_LIMITS)
def score_recompute_task(*, tenant_id: int, run_id: int) -> dict | None:
    """Run a queued recompute. A run already done is left alone; a redelivered one restarts safely."""
    from scorecards.services.recompute import run_recompute

    run = run_recompute(run_id=run_id)
    if run is None:
        return None
    return {"run_id": run.pk, "status": run.status, "scores_written": run.scores_written}


@tenant_task(name="scorecards.recompute_partner_task")
def recompute_partner_task(*, tenant_id: int, partner_id: int, period: str, reason: str = "correction") -> int:
    """Recompute one partner's score for a period (after a correction); returns revisions written."""
    from partnerhub.partners.models import Partner
    from scorecards.services.recompute import recompute_partner

    partner = Partner.objects.select_related("partner_type").filter(pk=partner_id).first()
    if partner is None:
        return 0
    summary = recompute_partner(partner=partner, period=period, reason=reason)
    return summary.written if summary else 0


@tenant_task(name="scorecards.nightly_recompute_task")
def nightly_recompute_task(*, tenant_id: int) -> list[int]:
    """Queue the tenant's nightly recomputes (coalesced with any already queued)."""
    from scorecards.services.recompute import nightly_recompute

    return [run.pk for run in nightly_recompute()]


@shared_task(name="scorecards.nightly_recompute_fanout_task", **TASK_DEFAULTS)
def nightly_recompute_fanout_task() -> int:
    """Celery beat's nightly entry point: one task per active tenant; touches no tenant data itself."""
    from partnerhub.tenancy.models import Tenant

    # Tenant is global (not tenant-owned): listing tenants needs no scope.
    tenant_ids = list(Tenant.objects.filter(is_active=True).order_by("pk").values_list("pk", flat=True))
    for tenant_id in tenant_ids:
        nightly_recompute_task.delay(tenant_id=tenant_id)
    return len(tenant_ids)
