"""The local HubSpot and Salesforce fakes keep the public contracts connectors are written against."""

from __future__ import annotations

import ssl
import threading

import httpx
import pytest

from tests.fakes import FakeHubSpot, FakeSalesforce

SEARCH = "/crm/v3/objects/deals/search"
QUERY = "/services/data/v61.0/query"
QUERY_ALL = "/services/data/v61.0/queryAll"

# Building an httpx client loads the CA bundle (~50 ms); one context shared by every client keeps this file fast.
TLS = ssl.create_default_context()


def http(**options) -> httpx.Client:
    return httpx.Client(verify=TLS, timeout=5, **options)


def post(url: str, **options) -> httpx.Response:
    with http() as client:
        return client.post(url, **options)


def get(url: str, **options) -> httpx.Response:
    with http() as client:
        return client.get(url, **options)


# -- HubSpot ---------------------------------------------------------------------------------------


@pytest.fixture
def hub():
    with FakeHubSpot(token="pat-test") as fake:
        yield fake


def hub_client(fake: FakeHubSpot, token: str = "pat-test") -> httpx.Client:  # noqa: S107 - the fake's token
    return http(base_url=fake.base_url, headers={"Authorization": f"Bearer {token}"})


def add_deals(fake: FakeHubSpot, count: int) -> None:
    for number in range(1, count + 1):
        fake.add_deal(
            str(100 + number),
            dealname=f"Deal {number}",
            amount=f"{number * 100}.50",
            deal_currency_code="USD",
            dealstage="closedwon" if number % 2 else "appointmentscheduled",
            hs_lastmodifieddate=f"2026-08-{number:02d}T12:00:00.000Z",
            partner_id=f"P-{number % 3}",
        )


def search_all(client: httpx.Client, body: dict) -> list[dict]:
    results, after = [], None
    while True:
        page = client.post(SEARCH, json={**body, **({"after": after} if after else {})})
        assert page.status_code == 200, page.text
        results.extend(page.json()["results"])
        after = page.json().get("paging", {}).get("next", {}).get("after")
        if after is None:
            return results


def test_search_pages_to_the_end_in_a_stable_order_and_stops_offering_a_next_page(hub):
    add_deals(hub, 7)
    with hub_client(hub) as client:
        first = client.post(SEARCH, json={"limit": 3}).json()
        results = search_all(client, {"limit": 3})

    assert first["total"] == 7
    assert first["paging"]["next"]["after"] == "3"
    assert [result["id"] for result in results] == [str(100 + n) for n in range(1, 8)]
    assert len(hub.requests) == 4  # the first call, then 3 pages; the last one has no paging


def test_search_returns_asked_properties_plus_the_three_hubspot_always_returns_all_as_strings(hub):
    hub.add_deal(
        "101",
        dealname="Acme renewal",
        amount=12500.5,
        createdate="2026-07-01T10:00:00Z",
        closedate="2026-08-15T00:00:00.000Z",
        hs_lastmodifieddate="2026-08-15T12:00:00.000Z",
    )
    with hub_client(hub) as client:
        result = client.post(SEARCH, json={"properties": ["amount", "pipeline"]}).json()["results"][0]
        default = client.post(SEARCH, json={}).json()["results"][0]

    assert result["properties"] == {
        "amount": "12500.5",
        "pipeline": None,
        "hs_object_id": "101",
        "createdate": "2026-07-01T10:00:00Z",
        "hs_lastmodifieddate": "2026-08-15T12:00:00.000Z",
    }
    assert result["createdAt"] == "2026-07-01T10:00:00.000Z"
    assert result["updatedAt"] == "2026-08-15T12:00:00.000Z"
    assert result["archived"] is False
    assert set(default["properties"]) == {
        "dealname", "amount", "closedate", "pipeline", "dealstage", "createdate", "hs_lastmodifieddate", "hs_object_id"
    }  # fmt: skip


