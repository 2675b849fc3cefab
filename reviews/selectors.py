"""Reads for reviews: queues, a cycle's lists, a review's workspace as a viewer may see it, the cycle memo.

Every read runs a fixed number of queries whatever the number of reviews, partners or notes.
Partner users see only their own partner's reviews, and of those only what is shared with them:
a review once it is shared (its summary, ratings, commitments, decisions, shared notes and their
own input; never internal notes, the pre-read or the ranking by need), and the input form of a
review that is scheduled or preparing. Anything else answers "not found", like a missing review.
"""

from __future__ import annotations

import datetime
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import Count, F, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from actions.models import ActionItem, RemediationPlan
from partnerhub.integrations.tabular import formula_safe
from partnerhub.partners.models import Partner
from partnerhub.tenancy.context import current_tenant_id
from partnerhub.tenancy.models import Membership, Tenant, User
from partnerhub.tenancy.roles import Capability
from reviews.models import (
    CLOSED_STATES,
    CadenceRule,
    CollaborationPrompt,
    CollaborationRating,
    CycleStatus,
    DevelopmentCommitment,
    MeetingNote,
    NoteVisibility,
    PartnerVoice,
    Review,
    ReviewCycle,
    ReviewDecision,
    ReviewState,
    ReviewTrack,
)
from reviews.scores import latest_scores
from reviews.services.access import NOT_FOUND
from reviews.services.cadences import matching_rule
from scorecards.models import Rating
from scorecards.periods import parse_period

VOICE_STATES = (ReviewState.SCHEDULED, ReviewState.PREPARING)
NOT_HELD_STATES = (ReviewState.SCHEDULED, ReviewState.PREPARING)  # a closed cycle's reviews that never met
TOP_IMPROVEMENTS = 5
NO_SCORE = "none"
MAX_ID = 2**63 - 1


def cadence_rule_for(partner: Partner) -> CadenceRule | None:
    """The active rule that decides which kind of review ``partner`` gets, or None."""
    rules = CadenceRule.objects.filter(active=True, tier="")
    return matching_rule(rules, partner_type_id=partner.partner_type_id, lifecycle_stage=partner.lifecycle_stage)


def collaboration_prompts(*, include_inactive: bool = False) -> QuerySet:
    prompts = CollaborationPrompt.objects.order_by("position", "pk")
    return prompts if include_inactive else prompts.filter(active=True)


# --- Queues and lists --------------------------------------------------------------------------------------


def reviews_for_manager(*, manager: User) -> QuerySet:
    """A manager's upcoming reviews: open, latest revisions, soonest due first, then by need."""
    return (
        Review.objects.current()
        .open()
        .filter(manager=manager)
        .select_related("partner", "cycle")
        .order_by("due_on", "priority", "pk")
    )


def _cycle_list(cycle: ReviewCycle, track: str) -> QuerySet:
    return (
        Review.objects.current()
        .filter(cycle=cycle, track=track)
        .select_related("partner", "partner__partner_type", "manager")
        # Partners without a manager come last, on every database (NULLs sort differently by default).
        .order_by(
            F("manager__full_name").asc(nulls_last=True),
            F("manager__email").asc(nulls_last=True),
            F("manager_id").asc(nulls_last=True),
            "priority",
            "pk",
        )
    )


def cycle_detailed(cycle: ReviewCycle) -> QuerySet:
    """The cycle's detailed reviews, by manager (unassigned partners last) and then by need (one query)."""
    return _cycle_list(cycle, ReviewTrack.DETAILED)


def cycle_monitored(cycle: ReviewCycle) -> QuerySet:
    """The cycle's monitored partners, by manager and then by need (one query)."""
    return _cycle_list(cycle, ReviewTrack.MONITORED)


@dataclass(frozen=True)
class CycleClosing:
    """What closing an open cycle would meet: reviews in their meeting, and reviews not held yet."""

    in_meeting: int
    not_held: int


