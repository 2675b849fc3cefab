"""Pushing deals through the API: validation per deal, upserts, unmatched references, deletions, derivation."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.test import Client

from partnerhub.integrations.source_models import DataSource, Deal, PartnerMapping, PartnerMatch, SourceKind
from partnerhub.tenancy.context import tenant_scope
from partnerhub.tenancy.models import AuditEvent
from scorecards.models import MetricObservation, ObservationSource

BULK = "/api/v1/deals/bulk/"
JSON = "application/json"


def key_client(plaintext: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Api-Key {plaintext}")


def session(world_tenant, role: str) -> Client:
    client = Client()
    client.force_login(world_tenant.users[role])
    return client


def deal(external_id: str, **fields) -> dict:
    """A won deal of FY2026-Q3 (a January fiscal year: July to September) unless fields say otherwise."""
    return {
        "external_id": external_id,
        "name": f"Deal {external_id}",
        "amount": "1000.00",
        "currency": "USD",
        "stage": "Closed won",
        "closed": True,
        "won": True,
        "created_on": "2026-07-02",
        "close_date": "2026-08-14",
        **fields,
    }


def push(client: Client, deals: list, **envelope):
    return client.post(BULK, {"deals": deals, **envelope}, content_type=JSON)


def current_value(partner, key: str, period: str = "FY2026-Q3") -> Decimal | None:
    row = MetricObservation.objects.current().filter(partner=partner, metric__key=key, period=period).first()
    return None if row is None else row.value


def counts(world_tenant) -> tuple[int, int, int, int]:
    with tenant_scope(world_tenant.tenant):
        return (
            Deal.objects.count(),
            MetricObservation.objects.count(),
            AuditEvent.objects.count(),
            DataSource.objects.count(),
        )


# --- Recording ------------------------------------------------------------------------------------------


def test_a_write_key_pushes_deals_into_the_api_push_source_and_their_metrics_are_derived(world):
    first, second = world.a.partners
    response = push(
        key_client(world.a.write_key[1]),
        [
            deal("D-1", partner=first.pk, amount="1000.50"),
            deal("D-2", partner=str(first.pk), won=False, amount=500),
            deal("D-3", partner=second.pk, closed=False, won=False, close_date=None, amount=250.25),
        ],
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert {name: body[name] for name in ("written", "created", "updated", "unchanged", "unmatched", "invalid")} == {
        "written": True,
        "created": 3,
        "updated": 0,
        "unchanged": 0,
        "unmatched": 0,
        "invalid": 0,
    }
    assert [row["status"] for row in body["results"]] == ["created"] * 3
    assert all(row["errors"] == {} for row in body["results"]) and body["observations_written"] > 0
    with tenant_scope(world.a.tenant):
        source = DataSource.objects.get()
        assert (source.kind, source.name, body["source"]) == (SourceKind.API, "API push", source.pk)
        stored = {d.external_id: d for d in Deal.objects.all()}
        assert [stored[f"D-{n}"].pk for n in (1, 2, 3)] == [row["id"] for row in body["results"]]
        assert stored["D-1"].amount == Decimal("1000.50") and stored["D-1"].won and stored["D-1"].partner == first
        assert stored["D-2"].closed and not stored["D-2"].won and stored["D-2"].amount == Decimal("500.00")
        assert not stored["D-3"].closed and stored["D-3"].close_date is None and stored["D-3"].partner == second
        assert current_value(first, "revenue_won") == Decimal("1000.50")
        assert current_value(first, "win_rate") == Decimal("0.5")
        assert current_value(first, "pipeline_created") == Decimal("1500.50")
        assert current_value(second, "deals_registered") == 1
        observation = MetricObservation.objects.current().get(partner=first, metric__key="deals_won")
        assert observation.source == ObservationSource.DERIVED and observation.source_ref.startswith("api:")
        [event] = AuditEvent.objects.filter(verb="deals.bulk_recorded")
    assert event.actor_label == f"API key “write” ({world.a.write_key[0].prefix})"
    assert (event.target_type, event.target_id) == ("integrations.datasource", str(source.pk))
    assert {name: event.changes[name][1] for name in ("deals", "created", "updated", "deleted", "source")} == {
        "deals": 3,
        "created": 3,
        "updated": 0,
        "deleted": 0,
        "source": "API push",
    }


def test_the_same_batch_again_writes_nothing_and_a_change_updates_only_what_changed(world):
    first = world.a.partners[0]
    client = key_client(world.a.write_key[1])
    deals = [deal("D-1", partner=first.pk), deal("D-2", partner=first.pk, amount="300")]
    push(client, deals)
    before = counts(world.a)

    again = push(client, deals)

    assert again.status_code == 200
    assert [row["status"] for row in again.json()["results"]] == ["unchanged", "unchanged"]
    assert again.json()["observations_written"] == 0
    assert counts(world.a) == before

    changed = push(client, [deals[0], deal("D-2", partner=first.pk, amount="700")])
    assert [row["status"] for row in changed.json()["results"]] == ["unchanged", "updated"]
    assert [row["id"] for row in changed.json()["results"]] == [row["id"] for row in again.json()["results"]]
    with tenant_scope(world.a.tenant):
        assert Deal.objects.get(external_id="D-2").amount == Decimal("700.00")
        assert current_value(first, "revenue_won") == Decimal("1700.00")
        assert AuditEvent.objects.filter(verb="deals.bulk_recorded").count() == 2


def test_a_reference_that_matches_no_partner_is_stored_unmatched_and_a_mapping_matches_it_next_time(world):
    first = world.a.partners[0]
    client = key_client(world.a.write_key[1])
    response = push(client, [deal("D-1", partner_ref="ACC-0042"), deal("D-2", partner_ref=4242)])

    assert response.status_code == 200
    body = response.json()
    assert [row["status"] for row in body["results"]] == ["unmatched", "unmatched"]
    assert (body["created"], body["unmatched"], body["observations_written"]) == (0, 2, 0)
    with tenant_scope(world.a.tenant):
        stored = {d.external_id: d for d in Deal.objects.all()}
        assert stored["D-1"].partner is None and stored["D-1"].partner_ref == "ACC-0042"
        assert stored["D-2"].partner_ref == "4242"
        [event] = AuditEvent.objects.filter(verb="deals.bulk_recorded")
        assert event.changes["unmatched"] == [None, 2] and event.changes["created"] == [None, 2]
        PartnerMapping.objects.create(source=DataSource.objects.get(), external_ref="ACC-0042", partner=first)

    mapped = push(client, [deal("D-1", partner_ref="ACC-0042")])

    assert mapped.json()["results"][0]["status"] == "updated"
    with tenant_scope(world.a.tenant):
        assert Deal.objects.get(external_id="D-1").partner == first
        assert current_value(first, "revenue_won") == Decimal("1000.00")


def test_a_source_that_matches_references_by_crm_id_matches_pushed_deals_too(world):
    first = world.a.partners[0]
    with tenant_scope(world.a.tenant):
        first.hubspot_company_id = "HS-1"
        first.save()
        source = DataSource.objects.create(
            name="ERP feed", kind=SourceKind.API, partner_match=PartnerMatch.HUBSPOT_COMPANY_ID
        )
    response = push(
        key_client(world.a.write_key[1]), [deal("E-1", partner_ref="HS-1"), deal("E-2", partner_ref="HS-9")],
        source=source.pk,
    )  # fmt: skip
    assert [row["status"] for row in response.json()["results"]] == ["created", "unmatched"]
    assert response.json()["source"] == source.pk
    with tenant_scope(world.a.tenant):
        assert Deal.objects.get(external_id="E-1").partner == first
        assert not DataSource.objects.filter(name="API push").exists()


def test_deleted_deals_are_marked_and_leave_the_derived_metrics(world):
    first = world.a.partners[0]
    client = key_client(world.a.write_key[1])
    push(client, [deal("D-1", partner=first.pk), deal("D-2", partner=first.pk, amount="300")])

    response = push(client, [{"external_id": "D-2", "deleted": True}, {"external_id": "D-404", "deleted": True}])

    assert response.status_code == 200
    assert [row["status"] for row in response.json()["results"]] == ["deleted", "unchanged"]
    assert response.json()["deleted"] == 1 and response.json()["results"][1]["id"] is None
    with tenant_scope(world.a.tenant):
        gone = Deal.objects.get(external_id="D-2")
        assert gone.deleted_at is not None and response.json()["results"][0]["id"] == gone.pk
        assert current_value(first, "revenue_won") == Decimal("1000.00")
        assert current_value(first, "deals_won") == 1
        event = AuditEvent.objects.filter(verb="deals.bulk_recorded").order_by("-pk").first()
        assert event.changes["deleted"] == [None, 1]
    again = push(client, [{"external_id": "D-2", "deleted": True}])
    assert again.json()["results"][0]["status"] == "unchanged"
    back = push(client, [deal("D-2", partner=first.pk, amount="300")])
    assert back.json()["results"][0]["status"] == "updated"
    with tenant_scope(world.a.tenant):
        assert Deal.objects.get(external_id="D-2").deleted_at is None
        assert current_value(first, "revenue_won") == Decimal("1300.00")


# --- Atomic or not --------------------------------------------------------------------------------------


def test_an_atomic_batch_with_one_invalid_deal_writes_nothing_and_names_every_problem(world):
    first = world.a.partners[0]
    before = counts(world.a)
    response = push(
        key_client(world.a.write_key[1]),
        [
            deal("D-1", partner=first.pk),
            deal("D-2", partner=first.pk, amount="12,50", close_date=None),
            deal("D-3", partner=first.pk, created_on="2026-02-30"),
        ],
    )

    assert response.status_code == 400
    body = response.json()
    assert (body["written"], body["created"], body["invalid"]) == (False, 0, 2)
    assert [row["status"] for row in body["results"]] == ["valid", "invalid", "invalid"]
    assert body["results"][1]["errors"] == {
        "amount": [
            "“12,50” is not a number. Give the amount as a number, like 1234.50 (a dot for decimals, no thousands "
            "separators)."
        ],
        "close_date": ["A closed deal needs its close date, as YYYY-MM-DD."],
    }
    assert body["results"][2]["errors"] == {"created_on": ["2026-02-30 is not a date; give it as YYYY-MM-DD."]}
    assert all(row["id"] is None for row in body["results"])
    assert counts(world.a)[:3] == before[:3]


def test_without_atomic_the_valid_deals_are_recorded_and_the_invalid_ones_reported(world):
    first = world.a.partners[0]
    client = key_client(world.a.write_key[1])
    payload = [deal("D-1", partner=first.pk), deal("D-2", partner=first.pk, currency="euro"), "not a deal"]

    response = push(client, payload, atomic=False)

    assert response.status_code == 200
    body = response.json()
    assert [row["status"] for row in body["results"]] == ["created", "invalid", "invalid"]
    assert body["results"][1]["errors"] == {"currency": ["Give the currency as a three-letter code, like EUR."]}
    assert body["results"][2]["errors"] == {"non_field_errors": ["Each deal is an object."]}
    with tenant_scope(world.a.tenant):
        assert list(Deal.objects.values_list("external_id", flat=True)) == ["D-1"]
        [event] = AuditEvent.objects.filter(verb="deals.bulk_recorded")
        assert event.changes["invalid"] == [None, 2]
    again = push(client, payload, atomic=False)
    assert [row["status"] for row in again.json()["results"]] == ["unchanged", "invalid", "invalid"]


@pytest.mark.parametrize(
    "changes, field, message",
    [
        ({"external_id": None}, "external_id", "Give the deal's id in your system (at most 64 characters)."),
        ({"external_id": "  "}, "external_id", "Give the deal's id in your system (at most 64 characters)."),
        ({"external_id": "x" * 65}, "external_id", "Keep this to 64 characters; it has 65."),
        ({"external_id": ["D"]}, "external_id", "Give this as text or a whole number."),
        ({"partner": None}, "partner", "Name the partner: its PartnerHub id (partner) or how your system names it "
         "(partner_ref)."),
        ({"partner": True}, "partner", "Give the partner's PartnerHub id as a whole number."),
        ({"partner": 10**30}, "partner", "Give the partner's PartnerHub id as a whole number."),
        ({"partner": "9" * 5000}, "partner", "Give the partner's PartnerHub id as a whole number."),
        ({"partner": 999_999}, "partner", "There is no partner with this id."),
        ({"name": "n" * 256}, "name", "Keep this to 255 characters; it has 256."),
        ({"name": "bad\x00name"}, "name", "This text contains a NUL character, which cannot be stored."),
        ({"name": "\ud800"}, "name", "This text contains characters that are not valid Unicode (unpaired surrogates)."),
        ({"stage": 7}, "stage", "Give this as text."),
        ({"amount": True}, "amount", "Give the amount as a number, like 1234.50 (a dot for decimals, no thousands "
         "separators)."),
        ({"amount": "NaN"}, "amount", "“NaN” is not a number. Give the amount as a number, like 1234.50 (a dot for "
         "decimals, no thousands separators)."),
        ({"amount": "-5"}, "amount", "An amount cannot be negative."),
        ({"amount": "1e20"}, "amount", "This amount is too large to store."),
        ({"currency": ""}, "currency", "Give the amount's currency as a three-letter code, like EUR."),
        ({"currency": "E1R"}, "currency", "Give the currency as a three-letter code, like EUR."),
        ({"closed": "yes"}, "closed", "Give true or false."),
        ({"closed": False}, "won", "A won deal is closed: send closed: true, or leave closed out."),
        ({"close_date": ""}, "close_date", "A closed deal needs its close date, as YYYY-MM-DD."),
        ({"close_date": "14/08/2026"}, "close_date", "Give the date as YYYY-MM-DD, e.g. 2026-07-01."),
        ({"close_date": "0001-01-01"}, "close_date", "0001-01-01 is outside the years 1900 to 2199."),
        ({"created_on": None}, "created_on", "Give the day the deal was created, as YYYY-MM-DD."),
        ({"created_on": 20260702}, "created_on", "Give the date as YYYY-MM-DD, e.g. 2026-07-01."),
        ({"created_on": "2199-01-01"}, "created_on", "2199-01-01 is in the future; a deal is created on or before "
         "today."),
        ({"deleted": "no"}, "deleted", "Give true or false."),
    ],
)  # fmt: skip
def test_each_field_is_checked_with_a_message_that_says_what_to_send(world, changes, field, message):
    item = {**deal("D-1", partner=world.a.partners[0].pk), **changes}
    response = push(key_client(world.a.write_key[1]), [item])
    assert response.status_code == 400, response.content
    [result] = response.json()["results"]
    assert result["status"] == "invalid"
    assert result["errors"][field] == [message]


def test_another_tenants_partner_is_unknown_here(world):
    response = push(key_client(world.a.write_key[1]), [deal("D-1", partner=world.b.partners[0].pk)])
    assert response.status_code == 400
    assert response.json()["results"][0]["errors"] == {"partner": ["There is no partner with this id."]}


def test_a_deal_sent_twice_in_one_batch_is_refused_at_its_second_place(world):
    first = world.a.partners[0].pk
    response = push(key_client(world.a.write_key[1]), [deal("D-1", partner=first), deal("D-1", partner=first)])
    assert response.status_code == 400
    assert response.json()["results"][1]["errors"] == {
        "external_id": ["Repeats deal 0: each deal appears once per request."]
    }


def test_an_open_deal_keeps_no_close_date_and_a_deletion_needs_only_its_id(world):
    first = world.a.partners[0].pk
    response = push(
        key_client(world.a.write_key[1]),
        [
            deal("D-1", partner=first, closed=False, won=False, close_date="2026-12-01"),
            {"external_id": 77, "deleted": True, "amount": "not read"},
        ],
    )
    assert response.status_code == 200, response.content
    assert [row["status"] for row in response.json()["results"]] == ["created", "unchanged"]
    with tenant_scope(world.a.tenant):
        assert Deal.objects.get(external_id="D-1").close_date is None


# --- The envelope -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload, field",
    [
        ({}, "deals"),
        ({"deals": []}, "deals"),
        ({"deals": "all of them"}, "deals"),
        ({"deals": {"external_id": "D-1"}}, "deals"),
        ({"deals": [{}], "atomic": "maybe"}, "atomic"),
        ({"deals": [{}], "source": "api"}, "source"),
        ({"deals": [{}], "source": 10**30}, "source"),
        ({"deals": [{}], "source": 999_999}, "source"),
    ],
)
def test_a_malformed_request_answers_400_naming_the_field(world, payload, field):
    before = counts(world.a)
    response = key_client(world.a.write_key[1]).post(BULK, payload, content_type=JSON)
    assert response.status_code == 400 and field in response.json(), response.content
    assert counts(world.a) == before


@pytest.mark.parametrize("body", [b"{not json", b"", b"[1, 2", b"\xff\xfe", b"null", b"[]", b"42"])
def test_a_body_that_is_not_a_json_object_answers_400(world, body):
    response = key_client(world.a.write_key[1]).post(BULK, body, content_type=JSON)
    assert response.status_code == 400, (body, response.status_code)
    assert response["Content-Type"] == JSON


def test_more_than_5000_deals_are_refused_with_the_limit_named(world):
    items = [deal(f"D-{n}", partner_ref="P") for n in range(5001)]
    response = push(key_client(world.a.write_key[1]), items)
    assert response.status_code == 400
    assert response.json()["deals"] == ["Send at most 5,000 deals per request."]
    assert counts(world.a)[0] == 0


def test_5000_deals_are_taken_in_one_request(world):
    first, second = world.a.partners
    items = [deal(f"D-{n}", partner=(first if n % 2 else second).pk, amount=n) for n in range(5000)]
    response = push(key_client(world.a.write_key[1]), items)
    assert response.status_code == 200, response.content[:500]
    assert response.json()["created"] == 5000
    with tenant_scope(world.a.tenant):
        assert Deal.objects.count() == 5000
        assert current_value(first, "deals_won") == 2500


def test_deals_go_only_to_api_push_sources_that_are_switched_on(world):
    with tenant_scope(world.a.tenant):
        crm = DataSource.objects.create(name="HubSpot", kind=SourceKind.HUBSPOT)
        off = DataSource.objects.create(name="Old feed", kind=SourceKind.API, is_active=False)
    client = key_client(world.a.write_key[1])
    item = [deal("D-1", partner=world.a.partners[0].pk)]
    assert push(client, item, source=crm.pk).json() == {
        "source": ["HubSpot is a HubSpot source; deals are pushed to API-push sources."]
    }
    assert push(client, item, source=off.pk).json() == {
        "source": ["Old feed is switched off; switch it on to receive deals."]
    }
    assert push(client, item, source=world.b.extra["api_source"].pk).json() == {
        "source": ["There is no data source with this id."]
    }
    with tenant_scope(world.a.tenant):
        assert not Deal.objects.exists()


# --- Who may push ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["read_key", "partner_manager", "executive", "partner_admin", "partner_member"])
def test_readers_cannot_push_and_nothing_is_written(world, who):
    client = key_client(world.a.read_key[1]) if who == "read_key" else session(world.a, who)
    before = counts(world.a)
    response = push(client, [deal("D-1", partner=world.a.partners[0].pk)])
    assert response.status_code == 403
    if who == "read_key":
        assert response.json() == {"detail": "This API key is read-only."}
    assert counts(world.a) == before


def test_an_administrator_pushes_in_the_browser_and_the_event_names_them(world):
    response = push(session(world.a, "admin"), [deal("D-1", partner=world.a.partners[0].pk)])
    assert response.status_code == 200, response.content
    with tenant_scope(world.a.tenant):
        [event] = AuditEvent.objects.filter(verb="deals.bulk_recorded")
    assert event.actor == world.a.users["admin"]


def test_each_tenant_pushes_into_its_own_source(world):
    a_key, b_key = key_client(world.a.write_key[1]), key_client(world.b.write_key[1])
    assert push(a_key, [deal("D-1", partner=world.a.partners[0].pk)]).status_code == 200
    answer = push(b_key, [deal("D-1", partner=world.b.partners[0].pk)])
    assert answer.status_code == 200 and answer.json()["results"][0]["status"] == "created"
    assert answer.json()["source"] == world.b.extra["api_source"].pk
    with tenant_scope(world.a.tenant):
        assert Deal.objects.get().partner == world.a.partners[0]
    with tenant_scope(world.b.tenant):
        assert set(Deal.objects.values_list("external_id", flat=True)) == {"D-1", "W-1"}


def test_the_answer_is_json_with_one_result_per_deal_in_order(world):
    items = [deal(f"D-{n}", partner_ref=f"R-{n}") for n in range(5)]
    response = push(key_client(world.a.write_key[1]), items)
    body = json.loads(response.content)
    assert [row["index"] for row in body["results"]] == list(range(5))
    assert sorted(body) == sorted(
        ["written", "source", "created", "updated", "unchanged", "unmatched", "deleted", "invalid",
         "observations_written", "results"]
    )  # fmt: skip
