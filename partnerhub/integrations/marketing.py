"""Marketing facts recorded in batches (uploaded files; pushes later): checked item by item, upserted by external id.

The same shape as deals (:mod:`partnerhub.integrations.deals`). Each fact of a batch is validated
on its own and gets its own result; with ``atomic`` (the default) one invalid fact means nothing
is written. Valid facts are upserted by (tenant, source, external id): a new id is created, a
known one updated when anything differs, and left alone when nothing does, so the same batch
twice writes nothing the second time. A fact whose partner reference matches no partner is stored
without a partner (the unmatched queue, resolved by a mapping), never dropped.

The marketing metrics of the partners and periods a batch changed are then derived again, in the
same transaction (:func:`partnerhub.integrations.facts.record_marketing_observations`).
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

# The field rules of deals (text, dates, partner ids) are the rules of every fact.
from partnerhub.integrations.deals import CURRENCY_FORMAT, _day, _partner_id, _shown, _text, api_push_source
from partnerhub.integrations.derive import MARKETING_METRICS
from partnerhub.integrations.facts import record_marketing_observations
from partnerhub.integrations.models import Upload
from partnerhub.integrations.source_models import DataSource, MarketingFact, MarketingKind, SourceKind
from partnerhub.integrations.sync import PartnerMatcher
from partnerhub.partners.models import Partner
from partnerhub.tenancy.audit import audit
from partnerhub.tenancy.context import current_tenant_id
from partnerhub.tenancy.models import ApiKey, User

MAX_FACTS = 10_000
WRITE_BATCH = 500
CENT = Decimal("0.01")
LARGEST_QUANTITY = Decimal("1e16")  # the column holds 18 digits, 2 of them after the point
RECEIVING_KINDS = (SourceKind.FILE, SourceKind.API)
KINDS_HELP = ", ".join(MarketingKind.values)

# What a stored fact's columns are compared on to tell an update from a repeat.
COMPARED = ("partner_id", "partner_ref", "kind", "occurred_on", "quantity", "currency", "campaign")
WRITTEN = ("partner", "partner_ref", "kind", "occurred_on", "quantity", "currency", "campaign", "upload")


class Status:
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    UNMATCHED = "unmatched"  # stored (created, updated or as it was) without a partner
    INVALID = "invalid"
    VALID = "valid"  # valid, but not written: a dry run, or another fact of an atomic batch is invalid


@dataclass(frozen=True, slots=True)
class FactError:
    """A problem with one fact of a batch: its index (from 0), the field, and why."""

    index: int
    field: str
    message: str


@dataclass
class FactInput:
    """One fact as validated, ready to store; the partner is resolved once the whole batch is read."""

    index: int
    external_id: str
    partner_id: int | None = None
    partner_ref: str = ""
    kind: str = ""
    occurred_on: datetime.date | None = None
    quantity: Decimal = Decimal(1)
    currency: str = ""
    campaign: str = ""


@dataclass
class MarketingBulkResult:
    """Per fact, in order: its status and the stored fact; the problems; whether the batch was written."""

    source: DataSource
    statuses: list[str]
    facts: list[MarketingFact | None]
    errors: list[FactError]
    written: bool
    observations_written: int = 0
    changes: dict[str, int] = field(default_factory=dict)  # created, updated: rows written (or to write)
    days: set[datetime.date] = field(default_factory=set)  # of matched facts changed: their periods are derived

    def count(self, status: str) -> int:
        return self.statuses.count(status)


# --- Reading one fact ----------------------------------------------------------------------------------


class _Problems:
    """The problems of one fact, field by field (what the deals' field readers report to)."""

    def __init__(self, index: int):
        self.index = index
        self.errors: list[FactError] = []

    def add(self, field_name: str, message: str) -> None:
        self.errors.append(FactError(self.index, field_name, message))

    def has(self, field_name: str) -> bool:
        return any(error.field == field_name for error in self.errors)


def _quantity(item: dict, kind: str, problems: _Problems) -> Decimal:
    """The fact's quantity: an amount for campaign pipeline, a whole count (1 when left out) otherwise."""
    is_amount = MARKETING_METRICS.get(kind, ("", False))[1]
    value = item.get("quantity")
    if value is None or (isinstance(value, str) and not value.strip()):
        if is_amount:
            problems.add("quantity", "Give the pipeline amount, like 25000 (a dot for decimals).")
        return Decimal(1)
    hint = "a number like 25000.50 (a dot for decimals, no thousands separators)" if is_amount else "a whole number"
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        problems.add("quantity", f"Give the quantity as {hint}.")
        return Decimal(1)
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        problems.add("quantity", f"“{_shown(value)}” is not a number; give {hint}.")
        return Decimal(1)
    if number < 0:
        problems.add("quantity", "A quantity cannot be negative.")
    elif number >= LARGEST_QUANTITY:
        problems.add("quantity", "This quantity is too large to store.")
    elif not is_amount and kind and number != number.to_integral_value():
        problems.add("quantity", f"{_shown(value)} is not a whole number; count {kind} facts in whole numbers.")
    else:
        return number.quantize(CENT, rounding=ROUND_HALF_EVEN)
    return Decimal(1)


def _read(index: int, item: Any, today: datetime.date) -> tuple[FactInput | None, list[FactError]]:
    """One fact of a batch, validated on its own (partners are looked up later, for the whole batch)."""
    problems = _Problems(index)
    if not isinstance(item, dict):
        problems.add("non_field_errors", "Each marketing fact is an object.")
        return None, problems.errors
    external_id = _text(item, "external_id", problems, limit=64, numbers=True)
    if not external_id and not problems.errors:
        problems.add("external_id", "Give the fact's id in your system (at most 64 characters).")
    entry = FactInput(index=index, external_id=external_id)
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
    kind = _text(item, "kind", problems, limit=40).lower()
    if not kind and not problems.has("kind"):
        problems.add("kind", f"Give the kind of fact: {KINDS_HELP}.")
    elif kind and kind not in MarketingKind.values:
        problems.add("kind", f"“{_shown(kind)}” is not a kind of marketing fact; give {KINDS_HELP}.")
        kind = ""
    entry.kind = kind
    entry.occurred_on = _day(item, "occurred_on", problems)
    if entry.occurred_on is None and not problems.has("occurred_on"):
        problems.add("occurred_on", "Give the day it happened, as YYYY-MM-DD.")
    elif entry.occurred_on is not None and entry.occurred_on > today + datetime.timedelta(days=1):
        problems.add("occurred_on", f"{entry.occurred_on.isoformat()} is in the future; record what has happened.")
    entry.quantity = _quantity(item, kind, problems)
    currency = _text(item, "currency", problems, limit=200)
    if currency and not CURRENCY_FORMAT.fullmatch(currency):
        problems.add("currency", "Give the currency as a three-letter code, like EUR.")
    elif not currency and MARKETING_METRICS.get(kind, ("", False))[1] and not problems.has("currency"):
        problems.add("currency", "Give the amount's currency as a three-letter code, like EUR.")
    entry.currency = currency.upper()
    entry.campaign = _text(item, "campaign", problems, limit=200)
    return (None if problems.errors else entry), problems.errors


# --- The source and the partners --------------------------------------------------------------------------


def _checked_source(source: DataSource | None) -> DataSource:
    source = source if source is not None else api_push_source()
    if source.kind not in RECEIVING_KINDS:
        raise ValidationError(
            {
                "source": f"{source.name} is a {source.get_kind_display()} source; marketing facts are received "
                "by file-upload and API-push sources."
            }
        )
    if not source.is_active:
        raise ValidationError({"source": f"{source.name} is switched off; switch it on to receive facts."})
    return source


def _resolve_partners(entries: list[FactInput], matcher: PartnerMatcher, errors: list[FactError]) -> dict[int, int]:
    """Each entry's partner id (by index); no key when its reference matches no partner yet (unmatched)."""
    ids = {entry.partner_id for entry in entries if entry.partner_id is not None}
    known = set(Partner.objects.filter(pk__in=ids).values_list("pk", flat=True)) if ids else set()
    matcher.prepare(entry.partner_ref for entry in entries if entry.partner_id is None)
    resolved = {}
    for entry in entries:
        if entry.partner_id is not None:
            if entry.partner_id in known:
                resolved[entry.index] = entry.partner_id
            else:
                errors.append(FactError(entry.index, "partner", "There is no partner with this id."))
            continue
        partner_id = matcher.partner_id(entry.partner_ref)
        if partner_id is not None:
            resolved[entry.index] = partner_id
    return resolved


# --- Recording a batch -------------------------------------------------------------------------------------


class _Touched:
    """Partners and days whose derived values a batch changes: before and after each change."""

    def __init__(self):
        self.partner_ids: set[int] = set()
        self.days: set[datetime.date] = set()

    def add(self, fact: MarketingFact) -> None:
        if fact.partner_id is not None:
            self.partner_ids.add(fact.partner_id)
            self.days.add(fact.occurred_on)


def _same(fact: MarketingFact, entry: FactInput, partner_id: int | None) -> bool:
    incoming = {**{name: getattr(entry, name) for name in COMPARED if name != "partner_id"}, "partner_id": partner_id}
    return all(getattr(fact, name) == incoming[name] for name in COMPARED)


def _apply(fact: MarketingFact, entry: FactInput, partner_id: int | None, upload: Upload | None) -> None:
    fact.partner_id = partner_id
    for name in COMPARED:
        if name != "partner_id":
            setattr(fact, name, getattr(entry, name))
    fact.upload = upload


@transaction.atomic
def marketing_bulk_record(
    *,
    items: list[Any],
    by: User | ApiKey | None,
    atomic: bool = True,
    source: DataSource | None = None,
    source_ref: str | None = None,
    upload: Upload | None = None,
    dry_run: bool = False,
) -> MarketingBulkResult:
    """Record a batch of marketing facts into ``source`` (by default the tenant's API-push source).

    Every fact is validated first. With ``atomic`` one invalid fact means nothing is written;
    without it the valid facts are recorded and the invalid ones reported. ``dry_run`` reports
    what the batch would do (statuses and ``changes``) and writes nothing. The marketing metrics of
    the partners and periods that changed are derived with ``source_ref``; facts written name
    ``upload`` when they came from one. A batch that changes facts writes one audit event
    (``marketing.bulk_recorded``) on the source.
    """
    if not isinstance(items, list):
        raise ValidationError({"facts": "Send the marketing facts as a list."})
    if len(items) > MAX_FACTS:
        raise ValidationError({"facts": f"Send at most {MAX_FACTS:,} facts at once; this batch has {len(items):,}."})
    source = _checked_source(source)
    source_ref = source_ref or f"api:{uuid.uuid4().hex}"
    today = timezone.localdate()
    read = [_read(index, item, today) for index, item in enumerate(items)]
    errors = [error for _, item_errors in read for error in item_errors]
    entries = [entry for entry, _ in read if entry is not None]
    first_seen: dict[str, int] = {}
    for entry in entries:
        earlier = first_seen.setdefault(entry.external_id, entry.index)
        if earlier != entry.index:
            errors.append(FactError(entry.index, "external_id", f"Repeats fact {earlier}: each fact appears once."))
    partners = _resolve_partners(entries, PartnerMatcher(source), errors)
    failed = {error.index for error in errors}
    entries = [entry for entry in entries if entry.index not in failed]
    errors.sort(key=lambda error: error.index)
    statuses = [Status.INVALID if index in failed else Status.VALID for index in range(len(items))]
    facts: list[MarketingFact | None] = [None] * len(items)
    result = MarketingBulkResult(source=source, statuses=statuses, facts=facts, errors=errors, written=False)
    if (errors and atomic) or not entries:
        return result

    stored = MarketingFact.objects.filter(source=source, external_id__in=[entry.external_id for entry in entries])
    existing = {fact.external_id: fact for fact in (stored if dry_run else stored.select_for_update())}
    tenant_id = current_tenant_id()
    touched = _Touched()
    creates: list[MarketingFact] = []
    updates: list[MarketingFact] = []
    for entry in entries:
        fact = existing.get(entry.external_id)
        partner_id = partners.get(entry.index)
        if fact is None:
            fact = MarketingFact(tenant_id=tenant_id, source=source, external_id=entry.external_id)
            _apply(fact, entry, partner_id, upload)
            creates.append(fact)
            statuses[entry.index] = Status.CREATED
        elif _same(fact, entry, partner_id):
            statuses[entry.index] = Status.UNCHANGED
        else:
            touched.add(fact)  # the periods it counted in before the change
            _apply(fact, entry, partner_id, upload)
            updates.append(fact)
            statuses[entry.index] = Status.UPDATED
        if statuses[entry.index] != Status.UNCHANGED:
            touched.add(fact)  # and the periods it counts in now
        if fact.partner_id is None:
            statuses[entry.index] = Status.UNMATCHED
        facts[entry.index] = fact
    result.changes = {"created": len(creates), "updated": len(updates)}
    result.days = touched.days
    if dry_run:
        return result
    try:
        with transaction.atomic():
            MarketingFact.objects.bulk_create(creates, batch_size=WRITE_BATCH)
            if updates:
                MarketingFact.objects.bulk_update(updates, fields=list(WRITTEN), batch_size=WRITE_BATCH)
    except IntegrityError as error:
        raise ValidationError(
            "Another change to the same marketing facts was saved at the same time; nothing was recorded. Try again.",
            code="concurrent_change",
        ) from error
    result.written = True
    if creates or updates:
        result.observations_written = record_marketing_observations(
            partner_ids=touched.partner_ids, days=touched.days, currency=source.currency, source_ref=source_ref
        )
        unmatched = sum(fact.partner_id is None for fact in creates + updates)
        _audit(result, by=by, source_ref=source_ref, unmatched=unmatched, upload=upload)
    return result


def _audit(
    result: MarketingBulkResult, *, by: User | ApiKey | None, source_ref: str, unmatched: int, upload: Upload | None
) -> None:
    """One event for the batch: how many facts it created and updated, into which source, from where."""
    changes = {
        "facts": [None, sum(status != Status.INVALID for status in result.statuses)],
        **{name: [None, count] for name, count in result.changes.items()},
        "unmatched": [None, unmatched],
        "unchanged": [None, result.count(Status.UNCHANGED)],
        "invalid": [None, result.count(Status.INVALID)],
        "source": [None, result.source.name],
        "source_ref": [None, source_ref],
        "observations": [None, result.observations_written],
    }
    if upload is not None:
        changes["upload"] = [None, f"{upload.file_name} ({upload.pk})"]
    audit(actor=by, verb="marketing.bulk_recorded", target=result.source, changes=changes)
