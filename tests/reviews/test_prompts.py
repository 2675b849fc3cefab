"""Collaboration prompts: the built-in ones every workspace gets, and the workspace's own."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from partnerhub.tenancy.context import tenant_scope
from partnerhub.tenancy.models import AuditEvent, CrossTenantWrite
from reviews.models import CollaborationPrompt
from reviews.services.prompts import prompt_create, prompt_deactivate, prompt_update, prompts_ensure_defaults
from tests.factories import TenantFactory

DEFAULT_KEYS = ["responsiveness", "communication", "customer_alignment", "joint_planning"]


@pytest.mark.django_db
def test_a_new_workspace_has_the_built_in_prompts():
    tenant = TenantFactory()

    with tenant_scope(tenant):
        prompts = list(CollaborationPrompt.objects.order_by("position"))

    assert [prompt.key for prompt in prompts] == DEFAULT_KEYS
    assert [prompt.label for prompt in prompts] == [
        "Responsiveness",
        "Communication",
        "Customer alignment",
        "Joint planning",
    ]
    assert all(prompt.built_in and prompt.active for prompt in prompts)


def test_ensuring_the_built_in_prompts_again_adds_only_missing_ones_and_keeps_changes(a):
    prompt_update(prompt=CollaborationPrompt.objects.get(key="communication"), label="Talking", by=a.users["admin"])
    CollaborationPrompt.objects.filter(key="joint_planning").delete()

    assert prompts_ensure_defaults(a.tenant) == 1
    assert prompts_ensure_defaults(a.tenant) == 0

    assert CollaborationPrompt.objects.get(key="communication").label == "Talking"
    assert CollaborationPrompt.objects.filter(key__in=DEFAULT_KEYS).count() == 4


def test_prompts_are_ensured_only_in_their_own_workspace(a, world):
    with pytest.raises(CrossTenantWrite):
        prompts_ensure_defaults(world.b.tenant)


def test_an_administrator_adds_rewords_and_deactivates_a_prompt(a):
    admin = a.users["admin"]

    prompt = prompt_create(label="Executive sponsorship", help_text="Do their leaders back the plan?", by=admin)
    prompt = prompt_update(prompt=prompt, label="Executive backing", by=admin)
    prompt = prompt_deactivate(prompt=prompt, by=admin)

    assert (prompt.key, prompt.label, prompt.built_in, prompt.active, prompt.position) == (
        "executive_sponsorship",
        "Executive backing",
        False,
        False,
        4,
    )
    assert list(
        AuditEvent.objects.filter(verb__startswith="prompt.").order_by("pk").values_list("verb", "changes")
    ) == [
        ("prompt.created", {"key": [None, "executive_sponsorship"], "label": [None, "Executive sponsorship"]}),
        ("prompt.updated", {"label": ["Executive sponsorship", "Executive backing"]}),
        ("prompt.updated", {"active": [True, False]}),
    ]


def test_a_prompt_with_a_key_in_use_or_without_a_label_is_refused(a):
    admin = a.users["admin"]

    with pytest.raises(ValidationError) as refused:
        prompt_create(label="Responsiveness", by=admin)
    assert refused.value.message_dict == {
        "key": ["A prompt with the key “responsiveness” already exists; choose another label or key."]
    }

    with pytest.raises(ValidationError) as refused:
        prompt_create(label="   ", by=admin)
    assert refused.value.message_dict == {"label": ["Write the question."]}

    with pytest.raises(ValidationError) as refused:
        prompt_update(prompt=CollaborationPrompt.objects.get(key="communication"), key="talk", by=admin)
    assert refused.value.message_dict == {"key": ["This field cannot be changed."]}


@pytest.mark.parametrize("role", ["partner_manager", "executive", "partner_member"])
def test_only_administrators_configure_prompts(a, role):
    with pytest.raises(PermissionDenied):
        prompt_create(label="Trust", by=a.users[role])
