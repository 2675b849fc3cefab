"""Cadence rules: the most specific active rule decides a partner's reviews; rules are checked and audited."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404

from partnerhub.partners.models import LifecycleStage, PartnerType
from partnerhub.tenancy.context import tenant_scope
from partnerhub.tenancy.models import AuditEvent
from reviews.models import CadenceRule
from reviews.selectors import cadence_rule_for
from reviews.services.cadences import cadence_rule_create, cadence_rule_delete, cadence_rule_update
from tests.reviews.conftest import new_partner


@pytest.fixture
def admin(a):
    return a.users["admin"]


def test_the_most_specific_active_rule_decides_a_partners_reviews(a, admin):
    reseller = PartnerType.objects.get(key="reseller")
    everyone = CadenceRule.objects.get(partner_type=None, lifecycle_stage="")
    onboarding = cadence_rule_create(kind="check_in", lifecycle_stage=LifecycleStage.ONBOARDING, by=admin)
    resellers = cadence_rule_create(kind="deep_dive", partner_type=reseller, by=admin)
    onboarding_resellers = cadence_rule_create(
        kind="check_in", partner_type=reseller, lifecycle_stage=LifecycleStage.ONBOARDING, by=admin
    )
    msp = PartnerType.objects.get(key="msp")

    assert cadence_rule_for(new_partner(a, "New reseller", lifecycle_stage="onboarding")) == onboarding_resellers
    assert cadence_rule_for(new_partner(a, "Grown reseller", lifecycle_stage="mature")) == resellers
    assert cadence_rule_for(new_partner(a, "New MSP", lifecycle_stage="onboarding", partner_type=msp)) == onboarding
    assert cadence_rule_for(new_partner(a, "Grown MSP", lifecycle_stage="mature", partner_type=msp)) == everyone


def test_equally_specific_rules_go_by_position(a, admin):
    reseller = PartnerType.objects.get(key="reseller")
    by_type = cadence_rule_create(kind="deep_dive", partner_type=reseller, position=5, by=admin)
    by_stage = cadence_rule_create(kind="check_in", lifecycle_stage=LifecycleStage.GROWING, position=2, by=admin)
    partner = new_partner(a, "Growing reseller")

    assert cadence_rule_for(partner) == by_stage

    cadence_rule_update(rule=by_type, position=1, by=admin)
    assert cadence_rule_for(partner) == by_type


def test_an_inactive_rule_decides_nothing(a, admin):
    rule = CadenceRule.objects.get()
    partner = new_partner(a, "Anyone")

    cadence_rule_update(rule=rule, active=False, by=admin)

    assert cadence_rule_for(partner) is None


def test_a_second_rule_for_the_same_segment_and_kind_is_refused(a, admin):
    with pytest.raises(ValidationError) as refused:
        cadence_rule_create(kind="qbr", by=admin)

    assert refused.value.messages == [
        "A rule already gives every partner type, any stage a quarterly business review; change that rule instead."
    ]
    assert CadenceRule.objects.count() == 1


def test_rules_are_checked_field_by_field(a, admin, world):
    with tenant_scope(world.b.tenant):
        foreign_type = PartnerType.objects.get(key="msp")

    with pytest.raises(ValidationError) as refused:
        cadence_rule_create(
            kind="weekly", partner_type=foreign_type, lifecycle_stage="retired", tier="gold", position=-1, by=admin
        )

    assert refused.value.message_dict == {
        "kind": ["Choose the kind of review: monthly check-in, quarterly business review or biannual deep dive."],
        "partner_type": ["Choose a partner type of this workspace, or none for every type."],
        "lifecycle_stage": [
            "“retired” is not a lifecycle stage; choose onboarding, growing, mature, at risk, exiting, or none for "
            "any stage."
        ],
        "tier": ["Tiers do not choose cadences yet; leave the tier blank."],
        "position": ["Give the position as a whole number from 0 to 32767."],
    }


def test_rule_changes_are_audited(a, admin):
    rule = cadence_rule_create(kind="check_in", lifecycle_stage="onboarding", by=admin)
    cadence_rule_update(rule=rule, kind="deep_dive", by=admin)
    cadence_rule_update(rule=rule, kind="deep_dive", by=admin)  # no change, no event
    cadence_rule_delete(rule=rule, by=admin)

    events = list(AuditEvent.objects.filter(verb__startswith="cadence_rule.").order_by("pk"))
    assert [event.verb for event in events] == [
        "cadence_rule.created",
        "cadence_rule.created",
        "cadence_rule.updated",
        "cadence_rule.deleted",
    ]
    assert events[2].changes == {"kind": ["check_in", "deep_dive"]}
    assert not CadenceRule.objects.filter(pk=rule.pk).exists()


def test_only_administrators_change_rules(a):
    rule = CadenceRule.objects.get()
    with pytest.raises(PermissionDenied):
        cadence_rule_create(kind="check_in", lifecycle_stage="onboarding", by=a.users["partner_manager"])
    with pytest.raises(PermissionDenied):
        cadence_rule_update(rule=rule, active=False, by=a.users["executive"])
    with pytest.raises(PermissionDenied):
        cadence_rule_delete(rule=rule, by=a.users["partner_admin"])


def test_another_workspaces_rule_is_not_found(a, world):
    rule = CadenceRule.objects.get()

    with tenant_scope(world.b.tenant), pytest.raises(Http404):
        cadence_rule_update(rule=rule, active=False, by=world.b.users["admin"])
    with tenant_scope(world.b.tenant), pytest.raises(Http404):
        cadence_rule_delete(rule=rule, by=world.b.users["admin"])

    assert CadenceRule.objects.get().active
