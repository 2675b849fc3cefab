"""Uploaded files: stored, checked (a dry run whose report is kept), then recorded on request.

An upload moves received -> checking -> checked (or invalid) -> committing -> committed; a step
that breaks leaves it failed, and checking again starts over. The checking and the recording run
as tasks (``partnerhub.integrations.tasks``) and store their progress on the upload as they go,
every few hundred rows, for the page's progress bar.

Safe to repeat at every step: a task redelivered after a crash starts its step over, a recorded
upload is never recorded twice (its status changes in the transaction that writes its values),
and a file recorded before adds nothing, because the observations it holds are keyed by its
checksum.
"""

from __future__ import annotations

import hashlib
import logging
import os
from datetime import timedelta
from functools import partial
from typing import BinaryIO

from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import Q
from django.utils import timezone

from partnerhub.integrations.models import Upload, UploadKind, UploadStatus
from partnerhub.tenancy.context import current_tenant_id
from partnerhub.tenancy.models import User
from scorecards.models import RecomputeRun
from scorecards.services.observations import MAX_UPLOAD_BYTES, ImportResult, observations_import_csv

logger = logging.getLogger(__name__)

SPREADSHEET_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".ods", ".numbers")
# A received upload whose check has not started after this long has lost its task (say, the
# broker was down when it was queued): the page offers to check it again.
STALLED_AFTER = timedelta(minutes=2)
RECHECKABLE = frozenset({UploadStatus.RECEIVED, UploadStatus.CHECKED, UploadStatus.INVALID, UploadStatus.FAILED})


# --- Receiving ------------------------------------------------------------------------------------


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def _clean_file(file: BinaryIO, name: str) -> bytes:
    """The file's bytes, or a ValidationError on ``file`` saying what is wrong with it."""
    if name.lower().endswith(SPREADSHEET_SUFFIXES):
        raise ValidationError(
            {"file": "This is a spreadsheet workbook; save the sheet as “CSV UTF-8” and upload that file."}
        )
    if hasattr(file, "seek"):
        file.seek(0)
    data = file.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        size = max(getattr(file, "size", None) or 0, len(data))
        limit = MAX_UPLOAD_BYTES // (1024 * 1024)
        shown = _megabytes(size)
        it_has = f" (it has {shown})" if shown != _megabytes(MAX_UPLOAD_BYTES) else ""
        raise ValidationError({"file": f"The file is larger than {limit} MB{it_has}; split it into smaller files."})
    if not data.strip():
        raise ValidationError({"file": "The file is empty."})
    return data


@transaction.atomic
def upload_receive(*, file: BinaryIO, by: User, kind: str = UploadKind.OBSERVATIONS) -> Upload:
    """Store an uploaded file and queue its check. Refuses what can never be read (too big, empty, a workbook)."""
    if kind not in UploadKind.values:
        raise ValidationError({"kind": f"Unknown kind of upload “{kind}”."})
    name = os.path.basename(str(getattr(file, "name", "") or "")).strip()[:255] or "upload.csv"
    data = _clean_file(file, name)
    upload = Upload.objects.create(
        kind=kind,
        file_name=name,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        content=data,
        uploaded_by=by,
    )
    _queue_check(upload)
    return upload


def _queue_check(upload: Upload) -> None:
    from partnerhub.integrations.tasks import upload_check_task

    # robust: a broker that cannot be reached leaves the upload received; the page offers to retry.
    transaction.on_commit(
        partial(upload_check_task.delay, tenant_id=upload.tenant_id, upload_id=upload.pk), robust=True
    )


def upload_is_stalled(upload: Upload) -> bool:
    """A received upload nobody started checking for a while."""
    return upload.status == UploadStatus.RECEIVED and timezone.now() - upload.created_at > STALLED_AFTER


@transaction.atomic
def upload_recheck(*, upload: Upload) -> Upload:
    """Check an upload again: after a failure, or once the data it names has been fixed."""
    locked = Upload.objects.without_content().select_for_update().get(pk=upload.pk)
    if locked.status not in RECHECKABLE:
        raise ValidationError(f"This upload is {locked.get_status_display().lower()}; it cannot be checked again.")
    locked.status, locked.rows_done, locked.rows_total, locked.error = UploadStatus.RECEIVED, 0, 0, ""
    locked.save(update_fields=["status", "rows_done", "rows_total", "error"])
    _queue_check(locked)
    return locked


