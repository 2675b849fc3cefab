"""The collaboration prompts API: administrators add, reword and deactivate; everyone internal and API keys read."""

from __future__ import annotations

import pytest
from django.test import Client

from partnerhub.tenancy.context import tenant_scope
from reviews.models import CollaborationPrompt
from tests.clients import key, session

PROMPTS = "/api/v1/collaboration-prompts/"
BUILT_IN = ["responsiveness", "communication", "customer_alignment", "joint_planning"]


def post(client: Client, body: dict):
    return client.post(PROMPTS, body, content_type="application/json")


def patch(client: Client, pk: int, body: dict):
    return client.patch(f"{PROMPTS}{pk}/", body, content_type="application/json")


def rows(response) -> list[dict]:
    body = response.json()
    return body["results"] if isinstance(body, dict) and "results" in body else body


def prompt_of(tw, prompt_key: str) -> CollaborationPrompt:
    with tenant_scope(tw.tenant):
        return CollaborationPrompt.objects.get(key=prompt_key)


def test_an_administrator_adds_rewords_and_deactivates_a_prompt(world):
    admin = session(world.a, "admin")

    created = post(admin, {"label": "Co-selling", "help_text": "How often we sell together."})
    assert created.status_code == 201, created.content
    body = created.json()
    assert {k: body[k] for k in ("key", "label", "help_text", "position", "built_in", "active")} == {
        "key": "co_selling",
        "label": "Co-selling",
        "help_text": "How often we sell together.",
        "position": 4,
        "built_in": False,
        "active": True,
    }

    reworded = patch(admin, body["id"], {"label": "Joint selling", "position": 0})
    assert reworded.status_code == 200, reworded.content
    assert (reworded.json()["label"], reworded.json()["position"], reworded.json()["key"]) == (
        "Joint selling",
        0,
        "co_selling",
    )

    deactivated = patch(admin, body["id"], {"active": False})
    assert deactivated.status_code == 200 and deactivated.json()["active"] is False
    assert prompt_of(world.a, "co_selling").active is False

    listed = key(world.a).get(PROMPTS)
    assert listed.status_code == 200
    # In the order asked: position, then age (it shares position 0 with the first built-in prompt).
    assert [row["key"] for row in rows(listed)] == ["responsiveness", "co_selling", *BUILT_IN[1:]]
    assert key(world.a).get(f"{PROMPTS}{body['id']}/").json()["active"] is False


def test_bad_input_answers_400_by_field_and_changes_nothing(world):
    admin = session(world.a, "admin")
    communication = prompt_of(world.a, "communication")

    blank = post(admin, {"label": "  "})
    taken = post(admin, {"label": "Communication"})
    too_far = post(admin, {"label": "Fine", "position": 40000})
    not_bool = patch(admin, communication.pk, {"active": "perhaps"})
    rekeyed = patch(admin, communication.pk, {"key": "talking"})
    reworded_blank = patch(admin, communication.pk, {"label": ""})

    assert blank.status_code == 400 and "label" in blank.json()
    assert taken.status_code == 400 and "key" in taken.json()
    assert too_far.status_code == 400 and "position" in too_far.json()
    assert not_bool.status_code == 400 and "active" in not_bool.json()
    assert rekeyed.status_code == 400 and "key" in rekeyed.json()
    assert reworded_blank.status_code == 400 and "label" in reworded_blank.json()
    with tenant_scope(world.a.tenant):
        assert CollaborationPrompt.objects.count() == 4
        communication.refresh_from_db()
        assert (communication.key, communication.label, communication.active) == (
            "communication",
            "Communication",
            True,
        )


def test_prompts_are_never_deleted_over_the_api(world):
    communication = prompt_of(world.a, "communication")

    assert session(world.a, "admin").delete(f"{PROMPTS}{communication.pk}/").status_code == 405
    assert prompt_of(world.a, "communication").active


@pytest.mark.parametrize("role", ["partner_manager", "executive"])
def test_other_internal_roles_read_prompts_but_do_not_change_them(world, role):
    client = session(world.a, role)
    communication = prompt_of(world.a, "communication")

    assert [row["key"] for row in rows(client.get(PROMPTS))] == BUILT_IN
    assert post(client, {"label": "Sneaky"}).status_code == 403
    assert patch(client, communication.pk, {"active": False}).status_code == 403
    assert prompt_of(world.a, "communication").active


def test_api_keys_read_prompts_and_never_write_them(world):
    communication = prompt_of(world.a, "communication")

    assert key(world.a, "read_key").get(PROMPTS).status_code == 200
    for which in ("read_key", "write_key"):
        refused = post(key(world.a, which), {"label": "Integration prompt"})
        assert refused.status_code == 403, which
        assert patch(key(world.a, which), communication.pk, {"active": False}).status_code == 403, which
    assert prompt_of(world.a, "communication").active
    with tenant_scope(world.a.tenant):
        assert not CollaborationPrompt.objects.filter(label="Integration prompt").exists()


@pytest.mark.parametrize("role", ["partner_admin", "partner_member"])
def test_partner_users_find_no_prompts_and_change_none(world, role):
    client = session(world.a, role)
    communication = prompt_of(world.a, "communication")

    assert rows(client.get(PROMPTS)) == []
    assert client.get(f"{PROMPTS}{communication.pk}/").status_code == 404
    assert post(client, {"label": "Partner prompt"}).status_code == 403
    assert patch(client, communication.pk, {"active": False}).status_code == 404
    assert prompt_of(world.a, "communication").active


def test_another_tenants_prompt_is_not_found(world):
    foreign = prompt_of(world.b, "communication")
    admin = session(world.a, "admin")

    assert admin.get(f"{PROMPTS}{foreign.pk}/").status_code == 404
    assert patch(admin, foreign.pk, {"label": "Taken over", "active": False}).status_code == 404
    assert foreign.pk not in {row["id"] for row in rows(admin.get(PROMPTS))}
    assert key(world.a).get(f"{PROMPTS}{foreign.pk}/").status_code == 404

    foreign_now = prompt_of(world.b, "communication")
    assert (foreign_now.label, foreign_now.active) == ("Communication", True)
