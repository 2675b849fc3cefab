"""The Salesforce connector against a local fake of the OAuth token endpoint and the REST query API."""

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
    Page,
    RateLimited,
    SalesforceConnector,
    TransientError,
)
from tests.fakes.salesforce import FakeSalesforce

RUN_START = datetime(2026, 9, 1, tzinfo=UTC)
TOKEN_PATH = "/services/oauth2/token"
INVALID_SESSION = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
REQUEST_LIMIT = [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]


@pytest.fixture
def sf() -> Iterator[FakeSalesforce]:
    with FakeSalesforce(client_id="cid", client_secret="secret", api_version="v61.0") as fake:
        yield fake


@pytest.fixture
def sleeps() -> list[float]:
    """Every backoff the connector asked for; nothing really sleeps."""
    return []


def connect(sf: FakeSalesforce, sleeps: list[float], **options) -> SalesforceConnector:
    options.setdefault("clock", lambda: RUN_START)
    client_id = options.pop("client_id", "cid")
    client_secret = options.pop("client_secret", "secret")
    login_url = options.pop("login_url", sf.base_url)
    return SalesforceConnector(login_url, client_id, client_secret, sleep=sleeps.append, **options)


def stamp(minute: int, second: int = 0) -> str:
    return f"2026-08-15T12:{minute:02d}:{second:02d}.000+0000"