def test_search_filters_compare_modified_dates_given_as_epoch_milliseconds_or_iso_strings(hub):
    add_deals(hub, 6)
    aug_3_noon_ms = "1785758400000"  # 2026-08-03T12:00:00Z
    with hub_client(hub) as client:

        def ids(filters: list[dict], sorts: list | None = None) -> list[str]:
            body = {"filterGroups": [{"filters": filters}], "sorts": sorts or []}
            return [result["id"] for result in client.post(SEARCH, json=body).json()["results"]]

        gte_ms = ids([{"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": aug_3_noon_ms}])
        gt_iso = ids([{"propertyName": "hs_lastmodifieddate", "operator": "GT", "value": "2026-08-03T12:00:00Z"}])
        window = ids(
            [
                {"propertyName": "hs_lastmodifieddate", "operator": "GT", "value": "2026-08-01T12:00:00.000Z"},
                {"propertyName": "hs_lastmodifieddate", "operator": "LTE", "value": aug_3_noon_ms},
            ]
        )
        won_newest_first = ids(
            [{"propertyName": "dealstage", "operator": "EQ", "value": "closedwon"}],
            [{"propertyName": "hs_lastmodifieddate", "direction": "DESCENDING"}],
        )
        amounts_below = ids([{"propertyName": "amount", "operator": "LT", "value": "300"}])
        with_partner = ids([{"propertyName": "partner_id", "operator": "HAS_PROPERTY"}])
        hub.add_deal("200", dealname="No partner", hs_lastmodifieddate="2026-09-01T00:00:00Z")
        without_partner = ids([{"propertyName": "partner_id", "operator": "NOT_HAS_PROPERTY"}])

    assert gte_ms == ["103", "104", "105", "106"]
    assert gt_iso == ["104", "105", "106"]
    assert window == ["102", "103"]
    assert won_newest_first == ["105", "103", "101"]
    assert amounts_below == ["101", "102"]  # numbers compare as numbers, not text
    assert with_partner == ["101", "102", "103", "104", "105", "106"]
    assert without_partner == ["200"]


def test_filter_groups_are_ored_and_hubspot_limits_on_them_answer_400(hub):
    add_deals(hub, 4)
    stage = {"propertyName": "dealstage", "operator": "EQ"}
    with hub_client(hub) as client:
        either = client.post(
            SEARCH,
            json={
                "filterGroups": [
                    {
                        "filters": [
                            {**stage, "value": "closedwon"},
                            {"propertyName": "amount", "operator": "GT", "value": "150"},
                        ]
                    },
                    {"filters": [{"propertyName": "hs_object_id", "operator": "EQ", "value": "102"}]},
                ]
            },
        )
        too_many_groups = client.post(SEARCH, json={"filterGroups": [{"filters": [{**stage, "value": "x"}]}] * 6})
        too_big = client.post(SEARCH, json={"limit": 201})
        unknown_operator = client.post(SEARCH, json={"filterGroups": [{"filters": [{**stage, "operator": "NEAR"}]}]})

    assert [result["id"] for result in either.json()["results"]] == ["102", "103"]
    for refused in (too_many_groups, too_big, unknown_operator):
        assert refused.status_code == 400
        assert refused.json()["category"] == "VALIDATION_ERROR"
        assert refused.json()["status"] == "error"


def test_paging_past_the_result_cap_answers_400_though_the_previous_page_offered_it():
    with FakeHubSpot(token="pat-test", result_cap=4) as fake:
        add_deals(fake, 6)
        with hub_client(fake) as client:
            second = client.post(SEARCH, json={"limit": 2, "after": "2"})
            beyond = client.post(SEARCH, json={"limit": 2, "after": second.json()["paging"]["next"]["after"]})
            straddling = client.post(SEARCH, json={"limit": 3, "after": "2"})

    assert second.status_code == 200
    assert second.json()["total"] == 6  # total counts every match, not just what can be paged
    assert second.json()["paging"]["next"]["after"] == "4"
    assert beyond.status_code == 400
    assert beyond.json()["category"] == "VALIDATION_ERROR"
    assert straddling.status_code == 400


def test_archived_deals_leave_search_and_are_listed_only_with_archived_true(hub):
    add_deals(hub, 3)
    hub.archive_deal("102", archived_at="2026-09-01T08:00:00Z")
    with hub_client(hub) as client:
        searched = [result["id"] for result in search_all(client, {})]
        archived = client.get("/crm/v3/objects/deals", params={"archived": "true", "limit": 10}).json()
        live = client.get("/crm/v3/objects/deals").json()

    assert searched == ["101", "103"]
    assert [result["id"] for result in archived["results"]] == ["102"]
    assert archived["results"][0]["archived"] is True
    assert archived["results"][0]["archivedAt"] == "2026-09-01T08:00:00.000Z"
    assert "paging" not in archived
    assert [result["id"] for result in live["results"]] == ["101", "103"]


