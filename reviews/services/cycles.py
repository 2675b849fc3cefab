"""Review cycles: the partners due for one kind of review in one period, ranked by need.

Kinds and their periods:

- quarterly business review (``qbr``): every quarter, for a quarter (FY2026-Q3);
- monthly check-in (``check_in``): every month, for a month (FY2026-M07);
- biannual deep dive (``deep_dive``): every second quarter, Q2 and Q4 only.

A partner is due when it is active and the cadence rule that decides its reviews (see
``reviews.services.cadences``) gives the cycle's kind. Each manager's partners are ranked by need
(``reviews.ranking``); the first ``capacity_per_manager`` get a detailed review, the others are
monitored.

Generating is done once per kind and period: a second generation is refused and names the cycle
that exists. Partners that became due afterwards (a new partner, a changed rule) are added to the
existing cycle by ``cycle_add_missing``, which is idempotent: it adds only partners the cycle
lacks, ranks them among themselves after the reviews already there (which may be under way and
are never re-ranked), and gives them detailed reviews while their manager's capacity lasts.

Both run a fixed number of queries whatever the number of partners: one read of the rules, one of
the partners, one of their scores, and one insert of the reviews (split in batches only where the
database limits a statement's parameters, as SQLite does).

An administrator closes a cycle once its meetings are over (``cycle_close``): never while a review
is in its meeting, and, while reviews are still scheduled or preparing, only when told to close
anyway; those stay as they are and the memo counts them as not held. A closed cycle starts no
review (``reviews.services.lifecycle`` refuses it); its finished reviews are still finalized,
shared and amended. ``cycle_reopen`` opens it again.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Max, Q
from django.utils import timezone

from partnerhub.partners.models import Partner, PartnerStatus
from partnerhub.tenancy.audit import audit
from partnerhub.tenancy.context import current_tenant_id
from partnerhub.tenancy.models import Tenant, User
from reviews.models import CadenceRule, CycleStatus, Review, ReviewCycle, ReviewKind, ReviewState, ReviewTrack
from reviews.ranking import Candidate, rank_by_need
from reviews.scores import latest_scores
from reviews.services.access import require_configurer, require_own
from reviews.services.cadences import matching_rule
from reviews.services.prompts import prompts_ensure_defaults
from scorecards.periods import MONTH, QUARTER, Period, PeriodError, parse_period

KIND_PERIOD = {ReviewKind.QBR: QUARTER, ReviewKind.DEEP_DIVE: QUARTER, ReviewKind.CHECK_IN: MONTH}
DEEP_DIVE_QUARTERS = (2, 4)
CYCLE_NAMES = {ReviewKind.QBR: "business reviews", ReviewKind.CHECK_IN: "check-ins", ReviewKind.DEEP_DIVE: "deep dives"}
MAX_CAPACITY = 500
NAMES_IN_MESSAGE = 5


def cycle_name(kind: str, period: str) -> str:
    """“FY2026-Q3 business reviews”, “FY2026-M07 check-ins”, “FY2026-Q4 deep dives”."""
    return f"{period} {CYCLE_NAMES[ReviewKind(kind)]}"


def _clean_kind(kind: Any) -> ReviewKind:
    if kind not in ReviewKind.values:
        raise ValidationError(
            {"kind": "Choose the kind of review: monthly check-in, quarterly business review or biannual deep dive."}
        )
    return ReviewKind(kind)


def clean_cycle_period(kind: ReviewKind, period: Any, *, start_month: int) -> Period:
    """The period a cycle of ``kind`` reviews, or a clear error when that kind has no review then."""
    try:
        parsed = parse_period(period if isinstance(period, str) else "", start_month=start_month)
    except PeriodError as error:
        raise ValidationError({"period": str(error)}) from error
    wanted = KIND_PERIOD[kind]
    if parsed.kind != wanted:
        example = "FY2026-Q3" if wanted == QUARTER else "FY2026-M07"
        raise ValidationError(
            {"period": f"A {kind.label.lower()} reviews a {wanted}; write the period like {example}, not {parsed.key}."}
        )
    if kind == ReviewKind.DEEP_DIVE and parsed.number not in DEEP_DIVE_QUARTERS:
        raise ValidationError(
            {"period": f"Deep dives are held every second quarter, in Q2 and Q4; {parsed.key} has none."}
        )
    return parsed


def _clean_dates(opens_on: Any, due_on: Any) -> None:
    errors = {}
    for name, value in (("opens_on", opens_on), ("due_on", due_on)):
        if not isinstance(value, datetime.date) or isinstance(value, datetime.datetime):
            errors[name] = "Give a date (a day, without a time)."
    if not errors and due_on < opens_on:
        errors["due_on"] = f"The cycle is due on or after the day it opens ({opens_on.isoformat()})."
    if errors:
        raise ValidationError(errors)


def _clean_capacity(capacity: Any) -> int:
    if isinstance(capacity, bool) or not isinstance(capacity, int) or not 1 <= capacity <= MAX_CAPACITY:
        raise ValidationError(
            {
                "capacity_per_manager": f"Give the detailed reviews each manager runs as a whole number from 1 to "
                f"{MAX_CAPACITY}; the partners beyond it are monitored."
            }
        )
    return capacity


def _due_candidates(kind: str, *, exclude_cycle: ReviewCycle | None = None) -> list[Candidate]:
    """Active partners whose deciding cadence rule gives ``kind`` (two queries)."""
    rules = list(CadenceRule.objects.filter(active=True, tier=""))
    partners = Partner.objects.filter(status=PartnerStatus.ACTIVE)
    if exclude_cycle is not None:
        partners = partners.exclude(pk__in=Review.objects.filter(cycle=exclude_cycle).values("partner_id"))
    candidates = []
    for partner_id, name, partner_type_id, stage, manager_id in partners.order_by("pk").values_list(
        "pk", "name", "partner_type_id", "lifecycle_stage", "manager_id"
    ):
        rule = matching_rule(rules, partner_type_id=partner_type_id, lifecycle_stage=stage)
        if rule is not None and rule.kind == kind:
            candidates.append(Candidate(partner_id=partner_id, name=name, manager_id=manager_id))
    return candidates


def _create_reviews(
    cycle: ReviewCycle, candidates: list[Candidate], *, period: Period, taken: dict | None = None
) -> list[Review]:
    scores = latest_scores(period=period, partners=Partner.objects.filter(status=PartnerStatus.ACTIVE))
    scored = [
        Candidate(partner_id=c.partner_id, name=c.name, manager_id=c.manager_id, score=scores.get(c.partner_id))
        for c in candidates
    ]
    ranked = rank_by_need(scored, capacity=cycle.capacity_per_manager, period=cycle.period, taken=taken)
    reviews = [
        Review(
            tenant_id=cycle.tenant_id,
            cycle=cycle,
            partner_id=entry.candidate.partner_id,
            manager_id=entry.candidate.manager_id,
            kind=cycle.kind,
            period=cycle.period,
            track=entry.track,
            priority=entry.priority,
            priority_reasons=entry.reasons,
            due_on=cycle.due_on,
        )
        for entry in ranked
    ]
    return Review.objects.bulk_create(reviews)


def _tracks(reviews: list[Review]) -> dict[str, int]:
    counts = {ReviewTrack.DETAILED.value: 0, ReviewTrack.MONITORED.value: 0}
    for review in reviews:
        counts[review.track] += 1
    return counts


@transaction.atomic
def cycle_generate(
    *, kind: Any, period: Any, opens_on: datetime.date, due_on: datetime.date, capacity_per_manager: Any, by: User
) -> ReviewCycle:
    """Open the cycle of ``kind`` for ``period`` with a review for every partner due, ranked by need.

    See the module's docstring for which partners are due and how they are ranked. Refused, with
    the reason, for a kind that has no review in that period, for a cycle that exists already, and
    when no partner is due (set a cadence rule first).
    """
    require_configurer(by)
    tenant = Tenant.objects.get(pk=current_tenant_id())
    kind = _clean_kind(kind)
    reviewed = clean_cycle_period(kind, period, start_month=tenant.fiscal_year_start_month)
    _clean_dates(opens_on, due_on)
    capacity = _clean_capacity(capacity_per_manager)
    name = cycle_name(kind, reviewed.key)
    existing = ReviewCycle.objects.filter(kind=kind, period=reviewed.key).first()
    if existing is not None:
        raise ValidationError(
            f"“{existing.name}” already exists; add the partners it is missing to it instead of generating it again.",
            code="exists",
        )
    candidates = _due_candidates(kind)
    if not candidates:
        raise ValidationError(
            f"No active partner is due a {kind.label.lower()}: no cadence rule gives one to any of them. "
            "Set a cadence rule first.",
            code="nobody_due",
        )
    prompts_ensure_defaults(tenant)  # workspaces created before prompts existed get them here
    cycle = ReviewCycle(
        name=name,
        kind=kind,
        period=reviewed.key,
        opens_on=opens_on,
        due_on=due_on,
        capacity_per_manager=capacity,
        created_by=by,
    )
    try:
        with transaction.atomic():
            cycle.save()
    except IntegrityError as error:  # generated by someone else at the same moment
        raise ValidationError(f"“{name}” already exists.", code="exists") from error
    reviews = _create_reviews(cycle, candidates, period=reviewed)
    audit(
        actor=by,
        verb="cycle.generated",
        target=cycle,
        changes={
            "kind": [None, cycle.kind],
            "period": [None, cycle.period],
            "capacity_per_manager": [None, capacity],
            "reviews": [None, len(reviews)],
            **{track: [None, count] for track, count in _tracks(reviews).items()},
        },
    )
    return cycle


@transaction.atomic
def cycle_add_missing(*, cycle: ReviewCycle, by: User) -> list[Review]:
    """Add to an open cycle the partners due now that it has no review for; returns the reviews added.

    Running it again adds nothing more. Reviews already in the cycle keep their rank and track.
    """
    require_configurer(by)
    require_own(cycle, "No such review cycle.")
    # Locked so two additions at once cannot both add the same partner.
    cycle = ReviewCycle.objects.select_for_update().get(pk=cycle.pk)
    if cycle.status == CycleStatus.CLOSED:
        raise ValidationError(f"“{cycle.name}” is closed; partners are added to open cycles only.", code="closed")
    tenant = Tenant.objects.get(pk=current_tenant_id())
    reviewed = parse_period(cycle.period, start_month=tenant.fiscal_year_start_month)
    candidates = _due_candidates(cycle.kind, exclude_cycle=cycle)
    if not candidates:
        return []
    taken: dict[int | None, tuple[int, int]] = defaultdict(lambda: (0, 0))
    for row in (
        Review.objects.current()
        .filter(cycle=cycle)
        .order_by()
        .values("manager_id")
        .annotate(last=Max("priority"), detailed=Count("pk", filter=Q(track=ReviewTrack.DETAILED)))
    ):
        taken[row["manager_id"]] = (row["last"], row["detailed"])
    reviews = _create_reviews(cycle, candidates, period=reviewed, taken=taken)
    audit(
        actor=by,
        verb="cycle.partners_added",
        target=cycle,
        changes={
            "reviews": [None, len(reviews)],
            **{track: [None, count] for track, count in _tracks(reviews).items()},
        },
    )
    return reviews


def _reviews(count: int) -> str:
    return f"{count} review{'' if count == 1 else 's'}"


def _named(names: list[str]) -> str:
    """“Alpha, Bravo and 3 more”: the partners a refusal is about, without a wall of names."""
    shown = ", ".join(names[:NAMES_IN_MESSAGE])
    rest = len(names) - NAMES_IN_MESSAGE
    return f"{shown} and {rest} more" if rest > 0 else shown


def _locked_cycle(cycle: ReviewCycle, by: User) -> ReviewCycle:
    require_configurer(by)
    require_own(cycle, "No such review cycle.")
    # Locked so closing and reopening are serialized with each other and with a review starting:
    # a review that starts locks its cycle too (see lifecycle), so none starts in a cycle being closed.
    return ReviewCycle.objects.select_for_update().get(pk=cycle.pk)


@transaction.atomic
def cycle_close(*, cycle: ReviewCycle, by: User, confirm_unfinished: bool = False) -> ReviewCycle:
    """Close a cycle whose meetings are over; reviews never held stay as they are and the memo counts them.

    Refused while a review is in its meeting, and while reviews are scheduled or preparing unless
    ``confirm_unfinished`` says to close anyway.
    """
    cycle = _locked_cycle(cycle, by)
    if cycle.status == CycleStatus.CLOSED:
        closed_on = timezone.localdate(cycle.closed_at).isoformat() if cycle.closed_at else "before"
        raise ValidationError(f"“{cycle.name}” is already closed (on {closed_on}).", code="closed")
    in_meeting: list[str] = []
    not_held = 0
    for state, partner in (
        Review.objects.current()
        .filter(cycle=cycle, state__in=(ReviewState.SCHEDULED, ReviewState.PREPARING, ReviewState.IN_MEETING))
        .order_by("partner__name", "pk")
        .values_list("state", "partner__name")
    ):
        if state == ReviewState.IN_MEETING:
            in_meeting.append(partner)
        else:
            not_held += 1
    if in_meeting:
        raise ValidationError(
            f"“{cycle.name}” cannot close while {_reviews(len(in_meeting))} "
            f"{'is' if len(in_meeting) == 1 else 'are'} in {'its' if len(in_meeting) == 1 else 'their'} meeting "
            f"({_named(in_meeting)}); finalize {'it' if len(in_meeting) == 1 else 'them'} first.",
            code="in_meeting",
        )
    if not_held and confirm_unfinished is not True:
        raise ValidationError(
            f"{_reviews(not_held)} of “{cycle.name}” {'has' if not_held == 1 else 'have'} not been held "
            "(still scheduled or preparing). Close anyway to leave "
            f"{'it' if not_held == 1 else 'them'} as {'it is' if not_held == 1 else 'they are'}: "
            "the memo counts them as not held.",
            code="unfinished",
        )
    cycle.status = CycleStatus.CLOSED
    cycle.closed_at = timezone.now()
    cycle.save(update_fields=["status", "closed_at"])
    audit(
        actor=by,
        verb="cycle.closed",
        target=cycle,
        changes={"status": [CycleStatus.OPEN.value, CycleStatus.CLOSED.value], "not_held": [None, not_held]},
    )
    return cycle


@transaction.atomic
def cycle_reopen(*, cycle: ReviewCycle, by: User) -> ReviewCycle:
    """Open a closed cycle again: its reviews may start, and partners may be added to it."""
    cycle = _locked_cycle(cycle, by)
    if cycle.status != CycleStatus.CLOSED:
        raise ValidationError(f"“{cycle.name}” is open; only a closed cycle is reopened.", code="open")
    closed_at = cycle.closed_at
    cycle.status = CycleStatus.OPEN
    cycle.closed_at = None
    cycle.save(update_fields=["status", "closed_at"])
    audit(
        actor=by,
        verb="cycle.reopened",
        target=cycle,
        changes={
            "status": [CycleStatus.CLOSED.value, CycleStatus.OPEN.value],
            "closed_at": [closed_at.isoformat() if closed_at else None, None],
        },
    )
    return cycle
