"""Sync runs: pull what changed in a CRM, page by page, into deals, then into observations.

``sync_request`` queues a run (one open run per source: asking again while one is queued or
running returns that one). ``run_sync`` does the work inside the Celery task:

1. it takes the source's lock (a PostgreSQL advisory lock held by the worker's connection, so a
   worker that dies releases it), or leaves the run alone when another worker holds it;
2. it asks the connector for pages, resuming from the run's cursor when the run was started
   before (a redelivered task after a worker was killed);
3. each page is committed in its own transaction: deals upserted by (tenant, source, external id),
   deleted ones marked, unmatched ones kept with their partner reference, the counters and the
   cursor saved with them. A crash loses at most the page in flight, which the resumed run reads
   again; upserts make reading it twice harmless;
4. when the last page is in, the deals of the partners and periods the run touched are derived
   into observations (:mod:`partnerhub.integrations.derive`), recorded with the run as their
   source reference; the observation services queue the recomputes.

Failures are recorded on the run with their kind: an authentication or configuration error fails
the run and is not retried (someone must fix the source); a rate limit reschedules the run at the
time the CRM gives; a temporary failure leaves the cursor so the next run resumes.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from functools import partial

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from partnerhub.integrations.connectors import (
    AuthenticationFailed,
    ConfigurationError,
    ConnectorError,
    Cursor,
    DealRecord,
    HubSpotConnector,
    RateLimited,
    RetryPolicy,
    SalesforceConnector,
    TransientError,
)
from partnerhub.integrations.facts import record_deal_observations
from partnerhub.integrations.secrets import CredentialsUnreadable
from partnerhub.integrations.source_models import (
    Attribution,
    DataSource,
    Deal,
    PartnerMapping,
    PartnerMatch,
    SourceKind,
    SyncErrorKind,
    SyncRun,
    SyncStatus,
)
from partnerhub.partners.models import Partner
from partnerhub.tenancy.context import current_tenant_id

log = logging.getLogger(__name__)

RATE_LIMIT_DEFAULT_WAIT = 60.0  # seconds, when the CRM does not say how long


class SyncBusy(Exception):
    """Another worker is running this source's sync."""


# --- Queueing ---------------------------------------------------------------------------------------


def sync_request(source: DataSource, *, by=None, trigger: str = "manual", countdown: float = 0) -> SyncRun:
    """Queue a sync of ``source`` (or return the run already queued or running)."""
    from partnerhub.integrations.tasks import sync_task

    if not source.pulled:
        raise ValueError(f"{source.get_kind_display()} sources are not pulled; they receive files or API calls.")
    existing = SyncRun.objects.filter(source=source, status__in=[SyncStatus.QUEUED, SyncStatus.RUNNING]).first()
    if existing is not None:
        return existing
    resume = _resumable_cursor(source)
    try:
        with transaction.atomic():
            run = SyncRun.objects.create(
                source=source,
                trigger=trigger,
                requested_by=by if getattr(by, "is_authenticated", False) else None,
                cursor=resume,
            )
    except IntegrityError:  # another request queued one meanwhile
        return SyncRun.objects.get(source=source, status__in=[SyncStatus.QUEUED, SyncStatus.RUNNING])
    tenant_id = current_tenant_id()
    transaction.on_commit(
        lambda: sync_task.apply_async(kwargs={"tenant_id": tenant_id, "run_id": run.pk}, countdown=countdown)
    )
    return run


def _resumable_cursor(source: DataSource) -> dict | None:
    """The cursor of the last run that stopped part-way (rate limit, temporary failure), if any."""
    last = SyncRun.objects.filter(source=source).exclude(status=SyncStatus.QUEUED).order_by("-queued_at", "-pk").first()
    stopped = last is not None and last.status in (SyncStatus.RESCHEDULED, SyncStatus.FAILED) and last.cursor
    if stopped and last.error_kind in (SyncErrorKind.RATE_LIMIT, SyncErrorKind.TRANSIENT):
        return last.cursor
    return None


# --- Locking ----------------------------------------------------------------------------------------