def test_archived_list_pages_with_after(hub):
    add_deals(hub, 5)
    for deal_id in ("101", "102", "103", "104", "105"):
        hub.archive_deal(deal_id)
    with hub_client(hub) as client:
        first = client.get("/crm/v3/objects/deals", params={"archived": "true", "limit": 2}).json()
        after = first["paging"]["next"]["after"]
        second = client.get("/crm/v3/objects/deals", params={"archived": "true", "limit": 2, "after": after}).json()

    assert [result["id"] for result in first["results"]] == ["101", "102"]
    assert [result["id"] for result in second["results"]] == ["103", "104"]


def test_updates_move_the_modified_date_forward_and_show_in_search(hub):
    hub.add_deal("101", amount="12500.50", hs_lastmodifieddate="2026-08-15T12:00:00.000Z")
    hub.update_deal("101", amount="13000")
    with hub_client(hub) as client:
        properties = client.post(SEARCH, json={"properties": ["amount"]}).json()["results"][0]["properties"]

    assert properties["amount"] == "13000"
    assert properties["hs_lastmodifieddate"] == "2026-08-15T12:00:01.000Z"


def test_v4_association_batch_read_gives_company_ids_with_labels_and_207_for_deals_without(hub):
    hub.add_deal("101", companies=[("555", "Reseller"), "556"])
    hub.add_deal("102", companies=[("557", "Primary")])
    hub.add_deal("103")
    with hub_client(hub) as client:
        response = client.post(
            "/crm/v4/associations/deals/companies/batch/read",
            json={"inputs": [{"id": "101"}, {"id": "102"}, {"id": "103"}]},
        )

    assert response.status_code == 207
    body = response.json()
    by_deal = {result["from"]["id"]: result["to"] for result in body["results"]}
    assert by_deal["101"] == [
        {
            "toObjectId": 555,
            "associationTypes": [
                {"category": "HUBSPOT_DEFINED", "typeId": 341, "label": None},
                {"category": "USER_DEFINED", "typeId": 1000, "label": "Reseller"},
            ],
        },
        {"toObjectId": 556, "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": 341, "label": None}]},
    ]
    assert {"category": "HUBSPOT_DEFINED", "typeId": 5, "label": "Primary"} in by_deal["102"][0]["associationTypes"]
    assert body["numErrors"] == 1
    assert body["errors"][0]["context"] == {"fromObjectId": ["103"]}


def test_requests_without_the_bearer_token_answer_401_with_hubspots_error_body(hub):
    with hub_client(hub, token="wrong") as client:
        wrong = client.post(SEARCH, json={})
    missing = post(hub.base_url + SEARCH, json={})

    for response in (wrong, missing):
        assert response.status_code == 401
        assert response.json()["category"] == "INVALID_AUTHENTICATION"
        assert response.json()["message"].startswith("Authentication credentials not found")
    assert [request.status for request in hub.requests] == [401, 401]
    assert hub.requests[0].headers["authorization"] == "Bearer wrong"


def test_rate_limit_answers_429_with_retry_after_only_when_configured():
    with (
        FakeHubSpot(token="pat-test", rate_limit=(2, 60), rate_limit_retry_after=2) as with_header,
        FakeHubSpot(token="pat-test", rate_limit=(1, 60)) as without_header,
    ):
        with hub_client(with_header) as client:
            statuses = [client.post(SEARCH, json={}).status_code for _ in range(3)]
            limited = client.post(SEARCH, json={})
            with_header.reset_rate_limit()
            after_reset = client.post(SEARCH, json={})
        with hub_client(without_header) as client:
            client.post(SEARCH, json={})
            bare = client.post(SEARCH, json={})

    assert statuses == [200, 200, 429]
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "2"
    assert limited.json()["errorType"] == "RATE_LIMIT"
    assert limited.json()["category"] == "RATE_LIMITS"
    assert limited.json()["policyName"] == "TEN_SECONDLY_ROLLING"
    assert after_reset.status_code == 200
    assert bare.status_code == 429
    assert "Retry-After" not in bare.headers


