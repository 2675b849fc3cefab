"""Cadence rules: which kind of review each segment of partners gets.

A rule names a partner type and a lifecycle stage (either blank for "any") and a kind of review.
For a partner, the most specific active rule that matches wins: type and stage beat type or stage
alone, which beat a rule for everyone; equally specific rules go by ``position``, then age. Tiers
are not evaluated yet, so a rule names no tier (one stored with a tier matches nobody).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from partnerhub.partners.models import LifecycleStage, PartnerType
from partnerhub.tenancy.audit import audit, diff
from partnerhub.tenancy.context import current_tenant_id
from partnerhub.tenancy.models import User
from reviews.models import CadenceRule, ReviewKind
from reviews.services.access import require_configurer, require_own

CADENCE_EDITABLE_FIELDS = ("partner_type", "lifecycle_stage", "tier", "kind", "position", "active")


def specificity(rule: CadenceRule) -> int:
    """How many segment fields a rule names: 2 (type and stage), 1, or 0 (everyone)."""
    return int(rule.partner_type_id is not None) + int(bool(rule.lifecycle_stage))


def matching_rule(
    rules: Iterable[CadenceRule], *, partner_type_id: int | None, lifecycle_stage: str
) -> CadenceRule | None:
    """The rule that decides a partner's cadence among ``rules``, or None when none matches. Pure."""
    candidates = [
        rule
        for rule in rules
        if rule.active
        and not rule.tier
        and rule.partner_type_id in (None, partner_type_id)
        and rule.lifecycle_stage in ("", lifecycle_stage)
    ]
    if not candidates:
        return None
    return min(candidates, key=lambda rule: (-specificity(rule), rule.position, rule.pk or 0))


def segment_text(rule: CadenceRule) -> str:
    kind = rule.partner_type.name if rule.partner_type_id else "every partner type"
    stage = LifecycleStage(rule.lifecycle_stage).label.lower() if rule.lifecycle_stage else "any stage"
    return f"{kind}, {stage}"


def _clean(rule: CadenceRule, fields: dict[str, Any]) -> None:
    errors: dict[str, str] = {}
    if "kind" in fields:
        if fields["kind"] not in ReviewKind.values:
            errors["kind"] = (
                "Choose the kind of review: monthly check-in, quarterly business review or biannual deep dive."
            )
        else:
            rule.kind = fields["kind"]
    if "partner_type" in fields:
        partner_type = fields["partner_type"]
        if partner_type is not None and (
            not isinstance(partner_type, PartnerType) or partner_type.tenant_id != current_tenant_id()
        ):
            errors["partner_type"] = "Choose a partner type of this workspace, or none for every type."
        else:
            rule.partner_type = partner_type
    if "lifecycle_stage" in fields:
        stage = fields["lifecycle_stage"] or ""
        if stage and stage not in LifecycleStage.values:
            labels = ", ".join(label.lower() for label in LifecycleStage.labels)
            errors["lifecycle_stage"] = f"“{stage}” is not a lifecycle stage; choose {labels}, or none for any stage."
        else:
            rule.lifecycle_stage = stage
    if "tier" in fields:
        if fields["tier"]:
            errors["tier"] = "Tiers do not choose cadences yet; leave the tier blank."
        else:
            rule.tier = ""
    if "position" in fields:
        position = fields["position"]
        if isinstance(position, bool) or not isinstance(position, int) or not 0 <= position <= 32767:
            errors["position"] = "Give the position as a whole number from 0 to 32767."
        else:
            rule.position = position
    if "active" in fields:
        if not isinstance(fields["active"], bool):
            errors["active"] = "Say whether the rule applies: true or false."
        else:
            rule.active = fields["active"]
    if errors:
        raise ValidationError(errors)


def _ensure_unique(rule: CadenceRule) -> None:
    twin = CadenceRule.objects.filter(
        partner_type_id=rule.partner_type_id, lifecycle_stage=rule.lifecycle_stage, tier=rule.tier, kind=rule.kind
    ).exclude(pk=rule.pk)
    if twin.exists():
        raise ValidationError(
            f"A rule already gives {segment_text(rule)} a {rule.get_kind_display().lower()}; change that rule instead."
        )


def _save(rule: CadenceRule, **kwargs) -> None:
    _ensure_unique(rule)
    try:
        with transaction.atomic():
            rule.save(**kwargs)
    except IntegrityError as error:  # the same rule written by someone else at the same moment
        raise ValidationError("A rule for this segment and kind of review already exists.") from error


def _snapshot(rule: CadenceRule) -> dict[str, Any]:
    return {
        "partner_type": rule.partner_type.key if rule.partner_type_id else None,
        "lifecycle_stage": rule.lifecycle_stage,
        "tier": rule.tier,
        "kind": rule.kind,
        "position": rule.position,
        "active": rule.active,
    }


@transaction.atomic
def cadence_rule_create(
    *,
    kind: Any,
    by: User,
    partner_type: PartnerType | None = None,
    lifecycle_stage: Any = "",
    tier: Any = "",
    position: Any = 0,
    active: Any = True,
) -> CadenceRule:
    """An administrator decides which kind of review a segment of partners gets."""
    require_configurer(by)
    rule = CadenceRule()
    _clean(
        rule,
        {
            "kind": kind,
            "partner_type": partner_type,
            "lifecycle_stage": lifecycle_stage,
            "tier": tier,
            "position": position,
            "active": active,
        },
    )
    _save(rule)
    audit(actor=by, verb="cadence_rule.created", target=rule, changes=diff({}, _snapshot(rule)))
    return rule


@transaction.atomic
def cadence_rule_update(*, rule: CadenceRule, by: User, **fields: Any) -> CadenceRule:
    """Change a rule's segment, kind, position or whether it applies; cycles already generated keep their reviews."""
    require_configurer(by)
    require_own(rule, "No such cadence rule.")
    unknown = set(fields) - set(CADENCE_EDITABLE_FIELDS)
    if unknown:
        raise ValidationError({name: "This field cannot be changed." for name in sorted(unknown)})
    rule = CadenceRule.objects.select_for_update().get(pk=rule.pk)
    before = _snapshot(rule)
    _clean(rule, fields)
    changes = diff(before, _snapshot(rule))
    if not changes:
        return rule
    _save(rule)
    audit(actor=by, verb="cadence_rule.updated", target=rule, changes=changes)
    return rule


@transaction.atomic
def cadence_rule_delete(*, rule: CadenceRule, by: User) -> None:
    """Remove a rule; partners it decided fall to the next most specific rule (or get no reviews)."""
    require_configurer(by)
    require_own(rule, "No such cadence rule.")
    rule = CadenceRule.objects.select_for_update().filter(pk=rule.pk).first()
    if rule is None:
        raise ValidationError("This cadence rule was already removed.")
    audit(actor=by, verb="cadence_rule.deleted", target=rule, changes=diff(_snapshot(rule), {}))
    rule.delete()
