"""The actions tests' world: tenant a's scope, and actions created through the services."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from actions.models import ActionItem
from actions.services.items import action_create
from partnerhub.tenancy.context import tenant_scope
from tests.world import TenantWorld


def today() -> datetime.date:
    return timezone.localdate()


def days(n: int) -> datetime.date:
    """The day ``n`` days from today (before it when negative)."""
    return today() + datetime.timedelta(days=n)


def new_action(tw: TenantWorld, *, partner_index: int = 0, by: str = "partner_manager", **fields) -> ActionItem:
    """An action of one of the world's partners, created by one of its people (a partner manager by default)."""
    fields.setdefault("title", "Run a joint webinar for the new product line")
    fields.setdefault("due_on", days(7))
    return action_create(partner=tw.partners[partner_index], by=tw.users[by], **fields)


def backdate(action: ActionItem, *, due_days_ago: int) -> ActionItem:
    """Arrange an action as if it had been created weeks ago, its due date now ``due_days_ago`` days past."""
    ActionItem.objects.filter(pk=action.pk).update(due_on=days(-due_days_ago))
    action.refresh_from_db()
    return action


@pytest.fixture
def a(world):
    """Tenant a of the two-tenant world, inside its scope."""
    with tenant_scope(world.a.tenant):
        yield world.a
