"""Recording metric observations: by hand, in bulk through the API, and from uploaded CSV and XLSX files.

Observations are append-only. A new value for a (partner, metric, period) that already has one
is a new row, and the row it replaces gets ``superseded_by`` pointing at it; nothing else about a
stored observation ever changes, and nothing is deleted. On PostgreSQL the application role can
only UPDATE that one column (``RestrictAppRoleWrites``), so this holds whatever the code does.

A value entered by hand gets its own audit event (``observation.recorded``); a file or a bulk
call gets one event for all of its values (``observations.imported``, ``observations.bulk_recorded``)
naming how many, for which periods and from which source reference.

Recording is idempotent: the value a key already has adds nothing, and neither does a value the
same source reference (an upload's checksum, an API client's reference) recorded before, even if
it has been corrected since. So an upload or an API call repeated after a timeout changes nothing.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from functools import partial
from typing import Any, BinaryIO

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, models, transaction
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from partnerhub.integrations.tabular import Columns, TableError, map_rows, read_table
from partnerhub.partners.models import Partner
from partnerhub.tenancy.audit import audit
from partnerhub.tenancy.context import current_scope, current_tenant_id, tenant_scope
from partnerhub.tenancy.models import ApiKey, Tenant, User
from scorecards.models import Metric, MetricObservation, ObservationSource, Unit
from scorecards.periods import PeriodError, parse_period

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
MAX_UPLOAD_ROWS = 10_000
MAX_BULK_ITEMS = 1_000
MAX_REPORTED_ERRORS = 500
PROGRESS_EVERY = 250  # rows between two progress reports
WRITE_BATCH = 500  # rows per INSERT (and per UPDATE of the rows they supersede)
MAX_AUDITED_NOTES = 100  # notes of a file kept in its audit event; the stored upload holds the rest
SIX_PLACES = Decimal("0.000001")
LARGEST_VALUE = Decimal("1e14")  # the column holds 20 digits, 6 of them after the point


# --- Recompute after changes ----------------------------------------------------------------------


def schedule_recompute_on_commit(periods: Iterable[str], *, reason: str) -> None:
    """Ask for the periods' scores to be computed again once this transaction commits.

    Recomputes are coalesced by ``schedule_recompute``: a burst of changes causes one recompute.
    A rolled-back change schedules nothing.
    """
    from scorecards.services import recompute  # imported late: recompute reads through this module's callers

    periods = sorted(set(periods))
    if not periods:
        return
    scope = current_scope()

    def schedule(period: str) -> None:
        # on_commit callbacks may run after the caller's scope has been left; reopen it.
        with tenant_scope(scope.tenant_id, user=scope.user_id):
            recompute.schedule_recompute(period=period, reason=reason)

    for period in periods:
        transaction.on_commit(partial(schedule, period))


def _after_observations_changed(periods: set[str]) -> None:
    """The one place observation writes report the periods whose scores they change."""
    schedule_recompute_on_commit(periods, reason="observations changed")


# --- Progress of long imports ---------------------------------------------------------------------

Progress = Callable[[int, int], None]


class _Counter:
    """Counts rows through the steps of an import and reports ``(done, total)`` every few hundred."""

    def __init__(self, report: Progress | None, total: int):
        self.report, self.total, self.done, self.reported = report, total, 0, 0

    def advance(self, rows: int = 1) -> None:
        self.done = min(self.done + rows, self.total)
        if self.report is not None and (self.done - self.reported >= PROGRESS_EVERY or self.done == self.total):
            self.report(self.done, self.total)
            self.reported = self.done


# --- Validation of single values -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ObservationInput:
    """One validated value to record."""

    partner: Partner
    metric: Metric
    period: str
    value: Decimal
    source: str
    source_ref: str = ""
    note: str = ""

    @property
    def key(self) -> tuple[int, int, str]:
        return (self.partner.pk, self.metric.pk, self.period)


def _plain(number: Decimal) -> str:
    text = format(number.normalize(), "f")
    return text


def _unit_hint(metric: Metric) -> str:
    if metric.unit == Unit.PERCENT:
        return " (a percentage: 85 means 85%)"
    if metric.unit == Unit.RATIO:
        return " (a ratio: 0.25 means one in four)"
    return ""


def clean_period(key: Any, *, tenant: Tenant) -> str:
    """The canonical key of a period that has started, in the tenant's fiscal calendar."""
    if not isinstance(key, str) or not key.strip():
        raise ValidationError({"period": "Name the period, like FY2026-Q3 or FY2026-M07."})
    try:
        period = parse_period(key, start_month=tenant.fiscal_year_start_month)
    except PeriodError as error:
        raise ValidationError({"period": str(error)}) from None
    if period.start > timezone.localdate():
        raise ValidationError(
            {
                "period": f"{period.key} has not started yet (it starts on {period.start:%d %B %Y}); record values "
                "for periods under way or past."
            }
        )
    return period.key