def _lock_key(source: DataSource) -> int:
    digest = hashlib.blake2b(f"partnerhub-sync:{source.tenant_id}:{source.pk}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextmanager
def source_lock(source: DataSource):
    """Hold the source's sync lock for the block; ``SyncBusy`` when another worker has it.

    On PostgreSQL a session advisory lock: it survives the page transactions and is released
    when the block ends or the worker's connection dies. SQLite has a single writer (the
    embedded default runs tasks in-process), so the open-run constraint suffices there.
    """
    if connection.vendor != "postgresql":
        yield
        return
    key = _lock_key(source)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        if not cursor.fetchone()[0]:
            raise SyncBusy(f"{source.name} is being synced by another worker.")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


# --- The connector a source needs --------------------------------------------------------------------


def build_connector(
    source: DataSource,
    *,
    sleep: Callable[[float], None] = time.sleep,
    timeout: float = 30.0,
    retry_policy: RetryPolicy | None = None,
):
    """The connector configured for ``source``; ``ConfigurationError`` for what is missing.

    ``timeout`` (seconds per request) and ``retry_policy`` let a person waiting on a page (the
    connection test) get an answer sooner than a background sync would wait.
    """
    try:
        credentials = source.read_credentials()
    except CredentialsUnreadable as error:
        raise ConfigurationError(str(error)) from None
    overlap = datetime.timedelta(minutes=source.overlap_minutes)
    if source.kind == SourceKind.HUBSPOT:
        by_label = source.attribution == Attribution.ASSOCIATION_LABEL
        if not source.attribution_field:
            raise ConfigurationError("Name the deal property or association label that attributes deals to partners.")
        return HubSpotConnector(
            source.base_url or "https://api.hubapi.com",
            credentials.get("access_token", ""),
            partner_property=None if by_label else source.attribution_field,
            association_label=source.attribution_field if by_label else None,
            overlap=overlap,
            sleep=sleep,
            timeout=timeout,
            retry_policy=retry_policy,
        )
    if source.kind == SourceKind.SALESFORCE:
        field = source.attribution_field or "PartnerAccountId"
        return SalesforceConnector(
            source.base_url or "https://login.salesforce.com",
            credentials.get("client_id", ""),
            credentials.get("client_secret", ""),
            api_version=source.api_version or "v61.0",
            token_url=source.token_url or None,
            partner_field=field,
            overlap=overlap,
            sleep=sleep,
            timeout=timeout,
            retry_policy=retry_policy,
        )
    raise ConfigurationError(f"{source.get_kind_display()} sources are not pulled.")


# --- Partner matching ------------------------------------------------------------------------------


class PartnerMatcher:
    """Partner references of one source to partners: the admins' mappings first, then the rule."""

    def __init__(self, source: DataSource):
        self.source = source
        self.mapped = dict(PartnerMapping.objects.filter(source=source).values_list("external_ref", "partner_id"))
        self.by_field: dict[str, int] = {}

    def prepare(self, refs: Iterable[str]) -> None:
        """Look the page's references up in one query."""
        refs = {ref for ref in refs if ref and ref not in self.mapped and ref not in self.by_field}
        match = self.source.partner_match
        if not refs or match == PartnerMatch.MAPPING_ONLY:
            return
        if match == PartnerMatch.PARTNER_ID:
            ids = [int(ref) for ref in refs if ref.isascii() and ref.isdigit() and len(ref) < 19]
            found = Partner.objects.filter(pk__in=ids).values_list("pk", "pk")
            self.by_field.update({str(key): pk for key, pk in found})
        else:
            found = Partner.objects.filter(**{f"{match}__in": refs}).values_list(match, "pk")
            self.by_field.update(dict(found))

    def partner_id(self, ref: str | None) -> int | None:
        if not ref:
            return None
        return self.mapped.get(ref) or self.by_field.get(ref)


# --- Running ------------------------------------------------------------------------------------------


@dataclass
class Touched:
    """Partners and periods whose deals changed, to derive again at the end of the run."""

    partner_ids: set[int]
    days: set[datetime.date]

    @classmethod
    def empty(cls) -> Touched:
        return cls(set(), set())


def run_sync(run_id: int, *, sleep: Callable[[float], None] = time.sleep) -> SyncRun | None:
    """Do a queued (or resume an interrupted) sync run; a finished run is left alone."""
    run = SyncRun.objects.select_related("source").filter(pk=run_id).first()
    if run is None or run.status not in (SyncStatus.QUEUED, SyncStatus.RUNNING):
        return run
    source = run.source
    try:
        with source_lock(source):
            return _run(run, source, sleep=sleep)
    except SyncBusy:
        log.info("sync run %s: another worker holds %s", run.pk, source)
        return run


def _run(run: SyncRun, source: DataSource, *, sleep) -> SyncRun:
    run.refresh_from_db()
    if run.status not in (SyncStatus.QUEUED, SyncStatus.RUNNING):
        return run
    now = timezone.now()
    run.status = SyncStatus.RUNNING
    run.started_at = run.started_at or now
    run.since = run.since or source.synced_until
    run.error, run.error_kind = "", SyncErrorKind.NONE
    run.save(update_fields=["status", "started_at", "since", "error", "error_kind"])
    touched = Touched.empty()
    matcher = PartnerMatcher(source)
    try:
        connector = build_connector(source, sleep=sleep)
        with connector:
            cursor = Cursor.from_dict(run.cursor) if run.cursor else None
            for page in connector.iter_pages(since=run.since, cursor=cursor):
                _commit_page(run, page.records, page.cursor, matcher, touched)
                if page.done:
                    break
        _finish(run, source, touched)
    except RateLimited as error:
        wait = error.retry_after if error.retry_after is not None else RATE_LIMIT_DEFAULT_WAIT
        _stop(run, SyncStatus.RESCHEDULED, SyncErrorKind.RATE_LIMIT, str(error), touched, retry_in=wait)
        sync_request(source, trigger="retry", countdown=wait)
    except AuthenticationFailed as error:
        _stop(run, SyncStatus.FAILED, SyncErrorKind.AUTHENTICATION, str(error), touched)
    except ConfigurationError as error:
        _stop(run, SyncStatus.FAILED, SyncErrorKind.CONFIGURATION, str(error), touched)
    except TransientError as error:
        _stop(run, SyncStatus.FAILED, SyncErrorKind.TRANSIENT, str(error), touched)
    except ConnectorError as error:
        _stop(run, SyncStatus.FAILED, SyncErrorKind.OTHER, str(error), touched)
    return run


def _stop(run: SyncRun, status: str, kind: str, message: str, touched: Touched, *, retry_in: float | None = None):
    """End a run that could not finish; what its committed pages changed is still derived."""
    _derive(run, touched)
    run.status, run.error_kind, run.error = status, kind, message
    run.finished_at = timezone.now()
    run.retry_at = run.finished_at + datetime.timedelta(seconds=retry_in) if retry_in is not None else None
    run.save()


def _finish(run: SyncRun, source: DataSource, touched: Touched) -> None:
    _derive(run, touched)
    now = timezone.now()
    window_end = Cursor.from_dict(run.cursor).window_end if run.cursor else now
    run.status, run.finished_at = SyncStatus.SUCCEEDED, now
    run.save()
    source.synced_until = window_end
    source.last_success_at = now
    source.next_run_at = now + datetime.timedelta(minutes=source.schedule_minutes) if source.schedule_minutes else None
    source.save(update_fields=["synced_until", "last_success_at", "next_run_at"])


@transaction.atomic
def _commit_page(run: SyncRun, records: list[DealRecord], cursor: Cursor, matcher: PartnerMatcher, touched: Touched):
    """Upsert one page of deals and move the run's cursor past it, all or nothing."""
    matcher.prepare(record.partner_ref or "" for record in records)
    ids = [record.external_id for record in records]
    existing = {
        deal.external_id: deal
        for deal in Deal.objects.select_for_update().filter(source=run.source, external_id__in=ids)
    }
    now = timezone.now()
    creates, updates = [], []
    for record in records:
        deal = existing.get(record.external_id)
        if deal is not None:
            _touch(touched, deal)  # the periods it counted in before the change
            if record.deleted:
                if deal.deleted_at is None:
                    deal.deleted_at, deal.updated_at, deal.sync_run = now, now, run
                    updates.append(deal)
                    run.deleted += 1
                continue
            if record.modified_at < deal.modified_at and deal.deleted_at is None:
                continue  # an older version than the one stored (the overlap window reads it again)
            was_live, stored = deal.deleted_at is None, _compared(deal)
            _apply(deal, record, matcher.partner_id(record.partner_ref), run, now)
            if was_live and _compared(deal) == stored:
                continue  # the stored version read again (the overlap window): not an update
            updates.append(deal)
            run.updated += 1
        else:
            if record.deleted:
                continue  # deleted before we ever saw it
            deal = Deal(tenant_id=run.tenant_id, source=run.source, external_id=record.external_id, first_seen_at=now)
            _apply(deal, record, matcher.partner_id(record.partner_ref), run, now)
            creates.append(deal)
            run.created += 1
        if deal.partner_id is None:
            run.unmatched += 1
        _touch(touched, deal)
    Deal.objects.bulk_create(creates)
    if updates:
        Deal.objects.bulk_update(updates, fields=[*DEAL_FIELDS, "deleted_at", "sync_run", "updated_at"])
    run.pages += 1
    run.fetched += len(records)
    run.cursor = cursor.to_dict()
    run.save(update_fields=["pages", "fetched", "created", "updated", "deleted", "unmatched", "cursor"])


DEAL_FIELDS = (
    "partner", "partner_ref", "name", "amount", "currency", "stage", "closed", "won",
    "created_on", "close_date", "modified_at",
)  # fmt: skip


def _compared(deal: Deal) -> tuple:
    """What a sync writes of a deal, to tell an update from the same version read again."""
    return (deal.partner_id, *(getattr(deal, name) for name in DEAL_FIELDS[1:]))


def _apply(deal: Deal, record: DealRecord, partner_id: int | None, run: SyncRun, now) -> None:
    deal.partner_id = partner_id
    deal.partner_ref = (record.partner_ref or "")[:200]
    deal.name = (record.name or "")[:255]
    deal.amount = None if record.amount is None else record.amount.quantize(Decimal("0.01"))
    deal.currency = (record.currency or "").upper()[:3]
    deal.stage = (record.stage or "")[:120]
    deal.closed, deal.won = bool(record.closed or record.won), bool(record.won)
    deal.created_on = record.created_at.date()
    deal.close_date = record.close_date if deal.closed else None
    deal.modified_at = record.modified_at
    deal.deleted_at = None
    deal.sync_run, deal.updated_at = run, now


def _touch(touched: Touched, deal: Deal) -> None:
    if deal.partner_id is None:
        return
    touched.partner_ids.add(deal.partner_id)
    touched.days.add(deal.created_on)
    if deal.close_date:
        touched.days.add(deal.close_date)


# --- Deriving observations --------------------------------------------------------------------------


def _derive(run: SyncRun, touched: Touched) -> None:
    """Record the observations of the partners and periods the run touched."""
    if not touched.partner_ids:
        return
    run.observations_written += record_deal_observations(
        partner_ids=touched.partner_ids, days=touched.days, currency=run.source.currency, source_ref=f"sync:{run.pk}"
    )
    run.save(update_fields=["observations_written"])


# --- The schedule ----------------------------------------------------------------------------------

# A run still "running" this long after it started has lost its worker (the task's hard limit is
# 30 minutes); it is handed to a new worker, which resumes from its cursor.
ABANDONED_AFTER = datetime.timedelta(minutes=35)


def sync_due(now: datetime.datetime | None = None) -> list[SyncRun]:
    """Queue every active pulled source whose next run is due; re-queue abandoned runs."""
    from partnerhub.integrations.tasks import sync_task

    now = now or timezone.now()
    queued = []
    sources = DataSource.objects.filter(is_active=True, kind__in=[SourceKind.HUBSPOT, SourceKind.SALESFORCE])
    for source in sources.filter(schedule_minutes__gt=0).exclude(next_run_at__gt=now):
        queued.append(sync_request(source, trigger="schedule"))
    tenant_id = current_tenant_id()
    abandoned = SyncRun.objects.filter(status=SyncStatus.RUNNING, started_at__lt=now - ABANDONED_AFTER)
    for run in abandoned:
        transaction.on_commit(partial(sync_task.delay, tenant_id=tenant_id, run_id=run.pk))
        queued.append(run)
    return queued