def add_opportunities(sf: FakeSalesforce, count: int, *, first: int = 1, **fields) -> list[str]:
    ids = []
    for index in range(count):
        opportunity_id = f"006xx{first + index:07d}"
        defaults = {
            "Name": f"Opportunity {first + index}",
            "Amount": 1000,
            "StageName": "Prospecting",
            "IsClosed": False,
            "IsWon": False,
            "CloseDate": "2026-09-30",
            "CreatedDate": "2026-07-01T10:00:00.000+0000",
            "SystemModstamp": stamp(index // 60, index % 60),
        }
        sf.add_opportunity(opportunity_id, **{**defaults, **fields})
        ids.append(opportunity_id)
    return ids


def records(pages: list[Page]) -> list[DealRecord]:
    return [record for page in pages for record in page.records]


def ids_of(pages: list[Page]) -> list[str]:
    return [record.external_id for record in records(pages)]


def api_requests(sf: FakeSalesforce) -> list:
    return [request for request in sf.requests if request.base_url == sf.instance_url]


def token_requests(sf: FakeSalesforce) -> list:
    return [request for request in sf.requests if request.path == TOKEN_PATH]


# -- authentication and the instance URL ---------------------------------------------------------------


def test_the_client_credentials_token_names_the_host_every_query_goes_to(sf, sleeps):
    add_opportunities(sf, 1)
    connector = connect(sf, sleeps)

    list(connector.iter_pages(since=None))

    token, query = sf.requests
    assert token.base_url == sf.base_url and token.method == "POST" and token.path == TOKEN_PATH
    assert token.form == {"grant_type": "client_credentials", "client_id": "cid", "client_secret": "secret"}
    assert sf.instance_url != sf.base_url
    assert connector.instance_url == sf.instance_url
    assert query.base_url == sf.instance_url
    assert query.path == "/services/data/v61.0/queryAll"
    assert query.headers["authorization"].startswith("Bearer 00Dxx")
    assert query.headers["sforce-query-options"] == "batchSize=2000"


def test_a_configured_token_url_is_where_tokens_are_asked_for(sf, sleeps):
    add_opportunities(sf, 1)
    connector = connect(sf, sleeps, login_url="http://127.0.0.1:9/unused", token_url=f"{sf.base_url}{TOKEN_PATH}")

    assert len(records(list(connector.iter_pages(since=None)))) == 1
    token = sf.requests[0]
    assert token.base_url == sf.base_url and token.path == TOKEN_PATH


def test_invalid_client_credentials_fail_authentication_without_retrying(sf, sleeps):
    with pytest.raises(AuthenticationFailed, match="invalid_client: invalid client credentials"):
        list(connect(sf, sleeps, client_secret="wrong").iter_pages(since=None))

    assert len(sf.requests) == 1
    assert sleeps == []


def test_an_unknown_client_id_fails_authentication(sf, sleeps):
    with pytest.raises(AuthenticationFailed, match="invalid_client_id"):
        list(connect(sf, sleeps, client_id="someone-else").iter_pages(since=None))


def test_a_token_endpoint_outage_is_retried(sf, sleeps):
    add_opportunities(sf, 1)
    sf.fail_next(status=503, endpoint="token", times=1)

    pages = list(connect(sf, sleeps).iter_pages(since=None))

    assert len(ids_of(pages)) == 1
    assert [request.status for request in token_requests(sf)] == [503, 200]
    assert len(sleeps) == 1


# -- paging and the incremental window ----------------------------------------------------------------


def test_a_run_follows_next_records_url_to_the_last_batch(sf, sleeps):
    sf.page_size = 2
    ids = add_opportunities(sf, 5)

    pages = list(connect(sf, sleeps).iter_pages(since=None))

    assert ids_of(pages) == ids
    assert [len(page.records) for page in pages] == [2, 2, 1]
    assert [page.done for page in pages] == [False, False, True]
    first, *rest = api_requests(sf)
    assert first.path.endswith("/queryAll")
    assert len(rest) == 2
    assert all(request.path.startswith("/services/data/v61.0/query/01gxx") for request in rest)


def test_an_incremental_run_asks_soql_for_the_overlap_window_oldest_first(sf, sleeps):
    sf.add_opportunity("006A", Name="too old", SystemModstamp="2026-08-15T12:04:59.000+0000")
    sf.add_opportunity("006B", Name="edge of the overlap", SystemModstamp="2026-08-15T12:05:00.000+0000")
    sf.add_opportunity("006C", Name="inside", SystemModstamp="2026-08-15T12:05:01.000+0000")
    sf.add_opportunity("006D", Name="last second of the run", SystemModstamp="2026-09-01T00:00:00.000+0000")
    sf.add_opportunity("006E", Name="after the run started", SystemModstamp="2026-09-01T00:00:01.000+0000")
    since = datetime(2026, 8, 15, 12, 10, tzinfo=UTC)

    pages = list(connect(sf, sleeps, overlap=timedelta(minutes=5)).iter_pages(since=since))

    assert ids_of(pages) == ["006C", "006D"]
    soql = api_requests(sf)[0].query["q"]
    assert "FROM Opportunity WHERE SystemModstamp > 2026-08-15T12:05:00Z" in soql
    assert "AND SystemModstamp <= 2026-09-01T00:00:00Z ORDER BY SystemModstamp ASC" in soql
    assert pages[-1].cursor.window_end == RUN_START


def test_deleted_opportunities_come_back_through_query_all_as_deleted_records(sf, sleeps):
    add_opportunities(sf, 3)
    sf.delete_opportunity("006xx0000002")

    found = records(list(connect(sf, sleeps).iter_pages(since=None)))

    assert [(record.external_id, record.deleted) for record in found] == [
        ("006xx0000001", False),
        ("006xx0000003", False),
        ("006xx0000002", True),
    ]
    assert found[-1].modified_at > found[1].modified_at


def test_opportunity_fields_become_typed_values(sf, sleeps):
    sf.add_opportunity(
        "006xx0000001",
        Name="Acme renewal",
        Amount=12500.5,
        CurrencyIsoCode="USD",
        StageName="Closed Won",
        IsClosed=True,
        IsWon=True,
        CloseDate="2026-08-15",
        CreatedDate="2026-07-01T10:00:00.000+0000",
        SystemModstamp="2026-08-15T12:00:00.000+0000",
        PartnerAccountId="001xx0000009",
    )

    (record,) = records(list(connect(sf, sleeps).iter_pages(since=None)))

    assert record.external_id == "006xx0000001"
    assert record.name == "Acme renewal"
    assert record.amount == Decimal("12500.50") and isinstance(record.amount, Decimal)
    assert record.currency == "USD"
    assert record.stage == "Closed Won"
    assert record.closed is True and record.won is True
    assert record.close_date == date(2026, 8, 15)
    assert record.created_at == datetime(2026, 7, 1, 10, tzinfo=UTC)
    assert record.modified_at == datetime(2026, 8, 15, 12, tzinfo=UTC)
    assert record.partner_ref == "001xx0000009"
    assert record.deleted is False
    assert record.raw["attributes"]["type"] == "Opportunity"


def test_a_custom_partner_field_is_selected_and_reported(sf, sleeps):
    add_opportunities(sf, 1, Partner_Code__c="P-7")

    (record,) = records(list(connect(sf, sleeps, partner_field="Partner_Code__c").iter_pages(since=None)))

    assert record.partner_ref == "P-7"
    assert "Partner_Code__c" in api_requests(sf)[0].query["q"]


def test_an_opportunity_without_amount_or_partner_has_none_for_both(sf, sleeps):
    add_opportunities(sf, 1, Amount=None, PartnerAccountId=None)

    (record,) = records(list(connect(sf, sleeps).iter_pages(since=None)))

    assert record.amount is None and record.partner_ref is None


# -- sessions, limits and field errors -----------------------------------------------------------------


def test_an_expired_session_is_renewed_once_and_the_query_restarts_from_the_last_page(sf, sleeps):
    sf.page_size = 2
    ids = add_opportunities(sf, 5)
    pages = connect(sf, sleeps).iter_pages(since=None)
    first = next(pages)

    sf.expire_tokens()
    rest = list(pages)

    assert ids_of([first, *rest]) == ids
    assert len(token_requests(sf)) == 2
    statuses = [(request.path.rsplit("/", 1)[-1][:8], request.status) for request in api_requests(sf)]
    # After a renewal the SOQL is issued again, starting where the run stood, not from the old locator.
    assert statuses[1][1] == 401
    assert statuses[2] == ("queryAll", 200)
    assert "SystemModstamp >= 2026-08-15T12:00:01Z" in api_requests(sf)[2].query["q"]


def test_a_session_refused_right_after_renewal_fails_authentication(sf, sleeps):
    add_opportunities(sf, 1)
    sf.fail_next(status=401, body=INVALID_SESSION, times=2)

    with pytest.raises(AuthenticationFailed, match="INVALID_SESSION_ID"):
        list(connect(sf, sleeps).iter_pages(since=None))

    assert len(token_requests(sf)) == 2
    assert len(api_requests(sf)) == 2
    assert sleeps == []


def test_sessions_expiring_again_later_in_a_long_run_are_renewed_again(sf, sleeps):
    sf.page_size = 2
    ids = add_opportunities(sf, 6)
    pages = connect(sf, sleeps).iter_pages(since=None)
    handed_out = [next(pages)]
    sf.expire_tokens()
    handed_out.append(next(pages))
    sf.expire_tokens()
    handed_out.extend(pages)

    assert ids_of(handed_out) == ids
    assert len(token_requests(sf)) == 3


def test_the_org_request_limit_asks_for_a_reschedule_at_once(sf, sleeps):
    add_opportunities(sf, 1)
    sf.fail_next(status=403, body=REQUEST_LIMIT, times=1)

    with pytest.raises(RateLimited, match="TotalRequests Limit exceeded") as raised:
        list(connect(sf, sleeps).iter_pages(since=None))

    assert raised.value.retry_after is None
    assert len(api_requests(sf)) == 1
    assert sleeps == []


def test_a_run_stopped_by_the_request_limit_resumes_from_its_last_cursor(sf, sleeps):
    sf.page_size = 2
    ids = add_opportunities(sf, 5)
    pages = connect(sf, sleeps).iter_pages(since=None)
    first = next(pages)
    sf.request_limit = 0

    with pytest.raises(RateLimited):
        next(pages)
    sf.request_limit = None
    rest = list(connect(sf, sleeps).iter_pages(cursor=Cursor.from_json(first.cursor.to_json())))

    assert ids_of([first, *rest]) == ids


def test_a_missing_partner_account_field_explains_what_to_enable(sf, sleeps):
    add_opportunities(sf, 1)
    sf.unknown_fields = {"PartnerAccountId"}

    with pytest.raises(ConfigurationError) as raised:
        list(connect(sf, sleeps).iter_pages(since=None))

    message = str(raised.value)
    assert message.startswith("The Salesforce field PartnerAccountId is not available on Opportunity")
    assert "enable Partner Relationship Management" in message
    assert "map a custom" in message
    assert len(api_requests(sf)) == 1


def test_a_mistyped_custom_partner_field_names_the_field(sf, sleeps):
    add_opportunities(sf, 1)

    with pytest.raises(ConfigurationError, match="The Salesforce field Partner__c is not available") as raised:
        list(connect(sf, sleeps, partner_field="Partner__c").iter_pages(since=None))

    assert "__c" in str(raised.value)


def test_a_single_currency_org_is_told_to_drop_the_currency_field(sf, sleeps):
    add_opportunities(sf, 1)
    sf.unknown_fields = {"CurrencyIsoCode"}

    with pytest.raises(ConfigurationError, match=r"CurrencyIsoCode is not available.*multiple currencies"):
        list(connect(sf, sleeps).iter_pages(since=None))

    (record,) = records(list(connect(sf, sleeps, currency_field=None).iter_pages(since=None)))
    assert record.currency is None


def test_an_unsafe_field_name_is_refused_before_any_request(sf, sleeps):
    with pytest.raises(ConfigurationError, match="not a Salesforce field API name"):
        connect(sf, sleeps, partner_field="Id FROM User --")

    assert sf.requests == []


def test_server_errors_are_retried_with_backoff_then_the_run_goes_on(sf, sleeps):
    add_opportunities(sf, 2)
    sf.fail_next(status=503, times=2)

    pages = list(connect(sf, sleeps).iter_pages(since=None))

    assert len(ids_of(pages)) == 2
    assert [request.status for request in api_requests(sf)] == [503, 503, 200]
    assert 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 1.5


def test_server_errors_that_outlast_the_attempts_raise_a_transient_error(sf, sleeps):
    add_opportunities(sf, 1)
    sf.fail_next(status=500, times=4)

    with pytest.raises(TransientError, match="UNKNOWN_EXCEPTION"):
        list(connect(sf, sleeps).iter_pages(since=None))

    assert len(api_requests(sf)) == 4
    assert len(sleeps) == 3


def test_an_expired_query_locator_restarts_the_query_from_the_last_page(sf, sleeps):
    sf.page_size = 2
    ids = add_opportunities(sf, 5)
    pages = connect(sf, sleeps).iter_pages(since=None)
    first = next(pages)

    sf.expire_query_locators()
    rest = list(pages)

    assert ids_of([first, *rest]) == ids
    assert [request.status for request in api_requests(sf)][:3] == [200, 400, 200]


def test_another_query_error_carries_salesforces_message(sf, sleeps):
    sf.fail_next(status=400, body=[{"errorCode": "MALFORMED_QUERY", "message": "unexpected token: 'FORM'"}])

    with pytest.raises(ConnectorError, match="Salesforce answered 400: MALFORMED_QUERY: unexpected token") as raised:
        list(connect(sf, sleeps).iter_pages(since=None))

    assert type(raised.value) is ConnectorError


# -- resuming ------------------------------------------------------------------------------------


@pytest.mark.parametrize("stop_after", [1, 2, 3, 4])
def test_a_run_resumed_from_a_committed_page_cursor_hands_out_the_rest_exactly_once(sf, sleeps, stop_after):
    sf.page_size = 2
    add_opportunities(sf, 4)
    # Five opportunities stamped in one second straddle page boundaries.
    add_opportunities(sf, 5, first=101, SystemModstamp="2026-08-15T12:30:00.000+0000")
    add_opportunities(sf, 2, first=201, SystemModstamp="2026-08-15T12:40:00.000+0000")
    sf.delete_opportunity("006xx0000002")
    expected = [(record.external_id, record.deleted) for record in records(list(connect(sf, []).iter_pages()))]

    interrupted = connect(sf, sleeps).iter_pages(since=None)
    committed = [next(interrupted) for _ in range(stop_after)]
    stored = committed[-1].cursor.to_json()
    resumed = list(connect(sf, sleeps).iter_pages(cursor=Cursor.from_json(stored)))

    handed_out = [(record.external_id, record.deleted) for record in records(committed + resumed)]
    assert sorted(handed_out) == sorted(expected)
    assert len(set(handed_out)) == len(handed_out) == 11
    assert resumed[-1].done


def test_a_finished_cursor_resumes_to_a_single_done_page(sf, sleeps):
    add_opportunities(sf, 2)
    final = list(connect(sf, sleeps).iter_pages(since=None))[-1].cursor
    sf.clear_requests()

    again = list(connect(sf, sleeps).iter_pages(cursor=Cursor.from_json(final.to_json())))

    assert len(again) == 1 and again[0].done and again[0].records == []
    assert sf.requests == []