def cycle_closing(cycle: ReviewCycle) -> CycleClosing:
    """How many of the cycle's current reviews are in their meeting, and how many not held yet (one query)."""
    counts = (
        Review.objects.current()
        .filter(cycle=cycle)
        .aggregate(
            in_meeting=Count("pk", filter=Q(state=ReviewState.IN_MEETING)),
            not_held=Count("pk", filter=Q(state__in=NOT_HELD_STATES)),
        )
    )
    return CycleClosing(in_meeting=counts["in_meeting"], not_held=counts["not_held"])


def partner_reviews(*, viewer: User) -> list[Review]:
    """A partner user's reviews: those shared with them (latest shared revision) and those awaiting their input."""
    membership = Membership.objects.filter(user=viewer).first()
    if membership is None or not membership.is_partner_user:
        return []
    reviews = (
        Review.objects.filter(partner_id=membership.partner_id)
        .filter(
            Q(state=ReviewState.SHARED)
            | Q(state__in=VOICE_STATES, superseded_by__isnull=True, cycle__status=CycleStatus.OPEN)
        )
        .select_related("cycle")
        .order_by("-due_on", "-cycle_id", "-revision")
    )
    shown, seen = [], set()
    for review in reviews:  # of a review's shared revisions, the latest
        if review.cycle_id not in seen:
            seen.add(review.cycle_id)
            shown.append(review)
    return shown


# --- One review's workspace --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewHeader:
    """What anyone allowed to see a review may read about it."""

    id: int
    partner: str
    kind: str
    kind_label: str
    period: str
    state: str
    state_label: str
    due_on: datetime.date
    meeting_at: datetime.datetime | None
    revision: int
    shared_at: datetime.datetime | None


@dataclass
class ReviewWorkspace:
    """A review as one viewer sees it. ``review`` (with the pre-read and ranking) is for internal viewers only."""

    header: ReviewHeader
    audience: str  # "internal" or "partner"
    review: Review | None = None
    summary: str = ""
    prompts: list[CollaborationPrompt] = field(default_factory=list)
    ratings: dict[int, CollaborationRating] = field(default_factory=dict)  # by prompt id
    commitments: list[DevelopmentCommitment] = field(default_factory=list)
    notes: list[MeetingNote] = field(default_factory=list)
    decisions: list[ReviewDecision] = field(default_factory=list)
    voice: PartnerVoice | None = None
    revisions: list[dict[str, Any]] = field(default_factory=list)
    can_edit: bool = False
    can_submit_voice: bool = False


def _header(review: Review) -> ReviewHeader:
    return ReviewHeader(
        id=review.pk,
        partner=review.partner.name,
        kind=review.kind,
        kind_label=review.get_kind_display(),
        period=review.period,
        state=review.state,
        state_label=review.get_state_display(),
        due_on=review.due_on,
        meeting_at=review.meeting_at,
        revision=review.revision,
        shared_at=review.shared_at,
    )


def review_workspace(*, review_id: Any, viewer: User) -> ReviewWorkspace:
    """The workspace of review ``review_id`` for ``viewer``; ``Http404`` when the viewer may not see it."""
    membership = Membership.objects.filter(user=viewer).first() if isinstance(viewer, User) else None
    review = None
    if str(review_id).isdigit() and int(str(review_id)) <= MAX_ID:  # a link's id, never a database error
        review = Review.objects.select_related("partner", "cycle").filter(pk=int(str(review_id))).first()
    if membership is None or review is None:
        raise Http404(NOT_FOUND)
    voice = PartnerVoice.objects.filter(review=review).first()
    if membership.is_partner_user:
        if membership.partner_id != review.partner_id:
            raise Http404(NOT_FOUND)
        current = not Review.objects.filter(amends=review).exists()
        # A review still to be held takes the partner's input; once its cycle closes it will not be held.
        if review.state in VOICE_STATES and current and review.cycle.status == CycleStatus.OPEN:
            return ReviewWorkspace(header=_header(review), audience="partner", voice=voice, can_submit_voice=True)
        if review.state != ReviewState.SHARED:
            raise Http404(NOT_FOUND)
        return _filled(ReviewWorkspace(header=_header(review), audience="partner", voice=voice), review, internal=False)
    workspace = ReviewWorkspace(header=_header(review), audience="internal", review=review, voice=voice)
    workspace.revisions = list(
        Review.objects.filter(cycle_id=review.cycle_id, partner_id=review.partner_id)
        .order_by("revision")
        .values("pk", "revision", "state")
    )
    latest = workspace.revisions[-1]["pk"] == review.pk
    workspace.can_edit = latest and not review.is_closed and membership.can(Capability.EDIT_PARTNERS)
    return _filled(workspace, review, internal=True)


