"""Sync runs against the local CRM fakes: deals upserted, observations derived, failures recorded."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal

import psycopg2
import pytest
from django.db import connection
from django.utils import timezone

from partnerhub.integrations.connectors import Cursor
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
from partnerhub.integrations.sync import _commit_page, build_connector, run_sync, source_lock, sync_due, sync_request
from partnerhub.tenancy.context import tenant_scope
from scorecards.models import MetricObservation, ObservationSource
from tests.fakes.hubspot import FakeHubSpot
from tests.fakes.salesforce import FakeSalesforce

TOKEN = "pat-test"


def no_sleep(seconds: float) -> None:
    """Backoffs are configuration of the connector; tests do not wait them out."""


@pytest.fixture
def hub() -> Iterator[FakeHubSpot]:
    with FakeHubSpot(token=TOKEN) as fake:
        yield fake


@pytest.fixture
def tenant_a(world):
    with tenant_scope(world.a.tenant):
        first, second = world.a.partners
        first.hubspot_company_id, first.salesforce_account_id = "HS-1", "001A0000001"
        second.hubspot_company_id, second.salesforce_account_id = "HS-2", "001A0000002"
        first.save()
        second.save()
        yield world.a


def hubspot_source(hub: FakeHubSpot, **fields) -> DataSource:
    source = DataSource(
        name=fields.pop("name", "HubSpot"),
        kind=SourceKind.HUBSPOT,
        base_url=hub.base_url,
        attribution=Attribution.DEAL_PROPERTY,
        attribution_field="partner_company",
        partner_match=PartnerMatch.HUBSPOT_COMPANY_ID,
        **fields,
    )
    source.set_credentials({"access_token": TOKEN})
    source.save()
    return source


def add_deal(hub: FakeHubSpot, deal_id: str, *, partner: str | None, amount: str, won: bool | None, closed_on=None):
    properties = {
        "dealname": f"Deal {deal_id}",
        "amount": amount,
        "deal_currency_code": "USD",
        "dealstage": "closedwon" if won else ("closedlost" if won is False else "appointmentscheduled"),
        "hs_is_closed": "true" if won is not None else "false",
        "hs_is_closed_won": "true" if won else "false",
        "createdate": "2026-07-02T10:00:00Z",
        "closedate": f"{closed_on or '2026-08-14'}T00:00:00.000Z",
        "hs_lastmodifieddate": "2026-08-15T12:00:00.000Z",
    }
    if partner is not None:
        properties["partner_company"] = partner
    hub.add_deal(deal_id, **properties)


def current_value(partner, key: str, period: str) -> Decimal | None:
    row = MetricObservation.objects.current().filter(partner=partner, metric__key=key, period=period).first()
    return None if row is None else row.value


def test_a_first_sync_stores_deals_and_derives_observations(tenant_a, hub):
    first, second = tenant_a.partners
    add_deal(hub, "1", partner="HS-1", amount="1000.50", won=True)
    add_deal(hub, "2", partner="HS-1", amount="500", won=False)
    add_deal(hub, "3", partner="HS-2", amount="250", won=None)
    add_deal(hub, "4", partner="HS-404", amount="99", won=True)  # no such partner: unmatched
    source = hubspot_source(hub)
    run = SyncRun.objects.create(source=source)

    run = run_sync(run.pk, sleep=no_sleep)

    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert (run.fetched, run.created, run.updated, run.deleted, run.unmatched) == (4, 4, 0, 0, 1)
    assert run.pages >= 1 and run.started_at and run.finished_at
    deals = {deal.external_id: deal for deal in Deal.objects.all()}
    assert deals["1"].partner == first and deals["1"].amount == Decimal("1000.50") and deals["1"].won
    assert deals["2"].closed and not deals["2"].won
    assert deals["3"].partner == second and not deals["3"].closed and deals["3"].close_date is None
    assert deals["4"].partner is None and deals["4"].partner_ref == "HS-404"
    # FY2026-Q3 with a January fiscal year: July to September.
    assert current_value(first, "revenue_won", "FY2026-Q3") == Decimal("1000.50")
    assert current_value(first, "deals_closed", "FY2026-Q3") == 2
    assert current_value(first, "win_rate", "FY2026-Q3") == Decimal("0.5")
    assert current_value(first, "pipeline_created", "FY2026-Q3") == Decimal("1500.50")
    assert current_value(second, "deals_registered", "FY2026-Q3") == 1
    assert current_value(second, "revenue_won", "FY2026-Q3") == 0
    observation = MetricObservation.objects.current().get(partner=first, metric__key="revenue_won", period="FY2026-Q3")
    assert observation.source == ObservationSource.DERIVED and observation.source_ref == f"sync:{run.pk}"
    assert run.observations_written > 0
    source.refresh_from_db()
    assert source.synced_until is not None and source.last_success_at is not None
    assert source.next_run_at == source.last_success_at + timedelta(minutes=source.schedule_minutes)


def test_the_next_sync_updates_deletes_and_supersedes_nothing_twice(tenant_a, hub):
    first = tenant_a.partners[0]
    add_deal(hub, "1", partner="HS-1", amount="1000", won=True)
    add_deal(hub, "2", partner="HS-1", amount="400", won=True)
    source = hubspot_source(hub)
    run_sync(SyncRun.objects.create(source=source).pk, sleep=no_sleep)
    assert current_value(first, "revenue_won", "FY2026-Q3") == Decimal("1400.00")

    # The CRM stamps the edits with its clock: inside the next run's window (overlap included).
    edited = timezone.now() - timedelta(seconds=1)
    hub.update_deal("1", amount="1200", hs_lastmodifieddate=edited.isoformat().replace("+00:00", "Z"))
    hub.archive_deal("2", archived_at=edited.isoformat().replace("+00:00", "Z"))
    second_run = run_sync(SyncRun.objects.create(source=source).pk, sleep=no_sleep)

    assert second_run.status == SyncStatus.SUCCEEDED, second_run.error
    assert (second_run.created, second_run.updated, second_run.deleted) == (0, 1, 1)
    assert Deal.objects.count() == 2
    assert Deal.objects.get(external_id="2").deleted_at is not None
    assert current_value(first, "revenue_won", "FY2026-Q3") == Decimal("1200.00")
    assert current_value(first, "deals_won", "FY2026-Q3") == 1
    history = MetricObservation.objects.filter(partner=first, metric__key="revenue_won", period="FY2026-Q3")
    assert sorted(row.value for row in history) == [Decimal("1200.00"), Decimal("1400.00")]

    third_run = run_sync(SyncRun.objects.create(source=source).pk, sleep=no_sleep)
    assert third_run.status == SyncStatus.SUCCEEDED
    assert (third_run.created, third_run.observations_written) == (0, 0)
    assert history.count() == 2


def test_a_run_resumes_after_its_worker_died_with_nothing_lost_or_doubled(tenant_a, hub):
    for number in range(1, 451):
        add_deal(hub, str(number), partner="HS-1" if number % 2 else "HS-2", amount="10", won=True)
    source = hubspot_source(hub)
    run = SyncRun.objects.create(source=source, status=SyncStatus.RUNNING, started_at=timezone.now())
    # A worker commits the first page, then dies: no finish, the lock and the task are gone.
    from partnerhub.integrations.sync import PartnerMatcher, Touched

    with build_connector(source, sleep=no_sleep) as connector:
        first_page = next(connector.iter_pages(since=None))
        _commit_page(run, first_page.records, first_page.cursor, PartnerMatcher(source), Touched.empty())
    assert Deal.objects.count() == len(first_page.records) < 450

    run = run_sync(run.pk, sleep=no_sleep)  # the redelivered task

    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert Deal.objects.count() == 450
    assert run.created == 450 and run.fetched == 450
    first, second = tenant_a.partners
    # Observations cover every deal, including the first page's, though that worker never derived.
    assert current_value(first, "deals_won", "FY2026-Q3") == 225
    assert current_value(second, "revenue_won", "FY2026-Q3") == Decimal("2250.00")


def test_a_run_that_stopped_part_way_hands_its_cursor_to_the_next(tenant_a, hub):
    source = hubspot_source(hub)
    add_deal(hub, "1", partner="HS-1", amount="10", won=True)
    cursor = Cursor.from_dict({"version": 1, "kind": "hubspot", "window_end": "2026-09-01T00:00:00+00:00", "state": {}})
    SyncRun.objects.create(
        source=source,
        status=SyncStatus.FAILED,
        error_kind=SyncErrorKind.TRANSIENT,
        cursor=cursor.to_dict(),
        finished_at=timezone.now(),
    )
    run = sync_request(source, trigger="schedule")
    assert run.status == SyncStatus.QUEUED
    assert run.cursor == cursor.to_dict()


def test_bad_credentials_fail_the_run_once_without_retrying(tenant_a, hub):
    source = hubspot_source(hub)
    source.set_credentials({"access_token": "pat-wrong"})
    source.save()
    run = run_sync(SyncRun.objects.create(source=source).pk, sleep=no_sleep)

    assert run.status == SyncStatus.FAILED
    assert run.error_kind == SyncErrorKind.AUTHENTICATION
    assert "401" in run.error or "uthentica" in run.error
    assert len(hub.requests) == 1
    assert not SyncRun.objects.filter(status=SyncStatus.QUEUED).exists()
    source.refresh_from_db()
    assert source.last_success_at is None


def test_a_rate_limit_reschedules_the_run_from_where_it_stopped(tenant_a, hub, django_capture_on_commit_callbacks):
    add_deal(hub, "1", partner="HS-1", amount="10", won=True)
    source = hubspot_source(hub)
    hub.fail_next(status=429, body=None, headers={"Retry-After": "120"}, times=5)
    run = run_sync(SyncRun.objects.create(source=source).pk, sleep=no_sleep)

    assert run.status == SyncStatus.RESCHEDULED
    assert run.error_kind == SyncErrorKind.RATE_LIMIT
    assert run.retry_at is not None
    assert timedelta(seconds=110) < run.retry_at - run.finished_at <= timedelta(seconds=120)
    retry = SyncRun.objects.get(status=SyncStatus.QUEUED)
    assert retry.trigger == "retry" and retry.source == source


def test_a_missing_salesforce_partner_field_is_a_configuration_error(tenant_a):
    with FakeSalesforce(client_id="cid", client_secret="secret") as sf:
        sf.unknown_fields = {"PartnerAccountId"}
        source = DataSource(
            name="Salesforce",
            kind=SourceKind.SALESFORCE,
            base_url=sf.base_url,
            api_version="v61.0",
            attribution=Attribution.PARTNER_ACCOUNT,
            partner_match=PartnerMatch.SALESFORCE_ACCOUNT_ID,
        )
        source.set_credentials({"client_id": "cid", "client_secret": "secret"})
        source.save()
        run = run_sync(SyncRun.objects.create(source=source).pk, sleep=no_sleep)

    assert run.status == SyncStatus.FAILED
    assert run.error_kind == SyncErrorKind.CONFIGURATION
    assert "PartnerAccountId" in run.error


def test_salesforce_opportunities_by_partner_account_and_mapping(tenant_a):
    first, second = tenant_a.partners
    with FakeSalesforce(client_id="cid", client_secret="secret") as sf:
        common = {
            "CurrencyIsoCode": "USD",
            "StageName": "Closed Won",
            "IsClosed": True,
            "IsWon": True,
            "CloseDate": "2026-08-15",
            "CreatedDate": "2026-07-01T10:00:00.000+0000",
            "SystemModstamp": "2026-08-15T12:00:00.000+0000",
        }
        sf.add_opportunity("006A000000000001", Name="One", Amount=700.25, PartnerAccountId="001A0000001", **common)
        sf.add_opportunity("006A000000000002", Name="Two", Amount=300, PartnerAccountId="001ZZZ0000009", **common)
        source = DataSource(
            name="Salesforce",
            kind=SourceKind.SALESFORCE,
            base_url=sf.base_url,
            attribution=Attribution.PARTNER_ACCOUNT,
            partner_match=PartnerMatch.SALESFORCE_ACCOUNT_ID,
        )
        source.set_credentials({"client_id": "cid", "client_secret": "secret"})
        source.save()
        # An administrator mapped the second account to the second partner.
        PartnerMapping.objects.create(source=source, external_ref="001ZZZ0000009", partner=second)
        run = run_sync(SyncRun.objects.create(source=source).pk, sleep=no_sleep)

    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert run.unmatched == 0
    assert current_value(first, "revenue_won", "FY2026-Q3") == Decimal("700.25")
    assert current_value(second, "revenue_won", "FY2026-Q3") == Decimal("300.00")
    assert Deal.objects.get(external_id="006A000000000001").close_date == date(2026, 8, 15)


def test_one_open_run_per_source(tenant_a, hub, django_capture_on_commit_callbacks):
    source = hubspot_source(hub)
    with django_capture_on_commit_callbacks() as callbacks:
        first = sync_request(source)
        again = sync_request(source)
    assert first.pk == again.pk
    assert len(callbacks) == 1
    assert SyncRun.objects.filter(source=source).count() == 1


def test_a_queued_sync_runs_as_a_task(tenant_a, hub, django_capture_on_commit_callbacks):
    add_deal(hub, "1", partner="HS-1", amount="10", won=True)
    source = hubspot_source(hub)
    with django_capture_on_commit_callbacks(execute=True):
        run = sync_request(source)
    run.refresh_from_db()
    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert Deal.objects.count() == 1


def test_files_and_api_sources_are_not_pulled(tenant_a):
    source = DataSource.objects.create(name="Uploads", kind=SourceKind.FILE)
    with pytest.raises(ValueError, match="not pulled"):
        sync_request(source)


def test_the_schedule_queues_due_sources_and_resumes_abandoned_runs(tenant_a, hub, django_capture_on_commit_callbacks):
    now = timezone.now()
    due = hubspot_source(hub, name="Due", next_run_at=now - timedelta(minutes=1))
    hubspot_source(hub, name="Later", next_run_at=now + timedelta(minutes=30))
    hubspot_source(hub, name="Manual", schedule_minutes=0)
    hubspot_source(hub, name="Off", is_active=False)
    stuck_source = hubspot_source(hub, name="Stuck", next_run_at=now + timedelta(minutes=30))
    stuck = SyncRun.objects.create(source=stuck_source, status=SyncStatus.RUNNING, started_at=now - timedelta(hours=1))

    with django_capture_on_commit_callbacks() as callbacks:
        queued = sync_due(now)

    assert {run.source.name for run in queued} == {"Due", "Stuck"}
    assert stuck in queued
    assert SyncRun.objects.filter(source=due, status=SyncStatus.QUEUED).count() == 1
    assert len(callbacks) == 2


@pytest.mark.postgres
def test_a_source_held_by_another_worker_is_left_alone(tenant_a, hub):
    add_deal(hub, "1", partner="HS-1", amount="10", won=True)
    source = hubspot_source(hub)
    run = SyncRun.objects.create(source=source)
    settings_dict = connection.settings_dict
    other = psycopg2.connect(
        dbname=settings_dict["NAME"],
        user=settings_dict["USER"],
        host=settings_dict["HOST"],
        port=settings_dict["PORT"],
        password=settings_dict["PASSWORD"],
    )
    try:
        from partnerhub.integrations.sync import _lock_key

        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [_lock_key(source)])
        assert run_sync(run.pk, sleep=no_sleep).status == SyncStatus.QUEUED
        assert Deal.objects.count() == 0
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [_lock_key(source)])
        assert run_sync(run.pk, sleep=no_sleep).status == SyncStatus.SUCCEEDED
    finally:
        other.close()
    with source_lock(source):
        pass  # released again after the run
