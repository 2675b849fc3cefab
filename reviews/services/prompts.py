"""Collaboration prompts: the questions of the collaboration-health pillar, rated 1-5 in every review.

Every workspace has the built-in prompts (responsiveness, communication, customer alignment, joint
planning); administrators add their own, reword them, and deactivate those they no longer ask.
A deactivated prompt keeps the ratings it was given and is not offered in new ones.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils.text import slugify

from partnerhub.tenancy.audit import audit, diff
from partnerhub.tenancy.context import current_tenant_id
from partnerhub.tenancy.models import CrossTenantWrite, Tenant, User
from reviews.models import CollaborationPrompt
from reviews.services.access import clean_text, require_configurer, require_own

DEFAULT_PROMPTS = [
    ("responsiveness", "Responsiveness", "How quickly and reliably the partner answers us and its customers."),
    ("communication", "Communication", "How openly and clearly we keep each other informed."),
    ("customer_alignment", "Customer alignment", "How well we agree on the customers to pursue and how to serve them."),
    ("joint_planning", "Joint planning", "How much we plan pipeline, campaigns and enablement together."),
]
PROMPT_EDITABLE_FIELDS = ("label", "help_text", "position", "active")


def prompts_ensure_defaults(tenant: Tenant) -> int:
    """Give ``tenant`` the built-in prompts it does not have yet; returns how many were added.

    Runs inside ``tenant``'s scope (the caller's entry point opened it). Safe to call any number
    of times: a prompt is matched by its key, and one an administrator reworded or deactivated is
    left as it is.
    """
    if tenant.pk != current_tenant_id():
        raise CrossTenantWrite(f"Prompts of tenant {tenant.pk} ensured in tenant {current_tenant_id()}")
    keys = [key for key, _, _ in DEFAULT_PROMPTS]
    existing = set(CollaborationPrompt.objects.filter(key__in=keys).values_list("key", flat=True))
    missing = [
        CollaborationPrompt(tenant=tenant, key=key, label=label, help_text=help_text, position=position, built_in=True)
        for position, (key, label, help_text) in enumerate(DEFAULT_PROMPTS)
        if key not in existing
    ]
    if missing:
        # Two first uses at once: the unique key lets one set in, the other adds nothing.
        CollaborationPrompt.objects.bulk_create(missing, ignore_conflicts=True)
    return len(missing)


def _clean_position(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 32767:
        raise ValidationError({"position": "Give the position as a whole number from 0 to 32767."})
    return value


def _save(prompt: CollaborationPrompt) -> None:
    try:
        with transaction.atomic():
            prompt.save()
    except IntegrityError as error:
        raise ValidationError({"key": "A prompt with this key already exists; choose another label or key."}) from error


@transaction.atomic
def prompt_create(
    *, label: Any, by: User, key: Any = "", help_text: Any = "", position: Any = None
) -> CollaborationPrompt:
    """An administrator adds a collaboration prompt of the workspace's own; it is asked from the next rating on."""
    require_configurer(by)
    label = clean_text(label, field="label", label="question", limit=120)
    help_text = clean_text(help_text, field="help_text", label="help text", required=False, limit=255)
    key = slugify(key if isinstance(key, str) and key.strip() else label).replace("-", "_")[:50]
    if not key:
        raise ValidationError({"key": "Give the prompt a key of letters or digits."})
    if CollaborationPrompt.objects.filter(key=key).exists():
        raise ValidationError({"key": f"A prompt with the key “{key}” already exists; choose another label or key."})
    if position is None:
        position = (CollaborationPrompt.objects.aggregate(last=Max("position"))["last"] or 0) + 1
    prompt = CollaborationPrompt(key=key, label=label, help_text=help_text, position=_clean_position(position))
    _save(prompt)
    audit(actor=by, verb="prompt.created", target=prompt, changes=diff({}, {"key": key, "label": label}))
    return prompt


@transaction.atomic
def prompt_update(*, prompt: CollaborationPrompt, by: User, **fields: Any) -> CollaborationPrompt:
    """Reword, reorder, reactivate or deactivate a prompt; its key (and so its ratings) stays."""
    require_configurer(by)
    require_own(prompt, "No such prompt.")
    unknown = set(fields) - set(PROMPT_EDITABLE_FIELDS)
    if unknown:
        raise ValidationError({name: "This field cannot be changed." for name in sorted(unknown)})
    prompt = CollaborationPrompt.objects.select_for_update().get(pk=prompt.pk)
    before = {name: getattr(prompt, name) for name in fields}
    if "label" in fields:
        prompt.label = clean_text(fields["label"], field="label", label="question", limit=120)
    if "help_text" in fields:
        prompt.help_text = clean_text(
            fields["help_text"], field="help_text", label="help text", required=False, limit=255
        )
    if "position" in fields:
        prompt.position = _clean_position(fields["position"])
    if "active" in fields:
        if not isinstance(fields["active"], bool):
            raise ValidationError({"active": "Say whether the prompt is asked: true or false."})
        prompt.active = fields["active"]
    changes = diff(before, {name: getattr(prompt, name) for name in fields})
    if not changes:
        return prompt
    prompt.save(update_fields=sorted(changes))
    audit(actor=by, verb="prompt.updated", target=prompt, changes=changes)
    return prompt


def prompt_deactivate(*, prompt: CollaborationPrompt, by: User) -> CollaborationPrompt:
    """Stop asking a prompt; the ratings it was given stay in the reviews that have them."""
    return prompt_update(prompt=prompt, by=by, active=False)