def test_queued_faults_answer_the_next_requests_then_normal_service_resumes(hub):
    hub.add_deal("101")
    hub.fail_next(status=429, body={"status": "error", "errorType": "RATE_LIMIT"}, headers={"Retry-After": "2"})
    hub.fail_next(status=502, times=2)
    hub.fail_next(status=200, body='{"results": [')
    hub.fail_next(status=401)
    with hub_client(hub) as client:
        responses = [client.post(SEARCH, json={}) for _ in range(6)]

    assert [response.status_code for response in responses] == [429, 502, 502, 200, 401, 200]
    assert responses[0].headers["Retry-After"] == "2"
    with pytest.raises(ValueError):
        responses[3].json()
    assert responses[4].json()["category"] == "INVALID_AUTHENTICATION"
    assert responses[5].json()["total"] == 1
    assert hub.pending_faults() == 0


def test_a_fault_can_drop_the_connection(hub):
    hub.fail_next(disconnect=True)
    with hub_client(hub) as client:
        with pytest.raises(httpx.TransportError):
            client.post(SEARCH, json={})
        assert client.post(SEARCH, json={}).status_code == 200


def test_request_log_keeps_method_path_query_headers_and_json_body(hub):
    with hub_client(hub) as client:
        client.post(SEARCH, json={"limit": 5, "after": "0"})
        client.get("/crm/v3/objects/deals", params={"archived": "true", "limit": "3"})

    search, listing = hub.requests
    assert (search.method, search.path, search.json) == ("POST", SEARCH, {"limit": 5, "after": "0"})
    assert (listing.method, listing.query) == ("GET", {"archived": "true", "limit": "3"})
    assert listing.headers["authorization"] == "Bearer pat-test"


def test_deals_added_and_updated_while_serving_are_consistent_pages_never_errors(hub):
    stop = threading.Event()

    def writer() -> None:
        number = 0
        while not stop.is_set() and number < 400:
            number += 1
            hub.add_deal(str(1000 + number), amount=str(number))
            hub.update_deal(str(1000 + number), amount=str(number + 1))

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        with hub_client(hub) as client:
            for _ in range(20):
                response = client.post(SEARCH, json={"limit": 200, "properties": ["amount"]})
                assert response.status_code == 200
                for result in response.json()["results"]:
                    assert result["properties"]["hs_object_id"] == result["id"]
    finally:
        stop.set()
        thread.join()


def test_free_text_query_matches_deal_names_and_an_over_long_body_answers_400(hub):
    hub.add_deal("101", dealname="Acme renewal")
    hub.add_deal("102", dealname="Globex expansion")
    with hub_client(hub) as client:
        found = client.post(SEARCH, json={"query": "acme"}).json()
        too_long = client.post(SEARCH, json={"properties": ["x" * 100] * 31})

    assert [result["id"] for result in found["results"]] == ["101"]
    assert too_long.status_code == 400


def test_reading_one_deal_by_id_and_a_missing_one_answers_404(hub):
    hub.add_deal("101", dealname="Acme renewal", companies=["555"])
    with hub_client(hub) as client:
        found = client.get("/crm/v3/objects/deals/101", params={"properties": "dealname", "associations": "companies"})
        missing = client.get("/crm/v3/objects/deals/999")

    assert set(found.json()["properties"]) == {"dealname", "hs_object_id", "createdate", "hs_lastmodifieddate"}
    assert found.json()["associations"] == {"companies": {"results": [{"id": "555", "type": "deal_to_company"}]}}
    assert missing.status_code == 404
    assert missing.json()["category"] == "OBJECT_NOT_FOUND"


# -- Salesforce ------------------------------------------------------------------------------------


@pytest.fixture
def sf():
    with FakeSalesforce(client_id="cid", client_secret="secret", api_version="v61.0") as fake:
        yield fake


def sf_login(fake: FakeSalesforce) -> httpx.Client:
    token = post(
        fake.base_url + "/services/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": "cid", "client_secret": "secret"},
    )
    assert token.status_code == 200, token.text
    body = token.json()
    return http(base_url=body["instance_url"], headers={"Authorization": f"Bearer {body['access_token']}"})


def add_opportunities(fake: FakeSalesforce, count: int) -> None:
    for number in range(1, count + 1):
        fake.add_opportunity(
            f"006xx{number:07d}",
            Name=f"Deal {number}",
            Amount=1000 * number + 0.5,
            CurrencyIsoCode="USD",
            StageName="Closed Won" if number % 2 else "Prospecting",
            IsClosed=bool(number % 2),
            IsWon=bool(number % 2),
            CloseDate=f"2026-08-{number:02d}",
            CreatedDate="2026-07-01T10:00:00.000+0000",
            SystemModstamp=f"2026-08-{number:02d}T12:00:00.000+0000",
            PartnerAccountId="001xx0000009",
        )


