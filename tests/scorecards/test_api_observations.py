"""The observations API: reading history, recording one or many values, uploads, isolation, shape."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from partnerhub.tenancy.context import tenant_scope
from partnerhub.tenancy.models import AuditEvent
from scorecards.models import Metric, MetricObservation, ObservationSource
from scorecards.services.observations import observation_record
from tests.factories import PartnerFactory

LIST = "/api/v1/observations/"
BULK = f"{LIST}bulk/"
UPLOAD = f"{LIST}upload/"
JSON = "application/json"
PARTNER = ("partner_admin", "partner_member")


def session(world_tenant, role: str) -> Client:
    client = Client()
    client.force_login(world_tenant.users[role])
    return client


def key_client(plaintext: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Api-Key {plaintext}")


def rows(response) -> list[dict]:
    assert response.status_code == 200, response.content
    return response.json()["results"]


def supersede(world_tenant, value, *, partner_index=0, key="pipeline_created"):
    """A correction of the world's latest value, so history has a superseded row."""
    world = world_tenant.extra["scorecards"]
    with tenant_scope(world_tenant.tenant):
        return observation_record(
            partner=world_tenant.partners[partner_index],
            metric=world.metrics[key],
            period=world.periods[-1],
            value=value,
            source=ObservationSource.CORRECTION,
            by=world_tenant.users["admin"],
        )[0]


# --- Reading --------------------------------------------------------------------------------------------------


def test_the_list_shows_the_values_in_force_unless_history_is_asked_for(world):
    correction = supersede(world.a, "330000")
    client = key_client(world.a.read_key[1])
    current = rows(client.get(LIST, {"page_size": 200}))
    assert len(current) == 12 and all(row["is_current"] for row in current)
    assert correction.pk in {row["id"] for row in current}
    everything = rows(client.get(LIST, {"current": "false", "page_size": 200}))
    assert len(everything) == 13
    [old] = [row for row in everything if not row["is_current"]]
    assert old["superseded_by"] == correction.pk and old["value"] == "310000.000000"


def test_observations_filter_by_partner_metric_period_source_and_type(world):
    client = key_client(world.a.read_key[1])
    periods = world.a.extra["scorecards"].periods
    partner = world.a.partners[1]
    assert {row["partner"] for row in rows(client.get(LIST, {"partner": partner.pk}))} == {partner.pk}
    by_metric = rows(client.get(LIST, {"metric": "customer_satisfaction", "period": periods[0].lower()}))
    assert [(row["partner_name"], row["value"]) for row in by_metric] == [
        ("Acme Partner 1", "8.100000"),
        ("Acme Partner 2", "6.200000"),
    ]
    assert rows(client.get(LIST, {"source": "manual"})) == []
    assert len(rows(client.get(LIST, {"partner_type": "reseller"}))) == 12
    assert client.get(LIST, {"metric": "no_such_metric"}).status_code == 400
    assert rows(client.get(LIST, {"partner": 10**30})) == []


@pytest.mark.parametrize("role", PARTNER)
def test_partner_users_read_only_their_own_partners_observations(world, role):
    supersede(world.a, "70000", partner_index=1)
    client = session(world.a, role)
    own = world.a.partners[0]
    listed = rows(client.get(LIST, {"current": "false", "page_size": 200}))
    assert listed and {row["partner"] for row in listed} == {own.pk}
    assert all("recorded_by" not in row for row in listed)
    assert rows(client.get(LIST, {"partner": world.a.partners[1].pk})) == []
    with tenant_scope(world.a.tenant):
        others = MetricObservation.objects.filter(partner=world.a.partners[1])
        assert others.exists()
        for observation in others:
            assert client.get(f"{LIST}{observation.pk}/").status_code == 404