def review_workspace_for_integration(*, review: Review) -> ReviewWorkspace:
    """A review's whole workspace as the program's integrations (API keys) read it: as internal people do, read-only."""
    review = Review.objects.select_related("partner").get(pk=review.pk)
    voice = PartnerVoice.objects.filter(review=review).first()
    workspace = ReviewWorkspace(header=_header(review), audience="internal", review=review, voice=voice)
    workspace.revisions = list(
        Review.objects.filter(cycle_id=review.cycle_id, partner_id=review.partner_id)
        .order_by("revision")
        .values("pk", "revision", "state")
    )
    return _filled(workspace, review, internal=True)


def _filled(workspace: ReviewWorkspace, review: Review, *, internal: bool) -> ReviewWorkspace:
    ratings = CollaborationRating.objects.filter(review=review).select_related("prompt", "rated_by")
    workspace.ratings = {rating.prompt_id: rating for rating in ratings}
    prompts = list(collaboration_prompts()) if internal else []
    known = {prompt.pk for prompt in prompts}
    prompts += [rating.prompt for rating in workspace.ratings.values() if rating.prompt_id not in known]
    workspace.prompts = sorted(prompts, key=lambda prompt: (prompt.position, prompt.pk))
    workspace.summary = review.summary
    workspace.commitments = list(
        DevelopmentCommitment.objects.filter(review=review).select_related("created_by").order_by("created_at", "pk")
    )
    notes = MeetingNote.objects.filter(review=review).select_related("author").order_by("created_at", "pk")
    if not internal:
        # Filtered in the database: an internal note is never even loaded for a partner user.
        notes = notes.filter(visibility=NoteVisibility.SHARED)
    workspace.notes = list(notes)
    workspace.decisions = list(
        ReviewDecision.objects.filter(review=review).select_related("decided_by").order_by("created_at", "pk")
    )
    return workspace


# --- The cycle memo ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RatingRow:
    rating: str  # a Rating value, or "none" for partners without a score
    label: str
    count: int
    previous: int | None  # in the previous cycle of the same kind; None when there is none
    change: int | None


@dataclass(frozen=True)
class Improvement:
    partner_id: int
    partner: str
    period: str
    total: Decimal
    change: Decimal


@dataclass(frozen=True)
class OverdueAction:
    id: int
    title: str
    partner: str
    owner: str
    due_on: datetime.date
    days_overdue: int


@dataclass
class CycleMemo:
    """What a cycle produced: reviews completed, ratings and their change, plans, improvements, overdue actions."""

    cycle: ReviewCycle
    previous_cycle: ReviewCycle | None
    today: datetime.date
    reviews: int
    completed: int
    detailed: int
    monitored: int
    states: dict[str, int]
    ratings: list[RatingRow]
    plans_opened: int
    plans_closed: int
    improvements: list[Improvement]
    overdue_actions: list[OverdueAction]
    closed_on: datetime.date | None = None  # the day the cycle closed; None while it is open
    not_held: int = 0  # of a closed cycle, the reviews still scheduled or preparing when it closed