def clean_value(value: Any, *, metric: Metric) -> Decimal:
    """The value as stored (six decimal places), within the metric's plausible bounds."""
    if value is None or isinstance(value, bool) or (isinstance(value, str) and not value.strip()):
        raise ValidationError({"value": "Enter the value."})
    text = str(value).strip()
    if metric.unit == Unit.PERCENT and text.endswith("%"):
        text = text[:-1].strip()
    try:
        number = Decimal(text)
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        raise ValidationError(
            {
                "value": f"“{str(value)[:40]}” is not a number; write it like 1234.5 "
                "(a dot for decimals, no thousands separators)."
            }
        )
    if abs(number) >= LARGEST_VALUE:
        raise ValidationError({"value": f"{_plain(number)} is too large to store."})
    number = number.quantize(SIX_PLACES, rounding=ROUND_HALF_EVEN)
    low, high = metric.plausible_min, metric.plausible_max
    if (low is not None and number < low) or (high is not None and number > high):
        if low is not None and high is not None:
            bounds = f"between {_plain(low)} and {_plain(high)}"
        elif low is not None:
            bounds = f"at least {_plain(low)}"
        else:
            bounds = f"at most {_plain(high)}"
        raise ValidationError(
            {
                "value": f"{_plain(number)} is outside the plausible range for {metric.name}: {bounds}"
                f"{_unit_hint(metric)}."
            }
        )
    return number


def _clean_metric(metric: Metric) -> None:
    if metric.tenant_id != current_tenant_id():
        raise ValidationError({"metric": "Choose a metric of this workspace."})
    if not metric.is_active:
        raise ValidationError({"metric": f"{metric.name} is no longer in use in the catalogue."})


def _clean_source(source: str, source_ref: Any) -> str:
    if source not in ObservationSource.values:
        raise ValidationError({"source": f"Unknown source “{source}”."})
    if not isinstance(source_ref, str):
        raise ValidationError({"source_ref": "Give the source reference as text."})
    source_ref = source_ref.strip()
    if len(source_ref) > MetricObservation._meta.get_field("source_ref").max_length:
        raise ValidationError({"source_ref": "Keep the source reference under 200 characters."})
    return source_ref


# --- Writing ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Recorded:
    """What recording one input did: the observation now in force, and whether it is new."""

    observation: MetricObservation
    created: bool
    superseded: MetricObservation | None = None


def _reserve_ids(count: int) -> list[int]:
    """Primary keys for ``count`` new observations, before inserting them.

    A row being superseded must point at its successor before the successor is inserted: the
    one-current-row-per-key index is checked on every statement, while foreign keys are checked
    at commit. So the successor's key is taken from the sequence first.
    """
    if not count:
        return []
    table = MetricObservation._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", [table, count]
            )
            return [row[0] for row in cursor.fetchall()]
        if connection.vendor == "sqlite":
            # SQLite has one writer at a time; a concurrent writer that got in first makes the
            # insert below fail on the primary key, which is reported as a clash, never merged.
            cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
            row = cursor.fetchone()
            quoted = connection.ops.quote_name(table)
            cursor.execute(f"SELECT MAX(id) FROM {quoted}")  # noqa: S608 - the name comes from the model
            highest = max(row[0] if row else 0, cursor.fetchone()[0] or 0)
            return list(range(highest + 1, highest + 1 + count))
    raise NotImplementedError(f"Observations cannot be recorded on {connection.vendor}.")


