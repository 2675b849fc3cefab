"""The partners API: scoping by credential, API key access levels, validation, pagination."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from partnerhub.partners.models import Partner
from partnerhub.tenancy.context import tenant_scope
from partnerhub.tenancy.models import AuditEvent
from tests.factories import PartnerFactory

LIST = "/api/v1/partners/"


def detail(partner) -> str:
    return f"{LIST}{partner.pk}/"


def key_client(plaintext: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Api-Key {plaintext}")


def names(response) -> set[str]:
    return {row["name"] for row in response.json()["results"]}


def test_api_key_lists_only_its_own_tenants_partners(world):
    response = key_client(world.a.read_key[1]).get(LIST)
    assert response.status_code == 200
    assert names(response) == {"Acme Partner 1", "Acme Partner 2"}


def test_api_key_gets_404_for_another_tenants_partner(world):
    client = key_client(world.a.write_key[1])
    foreign = world.b.partners[0]
    assert client.get(detail(foreign)).status_code == 404
    assert client.patch(detail(foreign), {"region": "X"}, content_type="application/json").status_code == 404
    with tenant_scope(world.b.tenant):
        assert Partner.objects.get(pk=foreign.pk).region == "EMEA"


def test_tenant_in_the_body_is_ignored_the_key_decides(world):
    client = key_client(world.a.write_key[1])
    response = client.post(
        LIST,
        {"name": "Smuggled", "partner_type": "reseller", "tenant": world.b.tenant.pk, "tenant_id": world.b.tenant.pk},
        content_type="application/json",
    )
    assert response.status_code == 201
    with tenant_scope(world.b.tenant):
        assert not Partner.objects.filter(name="Smuggled").exists()
    with tenant_scope(world.a.tenant):
        assert Partner.objects.filter(name="Smuggled").exists()


def test_read_only_key_cannot_write(world):
    response = key_client(world.a.read_key[1]).post(
        LIST, {"name": "Nope", "partner_type": "reseller"}, content_type="application/json"
    )
    assert response.status_code == 403
    assert "read-only" in response.json()["detail"]


def test_write_key_creates_a_partner_and_the_audit_names_the_key(world):
    key, plaintext = world.a.write_key
    response = key_client(plaintext).post(
        LIST,
        {
            "name": "Nordlicht AG",
            "partner_type": "msp",
            "lifecycle_stage": "onboarding",
            "region": "EMEA — DACH",
            "product_lines": ["Cloud", "Analytics"],
            "size": "7",
            "hubspot_company_id": "998877",
            "external_ids": {"erp": "P-1"},
            "manager": "partner_manager@acme.test",
        },
        content_type="application/json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["partner_type"] == "msp" and body["manager"] == "partner_manager@acme.test"
    assert body["product_lines"] == ["Analytics", "Cloud"]
    with tenant_scope(world.a.tenant):
        event = AuditEvent.objects.get(verb="partner.created", target_id=str(body["id"]))
    assert event.actor is None and key.prefix in event.actor_label


def test_revoked_or_forged_keys_are_refused(world):
    from partnerhub.tenancy.services import api_key_revoke

    key, plaintext = world.a.read_key
    with tenant_scope(world.a.tenant):
        api_key_revoke(key=key, by=world.a.users["admin"])
    assert key_client(plaintext).get(LIST).status_code == 401
    # The key of tenant b presented as if it belonged to tenant a: looked up in a, not found.
    _, b_plain = world.b.read_key
    forged = b_plain.replace(f"phk_{world.b.tenant.pk}_", f"phk_{world.a.tenant.pk}_", 1)
    assert key_client(forged).get(LIST).status_code == 401
    assert key_client("phk_garbage").get(LIST).status_code == 401
    assert Client().get(LIST).status_code in (401, 403)


def test_key_records_last_use(world):
    key, plaintext = world.a.read_key
    assert key.last_used_at is None
    key_client(plaintext).get(LIST)
    with tenant_scope(world.a.tenant):
        key.refresh_from_db()
    assert key.last_used_at is not None


@pytest.mark.parametrize("role", ["admin", "partner_manager", "executive"])
def test_internal_session_users_see_all_partners_of_their_tenant(world, client, role):
    client.force_login(world.a.users[role])
    response = client.get(LIST)
    assert response.status_code == 200
    assert names(response) == {"Acme Partner 1", "Acme Partner 2"}
    assert client.get(detail(world.b.partners[0])).status_code == 404


@pytest.mark.parametrize("role", ["partner_admin", "partner_member"])
def test_partner_users_see_only_their_own_partner(world, client, role):
    client.force_login(world.a.users[role])
    assert names(client.get(LIST)) == {"Acme Partner 1"}
    assert client.get(detail(world.a.partners[0])).status_code == 200
    assert client.get(detail(world.a.partners[1])).status_code == 404
    assert client.get(detail(world.b.partners[0])).status_code == 404
    response = client.patch(detail(world.a.partners[0]), {"region": "X"}, content_type="application/json")
    assert response.status_code == 403


def test_executive_cannot_write_but_manager_can(world, client):
    client.force_login(world.a.users["executive"])
    payload = {"name": "Exec Co", "partner_type": "reseller"}
    assert client.post(LIST, payload, content_type="application/json").status_code == 403
    client.force_login(world.a.users["partner_manager"])
    assert client.post(LIST, payload, content_type="application/json").status_code == 201


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"partner_type": "reseller"}, "name"),
        ({"name": "X", "partner_type": "no-such-type"}, "partner_type"),
        ({"name": "X", "partner_type": "reseller", "lifecycle_stage": "sideways"}, "lifecycle_stage"),
        ({"name": "X", "partner_type": "reseller", "size": "-3"}, "size"),
        ({"name": "X", "partner_type": "reseller", "size": "lots"}, "size"),
        ({"name": "X", "partner_type": "reseller", "joined_on": "yesterday"}, "joined_on"),
        ({"name": "X", "partner_type": "reseller", "product_lines": "Cloud"}, "product_lines"),
        ({"name": "X", "partner_type": "reseller", "external_ids": ["a"]}, "external_ids"),
        ({"name": "X", "partner_type": "reseller", "manager": "partner_admin@acme.test"}, "manager"),
        ({"name": "X", "partner_type": "reseller", "manager": "admin@globex.test"}, "manager"),
        ({"name": "acme partner 1", "partner_type": "reseller"}, "name"),
        ({"name": "X" * 500, "partner_type": "reseller"}, "name"),
    ],
)
def test_bad_input_answers_400_with_the_field(world, payload, field):
    response = key_client(world.a.write_key[1]).post(LIST, payload, content_type="application/json")
    assert response.status_code == 400, response.content
    body = response.json()
    assert field in body, body


def test_partner_type_of_another_tenant_is_unknown(world):
    with tenant_scope(world.b.tenant):
        from partnerhub.partners.models import PartnerType

        PartnerType.objects.create(key="globex-only", name="Globex only")
    response = key_client(world.a.write_key[1]).post(
        LIST, {"name": "X", "partner_type": "globex-only"}, content_type="application/json"
    )
    assert response.status_code == 400 and "partner_type" in response.json()


def test_malformed_json_is_a_400(world):
    response = key_client(world.a.write_key[1]).post(LIST, "{not json", content_type="application/json")
    assert response.status_code == 400


def test_update_audits_exactly_the_changed_fields(world):
    partner = world.a.partners[0]
    response = key_client(world.a.write_key[1]).patch(
        detail(partner), {"region": "APAC", "lifecycle_stage": "mature"}, content_type="application/json"
    )
    assert response.status_code == 200
    with tenant_scope(world.a.tenant):
        event = AuditEvent.objects.filter(verb="partner.updated").get()
    assert event.changes == {"lifecycle_stage": ["growing", "mature"], "region": ["EMEA", "APAC"]}


def test_filters_and_search(world):
    client = key_client(world.a.read_key[1])
    with tenant_scope(world.a.tenant):
        PartnerFactory(name="Zeta MSP", region="APAC", lifecycle_stage="mature", hubspot_company_id="4242")
    assert names(client.get(LIST, {"region": "apac"})) == {"Zeta MSP"}
    assert names(client.get(LIST, {"stage": "mature"})) == {"Zeta MSP"}
    assert names(client.get(LIST, {"q": "4242"})) == {"Zeta MSP"}
    assert names(client.get(LIST, {"type": "reseller", "q": "acme"})) == {"Acme Partner 1", "Acme Partner 2"}
    ordered = [row["name"] for row in client.get(LIST, {"sort": "-name"}).json()["results"]]
    assert ordered == sorted(ordered, reverse=True)
    assert client.get(LIST, {"stage": "bogus"}).status_code == 400


def test_pagination_and_flat_query_count(world):
    client = key_client(world.a.read_key[1])

    def queries_for_list() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(LIST, {"page_size": 100}).status_code == 200
        return len(ctx.captured_queries)

    client.get(LIST)  # the first call of a key records its use; measure steady state
    few = queries_for_list()
    with tenant_scope(world.a.tenant):
        for n in range(40):
            PartnerFactory(name=f"Bulk {n:02d}", manager=world.a.users["partner_manager"])
    many = queries_for_list()
    assert many == few
    page = client.get(LIST, {"page_size": 10, "page": 2}).json()
    assert page["count"] == 42 and len(page["results"]) == 10 and page["previous"] and page["next"]
    assert client.get(LIST, {"page": 999}).status_code == 404


def test_throttling_answers_429_with_retry_after(world, settings):
    settings.API_THROTTLE_RATE = "3/min"
    client = key_client(world.a.read_key[1])
    statuses = [client.get(LIST).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = client.get(LIST)
    assert response.status_code == 429 and int(response["Retry-After"]) > 0
    # Budgets are per principal: another key is not affected.
    assert key_client(world.a.write_key[1]).get(LIST).status_code == 200


def test_schema_and_docs_are_served(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    spec = schema.json()
    assert "/api/v1/partners/" in spec["paths"]
    assert "ApiKey" in spec["components"]["securitySchemes"]
    docs = client.get("/api/docs/")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()
    assert b"cdn.jsdelivr" not in docs.content


def test_openapi_schema_generates_without_warnings():
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null")


@pytest.mark.parametrize(
    "presented",
    [
        "phk_99999999999999999999999_abc_def",
        "phk_0_abc_def",
        "phk_-1_abc_def",
        "phk_\u00b2_abc_def",  # a superscript two: str.isdigit() says yes, int() says no
        "phk_9223372036854775808_a_b",
    ],
)
def test_keys_naming_impossible_tenants_are_refused_not_crashed(world, presented):
    assert key_client(presented).get(LIST).status_code == 401
