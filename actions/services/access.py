"""Who may act on action items and plans, and who may own or lead them.

Internal people (administrators, partner managers, executives) see and change every action of the
workspace. A partner's own people see, update, comment on and report progress of their partner's
actions only; another partner's action, or another workspace's, is "not found", exactly like one
that does not exist, so an id reveals nothing. Creating, cancelling and escalating actions, and
every write to remediation plans, are the program's (internal people's) alone.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404

from partnerhub.partners.models import Partner
from partnerhub.tenancy.context import current_tenant_id
from partnerhub.tenancy.models import Membership, User
from partnerhub.tenancy.roles import INTERNAL_ROLES, PARTNER_ROLES
from partnerhub.tenancy.selectors import acting_membership

NO_SUCH_ACTION = "No such action."
NO_SUCH_PLAN = "No such remediation plan."
NOT_A_MEMBER = "You are not a member of this workspace."


def require_member(by: Any) -> Membership:
    membership = acting_membership(by)
    if membership is None:
        raise PermissionDenied(NOT_A_MEMBER)
    return membership


def require_internal(by: Any, message: str) -> Membership:
    """The membership of one of the program's people; ``message`` says what partner users cannot do."""
    membership = require_member(by)
    if not membership.is_internal:
        raise PermissionDenied(message)
    return membership


def ensure_sees_partner(membership: Membership, partner_id: int, *, missing: str = NO_SUCH_ACTION) -> None:
    """A partner user sees their own partner only: anything else answers as if it did not exist."""
    if membership.is_partner_user and membership.partner_id != partner_id:
        raise Http404(missing)


def ensure_in_workspace(row: Any, model: type, *, missing: str) -> None:
    """Another workspace's row (or something that is not a row of ``model``) is "not found"."""
    if not isinstance(row, model) or row.pk is None or row.tenant_id != current_tenant_id():
        raise Http404(missing)


def eligible_people(partner: Partner) -> Q:
    """Memberships whose person may own an action of ``partner`` (or lead its plan): the program's
    people, or the partner's own users."""
    return Q(role__in=sorted(INTERNAL_ROLES)) | Q(role__in=sorted(PARTNER_ROLES), partner_id=partner.pk)


def is_eligible_person(user: Any, partner: Partner) -> bool:
    """An active person of this workspace who is internal or one of ``partner``'s users."""
    if not isinstance(user, User) or user.pk is None or not user.is_active:
        return False
    return Membership.objects.filter(eligible_people(partner), user=user).exists()
