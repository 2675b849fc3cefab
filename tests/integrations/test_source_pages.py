"""Data-source pages: the list, the source form, a source's sync history, mappings and the unmatched queue."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from partnerhub.integrations.services import source_create
from partnerhub.integrations.source_models import (
    DataSource,
    Deal,
    PartnerMapping,
    PartnerMatch,
    SourceKind,
    SyncErrorKind,
    SyncRun,
    SyncStatus,
)
from partnerhub.tenancy.context import tenant_scope
from partnerhub.tenancy.models import AuditEvent
from scorecards.models import MetricObservation
from tests.fakes.hubspot import FakeHubSpot
from tests.fakes.salesforce import FakeSalesforce

TOKEN = "pat-na1-page-5ecret-never-shown"
SF_SECRET = "sf-page-5ecret-never-shown"
LIST = reverse("data_source_list")
QUEUE = reverse("unmatched_queue")
INTERNAL = ("admin", "partner_manager", "executive")
PARTNER_ROLES = ("partner_admin", "partner_member")


@pytest.fixture
def hub() -> Iterator[FakeHubSpot]:
    with FakeHubSpot(token=TOKEN) as fake:
        yield fake


def signed_in(tenant_world, role: str = "admin") -> Client:
    client = Client()
    client.force_login(tenant_world.users[role])
    return client


def make_source(tenant_world, hub: FakeHubSpot | None = None, **fields) -> DataSource:
    with tenant_scope(tenant_world.tenant):
        return source_create(
            kind=SourceKind.HUBSPOT,
            name=fields.pop("name", "HubSpot"),
            by=tenant_world.users["admin"],
            base_url=hub.base_url if hub else "https://api.hubapi.com",
            attribution_field="partner_company",
            credentials={"access_token": fields.pop("token", TOKEN)},
            **fields,
        )


def add_run(tenant_world, source, **fields) -> SyncRun:
    with tenant_scope(tenant_world.tenant):
        return SyncRun.objects.create(source=source, **fields)


def add_unmatched(tenant_world, source, count: int, *, ref: str, start: int = 0, amount: str = "100") -> None:
    with tenant_scope(tenant_world.tenant):
        Deal.objects.bulk_create(
            Deal(
                tenant=tenant_world.tenant,
                source=source,
                external_id=f"{ref}-{start + n}",
                partner_ref=ref,
                amount=Decimal(amount),
                currency="USD",
                closed=True,
                won=True,
                created_on=date(2026, 7, 1) + timedelta(days=n % 20),
                close_date=date(2026, 8, 14),
                modified_at=timezone.now(),
            )
            for n in range(count)
        )


def hubspot_form(hub: FakeHubSpot, **overrides) -> dict:
    data = {
        "name": "HubSpot EMEA",
        "base_url": hub.base_url,
        "attribution": "deal_property",
        "attribution_field": "partner_company",
        "partner_match": "hubspot_company_id",
        "currency": "USD",
        "schedule_minutes": "60",
        "overlap_minutes": "10",
        "stale_after_hours": "24",
        "access_token": TOKEN,
    }
    data.update(overrides)
    return data


# --- Who may see and do what ----------------------------------------------------------------------------


@pytest.mark.parametrize("role", INTERNAL)
def test_internal_people_read_the_pages_and_only_admins_see_the_controls(world, role):
    source = make_source(world.a)
    run = add_run(world.a, source, status=SyncStatus.SUCCEEDED, started_at=timezone.now(), finished_at=timezone.now())
    client = signed_in(world.a, role)
    pages = [
        LIST,
        QUEUE,
        reverse("data_source_detail", args=[source.pk]),
        reverse("mapping_list", args=[source.pk]),
        reverse("sync_run_progress", args=[run.pk]),
    ]
    for url in pages:
        assert client.get(url).status_code == 200, url
    body = client.get(LIST).content.decode()
    assert ("Sync now" in body) is (role == "admin")
    assert ("Connect a source" in body) is (role == "admin")
    managing = [
        reverse("data_source_new"),
        reverse("data_source_create", args=["hubspot"]),
        reverse("data_source_edit", args=[source.pk]),
    ]
    for url in managing:
        assert client.get(url).status_code == (200 if role == "admin" else 403), url
    if role != "admin":
        for url in (
            reverse("data_source_sync", args=[source.pk]),
            reverse("data_source_test", args=[source.pk]),
            reverse("data_source_active", args=[source.pk]),
            reverse("mapping_list", args=[source.pk]),
        ):
            assert client.post(url, {"external_ref": "X", "partner": "Acme Partner 1"}).status_code == 403, url
        with tenant_scope(world.a.tenant):
            assert not SyncRun.objects.filter(status=SyncStatus.QUEUED).exists()
            assert not PartnerMapping.objects.exists()
            assert DataSource.objects.get().is_active


@pytest.mark.parametrize("role", PARTNER_ROLES)
def test_partner_users_are_refused_every_page(world, role):
    source = make_source(world.a)
    run = add_run(world.a, source)
    client = signed_in(world.a, role)
    for url in (
        LIST,
        QUEUE,
        reverse("data_source_new"),
        reverse("data_source_create", args=["hubspot"]),
        reverse("data_source_detail", args=[source.pk]),
        reverse("data_source_edit", args=[source.pk]),
        reverse("mapping_list", args=[source.pk]),
        reverse("sync_run_progress", args=[run.pk]),
    ):
        assert client.get(url).status_code in (403, 404), url
    assert client.post(reverse("data_source_sync", args=[source.pk])).status_code in (403, 404)


def test_anonymous_visitors_are_sent_to_sign_in(world):
    response = Client().get(LIST)
    assert response.status_code == 302 and reverse("account_login") in response["Location"]


def test_another_tenants_sources_runs_and_mappings_are_not_found(world):
    foreign = make_source(world.b)
    foreign_run = add_run(world.b, foreign)
    with tenant_scope(world.b.tenant):
        foreign_mapping = PartnerMapping.objects.create(source=foreign, external_ref="X", partner=world.b.partners[0])
        before = (PartnerMapping.objects.count(), SyncRun.objects.count())
    client = signed_in(world.a)
    for url in (
        reverse("data_source_detail", args=[foreign.pk]),
        reverse("data_source_edit", args=[foreign.pk]),
        reverse("mapping_list", args=[foreign.pk]),
        reverse("mapping_remove", args=[foreign_mapping.pk]),
        reverse("sync_run_progress", args=[foreign_run.pk]),
    ):
        assert client.get(url).status_code == 404, url
    for url in (
        reverse("data_source_sync", args=[foreign.pk]),
        reverse("data_source_test", args=[foreign.pk]),
        reverse("data_source_active", args=[foreign.pk]),
        reverse("data_source_edit", args=[foreign.pk]),
        reverse("mapping_list", args=[foreign.pk]),
        reverse("mapping_remove", args=[foreign_mapping.pk]),
    ):
        assert client.post(url, {"external_ref": "X", "partner": "Acme Partner 1"}).status_code == 404, url
    for role in ("partner_manager", "executive"):
        assert signed_in(world.a, role).get(reverse("data_source_edit", args=[foreign.pk])).status_code == 404
    body = client.get(LIST).content.decode() + client.get(QUEUE).content.decode()
    assert world.b.tenant.name not in body and world.b.partners[0].name not in body
    with tenant_scope(world.b.tenant):
        assert (PartnerMapping.objects.count(), SyncRun.objects.count()) == before
        assert DataSource.objects.get(pk=foreign.pk).is_active


def test_the_list_never_shows_another_tenants_sources(world):
    make_source(world.a, name="Acme CRM")
    make_source(world.b, name="Globex CRM")
    body = signed_in(world.a).get(LIST).content.decode()
    assert "Acme CRM" in body and "Globex CRM" not in body


# --- Connecting and configuring ---------------------------------------------------------------------


def test_an_admin_connects_hubspot_and_the_token_is_never_shown_again(world, hub):
    client = signed_in(world.a)
    response = client.post(reverse("data_source_create", args=["hubspot"]), hubspot_form(hub))
    with tenant_scope(world.a.tenant):
        source = DataSource.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("data_source_detail", args=[source.pk])
    assert source.read_credentials() == {"access_token": TOKEN}

    edit = client.get(reverse("data_source_edit", args=[source.pk]))
    assert "Token set ✓ — leave blank to keep." in edit.content.decode()
    assert 'type="password"' in edit.content.decode()
    for url in (
        LIST,
        reverse("data_source_detail", args=[source.pk]),
        reverse("data_source_edit", args=[source.pk]),
        reverse("audit_list"),
        reverse("mapping_list", args=[source.pk]),
    ):
        response = client.get(url, follow=True)
        assert response.status_code == 200, url
        assert TOKEN not in response.content.decode(), url
    with tenant_scope(world.a.tenant):
        for event in AuditEvent.objects.all():
            assert TOKEN not in str(event.changes) and TOKEN not in event.target_repr


def test_saving_with_a_blank_token_keeps_the_stored_one(world, hub):
    source = make_source(world.a, hub)
    client = signed_in(world.a)
    response = client.post(
        reverse("data_source_edit", args=[source.pk]), hubspot_form(hub, access_token="", schedule_minutes="30")
    )
    assert response.status_code == 302
    with tenant_scope(world.a.tenant):
        source.refresh_from_db()
        assert source.schedule_minutes == 30 and source.name == "HubSpot EMEA"
        assert source.read_credentials() == {"access_token": TOKEN}
        assert not AuditEvent.objects.filter(verb="data_source.credentials_changed").exists()


@pytest.mark.parametrize(
    "overrides, field_message",
    [
        ({"base_url": "ftp://example.com"}, "full web address"),
        ({"base_url": "http://crm.example.com"}, "https"),
        ({"attribution": "partner_account"}, "Select a valid choice"),
        ({"attribution_field": ""}, "deal property"),
        ({"currency": "dollars"}, "three-letter"),
        ({"schedule_minutes": "1"}, "15"),
        ({"schedule_minutes": "soon"}, "whole number"),
        ({"schedule_minutes": "9" * 40}, "minutes"),
        ({"name": ""}, "required"),
        ({"access_token": ""}, "required"),
    ],
)
def test_invalid_input_is_named_on_the_form_and_never_echoes_the_token(world, hub, overrides, field_message):
    client = signed_in(world.a)
    response = client.post(reverse("data_source_create", args=["hubspot"]), hubspot_form(hub, **overrides))
    body = response.content.decode()
    assert response.status_code == 400
    assert field_message in body
    assert TOKEN not in body
    with tenant_scope(world.a.tenant):
        assert not DataSource.objects.exists()


def test_salesforce_form_rejects_an_association_label_and_a_bad_api_version(world):
    client = signed_in(world.a)
    response = client.post(
        reverse("data_source_create", args=["salesforce"]),
        {
            "name": "SF",
            "base_url": "https://login.salesforce.com",
            "api_version": "61",
            "attribution": "partner_account",
            "partner_match": "salesforce_account_id",
            "currency": "USD",
            "schedule_minutes": "60",
            "overlap_minutes": "10",
            "stale_after_hours": "24",
            "client_id": "cid",
            "client_secret": SF_SECRET,
        },
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert "v61.0" in body and SF_SECRET not in body
    # The association label is not even offered for Salesforce.
    assert "association_label" not in body


def test_unknown_kinds_and_garbage_are_answered_without_a_server_error(world):
    client = signed_in(world.a)
    assert client.get(reverse("data_source_create", args=["pipedrive"])).status_code == 404
    assert client.get(QUEUE, {"source": "not-a-number", "page": "x"}).status_code == 200
    assert client.get(QUEUE, {"source": "99999999"}).status_code == 200
    assert client.get(LIST, {"page": "-4"}).status_code == 200


def test_file_sources_have_no_connection_settings(world):
    client = signed_in(world.a)
    page = client.get(reverse("data_source_create", args=["file"])).content.decode()
    assert "Test connection" not in page and "base_url" not in page
    response = client.post(
        reverse("data_source_create", args=["file"]),
        {"name": "Partner files", "partner_match": "mapping", "currency": "eur"},
    )
    assert response.status_code == 302
    with tenant_scope(world.a.tenant):
        source = DataSource.objects.get()
    assert (source.kind, source.currency, source.base_url) == ("file", "EUR", "")
    detail = client.get(reverse("data_source_detail", args=[source.pk])).content.decode()
    assert "Nothing to sync" in detail and "Sync now" not in detail


def test_deactivating_and_activating_again(world, hub):
    source = make_source(world.a, hub)
    client = signed_in(world.a)
    client.post(reverse("data_source_active", args=[source.pk]), {"active": "0"})
    with tenant_scope(world.a.tenant):
        source.refresh_from_db()
        assert not source.is_active
    assert "Inactive" in client.get(LIST).content.decode()
    client.post(reverse("data_source_active", args=[source.pk]), {"active": "1"})
    with tenant_scope(world.a.tenant):
        source.refresh_from_db()
        assert source.is_active


# --- Test connection --------------------------------------------------------------------------------


def test_testing_the_form_before_saving_reports_success_and_saves_nothing(world, hub):
    client = signed_in(world.a)
    response = client.post(
        reverse("data_source_create", args=["hubspot"]),
        {**hubspot_form(hub), "action": "test"},
        HTTP_HX_REQUEST="true",
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "Connection works" in body and TOKEN not in body
    with tenant_scope(world.a.tenant):
        assert not DataSource.objects.exists()
        assert not AuditEvent.objects.filter(verb__startswith="data_source").exists()


def test_testing_a_bad_token_says_to_reconnect(world, hub):
    source = make_source(world.a, hub, token="pat-wrong")
    client = signed_in(world.a)
    response = client.post(reverse("data_source_test", args=[source.pk]), HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert "The connection test failed" in body and "Reconnect" in body
    # With the right token typed in the form (not saved), the same source connects.
    response = client.post(
        reverse("data_source_edit", args=[source.pk]),
        {**hubspot_form(hub, name="HubSpot"), "action": "test"},
        HTTP_HX_REQUEST="true",
    )
    assert "Connection works" in response.content.decode()
    with tenant_scope(world.a.tenant):
        source.refresh_from_db()
        assert source.read_credentials() == {"access_token": "pat-wrong"}


def test_testing_without_htmx_shows_the_outcome_as_a_message(world, hub):
    source = make_source(world.a, hub)
    response = signed_in(world.a).post(reverse("data_source_test", args=[source.pk]), follow=True)
    assert "HubSpot accepted the token" in response.content.decode()


def test_testing_a_form_with_errors_names_them(world, hub):
    response = signed_in(world.a).post(
        reverse("data_source_create", args=["hubspot"]),
        {**hubspot_form(hub, currency="??"), "action": "test"},
        HTTP_HX_REQUEST="true",
    )
    body = response.content.decode()
    assert "Fix these before testing" in body and "three-letter" in body


def test_testing_salesforce_without_the_partner_field_names_it(world):
    with FakeSalesforce(client_id="cid", client_secret=SF_SECRET) as sf:
        sf.unknown_fields = {"PartnerAccountId"}
        with tenant_scope(world.a.tenant):
            source = source_create(
                kind=SourceKind.SALESFORCE,
                name="Salesforce",
                by=world.a.users["admin"],
                base_url=sf.base_url,
                credentials={"client_id": "cid", "client_secret": SF_SECRET},
            )
        response = signed_in(world.a).post(reverse("data_source_test", args=[source.pk]), HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert "PartnerAccountId" in body and "Fix the configuration" in body
    assert SF_SECRET not in body


# --- Sync now and the run history -------------------------------------------------------------------


def add_hubspot_deal(hub: FakeHubSpot, deal_id: str, partner: str) -> None:
    hub.add_deal(
        deal_id,
        dealname=f"Deal {deal_id}",
        amount="1000",
        deal_currency_code="USD",
        dealstage="closedwon",
        hs_is_closed="true",
        hs_is_closed_won="true",
        createdate="2026-07-02T10:00:00Z",
        closedate="2026-08-14T00:00:00.000Z",
        hs_lastmodifieddate="2026-08-15T12:00:00.000Z",
        partner_company=partner,
    )


def test_sync_now_runs_against_the_crm_and_the_history_shows_it(world, hub, django_capture_on_commit_callbacks):
    first = world.a.partners[0]
    with tenant_scope(world.a.tenant):
        first.hubspot_company_id = "HS-1"
        first.save()
    add_hubspot_deal(hub, "1", "HS-1")
    add_hubspot_deal(hub, "2", "HS-404")
    source = make_source(world.a, hub)
    client = signed_in(world.a)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("data_source_sync", args=[source.pk]), follow=True)

    assert "Sync queued" in response.content.decode()
    with tenant_scope(world.a.tenant):
        run = SyncRun.objects.get()
        assert run.status == SyncStatus.SUCCEEDED, run.error
        assert (run.fetched, run.created, run.unmatched) == (2, 2, 1)
        assert run.requested_by == world.a.users["admin"]
        assert Deal.objects.filter(partner=first).count() == 1
    detail = client.get(reverse("data_source_detail", args=[source.pk])).content.decode()
    assert "Succeeded" in detail and "Healthy" in detail and "1 unmatched" in detail
    listing = client.get(LIST).content.decode()
    assert "Healthy" in listing and "2 read" in listing


def test_sync_now_while_a_run_is_open_says_so(world, hub):
    source = make_source(world.a, hub)
    add_run(world.a, source, status=SyncStatus.RUNNING, started_at=timezone.now(), pages=3, fetched=600)
    client = signed_in(world.a)
    response = client.post(reverse("data_source_sync", args=[source.pk]), follow=True)
    assert "A sync is already running" in response.content.decode()
    with tenant_scope(world.a.tenant):
        assert SyncRun.objects.count() == 1


def test_sync_now_of_an_inactive_source_is_refused_with_a_message(world, hub):
    source = make_source(world.a, hub)
    with tenant_scope(world.a.tenant):
        DataSource.objects.filter(pk=source.pk).update(is_active=False)
    response = signed_in(world.a).post(reverse("data_source_sync", args=[source.pk]), follow=True)
    assert response.status_code == 200 and "inactive" in response.content.decode()


def test_a_running_run_shows_a_progress_bar_that_polls_until_it_ends(world, hub):
    source = make_source(world.a, hub)
    run = add_run(world.a, source, status=SyncStatus.RUNNING, started_at=timezone.now(), pages=3, fetched=600)
    client = signed_in(world.a, "executive")
    progress_url = reverse("sync_run_progress", args=[run.pk])
    detail = client.get(reverse("data_source_detail", args=[source.pk])).content.decode()
    assert f'hx-get="{progress_url}"' in detail and "progress-indeterminate" in detail
    assert "Syncing: 3 pages, 600 deals read" in detail

    polled = client.get(progress_url, HTTP_HX_REQUEST="true")
    assert "hx-get" in polled.content.decode() and "HX-Refresh" not in polled
    with tenant_scope(world.a.tenant):
        SyncRun.objects.filter(pk=run.pk).update(status=SyncStatus.SUCCEEDED, finished_at=timezone.now())
    finished = client.get(progress_url, HTTP_HX_REQUEST="true")
    assert finished["HX-Refresh"] == "true" and "hx-get" not in finished.content.decode()


@pytest.mark.parametrize(
    "kind, error, words",
    [
        (SyncErrorKind.AUTHENTICATION, "HubSpot refused the token (401)", "Reconnect: the token was refused"),
        (SyncErrorKind.CONFIGURATION, "No such column 'Partner__c'", "Fix the field mapping"),
        (SyncErrorKind.RATE_LIMIT, "Rate limit reached", "Rate limited: retrying at 14:05"),
        (SyncErrorKind.TRANSIENT, "HubSpot answered 503", "resumes where this one stopped"),
    ],
)
def test_a_failed_run_says_what_went_wrong_and_what_to_do(world, hub, kind, error, words):
    source = make_source(world.a, hub)
    start = timezone.now().replace(hour=13, minute=58, second=0, microsecond=0)
    add_run(
        world.a,
        source,
        status=SyncStatus.RESCHEDULED if kind == SyncErrorKind.RATE_LIMIT else SyncStatus.FAILED,
        started_at=start,
        finished_at=start + timedelta(minutes=2, seconds=5),
        error_kind=kind,
        error=error,
        retry_at=start.replace(minute=5, hour=14) if kind == SyncErrorKind.RATE_LIMIT else None,
    )
    body = signed_in(world.a, "partner_manager").get(reverse("data_source_detail", args=[source.pk])).content.decode()
    assert words in body and error.replace("'", "&#x27;") in body
    assert "took 2 min 5 s" in body
    listing = signed_in(world.a).get(LIST).content.decode()
    assert ("Failing" in listing) is (kind != SyncErrorKind.RATE_LIMIT)


def test_a_source_never_synced_and_a_stale_one_are_labelled(world, hub):
    fresh = make_source(world.a, hub, name="Never")
    stale = make_source(world.a, hub, name="Stale")
    with tenant_scope(world.a.tenant):
        DataSource.objects.filter(pk=stale.pk).update(last_success_at=timezone.now() - timedelta(days=3))
    body = signed_in(world.a).get(LIST).content.decode()
    assert "Never synced" in body and "Stale" in body
    assert fresh.name in body


def test_an_empty_workspace_explains_how_to_connect_a_crm(world):
    admin_body = signed_in(world.a).get(LIST).content.decode()
    assert "No data sources yet" in admin_body and "connect your CRM" in admin_body
    assert "private app" in admin_body
    reader_body = signed_in(world.a, "executive").get(LIST).content.decode()
    assert "An administrator of this workspace connects data sources" in reader_body


# --- The unmatched queue and mappings -------------------------------------------------------------


def test_the_queue_groups_unmatched_deals_and_mapping_a_group_resolves_it(world, hub):
    source = make_source(world.a, hub, partner_match=PartnerMatch.MAPPING_ONLY)
    add_unmatched(world.a, source, 3, ref="HS-404", amount="250")
    add_unmatched(world.a, source, 1, ref="HS-777", amount="10")
    client = signed_in(world.a)
    queue = client.get(QUEUE)
    groups = queue.context["groups"]
    assert [(g["partner_ref"], g["count"], g["total"]) for g in groups] == [
        ("HS-404", 3, Decimal("750.00")),
        ("HS-777", 1, Decimal("10.00")),
    ]
    assert groups[0]["oldest"] == date(2026, 7, 1) and groups[0]["newest"] == date(2026, 7, 3)
    assert "Acme Partner 1" in queue.content.decode()  # offered as a partner name

    response = client.post(
        reverse("mapping_list", args=[source.pk]),
        {"external_ref": "HS-404", "partner": "acme partner 1", "from": "queue", "next": QUEUE},
        follow=True,
    )
    body = response.content.decode()
    assert response.redirect_chain[-1][0] == QUEUE
    assert "Mapped “HS-404” to Acme Partner 1: 3 deals matched" in body
    assert [g["partner_ref"] for g in response.context["groups"]] == ["HS-777"]
    with tenant_scope(world.a.tenant):
        partner = world.a.partners[0]
        assert Deal.objects.filter(partner=partner, partner_ref="HS-404").count() == 3
        value = MetricObservation.objects.current().get(partner=partner, metric__key="revenue_won", period="FY2026-Q3")
        assert value.value == Decimal("750.00")


def test_a_queue_mapping_to_another_tenants_partner_is_refused_on_its_row(world, hub):
    source = make_source(world.a, hub)
    add_unmatched(world.a, source, 2, ref="HS-404")
    client = signed_in(world.a)
    for partner in (world.b.partners[0].name, str(world.b.partners[0].pk)):
        response = client.post(
            reverse("mapping_list", args=[source.pk]),
            {"external_ref": "HS-404", "partner": partner, "from": "queue", "next": QUEUE},
        )
        assert response.status_code == 400
        body = response.content.decode()
        assert "No partner of this workspace is called" in body
        assert world.b.partners[1].name not in body
    with tenant_scope(world.a.tenant):
        assert not PartnerMapping.objects.exists()
        assert Deal.objects.filter(partner__isnull=True).count() == 2


def test_mappings_can_be_made_ahead_listed_and_removed(world, hub):
    source = make_source(world.a, hub, partner_match=PartnerMatch.MAPPING_ONLY)
    client = signed_in(world.a)
    response = client.post(
        reverse("mapping_list", args=[source.pk]), {"external_ref": "HS-500", "partner": "Acme Partner 2"}, follow=True
    )
    assert "No unmatched deals named it yet" in response.content.decode()
    with tenant_scope(world.a.tenant):
        mapping = PartnerMapping.objects.get()
    assert "HS-500" in client.get(reverse("mapping_list", args=[source.pk])).content.decode()
    confirm = client.get(reverse("mapping_remove", args=[mapping.pk])).content.decode()
    assert "No deals are attributed through it" in confirm
    response = client.post(reverse("mapping_remove", args=[mapping.pk]), follow=True)
    assert "Removed the mapping" in response.content.decode()
    with tenant_scope(world.a.tenant):
        assert not PartnerMapping.objects.exists()


def test_a_mapping_form_with_errors_is_answered_on_the_mappings_page(world, hub):
    source = make_source(world.a, hub)
    response = signed_in(world.a).post(reverse("mapping_list", args=[source.pk]), {"external_ref": "", "partner": ""})
    assert response.status_code == 400
    assert "This field is required" in response.content.decode()


# --- Query counts ---------------------------------------------------------------------------------


def count_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


def test_list_pages_cost_the_same_few_queries_with_more_rows(world, hub):
    client = signed_in(world.a)
    client.get(LIST)  # the first request stores the active workspace in the session
    source = make_source(world.a, hub, name="Main")
    other = world.a.partners[0]

    def grow(step: int) -> None:
        for n in range(3):
            extra = make_source(world.a, hub, name=f"Extra {step}-{n}")
            add_run(world.a, extra, status=SyncStatus.FAILED, error_kind="other", error="x", finished_at=timezone.now())
            add_unmatched(world.a, extra, 2, ref=f"REF-{step}-{n}")
        for n in range(4):
            add_run(
                world.a,
                source,
                status=SyncStatus.SUCCEEDED,
                requested_by=world.a.users["admin"],
                queued_at=timezone.now() - timedelta(hours=step * 10 + n),
                started_at=timezone.now(),
                finished_at=timezone.now(),
            )
            add_unmatched(world.a, source, 3, ref=f"HS-{step}-{n}", start=step * 100)
        with tenant_scope(world.a.tenant):
            for n in range(3):
                PartnerMapping.objects.create(
                    source=source, external_ref=f"MAP-{step}-{n}", partner=other, created_by=world.a.users["admin"]
                )

    urls = [
        LIST,
        QUEUE,
        f"{QUEUE}?source={source.pk}",
        reverse("data_source_detail", args=[source.pk]),
        reverse("mapping_list", args=[source.pk]),
    ]
    grow(1)
    few = [count_queries(client, url) for url in urls]
    grow(2)
    grow(3)
    many = [count_queries(client, url) for url in urls]
    assert few == many, list(zip(urls, few, many, strict=True))


def test_a_sync_under_way_does_not_hide_that_the_last_one_failed(world, hub):
    source = make_source(world.a, hub)
    add_run(
        world.a,
        source,
        status=SyncStatus.FAILED,
        error_kind=SyncErrorKind.AUTHENTICATION,
        error="refused",
        queued_at=timezone.now() - timedelta(hours=1),
        finished_at=timezone.now() - timedelta(hours=1),
    )
    add_run(world.a, source, status=SyncStatus.RUNNING, started_at=timezone.now())
    client = signed_in(world.a)
    assert "Failing" in client.get(LIST).content.decode()
    assert "Failing" in client.get(reverse("data_source_detail", args=[source.pk])).content.decode()


# --- Support admin ----------------------------------------------------------------------------------


def test_the_support_admin_shows_sources_read_only_and_never_their_credentials(world, hub):
    source = make_source(world.a, hub)
    with tenant_scope(world.a.tenant):
        ciphertext = DataSource.objects.get(pk=source.pk).credentials
    staff = world.a.users["admin"]
    staff.is_staff = True
    staff.save()
    staff.user_permissions.set(
        Permission.objects.filter(codename__in=["view_datasource", "change_datasource", "view_syncrun", "view_deal"])
    )
    client = Client()
    client.force_login(staff)
    change = client.get(reverse("admin:integrations_datasource_change", args=[source.pk]))
    body = change.content.decode()
    assert change.status_code == 200
    assert "access_token" in body and ciphertext not in body and TOKEN not in body
    assert 'name="name"' not in body  # read-only: no inputs
    assert client.post(reverse("admin:integrations_datasource_change", args=[source.pk]), {}).status_code == 403
    changelist = reverse("admin:integrations_datasource_changelist")
    assert client.get(changelist, {"credentials__startswith": ciphertext[:4]}).status_code == 400
    foreign = make_source(world.b, name="Globex CRM")
    assert client.get(reverse("admin:integrations_datasource_change", args=[foreign.pk])).status_code in (302, 404)
