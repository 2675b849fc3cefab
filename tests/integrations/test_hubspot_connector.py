"""The HubSpot connector against a local fake of the CRM v3 search, list and v4 associations APIs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from partnerhub.integrations.connectors import (
    AuthenticationFailed,
    ConfigurationError,
    ConnectorError,
    Cursor,
    DealRecord,
    HubSpotConnector,
    Page,
    RateLimited,
    TransientError,
)
from partnerhub.integrations.connectors.values import parse_datetime, to_epoch_millis
from tests.fakes.hubspot import FakeHubSpot

TOKEN = "pat-test"
RUN_START = datetime(2026, 9, 1, tzinfo=UTC)
SEARCH = "/crm/v3/objects/deals/search"


@pytest.fixture
def hub() -> Iterator[FakeHubSpot]:
    with FakeHubSpot(token=TOKEN) as fake:
        yield fake


@pytest.fixture
def sleeps() -> list[float]:
    """Every backoff the connector asked for; nothing really sleeps."""
    return []


def connect(hub: FakeHubSpot, sleeps: list[float], **options) -> HubSpotConnector:
    options.setdefault("clock", lambda: RUN_START)
    options.setdefault("token", TOKEN)
    return HubSpotConnector(hub.base_url, sleep=sleeps.append, **options)


def modified(minute: int, second: int = 0) -> str:
    return f"2026-08-15T12:{minute:02d}:{second:02d}.000Z"


def add_deals(hub: FakeHubSpot, count: int, *, first_id: int = 101, **properties) -> list[str]:
    ids = []
    for index in range(count):
        deal_id = str(first_id + index)
        hub.add_deal(
            deal_id,
            dealname=f"Deal {deal_id}",
            amount="1000",
            dealstage="appointmentscheduled",
            createdate="2026-07-01T10:00:00Z",
            **{"hs_lastmodifieddate": modified(index // 60, index % 60), **properties},
        )
        ids.append(deal_id)
    return ids


def records(pages: list[Page]) -> list[DealRecord]:
    return [record for page in pages for record in page.records]


def live_ids(pages: list[Page]) -> list[str]:
    return [record.external_id for record in records(pages) if not record.deleted]


def searches(hub: FakeHubSpot) -> list:
    return [request for request in hub.requests if request.path == SEARCH]


# -- paging --------------------------------------------------------------------------------------


def test_a_full_run_pages_through_every_deal_once_and_ends_with_a_done_page(hub, sleeps):
    ids = add_deals(hub, 7)

    pages = list(connect(hub, sleeps, page_size=3).iter_pages(since=None))

    assert live_ids(pages) == ids
    assert all(len(page.records) <= 3 for page in pages)
    assert [page.done for page in pages] == [False] * (len(pages) - 1) + [True]
    assert pages[-1].cursor.window_end == RUN_START
    body = searches(hub)[0].json
    assert body["sorts"] == [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}]
    assert body["limit"] == 3
    assert all(request.status == 200 for request in hub.requests)
    assert sleeps == []


def test_an_empty_portal_gives_one_done_page_without_records(hub, sleeps):
    pages = list(connect(hub, sleeps).iter_pages(since=None))

    assert len(pages) == 1
    assert pages[0].records == [] and pages[0].done


def test_a_page_size_above_hubspots_maximum_is_refused(hub, sleeps):
    with pytest.raises(ValueError, match="200"):
        connect(hub, sleeps, page_size=201)


# -- incremental window --------------------------------------------------------------------------


def test_an_incremental_run_reads_from_since_minus_the_overlap_up_to_the_run_start(hub, sleeps):
    hub.add_deal("1", dealname="too old", hs_lastmodifieddate="2026-08-15T12:04:59.999Z")
    hub.add_deal("2", dealname="edge of the overlap", hs_lastmodifieddate="2026-08-15T12:05:00.000Z")
    hub.add_deal("3", dealname="since", hs_lastmodifieddate="2026-08-15T12:10:00.000Z")
    hub.add_deal("4", dealname="late", hs_lastmodifieddate="2026-08-31T23:59:59.999Z")
    hub.add_deal("5", dealname="after the run started", hs_lastmodifieddate="2026-09-01T00:00:00.000Z")
    since = datetime(2026, 8, 15, 12, 10, tzinfo=UTC)

    pages = list(connect(hub, sleeps, overlap=timedelta(minutes=5)).iter_pages(since=since))

    assert live_ids(pages) == ["2", "3", "4"]
    filters = searches(hub)[0].json["filterGroups"][0]["filters"]
    assert filters == [
        {"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": str(to_epoch_millis(since) - 300_000)},
        {"propertyName": "hs_lastmodifieddate", "operator": "LT", "value": str(to_epoch_millis(RUN_START))},
    ]


def test_the_window_end_is_taken_once_when_the_run_starts(hub, sleeps):
    add_deals(hub, 5)
    ticks = iter([RUN_START, RUN_START + timedelta(hours=1), RUN_START + timedelta(hours=2)])

    pages = list(connect(hub, sleeps, page_size=2, clock=lambda: next(ticks)).iter_pages(since=None))

    ends = {request.json["filterGroups"][0]["filters"][1]["value"] for request in searches(hub)}
    assert ends == {str(to_epoch_millis(RUN_START))}
    assert {page.cursor.window_end for page in pages} == {RUN_START}


# -- the 10,000-result cap -----------------------------------------------------------------------


def test_a_window_past_the_result_cap_is_halved_until_every_search_fits(sleeps):
    with FakeHubSpot(token=TOKEN, result_cap=5) as hub:
        ids = add_deals(hub, 23)

        pages = list(connect(hub, sleeps, page_size=2, result_cap=5).iter_pages(since=None))

        assert sorted(live_ids(pages)) == ids
        assert len(live_ids(pages)) == len(ids)
        assert sum(page.stats.window_splits for page in pages) > 0
        # Never paged into the cap: HubSpot would have answered 400.
        assert all(request.status == 200 for request in hub.requests)
        assert all(int(request.json.get("after") or 0) + request.json["limit"] <= 5 for request in searches(hub))


def test_a_cap_split_over_years_of_history_narrows_to_the_first_deal_found(sleeps):
    with FakeHubSpot(token=TOKEN, result_cap=10) as hub:
        ids = add_deals(hub, 30)

        pages = list(connect(hub, sleeps, page_size=10, result_cap=10).iter_pages(since=None))

        assert live_ids(pages) == ids
        starts = [int(request.json["filterGroups"][0]["filters"][0]["value"]) for request in searches(hub)]
        # After the first search the window starts at the oldest deal, not at 1970.
        first_deal = to_epoch_millis(parse_datetime(modified(0)))
        assert starts[0] == 0
        assert min(starts[1:]) == first_deal


def test_deals_sharing_one_modification_time_are_paged_by_offset_without_loss(sleeps):
    with FakeHubSpot(token=TOKEN, result_cap=10) as hub:
        ids = add_deals(hub, 9, hs_lastmodifieddate=modified(30))
        later = add_deals(hub, 3, first_id=201, hs_lastmodifieddate=modified(40))

        pages = list(connect(hub, sleeps, page_size=2, result_cap=10).iter_pages(since=None))

        assert sorted(live_ids(pages)) == sorted(ids + later)
        assert len(live_ids(pages)) == 12
        assert any(request.json.get("after") for request in searches(hub))
        assert all(request.status == 200 for request in hub.requests)


def test_more_deals_at_one_instant_than_the_cap_is_a_clear_error(sleeps):
    with FakeHubSpot(token=TOKEN, result_cap=4) as hub:
        add_deals(hub, 6, hs_lastmodifieddate=modified(30))

        with pytest.raises(ConnectorError, match="More than 4 HubSpot deals were modified at 2026-08-15T12:30"):
            list(connect(hub, sleeps, page_size=2, result_cap=4).iter_pages(since=None))


def test_a_deal_edited_while_paging_loses_no_other_deal_and_comes_back_in_its_new_version(hub, sleeps):
    ids = add_deals(hub, 8)
    pages_iter = connect(hub, sleeps, page_size=3).iter_pages(since=None)
    first = next(pages_iter)

    # The fake dates the edit just after its newest deal: still inside this run's window.
    hub.update_deal(first.records[0].external_id, dealname="renamed")
    rest = list(pages_iter)

    handed_out = live_ids([first, *rest])
    assert set(handed_out) == set(ids)
    assert handed_out.count(first.records[0].external_id) == 2
    newest = [record for record in records(rest) if record.external_id == first.records[0].external_id]
    assert newest[0].name == "renamed"
    assert len(handed_out) == len(ids) + 1


# -- values --------------------------------------------------------------------------------------


def test_deal_properties_become_typed_values(hub, sleeps):
    hub.add_deal(
        "101",
        dealname="Acme renewal",
        amount="12500.50",
        deal_currency_code="USD",
        dealstage="closedwon",
        createdate="2026-07-01T10:00:00Z",
        closedate="2026-08-15T00:00:00.000Z",
        hs_lastmodifieddate="2026-08-15T12:00:00.000Z",
        partner_id="P-1",
    )

    (record,) = records(list(connect(hub, sleeps, partner_property="partner_id").iter_pages(since=None)))

    assert record.external_id == "101"
    assert record.name == "Acme renewal"
    assert record.amount == Decimal("12500.50") and isinstance(record.amount, Decimal)
    assert record.currency == "USD"
    assert record.stage == "closedwon"
    assert record.closed is True and record.won is True
    assert record.created_at == datetime(2026, 7, 1, 10, tzinfo=UTC)
    assert record.created_at.tzinfo is not None
    assert record.close_date == date(2026, 8, 15)
    assert record.modified_at == datetime(2026, 8, 15, 12, tzinfo=UTC)
    assert record.partner_ref == "P-1"
    assert record.deleted is False
    assert record.raw["properties"]["amount"] == "12500.50"
    assert searches(hub)[0].json["properties"][-1] == "partner_id"


def test_timestamps_with_an_offset_or_in_epoch_millis_read_as_the_same_instant(hub, sleeps):
    hub.add_deal(
        "1",
        createdate="2026-07-01T12:00:00+02:00",
        hs_lastmodifieddate="2026-08-15T14:00:00.000+02:00",
        closedate="2026-08-15T00:00:00Z",
    )
    hub.add_deal(
        "2",
        createdate=str(to_epoch_millis(datetime(2026, 7, 1, 10, tzinfo=UTC))),
        hs_lastmodifieddate=str(to_epoch_millis(datetime(2026, 8, 15, 12, 0, 1, tzinfo=UTC))),
        closedate=str(to_epoch_millis(datetime(2026, 8, 15, tzinfo=UTC))),
    )

    first, second = records(list(connect(hub, sleeps).iter_pages(since=None)))

    assert first.created_at == second.created_at == datetime(2026, 7, 1, 10, tzinfo=UTC)
    assert first.modified_at == datetime(2026, 8, 15, 12, tzinfo=UTC)
    assert second.modified_at == datetime(2026, 8, 15, 12, 0, 1, tzinfo=UTC)
    assert first.close_date == second.close_date == date(2026, 8, 15)


def test_closed_and_won_follow_hubspots_flags_for_custom_pipelines(hub, sleeps):
    hub.add_deal("1", dealstage="contractsigned", hs_is_closed="true", hs_is_closed_won="true", amount="")
    hub.add_deal("2", dealstage="procurement", hs_is_closed="false", hs_is_closed_won="false")
    hub.add_deal("3", dealstage="closedlost")

    signed, open_deal, lost = records(list(connect(hub, sleeps).iter_pages(since=None)))

    assert (signed.closed, signed.won, signed.amount) == (True, True, None)
    assert (open_deal.closed, open_deal.won) == (False, False)
    assert (lost.closed, lost.won) == (True, False)
    assert open_deal.amount is None and open_deal.partner_ref is None


def test_a_malformed_amount_names_the_deal_and_the_property(hub, sleeps):
    hub.add_deal("77", amount="12,500")

    with pytest.raises(ConnectorError, match="HubSpot deal 77: property amount"):
        list(connect(hub, sleeps).iter_pages(since=None))


# -- partner attribution by association label ---------------------------------------------------------


def test_an_association_label_attributes_each_deal_to_the_company_with_that_label(hub, sleeps):
    hub.add_deal("1", hs_lastmodifieddate=modified(1), companies=[("777", None), ("555", "Reseller")])
    hub.add_deal("2", hs_lastmodifieddate=modified(2), companies=[("888", "Referral")])
    hub.add_deal("3", hs_lastmodifieddate=modified(3))
    hub.add_deal("4", hs_lastmodifieddate=modified(4), companies=[("999", ["Primary", "reseller"])])

    found = records(list(connect(hub, sleeps, association_label="Reseller").iter_pages(since=None)))

    assert [(record.external_id, record.partner_ref) for record in found] == [
        ("1", "555"),
        ("2", None),
        ("3", None),
        ("4", "999"),
    ]
    (batch,) = [request for request in hub.requests if request.path.startswith("/crm/v4/associations")]
    assert batch.path == "/crm/v4/associations/deals/companies/batch/read"
    assert batch.json == {"inputs": [{"id": "1"}, {"id": "2"}, {"id": "3"}, {"id": "4"}]}


def test_a_property_and_an_association_label_together_are_refused(hub, sleeps):
    with pytest.raises(ConfigurationError, match="not both"):
        connect(hub, sleeps, partner_property="partner_id", association_label="Reseller")


# -- archived deals ------------------------------------------------------------------------------


def test_archived_deals_in_the_window_come_back_as_deleted_records(hub, sleeps):
    add_deals(hub, 3, partner_id="P-1")
    hub.archive_deal("102", archived_at="2026-08-20T09:00:00.000Z")
    hub.archive_deal("103", archived_at="2026-08-01T09:00:00.000Z")  # reported by an earlier run
    since = datetime(2026, 8, 15, 12, 0, tzinfo=UTC)

    pages = list(connect(hub, sleeps, partner_property="partner_id").iter_pages(since=since))

    assert live_ids(pages) == ["101"]
    deleted = [record for record in records(pages) if record.deleted]
    assert [(record.external_id, record.modified_at, record.partner_ref) for record in deleted] == [
        ("102", datetime(2026, 8, 20, 9, tzinfo=UTC), "P-1")
    ]
    (listing,) = [request for request in hub.requests if request.path == "/crm/v3/objects/deals"]
    assert listing.query["archived"] == "true"
    assert pages[-1].done


def test_a_full_run_reports_every_archived_deal_paging_the_archive(hub, sleeps):
    ids = add_deals(hub, 105)
    for deal_id in ids[:102]:
        hub.archive_deal(deal_id)

    pages = list(connect(hub, sleeps).iter_pages(since=None))

    assert live_ids(pages) == ids[102:]
    assert sorted(record.external_id for record in records(pages) if record.deleted) == ids[:102]
    listings = [request for request in hub.requests if request.path == "/crm/v3/objects/deals"]
    assert [request.query.get("after") for request in listings] == [None, "100"]


# -- rate limits, server errors, authentication ------------------------------------------------------


def test_a_rate_limit_with_retry_after_is_waited_out_exactly_as_asked(hub, sleeps):
    add_deals(hub, 2)
    hub.fail_next(status=429, headers={"Retry-After": "2"}, times=1)

    pages = list(connect(hub, sleeps).iter_pages(since=None))

    assert live_ids(pages) == ["101", "102"]
    assert sleeps == [2.0]
    assert [request.status for request in searches(hub)] == [429, 200]
    assert pages[0].stats.retries == 1


def test_a_rate_limit_without_retry_after_backs_off_exponentially_with_jitter(hub, sleeps):
    add_deals(hub, 1)
    hub.fail_next(status=429, times=2)

    list(connect(hub, sleeps).iter_pages(since=None))

    # Default policy: 0.5 s doubling, plus up to 0.5 s of jitter.
    assert len(sleeps) == 2
    assert 0.5 <= sleeps[0] <= 1.0
    assert 1.0 <= sleeps[1] <= 1.5


def test_a_rate_limit_that_outlasts_the_attempts_asks_for_a_reschedule(hub, sleeps):
    add_deals(hub, 1)
    hub.fail_next(status=429, headers={"Retry-After": "2"}, times=3)

    with pytest.raises(RateLimited) as raised:
        list(connect(hub, sleeps).iter_pages(since=None))

    assert raised.value.retry_after == 2.0
    assert str(raised.value) == "HubSpot rate limit reached: You have reached your ten_secondly_rolling limit."
    assert sleeps == [2.0, 2.0]
    assert len(hub.requests) == 3


def test_a_retry_after_longer_than_the_bound_is_not_slept_through(hub, sleeps):
    add_deals(hub, 1)
    hub.fail_next(status=429, headers={"Retry-After": "120"}, times=1)

    with pytest.raises(RateLimited) as raised:
        list(connect(hub, sleeps).iter_pages(since=None))

    assert raised.value.retry_after == 120.0
    assert sleeps == []
    assert len(hub.requests) == 1


def test_server_errors_are_retried_with_backoff_then_the_run_goes_on(hub, sleeps):
    add_deals(hub, 2)
    hub.fail_next(status=503, times=2)

    pages = list(connect(hub, sleeps).iter_pages(since=None))

    assert live_ids(pages) == ["101", "102"]
    assert [request.status for request in hub.requests[:3]] == [503, 503, 200]
    assert len(sleeps) == 2
    assert 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 1.5


def test_server_errors_that_outlast_the_attempts_raise_a_transient_error(hub, sleeps):
    add_deals(hub, 1)
    hub.fail_next(status=500, times=4)

    with pytest.raises(TransientError, match="HubSpot answered 500"):
        list(connect(hub, sleeps).iter_pages(since=None))

    assert len(hub.requests) == 4
    assert len(sleeps) == 3


def test_a_dropped_connection_is_retried(hub, sleeps):
    add_deals(hub, 1)
    hub.fail_next(disconnect=True, times=1)

    pages = list(connect(hub, sleeps).iter_pages(since=None))

    assert live_ids(pages) == ["101"]
    assert len(sleeps) == 1


def test_an_invalid_token_fails_authentication_after_exactly_one_request(hub, sleeps):
    add_deals(hub, 1)

    with pytest.raises(AuthenticationFailed, match="Authentication credentials not found"):
        list(connect(hub, sleeps, token="pat-revoked").iter_pages(since=None))

    assert len(hub.requests) == 1
    assert sleeps == []


def test_another_client_error_carries_hubspots_message_and_is_not_retried(hub, sleeps):
    hub.fail_next(
        status=400,
        body={
            "status": "error",
            "message": "Invalid filter value for hs_lastmodifieddate",
            "category": "VALIDATION_ERROR",
        },
    )

    with pytest.raises(ConnectorError, match="HubSpot answered 400: Invalid filter value") as raised:
        list(connect(hub, sleeps).iter_pages(since=None))

    assert type(raised.value) is ConnectorError
    assert len(hub.requests) == 1


def test_a_missing_scope_is_a_configuration_error(hub, sleeps):
    hub.fail_next(status=403, body={"status": "error", "message": "This app hasn't been granted all required scopes"})

    with pytest.raises(ConfigurationError, match="scopes"):
        list(connect(hub, sleeps).iter_pages(since=None))


# -- resuming ------------------------------------------------------------------------------------


def full_run(hub: FakeHubSpot, **options) -> list[tuple[str, bool]]:
    pages = list(connect(hub, [], **options).iter_pages(since=None))
    return [(record.external_id, record.deleted) for record in records(pages)]


@pytest.mark.parametrize("stop_after", [1, 2, 4, 6])
def test_a_run_resumed_from_a_committed_page_cursor_hands_out_the_rest_exactly_once(sleeps, stop_after):
    options = {"page_size": 2, "result_cap": 6, "partner_property": "partner_id"}
    with FakeHubSpot(token=TOKEN, result_cap=6) as hub:
        add_deals(hub, 9, partner_id="P-1")
        add_deals(hub, 4, first_id=301, hs_lastmodifieddate=modified(30))  # a tie across pages
        hub.archive_deal("105")
        expected = full_run(hub, **options)

        interrupted = connect(hub, sleeps, **options).iter_pages(since=None)
        committed = [next(interrupted) for _ in range(stop_after)]
        stored = committed[-1].cursor.to_json()  # what a sync run keeps after committing the page
        resumed = list(connect(hub, sleeps, **options).iter_pages(cursor=Cursor.from_json(stored)))

        handed_out = [(record.external_id, record.deleted) for record in records(committed + resumed)]
        assert handed_out == expected
        assert len(set(handed_out)) == len(handed_out)
        assert resumed[-1].done


def test_a_finished_cursor_resumes_to_a_single_done_page(hub, sleeps):
    add_deals(hub, 2)
    final = list(connect(hub, sleeps).iter_pages(since=None))[-1].cursor

    again = list(connect(hub, sleeps).iter_pages(cursor=Cursor.from_json(final.to_json())))

    assert len(again) == 1 and again[0].done and again[0].records == []


def test_a_cursor_of_another_crm_is_refused(hub, sleeps):
    foreign = Cursor(kind="salesforce", window_end=RUN_START, state={})

    with pytest.raises(ValueError, match="salesforce cursor"):
        next(connect(hub, sleeps).iter_pages(cursor=foreign))
