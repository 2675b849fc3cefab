"""Uploaded files: stored, checked (a dry run whose report is kept), then recorded on request.

An upload moves received -> checking -> checked (or invalid) -> committing -> committed; a step
that breaks leaves it failed, and checking again starts over. The checking and the recording run
as tasks (``partnerhub.integrations.tasks``) and store their progress on the upload as they go,
every few hundred rows, for the page's progress bar.

A file holds metric observations, deals or marketing facts (``UploadKind``), as CSV or XLSX
(:mod:`partnerhub.integrations.tabular` reads both). Deals and marketing facts go to the
tenant's "File uploads" data source, upserted by their external id.

Safe to repeat at every step: a task redelivered after a crash starts its step over, a recorded
upload is never recorded twice (its status changes in the transaction that writes its values),
and a file recorded before adds nothing: the observations it holds are keyed by its checksum,
and the facts it holds by their external ids.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from functools import partial
from typing import Any, BinaryIO

from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, transaction
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from partnerhub.integrations import deals, tabular
from partnerhub.integrations.deals import MAX_DEALS, DealsBulkResult
from partnerhub.integrations.facts import record_deal_observations
from partnerhub.integrations.marketing import MAX_FACTS, marketing_bulk_record
from partnerhub.integrations.models import Upload, UploadKind, UploadStatus
from partnerhub.integrations.source_models import DataSource, Deal, PartnerMapping, SourceKind
from partnerhub.integrations.sync import PartnerMatcher
from partnerhub.partners.models import Partner
from partnerhub.tenancy.context import current_tenant_id
from partnerhub.tenancy.models import Tenant, User
from scorecards.models import RecomputeRun
from scorecards.periods import QUARTER, period_containing
from scorecards.services.observations import (
    MAX_REPORTED_ERRORS,
    MAX_UPLOAD_BYTES,
    PROGRESS_EVERY,
    ImportResult,
    Progress,
    observations_import_csv,
)

logger = logging.getLogger(__name__)

# A received upload whose check has not started after this long has lost its task (say, the
# broker was down when it was queued): the page offers to check it again.
STALLED_AFTER = timedelta(minutes=2)
RECHECKABLE = frozenset({UploadStatus.RECEIVED, UploadStatus.CHECKED, UploadStatus.INVALID, UploadStatus.FAILED})


# --- Receiving ------------------------------------------------------------------------------------


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def _clean_file(file: BinaryIO, name: str) -> bytes:
    """The file's bytes, or a ValidationError on ``file`` saying what is wrong with it.

    What can be told without reading the rows is refused here, before anything is stored: a
    format that cannot be read (an .xls workbook), and a workbook that is not a ZIP archive or
    would unpack to too much (judged from its ZIP directory).
    """
    if hasattr(file, "seek"):
        file.seek(0)
    data = file.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        size = max(getattr(file, "size", None) or 0, len(data))
        limit = MAX_UPLOAD_BYTES // (1024 * 1024)
        shown = _megabytes(size)
        it_has = f" (it has {shown})" if shown != _megabytes(MAX_UPLOAD_BYTES) else ""
        raise ValidationError({"file": f"The file is larger than {limit} MB{it_has}; split it into smaller files."})
    try:
        if tabular.file_format(data, name) == tabular.XLSX:
            tabular.check_workbook(data)
        elif not data.strip():
            raise ValidationError({"file": "The file is empty."})
    except tabular.TableError as error:
        raise ValidationError({"file": error.message}) from None
    return data


@transaction.atomic
def upload_receive(*, file: BinaryIO, by: User, kind: str = UploadKind.OBSERVATIONS) -> Upload:
    """Store an uploaded file and queue its check. Refuses what can never be read (too big, empty, an .xls file)."""
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


# --- Facts from files: deals and marketing facts ------------------------------------------------------------

FILE_SOURCE_NAME = "File uploads"
PARTNER_COLUMNS = ("partner", "partner_id")
PARTNER_HELP = "partner (a name, HubSpot or Salesforce id) or partner_id"
DEAL_FIELDS = ("external_id", "partner", "name", "amount", "currency", "stage", "closed", "won", "created_on",
               "close_date", "deleted")  # fmt: skip
MARKETING_FIELDS = ("external_id", "partner", "kind", "occurred_on", "quantity", "currency", "campaign")
FLAGS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
DATE_AND_TIME = re.compile(r"(\d{4}-\d{2}-\d{2})[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?", re.ASCII)
LOOKUP_BATCH = 1_000  # partner references per query
MAX_UNMATCHED_SHOWN = 20


@dataclass(frozen=True)
class FactFile:
    """What a kind of fact file holds: its columns, its row limit, and what one row is called."""

    columns: tabular.Columns
    template: tuple[str, ...]
    max_rows: int
    noun: str


FACT_FILES = {
    UploadKind.DEALS: FactFile(
        columns=tabular.Columns(
            one_of=PARTNER_COLUMNS,
            required=("external_id", "created_on"),
            optional=("name", "amount", "currency", "stage", "closed", "won", "close_date", "deleted"),
            help=f"external_id, {PARTNER_HELP}, created_on, and optionally name, amount, currency, stage, closed, "
            "won, close_date and deleted",
            numbers=("amount",),
        ),
        template=DEAL_FIELDS,
        max_rows=MAX_DEALS,
        noun="deal",
    ),
    UploadKind.MARKETING: FactFile(
        columns=tabular.Columns(
            one_of=PARTNER_COLUMNS,
            required=("external_id", "kind", "occurred_on"),
            optional=("quantity", "currency", "campaign"),
            help=f"external_id, {PARTNER_HELP}, kind, occurred_on, and optionally quantity, currency and campaign",
            numbers=("quantity",),
        ),
        template=MARKETING_FIELDS,
        max_rows=MAX_FACTS,
        noun="marketing fact",
    ),
}


def file_upload_source() -> DataSource:
    """The tenant's file-upload data source, which every uploaded fact belongs to; created on first use."""
    source = DataSource.objects.filter(kind=SourceKind.FILE, name=FILE_SOURCE_NAME).first()
    if source is not None:
        return source
    try:
        with transaction.atomic():
            return DataSource.objects.create(name=FILE_SOURCE_NAME, kind=SourceKind.FILE, schedule_minutes=0)
    except IntegrityError:
        # Created by a concurrent upload, or the name belongs to a source of another kind.
        source = DataSource.objects.filter(name=FILE_SOURCE_NAME).first()
        if source is None or source.kind != SourceKind.FILE:
            raise ValidationError(
                f"The data source name “{FILE_SOURCE_NAME}” is taken by a source of another kind; rename that "
                "source so uploaded facts have a source of their own."
            ) from None
        return source