def query_all_pages(client: httpx.Client, soql: str, resource: str = QUERY) -> tuple[list[dict], list[dict]]:
    pages = [client.get(resource, params={"q": soql})]
    while not pages[-1].json()["done"]:
        pages.append(client.get(pages[-1].json()["nextRecordsUrl"]))
    assert all(page.status_code == 200 for page in pages)
    return [record for page in pages for record in page.json()["records"]], [page.json() for page in pages]


def test_token_response_sends_clients_to_an_instance_url_that_is_not_the_login_host(sf):
    response = post(
        sf.base_url + "/services/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": "cid", "client_secret": "secret"},
    )
    body = response.json()
    on_login_host = get(
        sf.base_url + QUERY, params={"q": "SELECT Id FROM Opportunity"}, headers={"Authorization": "Bearer x"}
    )

    assert response.status_code == 200
    assert body["token_type"] == "Bearer"
    assert body["instance_url"] == sf.instance_url != sf.base_url
    assert {"access_token", "issued_at", "signature", "id", "scope"} <= set(body)
    assert sf.requests[0].form["grant_type"] == "client_credentials"
    assert on_login_host.status_code == 404


def test_wrong_client_secret_or_grant_type_answers_400_with_an_oauth_error(sf):
    url = sf.base_url + "/services/oauth2/token"
    wrong_secret = post(url, data={"grant_type": "client_credentials", "client_id": "cid", "client_secret": "no"})
    wrong_grant = post(url, data={"grant_type": "password", "client_id": "cid", "client_secret": "secret"})

    assert wrong_secret.status_code == 400
    assert wrong_secret.json() == {"error": "invalid_client", "error_description": "invalid client credentials"}
    assert wrong_grant.json()["error"] == "unsupported_grant_type"


def test_query_returns_selected_fields_in_salesforce_formats(sf):
    sf.add_opportunity(
        "006xx0000001",
        Name="Acme deal",
        Amount=12500.5,
        CurrencyIsoCode="USD",
        StageName="Closed Won",
        IsClosed=True,
        IsWon=True,
        CloseDate="2026-08-15",
        CreatedDate="2026-07-01T10:00:00.000+0000",
        SystemModstamp="2026-08-15T12:00:00Z",
        PartnerAccountId="001xx0000009",
        IsDeleted=False,
    )
    with sf_login(sf) as client:
        body = client.get(
            QUERY,
            params={"q": "select id, name, amount, closedate, systemmodstamp, iswon, description from opportunity"},
        ).json()

    assert body["totalSize"] == 1
    assert body["done"] is True
    assert "nextRecordsUrl" not in body
    assert body["records"] == [
        {
            "attributes": {"type": "Opportunity", "url": "/services/data/v61.0/sobjects/Opportunity/006xx0000001"},
            "Id": "006xx0000001",
            "Name": "Acme deal",
            "Amount": 12500.5,
            "CloseDate": "2026-08-15",
            "SystemModstamp": "2026-08-15T12:00:00.000+0000",
            "IsWon": True,
            "Description": None,
        }
    ]


def test_where_order_by_and_limit_select_and_sort_rows(sf):
    add_opportunities(sf, 6)
    with sf_login(sf) as client:

        def names(soql: str) -> list[str]:
            response = client.get(QUERY, params={"q": soql})
            assert response.status_code == 200, response.text
            return [record["Name"] for record in response.json()["records"]]

        since = names(
            "SELECT Name FROM Opportunity WHERE SystemModstamp >= 2026-08-03T12:00:00Z "
            "AND SystemModstamp < 2026-08-06T00:00:00+00:00 ORDER BY SystemModstamp DESC"
        )
        won = names(
            "SELECT Name FROM Opportunity WHERE IsWon = true AND StageName = 'closed won' ORDER BY Amount DESC LIMIT 2"
        )
        either = names(
            "SELECT Name FROM Opportunity WHERE (Amount <= 2000.5 OR CloseDate = 2026-08-06) AND Name != 'Deal 1'"
        )
        listed = names("SELECT Name FROM Opportunity WHERE Name IN ('Deal 2', 'Deal 4') AND PartnerAccountId != null")
        like = names("SELECT Name FROM Opportunity WHERE Name LIKE 'deal 1%'")

    assert since == ["Deal 5", "Deal 4", "Deal 3"]
    assert won == ["Deal 5", "Deal 3"]
    assert either == ["Deal 2", "Deal 6"]
    assert listed == ["Deal 2", "Deal 4"]
    assert like == ["Deal 1"]


