"""Idempotency keys on bulk pushes: replays, content that differs, keys per principal and tenant, requests in flight."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory

from partnerhub.integrations.idempotency import content_hash, idempotent
from partnerhub.integrations.models import IdempotentRequest
from partnerhub.integrations.source_models import Deal
from partnerhub.integrations.tasks import idempotent_requests_expire_fanout_task
from partnerhub.partners.models import Partner
from partnerhub.tenancy.api.viewsets import TenantViewSet
from partnerhub.tenancy.context import tenant_scope
from partnerhub.tenancy.models import AuditEvent
from partnerhub.tenancy.roles import Capability
from scorecards.models import MetricObservation
from tests.factories import PartnerFactory

DEALS = "/api/v1/deals/bulk/"
OBSERVATIONS = "/api/v1/observations/bulk/"
JSON = "application/json"


def key_client(plaintext: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Api-Key {plaintext}")


def deal(external_id: str, partner: int, **fields) -> dict:
    return {
        "external_id": external_id,
        "partner": partner,
        "amount": "1000.00",
        "currency": "USD",
        "closed": True,
        "won": True,
        "created_on": "2026-07-02",
        "close_date": "2026-08-14",
        **fields,
    }


def post(client: Client, url: str, body, key: str | None = None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(url, data, content_type=JSON, **headers)


def rows(world_tenant) -> dict[str, int]:
    """Everything a push could write, counted."""
    with tenant_scope(world_tenant.tenant):
        return {
            "deals": Deal.objects.count(),
            "observations": MetricObservation.objects.count(),
            "events": AuditEvent.objects.count(),
            "keys": IdempotentRequest.objects.count(),
        }


@pytest.fixture
def batch(world):
    first, second = world.a.partners
    return {"deals": [deal("D-1", first.pk), deal("D-2", second.pk, amount="250"), deal("D-3", first.pk, won=False)]}


# --- Replays ----------------------------------------------------------------------------------------------


def test_a_repeat_with_the_same_key_answers_the_first_answer_and_writes_nothing(world, batch):
    client = key_client(world.a.write_key[1])
    first = post(client, DEALS, batch, key="push-0001")
    assert first.status_code == 200 and "Idempotent-Replayed" not in first
    after_first = rows(world.a)

    again = post(client, DEALS, batch, key="push-0001")

    assert again.status_code == 200
    assert again["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    assert again.json()["results"][0]["status"] == "created"  # the first answer, not "unchanged"
    assert rows(world.a) == after_first
    with tenant_scope(world.a.tenant):
        stored = IdempotentRequest.objects.get()
    assert (stored.key, stored.endpoint, stored.response_status) == ("push-0001", "POST /api/v1/deals/bulk/", 200)
    assert stored.principal == f"key:{world.a.write_key[0].pk}" and stored.completed_at is not None


def test_the_first_pushs_derived_values_name_its_key(world, batch):
    post(key_client(world.a.write_key[1]), DEALS, batch, key="push-0002")
    with tenant_scope(world.a.tenant):
        refs = set(MetricObservation.objects.filter(source="derived").values_list("source_ref", flat=True))
    assert refs == {"api:push-0002"}


def test_a_refused_atomic_batch_is_replayed_as_refused(world, batch):
    client = key_client(world.a.write_key[1])
    batch["deals"][1]["amount"] = "lots"
    first = post(client, DEALS, batch, key="push-0003")
    assert first.status_code == 400
    again = post(client, DEALS, batch, key="push-0003")
    assert (again.status_code, again["Idempotent-Replayed"], again.content) == (400, "true", first.content)
    assert rows(world.a)["deals"] == 0


def test_the_same_content_in_another_key_order_or_spacing_is_the_same_request(world, batch):
    client = key_client(world.a.write_key[1])
    first = post(client, DEALS, batch, key="push-0004")
    reordered = {"deals": [dict(reversed(list(item.items()))) for item in batch["deals"]]}
    text = json.dumps(reordered, indent=4)
    again = post(client, DEALS, text, key="push-0004")
    assert again["Idempotent-Replayed"] == "true" and again.content == first.content


def test_the_same_key_with_other_content_answers_422_and_writes_nothing(world, batch):
    client = key_client(world.a.write_key[1])
    post(client, DEALS, batch, key="push-0005")
    before = rows(world.a)
    batch["deals"][0]["amount"] = "2000.00"

    response = post(client, DEALS, batch, key="push-0005")

    assert response.status_code == 422
    assert response.json() == {
        "detail": "This Idempotency-Key was used with different content; send a new key with each new request, "
        "or the same content to get the first answer again."
    }
    assert "Idempotent-Replayed" not in response
    assert rows(world.a) == before
    with tenant_scope(world.a.tenant):
        assert Deal.objects.get(external_id="D-1").amount == 1000


def test_the_same_key_on_another_endpoint_answers_422(world, batch):
    client = key_client(world.a.write_key[1])
    post(client, DEALS, batch, key="push-0006")
    observations = {"observations": [{"partner": world.a.partners[0].pk, "metric": "revenue_won",
                                      "period": "FY2026-Q2", "value": "5"}]}  # fmt: skip
    response = post(client, OBSERVATIONS, observations, key="push-0006")
    assert response.status_code == 422
    assert response.json()["detail"].startswith("This Idempotency-Key was used for POST /api/v1/deals/bulk/;")


def test_without_a_key_every_request_is_answered_afresh(world, batch):
    client = key_client(world.a.write_key[1])
    post(client, DEALS, batch)
    again = post(client, DEALS, batch)
    assert [row["status"] for row in again.json()["results"]] == ["unchanged"] * 3
    assert "Idempotent-Replayed" not in again
    assert rows(world.a)["keys"] == 0


# --- Whose key ---------------------------------------------------------------------------------------------


def test_keys_belong_to_one_principal(world, batch):
    post(key_client(world.a.write_key[1]), DEALS, batch, key="shared-key")
    admin = Client()
    admin.force_login(world.a.users["admin"])
    batch["deals"].append(deal("D-4", world.a.partners[0].pk))

    response = post(admin, DEALS, batch, key="shared-key")

    assert response.status_code == 200 and "Idempotent-Replayed" not in response
    assert [row["status"] for row in response.json()["results"]] == ["unchanged"] * 3 + ["created"]
    with tenant_scope(world.a.tenant):
        principals = set(IdempotentRequest.objects.values_list("principal", flat=True))
    assert principals == {f"key:{world.a.write_key[0].pk}", f"user:{world.a.users['admin'].pk}"}


def test_keys_belong_to_one_tenant(world, batch):
    post(key_client(world.a.write_key[1]), DEALS, batch, key="shared-key")
    theirs = {"deals": [deal("D-1", world.b.partners[0].pk)]}

    response = post(key_client(world.b.write_key[1]), DEALS, theirs, key="shared-key")

    assert response.status_code == 200 and "Idempotent-Replayed" not in response
    assert response.json()["results"][0]["status"] == "created"
    with tenant_scope(world.b.tenant):
        assert IdempotentRequest.objects.get().key == "shared-key"
        assert Deal.objects.filter(external_id="D-1", partner=world.b.partners[0]).exists()
    with tenant_scope(world.a.tenant):
        assert IdempotentRequest.objects.count() == 1


# --- Requests in flight, abandoned, expired -----------------------------------------------------------------


def test_a_request_still_in_flight_with_the_key_answers_409_and_writes_nothing(world, batch):
    with tenant_scope(world.a.tenant):
        IdempotentRequest.objects.create(
            principal=f"key:{world.a.write_key[0].pk}",
            key="push-0007",
            endpoint="POST /api/v1/deals/bulk/",
            request_hash=content_hash(batch),
        )
    before = rows(world.a)

    response = post(key_client(world.a.write_key[1]), DEALS, batch, key="push-0007")

    assert response.status_code == 409
    assert response["Retry-After"] == "1"
    assert response.json()["detail"].startswith("A request with this Idempotency-Key is still being processed")
    assert rows(world.a) == before


def test_a_request_abandoned_in_flight_hands_its_key_to_the_next(world, batch):
    with tenant_scope(world.a.tenant):
        IdempotentRequest.objects.create(
            principal=f"key:{world.a.write_key[0].pk}",
            key="push-0008",
            endpoint="POST /api/v1/deals/bulk/",
            request_hash=content_hash(batch),
            created_at=timezone.now() - timedelta(minutes=11),
        )
    response = post(key_client(world.a.write_key[1]), DEALS, batch, key="push-0008")
    assert response.status_code == 200 and response.json()["created"] == 3
    with tenant_scope(world.a.tenant):
        assert IdempotentRequest.objects.get(key="push-0008").response_status == 200


def test_keys_are_kept_24_hours_and_then_forgotten_by_the_hourly_task(world, batch):
    client = key_client(world.a.write_key[1])
    post(client, DEALS, batch, key="old-key")
    post(client, DEALS, batch, key="new-key")
    post(key_client(world.b.write_key[1]), DEALS, {"deals": [deal("D-1", world.b.partners[0].pk)]}, key="old-key")
    day_ago = timezone.now() - timedelta(hours=24, minutes=1)
    for tenant in (world.a.tenant, world.b.tenant):
        with tenant_scope(tenant):
            IdempotentRequest.objects.filter(key="old-key").update(created_at=day_ago)

    # Before the task has run, an expired key already counts as new.
    batch["deals"][0]["amount"] = "1500.00"
    fresh = post(client, DEALS, batch, key="old-key")
    assert "Idempotent-Replayed" not in fresh and fresh.json()["updated"] == 1
    with tenant_scope(world.a.tenant):
        IdempotentRequest.objects.filter(key="old-key").update(created_at=day_ago)

    assert idempotent_requests_expire_fanout_task.delay().get() == 2

    with tenant_scope(world.a.tenant):
        assert list(IdempotentRequest.objects.values_list("key", flat=True)) == ["new-key"]
    with tenant_scope(world.b.tenant):
        assert not IdempotentRequest.objects.exists()


# --- Keys and answers that are not kept ----------------------------------------------------------------------


@pytest.mark.parametrize("key", ["", "x" * 201, "schlüssel", "tab\there"])
def test_a_key_that_is_not_1_to_200_printable_ascii_characters_answers_400(world, batch, key):
    response = post(key_client(world.a.write_key[1]), DEALS, batch, key=key)
    assert response.status_code == 400
    assert response.json() == {
        "detail": "The Idempotency-Key header must be 1 to 200 printable ASCII characters, e.g. a UUID."
    }
    assert rows(world.a)["deals"] == rows(world.a)["keys"] == 0


def test_a_key_of_200_characters_works_and_its_derived_values_carry_a_digest(world, batch):
    key = "k" * 200
    response = post(key_client(world.a.write_key[1]), DEALS, batch, key=key)
    assert response.status_code == 200
    with tenant_scope(world.a.tenant):
        refs = set(MetricObservation.objects.filter(source="derived").values_list("source_ref", flat=True))
    [ref] = refs
    assert ref.startswith("api:sha256:") and len(ref) <= 200


def test_malformed_json_with_a_key_answers_400_and_keeps_nothing(world):
    client = key_client(world.a.write_key[1])
    response = post(client, DEALS, b'{"deals": [', key="push-0009")
    assert response.status_code == 400
    assert rows(world.a)["keys"] == 0


def test_a_refused_principal_never_takes_a_key(world, batch):
    response = post(key_client(world.a.read_key[1]), DEALS, batch, key="push-0010")
    assert response.status_code == 403
    assert rows(world.a)["keys"] == 0


# --- Observations take keys too ---------------------------------------------------------------------------------


def test_observations_bulk_replays_by_key(world):
    client = key_client(world.a.write_key[1])
    body = {
        "observations": [
            {"partner": world.a.partners[0].pk, "metric": "revenue_won", "period": "FY2026-Q2", "value": "5"},
            {"partner": world.a.partners[1].pk, "metric": "revenue_won", "period": "FY2026-Q2", "value": "7"},
        ]
    }
    first = post(client, OBSERVATIONS, body, key="obs-0001")
    assert first.status_code == 200 and first.json()["created"] == 2
    before = rows(world.a)
    again = post(client, OBSERVATIONS, body, key="obs-0001")
    assert (again["Idempotent-Replayed"], again.content) == ("true", first.content)
    assert rows(world.a) == before
    body["observations"][0]["value"] = "6"
    assert post(client, OBSERVATIONS, body, key="obs-0001").status_code == 422
    assert rows(world.a) == before


# --- Any action can take keys: answers that are not kept leave nothing behind -------------------------------


class KeyedProbeViewSet(mixins.ListModelMixin, TenantViewSet):
    """A write action per kind of answer: each adds a partner first, then answers as its name says."""

    model = Deal
    write_capability = Capability.EDIT_PARTNERS

    def _write(self, request):
        PartnerFactory(name=f"Probe {request.data['n']}")

    @action(detail=False, methods=["post"])
    @idempotent
    def created(self, request):
        self._write(request)
        return Response({"made": request.data["n"]}, status=201)

    @action(detail=False, methods=["post"])
    @idempotent
    def unavailable(self, request):
        self._write(request)
        return Response({"detail": "Try later."}, status=503)

    @action(detail=False, methods=["post"])
    @idempotent
    def forbidden(self, request):
        self._write(request)
        return Response({"detail": "No."}, status=403)

    @action(detail=False, methods=["post"])
    @idempotent
    def breaks(self, request):
        self._write(request)
        raise RuntimeError("the disk is full")


def call(world_tenant, name: str, n: int, key: str):
    view = KeyedProbeViewSet.as_view({"post": name})
    request = APIRequestFactory().post(
        f"/probe/{name}/", {"n": n}, format="json",
        HTTP_AUTHORIZATION=f"Api-Key {world_tenant.write_key[1]}", HTTP_IDEMPOTENCY_KEY=key,
    )  # fmt: skip
    with tenant_scope(None):
        response = view(request)
        return response.render() if hasattr(response, "render") else response


def probes(world_tenant) -> list[str]:
    with tenant_scope(world_tenant.tenant):
        return sorted(Partner.objects.filter(name__startswith="Probe").values_list("name", flat=True))


def test_any_action_keeps_its_success_and_replays_it(world):
    first = call(world.a, "created", 1, "probe-1")
    again = call(world.a, "created", 1, "probe-1")
    assert (first.status_code, again.status_code, again["Idempotent-Replayed"]) == (201, 201, "true")
    assert again.content == first.content == b'{"made":1}'
    assert probes(world.a) == ["Probe 1"]


@pytest.mark.parametrize("name, code", [("unavailable", 503), ("forbidden", 403)])
def test_answers_that_are_not_kept_roll_back_and_free_the_key(world, name, code):
    assert call(world.a, name, 1, "probe-2").status_code == code
    assert probes(world.a) == []
    assert rows(world.a)["keys"] == 0
    again = call(world.a, name, 1, "probe-2")
    assert again.status_code == code and "Idempotent-Replayed" not in again


def test_an_action_that_breaks_keeps_nothing_and_frees_the_key(world):
    with pytest.raises(RuntimeError):
        call(world.a, "breaks", 1, "probe-3")
    assert probes(world.a) == []
    assert rows(world.a)["keys"] == 0
    assert call(world.a, "created", 1, "probe-3").status_code == 201