@dataclass
class FactsImportResult:
    """What a file of facts did, or would do (dry run); ``errors`` means nothing was written."""

    kind: str
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    unmatched: int = 0  # rows stored without a partner: their reference matches none yet
    unmatched_refs: list[dict] = field(default_factory=list)  # the most frequent references, with their rows
    unmatched_refs_total: int = 0  # how many references in all
    observations: int = 0
    periods: list[str] = field(default_factory=list)
    source: DataSource | None = None
    source_ref: str = ""
    errors: list[tabular.Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dry_run: bool = False

    def report(self) -> dict:
        """As stored on the upload (JSON)."""
        return {
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "deleted": self.deleted,
            "unmatched": self.unmatched,
            "unmatched_refs": self.unmatched_refs,
            "unmatched_refs_total": self.unmatched_refs_total,
            "observations": self.observations,
            "periods": self.periods,
            "source": None if self.source is None else {"id": self.source.pk, "name": self.source.name},
            "source_ref": self.source_ref,
            "errors": [{"row": e.row, "column": e.column, "message": e.message} for e in self.errors],
            "notes": self.notes,
        }


class _FilePartners:
    """The partners a file's rows name, looked up for the whole file at once.

    ``partner_id`` is a PartnerHub id. ``partner`` goes through the source's mappings first, then
    is compared with the partners' names (in any case), HubSpot and Salesforce ids. A reference
    that matches no partner is not a problem: the fact is kept with it, unmatched, until mapped.
    """

    def __init__(self, rows: list[dict[str, str]], source: DataSource):
        ids = {row.get("partner_id", "").strip() for row in rows} - {""}
        ids = [int(text) for text in ids if text.isascii() and text.isdigit() and len(text) < 19]
        self.known: set[int] = set()
        for start in range(0, len(ids), LOOKUP_BATCH):
            chunk = ids[start : start + LOOKUP_BATCH]
            self.known.update(Partner.objects.filter(pk__in=chunk).values_list("pk", flat=True))
        texts = sorted({row.get("partner", "").strip() for row in rows} - {""})
        self.mapped: dict[str, int] = {}
        self.matches: dict[str, set[int]] = {}
        for start in range(0, len(texts), LOOKUP_BATCH):
            chunk = texts[start : start + LOOKUP_BATCH]
            mappings = PartnerMapping.objects.filter(source=source, external_ref__in=chunk)
            self.mapped.update(mappings.values_list("external_ref", "partner_id"))
            lowered = {text.lower() for text in chunk}
            found = (
                Partner.objects.annotate(lower_name=Lower("name"))
                .filter(
                    Q(lower_name__in=lowered) | Q(hubspot_company_id__in=chunk) | Q(salesforce_account_id__in=chunk)
                )
                .values_list("pk", "name", "hubspot_company_id", "salesforce_account_id")
            )
            for pk, name, hubspot_id, salesforce_id in found:
                for candidate in (name.lower(), hubspot_id, salesforce_id):
                    if candidate:
                        self.matches.setdefault(candidate, set()).add(pk)

    def resolve(self, row: dict[str, str]) -> tuple[int | None, str, str, str]:
        """(partner id or None, the reference as written, the column it came from, the problem if any)."""
        text_id, text = row.get("partner_id", "").strip(), row.get("partner", "").strip()
        if text_id:
            if not (text_id.isascii() and text_id.isdigit()):
                return None, text, "partner_id", f"“{text_id[:40]}” is not a partner id; ids are whole numbers."
            if len(text_id) >= 19 or int(text_id) not in self.known:
                return None, text, "partner_id", f"There is no partner with the id {text_id[:40]}."
            return int(text_id), text, "partner_id", ""
        if not text:
            return None, "", "partner", "Name the partner (its name, HubSpot or Salesforce id), or give its partner_id."
        if text in self.mapped:
            return self.mapped[text], text, "partner", ""
        found = self.matches.get(text.lower(), set()) | self.matches.get(text, set())
        if len(found) > 1:
            return None, text, "partner", f"“{text[:40]}” matches more than one partner; use the partner_id column."
        return (found.pop() if found else None), text, "partner", ""


def _flag(text: str) -> tuple[bool | None, str]:
    """A yes/no cell: true, false, yes, no, 1 or 0 in any case (a spreadsheet's TRUE and FALSE); empty is not given."""
    text = text.strip().lower()
    if not text:
        return None, ""
    if text in FLAGS:
        return FLAGS[text], ""
    return None, f"“{text[:20]}” is not true or false; write true or false (or leave it empty)."


def _day_text(text: str) -> str:
    """A date cell: YYYY-MM-DD, or the day of a date and time (a CRM export's timestamp)."""
    text = text.strip()
    match = DATE_AND_TIME.fullmatch(text)
    return match.group(1) if match else text


def _deal_item(row: dict[str, str], number: int, problems: list[tabular.Problem]) -> dict:
    item: dict[str, Any] = {name: row.get(name, "") for name in ("external_id", "name", "amount", "currency", "stage")}
    item["created_on"], item["close_date"] = _day_text(row.get("created_on", "")), _day_text(row.get("close_date", ""))
    for name in ("closed", "won", "deleted"):
        value, problem = _flag(row.get(name, ""))
        if problem:
            problems.append(tabular.Problem(number, name, problem))
        elif value is not None:
            item[name] = value
    return item


def _marketing_item(row: dict[str, str], number: int, problems: list[tabular.Problem]) -> dict:
    item: dict[str, Any] = {name: row.get(name, "") for name in ("external_id", "kind", "quantity", "currency")}
    item["campaign"] = row.get("campaign", "")
    item["occurred_on"] = _day_text(row.get("occurred_on", ""))
    return item


def _deals_record(
    *, items: list[dict], by: User | None, source: DataSource, source_ref: str, upload: Upload, dry_run: bool
) -> tuple[DealsBulkResult, set[datetime.date]]:
    """Deals of a file into the file-upload source: validated and upserted as :func:`deals_bulk_record` does.

    Every deal is read by the same rules (``deals._read``), partners resolved the same way and
    stored deals compared on the same columns, so a deal uploaded and the same deal pushed are
    stored alike; ``deals_bulk_record`` itself takes API-push sources only. Atomic; ``dry_run``
    plans without writing. Returns the result and the days of the partners' periods it changes.
    """
    if not source.is_active:
        raise ValidationError(f"{source.name} is switched off; switch it on to receive facts.")
    today = timezone.localdate()
    read = [deals._read(index, item, today) for index, item in enumerate(items)]
    errors = [error for _, item_errors in read for error in item_errors]
    entries = [entry for entry, _ in read if entry is not None]
    partners = deals._resolve_partners(
        [entry for entry in entries if not entry.deleted], PartnerMatcher(source), errors
    )
    failed = {error.index for error in errors}
    entries = [entry for entry in entries if entry.index not in failed]
    statuses = [deals.Status.INVALID if index in failed else deals.Status.VALID for index in range(len(items))]
    found: list[Deal | None] = [None] * len(items)
    result = DealsBulkResult(source=source, statuses=statuses, deals=found, errors=errors, written=False)
    if errors or not entries:
        return result, set()
    creates, updates, touched = deals.deals_upsert(
        entries=entries,
        partners=partners,
        source=source,
        result=result,
        upload=upload,
        dry_run=dry_run,
        conflict="Another change to the same deals was saved at the same time; nothing was recorded. "
        "Check the file again.",
    )
    if dry_run:
        return result, touched.days
    result.written = True
    if creates or updates:
        result.observations_written = record_deal_observations(
            partner_ids=touched.partner_ids, days=touched.days, currency=source.currency, source_ref=source_ref
        )
        unmatched = sum(deal.partner_id is None and deal.deleted_at is None for deal in creates + updates)
        deals._audit(result, by=by, source_ref=source_ref, unmatched=unmatched)
    return result, touched.days


def _report_column(field_name: str, partner_column: str) -> str:
    """The file's column a recorder's field names: the partner's own column, else the field itself."""
    if field_name in ("partner", "partner_ref"):
        return partner_column
    return "" if field_name == "non_field_errors" else field_name


def _facts_errors(
    own: list[tabular.Problem], recorded: list, numbers: list[int], partner_columns: list[str], fields: tuple[str, ...]
) -> list[tabular.Problem]:
    """Every problem by row and column, the file's first; a recorder's problem of a cell already named is dropped."""
    named = {(problem.row, problem.column) for problem in own}
    errors = list(own)
    for error in recorded:
        number, column = numbers[error.index], _report_column(error.field, partner_columns[error.index])
        if (number, column) not in named:
            named.add((number, column))
            errors.append(tabular.Problem(number, column, error.message))
    order = {name: position for position, name in enumerate(("partner_id", *fields))}
    errors.sort(key=lambda problem: (problem.row or 0, order.get(problem.column, -1)))
    if len(errors) > MAX_REPORTED_ERRORS:
        more = len(errors) - MAX_REPORTED_ERRORS
        errors = [*errors[:MAX_REPORTED_ERRORS], tabular.Problem(None, "", f"…and {more:,} more problems.")]
    return errors


def facts_import(
    *, upload: Upload, by: User | None, dry_run: bool, progress: Progress | None = None
) -> FactsImportResult:
    """Record the deals or marketing facts of an uploaded file, all of them or none.

    Every row is read and validated first; any problem means nothing is written, and each is
    reported with its row (the header is row 1), column and reason. ``dry_run`` reports what
    recording would do. Facts are upserted by their external id in the tenant's file-upload
    source, so the same file again changes nothing; the observations derived from them name the
    file's checksum. ``progress(done, total)`` counts each row once when checked and, unless this
    is a dry run, once more when written.
    """
    spec = FACT_FILES[upload.kind]
    data = bytes(upload.content)
    result = FactsImportResult(
        kind=upload.kind, dry_run=dry_run, source_ref=f"upload:sha256:{hashlib.sha256(data).hexdigest()}"
    )
    try:
        table = tabular.read_table(data, name=upload.file_name, max_rows=spec.max_rows, known=spec.columns.known)
    except tabular.TableError as error:
        result.errors = [tabular.Problem(error.row, "", error.message)]
        return result
    result.notes = table.notes
    rows, own = tabular.map_rows(table, spec.columns)
    result.rows = len(rows)
    if not rows:
        result.errors = own
        return result
    total = len(rows) * (1 if dry_run else 2)
    report = progress or (lambda done, total: None)
    report(0, total)
    try:
        source = file_upload_source()
    except ValidationError as error:
        result.errors = [tabular.Problem(None, "", " ".join(error.messages))]
        return result
    result.source = source
    partners = _FilePartners([row for _, row in rows], source)
    to_item = _deal_item if upload.kind == UploadKind.DEALS else _marketing_item
    items, numbers, partner_columns, first_row = [], [], [], {}
    for done, (number, row) in enumerate(rows, start=1):
        item = to_item(row, number, own)
        partner_id, ref, column, problem = partners.resolve(row)
        if problem and not item.get("deleted"):  # deleting a deal needs only its id
            own.append(tabular.Problem(number, column, problem))
        elif partner_id is not None:
            item["partner"] = partner_id
        item["partner_ref"] = ref
        key = row.get("external_id", "").strip()
        if key and key in first_row:
            own.append(
                tabular.Problem(
                    number, "external_id", f"Repeats row {first_row[key]}: each {spec.noun} appears once per file."
                )
            )
            continue
        first_row.setdefault(key, number)
        items.append(item)
        numbers.append(number)
        partner_columns.append(column)
        if done % PROGRESS_EVERY == 0:
            report(done, total)
    rehearse = dry_run or bool(own)  # a file with problems is only ever checked
    try:
        if upload.kind == UploadKind.DEALS:
            recorded, days = _deals_record(
                items=items, by=by, source=source, source_ref=result.source_ref, upload=upload, dry_run=rehearse
            )
            result.deleted = recorded.changes.get("deleted", 0)
        else:
            recorded = marketing_bulk_record(
                items=items, by=by, source=source, source_ref=result.source_ref, upload=upload, dry_run=rehearse
            )
            days = recorded.days
    except ValidationError as error:
        if getattr(error, "code", None) == "concurrent_change":
            raise
        result.errors = [tabular.Problem(None, "", " ".join(error.messages))]
        return result
    result.errors = _facts_errors(own, recorded.errors, numbers, partner_columns, spec.template)
    if result.errors:
        return result
    result.created = recorded.changes.get("created", 0)
    result.updated = recorded.changes.get("updated", 0)
    result.unchanged = len(items) - result.created - result.updated - result.deleted
    unmatched = Counter(
        items[index].get("partner_ref", "") for index, status in enumerate(recorded.statuses) if status == "unmatched"
    )
    result.unmatched = sum(unmatched.values())
    result.unmatched_refs = [{"ref": ref, "rows": count} for ref, count in unmatched.most_common(MAX_UNMATCHED_SHOWN)]
    result.unmatched_refs_total = len(unmatched)
    result.observations = recorded.observations_written
    tenant = Tenant.objects.get(pk=current_tenant_id())
    result.periods = sorted(
        {period_containing(day, kind=QUARTER, start_month=tenant.fiscal_year_start_month).key for day in days}
    )
    report(total, total)
    return result


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


def _report(result: ImportResult | FactsImportResult) -> dict:
    """An import's outcome as stored on the upload (JSON)."""
    if isinstance(result, FactsImportResult):
        return result.report()
    report = {
        "rows": result.rows,
        "created": result.created,
        "replaced": result.replaced,
        "unchanged": result.unchanged,
        "periods": result.periods,
        "source_ref": result.source_ref,
        "errors": [{"row": error.position, "column": error.field, "message": error.message} for error in result.errors],
    }
    if result.notes:
        report["notes"] = result.notes
    return report


def _import(upload: Upload, **options) -> ImportResult | FactsImportResult:
    if upload.kind == UploadKind.OBSERVATIONS:
        return observations_import_csv(file=bytes(upload.content), name=upload.file_name, **options)
    if upload.kind in FACT_FILES:
        options.pop("audit_target", None)  # facts are audited on their data source, naming the file's checksum
        return facts_import(upload=upload, **options)
    raise ValueError(f"There is no reader for {upload.kind} uploads.")


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


def fact_template_rows(kind: str) -> list[list[Any]]:
    """Two example rows of a file of deals or marketing facts, naming the workspace's first partners.

    Their external ids say they are examples; the currency is the file-upload source's when it exists.
    """
    partners = list(Partner.objects.order_by("name").values_list("name", flat=True)[:2])
    if not partners:
        return []
    first, second = partners[0], partners[-1]
    source = DataSource.objects.filter(kind=SourceKind.FILE, name=FILE_SOURCE_NAME)
    currency = source.values_list("currency", flat=True).first() or "USD"
    today = timezone.localdate()
    days = datetime.timedelta
    if kind == UploadKind.DEALS:
        return [
            ["EXAMPLE-1", first, "Example renewal", Decimal("12500.00"), currency, "Closed won", True, True,
             today - days(45), today - days(5), None],
            ["EXAMPLE-2", second, "Example new business", Decimal("8000"), currency, "Proposal", False, False,
             today - days(10), None, None],
        ]  # fmt: skip
    return [
        ["EXAMPLE-MQL-1", first, "mql", today - days(20), 3, "", "Partner webinar"],
        ["EXAMPLE-PIPELINE-1", second, "campaign_pipeline", today - days(20), Decimal("25000"), currency,
         "Partner webinar"],
    ]  # fmt: skip