@transaction.atomic
def upload_commit_request(*, upload: Upload, by: User) -> Upload:
    """Ask for a checked upload to be recorded. Asking again while it is recorded changes nothing."""
    from partnerhub.integrations.tasks import upload_commit_task

    locked = Upload.objects.without_content().select_for_update().get(pk=upload.pk)
    if locked.status in (UploadStatus.COMMITTING, UploadStatus.COMMITTED):
        return locked
    if locked.status != UploadStatus.CHECKED:
        reason = {
            UploadStatus.INVALID: "it has problems to fix first",
            UploadStatus.FAILED: "its last step failed; check it again first",
        }.get(locked.status, "it has not been checked yet")
        raise ValidationError(f"This upload cannot be recorded: {reason}.")
    locked.status, locked.committed_by, locked.error = UploadStatus.COMMITTING, by, ""
    locked.rows_done, locked.rows_total = 0, 2 * locked.check_report.get("rows", 0)
    locked.save(update_fields=["status", "committed_by", "error", "rows_done", "rows_total"])
    transaction.on_commit(
        partial(upload_commit_task.delay, tenant_id=locked.tenant_id, upload_id=locked.pk), robust=True
    )
    return locked


# --- Checking and recording (the tasks' bodies) -----------------------------------------------------


class ProgressWriter:
    """Stores a step's progress on its upload where the pages can see it while the step runs.

    Imports run in one transaction (all rows or none), and an UPDATE made inside it would stay
    invisible to the pages until the very end. On PostgreSQL the progress is therefore written on
    a second connection of its own, in autocommit; it receives the active tenant when it opens,
    like every connection. Elsewhere (SQLite, where tasks run in-process) the one connection is
    used. Only an upload still in ``status`` is touched, so a late write never moves a later step.
    """

    def __init__(self, *, upload_id: int, status: str):
        self.upload_id, self.status = upload_id, status
        self._side = None

    def __call__(self, done: int, total: int) -> None:
        if connection.vendor == "postgresql" and connection.in_atomic_block:
            if self._side is None:
                self._side = connections.create_connection(DEFAULT_DB_ALIAS)
            table = self._side.ops.quote_name(Upload._meta.db_table)
            with self._side.cursor() as cursor:
                cursor.execute(
                    f"UPDATE {table} SET rows_done = %s, rows_total = %s "  # noqa: S608 - the name comes from the model
                    "WHERE id = %s AND tenant_id = %s AND status = %s",
                    [done, total, self.upload_id, current_tenant_id(), self.status],
                )
        else:
            Upload.objects.filter(pk=self.upload_id, status=self.status).update(rows_done=done, rows_total=total)

    def close(self) -> None:
        if self._side is not None:
            self._side.close()
            self._side = None


def _report(result: ImportResult) -> dict:
    """An import's outcome as stored on the upload (JSON)."""
    return {
        "rows": result.rows,
        "created": result.created,
        "replaced": result.replaced,
        "unchanged": result.unchanged,
        "periods": result.periods,
        "source_ref": result.source_ref,
        "errors": [{"row": error.position, "column": error.field, "message": error.message} for error in result.errors],
    }


def _import(upload: Upload, **options) -> ImportResult:
    if upload.kind == UploadKind.OBSERVATIONS:
        return observations_import_csv(file=bytes(upload.content), **options)
    raise ValueError(f"There is no reader for {upload.kind} uploads yet.")


def _fail(upload_id: int, *, status: str, error: BaseException | str) -> None:
    message = error if isinstance(error, str) else "; ".join(getattr(error, "messages", None) or [str(error)])
    Upload.objects.filter(pk=upload_id, status=status).update(status=UploadStatus.FAILED, error=message[:2000])


