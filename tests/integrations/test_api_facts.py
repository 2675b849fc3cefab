"""Reading deals, data sources and sync runs through the API, and asking for a sync."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from partnerhub.integrations.source_models import DataSource, Deal, SourceKind, SyncRun, SyncStatus
from partnerhub.tenancy.context import tenant_scope
from tests.factories import PartnerFactory

DEALS = "/api/v1/deals/"
SOURCES = "/api/v1/data-sources/"
RUNS = "/api/v1/sync-runs/"
INTERNAL = ("admin", "partner_manager", "executive")
PARTNER = ("partner_admin", "partner_member")


def key_client(plaintext: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Api-Key {plaintext}")


def session(world_tenant, role: str) -> Client:
    client = Client()
    client.force_login(world_tenant.users[role])
    return client


def rows(response) -> list[dict]:
    assert response.status_code == 200, response.content
    return response.json()["results"]


def add_deal(source: DataSource, external_id: str, partner=None, **fields) -> Deal:
    values = {
        "partner": partner,
        "partner_ref": "" if partner is not None else f"REF-{external_id}",
        "name": f"Deal {external_id}",
        "amount": Decimal("100.00"),
        "currency": "USD",
        "created_on": date(2026, 7, 1),
        "modified_at": timezone.now(),
        **fields,
    }
    return Deal.objects.create(source=source, external_id=external_id, **values)


@pytest.fixture
def facts(world):
    """In tenant a: a HubSpot source with credentials and a run, an API source, and deals of both partners."""
    first, second = world.a.partners
    with tenant_scope(world.a.tenant):
        crm = DataSource(name="HubSpot", kind=SourceKind.HUBSPOT, attribution_field="partner_company")
        crm.set_credentials({"access_token": "pat-secret-token"})
        crm.save()
        push = DataSource.objects.create(name="API push", kind=SourceKind.API)
        run = SyncRun.objects.create(source=crm, status=SyncStatus.SUCCEEDED, fetched=3, created=3)
        deals = {
            "won": add_deal(crm, "H-1", first, closed=True, won=True, close_date=date(2026, 8, 1)),
            "lost": add_deal(crm, "H-2", first, closed=True, close_date=date(2026, 8, 2)),
            "open": add_deal(push, "P-1", second),
            "unmatched": add_deal(push, "P-2"),
            "deleted": add_deal(push, "P-3", first, deleted_at=timezone.now()),
        }
    return {"crm": crm, "push": push, "run": run, "deals": deals}


# --- Deals ------------------------------------------------------------------------------------------------


def test_deals_list_newest_change_first_with_their_source_and_partner(world, facts):
    listed = rows(key_client(world.a.read_key[1]).get(DEALS))
    assert {row["external_id"] for row in listed} == {"H-1", "H-2", "P-1", "P-2", "P-3"}
    won = next(row for row in listed if row["external_id"] == "H-1")
    assert won | {"modified_at": None, "first_seen_at": None, "updated_at": None} == {
        "id": facts["deals"]["won"].pk,
        "external_id": "H-1",
        "source": facts["crm"].pk,
        "source_name": "HubSpot",
        "partner": world.a.partners[0].pk,
        "partner_name": "Acme Partner 1",
        "partner_ref": "",
        "unmatched": False,
        "name": "Deal H-1",
        "amount": "100.00",
        "currency": "USD",
        "stage": "",
        "closed": True,
        "won": True,
        "created_on": "2026-07-01",
        "close_date": "2026-08-01",
        "deleted": False,
        "deleted_at": None,
        "modified_at": None,
        "first_seen_at": None,
        "updated_at": None,
        "sync_run": None,
        "upload": None,
    }
    unmatched = next(row for row in listed if row["external_id"] == "P-2")
    assert (unmatched["partner"], unmatched["partner_name"], unmatched["unmatched"]) == (None, None, True)


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"closed": "true"}, {"H-1", "H-2"}),
        ({"won": "true"}, {"H-1"}),
        ({"closed": "false"}, {"P-1", "P-2", "P-3"}),
        ({"unmatched": "true"}, {"P-2"}),
        ({"unmatched": "false"}, {"H-1", "H-2", "P-1", "P-3"}),
        ({"deleted": "true"}, {"P-3"}),
        ({"deleted": "false", "closed": "false"}, {"P-1", "P-2"}),
        ({"external_id": "P-1"}, {"P-1"}),
        ({"partner": 10**30}, set()),
        ({"partner": "1.5"}, set()),
    ],
)
def test_deals_filter(world, facts, params, expected):
    listed = rows(key_client(world.a.read_key[1]).get(DEALS, params))
    assert {row["external_id"] for row in listed} == expected


def test_deals_filter_by_partner_source_and_change_time(world, facts):
    client = key_client(world.a.read_key[1])
    by_partner = rows(client.get(DEALS, {"partner": world.a.partners[0].pk}))
    assert {row["external_id"] for row in by_partner} == {"H-1", "H-2", "P-3"}
    by_source = rows(client.get(DEALS, {"source": facts["push"].pk}))
    assert {row["external_id"] for row in by_source} == {"P-1", "P-2", "P-3"}
    later = timezone.now() + timedelta(hours=1)
    with tenant_scope(world.a.tenant):
        Deal.objects.filter(external_id="P-1").update(updated_at=later)
    since = (later - timedelta(minutes=1)).isoformat()
    assert [row["external_id"] for row in rows(client.get(DEALS, {"modified_since": since}))] == ["P-1"]


@pytest.mark.parametrize("params", [{"closed": "maybe"}, {"modified_since": "yesterday"}, {"partner": "one"}])
def test_a_filter_value_that_cannot_be_read_answers_400(world, facts, params):
    response = key_client(world.a.read_key[1]).get(DEALS, params)
    assert response.status_code == 400 and set(params) <= set(response.json())


@pytest.mark.parametrize("role", PARTNER)
def test_partner_users_read_only_their_own_partners_deals_without_our_bookkeeping(world, facts, role):
    client = session(world.a, role)
    listed = rows(client.get(DEALS, {"page_size": 200}))
    assert {row["id"] for row in listed} == {facts["deals"][name].pk for name in ("won", "lost", "deleted")}
    assert all(row["partner"] == world.a.partners[0].pk for row in listed)
    for hidden in ("source", "source_name", "partner_ref", "external_id", "sync_run", "upload", "unmatched"):
        assert all(hidden not in row for row in listed), hidden
    for name in ("open", "unmatched"):
        assert client.get(f"{DEALS}{facts['deals'][name].pk}/").status_code == 404
    assert client.get(f"{DEALS}{facts['deals']['won'].pk}/").status_code == 200
    assert rows(client.get(DEALS, {"partner": world.a.partners[1].pk})) == []
    assert rows(client.get(DEALS, {"unmatched": "true"})) == []


@pytest.mark.parametrize("role", INTERNAL)
def test_internal_people_read_every_deal(world, facts, role):
    assert len(rows(session(world.a, role).get(DEALS))) == 5


def test_another_tenants_deals_answer_404_and_are_never_listed(world, facts):
    theirs = world.b.extra["deal"]
    for client in (key_client(world.a.read_key[1]), session(world.a, "admin"), session(world.a, "partner_admin")):
        assert client.get(f"{DEALS}{theirs.pk}/").status_code == 404
        assert theirs.pk not in {row["id"] for row in rows(client.get(DEALS, {"page_size": 200}))}
    assert rows(key_client(world.a.read_key[1]).get(DEALS, {"source": world.b.extra["api_source"].pk})) == []


def test_deals_cannot_be_changed_one_by_one(world, facts):
    client = key_client(world.a.write_key[1])
    url = f"{DEALS}{facts['deals']['won'].pk}/"
    assert client.patch(url, {"amount": "1"}, content_type="application/json").status_code == 405
    assert client.delete(url).status_code == 405
    assert client.post(DEALS, {}, content_type="application/json").status_code == 405


# --- Data sources and sync runs --------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["read_key", "write_key", *INTERNAL])
def test_internal_principals_read_sources_but_never_their_credentials(world, facts, who):
    client = key_client(getattr(world.a, who)[1]) if who.endswith("_key") else session(world.a, who)
    response = client.get(SOURCES)
    listed = rows(response)
    assert [row["name"] for row in listed] == ["API push", "HubSpot"]
    hubspot = listed[1]
    assert hubspot["credentials_set"] == ["access_token"]
    assert "credentials" not in hubspot
    assert "pat-secret-token" not in response.content.decode()
    with tenant_scope(world.a.tenant):
        stored = DataSource.objects.get(name="HubSpot").credentials
    assert stored not in response.content.decode()
    assert (hubspot["kind"], hubspot["kind_name"], hubspot["stale"]) == ("hubspot", "HubSpot", True)
    assert rows(client.get(SOURCES, {"kind": "api"}))[0]["name"] == "API push"


@pytest.mark.parametrize("role", PARTNER)
def test_partner_users_find_no_sources_and_no_runs(world, facts, role):
    client = session(world.a, role)
    assert rows(client.get(SOURCES)) == []
    assert rows(client.get(RUNS)) == []
    assert client.get(f"{SOURCES}{facts['crm'].pk}/").status_code == 404
    assert client.get(f"{RUNS}{facts['run'].pk}/").status_code == 404


def test_sync_runs_list_newest_first_and_filter_by_source_and_status(world, facts):
    with tenant_scope(world.a.tenant):
        failed = SyncRun.objects.create(source=facts["crm"], status=SyncStatus.FAILED, error="Token refused.")
    client = key_client(world.a.read_key[1])
    listed = rows(client.get(RUNS))
    assert [row["id"] for row in listed] == [failed.pk, facts["run"].pk]
    assert listed[1]["source_name"] == "HubSpot" and listed[1]["fetched"] == 3
    assert [row["id"] for row in rows(client.get(RUNS, {"status": "failed"}))] == [failed.pk]
    assert len(rows(client.get(RUNS, {"source": facts["crm"].pk}))) == 2
    assert rows(client.get(RUNS, {"source": facts["push"].pk})) == []
    assert "cursor" not in listed[0]


def test_another_tenants_sources_and_runs_answer_404(world, facts):
    client = key_client(world.a.write_key[1])
    for url in (
        f"{SOURCES}{world.b.extra['crm_source'].pk}/",
        f"{SOURCES}{world.b.extra['api_source'].pk}/",
        f"{RUNS}{world.b.extra['sync_run'].pk}/",
    ):
        assert client.get(url).status_code == 404, url
    assert client.post(f"{SOURCES}{world.b.extra['crm_source'].pk}/sync/").status_code == 404
    with tenant_scope(world.b.tenant):
        assert SyncRun.objects.count() == 1


# --- Asking for a sync ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["write_key", "admin"])
def test_a_write_key_or_an_administrator_queues_a_sync_and_gets_the_run(world, facts, who):
    client = key_client(world.a.write_key[1]) if who == "write_key" else session(world.a, "admin")
    response = client.post(f"{SOURCES}{facts['crm'].pk}/sync/")
    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["source"], body["status"], body["trigger"]) == (facts["crm"].pk, "queued", "manual")
    assert body["requested_by"] == (None if who == "write_key" else "admin@acme.test")
    again = client.post(f"{SOURCES}{facts['crm'].pk}/sync/")
    assert again.status_code == 202 and again.json()["id"] == body["id"]
    with tenant_scope(world.a.tenant):
        assert SyncRun.objects.filter(status=SyncStatus.QUEUED).count() == 1


@pytest.mark.parametrize("who", ["read_key", "partner_manager", "executive", *PARTNER])
def test_others_cannot_ask_for_a_sync(world, facts, who):
    client = key_client(world.a.read_key[1]) if who == "read_key" else session(world.a, who)
    assert client.post(f"{SOURCES}{facts['crm'].pk}/sync/").status_code == 403
    with tenant_scope(world.a.tenant):
        assert not SyncRun.objects.filter(status=SyncStatus.QUEUED).exists()


def test_sources_that_are_not_pulled_or_are_switched_off_are_not_synced(world, facts):
    client = key_client(world.a.write_key[1])
    response = client.post(f"{SOURCES}{facts['push'].pk}/sync/")
    assert response.status_code == 400
    assert response.json() == {"non_field_errors": ["API push sources are not synced; they receive their facts."]}
    with tenant_scope(world.a.tenant):
        DataSource.objects.filter(pk=facts["crm"].pk).update(is_active=False)
    response = client.post(f"{SOURCES}{facts['crm'].pk}/sync/")
    assert response.status_code == 400
    assert response.json() == {"non_field_errors": ["HubSpot is inactive; activate it to sync it."]}
    with tenant_scope(world.a.tenant):
        assert not SyncRun.objects.filter(status=SyncStatus.QUEUED).exists()


# --- Lists stay flat ------------------------------------------------------------------------------------------------


def queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url, {"page_size": 200}).status_code == 200
    return len(ctx.captured_queries)


def grow(world_tenant, facts, count: int, start: int) -> None:
    with tenant_scope(world_tenant.tenant):
        for n in range(start, start + count):
            partner = PartnerFactory(name=f"Grown {n:03d}")
            add_deal(facts["crm"], f"G-{n}", partner)
            add_deal(facts["push"], f"U-{n}")
            source = DataSource.objects.create(name=f"Feed {n:03d}", kind=SourceKind.API)
            SyncRun.objects.create(source=facts["crm"], status=SyncStatus.FAILED)
            SyncRun.objects.create(source=source, status=SyncStatus.SUCCEEDED)


@pytest.mark.parametrize("who", ["read_key", "admin", "partner_admin"])
def test_list_queries_do_not_grow_with_rows(world, facts, who):
    client = key_client(world.a.read_key[1]) if who == "read_key" else session(world.a, who)
    client.get(DEALS)  # the first call of a key records its use; measure steady state
    grow(world.a, facts, 3, 0)
    few = {url: queries(client, url) for url in (DEALS, SOURCES, RUNS)}
    grow(world.a, facts, 30, 3)
    assert {url: queries(client, url) for url in (DEALS, SOURCES, RUNS)} == few