def _distribution(
    cycle: ReviewCycle, start_month: int, *, reviewed: int | None = None
) -> tuple[dict[str, int], dict[int, dict[str, Any]]]:
    """Per rating, how many of the cycle's partners had it (latest score up to the cycle's period)."""
    partners = Partner.objects.filter(pk__in=Review.objects.current().filter(cycle=cycle).values("partner_id"))
    scores = latest_scores(period=parse_period(cycle.period, start_month=start_month), partners=partners)
    if reviewed is None:
        reviewed = Review.objects.current().filter(cycle=cycle).count()
    counts = Counter(row["rating"] for row in scores.values())
    counts[NO_SCORE] = reviewed - len(scores)
    return dict(counts), scores


def cycle_memo(*, cycle: ReviewCycle, today: datetime.date | None = None) -> CycleMemo:
    """The memo of a cycle (a fixed number of queries).

    Ratings are the partners' latest scores up to the cycle's period, compared with the previous
    cycle of the same kind; remediation plans and overdue actions are those of the cycle's
    partners, plans counted when opened or closed between the day the cycle opens and the day it
    is due; improvements are the largest rises in score, top five. A closed cycle's memo says the day
    it closed and how many of its reviews were not held (still scheduled or preparing: a closed
    cycle starts no review, so they are the ones left when it closed).
    """
    if cycle is None or cycle.tenant_id != current_tenant_id():
        raise Http404("No such review cycle.")
    today = today or timezone.localdate()
    start_month = Tenant.objects.values_list("fiscal_year_start_month", flat=True).get(pk=current_tenant_id())
    rows = list(Review.objects.current().filter(cycle=cycle).values("partner_id", "partner__name", "state", "track"))
    names = {row["partner_id"]: row["partner__name"] for row in rows}
    states = Counter(row["state"] for row in rows)
    tracks = Counter(row["track"] for row in rows)
    counts, scores = _distribution(cycle, start_month, reviewed=len(rows))
    previous_cycle = (
        ReviewCycle.objects.filter(kind=cycle.kind, period__lt=cycle.period).order_by("-period", "-pk").first()
    )
    previous = _distribution(previous_cycle, start_month)[0] if previous_cycle else None
    ratings = []
    for value, label in [*Rating.choices, (NO_SCORE, "No score")]:
        count = counts.get(value, 0)
        before = None if previous is None else previous.get(value, 0)
        ratings.append(RatingRow(value, label, count, before, None if before is None else count - before))
    cycle_partners = Review.objects.current().filter(cycle=cycle).values("partner_id")
    window = (cycle.opens_on, cycle.due_on)
    plans = RemediationPlan.objects.filter(partner_id__in=cycle_partners).aggregate(
        opened=Count("pk", filter=Q(opened_at__date__range=window)),
        closed=Count("pk", filter=Q(closed_at__date__range=window)),
    )
    risers = sorted(
        (row for row in scores.values() if row["change"] is not None and row["change"] > 0),
        key=lambda row: (-row["change"], names[row["partner_id"]].casefold(), row["partner_id"]),
    )
    improvements = [
        Improvement(row["partner_id"], names[row["partner_id"]], row["period"], row["total"], row["change"])
        for row in risers[:TOP_IMPROVEMENTS]
    ]
    overdue = (
        ActionItem.objects.overdue(today)
        .filter(partner_id__in=cycle_partners)
        .select_related("partner", "owner")
        .order_by("due_on", "partner__name", "pk")
    )
    closed = cycle.status == CycleStatus.CLOSED
    return CycleMemo(
        cycle=cycle,
        previous_cycle=previous_cycle,
        today=today,
        reviews=len(rows),
        completed=sum(count for state, count in states.items() if state in CLOSED_STATES),
        detailed=tracks.get(ReviewTrack.DETAILED, 0),
        monitored=tracks.get(ReviewTrack.MONITORED, 0),
        states={state: states.get(state, 0) for state in ReviewState.values},
        ratings=ratings,
        plans_opened=plans["opened"],
        plans_closed=plans["closed"],
        improvements=improvements,
        overdue_actions=[
            OverdueAction(
                id=item.pk,
                title=item.title,
                partner=item.partner.name,
                owner=item.owner.get_full_name() if item.owner else "",
                due_on=item.due_on,
                days_overdue=(today - item.due_on).days,
            )
            for item in overdue
        ],
        closed_on=timezone.localdate(cycle.closed_at) if closed and cycle.closed_at else None,
        not_held=sum(states.get(state, 0) for state in NOT_HELD_STATES) if closed else 0,
    )


