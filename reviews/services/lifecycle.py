"""A review's life: scheduled -> preparing -> in meeting -> finalized -> shared, and amendments.

Moving to preparing freezes the pre-read (once: a review sent back to scheduled and prepared
again keeps the snapshot it had, so what was read before the meeting never changes). Finalizing
records who and when; sharing emails the partner's people once the transaction commits. A finalized
or shared review never changes again: ``review_amend`` starts a new revision from it, in its
meeting, and the revision it amends stays exactly as it was. A review of a closed cycle does not
start (preparing, or its meeting); finalizing, sharing and amending still work there.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from partnerhub.tenancy.audit import audit
from partnerhub.tenancy.context import current_tenant_id
from partnerhub.tenancy.emails import Email, send_on_commit, subject
from partnerhub.tenancy.models import Membership, Tenant, User
from partnerhub.tenancy.roles import PARTNER_ROLES
from reviews.models import (
    CLOSED_STATES,
    REVIEW_TRANSITIONS,
    CollaborationRating,
    CycleStatus,
    DevelopmentCommitment,
    MeetingNote,
    PartnerVoice,
    Review,
    ReviewCycle,
    ReviewDecision,
    ReviewState,
)
from reviews.preread import build_pre_read
from reviews.services.access import clean_text, lock_review, require_reviewer

STARTING = (ReviewState.PREPARING, ReviewState.IN_MEETING)


def _label(state: str) -> str:
    return ReviewState(state).label.lower()


def transition_refusal(current: str, to: str) -> str:
    """Why a review in ``current`` cannot move to ``to``, in the words a manager reads."""
    if to == current:
        return f"This review is already {_label(current)}."
    if current == ReviewState.SHARED and to == ReviewState.FINALIZED:
        return "A shared review cannot be taken back from the partner; amend it instead."
    if current in CLOSED_STATES:
        closed = "finalized" if current == ReviewState.FINALIZED else "shared"
        return f"A {closed} review cannot go back to {_label(to)}; amend it instead."
    if current == ReviewState.IN_MEETING:
        if to == ReviewState.SHARED:
            return "Finalize the review before sharing it with the partner."
        return f"The meeting has started; the review cannot go back to {_label(to)}. Finalize it when the meeting ends."
    if to == ReviewState.IN_MEETING:
        return "Prepare the review first: moving it to preparing freezes the pre-read the meeting starts from."
    if to == ReviewState.FINALIZED:
        return "The review has not been held yet: start its meeting before finalizing it."
    return "Only a finalized review is shared with the partner: hold the meeting and finalize it first."


def _ensure_may_move(review: Review, to: Any) -> ReviewState:
    if to not in ReviewState.values:
        raise ValidationError({"to": f"“{to}” is not a state of a review."})
    to = ReviewState(to)
    if to not in REVIEW_TRANSITIONS[review.state]:
        raise ValidationError(transition_refusal(review.state, to), code="illegal_transition")
    if to in STARTING:
        # The cycle is locked (without blocking inserts of reviews into it) so that closing it, which
        # locks it too, waits for this review to start, or this review sees the cycle closed.
        locked = ReviewCycle.objects.select_for_update(no_key=True).filter(pk=review.cycle_id)
        cycle = locked.values("name", "status").first()
        if cycle is not None and cycle["status"] == CycleStatus.CLOSED:
            raise ValidationError(
                f"“{cycle['name']}” is closed: its reviews no longer start. Reopen the cycle to hold this review.",
                code="cycle_closed",
            )
    if Review.objects.filter(amends=review).exists():
        # Only closed revisions are amended, so this is a finalized one asked to be shared.
        raise ValidationError("This revision has been amended; share the latest revision instead.", code="superseded")
    return to


@transaction.atomic
def review_transition(*, review: Review, to: Any, by: User) -> Review:
    """Move a review to its next state, with what that state records; anything else is refused with the reason."""
    require_reviewer(by)
    review = lock_review(review)
    before = review.state
    to = _ensure_may_move(review, to)
    now = timezone.now()
    fields = ["state", "updated_at"]
    if to == ReviewState.PREPARING:
        review.started_at = review.started_at or now
        fields.append("started_at")
        if review.pre_read_frozen_at is None:
            tenant = Tenant.objects.get(pk=current_tenant_id())
            review.pre_read = build_pre_read(
                review, start_month=tenant.fiscal_year_start_month, today=timezone.localdate()
            )
            review.pre_read_frozen_at = now
            fields += ["pre_read", "pre_read_frozen_at"]
    elif to == ReviewState.IN_MEETING:
        review.meeting_started_at = now
        fields.append("meeting_started_at")
    elif to == ReviewState.FINALIZED:
        review.finalized_at = now
        review.finalized_by = by
        fields += ["finalized_at", "finalized_by"]
    elif to == ReviewState.SHARED:
        review.shared_at = now
        fields.append("shared_at")
    review.state = to
    review.updated_at = now
    review.save(update_fields=fields)
    audit(actor=by, verb=f"review.{to.value}", target=review, changes={"state": [before, to.value]})
    if to == ReviewState.SHARED:
        _email_partner_on_commit(review)
    return review


# --- Sharing with the partner ----------------------------------------------------------------------------


def _portal_url() -> str:
    try:
        path = reverse("portal_home")
    except NoReverseMatch:  # pragma: no cover - the portal is always routed in the project
        path = "/"
    return settings.SITE_URL.rstrip("/") + path


def _email_partner_on_commit(review: Review) -> None:
    review = Review.objects.select_related("partner", "cycle", "tenant").get(pk=review.pk)
    recipients = sorted(
        {
            email
            for email in Membership.objects.filter(
                partner_id=review.partner_id, role__in=PARTNER_ROLES, user__is_active=True
            ).values_list("user__email", flat=True)
            if email
        }
    )
    if not recipients:
        return
    context = {"review": review, "partner": review.partner, "vendor": review.tenant, "portal_url": _portal_url()}
    title = subject(f"Your {review.get_kind_display().lower()} for {review.period} with {review.tenant.name} is ready")
    body = render_to_string("reviews/email/shared.txt", context)
    # One message per person: partner users never see each other's addresses.
    send_on_commit(Email(title, body, (recipient,)) for recipient in recipients)


# --- Amendments ---------------------------------------------------------------------------------------------


def _copy(model, rows, review: Review, **overrides) -> None:
    copies = []
    for row in rows:
        row.pk = None
        row.id = None
        row.review = review
        for name, value in overrides.items():
            setattr(row, name, value)
        copies.append(row)
    if copies:
        model.objects.bulk_create(copies)


@transaction.atomic
def review_amend(*, review: Review, reason: Any, by: User) -> Review:
    """Start revision n+1 of a finalized or shared review, in its meeting, with everything it held.

    The ratings, commitments, notes, decisions, partner voice, summary and frozen pre-read are
    copied; the amended revision stays finalized (or shared) exactly as it was, and the partner
    keeps seeing it until the new revision is shared.
    """
    require_reviewer(by)
    old = lock_review(review)
    reason = clean_text(reason, field="reason", label="reason for the amendment", limit=4000)
    if old.state not in CLOSED_STATES:
        raise ValidationError(
            "Only a finalized or shared review is amended; change this one directly while it is open.", code="open"
        )
    newer = Review.objects.filter(amends=old).values_list("revision", flat=True).first()
    if newer is not None:
        raise ValidationError(
            f"Revision {newer} already amends this review; amend the latest revision.", code="amended"
        )
    now = timezone.now()
    amendment = Review(
        cycle_id=old.cycle_id,
        partner_id=old.partner_id,
        manager_id=old.manager_id,
        kind=old.kind,
        period=old.period,
        track=old.track,
        priority=old.priority,
        priority_reasons=old.priority_reasons,
        state=ReviewState.IN_MEETING,
        due_on=old.due_on,
        meeting_at=old.meeting_at,
        revision=old.revision + 1,
        amends=old,
        amendment_reason=reason,
        pre_read=old.pre_read,
        pre_read_frozen_at=old.pre_read_frozen_at,
        summary=old.summary,
        started_at=old.started_at,
        meeting_started_at=now,
        created_at=now,
        updated_at=now,
    )
    try:
        with transaction.atomic():
            amendment.save()
    except IntegrityError as error:  # amended by someone else at the same moment
        raise ValidationError("This review was just amended by someone else; open the latest revision.") from error
    _copy(CollaborationRating, CollaborationRating.objects.filter(review=old).order_by("pk"), amendment)
    _copy(DevelopmentCommitment, DevelopmentCommitment.objects.filter(review=old).order_by("pk"), amendment)
    _copy(MeetingNote, MeetingNote.objects.filter(review=old).order_by("pk"), amendment)
    _copy(ReviewDecision, ReviewDecision.objects.filter(review=old).order_by("pk"), amendment)
    _copy(PartnerVoice, PartnerVoice.objects.filter(review=old), amendment)
    audit(
        actor=by,
        verb="review.amended",
        target=amendment,
        changes={"revision": [old.revision, amendment.revision], "reason": [None, reason]},
    )
    return amendment
