"""Deals pushed in batches (the API today, files later): checked item by item, upserted by external id.

A batch is a list of deals as the sender's system knows them. Each is validated on its own and
gets its own result; with ``atomic`` (the default) one invalid deal means nothing is written.
Valid deals are upserted by (tenant, source, external id) into the tenant's API-push data source
(or the one named): a new id is created, a known one updated when anything differs, and left
alone when nothing does, so sending the same batch twice writes nothing the second time. A deal
whose partner reference matches no partner is stored without a partner (the unmatched queue,
resolved when an administrator maps the reference), never dropped. ``deleted: true`` marks a
known deal deleted.

The deals of the partners and periods a batch changed are then derived into observations, in the
same transaction (:func:`partnerhub.integrations.facts.record_deal_observations`).
"""

from __future__ import annotations

import datetime
import re
import uuid
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from partnerhub.integrations.facts import record_deal_observations
from partnerhub.integrations.source_models import DataSource, Deal, SourceKind
from partnerhub.integrations.sync import PartnerMatcher
from partnerhub.partners.models import Partner
from partnerhub.tenancy.audit import audit
from partnerhub.tenancy.context import current_tenant_id
from partnerhub.tenancy.models import ApiKey, User

MAX_DEALS = 5_000
API_PUSH_SOURCE_NAME = "API push"
WRITE_BATCH = 500
CENT = Decimal("0.01")
LARGEST_AMOUNT = Decimal("1e16")  # the column holds 18 digits, 2 of them after the point
EARLIEST_DAY = datetime.date(1900, 1, 1)
LATEST_DAY = datetime.date(2199, 12, 31)
DATE_FORMAT = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
CURRENCY_FORMAT = re.compile(r"[A-Za-z]{3}", re.ASCII)
MAX_ID = 2**63 - 1

# What a stored deal's columns are compared on to tell an update from a repeat.
COMPARED = (
    "partner_id", "partner_ref", "name", "amount", "currency", "stage", "closed", "won", "created_on", "close_date",
)  # fmt: skip
WRITTEN = (*[name.removesuffix("_id") for name in COMPARED], "modified_at", "deleted_at", "updated_at")


class Status:
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    UNMATCHED = "unmatched"  # stored (created, updated or as it was) without a partner
    DELETED = "deleted"
    INVALID = "invalid"
    VALID = "valid"  # valid, but not written: another deal of an atomic batch is invalid


