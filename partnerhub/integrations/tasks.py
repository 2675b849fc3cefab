"""Upload tasks: thin wrappers over the upload services, safe to redeliver.

Retries, ``acks_late`` and time limits come from ``tenant_task``. A connection error or a time-out
is retried (the step starts over); anything else marks the upload failed, so its page stops
waiting and offers to check it again, and is raised for the worker's log.
"""

from __future__ import annotations

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