def test_next_records_url_pages_through_every_row_with_the_same_total(sf):
    add_opportunities(sf, 5)
    sf.page_size = 2
    with sf_login(sf) as client:
        records, pages = query_all_pages(client, "SELECT Id FROM Opportunity ORDER BY CloseDate")

    assert [record["Id"] for record in records] == [f"006xx{n:07d}" for n in range(1, 6)]
    assert [page["totalSize"] for page in pages] == [5, 5, 5]
    assert [page["done"] for page in pages] == [False, False, True]
    assert pages[0]["nextRecordsUrl"].startswith("/services/data/v61.0/query/")
    assert pages[0]["nextRecordsUrl"].endswith("-2")


def test_deleted_rows_appear_only_through_query_all_with_is_deleted_true(sf):
    add_opportunities(sf, 3)
    sf.delete_opportunity("006xx0000002")
    sf.page_size = 1
    with sf_login(sf) as client:
        live, _ = query_all_pages(client, "SELECT Id, IsDeleted FROM Opportunity")
        everything, pages = query_all_pages(client, "SELECT Id, IsDeleted, SystemModstamp FROM Opportunity", QUERY_ALL)
        deleted = client.get(QUERY_ALL, params={"q": "SELECT Id FROM Opportunity WHERE IsDeleted = true"}).json()

    assert [record["Id"] for record in live] == ["006xx0000001", "006xx0000003"]
    assert [record["IsDeleted"] for record in everything] == [False, True, False]
    assert everything[1]["SystemModstamp"] > "2026-08-03"  # deletion moves the stamp forward
    assert "/query/" in pages[0]["nextRecordsUrl"]  # Salesforce says query, even for queryAll
    assert [record["Id"] for record in deleted["records"]] == ["006xx0000002"]


def test_expired_token_answers_401_invalid_session_until_a_new_token_is_fetched(sf):
    add_opportunities(sf, 1)
    with sf_login(sf) as client:
        assert client.get(QUERY, params={"q": "SELECT Id FROM Opportunity"}).status_code == 200
        sf.expire_tokens()
        expired = client.get(QUERY, params={"q": "SELECT Id FROM Opportunity"})
    with sf_login(sf) as client:
        renewed = client.get(QUERY, params={"q": "SELECT Id FROM Opportunity"})

    assert expired.status_code == 401
    assert expired.json() == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    assert renewed.status_code == 200


def test_unknown_fields_answer_invalid_field_in_select_and_where(sf):
    add_opportunities(sf, 1)
    sf.unknown_fields = {"PartnerAccountId"}
    with sf_login(sf) as client:
        selected = client.get(QUERY, params={"q": "SELECT Id, PartnerAccountId FROM Opportunity"})
        filtered = client.get(QUERY, params={"q": "SELECT Id FROM Opportunity WHERE partneraccountid != null"})
        typo = client.get(QUERY, params={"q": "SELECT Id, Amountt FROM Opportunity"})

    for response in (selected, filtered, typo):
        assert response.status_code == 400
        assert response.json()[0]["errorCode"] == "INVALID_FIELD"
    assert "No such column 'PartnerAccountId' on entity 'Opportunity'" in selected.json()[0]["message"]
    assert "ERROR at Row:1:Column:12" in selected.json()[0]["message"]


def test_malformed_or_mistyped_soql_answers_400_with_salesforces_error_codes(sf):
    with sf_login(sf) as client:

        def error_code(soql: str) -> str:
            response = client.get(QUERY, params={"q": soql})
            assert response.status_code == 400
            return response.json()[0]["errorCode"]

        assert error_code("SELECT Id FROM") == "MALFORMED_QUERY"
        assert error_code("SELECT Id Opportunity") == "MALFORMED_QUERY"
        assert error_code("SELECT Id FROM Opportunity WHERE Amount >") == "MALFORMED_QUERY"
        assert error_code("SELECT Id FROM Account") == "INVALID_TYPE"
        quoted = "SELECT Id FROM Opportunity WHERE SystemModstamp > '2026-08-01T00:00:00Z'"
        assert error_code(quoted) == "INVALID_QUERY_FILTER_OPERATOR"
        assert (
            error_code("SELECT Id FROM Opportunity WHERE SystemModstamp > 2026-08-01")
            == "INVALID_QUERY_FILTER_OPERATOR"
        )
        assert error_code("SELECT Id FROM Opportunity WHERE Name = 5") == "INVALID_QUERY_FILTER_OPERATOR"


