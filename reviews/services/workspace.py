"""The review workspace: collaboration ratings, commitments, notes, decisions, the summary, the partner's voice.

Every write locks the review and is refused once it is finalized or shared (amend it instead),
with the reason; each writes an audit event. The internal people who run reviews write
everything but the partner's voice, which only the partner's own people submit, before the
meeting starts. To anyone else the review does not exist.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.http import Http404
from django.utils import timezone

from actions.models import ActionItem
from partnerhub.tenancy.audit import audit
from partnerhub.tenancy.context import current_tenant_id
from partnerhub.tenancy.models import Membership, User
from partnerhub.tenancy.selectors import acting_membership
from reviews.models import (
    CollaborationPrompt,
    CollaborationRating,
    CommitmentParty,
    CycleStatus,
    DevelopmentCommitment,
    MeetingNote,
    NoteVisibility,
    PartnerVoice,
    Review,
    ReviewCycle,
    ReviewDecision,
    ReviewState,
)
from reviews.services.access import (
    NOT_FOUND,
    clean_text,
    ensure_open,
    lock_review,
    require_own,
    require_reviewer,
)

VOICE_FIELDS = ("wins", "lessons_learned", "needs", "asks", "forecast", "risks")
VOICE_LABELS = {
    "wins": "wins",
    "lessons_learned": "lessons learned",
    "needs": "needs",
    "asks": "asks",
    "forecast": "forecast",
    "risks": "risks",
}
VOICE_OPEN_STATES = (ReviewState.SCHEDULED, ReviewState.PREPARING)
VOICE_CLOSED = (
    "The review meeting has started, so the partner's input for it is closed; tell your partner manager anything new."
)
MAX_SHORT_TEXT = 4000


def _open_review(review: Review, by: User) -> Review:
    require_reviewer(by)
    review = lock_review(review)
    ensure_open(review)
    return review


def _touch(review: Review) -> None:
    review.updated_at = timezone.now()
    review.save(update_fields=["updated_at"])


def _clean_score(score: Any) -> int:
    if isinstance(score, str) and score.strip().isdigit():
        score = int(score.strip())
    if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
        raise ValidationError({"score": "Rate from 1 (poor) to 5 (excellent), in whole numbers."})
    return score


@transaction.atomic
def rating_set(
    *, review: Review, prompt: CollaborationPrompt, score: Any, by: User, comment: Any = ""
) -> CollaborationRating:
    """Rate one collaboration prompt 1-5 in a review (rating it again replaces the rating)."""
    review = _open_review(review, by)
    require_own(prompt, "No such prompt.")
    prompt = CollaborationPrompt.objects.filter(pk=prompt.pk).first()
    if prompt is None:
        raise Http404("No such prompt.")
    if not prompt.active:
        raise ValidationError({"prompt": f"“{prompt.label}” is no longer asked; rate the prompts in use."})
    score = _clean_score(score)
    comment = clean_text(comment, field="comment", label="comment", required=False, limit=MAX_SHORT_TEXT)
    rating = CollaborationRating.objects.filter(review=review, prompt=prompt).first()
    before = (rating.score, rating.comment) if rating else (None, None)
    if rating is None:
        rating = CollaborationRating(review=review, prompt=prompt)
    rating.score, rating.comment, rating.rated_by, rating.rated_at = score, comment, by, timezone.now()
    try:
        with transaction.atomic():
            rating.save()
    except IntegrityError as error:  # rated by someone else at the same moment
        raise ValidationError({"prompt": "This prompt was just rated by someone else; reload to see it."}) from error
    _touch(review)
    audit(
        actor=by,
        verb="review.rating_set",
        target=review,
        changes={"prompt": [None, prompt.key], "score": [before[0], score], "comment": [before[1], comment]},
    )
    return rating


def _clean_day(value: Any, field: str) -> datetime.date | None:
    if value in (None, ""):
        return None
    if not isinstance(value, datetime.date) or isinstance(value, datetime.datetime):
        raise ValidationError({field: "Give a date (a day, without a time)."})
    return value


@transaction.atomic
def commitment_add(
    *,
    review: Review,
    party: Any,
    text: Any,
    by: User,
    due_on: datetime.date | None = None,
    action_item: ActionItem | None = None,
) -> DevelopmentCommitment:
    """Record a development commitment made in the review, by us or by the partner."""
    review = _open_review(review, by)
    if party not in CommitmentParty.values:
        raise ValidationError({"party": "Say who commits: we (vendor) or the partner."})
    text = clean_text(text, field="text", label="commitment", limit=MAX_SHORT_TEXT)
    due_on = _clean_day(due_on, "due_on")
    if action_item is not None and (
        action_item.tenant_id != current_tenant_id() or action_item.partner_id != review.partner_id
    ):
        raise ValidationError({"action_item": "Choose an action item of this partner."})
    commitment = DevelopmentCommitment.objects.create(
        review=review, party=party, text=text, due_on=due_on, action_item=action_item, created_by=by
    )
    _touch(review)
    audit(
        actor=by,
        verb="review.commitment_added",
        target=review,
        changes={"party": [None, party], "text": [None, text], "due_on": [None, due_on and due_on.isoformat()]},
    )
    return commitment


@transaction.atomic
def note_add(*, review: Review, body: Any, by: User, visibility: Any = NoteVisibility.INTERNAL) -> MeetingNote:
    """Take a note in the review: internal (never shown to the partner) or shared with the partner."""
    review = _open_review(review, by)
    if visibility not in NoteVisibility.values:
        raise ValidationError({"visibility": "Say who reads the note: internal only, or shared with the partner."})
    body = clean_text(body, field="body", label="note")
    note = MeetingNote.objects.create(review=review, body=body, visibility=visibility, author=by)
    _touch(review)
    audit(
        actor=by,
        verb="review.note_added",
        target=review,
        changes={"note": [None, note.pk], "visibility": [None, visibility]},
    )
    return note


@transaction.atomic
def decision_record(
    *,
    review: Review,
    decision: Any,
    rationale: Any,
    by: User,
    decided_by: User | None = None,
    decided_by_name: Any = "",
) -> ReviewDecision:
    """Log a decision taken in the review, why, and who took it (the person recording it, if not said)."""
    review = _open_review(review, by)
    decision = clean_text(decision, field="decision", label="decision", limit=MAX_SHORT_TEXT)
    rationale = clean_text(rationale, field="rationale", label="reason for the decision", limit=MAX_SHORT_TEXT)
    decided_by_name = clean_text(decided_by_name, field="decided_by_name", label="name", required=False, limit=200)
    if decided_by is not None:
        member = acting_membership(decided_by)
        if member is None or not (member.is_internal or member.partner_id == review.partner_id):
            raise ValidationError({"decided_by": "Choose one of our people or of this partner's people."})
    elif not decided_by_name:
        decided_by = by
    entry = ReviewDecision.objects.create(
        review=review,
        decision=decision,
        rationale=rationale,
        decided_by=decided_by,
        decided_by_name=decided_by_name,
        recorded_by=by,
    )
    _touch(review)
    audit(
        actor=by,
        verb="review.decision_recorded",
        target=review,
        changes={
            "decision": [None, decision],
            "decided_by": [None, decided_by_name or (decided_by.email if decided_by else None)],
        },
    )
    return entry


@transaction.atomic
def summary_set(*, review: Review, summary: Any, by: User) -> Review:
    """Write the review's summary, which the partner reads once the review is shared (blank clears it)."""
    review = _open_review(review, by)
    summary = clean_text(summary, field="summary", label="summary", required=False)
    before = review.summary
    if summary == before:
        return review
    review.summary = summary
    review.updated_at = timezone.now()
    review.save(update_fields=["summary", "updated_at"])
    audit(actor=by, verb="review.summary_set", target=review, changes={"summary": [before, summary]})
    return review