@pytest.mark.parametrize("role", PARTNER)
def test_partner_users_never_write_observations(world, role):
    client = session(world.a, role)
    body = {"partner": world.a.partners[0].pk, "metric": "revenue_won", "period": "FY2026-Q2", "value": "1"}
    assert client.post(LIST, body, content_type=JSON).status_code == 403
    assert client.post(BULK, {"observations": [body]}, content_type=JSON).status_code == 403
    upload = SimpleUploadedFile("values.csv", b"partner,metric,period,value\nAcme Partner 1,revenue_won,FY2026-Q2,1\n")
    assert client.post(UPLOAD, {"file": upload}).status_code == 403
    with tenant_scope(world.a.tenant):
        assert not MetricObservation.objects.filter(metric__key="revenue_won").exists()


def test_another_tenants_observations_answer_404(world):
    client = key_client(world.a.write_key[1])
    for observation in world.b.extra["scorecards"].observations[:3]:
        assert client.get(f"{LIST}{observation.pk}/").status_code == 404
    ids = {row["id"] for row in rows(client.get(LIST, {"page_size": 200}))}
    assert not ids & {observation.pk for observation in world.b.extra["scorecards"].observations}


def test_observations_cannot_be_changed_or_deleted_through_the_api(world):
    client = key_client(world.a.write_key[1])
    observation = world.a.extra["scorecards"].observations[0]
    assert client.patch(f"{LIST}{observation.pk}/", {"value": "1"}, content_type=JSON).status_code == 405
    assert client.put(f"{LIST}{observation.pk}/", {"value": "1"}, content_type=JSON).status_code == 405
    assert client.delete(f"{LIST}{observation.pk}/").status_code == 405


# --- Recording one value ---------------------------------------------------------------------------------------


def test_a_write_key_records_a_value_and_repeating_it_adds_nothing(world):
    key, plaintext = world.a.write_key
    client = key_client(plaintext)
    body = {"partner": world.a.partners[0].pk, "metric": "revenue_won", "period": "fy2026-q2", "value": "184500.5",
            "source_ref": "crm:opp-batch-17"}  # fmt: skip
    first = client.post(LIST, body, content_type=JSON)
    assert first.status_code == 201, first.json()
    created = first.json()
    assert (created["period"], created["value"], created["source"]) == ("FY2026-Q2", "184500.500000", "api")
    assert created["is_current"] and created["recorded_by"] is None
    again = client.post(LIST, body, content_type=JSON)
    assert again.status_code == 200 and again.json()["id"] == created["id"]
    with tenant_scope(world.a.tenant):
        event = AuditEvent.objects.get(verb="observation.recorded")
    assert key.prefix in event.actor_label


def test_a_partner_manager_enters_a_value_by_hand(world):
    client = session(world.a, "partner_manager")
    body = {"partner": world.a.partners[1].pk, "metric": "win_rate", "period": "FY2026-Q2", "value": "0.4"}
    response = client.post(LIST, body, content_type=JSON)
    assert response.status_code == 201
    assert (response.json()["source"], response.json()["recorded_by"]) == ("manual", "partner_manager@acme.test")


@pytest.mark.parametrize("who", ["executive", "read_key"])
def test_readers_cannot_record(world, who):
    client = key_client(world.a.read_key[1]) if who == "read_key" else session(world.a, who)
    body = {"partner": world.a.partners[0].pk, "metric": "revenue_won", "period": "FY2026-Q2", "value": "1"}
    assert client.post(LIST, body, content_type=JSON).status_code == 403


@pytest.mark.parametrize(
    "changes, field, message",
    [
        ({"period": "Q2"}, "period", "“Q2” is not a period; write it like FY2026-Q3 or FY2026-M07."),
        ({"value": "-1"}, "value", "-1 is outside the plausible range for Revenue won: between 0 and 10000000000."),
        ({"value": "lots"}, "value", "A valid number is required."),
        ({"metric": "revenu_won"}, "metric", None),
        ({"partner": 10**30}, "partner", "There is no partner with this id."),
        ({"partner": "abc"}, "partner", "Give the partner's id as a number."),
        ({"partner": None}, "partner", None),
    ],
)
def test_bad_values_answer_400_with_a_field_message(world, changes, field, message):
    client = key_client(world.a.write_key[1])
    body = {"partner": world.a.partners[0].pk, "metric": "revenue_won", "period": "FY2026-Q2", "value": "1", **changes}
    response = client.post(LIST, body, content_type=JSON)
    assert response.status_code == 400 and field in response.json(), response.json()
    if message:
        assert response.json()[field] == [message]


