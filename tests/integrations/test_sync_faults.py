"""Sync runs against the local CRM fakes with faults injected: every fact stored exactly once.

Each test queues a run with ``sync_request`` and lets a worker do it with ``run_sync``; faults are
queued in the fake as a given page is committed (a ``post_save`` of the run that saves the page's
cursor), so they land between two pages of one run, where a real outage would.

Cases ``test_sync`` proves already are not repeated here: a first sync's derived observations, a
HubSpot worker dying after its first page, a rate limit on a run's first request, and the
update-and-archive of one HubSpot deal each.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db.models.signals import post_save
from django.utils import timezone

from partnerhub.integrations.source_models import (
    Attribution,
    DataSource,
    Deal,
    PartnerMatch,
    SourceKind,
    SyncErrorKind,
    SyncRun,
    SyncStatus,
)
from partnerhub.integrations.sync import run_sync, sync_due, sync_request
from tests.fakes.hubspot import SEARCH_PATH, FakeHubSpot
from tests.fakes.salesforce import TOKEN_PATH, FakeSalesforce, sf_datetime
from tests.integrations import test_sync as sync_tests
from tests.integrations.test_sync import add_deal, current_value, hubspot_source

# The fixtures of test_sync, shared rather than copied: tenant a (its partners carry their CRM ids)
# and a HubSpot fake that takes test_sync's token.
hub, tenant_a = sync_tests.hub, sync_tests.tenant_a

PERIOD = "FY2026-Q3"  # the deals below are created in July 2026 and won in August
HISTORY = datetime(2026, 8, 15, 12, tzinfo=UTC)  # when the fakes' older data was last modified
DEALS = 450  # three pages of 200 (HubSpot's largest search page; the Salesforce fake's batch)


class WorkerLost(BaseException):
    """The worker process dies: like a SIGKILL, nothing in the sync can catch it."""


@contextmanager
def when_page_saved(number: int, action: Callable[[], None]) -> Iterator[None]:
    """Do ``action`` once, as the ``number``-th page from now on is saved (inside its transaction)."""
    saved = 0

    def on_save(sender, instance, update_fields=None, **kwargs):
        nonlocal saved
        if update_fields and "cursor" in update_fields:
            saved += 1
            if saved == number:
                action()

    post_save.connect(on_save, sender=SyncRun, weak=False)
    try:
        yield
    finally:
        post_save.disconnect(on_save, sender=SyncRun)


def counters(run: SyncRun) -> dict[str, int]:
    """What the run recorded, as stored."""
    run = SyncRun.objects.get(pk=run.pk)
    return {
        "pages": run.pages,
        "fetched": run.fetched,
        "created": run.created,
        "updated": run.updated,
        "deleted": run.deleted,
        "unmatched": run.unmatched,
    }


def tally(
    *, pages: int, fetched: int, created: int = 0, updated: int = 0, deleted: int = 0, unmatched: int = 0
) -> dict[str, int]:
    """The counters a run should have recorded; those not named are zero."""
    return {
        "pages": pages,
        "fetched": fetched,
        "created": created,
        "updated": updated,
        "deleted": deleted,
        "unmatched": unmatched,
    }


def stored_ids(source: DataSource) -> list[str]:
    return sorted(Deal.objects.filter(source=source).values_list("external_id", flat=True))


def no_wait(seconds: float) -> None:
    """A run with no fault has nothing to wait for."""


def hubspot_time(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# --- HubSpot -----------------------------------------------------------------------------------------


def hubspot_partner(number: int) -> str:
    """Odd deals are the first partner's, even ones the second's; every tenth names an unknown company."""
    if number % 10 == 0:
        return "HS-404"
    return "HS-1" if number % 2 else "HS-2"


def add_deals(hub: FakeHubSpot, count: int, *, modified_from: datetime = HISTORY) -> list[str]:
    """``count`` won deals of 10 USD, modified one second apart from ``modified_from``."""
    for number in range(1, count + 1):
        add_deal(hub, str(number), partner=hubspot_partner(number), amount="10", won=True)
        hub.update_deal(str(number), hs_lastmodifieddate=hubspot_time(modified_from + timedelta(seconds=number)))
    return sorted(str(number) for number in range(1, count + 1))


# 450 deals one second apart: the keyset paging reads 200, then 199 new after the last one's time,
# then 51, then the (empty) archive: four pages. A tenth of them (45) name no known partner.
HUBSPOT_FULL_RUN = tally(pages=4, fetched=450, created=450, unmatched=45)


def search_statuses(hub: FakeHubSpot) -> list[int]:
    return [request.status for request in hub.requests if request.path == SEARCH_PATH]


def test_a_burst_of_server_errors_mid_sync_is_retried_and_every_deal_stored_once(tenant_a, hub):
    ids = add_deals(hub, DEALS)
    source = hubspot_source(hub)
    waits: list[float] = []

    def outage():
        hub.fail_next(status=502, body="<html><body>502 Bad Gateway</body></html>", times=2)
        hub.fail_next(status=503, times=1)

    with when_page_saved(1, outage):
        run = run_sync(sync_request(source).pk, sleep=waits.append)

    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert counters(run) == HUBSPOT_FULL_RUN
    assert search_statuses(hub) == [200, 502, 502, 503, 200, 200]
    assert len(waits) == 3  # one backoff per retry of the second page
    assert stored_ids(source) == ids
    first, second = tenant_a.partners
    assert current_value(first, "deals_won", PERIOD) == 225
    assert current_value(second, "revenue_won", PERIOD) == Decimal("1800.00")  # 180 deals; 45 are unmatched
    assert Deal.objects.filter(source=source, partner__isnull=True).count() == 45


def test_an_outage_longer_than_the_retries_fails_the_run_and_the_next_run_resumes_it(tenant_a, hub):
    ids = add_deals(hub, DEALS)
    source = hubspot_source(hub)
    waits: list[float] = []

    with when_page_saved(1, lambda: hub.fail_next(status=503, times=4)):
        failed = run_sync(sync_request(source).pk, sleep=waits.append)

    assert failed.status == SyncStatus.FAILED
    assert failed.error_kind == SyncErrorKind.TRANSIENT and "503" in failed.error
    assert len(waits) == 3  # four attempts, then the run gives up
    assert counters(failed) == tally(pages=1, fetched=200, created=200, unmatched=20)
    assert stored_ids(source) == sorted(str(number) for number in range(1, 201))
    assert failed.cursor is not None
    source.refresh_from_db()
    assert source.synced_until is None and source.last_success_at is None
    # The task redelivered after the failure finds the run finished and leaves it alone.
    hub.clear_requests()
    assert run_sync(failed.pk, sleep=waits.append).status == SyncStatus.FAILED
    assert hub.requests == []

    (resumed,) = sync_due()
    assert resumed.cursor == failed.cursor
    resumed = run_sync(resumed.pk, sleep=waits.append)

    assert resumed.status == SyncStatus.SUCCEEDED, resumed.error
    assert counters(resumed) == tally(pages=3, fetched=250, created=250, unmatched=25)
    assert stored_ids(source) == ids
    source.refresh_from_db()
    assert source.synced_until == datetime.fromisoformat(failed.cursor["window_end"])
    assert current_value(tenant_a.partners[0], "deals_won", PERIOD) == 225


@pytest.mark.parametrize("retry_after", [None, "5"], ids=["without-retry-after", "with-a-short-retry-after"])
def test_a_brief_rate_limit_mid_sync_is_waited_out_within_the_run(tenant_a, hub, retry_after):
    ids = add_deals(hub, DEALS)
    source = hubspot_source(hub)
    headers = {"Retry-After": retry_after} if retry_after else {}
    waits: list[float] = []

    with when_page_saved(2, lambda: hub.fail_next(status=429, headers=headers, times=2)):
        run = run_sync(sync_request(source).pk, sleep=waits.append)

    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert counters(run) == HUBSPOT_FULL_RUN
    assert search_statuses(hub) == [200, 200, 429, 429, 200]
    assert len(waits) == 2
    if retry_after:
        assert waits == [5.0, 5.0]  # as long as HubSpot asked; otherwise a backoff with jitter
    assert stored_ids(source) == ids
    assert SyncRun.objects.filter(source=source).count() == 1


@pytest.mark.parametrize(
    ("headers", "times", "retry_in"),
    [
        # Three 429s without a time: the attempts run out, the run waits the default minute.
        pytest.param({}, 3, 60, id="without-retry-after"),
        # Two minutes is longer than a worker sleeps through: the run is rescheduled at once.
        pytest.param({"Retry-After": "120"}, 1, 120, id="with-a-long-retry-after"),
    ],
)
def test_a_lasting_rate_limit_mid_sync_reschedules_and_the_retry_stores_the_rest(
    tenant_a, hub, headers, times, retry_in
):
    ids = add_deals(hub, DEALS)
    source = hubspot_source(hub)
    waits: list[float] = []

    with when_page_saved(2, lambda: hub.fail_next(status=429, headers=headers, times=times)):
        limited = run_sync(sync_request(source).pk, sleep=waits.append)

    assert limited.status == SyncStatus.RESCHEDULED
    assert limited.error_kind == SyncErrorKind.RATE_LIMIT
    assert limited.retry_at - limited.finished_at == timedelta(seconds=retry_in)
    assert counters(limited) == tally(pages=2, fetched=399, created=399, unmatched=39)
    retry = SyncRun.objects.get(source=source, status=SyncStatus.QUEUED)
    assert retry.trigger == "retry" and retry.cursor == limited.cursor

    retry = run_sync(retry.pk, sleep=waits.append)

    assert retry.status == SyncStatus.SUCCEEDED, retry.error
    assert counters(retry) == tally(pages=2, fetched=51, created=51, unmatched=6)
    assert stored_ids(source) == ids
    assert SyncRun.objects.filter(source=source).count() == 2


def test_a_sync_right_after_deals_changed_then_another_finds_nothing_new(tenant_a, hub):
    # Deals changed a few minutes ago: the next run's overlap window reads them again.
    ids = add_deals(hub, 30, modified_from=timezone.now() - timedelta(minutes=3))
    source = hubspot_source(hub)
    first = run_sync(sync_request(source).pk, sleep=no_wait)
    assert counters(first) == tally(pages=2, fetched=30, created=30, unmatched=3)

    again = run_sync(sync_request(source).pk, sleep=no_wait)

    assert again.status == SyncStatus.SUCCEEDED, again.error
    assert counters(again) == tally(pages=2, fetched=30)
    assert again.observations_written == 0
    assert stored_ids(source) == ids


# --- Salesforce --------------------------------------------------------------------------------------


@pytest.fixture
def sf() -> Iterator[FakeSalesforce]:
    with FakeSalesforce(client_id="cid", client_secret="secret", page_size=200) as fake:
        yield fake


def salesforce_source(sf: FakeSalesforce) -> DataSource:
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
    return source


def opportunity_id(number: int) -> str:
    return f"006A{number:014d}"


def add_opportunities(sf: FakeSalesforce, count: int, *, modified_from: datetime = HISTORY) -> list[str]:
    """``count`` won opportunities of 10 USD, modified one second apart; every tenth has an unknown partner."""
    for number in range(1, count + 1):
        partner = "001A0000001" if number % 2 else "001A0000002"
        if number % 10 == 0:
            partner = "001ZZZ0000009"  # an account that is no partner's
        sf.add_opportunity(
            opportunity_id(number),
            Name=f"Opportunity {number}",
            Amount=10,
            CurrencyIsoCode="USD",
            StageName="Closed Won",
            IsClosed=True,
            IsWon=True,
            CloseDate="2026-08-14",
            CreatedDate="2026-07-02T10:00:00.000+0000",
            SystemModstamp=sf_datetime(modified_from + timedelta(seconds=number)),
            PartnerAccountId=partner,
        )
    return sorted(opportunity_id(number) for number in range(1, count + 1))


def api_statuses(sf: FakeSalesforce) -> list[int]:
    return [request.status for request in sf.requests if request.base_url == sf.instance_url]


def token_requests(sf: FakeSalesforce) -> int:
    return sum(1 for request in sf.requests if request.path == TOKEN_PATH)


@pytest.mark.parametrize(
    ("lapse", "tokens", "refused"),
    [
        pytest.param(FakeSalesforce.expire_tokens, 2, 401, id="the-session-expires"),
        pytest.param(FakeSalesforce.expire_query_locators, 1, 400, id="the-query-locator-expires"),
    ],
)
def test_a_lapse_between_salesforce_pages_restarts_the_query_with_nothing_doubled(tenant_a, sf, lapse, tokens, refused):
    ids = add_opportunities(sf, DEALS)
    source = salesforce_source(sf)

    with when_page_saved(1, lambda: lapse(sf)):
        run = run_sync(sync_request(source).pk, sleep=no_wait)

    assert run.status == SyncStatus.SUCCEEDED, run.error
    # The restarted query begins at the last opportunity handed out, which it skips: 200, 199, 51.
    assert counters(run) == tally(pages=3, fetched=450, created=450, unmatched=45)
    assert api_statuses(sf) == [200, refused, 200, 200]
    assert token_requests(sf) == tokens  # a session is renewed once, and only when it lapsed
    assert stored_ids(source) == ids


def test_a_salesforce_org_without_partner_accounts_fails_once_as_configuration_and_writes_nothing(tenant_a, sf):
    ids = add_opportunities(sf, 5)
    sf.unknown_fields = {"PartnerAccountId"}  # partner relationship management is not enabled
    source = salesforce_source(sf)
    waits: list[float] = []

    run = run_sync(sync_request(source).pk, sleep=waits.append)

    assert run.status == SyncStatus.FAILED
    assert run.error_kind == SyncErrorKind.CONFIGURATION
    assert run.error.startswith("The Salesforce field PartnerAccountId is not available on Opportunity")
    assert "Partner Relationship Management" in run.error
    assert run.retry_at is None and run.cursor is None
    assert api_statuses(sf) == [400] and waits == []  # asked once, never retried
    assert counters(run) == tally(pages=0, fetched=0)
    assert stored_ids(source) == []
    assert SyncRun.objects.filter(source=source).count() == 1  # no retry queued
    source.refresh_from_db()
    assert source.last_success_at is None

    # Once an administrator enables partner accounts, the next run reads everything from the start.
    sf.unknown_fields = set()
    fixed = sync_request(source)
    assert fixed.cursor is None
    fixed = run_sync(fixed.pk, sleep=waits.append)
    assert counters(fixed) == tally(pages=1, fetched=5, created=5)
    assert stored_ids(source) == ids


def test_the_salesforce_request_limit_mid_sync_reschedules_once_and_the_retry_stores_the_rest(tenant_a, sf):
    ids = add_opportunities(sf, DEALS)
    source = salesforce_source(sf)
    waits: list[float] = []

    def exhaust_the_daily_limit():
        sf.request_limit = sf.api_calls

    with when_page_saved(1, exhaust_the_daily_limit):
        limited = run_sync(sync_request(source).pk, sleep=waits.append)

    assert limited.status == SyncStatus.RESCHEDULED
    assert limited.error_kind == SyncErrorKind.RATE_LIMIT and "REQUEST_LIMIT_EXCEEDED" in limited.error
    assert limited.retry_at - limited.finished_at == timedelta(seconds=60)  # Salesforce names no time
    assert api_statuses(sf) == [200, 403] and waits == []  # refused once, not asked again
    assert counters(limited) == tally(pages=1, fetched=200, created=200, unmatched=20)
    retry = SyncRun.objects.get(source=source, status=SyncStatus.QUEUED)
    assert retry.trigger == "retry" and retry.cursor == limited.cursor
    # The task redelivered for the rescheduled run leaves it alone: only the retry reads on.
    assert run_sync(limited.pk, sleep=waits.append).status == SyncStatus.RESCHEDULED

    sf.request_limit = None  # the limit's day has rolled over
    retry = run_sync(retry.pk, sleep=waits.append)

    assert retry.status == SyncStatus.SUCCEEDED, retry.error
    assert counters(retry) == tally(pages=2, fetched=250, created=250, unmatched=25)
    assert stored_ids(source) == ids
    assert SyncRun.objects.filter(source=source).count() == 2


def test_salesforce_syncs_without_changes_change_nothing_and_then_count_each_change_once(tenant_a, sf):
    # Modified minutes ago: every incremental run below reads them again through its overlap.
    ids = add_opportunities(sf, 30, modified_from=timezone.now() - timedelta(minutes=5))
    source = salesforce_source(sf)
    first = run_sync(sync_request(source).pk, sleep=no_wait)
    assert counters(first) == tally(pages=1, fetched=30, created=30, unmatched=3)
    assert first.observations_written > 0

    again = run_sync(sync_request(source).pk, sleep=no_wait)

    assert again.status == SyncStatus.SUCCEEDED, again.error
    assert counters(again) == tally(pages=1, fetched=30)
    assert again.observations_written == 0
    assert stored_ids(source) == ids

    edited = timezone.now() - timedelta(seconds=5)
    sf.update_opportunity(opportunity_id(1), Amount=25, SystemModstamp=sf_datetime(edited))
    sf.update_opportunity(opportunity_id(2), Amount=40, SystemModstamp=sf_datetime(edited))
    sf.delete_opportunity(opportunity_id(3))  # stamped a second after the edits
    changed = run_sync(sync_request(source).pk, sleep=no_wait)

    assert changed.status == SyncStatus.SUCCEEDED, changed.error
    assert counters(changed) == tally(pages=1, fetched=30, updated=2, deleted=1)
    assert stored_ids(source) == ids
    deals = Deal.objects.filter(source=source)
    assert list(deals.filter(deleted_at__isnull=False).values_list("external_id", flat=True)) == [opportunity_id(3)]
    assert deals.get(external_id=opportunity_id(1)).amount == Decimal("25.00")
    assert deals.get(external_id=opportunity_id(2)).amount == Decimal("40.00")
    first_partner, second_partner = tenant_a.partners
    # The first partner has the 15 odd opportunities, the second the 12 even ones that are no tenth.
    assert current_value(first_partner, "revenue_won", PERIOD) == Decimal("155.00")  # 150 + 15 - 10
    assert current_value(second_partner, "revenue_won", PERIOD) == Decimal("150.00")  # 120 + 30


def test_a_salesforce_worker_dying_between_pages_loses_only_the_page_in_flight(tenant_a, sf):
    ids = add_opportunities(sf, DEALS)
    source = salesforce_source(sf)
    run = sync_request(source)

    def die():
        raise WorkerLost

    # The worker commits the first page, then dies while committing the second (read by nextRecordsUrl).
    with when_page_saved(2, die), pytest.raises(WorkerLost):
        run_sync(run.pk, sleep=no_wait)

    run.refresh_from_db()
    assert run.status == SyncStatus.RUNNING
    assert counters(run) == tally(pages=1, fetched=200, created=200, unmatched=20)
    assert len(stored_ids(source)) == 200
    assert api_statuses(sf) == [200, 200]

    run = run_sync(run.pk, sleep=no_wait)  # the redelivered task

    assert run.status == SyncStatus.SUCCEEDED, run.error
    # No query locator is kept: the redelivered worker queries again from the first page's last stamp
    # and reads two pages more, 199 and 51.
    assert counters(run) == tally(pages=3, fetched=450, created=450, unmatched=45)
    assert stored_ids(source) == ids
    assert current_value(tenant_a.partners[0], "deals_won", PERIOD) == 225