STATUSES = (
    Status.CREATED, Status.UPDATED, Status.UNCHANGED, Status.UNMATCHED, Status.DELETED, Status.INVALID, Status.VALID,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class DealError:
    """A problem with one deal of a batch: its index (from 0), the field, and why."""

    index: int
    field: str
    message: str


@dataclass
class DealInput:
    """One deal as validated, ready to store; the partner is resolved after the whole batch is read."""

    index: int
    external_id: str
    deleted: bool = False
    partner_id: int | None = None
    partner_ref: str = ""
    name: str = ""
    amount: Decimal | None = None
    currency: str = ""
    stage: str = ""
    closed: bool = False
    won: bool = False
    created_on: datetime.date | None = None
    close_date: datetime.date | None = None


@dataclass
class DealsBulkResult:
    """Per deal, in order: its status and the stored deal; the problems; whether the batch was taken."""

    source: DataSource
    statuses: list[str]
    deals: list[Deal | None]
    errors: list[DealError]
    written: bool
    observations_written: int = 0
    changes: dict[str, int] = field(default_factory=dict)  # created, updated, deleted: rows written

    def count(self, status: str) -> int:
        return self.statuses.count(status)


# --- Reading one deal ------------------------------------------------------------------------------------


class _Problems:
    """The problems of one deal, collected field by field."""

    def __init__(self, index: int):
        self.index = index
        self.errors: list[DealError] = []

    def add(self, field_name: str, message: str) -> None:
        self.errors.append(DealError(self.index, field_name, message))

    def has(self, field_name: str) -> bool:
        return any(error.field == field_name for error in self.errors)


def _shown(value: Any) -> str:
    """A value the sender gave, short and safe to put in a message."""
    text = str(value)
    text = text if len(text) <= 40 else f"{text[:40]}…"
    return text.encode("utf-8", "replace").decode("utf-8")


def _text(item: dict, name: str, problems: _Problems, *, limit: int, numbers: bool = False) -> str:
    """A text field ('' when absent); ``numbers`` also takes whole numbers (ids)."""
    value = item.get(name)
    if value is None:
        return ""
    if numbers and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        problems.add(name, "Give this as text." if not numbers else "Give this as text or a whole number.")
        return ""
    value = value.strip()
    if "\x00" in value:
        problems.add(name, "This text contains a NUL character, which cannot be stored.")
        return ""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        problems.add(name, "This text contains characters that are not valid Unicode (unpaired surrogates).")
        return ""
    if len(value) > limit:
        problems.add(name, f"Keep this to {limit} characters; it has {len(value)}.")
        return ""
    return value


def _flag(item: dict, name: str, problems: _Problems) -> bool | None:
    value = item.get(name)
    if value is None or isinstance(value, bool):
        return value
    problems.add(name, "Give true or false.")
    return None


def _day(item: dict, name: str, problems: _Problems) -> datetime.date | None:
    value = item.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not DATE_FORMAT.fullmatch(value.strip()):
        problems.add(name, "Give the date as YYYY-MM-DD, e.g. 2026-07-01.")
        return None
    try:
        day = datetime.date.fromisoformat(value.strip())
    except ValueError:
        problems.add(name, f"{value.strip()} is not a date; give it as YYYY-MM-DD.")
        return None
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        problems.add(name, f"{day.isoformat()} is outside the years 1900 to 2199.")
        return None
    return day


def _amount(item: dict, problems: _Problems) -> Decimal | None:
    value = item.get("amount")
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    hint = "Give the amount as a number, like 1234.50 (a dot for decimals, no thousands separators)."
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        problems.add("amount", hint)
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        problems.add("amount", f"“{_shown(value)}” is not a number. {hint}")
        return None
    if number < 0:
        problems.add("amount", "An amount cannot be negative.")
        return None
    if number >= LARGEST_AMOUNT:
        problems.add("amount", "This amount is too large to store.")
        return None
    return number.quantize(CENT, rounding=ROUND_HALF_EVEN)


def _partner_id(value: Any) -> int | None:
    if isinstance(value, str) and value.isascii() and value.strip().isdigit() and len(value.strip()) < 20:
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ID:
        return value
    return None


def _read(index: int, item: Any, today: datetime.date) -> tuple[DealInput | None, list[DealError]]:
    """One deal of a batch, validated on its own (partners are looked up later, for the whole batch)."""
    problems = _Problems(index)
    if not isinstance(item, dict):
        problems.add("non_field_errors", "Each deal is an object.")
        return None, problems.errors
    external_id = _text(item, "external_id", problems, limit=64, numbers=True)
    if not external_id and not problems.errors:
        problems.add("external_id", "Give the deal's id in your system (at most 64 characters).")
    deleted = _flag(item, "deleted", problems)
    if deleted:
        # Deleting needs only the id; whatever else the deal says is not read.
        gone = None if problems.errors else DealInput(index=index, external_id=external_id, deleted=True)
        return gone, problems.errors
    entry = DealInput(index=index, external_id=external_id)
    partner = item.get("partner")
    if partner is not None:
        entry.partner_id = _partner_id(partner)
        if entry.partner_id is None:
            problems.add("partner", "Give the partner's PartnerHub id as a whole number.")
    entry.partner_ref = _text(item, "partner_ref", problems, limit=200, numbers=True)
    if partner is None and not entry.partner_ref and not problems.has("partner_ref"):
        problems.add(
            "partner", "Name the partner: its PartnerHub id (partner) or how your system names it (partner_ref)."
        )
    entry.name = _text(item, "name", problems, limit=255)
    entry.stage = _text(item, "stage", problems, limit=120)
    entry.amount = _amount(item, problems)
    currency = _text(item, "currency", problems, limit=200)
    if currency and not CURRENCY_FORMAT.fullmatch(currency):
        problems.add("currency", "Give the currency as a three-letter code, like EUR.")
    elif not currency and entry.amount is not None and not problems.has("currency"):
        problems.add("currency", "Give the amount's currency as a three-letter code, like EUR.")
    entry.currency = currency.upper()
    closed, won = _flag(item, "closed", problems), _flag(item, "won", problems)
    if won and closed is False:
        problems.add("won", "A won deal is closed: send closed: true, or leave closed out.")
    entry.won = bool(won)
    entry.closed = bool(closed or won)
    entry.created_on = _day(item, "created_on", problems)
    if entry.created_on is None and not problems.has("created_on"):
        problems.add("created_on", "Give the day the deal was created, as YYYY-MM-DD.")
    elif entry.created_on is not None and entry.created_on > today + datetime.timedelta(days=1):
        problems.add(
            "created_on", f"{entry.created_on.isoformat()} is in the future; a deal is created on or before today."
        )
    close_date = _day(item, "close_date", problems)
    if entry.closed:
        entry.close_date = close_date
        if close_date is None and not problems.has("close_date"):
            problems.add("close_date", "A closed deal needs its close date, as YYYY-MM-DD.")
    return (None if problems.errors else entry), problems.errors


# --- The source ----------------------------------------------------------------------------------------


def api_push_source() -> DataSource:
    """The tenant's API-push data source, created the first time deals are pushed without naming one."""
    source = DataSource.objects.filter(kind=SourceKind.API, name=API_PUSH_SOURCE_NAME).first()
    if source is not None:
        return source
    try:
        with transaction.atomic():
            return DataSource.objects.create(name=API_PUSH_SOURCE_NAME, kind=SourceKind.API, schedule_minutes=0)
    except IntegrityError:
        # Created by a concurrent push, or the name belongs to a source of another kind.
        source = DataSource.objects.filter(name=API_PUSH_SOURCE_NAME).first()
        if source is None or source.kind != SourceKind.API:
            raise ValidationError(
                {
                    "source": f"The data source name “{API_PUSH_SOURCE_NAME}” is taken by a source of another kind; "
                    "name the API-push source to use."
                }
            ) from None
        return source


def _checked_source(source: DataSource | None) -> DataSource:
    source = source if source is not None else api_push_source()
    if source.kind != SourceKind.API:
        raise ValidationError(
            {"source": f"{source.name} is a {source.get_kind_display()} source; deals are pushed to API-push sources."}
        )
    if not source.is_active:
        raise ValidationError({"source": f"{source.name} is switched off; switch it on to receive deals."})
    return source


# --- Recording a batch -----------------------------------------------------------------------------------


class _Touched:
    """Partners and days whose derived values a batch changes: before and after each change."""

    def __init__(self):
        self.partner_ids: set[int] = set()
        self.days: set[datetime.date] = set()

    def add(self, deal: Deal) -> None:
        if deal.partner_id is None or deal.deleted_at is not None:
            return
        self.partner_ids.add(deal.partner_id)
        self.days.add(deal.created_on)
        if deal.close_date is not None:
            self.days.add(deal.close_date)


def _same(deal: Deal, entry: DealInput, partner_id: int | None) -> bool:
    incoming = {**{name: getattr(entry, name) for name in COMPARED if name != "partner_id"}, "partner_id": partner_id}
    return deal.deleted_at is None and all(getattr(deal, name) == incoming[name] for name in COMPARED)


def _apply(deal: Deal, entry: DealInput, partner_id: int | None, now: datetime.datetime) -> None:
    deal.partner_id = partner_id
    for name in COMPARED:
        if name != "partner_id":
            setattr(deal, name, getattr(entry, name))
    deal.modified_at = deal.updated_at = now
    deal.deleted_at = None


def _resolve_partners(entries: list[DealInput], matcher: PartnerMatcher, errors: list[DealError]) -> dict[int, int]:
    """Each entry's partner id (by index), or no key when its reference matches no partner yet.

    A PartnerHub id that names no partner of this tenant is an error; a reference of the
    sender's that matches none is not (the deal waits in the unmatched queue).
    """
    ids = {entry.partner_id for entry in entries if entry.partner_id is not None}
    known = set(Partner.objects.filter(pk__in=ids).values_list("pk", flat=True)) if ids else set()
    matcher.prepare(entry.partner_ref for entry in entries if entry.partner_id is None)
    resolved = {}
    for entry in entries:
        if entry.partner_id is not None:
            if entry.partner_id in known:
                resolved[entry.index] = entry.partner_id
            else:
                errors.append(DealError(entry.index, "partner", "There is no partner with this id."))
            continue
        partner_id = matcher.partner_id(entry.partner_ref)
        if partner_id is not None:
            resolved[entry.index] = partner_id
    return resolved


@transaction.atomic
def deals_bulk_record(
    *,
    items: list[Any],
    by: User | ApiKey | None,
    atomic: bool = True,
    source: DataSource | None = None,
    source_ref: str | None = None,
) -> DealsBulkResult:
    """Record a batch of deals into ``source`` (by default the tenant's API-push source).

    Every deal is validated first. With ``atomic`` one invalid deal means nothing is written;
    without it the valid deals are recorded and the invalid ones reported. The observations of
    the partners and periods that changed are derived with ``source_ref`` (``api:<request>``).
    A batch that changes deals writes one audit event (``deals.bulk_recorded``) on the source.
    """
    if not isinstance(items, list):
        raise ValidationError({"deals": "Send the deals as a list."})
    if len(items) > MAX_DEALS:
        raise ValidationError({"deals": f"Send at most {MAX_DEALS:,} deals per request; this one has {len(items):,}."})
    source = _checked_source(source)
    source_ref = source_ref or f"api:{uuid.uuid4().hex}"
    today = timezone.localdate()
    read = [_read(index, item, today) for index, item in enumerate(items)]
    errors = [error for _, item_errors in read for error in item_errors]
    entries = [entry for entry, _ in read if entry is not None]
    first_seen: dict[str, int] = {}
    for entry in list(entries):
        earlier = first_seen.setdefault(entry.external_id, entry.index)
        if earlier != entry.index:
            errors.append(
                DealError(entry.index, "external_id", f"Repeats deal {earlier}: each deal appears once per request.")
            )
    matcher = PartnerMatcher(source)
    partners = _resolve_partners([entry for entry in entries if not entry.deleted], matcher, errors)
    failed = {error.index for error in errors}
    entries = [entry for entry in entries if entry.index not in failed]
    errors.sort(key=lambda error: error.index)
    statuses = [Status.INVALID if index in failed else Status.VALID for index in range(len(items))]
    deals: list[Deal | None] = [None] * len(items)
    result = DealsBulkResult(source=source, statuses=statuses, deals=deals, errors=errors, written=False)
    if (errors and atomic) or not entries:
        return result

    creates, updates, touched = deals_upsert(
        entries=entries,
        partners=partners,
        source=source,
        result=result,
        conflict="Another request changed the same deals at the same time; nothing was recorded. Send the batch again.",
    )
    result.written = True
    if creates or updates:
        result.observations_written = record_deal_observations(
            partner_ids=touched.partner_ids, days=touched.days, currency=source.currency, source_ref=source_ref
        )
        unmatched = sum(deal.partner_id is None and deal.deleted_at is None for deal in creates + updates)
        _audit(result, by=by, source_ref=source_ref, unmatched=unmatched)
    return result


def deals_upsert(
    *,
    entries: list[DealInput],
    partners: dict[int, int],
    source: DataSource,
    result: DealsBulkResult,
    conflict: str,
    upload=None,
    dry_run: bool = False,
) -> tuple[list[Deal], list[Deal], _Touched]:
    """Plan and write valid deals into ``source``: the one upsert behind pushed batches and uploaded files.

    A new external id is created, a known one updated when a compared column differs (or it was
    deleted), left alone when nothing does; ``deleted`` marks a known deal deleted. Each entry's
    status and deal go into ``result`` and ``result.changes`` counts what changed. The stored deals
    are locked for the write, so two writers of the same deals queue; a conflict that still gets
    through (two new deals with one id at once) is refused with ``conflict`` and writes nothing.
    ``upload`` is named on every deal it changes; ``dry_run`` plans without locking or writing.
    Returns the deals to create and to update, and the partners and days they count in, before
    and after.
    """
    statuses, found = result.statuses, result.deals
    stored = Deal.objects.filter(source=source, external_id__in=[entry.external_id for entry in entries])
    existing = {deal.external_id: deal for deal in (stored if dry_run else stored.select_for_update())}
    now, tenant_id = timezone.now(), current_tenant_id()
    touched = _Touched()
    creates: list[Deal] = []
    updates: list[Deal] = []
    for entry in entries:
        deal = existing.get(entry.external_id)
        found[entry.index] = deal
        if entry.deleted:
            if deal is None or deal.deleted_at is not None:
                statuses[entry.index] = Status.UNCHANGED  # unknown here, or deleted already
                continue
            touched.add(deal)
            deal.deleted_at = deal.modified_at = deal.updated_at = now
            if upload is not None:
                deal.upload = upload
            updates.append(deal)
            statuses[entry.index] = Status.DELETED
            continue
        partner_id = partners.get(entry.index)
        if deal is None:
            deal = Deal(tenant_id=tenant_id, source=source, external_id=entry.external_id, first_seen_at=now)
            _apply(deal, entry, partner_id, now)
            creates.append(deal)
            found[entry.index] = deal
            statuses[entry.index] = Status.CREATED
        elif _same(deal, entry, partner_id):
            statuses[entry.index] = Status.UNCHANGED
        else:
            touched.add(deal)  # the periods it counted in before the change
            _apply(deal, entry, partner_id, now)
            updates.append(deal)
            statuses[entry.index] = Status.UPDATED
        if statuses[entry.index] != Status.UNCHANGED:
            if upload is not None:
                deal.upload = upload
            touched.add(deal)  # and the periods it counts in now
        if deal.partner_id is None:
            statuses[entry.index] = Status.UNMATCHED
    result.changes = {
        "created": len(creates),
        "updated": sum(deal.deleted_at is None for deal in updates),
        "deleted": sum(deal.deleted_at is not None for deal in updates),
    }
    if dry_run:
        return creates, updates, touched
    try:
        with transaction.atomic():
            Deal.objects.bulk_create(creates, batch_size=WRITE_BATCH)
            if updates:
                written = [*WRITTEN, "upload"] if upload is not None else list(WRITTEN)
                Deal.objects.bulk_update(updates, fields=written, batch_size=WRITE_BATCH)
    except IntegrityError as error:
        raise ValidationError(conflict, code="concurrent_change") from error
    return creates, updates, touched


def _audit(result: DealsBulkResult, *, by: User | ApiKey | None, source_ref: str, unmatched: int) -> None:
    """One event for the batch: how many deals it created, updated and deleted, into which source."""
    changes = {
        "deals": [None, sum(status != Status.INVALID for status in result.statuses)],
        **{name: [None, count] for name, count in result.changes.items()},
        "unmatched": [None, unmatched],
        "unchanged": [None, result.count(Status.UNCHANGED)],
        "invalid": [None, result.count(Status.INVALID)],
        "source": [None, result.source.name],
        "source_ref": [None, source_ref],
        "observations": [None, result.observations_written],
    }
    audit(actor=by, verb="deals.bulk_recorded", target=result.source, changes=changes)