def test_another_tenants_partner_is_unknown_here(world):
    client = key_client(world.a.write_key[1])
    body = {"partner": world.b.partners[0].pk, "metric": "revenue_won", "period": "FY2026-Q2", "value": "1"}
    response = client.post(LIST, body, content_type=JSON)
    assert response.status_code == 400 and response.json() == {"partner": ["There is no partner with this id."]}
    with tenant_scope(world.b.tenant):
        assert not MetricObservation.objects.filter(metric__key="revenue_won").exists()


# --- Bulk ----------------------------------------------------------------------------------------------------


def bulk_items(world_tenant, *rows_):
    return [
        {"partner": world_tenant.partners[0].pk, "metric": "revenue_won", "period": "FY2026-Q2", **r} for r in rows_
    ]


def test_bulk_all_or_nothing_answers_400_with_every_items_errors(world):
    client = key_client(world.a.write_key[1])
    items = bulk_items(
        world.a,
        {"value": "5"},
        {"value": "-5", "period": "FY2026-Q1"},
        {"metric": "nope", "value": 1, "period": "FY2026-Q3"},
    )
    response = client.post(BULK, {"observations": items}, content_type=JSON)
    assert response.status_code == 400
    body = response.json()
    assert (body["written"], body["created"], body["invalid"]) == (False, 0, 2)
    assert [r["status"] for r in body["results"]] == ["valid", "invalid", "invalid"]
    assert body["results"][1]["errors"]["value"][0].startswith("-5 is outside the plausible range")
    assert body["results"][2]["errors"] == {"metric": ["There is no metric with the key “nope”."]}
    with tenant_scope(world.a.tenant):
        assert not MetricObservation.objects.filter(metric__key="revenue_won").exists()


def test_bulk_without_atomic_records_the_valid_items_and_is_safe_to_repeat(world):
    client = key_client(world.a.write_key[1])
    items = bulk_items(
        world.a,
        {"value": "5"},
        {"value": "-5", "period": "FY2026-Q1"},
        {"value": "7", "period": "FY2026-Q1", "metric": "deals_won"},
    )
    payload = {"atomic": False, "observations": items}
    first = client.post(BULK, payload, content_type=JSON)
    assert first.status_code == 200
    assert [r["status"] for r in first.json()["results"]] == ["created", "invalid", "created"]
    again = client.post(BULK, payload, content_type=JSON)
    assert [r["status"] for r in again.json()["results"]] == ["unchanged", "invalid", "unchanged"]
    assert [r["id"] for r in again.json()["results"]] == [r["id"] for r in first.json()["results"]]


@pytest.mark.parametrize(
    "payload, field",
    [
        ({}, "observations"),
        ({"observations": []}, "observations"),
        ({"observations": "all of them"}, "observations"),
        ({"observations": [{}], "atomic": "maybe"}, "atomic"),
    ],
)
def test_a_malformed_bulk_request_answers_400(world, payload, field):
    response = key_client(world.a.write_key[1]).post(BULK, payload, content_type=JSON)
    assert response.status_code == 400 and field in response.json()


def test_bulk_items_that_are_not_objects_get_their_own_error(world):
    response = key_client(world.a.write_key[1]).post(BULK, {"observations": [1, "two"]}, content_type=JSON)
    assert response.status_code == 400
    assert response.json()["results"][0]["errors"] == {"non_field_errors": ["Each observation is an object."]}


def test_bulk_has_a_size_limit(world):
    items = bulk_items(world.a, *({"value": n} for n in range(1001)))
    response = key_client(world.a.write_key[1]).post(BULK, {"observations": items}, content_type=JSON)
    assert response.status_code == 400
    assert response.json()["observations"] == ["Send at most 1,000 observations per request."]


# --- Upload -------------------------------------------------------------------------------------------------


