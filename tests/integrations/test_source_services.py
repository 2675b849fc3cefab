"""Data-source and mapping services: validation, audit without secrets, the connection test, mappings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from partnerhub.integrations.services import (
    mapping_create,
    mapping_delete,
    source_activate,
    source_create,
    source_deactivate,
    source_set_credentials,
    source_sync_now,
    source_test_connection,
    source_update,
)
from partnerhub.integrations.source_models import (
    Attribution,
    DataSource,
    Deal,
    MarketingFact,
    PartnerMapping,
    PartnerMatch,
    SourceKind,
    SyncErrorKind,
    SyncRun,
)
from partnerhub.partners.models import Partner
from partnerhub.tenancy.context import tenant_scope
from partnerhub.tenancy.models import AuditEvent
from scorecards.models import MetricObservation
from tests.fakes.hubspot import FakeHubSpot
from tests.fakes.salesforce import FakeSalesforce

TOKEN = "pat-na1-5ecret-t0ken-never-shown"
SF_SECRET = "sf-c0nsumer-5ecret-never-shown"


@pytest.fixture
def hub() -> Iterator[FakeHubSpot]:
    with FakeHubSpot(token=TOKEN) as fake:
        yield fake


@pytest.fixture
def sf() -> Iterator[FakeSalesforce]:
    with FakeSalesforce(client_id="cid", client_secret=SF_SECRET) as fake:
        yield fake


@pytest.fixture
def acme(world):
    with tenant_scope(world.a.tenant, user=world.a.users["admin"]):
        yield world.a


def admin(tenant_world):
    return tenant_world.users["admin"]


def hubspot(hub: FakeHubSpot, by, **fields) -> DataSource:
    fields.setdefault("attribution_field", "partner_company")
    return source_create(
        kind=SourceKind.HUBSPOT,
        name=fields.pop("name", "HubSpot"),
        by=by,
        base_url=hub.base_url,
        credentials={"access_token": fields.pop("token", TOKEN)},
        **fields,
    )


def salesforce(sf: FakeSalesforce, by, **fields) -> DataSource:
    return source_create(
        kind=SourceKind.SALESFORCE,
        name=fields.pop("name", "Salesforce"),
        by=by,
        base_url=sf.base_url,
        credentials={"client_id": "cid", "client_secret": fields.pop("secret", SF_SECRET)},
        **fields,
    )


def audit_text() -> str:
    """Every audit event of the tenant, as stored."""
    return json.dumps(
        list(AuditEvent.objects.values("verb", "target_repr", "changes")), default=str, ensure_ascii=False
    )


def field_errors(raised: pytest.ExceptionInfo) -> dict[str, str]:
    return {field: " ".join(messages) for field, messages in raised.value.message_dict.items()}


# --- Creating and changing sources -------------------------------------------------------------------


def test_a_hubspot_source_starts_from_its_defaults_and_keeps_its_token_encrypted(acme):
    source = source_create(
        kind=SourceKind.HUBSPOT,
        name="  HubSpot EMEA ",
        by=admin(acme),
        attribution_field="partner_company",
        credentials={"access_token": TOKEN},
    )
    source.refresh_from_db()
    assert source.name == "HubSpot EMEA"
    assert source.base_url == "https://api.hubapi.com"
    assert (source.token_url, source.api_version) == ("", "")
    assert source.attribution == Attribution.DEAL_PROPERTY
    assert source.partner_match == PartnerMatch.HUBSPOT_COMPANY_ID
    assert source.credentials_set == ["access_token"]
    assert TOKEN not in source.credentials
    assert source.read_credentials() == {"access_token": TOKEN}
    event = AuditEvent.objects.get(verb="data_source.created")
    assert event.changes["credentials.access_token"] == ["not set", "set"]
    assert event.changes["name"] == [None, "HubSpot EMEA"]
    assert TOKEN not in audit_text()


def test_a_salesforce_source_defaults_to_partner_account_attribution(acme):
    source = source_create(
        kind=SourceKind.SALESFORCE,
        name="Salesforce",
        by=admin(acme),
        credentials={"client_id": "c", "client_secret": "s"},
    )
    assert source.base_url == "https://login.salesforce.com"
    assert source.token_url == ""  # the login address's token endpoint
    assert source.api_version == "v61.0"
    assert (source.attribution, source.attribution_field) == (Attribution.PARTNER_ACCOUNT, "")
    assert source.partner_match == PartnerMatch.SALESFORCE_ACCOUNT_ID


@pytest.mark.parametrize(
    "kind, fields, field, words",
    [
        (SourceKind.HUBSPOT, {"base_url": "not a url"}, "base_url", "full web address"),
        (SourceKind.HUBSPOT, {"base_url": "http://crm.example.com"}, "base_url", "https"),
        (SourceKind.HUBSPOT, {"base_url": "https://user:pw@api.hubapi.com"}, "base_url", "credentials out"),
        (SourceKind.SALESFORCE, {"api_version": "61"}, "api_version", "v61.0"),
        (SourceKind.SALESFORCE, {"api_version": "v61.0.1"}, "api_version", "v61.0"),
        (SourceKind.SALESFORCE, {"attribution": Attribution.ASSOCIATION_LABEL}, "attribution", "HubSpot only"),
        (SourceKind.HUBSPOT, {"attribution": Attribution.PARTNER_ACCOUNT}, "attribution", "Salesforce field"),
        (SourceKind.HUBSPOT, {"attribution": "bogus"}, "attribution", "Choose"),
        (SourceKind.HUBSPOT, {"attribution_field": ""}, "attribution_field", "deal property"),
        (SourceKind.HUBSPOT, {"attribution_field": "partner id!"}, "attribution_field", "internal name"),
        (
            SourceKind.HUBSPOT,
            {"attribution": Attribution.ASSOCIATION_LABEL, "attribution_field": ""},
            "attribution_field",
            "association label",
        ),
        (
            SourceKind.SALESFORCE,
            {"attribution": Attribution.DEAL_PROPERTY, "attribution_field": "Partner Account"},
            "attribution_field",
            "API name",
        ),
        (SourceKind.HUBSPOT, {"partner_match": PartnerMatch.SALESFORCE_ACCOUNT_ID}, "partner_match", "Salesforce"),
        (SourceKind.SALESFORCE, {"partner_match": PartnerMatch.HUBSPOT_COMPANY_ID}, "partner_match", "HubSpot"),
        (SourceKind.HUBSPOT, {"currency": "US"}, "currency", "three-letter"),
        (SourceKind.HUBSPOT, {"currency": "€UR"}, "currency", "three-letter"),
        (SourceKind.HUBSPOT, {"schedule_minutes": 5}, "schedule_minutes", "15"),
        (SourceKind.HUBSPOT, {"schedule_minutes": 20_000}, "schedule_minutes", "week"),
        (SourceKind.HUBSPOT, {"schedule_minutes": "often"}, "schedule_minutes", "15"),
        (SourceKind.HUBSPOT, {"overlap_minutes": 5000}, "overlap_minutes", "a day"),
        (SourceKind.HUBSPOT, {"stale_after_hours": 0}, "stale_after_hours", "1 to"),
        (SourceKind.HUBSPOT, {"bogus": 1}, "bogus", "cannot be set"),
    ],
)
def test_invalid_settings_are_refused_on_their_field_and_nothing_is_written(acme, kind, fields, field, words):
    fields = {"attribution_field": "partner_company", **fields} if kind == SourceKind.HUBSPOT else fields
    with pytest.raises(ValidationError) as raised:
        source_create(kind=kind, name="CRM", by=admin(acme), **fields)
    errors = field_errors(raised)
    assert field in errors, errors
    assert words in errors[field], errors[field]
    assert not DataSource.objects.exists()
    assert not AuditEvent.objects.filter(verb__startswith="data_source").exists()


def test_lowercase_currency_is_accepted_and_the_name_is_unique_whatever_its_case(acme):
    first = source_create(kind=SourceKind.FILE, name="Partner files", by=admin(acme), currency="eur")
    assert first.currency == "EUR"
    with pytest.raises(ValidationError) as raised:
        source_create(kind=SourceKind.API, name="PARTNER FILES", by=admin(acme))
    assert "already has this name" in field_errors(raised)["name"]


def test_an_unknown_kind_is_refused(acme):
    with pytest.raises(ValidationError) as raised:
        source_create(kind="pipedrive", name="CRM", by=admin(acme))
    assert "kind" in field_errors(raised)


def test_an_update_records_what_changed_and_a_refused_one_changes_nothing(acme, hub):
    source = hubspot(hub, admin(acme))
    source_update(source=source, by=admin(acme), schedule_minutes=120, currency="gbp")
    event = AuditEvent.objects.filter(verb="data_source.updated").get()
    assert event.changes == {"currency": ["USD", "GBP"], "schedule_minutes": [60, 120]}

    with pytest.raises(ValidationError):
        source_update(source=source, by=admin(acme), schedule_minutes=1, name="Renamed")
    assert (source.schedule_minutes, source.name) == (120, "HubSpot")
    source.refresh_from_db()
    assert (source.schedule_minutes, source.name) == (120, "HubSpot")
    with pytest.raises(ValidationError) as raised:
        source_update(source=source, by=admin(acme), kind=SourceKind.SALESFORCE)
    assert "kind" in field_errors(raised)
    source_update(source=source, by=admin(acme), schedule_minutes=120)  # no change, no event
    assert AuditEvent.objects.filter(verb="data_source.updated").count() == 1


def test_a_new_schedule_moves_the_next_run(acme, hub):
    source = hubspot(hub, admin(acme))
    source.last_success_at = timezone.now() - timedelta(minutes=10)
    source.next_run_at = source.last_success_at + timedelta(minutes=60)
    source.save()
    source_update(source=source, by=admin(acme), schedule_minutes=30)
    assert source.next_run_at == source.last_success_at + timedelta(minutes=30)
    source_update(source=source, by=admin(acme), schedule_minutes=0)
    assert source.next_run_at is None


def test_blank_credentials_keep_the_stored_ones_and_events_name_fields_only(acme, sf):
    source = salesforce(sf, admin(acme))
    assert source_set_credentials(source=source, values={"client_id": "", "client_secret": "  "}, by=admin(acme)) == []
    assert source.read_credentials() == {"client_id": "cid", "client_secret": SF_SECRET}

    changed = source_set_credentials(
        source=source, values={"client_id": "", "client_secret": "new-5ecret"}, by=admin(acme)
    )
    assert changed == ["client_secret"]
    source.refresh_from_db()
    assert source.read_credentials() == {"client_id": "cid", "client_secret": "new-5ecret"}
    event = AuditEvent.objects.get(verb="data_source.credentials_changed")
    assert event.changes == {"client_secret": ["set", "replaced"]}
    # The same value again changes nothing.
    assert source_set_credentials(source=source, values={"client_secret": "new-5ecret"}, by=admin(acme)) == []
    assert AuditEvent.objects.filter(verb="data_source.credentials_changed").count() == 1
    text = audit_text()
    assert SF_SECRET not in text and "new-5ecret" not in text


def test_credentials_a_kind_does_not_have_are_refused(acme, hub):
    source = hubspot(hub, admin(acme))
    with pytest.raises(ValidationError) as raised:
        source_set_credentials(source=source, values={"client_secret": "x"}, by=admin(acme))
    assert "client_secret" in field_errors(raised)


def test_credentials_no_key_can_read_must_all_be_entered_again(acme, sf, settings):
    source = salesforce(sf, admin(acme))
    settings.CREDENTIALS_KEYS = [Fernet.generate_key().decode()]  # the key they were saved with is gone
    with pytest.raises(ValidationError) as raised:
        source_set_credentials(source=source, values={"client_secret": "new-5ecret"}, by=admin(acme))
    assert "enter this one again" in field_errors(raised)["client_id"]
    changed = source_set_credentials(source=source, values={"client_id": "cid", "client_secret": "new"}, by=admin(acme))
    assert changed == ["client_id", "client_secret"]
    source.refresh_from_db()
    assert source.read_credentials() == {"client_id": "cid", "client_secret": "new"}


def test_deactivating_stops_the_schedule_and_both_ways_are_audited(acme, hub):
    source = hubspot(hub, admin(acme))
    source.next_run_at = timezone.now()
    source.save()
    source_deactivate(source=source, by=admin(acme))
    source.refresh_from_db()
    assert not source.is_active and source.next_run_at is None
    source_deactivate(source=source, by=admin(acme))  # already: nothing more
    source_activate(source=source, by=admin(acme))
    assert source.is_active
    verbs = list(
        AuditEvent.objects.filter(verb__in=["data_source.deactivated", "data_source.activated"]).values_list(
            "verb", flat=True
        )
    )
    assert sorted(verbs) == ["data_source.activated", "data_source.deactivated"]


# --- Sync now ---------------------------------------------------------------------------------------


def test_sync_now_queues_one_run_and_reports_the_one_already_open(acme, hub, django_capture_on_commit_callbacks):
    source = hubspot(hub, admin(acme))
    with django_capture_on_commit_callbacks() as callbacks:
        run, queued = source_sync_now(source=source, by=admin(acme))
        again, queued_again = source_sync_now(source=source, by=admin(acme))
    assert queued and not queued_again and again.pk == run.pk
    assert run.trigger == "manual" and run.requested_by == admin(acme)
    assert len(callbacks) == 1


def test_sync_now_refuses_inactive_and_unpulled_sources(acme, hub):
    source = hubspot(hub, admin(acme))
    source_deactivate(source=source, by=admin(acme))
    with pytest.raises(ValidationError, match="inactive"):
        source_sync_now(source=source, by=admin(acme))
    files = source_create(kind=SourceKind.FILE, name="Files", by=admin(acme))
    with pytest.raises(ValidationError, match="not synced"):
        source_sync_now(source=files, by=admin(acme))
    assert not SyncRun.objects.exists()


# --- The connection test ----------------------------------------------------------------------------


def writes(queries) -> list[str]:
    return [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))]


def test_the_connection_test_reads_one_cheap_page_and_writes_nothing(acme, hub):
    hub.add_deal("1", dealname="Old", amount="10", hs_lastmodifieddate="2026-01-01T00:00:00Z")
    source = hubspot(hub, admin(acme))
    hub.clear_requests()
    with CaptureQueriesContext(connection) as queries:
        test = source_test_connection(source=source)
    assert test.ok, test.message
    assert "HubSpot accepted the token" in test.message
    assert writes(queries) == []
    search = next(r for r in hub.requests if r.path.endswith("/search"))
    assert search.json["filterGroups"], "the search is limited to changes from now on"
    assert not Deal.objects.exists() and not SyncRun.objects.exists()


def test_a_refused_token_is_an_authentication_failure(acme, hub):
    source = hubspot(hub, admin(acme), token="pat-wrong")
    test = source_test_connection(source=source)
    assert not test.ok
    assert test.error_kind == SyncErrorKind.AUTHENTICATION
    assert test.advice.startswith("Reconnect")


def test_unsaved_settings_and_credentials_are_tested_without_saving_them(acme, hub):
    source = hubspot(hub, admin(acme), token="pat-wrong")
    test = source_test_connection(source=source, changes={"name": "Renamed"}, credentials={"access_token": TOKEN})
    assert test.ok, test.message
    source.refresh_from_db()
    assert source.name == "HubSpot" and source.read_credentials() == {"access_token": "pat-wrong"}
    with pytest.raises(ValidationError):
        source_test_connection(source=source, changes={"base_url": "ftp://nowhere"})


def test_a_new_source_can_be_tested_before_it_exists(acme, hub):
    test = source_test_connection(
        source=DataSource(kind=SourceKind.HUBSPOT),
        changes={"name": "New", "base_url": hub.base_url, "attribution_field": "partner_company"},
        credentials={"access_token": TOKEN},
    )
    assert test.ok, test.message
    assert not DataSource.objects.exists()


def test_a_missing_salesforce_partner_field_is_a_configuration_error(acme, sf):
    sf.unknown_fields = {"PartnerAccountId"}
    source = salesforce(sf, admin(acme))
    test = source_test_connection(source=source)
    assert not test.ok
    assert test.error_kind == SyncErrorKind.CONFIGURATION
    assert "PartnerAccountId" in test.message


def test_salesforce_connects_with_client_credentials(acme, sf):
    test = source_test_connection(source=salesforce(sf, admin(acme)))
    assert test.ok, test.message
    assert sf.instance_url in test.message


def test_a_rate_limit_is_reported_without_waiting_it_out(acme, hub):
    source = hubspot(hub, admin(acme))
    hub.fail_next(status=429, headers={"Retry-After": "120"}, times=5)
    test = source_test_connection(source=source)
    assert not test.ok and test.error_kind == SyncErrorKind.RATE_LIMIT


def test_a_source_without_credentials_is_a_configuration_error(acme, hub):
    source = source_create(
        kind=SourceKind.HUBSPOT, name="No token", by=admin(acme), base_url=hub.base_url, attribution_field="p"
    )
    test = source_test_connection(source=source)
    assert not test.ok and test.error_kind == SyncErrorKind.CONFIGURATION


# --- Mappings ---------------------------------------------------------------------------------------

Q3 = date(2026, 8, 14)


def add_deal(source, external_id: str, *, ref: str, amount: str, won: bool = True, partner=None, day=Q3) -> Deal:
    return Deal.objects.create(
        source=source,
        external_id=external_id,
        partner=partner,
        partner_ref=ref,
        name=f"Deal {external_id}",
        amount=Decimal(amount),
        currency="USD",
        closed=True,
        won=won,
        created_on=day - timedelta(days=30),
        close_date=day,
        modified_at=timezone.now(),
    )


def current(partner, key: str, period: str = "FY2026-Q3"):
    row = MetricObservation.objects.current().filter(partner=partner, metric__key=key, period=period).first()
    return None if row is None else row.value


def test_a_mapping_assigns_the_unmatched_deals_and_derives_the_partners_observations(acme, hub):
    partner = acme.partners[0]
    source = hubspot(hub, admin(acme))
    add_deal(source, "1", ref="HS-404", amount="1000")
    add_deal(source, "2", ref="HS-404", amount="250", won=False)
    add_deal(source, "3", ref="HS-OTHER", amount="99")
    MarketingFact.objects.create(source=source, external_id="m1", partner_ref="HS-404", kind="mql", occurred_on=Q3)

    outcome = mapping_create(source=source, external_ref=" HS-404 ", partner=partner, by=admin(acme))

    assert outcome.created and (outcome.deals, outcome.facts) == (2, 1)
    assert outcome.observations > 0
    assert outcome.mapping.external_ref == "HS-404" and outcome.mapping.created_by == admin(acme)
    assert set(Deal.objects.filter(partner=partner).values_list("external_id", flat=True)) == {"1", "2"}
    assert Deal.objects.get(external_id="3").partner is None
    assert MarketingFact.objects.get().partner == partner
    assert current(partner, "revenue_won") == Decimal("1000.00")
    assert current(partner, "deals_closed") == 2
    observation = MetricObservation.objects.current().get(
        partner=partner, metric__key="revenue_won", period="FY2026-Q3"
    )
    assert observation.source_ref == f"mapping:{outcome.mapping.pk}"
    event = AuditEvent.objects.get(verb="partner_mapping.created")
    assert event.changes["deals_matched"] == [0, 2]


def test_mapping_again_is_harmless_and_picks_up_deals_stored_since(acme, hub):
    partner = acme.partners[0]
    source = hubspot(hub, admin(acme))
    add_deal(source, "1", ref="HS-404", amount="1000")
    mapping_create(source=source, external_ref="HS-404", partner=partner, by=admin(acme))
    observations = MetricObservation.objects.count()
    events = AuditEvent.objects.count()

    again = mapping_create(source=source, external_ref="HS-404", partner=partner, by=admin(acme))
    assert not again.created and (again.deals, again.facts, again.observations) == (0, 0, 0)
    assert PartnerMapping.objects.count() == 1
    assert MetricObservation.objects.count() == observations
    assert AuditEvent.objects.count() == events

    # A sync that started before the mapping stored another deal under the old reference.
    add_deal(source, "2", ref="HS-404", amount="500")
    later = mapping_create(source=source, external_ref="HS-404", partner=partner, by=admin(acme))
    assert (later.created, later.deals) == (False, 1)
    assert current(partner, "revenue_won") == Decimal("1500.00")
    assert AuditEvent.objects.filter(verb="partner_mapping.applied").count() == 1


def test_a_reference_mapped_to_one_partner_cannot_be_mapped_to_another(acme, hub):
    first, second = acme.partners
    source = hubspot(hub, admin(acme))
    mapping_create(source=source, external_ref="HS-404", partner=first, by=admin(acme))
    with pytest.raises(ValidationError) as raised:
        mapping_create(source=source, external_ref="HS-404", partner=second, by=admin(acme))
    assert "already mapped to" in field_errors(raised)["partner"]


def test_another_tenants_partner_cannot_be_chosen(world, hub):
    with tenant_scope(world.b.tenant):
        foreign = Partner.objects.order_by("pk").first()
    with tenant_scope(world.a.tenant):
        source = hubspot(hub, world.a.users["admin"])
        add_deal(source, "1", ref="HS-404", amount="1000")
        with pytest.raises(ValidationError) as raised:
            mapping_create(source=source, external_ref="HS-404", partner=foreign, by=world.a.users["admin"])
        assert "partner" in field_errors(raised)
        assert not PartnerMapping.objects.exists()
        assert Deal.objects.get().partner is None


def test_an_empty_reference_cannot_be_mapped(acme, hub):
    source = hubspot(hub, admin(acme))
    with pytest.raises(ValidationError) as raised:
        mapping_create(source=source, external_ref="  ", partner=acme.partners[0], by=admin(acme))
    assert "external_ref" in field_errors(raised)


def test_removing_a_mapping_sends_its_deals_back_to_the_queue_and_derives_again(acme, hub):
    partner = acme.partners[0]
    source = hubspot(hub, admin(acme), partner_match=PartnerMatch.MAPPING_ONLY)
    add_deal(source, "1", ref="HS-404", amount="1000")
    add_deal(source, "2", ref="HS-1", amount="300", partner=partner)  # matched otherwise: stays
    mapping = mapping_create(source=source, external_ref="HS-404", partner=partner, by=admin(acme)).mapping
    assert current(partner, "revenue_won") == Decimal("1300.00")  # every deal of the partner counts
    mapping_id = mapping.pk

    outcome = mapping_delete(mapping=mapping, by=admin(acme))

    assert outcome.deals == 1 and outcome.observations > 0
    assert not PartnerMapping.objects.exists()
    assert Deal.objects.get(external_id="1").partner is None
    assert Deal.objects.get(external_id="2").partner == partner
    assert current(partner, "revenue_won") == Decimal("300.00")
    event = AuditEvent.objects.get(verb="partner_mapping.deleted")
    assert event.target_id == str(mapping_id) and outcome.mapping.pk == mapping_id
    assert event.changes["deals_unassigned"] == [1, 0]


def test_removing_a_mapping_the_matching_rule_agrees_with_moves_nothing(acme, hub):
    partner = acme.partners[0]
    partner.hubspot_company_id = "HS-1"
    partner.save()
    source = hubspot(hub, admin(acme))  # matches HubSpot company ids
    add_deal(source, "1", ref="HS-1", amount="1000")
    mapping = mapping_create(source=source, external_ref="HS-1", partner=partner, by=admin(acme)).mapping
    outcome = mapping_delete(mapping=mapping, by=admin(acme))
    assert outcome.deals == 0
    assert Deal.objects.get().partner == partner