def _cell(value: Any) -> str:
    """A cell of the memo's CSV, quoted where a spreadsheet would run it as a formula."""
    return formula_safe("" if value is None else str(value))


def _signed(value: int | Decimal | None) -> str:
    if value is None:
        return ""
    return f"+{value}" if value > 0 else str(value)


def cycle_memo_csv(cycle: ReviewCycle, *, today: datetime.date | None = None) -> list[list[str]]:
    """The memo as the rows of a CSV file: section, item, value, previous cycle, change."""
    memo = cycle_memo(cycle=cycle, today=today)
    previous_name = memo.previous_cycle.name if memo.previous_cycle else ""
    rows: list[list[Any]] = [
        ["Section", "Item", "Value", "Previous cycle", "Change"],
        [
            "Cycle",
            memo.cycle.name,
            f"{memo.cycle.opens_on.isoformat()} to {memo.cycle.due_on.isoformat()}",
            previous_name,
            "",
        ],
        ["Reviews", "Partners in the cycle", memo.reviews, "", ""],
        ["Reviews", "Detailed", memo.detailed, "", ""],
        ["Reviews", "Monitored", memo.monitored, "", ""],
        ["Reviews", "Completed", memo.completed, "", ""],
    ]
    if memo.cycle.status == CycleStatus.CLOSED:
        rows[2:2] = [["Cycle", "Closed on", memo.closed_on.isoformat() if memo.closed_on else "", "", ""]]
        rows.append(["Reviews", "Not held", memo.not_held, "", ""])
    rows += [["Ratings", row.label, row.count, row.previous, _signed(row.change)] for row in memo.ratings]
    rows += [
        ["Remediation plans", "Opened", memo.plans_opened, "", ""],
        ["Remediation plans", "Closed", memo.plans_closed, "", ""],
    ]
    rows += [
        ["Top improvements", f"{row.partner} ({row.period})", format(row.total, "f"), "", _signed(row.change)]
        for row in memo.improvements
    ]
    rows += [
        [
            "Overdue actions",
            f"{row.title} — {row.partner}",
            f"{row.days_overdue} day{'' if row.days_overdue == 1 else 's'} overdue",
            row.due_on.isoformat(),
            "",
        ]
        for row in memo.overdue_actions
    ]
    return [[_cell(value) for value in row] for row in rows]


# --- One partner at a glance ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PartnerReviewsOverview:
    """What the partner's page shows of its reviews: its cadence, the next review and the last ones held."""

    cadence: CadenceRule | None
    upcoming: Review | None
    recent: list[Review]


def partner_reviews_overview(*, partner: Partner, show: int = 4) -> PartnerReviewsOverview:
    """The cadence rule deciding ``partner``'s reviews, its next open review and its ``show`` latest closed ones.

    Closed reviews carry their counts of decisions and commitments; four queries in all.
    """
    reviews = Review.objects.current().filter(partner=partner).select_related("cycle", "manager")
    upcoming = reviews.open().order_by("due_on", "pk").first()
    recent = list(
        reviews.filter(state__in=CLOSED_STATES)
        .annotate(
            decision_count=Count("decisions", distinct=True),
            commitment_count=Count("commitments", distinct=True),
        )
        .order_by("-due_on", "-pk")[:show]
    )
    return PartnerReviewsOverview(cadence=cadence_rule_for(partner), upcoming=upcoming, recent=recent)