def upload_check(*, upload_id: int) -> Upload | None:
    """Check an upload: a dry run whose report is stored. Returns None when there is nothing to check.

    A check that was running when its worker stopped (a redelivery) starts over; a checked,
    recorded or failed upload is left as it is.
    """
    claimed = Upload.objects.filter(pk=upload_id, status__in=[UploadStatus.RECEIVED, UploadStatus.CHECKING]).update(
        status=UploadStatus.CHECKING, rows_done=0, rows_total=0, error=""
    )
    if not claimed:
        return None
    upload = Upload.objects.get(pk=upload_id)
    progress = ProgressWriter(upload_id=upload_id, status=UploadStatus.CHECKING)
    try:
        result = _import(upload, by=upload.uploaded_by, dry_run=True, progress=progress)
    except ValidationError as error:
        _fail(upload_id, status=UploadStatus.CHECKING, error=error)
        return Upload.objects.without_content().get(pk=upload_id)
    finally:
        progress.close()
    Upload.objects.filter(pk=upload_id, status=UploadStatus.CHECKING).update(
        status=UploadStatus.INVALID if result.errors else UploadStatus.CHECKED,
        rows_total=result.rows,
        rows_done=result.rows,
        result={"check": _report(result)},
        checked_at=timezone.now(),
    )
    return Upload.objects.without_content().get(pk=upload_id)


def _lock_upload(upload_id: int) -> None:
    """Serialize the recording of one upload (a redelivered task next to the original) until the
    transaction ends. An advisory lock, not a row lock: progress is written to the row meanwhile."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [0x0F1E, upload_id % (2**31)])


def upload_commit(*, upload_id: int) -> Upload | None:
    """Record an upload asked to be recorded. Returns None when there is nothing to do.

    The values and the upload's new status commit together, so a recorded upload is never
    recorded twice, and a run cut short leaves nothing behind but the request, which a redelivery
    picks up again. Data that changed since the check (a metric retired, a partner removed) makes
    the upload invalid again with the new report, and nothing is written.
    """
    progress = ProgressWriter(upload_id=upload_id, status=UploadStatus.COMMITTING)
    try:
        with transaction.atomic():
            _lock_upload(upload_id)
            upload = Upload.objects.filter(pk=upload_id, status=UploadStatus.COMMITTING).first()
            if upload is None:
                return None
            result = _import(upload, by=upload.committed_by, dry_run=False, progress=progress, audit_target=upload)
            rows = {"rows_total": result.rows, "rows_done": result.rows}
            if result.errors:
                Upload.objects.filter(pk=upload_id).update(
                    status=UploadStatus.INVALID,
                    result={"check": _report(result)},
                    checked_at=timezone.now(),
                    error="The file no longer passes its check (the data it names changed); nothing was recorded.",
                    **rows,
                )
            else:
                Upload.objects.filter(pk=upload_id).update(
                    status=UploadStatus.COMMITTED,
                    result={**upload.result, "commit": _report(result)},
                    committed_at=timezone.now(),
                    **rows,
                )
    except ValidationError as error:  # e.g. a concurrent change to the same values: nothing was written
        _fail(upload_id, status=UploadStatus.COMMITTING, error=error)
    finally:
        progress.close()
    return Upload.objects.without_content().get(pk=upload_id)


def upload_step_failed(*, upload_id: int, error: BaseException) -> None:
    """Mark a check or a recording that broke unexpectedly as failed; the page offers to check again."""
    logger.exception("Upload %s failed", upload_id, exc_info=error)
    for status in (UploadStatus.CHECKING, UploadStatus.COMMITTING):
        _fail(upload_id, status=status, error=f"{type(error).__name__}: {error}")


# --- Reading --------------------------------------------------------------------------------------


def recent_uploads(*, limit: int = 20) -> list[Upload]:
    return list(Upload.objects.without_content().select_related("uploaded_by")[:limit])


def same_file_uploads(upload: Upload, *, limit: int = 5) -> list[Upload]:
    """Earlier uploads of exactly this file (by checksum), newest first."""
    return list(
        Upload.objects.without_content()
        .filter(kind=upload.kind, sha256=upload.sha256, created_at__lte=upload.created_at)
        .exclude(pk=upload.pk)[:limit]
    )


def upload_recomputes(upload: Upload) -> list[RecomputeRun]:
    """The score recomputes of the periods an upload changed, queued or running since it was recorded."""
    periods = upload.commit_report.get("periods") or []
    if upload.status != UploadStatus.COMMITTED or not periods:
        return []
    since = upload.committed_at
    return list(
        RecomputeRun.objects.filter(period__in=periods)
        .filter(Q(queued_at__gte=since) | Q(finished_at__isnull=True) | Q(finished_at__gte=since))
        .select_related("version__scorecard")
        .order_by("period", "version__scorecard__name", "-queued_at")
    )
