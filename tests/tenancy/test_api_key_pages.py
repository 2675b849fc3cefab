"""The API keys page: listing, creating (secret shown once) and revoking keys."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from partnerhub.tenancy.context import tenant_scope
from partnerhub.tenancy.models import ApiKey, AuditEvent

KEYS = reverse("api_key_list")


def revoke_url(key):
    return reverse("api_key_revoke", args=[key.pk])


def keys_of(tenant):
    with tenant_scope(tenant):
        return {key.name: key for key in ApiKey.objects.all()}


def test_admin_sees_the_workspaces_keys_without_their_secrets(client, world):
    client.force_login(world.a.users["admin"])
    response = client.get(KEYS)
    assert response.status_code == 200
    assert response.context["nav"] == "api_keys"
    body = response.content.decode()
    read_key, read_plain = world.a.read_key
    assert "read" in body and "write" in body
    assert f"phk_{world.a.tenant.pk}_{read_key.prefix}_" in body
    assert read_plain not in body and world.a.write_key[1] not in body
    assert "Read only" in body and "Read and write" in body
    assert "admin@acme.test" in body
    assert world.b.read_key[0].prefix not in body


@pytest.mark.parametrize("role", ["partner_manager", "executive", "partner_admin", "partner_member"])
def test_only_admins_may_open_the_api_keys_page(client, world, role):
    client.force_login(world.a.users[role])
    assert client.get(KEYS).status_code == 403
    assert client.post(KEYS, {"name": "sneaky", "access": "read_write"}).status_code == 403
    assert client.post(revoke_url(world.a.read_key[0])).status_code == 403
    assert "sneaky" not in keys_of(world.a.tenant)
    assert keys_of(world.a.tenant)["read"].is_active


def test_creating_a_key_shows_the_secret_once_and_it_works(client, world):
    client.force_login(world.a.users["admin"])
    response = client.post(KEYS, {"name": "Salesforce sync", "access": "read_write"})
    assert response.status_code == 200
    created = response.context["created"]
    plaintext = created["plaintext"]
    assert plaintext.startswith(f"phk_{world.a.tenant.pk}_")
    assert plaintext in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    key = keys_of(world.a.tenant)["Salesforce sync"]
    assert key.can_write and key.created_by == world.a.users["admin"]
    assert plaintext not in str(key.digest)
    # Never again: not on the next page view, not in the session.
    assert plaintext not in client.get(KEYS).content.decode()
    assert plaintext not in str(dict(client.session))
    # The key authenticates against the API of its own tenant.
    api = Client(HTTP_AUTHORIZATION=f"Api-Key {plaintext}")
    assert api.get("/api/v1/partners/").status_code == 200
    with tenant_scope(world.a.tenant):
        event = AuditEvent.objects.get(verb="api_key.created", target_id=str(key.pk))
    assert event.changes == {"name": [None, "Salesforce sync"], "access": [None, "read_write"]}


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"name": "", "access": "read_only"}, "name", "Give the key a name"),
        ({"name": "   ", "access": "read_only"}, "name", "Give the key a name"),
        ({"name": "x" * 101, "access": "read_only"}, "name", "at most 100 characters"),
        ({"name": "ok", "access": "superuser"}, "access", "Choose read only or read and write."),
        ({"name": "READ", "access": "read_only"}, "name", "An active API key with this name already exists."),
    ],
)
def test_invalid_key_requests_show_the_reason(client, world, data, field, message):
    client.force_login(world.a.users["admin"])
    before = set(keys_of(world.a.tenant))
    response = client.post(KEYS, data)
    assert response.status_code == 200
    assert response.context["created"] is None
    assert any(message in error for error in response.context["form"].errors[field])
    assert set(keys_of(world.a.tenant)) == before


def test_a_name_used_by_another_tenant_is_free_here(client, world):
    client.force_login(world.a.users["admin"])
    with tenant_scope(world.b.tenant):
        assert ApiKey.objects.filter(name="write").exists()
    response = client.post(KEYS, {"name": "globex-only", "access": "read_only"})
    assert response.context["created"] is not None


def test_revoking_asks_for_confirmation_then_refuses_the_key(client, world):
    key, plaintext = world.a.read_key
    client.force_login(world.a.users["admin"])
    confirm = client.get(revoke_url(key))
    assert confirm.status_code == 200
    assert "Revoke the key" in confirm.content.decode()
    assert keys_of(world.a.tenant)["read"].is_active
    response = client.post(revoke_url(key))
    assert response.status_code == 302 and response["Location"] == KEYS
    assert not keys_of(world.a.tenant)["read"].is_active
    assert Client(HTTP_AUTHORIZATION=f"Api-Key {plaintext}").get("/api/v1/partners/").status_code == 401
    page = client.get(KEYS).content.decode()
    assert "is revoked" in page and "badge-revoked" in page
    with tenant_scope(world.a.tenant):
        assert AuditEvent.objects.filter(verb="api_key.revoked", target_id=str(key.pk)).exists()


def test_revoking_twice_explains_instead_of_failing(client, world):
    key, _ = world.a.read_key
    client.force_login(world.a.users["admin"])
    client.post(revoke_url(key))
    again = client.post(revoke_url(key))
    assert again.status_code == 200
    assert "is revoked" in again.content.decode()


def test_a_revoked_name_can_be_used_again(client, world):
    key, _ = world.a.read_key
    client.force_login(world.a.users["admin"])
    client.post(revoke_url(key))
    response = client.post(KEYS, {"name": "read", "access": "read_only"})
    assert response.context["created"] is not None


def test_another_tenants_key_ids_answer_404(client, world):
    foreign, plaintext = world.b.write_key
    client.force_login(world.a.users["admin"])
    assert client.get(revoke_url(foreign)).status_code == 404
    assert client.post(revoke_url(foreign)).status_code == 404
    assert keys_of(world.b.tenant)["write"].is_active
    assert Client(HTTP_AUTHORIZATION=f"Api-Key {plaintext}").get("/api/v1/partners/").status_code == 200


def test_an_empty_workspace_explains_what_keys_are_for(client, world):
    client.force_login(world.a.users["admin"])
    with tenant_scope(world.a.tenant):
        ApiKey.objects.all().delete()
    assert "No API keys yet" in client.get(KEYS).content.decode()