Plan = list[tuple[ObservationInput, MetricObservation | None, bool]]


def _plan(entries: list[ObservationInput], *, lock: bool) -> Plan:
    """For each input: the current observation of its key, and whether the input adds a row."""
    if not entries:
        return []
    base = MetricObservation.objects.filter(
        partner_id__in={entry.partner.pk for entry in entries},
        metric_id__in={entry.metric.pk for entry in entries},
        period__in={entry.period for entry in entries},
    )
    current_rows = base.current()
    if lock:
        current_rows = current_rows.select_for_update()
    wanted = {entry.key for entry in entries}
    current = {}
    for row in current_rows:
        key = (row.partner_id, row.metric_id, row.period)
        if key in wanted:
            current[key] = row
    refs = {entry.source_ref for entry in entries if entry.source_ref}
    recorded_before = set()
    if refs:
        columns = ("partner_id", "metric_id", "period", "source", "source_ref", "value")
        recorded_before = set(base.filter(source_ref__in=refs).values_list(*columns))
    plan = []
    for entry in entries:
        old = current.get(entry.key)
        repeat = (*entry.key, entry.source, entry.source_ref, entry.value) in recorded_before
        adds = not (old is not None and (old.value == entry.value or (entry.source_ref and repeat)))
        plan.append((entry, old, adds))
    return plan


def _write(
    entries: list[ObservationInput],
    *,
    by: User | ApiKey | None,
    audit_each: bool = True,
    counter: _Counter | None = None,
) -> list[Recorded]:
    """Record the inputs (keys all distinct) in the caller's transaction; returns one result per input.

    ``audit_each`` writes one audit event per new value (a value entered by hand); batches leave
    it off and write one event for the whole batch (``_audit_batch``). ``counter`` advances by
    one per input, in batches of a few hundred rows.
    """
    plan = _plan(entries, lock=True)
    adding = [(entry, old) for entry, old, adds in plan if adds]
    ids = iter(_reserve_ids(len(adding)))
    tenant_id, now, user = current_tenant_id(), timezone.now(), by if isinstance(by, User) else None
    batch: list[tuple[MetricObservation, MetricObservation | None]] = []
    results = []
    for entry, old, adds in plan:
        if not adds:
            results.append(Recorded(observation=old, created=False))
            continue
        row = MetricObservation(
            id=next(ids),
            tenant_id=tenant_id,
            partner=entry.partner,
            metric=entry.metric,
            period=entry.period,
            value=entry.value,
            source=entry.source,
            source_ref=entry.source_ref,
            recorded_at=now,
            recorded_by=user,
        )
        if old is not None:
            old.superseded_by_id = row.pk
        batch.append((row, old))
        results.append(Recorded(observation=row, created=True, superseded=old))
    if counter is not None:
        counter.advance(len(plan) - len(batch))  # values already recorded need no writing
    if not batch:
        return results
    try:
        with transaction.atomic():
            for start in range(0, len(batch), WRITE_BATCH):
                chunk = batch[start : start + WRITE_BATCH]
                # Old rows stop being current first, then their successors are inserted (see _reserve_ids).
                superseded = [old for _, old in chunk if old is not None]
                if superseded:
                    MetricObservation.objects.bulk_update(superseded, ["superseded_by"], batch_size=WRITE_BATCH)
                MetricObservation.objects.bulk_create([row for row, _ in chunk], batch_size=WRITE_BATCH)
                if counter is not None:
                    counter.advance(len(chunk))
    except IntegrityError as error:
        raise ValidationError(
            "Another change to the same values was saved at the same time; nothing was recorded. Try again.",
            code="concurrent_change",
        ) from error
    if audit_each:
        for result, entry in ((r, e) for r, e in zip(results, entries, strict=True) if r.created):
            _audit_value(result, entry, by=by)
    _after_observations_changed({entry.period for entry, _old in adding})
    return results