def test_salesforce_faults_hit_api_calls_by_default_and_token_calls_when_asked(sf):
    add_opportunities(sf, 1)
    limit_body = [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    sf.fail_next(status=403, body=limit_body)
    with sf_login(sf) as client:  # the token call is not an API call: the fault waits
        limited = client.get(QUERY, params={"q": "SELECT Id FROM Opportunity"})
        fine = client.get(QUERY, params={"q": "SELECT Id FROM Opportunity"})
    sf.fail_next(status=503, body="<html>down</html>", endpoint="token")
    token = post(sf.base_url + "/services/oauth2/token", data={"grant_type": "client_credentials"})

    assert limited.status_code == 403
    assert limited.json() == limit_body
    assert fine.status_code == 200
    assert token.status_code == 503
    assert token.text == "<html>down</html>"


def test_expired_query_locator_answers_invalid_query_locator(sf):
    add_opportunities(sf, 3)
    sf.page_size = 1
    with sf_login(sf) as client:
        first = client.get(QUERY, params={"q": "SELECT Id FROM Opportunity"}).json()
        sf.expire_query_locators()
        gone = client.get(first["nextRecordsUrl"])

    assert gone.status_code == 400
    assert gone.json()[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_order_by_several_fields_puts_nulls_where_asked(sf):
    sf.add_opportunity("006A", Name="a", StageName="Won", Amount=5)
    sf.add_opportunity("006B", Name="b", StageName="Won", Amount=None)
    sf.add_opportunity("006C", Name="c", StageName="Lost", Amount=7)
    sf.add_opportunity("006D", Name="d", StageName="Won", Amount=9)
    with sf_login(sf) as client:

        def ids(order: str) -> list[str]:
            soql = f"SELECT Id FROM Opportunity ORDER BY {order}"  # noqa: S608 - SOQL for a local fake
            records = client.get(QUERY, params={"q": soql}).json()["records"]
            return [record["Id"] for record in records]

        assert ids("StageName DESC, Amount") == ["006B", "006A", "006D", "006C"]
        assert ids("Amount DESC NULLS FIRST") == ["006B", "006D", "006C", "006A"]
        assert ids("Amount") == ["006B", "006A", "006C", "006D"]


def test_batch_size_option_shrinks_pages_down_to_salesforces_minimum_of_200(sf):
    for number in range(250):
        sf.add_opportunity(f"006xx{number:07d}", Name=f"Deal {number}")
    with sf_login(sf) as client:
        first = client.get(
            QUERY, params={"q": "SELECT Id FROM Opportunity"}, headers={"Sforce-Query-Options": "batchSize=50"}
        ).json()
        rest = client.get(first["nextRecordsUrl"]).json()

    assert (len(first["records"]), first["done"]) == (200, False)
    assert (len(rest["records"]), rest["done"]) == (50, True)


def test_request_limit_answers_403_request_limit_exceeded_and_usage_is_reported(sf):
    sf.request_limit = 2
    with sf_login(sf) as client:
        answers = [client.get(QUERY, params={"q": "SELECT Id FROM Opportunity"}) for _ in range(3)]

    assert [answer.status_code for answer in answers] == [200, 200, 403]
    assert answers[1].headers["Sforce-Limit-Info"] == "api-usage=2/2"
    assert answers[2].json() == [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    assert sf.api_calls == 2


def test_opportunities_added_and_updated_while_serving_never_break_a_query(sf):
    add_opportunities(sf, 2)
    done = threading.Event()

    def writer() -> None:
        for number in range(100, 400):
            sf.add_opportunity(f"006yy{number:07d}", Name=f"Late {number}", Amount=number)
            sf.update_opportunity(f"006yy{number:07d}", Amount=number + 1)
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        with sf_login(sf) as client:
            while not done.is_set():
                response = client.get(QUERY, params={"q": "SELECT Id, Amount FROM Opportunity ORDER BY Amount"})
                assert response.status_code == 200
                assert response.json()["totalSize"] == len(response.json()["records"])
    finally:
        thread.join()
