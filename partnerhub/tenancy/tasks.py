"""Tasks and the decorator that gives every task its tenant."""

from __future__ import annotations

import functools

from celery import shared_task

from partnerhub.tenancy.context import tenant_scope

# Defaults every PartnerHub task shares: a redelivered task must be safe to run again. Time
# limits come from CELERY_TASK_SOFT_TIME_LIMIT / CELERY_TASK_TIME_LIMIT unless a task sets its own.
TASK_DEFAULTS = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (ConnectionError, TimeoutError),
    "retry_backoff": 5,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "max_retries": 5,
}


def tenant_task(*decorator_args, **options):
    """Declare a Celery task that runs inside the tenant named by its ``tenant_id`` argument.

    The tenant is set before the body runs and reset afterwards, whatever happens, so a worker
    process never carries one task's tenant into the next. ``tenant_id`` must be passed by keyword.
    """

    def decorate(func):
        @functools.wraps(func)
        def run(*args, tenant_id: int, **kwargs):
            if tenant_id is None:
                raise ValueError(f"{func.__name__} needs a tenant_id")
            with tenant_scope(int(tenant_id)):
                return func(*args, tenant_id=int(tenant_id), **kwargs)

        return shared_task(**{**TASK_DEFAULTS, **options})(run)

    if decorator_args and callable(decorator_args[0]) and not options:
        return decorate(decorator_args[0])
    return decorate


@tenant_task(name="tenancy.invitation_send_task")
def invitation_send_task(*, tenant_id: int, invitation_id: int, token: str) -> None:
    """Email an invitation. The token is passed through once and never stored."""
    from partnerhub.tenancy.services import invitation_email_send

    invitation_email_send(invitation_id=invitation_id, token=token)