def _audit_value(result: Recorded, entry: ObservationInput, *, by: User | ApiKey | None) -> None:
    """One value entered by hand: its own audit event, with the value it replaces."""
    old = result.superseded
    changes = {
        "partner": [None, entry.partner.name],
        "metric": [None, entry.metric.key],
        "period": [None, entry.period],
        "value": [None if old is None else str(old.value), str(result.observation.value)],
        "source": [None, entry.source],
    }
    if entry.source_ref:
        changes["source_ref"] = [None, entry.source_ref]
    if entry.note:
        changes["note"] = [None, entry.note]
    if old is not None:
        changes["supersedes"] = [None, old.pk]
    audit(actor=by, verb="observation.recorded", target=result.observation, changes=changes)


def _audit_batch(
    *,
    verb: str,
    by: User | ApiKey | None,
    entries: list[ObservationInput],
    results: list[Recorded],
    target: models.Model | None,
) -> None:
    """One audit event for a batch that added values: how many, for which periods, from where.

    The per-value detail stays in the observations themselves (each names its source reference),
    so a batch of thousands of values costs one event, not thousands.
    """
    created = [(result, entry) for result, entry in zip(results, entries, strict=True) if result.created]
    if not created:
        return
    refs = sorted({entry.source_ref for _, entry in created if entry.source_ref})
    notes = [
        f"{entry.partner.name} · {entry.metric.key} · {entry.period}: {entry.note}"
        for _, entry in created
        if entry.note
    ]
    changes: dict[str, list[Any]] = {
        "observations": [None, len(created)],
        "replaced": [None, sum(result.superseded is not None for result, _ in created)],
        "unchanged": [None, len(results) - len(created)],
        "periods": [None, sorted({entry.period for _, entry in created})],
        "source": [None, ", ".join(sorted({entry.source for _, entry in created}))],
    }
    if len(refs) == 1:
        changes["source_ref"] = [None, refs[0]]
    elif refs:
        changes["source_refs"] = [None, refs[:20] + ([f"…and {len(refs) - 20:,} more"] if len(refs) > 20 else [])]
    if notes:
        more = [f"…and {len(notes) - MAX_AUDITED_NOTES:,} more notes"] if len(notes) > MAX_AUDITED_NOTES else []
        changes["notes"] = [None, notes[:MAX_AUDITED_NOTES] + more]
    if target is None:
        target = Tenant.objects.get(pk=current_tenant_id())
    audit(actor=by, verb=verb, target=target, changes=changes)


@transaction.atomic
def observation_record(
    *,
    partner: Partner,
    metric: Metric,
    period: str,
    value: Any,
    source: str = ObservationSource.MANUAL,
    source_ref: str = "",
    by: User | ApiKey | None,
    note: str = "",
) -> tuple[MetricObservation, bool]:
    """Record a partner's value of a metric for a period; returns (the current observation, created).

    A different value supersedes the current one; the same value, or one this source reference
    recorded before, adds nothing.
    """
    if partner.tenant_id != current_tenant_id():
        raise ValidationError({"partner": "Choose a partner of this workspace."})
    _clean_metric(metric)
    source_ref = _clean_source(source, source_ref)
    tenant = Tenant.objects.get(pk=current_tenant_id())
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, Any] = {}
    for name, clean in (
        ("period", lambda: clean_period(period, tenant=tenant)),
        ("value", lambda: clean_value(value, metric=metric)),
    ):
        try:
            cleaned[name] = clean()
        except ValidationError as error:
            errors.update(error.message_dict)
    if errors:
        raise ValidationError(errors)
    entry = ObservationInput(
        partner=partner,
        metric=metric,
        period=cleaned["period"],
        value=cleaned["value"],
        source=source,
        source_ref=source_ref,
        note=(note or "").strip(),
    )
    [result] = _write([entry], by=by)
    return result.observation, result.created