def csv_file(text: str) -> SimpleUploadedFile:
    return SimpleUploadedFile("values.csv", text.encode(), content_type="text/csv")


def test_an_upload_is_checked_first_and_then_written(world):
    client = session(world.a, "partner_manager")
    text = (
        "partner,metric,period,value\nAcme Partner 1,revenue_won,FY2026-Q2,100\nAcme Partner 2,win_rate,FY2026-Q2,0.2\n"
    )
    dry = client.post(UPLOAD, {"file": csv_file(text), "dry_run": "true"})
    assert dry.status_code == 200
    assert dry.json() | {"errors": []} == {
        "rows": 2, "created": 2, "unchanged": 0, "periods": ["FY2026-Q2"], "dry_run": True, "written": False,
        "errors": [],
    }  # fmt: skip
    done = client.post(UPLOAD, {"file": csv_file(text)})
    assert done.status_code == 200 and done.json()["written"] is True and done.json()["created"] == 2
    again = client.post(UPLOAD, {"file": csv_file(text)})
    assert again.json()["created"] == 0 and again.json()["unchanged"] == 2
    with tenant_scope(world.a.tenant):
        [event] = AuditEvent.objects.filter(verb__startswith="observation")
    assert (event.verb, event.changes["observations"], event.actor_label) == (
        "observations.imported",
        [None, 2],
        "partner_manager@acme.test",
    )


def test_an_upload_with_problems_answers_400_with_rows_and_writes_nothing(world):
    client = key_client(world.a.write_key[1])
    text = (
        "partner,metric,period,value\n"
        "Acme Partner 1,revenue_won,FY2026-Q2,100\n"
        "Globex Partner 1,revenue_won,FY2026-Q2,1\n"
    )
    response = client.post(UPLOAD, {"file": csv_file(text)})
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "row": 3,
            "column": "partner",
            "message": "There is no partner named “Globex Partner 1” or with that HubSpot or Salesforce id.",
        }
    ]
    with tenant_scope(world.a.tenant):
        assert not MetricObservation.objects.filter(metric__key="revenue_won").exists()


def test_an_upload_without_a_file_answers_400(world):
    response = key_client(world.a.write_key[1]).post(UPLOAD, {})
    assert response.status_code == 400 and "file" in response.json()


def test_a_file_that_is_not_utf8_gets_a_clear_message(world):
    upload = SimpleUploadedFile(
        "values.csv", "partner,metric,period,value\nAcmé,revenue_won,FY2026-Q2,1\n".encode("cp1252")
    )
    response = key_client(world.a.write_key[1]).post(UPLOAD, {"file": upload})
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"].startswith("The file is not UTF-8 text")


# --- Lists stay flat ------------------------------------------------------------------------------------------


def test_list_queries_do_not_grow_with_rows(world):
    client = key_client(world.a.read_key[1])
    client.get(LIST)  # the first call of a key records its use; measure steady state

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(LIST, {"page_size": 200, "current": "false"}).status_code == 200
        return len(ctx.captured_queries)

    def grow(count: int, start: int) -> None:
        with tenant_scope(world.a.tenant):
            metric = Metric.objects.get(key="deals_registered")
            for n in range(start, start + count):
                partner = PartnerFactory(name=f"Bulk {n:03d}", manager=world.a.users["partner_manager"])
                observation_record(
                    partner=partner, metric=metric, period="FY2026-Q2", value=n, by=world.a.users["admin"]
                )
                observation_record(
                    partner=partner, metric=metric, period="FY2026-Q2", value=n + 1, by=world.a.users["admin"]
                )

    grow(3, 0)
    few = queries()
    grow(30, 3)
    assert queries() == few


def test_a_partner_id_of_thousands_of_digits_is_an_item_error(world):
    items = [{"partner": "9" * 5000, "metric": "revenue_won", "period": "FY2026-Q2", "value": 5}]
    response = key_client(world.a.write_key[1]).post(BULK, {"observations": items}, content_type=JSON)
    assert response.status_code == 400
    assert response.json()["results"][0]["errors"] == {"partner": ["There is no partner with this id."]}
