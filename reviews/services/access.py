"""Who may act on reviews, and on which review: the checks every review service starts with.

Reviews have no capabilities of their own in the role table yet, so they follow the closest ones:
the people who edit partners (administrators, partner managers) run reviews; the people who
configure the workspace (administrators) set cadences, prompts and cycles; executives read.
A partner user acts only on their own partner's reviews, and anything else is "not found", exactly
as for a review that does not exist.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404

from partnerhub.tenancy.context import current_tenant_id
from partnerhub.tenancy.models import Membership
from partnerhub.tenancy.roles import Capability
from partnerhub.tenancy.selectors import acting_membership
from reviews.models import Review, ReviewState

NOT_FOUND = "No such review."
MAX_TEXT_CHARS = 8000


def require_reviewer(by: Any) -> Membership:
    """An internal member who runs reviews (administrators and partner managers)."""
    membership = acting_membership(by)
    if membership is None or not membership.is_internal or not membership.can(Capability.EDIT_PARTNERS):
        raise PermissionDenied("Your role does not run reviews.")
    return membership


def require_configurer(by: Any) -> Membership:
    """An internal member who configures the workspace: cadences, prompts and review cycles."""
    membership = acting_membership(by)
    if membership is None or not membership.is_internal or not membership.can(Capability.CONFIGURE_TENANT):
        raise PermissionDenied("Only administrators set up review cadences, prompts and cycles.")
    return membership


def require_own(instance: Any, message: str = NOT_FOUND) -> None:
    """Refuse a row of another tenant exactly like a missing one."""
    if instance is None or getattr(instance, "tenant_id", None) != current_tenant_id():
        raise Http404(message)


def lock_review(review: Review) -> Review:
    """The review as stored now, locked: two people changing it at once are serialized here.

    Locked alone (no joins): PostgreSQL cannot lock the nullable side of an outer join.
    """
    require_own(review)
    locked = Review.objects.select_for_update().filter(pk=review.pk).first()
    if locked is None:
        raise Http404(NOT_FOUND)
    return locked


def closed_message(review: Review) -> str:
    if review.state == ReviewState.SHARED:
        return "This review is shared with the partner and can no longer change; amend it to record a change."
    return "This review is finalized and can no longer change; amend it to record a change."


def ensure_open(review: Review) -> None:
    """Refuse any change to a finalized or shared review: an amendment is a new revision."""
    if review.is_closed:
        raise ValidationError(closed_message(review), code="closed")


def clean_text(value: Any, *, field: str, label: str, required: bool = True, limit: int = MAX_TEXT_CHARS) -> str:
    """Text as typed, trimmed; a clear error by field when it is missing or too long."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValidationError({field: f"Write the {label} as text."})
    text = value.strip()
    if required and not text:
        raise ValidationError({field: f"Write the {label}."})
    if len(text) > limit:
        raise ValidationError({field: f"Keep the {label} under {limit:,} characters ({len(text):,} now)."})
    return text