def partner_lookup(text: str) -> Partner:
    """The partner named by ``text``: its name (in any case), HubSpot or Salesforce id, as in uploads."""
    row = {"partner": text if isinstance(text, str) else ""}
    partner, _column, reason = _partner_resolver([row])(row)
    if partner is None:
        raise ValidationError({"partner": reason})
    return partner


# --- Many values at once: the shared validation -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EntryError:
    """A problem with one input of a batch: its position (row or index), the field, and why."""

    position: int | None
    field: str
    message: str


@dataclass
class RawEntry:
    """One input of a batch as it arrived: text or numbers, nothing resolved yet."""

    position: int
    partner: Partner | None
    partner_field: str
    metric: Any
    period: Any
    value: Any
    source_ref: Any = ""
    note: Any = ""
    errors: list[EntryError] = field(default_factory=list)
    malformed: bool = False  # not even shaped like an observation; its one error says so

    def fail(self, field_name: str, message: str) -> None:
        self.errors.append(EntryError(self.position, field_name, message))


def _did_you_mean(text: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(text, list(choices), n=1)
    return f" Did you mean “{close[0]}”?" if close else ""


def _validate_batch(
    raw: list[RawEntry], *, source: str, default_ref: str = "", position_word: str, counter: _Counter | None = None
) -> list[ObservationInput | None]:
    """Validate every entry (errors collect on the entries); one query per kind of lookup.

    ``counter`` advances by one per entry checked.
    """
    tenant = Tenant.objects.get(pk=current_tenant_id())
    keys = {str(entry.metric).strip().lower() for entry in raw if isinstance(entry.metric, str)}
    metrics = {metric.key: metric for metric in Metric.objects.filter(key__in=keys)}
    all_keys: list[str] | None = None
    entries: list[ObservationInput | None] = []
    first_seen: dict[tuple[int, int, str], int] = {}
    for entry in raw:
        if counter is not None:
            counter.advance()
        if entry.malformed:
            entries.append(None)
            continue
        metric = None
        if not isinstance(entry.metric, str) or not entry.metric.strip():
            entry.fail("metric", "Name the metric by its key, e.g. revenue_won.")
        else:
            key = entry.metric.strip().lower()
            metric = metrics.get(key)
            if metric is None:
                if all_keys is None:
                    all_keys = list(Metric.objects.values_list("key", flat=True))
                hint = _did_you_mean(key, all_keys)
                entry.fail("metric", f"There is no metric with the key “{entry.metric.strip()}”.{hint}")
            elif not metric.is_active:
                entry.fail("metric", f"{metric.name} is no longer in use in the catalogue.")
                metric = None
        period = None
        try:
            period = clean_period(entry.period, tenant=tenant)
        except ValidationError as error:
            entry.fail("period", error.message_dict["period"][0])
        value = None
        if metric is not None:
            try:
                value = clean_value(entry.value, metric=metric)
            except ValidationError as error:
                entry.fail("value", error.message_dict["value"][0])
        ref = entry.source_ref if entry.source_ref not in (None, "") else default_ref
        try:
            ref = _clean_source(source, ref)
        except ValidationError as error:
            entry.fail("source_ref", error.message_dict["source_ref"][0])
        note = entry.note or ""
        if not isinstance(note, str):
            entry.fail("note", "Write the note as text.")
        if entry.errors or entry.partner is None:
            entries.append(None)
            continue
        item = ObservationInput(
            partner=entry.partner,
            metric=metric,
            period=period,
            value=value,
            source=source,
            source_ref=ref,
            note=note.strip()[:500],
        )
        earlier = first_seen.setdefault(item.key, entry.position)
        if earlier != entry.position:
            entry.fail(
                entry.partner_field,
                f"Repeats {position_word} {earlier}: a partner has one value per metric and period.",
            )
            entries.append(None)
            continue
        entries.append(item)
    return entries


# --- Bulk through the API ----------------------------------------------------------------------------


@dataclass
class BulkResult:
    """Per input, in order: ``created``, ``unchanged`` or ``invalid``, and whether anything was written."""

    statuses: list[str]
    observations: list[MetricObservation | None]
    errors: list[EntryError]
    written: bool

    def count(self, status: str) -> int:
        return self.statuses.count(status)


def _partner_id(value: Any) -> int | None:
    """A partner id as an API client may send it (a number, or digits as text), when it can be one."""
    if isinstance(value, str) and value.isascii() and value.strip().isdigit() and len(value.strip()) < 20:
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63:
        return value
    return None


@transaction.atomic
def observations_bulk_record(
    *, items: list[dict[str, Any]], by: User | ApiKey | None, atomic: bool = True, source: str | None = None
) -> BulkResult:
    """Record many values (partner id, metric key, period, value, optional source_ref and note).

    Every item is validated first. With ``atomic`` one invalid item means nothing is written;
    without it the valid items are recorded and the invalid ones reported. A call that adds
    values writes one audit event (``observations.bulk_recorded``) naming how many and for
    which periods.
    """
    if len(items) > MAX_BULK_ITEMS:
        raise ValidationError(f"Send at most {MAX_BULK_ITEMS:,} observations per request; this one has {len(items):,}.")
    source = source or (ObservationSource.API if isinstance(by, ApiKey) else ObservationSource.MANUAL)
    ids = {_partner_id(item.get("partner")) for item in items if isinstance(item, dict)} - {None}
    partners = Partner.objects.in_bulk(list(ids))
    raw = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            entry = RawEntry(index, None, "partner", None, None, None, malformed=True)
            entry.errors.append(EntryError(index, "non_field_errors", "Each observation is an object."))
            raw.append(entry)
            continue
        partner = partners.get(_partner_id(item.get("partner")))
        entry = RawEntry(
            index,
            partner,
            "partner",
            item.get("metric"),
            item.get("period"),
            item.get("value"),
            item.get("source_ref", ""),
            item.get("note", ""),
        )
        if partner is None:
            entry.fail("partner", "There is no partner with this id.")
        raw.append(entry)
    entries = _validate_batch(raw, source=source, position_word="item")
    errors = [error for entry in raw for error in entry.errors]
    statuses = ["invalid" if entry is None else "valid" for entry in entries]
    observations: list[MetricObservation | None] = [None] * len(entries)
    if errors and atomic:
        return BulkResult(statuses=statuses, observations=observations, errors=errors, written=False)
    valid = [(index, entry) for index, entry in enumerate(entries) if entry is not None]
    written = [entry for _, entry in valid]
    results = _write(written, by=by, audit_each=False)
    _audit_batch(verb="observations.bulk_recorded", by=by, entries=written, results=results, target=None)
    for (index, _entry), result in zip(valid, results, strict=True):
        statuses[index] = "created" if result.created else "unchanged"
        observations[index] = result.observation
    return BulkResult(statuses=statuses, observations=observations, errors=errors, written=bool(valid))


# --- File upload --------------------------------------------------------------------------------------

PARTNER_COLUMNS = ("partner", "partner_id")
REQUIRED_COLUMNS = ("metric", "period", "value")
OPTIONAL_COLUMNS = ("note",)
KNOWN_COLUMNS = (*PARTNER_COLUMNS, *REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)
COLUMNS_HELP = "partner (a name, HubSpot or Salesforce id) or partner_id, metric, period, value and an optional note"
COLUMNS = Columns(
    required=REQUIRED_COLUMNS, optional=OPTIONAL_COLUMNS, one_of=PARTNER_COLUMNS, help=COLUMNS_HELP, numbers=("value",)
)


@dataclass
class ImportResult:
    """What an upload did, or would do (dry run); ``errors`` means nothing was written."""

    rows: int = 0
    created: int = 0
    replaced: int = 0  # of the created values, those that supersede an earlier value
    unchanged: int = 0
    errors: list[EntryError] = field(default_factory=list)
    periods: list[str] = field(default_factory=list)
    dry_run: bool = False
    source_ref: str = ""
    notes: list[str] = field(default_factory=list)  # what reading the file says, such as which sheet was read

    @property
    def written(self) -> bool:
        return not self.dry_run and not self.errors and self.created > 0


def _file_error(message: str, *, dry_run: bool) -> ImportResult:
    return ImportResult(errors=[EntryError(None, "", message)], dry_run=dry_run)


def _read_bytes(file: BinaryIO | bytes) -> bytes:
    if isinstance(file, bytes | bytearray | memoryview):
        return bytes(file[: MAX_UPLOAD_BYTES + 1])
    if hasattr(file, "seek"):
        file.seek(0)
    data = file.read(MAX_UPLOAD_BYTES + 1)
    return data.encode() if isinstance(data, str) else data


def _partner_resolver(rows: list[dict[str, str]]) -> Callable[[dict[str, str]], tuple[Partner | None, str, str]]:
    """Look partners up by id, name, HubSpot or Salesforce id, in two queries for the whole file."""
    ids = {row.get("partner_id", "").strip() for row in rows} - {""}
    by_id = Partner.objects.in_bulk([int(text) for text in ids if text.isascii() and text.isdigit() and len(text) < 19])
    texts = {row.get("partner", "").strip() for row in rows} - {""}
    matches: dict[str, set[int]] = {}
    partners: dict[int, Partner] = {}
    if texts:
        lowered = {text.lower() for text in texts}
        found = Partner.objects.annotate(lower_name=Lower("name")).filter(
            Q(lower_name__in=lowered) | Q(hubspot_company_id__in=texts) | Q(salesforce_account_id__in=texts)
        )
        for partner in found:
            partners[partner.pk] = partner
            for candidate in (partner.name.lower(), partner.hubspot_company_id, partner.salesforce_account_id):
                if candidate:
                    matches.setdefault(candidate, set()).add(partner.pk)

    def resolve(row: dict[str, str]) -> tuple[Partner | None, str, str]:
        """(partner, the column it came from, the reason when there is none)."""
        text_id = row.get("partner_id", "").strip()
        if text_id:
            if not (text_id.isascii() and text_id.isdigit()):
                return None, "partner_id", f"“{text_id}” is not a partner id; ids are whole numbers."
            partner = by_id.get(int(text_id)) if len(text_id) < 19 else None
            return partner, "partner_id", "" if partner else f"There is no partner with the id {text_id}."
        text = row.get("partner", "").strip()
        if not text:
            return None, "partner", "Name the partner, or give its HubSpot or Salesforce id."
        found = matches.get(text.lower(), set()) | matches.get(text, set())
        if len(found) > 1:
            return None, "partner", f"“{text}” matches more than one partner; use the partner_id column for this row."
        if not found:
            return None, "partner", f"There is no partner named “{text}” or with that HubSpot or Salesforce id."
        return partners[found.pop()], "partner", ""

    return resolve


def _error_order(error: EntryError) -> tuple[int, int]:
    column = KNOWN_COLUMNS.index(error.field) if error.field in KNOWN_COLUMNS else -1
    return (error.position or 0, column)


@transaction.atomic
def observations_import_csv(
    *,
    file: BinaryIO | bytes,
    by: User | ApiKey | None,
    dry_run: bool = False,
    progress: Progress | None = None,
    audit_target: models.Model | None = None,
    name: str = "",
) -> ImportResult:
    """Record the observations of a CSV or XLSX file (:mod:`partnerhub.integrations.tabular`), all of them or none.

    Every row is validated first; any error means nothing is written and every problem is
    reported with its row (the header is row 1), column and reason. ``dry_run`` reports what an
    upload would do without writing. Uploading the same file again adds nothing.

    ``progress(done, total)`` is called every few hundred rows: each row counts once when it is
    checked and, unless this is a dry run, once more when it is written, so ``total`` is the
    number of rows (dry run) or twice that. A file that adds values writes one audit event,
    ``observations.imported``, on ``audit_target`` (the stored upload) or else the workspace.
    ``name`` (by default the file's own) tells an old .xls workbook from a CSV file.
    """
    data = _read_bytes(file)
    if len(data) > MAX_UPLOAD_BYTES:
        return _file_error(
            f"The file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB; split it into smaller files.",
            dry_run=dry_run,
        )
    if not data.strip():
        return _file_error(f"The file is empty; the first row names the columns: {COLUMNS_HELP}.", dry_run=dry_run)
    name = name or str(getattr(file, "name", "") or "")
    source_ref = f"upload:sha256:{hashlib.sha256(data).hexdigest()}"
    try:
        table = read_table(data, name=name, max_rows=MAX_UPLOAD_ROWS, known=KNOWN_COLUMNS)
    except TableError as error:
        return ImportResult(errors=[EntryError(error.row, "", error.message)], dry_run=dry_run, source_ref=source_ref)
    rows, problems = map_rows(table, COLUMNS)
    errors = [EntryError(problem.row, problem.column, problem.message) for problem in problems]
    result = ImportResult(rows=len(rows), dry_run=dry_run, source_ref=source_ref, notes=table.notes)
    counter = _Counter(progress, len(rows) * (1 if dry_run else 2))
    if progress is not None:
        progress(0, counter.total)
    resolve = _partner_resolver([row for _, row in rows])
    raw = []
    for number, row in rows:
        partner, column, reason = resolve(row)
        entry = RawEntry(
            number, partner, column, row.get("metric", ""), row.get("period", ""), row.get("value", ""),
            source_ref, row.get("note", ""),
        )  # fmt: skip
        if partner is None:
            entry.fail(column, reason)
        raw.append(entry)
    entries = _validate_batch(
        raw, source=ObservationSource.UPLOAD, default_ref=source_ref, position_word="row", counter=counter
    )
    errors.extend(error for entry in raw for error in entry.errors)
    if errors:
        errors.sort(key=_error_order)
        if len(errors) > MAX_REPORTED_ERRORS:
            more = len(errors) - MAX_REPORTED_ERRORS
            errors = [*errors[:MAX_REPORTED_ERRORS], EntryError(None, "", f"…and {more:,} more problems.")]
        result.errors = errors
        return result
    valid = [entry for entry in entries if entry is not None]
    if dry_run:
        plan = _plan(valid, lock=False)
        result.created = sum(adds for _, _, adds in plan)
        result.replaced = sum(adds and old is not None for _, old, adds in plan)
        result.periods = sorted({entry.period for entry, _, adds in plan if adds})
    else:
        outcomes = _write(valid, by=by, audit_each=False, counter=counter)
        result.created = sum(outcome.created for outcome in outcomes)
        result.replaced = sum(outcome.superseded is not None for outcome in outcomes)
        result.periods = sorted({outcome.observation.period for outcome in outcomes if outcome.created})
        _audit_batch(verb="observations.imported", by=by, entries=valid, results=outcomes, target=audit_target)
    result.unchanged = len(valid) - result.created
    return result


# --- Values derived from facts ------------------------------------------------------------------------


@transaction.atomic
def observations_record_derived(
    *, values: dict[tuple[int, str, str], Decimal], source_ref: str, target: models.Model | None = None
) -> int:
    """Record values derived from facts (deals, marketing facts): ``{(partner id, metric key, period): value}``.

    Values come from our own derivation, not from a person, so they are not held to the
    plausible bounds (an implausible derived value is a data-health matter, flagged there); the
    metric must exist and be in use, others are skipped. One audit event for the batch, naming
    the sync run or upload (``source_ref``). Returns how many values were added.
    """
    if not values:
        return 0
    keys = {metric for _, metric, _ in values}
    metrics = {metric.key: metric for metric in Metric.objects.filter(key__in=keys, is_active=True)}
    partners = Partner.objects.in_bulk({partner_id for partner_id, _, _ in values})
    entries = [
        ObservationInput(
            partner=partners[partner_id],
            metric=metrics[metric],
            period=period,
            value=value,
            source=ObservationSource.DERIVED,
            source_ref=source_ref,
        )
        for (partner_id, metric, period), value in sorted(values.items())
        if metric in metrics and partner_id in partners
    ]
    results = _write(entries, by=None, audit_each=False)
    _audit_batch(verb="observations.derived", by=None, entries=entries, results=results, target=target)
    return sum(result.created for result in results)
