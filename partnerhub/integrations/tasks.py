"""Upload tasks: thin wrappers over the upload services, safe to redeliver.

Retries, ``acks_late`` and time limits come from ``tenant_task``. A connection error or a time-out
is retried (the step starts over); anything else marks the upload failed, so its page stops
waiting and offers to check it again, and is raised for the worker's log.
"""

from __future__ import annotations

from celery import shared_task

from partnerhub.tenancy.tasks import TASK_DEFAULTS, tenant_task

RETRIED = TASK_DEFAULTS["autoretry_for"]


@tenant_task(name="integrations.upload_check_task")
def upload_check_task(*, tenant_id: int, upload_id: int) -> dict | None:
    """Check an upload (a dry run) and store its report; a checked or recorded upload is left alone."""
    from partnerhub.integrations.uploads import upload_check, upload_step_failed

    try:
        upload = upload_check(upload_id=upload_id)
    except RETRIED:
        raise
    except Exception as error:
        upload_step_failed(upload_id=upload_id, error=error)
        raise
    return None if upload is None else {"upload_id": upload.pk, "status": upload.status}


@tenant_task(name="integrations.upload_commit_task")
def upload_commit_task(*, tenant_id: int, upload_id: int) -> dict | None:
    """Record a checked upload; an upload recorded already is never recorded twice."""
    from partnerhub.integrations.uploads import upload_commit, upload_step_failed

    try:
        upload = upload_commit(upload_id=upload_id)
    except RETRIED:
        raise
    except Exception as error:
        upload_step_failed(upload_id=upload_id, error=error)
        raise
    return None if upload is None else {"upload_id": upload.pk, "status": upload.status}


# --- CRM syncs ------------------------------------------------------------------------------------

# A first sync of a large CRM reads every deal; give it room beyond the default.
SYNC_LIMITS = {"soft_time_limit": 1500, "time_limit": 1800}


@tenant_task(name="integrations.sync_task", **SYNC_LIMITS)
def sync_task(*, tenant_id: int, run_id: int) -> dict | None:
    """Run a queued sync, or resume one a lost worker left part-way; a finished run is left alone."""
    from partnerhub.integrations.sync import run_sync

    run = run_sync(run_id)
    return None if run is None else {"run_id": run.pk, "status": run.status}


@tenant_task(name="integrations.sync_due_task")
def sync_due_task(*, tenant_id: int) -> list[int]:
    """Queue the syncs whose time has come, and resume runs a lost worker left behind."""
    from partnerhub.integrations.sync import sync_due

    return [run.pk for run in sync_due()]


@shared_task(name="integrations.sync_due_fanout_task", **TASK_DEFAULTS)
def sync_due_fanout_task() -> int:
    """Celery beat's entry point every few minutes: one task per active tenant; reads no tenant data."""
    from partnerhub.tenancy.models import Tenant

    # Tenant is global (not tenant-owned): listing tenants needs no scope.
    tenant_ids = list(Tenant.objects.filter(is_active=True).order_by("pk").values_list("pk", flat=True))
    for tenant_id in tenant_ids:
        sync_due_task.delay(tenant_id=tenant_id)
    return len(tenant_ids)


# --- Idempotency keys -----------------------------------------------------------------------------


@tenant_task(name="integrations.idempotent_requests_expire_task")
def idempotent_requests_expire_task(*, tenant_id: int) -> int:
    """Forget the tenant's idempotency keys older than 24 hours."""
    from partnerhub.integrations.idempotency import idempotent_requests_expire

    return idempotent_requests_expire()


@shared_task(name="integrations.idempotent_requests_expire_fanout_task", **TASK_DEFAULTS)
def idempotent_requests_expire_fanout_task() -> int:
    """Celery beat's entry point every hour: one task per active tenant (row-level security allows no other)."""
    from partnerhub.tenancy.models import Tenant

    # Tenant is global (not tenant-owned): listing tenants needs no scope.
    tenant_ids = list(Tenant.objects.filter(is_active=True).order_by("pk").values_list("pk", flat=True))
    for tenant_id in tenant_ids:
        idempotent_requests_expire_task.delay(tenant_id=tenant_id)
    return len(tenant_ids)