def _require_partner_user(review: Review, by: Any) -> Membership:
    """One of the review's partner's own people; to a stranger the review does not exist."""
    require_own(review)
    membership = acting_membership(by)
    if membership is None:
        raise Http404(NOT_FOUND)
    if membership.is_internal:
        raise PermissionDenied("The partner's voice is submitted by the partner's own people.")
    if membership.partner_id != review.partner_id:
        raise Http404(NOT_FOUND)
    return membership


@transaction.atomic
def partner_voice_submit(
    *,
    review: Review,
    by: User,
    wins: Any = "",
    lessons_learned: Any = "",
    needs: Any = "",
    asks: Any = "",
    forecast: Any = "",
    risks: Any = "",
) -> PartnerVoice:
    """The partner's people tell what they bring to the review, until its meeting starts (again: replaces it)."""
    _require_partner_user(review, by)
    review = lock_review(review)
    if review.state not in VOICE_OPEN_STATES:
        raise ValidationError(VOICE_CLOSED, code="voice_closed")
    cycle = ReviewCycle.objects.get(pk=review.cycle_id)
    if cycle.status == CycleStatus.CLOSED:
        raise ValidationError(
            f"“{cycle.name}” has closed and this review will not be held, so its input is closed; "
            "tell your partner manager anything new.",
            code="voice_closed",
        )
    given = {
        "wins": wins,
        "lessons_learned": lessons_learned,
        "needs": needs,
        "asks": asks,
        "forecast": forecast,
        "risks": risks,
    }
    values = {
        name: clean_text(value, field=name, label=VOICE_LABELS[name], required=False, limit=MAX_SHORT_TEXT)
        for name, value in given.items()
    }
    if not any(values.values()):
        raise ValidationError("Write at least one of wins, lessons learned, needs, asks, forecast or risks.")
    now = timezone.now()
    voice = PartnerVoice.objects.filter(review=review).first()
    before = {name: getattr(voice, name) for name in VOICE_FIELDS} if voice else {}
    if voice is None:
        voice = PartnerVoice(review=review, submitted_at=now)
    for name, value in values.items():
        setattr(voice, name, value)
    voice.submitted_by = by
    voice.updated_at = now
    try:
        with transaction.atomic():
            voice.save()
    except IntegrityError as error:  # two colleagues submitting at the same moment
        raise ValidationError("A colleague just submitted your input; reload to see it.") from error
    audit(
        actor=by,
        verb="review.voice_submitted",
        target=review,
        changes={name: [before.get(name), value] for name, value in values.items() if before.get(name, "") != value},
    )
    return voice
