"""The demo's reviews and follow-up: cadence rules, a review cycle in full swing, action items, a plan.

Everything goes through the services the portal uses, as the people who would do it: the
administrator sets the cadence rules and opens the cycle, each partner manager runs their own
reviews, Alpine's people bring their voice and report progress on the actions they own. The cycle
reviews the last quarter the scorecard scored, so the partners most in need (regressing, rated
"needs improvement") come first and get the detailed reviews; the rest, beyond each manager's
capacity, are monitored.

Dates come from the scorecard's calendar wherever a service accepts them. Two cannot: an action is
created due today or later, and a checkpoint is recorded once held. Overdue actions are therefore
created due today and then given their (fixed, past) due date directly; see ``_make_overdue``.

Running it again finds the workspace's cycle in place and creates nothing; the overdue digest is
sent again like the daily beat would, and sends nothing new.
"""

from __future__ import annotations

import datetime
from collections import Counter
from decimal import ROUND_FLOOR, Decimal

from django.utils import timezone

from actions.models import ActionItem, ActionKind, ActionStatus, CheckpointOutcome, Comparison, Priority, RootCause
from actions.services.escalation import action_escalate
from actions.services.followup import action_comment, action_progress, action_transition
from actions.services.items import action_create
from actions.services.milestones import milestones_evaluate
from actions.services.plans import checkpoint_add, milestone_add, plan_activate, plans_suggest
from actions.services.reminders import overdue_reminders_send
from partnerhub.partners.models import LifecycleStage, Partner, PartnerType
from partnerhub.tenancy.models import Membership, Tenant, User
from partnerhub.tenancy.roles import Role
from reviews.models import (
    CollaborationPrompt,
    CommitmentParty,
    NoteVisibility,
    Review,
    ReviewCycle,
    ReviewKind,
    ReviewState,
    ReviewTrack,
)
from reviews.services.cadences import cadence_rule_create
from reviews.services.cycles import cycle_close, cycle_generate
from reviews.services.lifecycle import review_amend, review_transition
from reviews.services.workspace import (
    commitment_add,
    decision_record,
    note_add,
    partner_voice_submit,
    rating_set,
    summary_set,
)
from scorecards.models import Metric, MetricObservation
from scorecards.periods import MONTH, Period, parse_period, period_containing
from scorecards.services.health import counted_observations

# Detailed reviews each manager runs; with three managers and ~80 partners most are monitored.
CAPACITY_PER_MANAGER = 6
# (partner type key or None, lifecycle stage or "", kind, position): QBRs for everyone, monthly
# check-ins while onboarding, deep dives for the strategic distributors and mature integrators.
CADENCE_RULES = [
    (None, "", ReviewKind.QBR, 2),
    (None, LifecycleStage.ONBOARDING, ReviewKind.CHECK_IN, 0),
    ("distributor", "", ReviewKind.DEEP_DIVE, 1),
    ("systems_integrator", LifecycleStage.MATURE, ReviewKind.DEEP_DIVE, 0),
]
RATINGS = [4, 3, 2, 4]  # one per built-in prompt, shifted per review so the reviews differ
AMENDMENT_REASON = "The partner's pipeline figure in the decision log was a quarter old; corrected after the call."
# The milestone that is met aims at 90% of the revenue the partner did book; the missed one at a
# deal velocity 20% faster than the partner managed. Both follow from the observed values.
MET_SHARE, MISSED_SHARE = Decimal("0.9"), Decimal("0.8")


def seed_reviews(*, tenant: Tenant, admin: User, periods: list[str], full: bool) -> Counter[str]:
    """The workspace's cadence rules and review cycle; with ``full``, its reviews in every state,
    action items and a remediation plan. In the active tenant scope; returns what was created."""
    created: Counter[str] = Counter()
    period = periods[-1]
    if not ReviewCycle.objects.filter(kind=ReviewKind.QBR, period=period).exists():
        _cadences(admin, created)
        cycle = _cycles(tenant, admin, period, created)
        if full:
            held = _reviews(cycle, admin, created)
            _closed_check_ins(tenant, admin, period, created)
            _actions(cycle, held, admin, created)
            _plans(admin, periods, created)
        else:
            _alpine_voice(cycle, role=Role.PARTNER_ADMIN)
    if full:
        # The daily digest, as the beat would send it: each overdue action reminded once.
        created["overdue reminder"] += overdue_reminders_send(today=timezone.localdate()).reminders
    return +created


# --- Cadences and cycles ---------------------------------------------------------------------------------


def _cadences(admin: User, created: Counter) -> None:
    types = {partner_type.key: partner_type for partner_type in PartnerType.objects.all()}
    for type_key, stage, kind, position in CADENCE_RULES:
        partner_type = types[type_key] if type_key else None
        cadence_rule_create(kind=kind, by=admin, partner_type=partner_type, lifecycle_stage=stage, position=position)
        created["cadence rule"] += 1


def _cycles(tenant: Tenant, admin: User, period: str, created: Counter) -> ReviewCycle:
    """The quarter's business reviews, and the check-ins of its last month; returns the former."""
    quarter = parse_period(period, start_month=tenant.fiscal_year_start_month)
    opens_on, due_on = quarter.end + datetime.timedelta(days=1), quarter.end + datetime.timedelta(days=45)
    cycle = cycle_generate(
        kind=ReviewKind.QBR,
        period=period,
        opens_on=opens_on,
        due_on=due_on,
        capacity_per_manager=CAPACITY_PER_MANAGER,
        by=admin,
    )
    _check_ins(period_containing(quarter.end, kind=MONTH, start_month=tenant.fiscal_year_start_month), admin)
    created["review cycle"] += 2
    created["review"] += Review.objects.count()
    return cycle


def _check_ins(month: Period, admin: User) -> ReviewCycle:
    """The month's check-ins, opening the day after it ends and due two weeks later."""
    opens_on = month.end + datetime.timedelta(days=1)
    return cycle_generate(
        kind=ReviewKind.CHECK_IN,
        period=month.key,
        opens_on=opens_on,
        due_on=opens_on + datetime.timedelta(days=14),
        capacity_per_manager=CAPACITY_PER_MANAGER,
        by=admin,
    )


def _closed_check_ins(tenant: Tenant, admin: User, period: str, created: Counter) -> None:
    """The check-ins of the quarter's second month: two held and finalized, the cycle closed with the rest not held."""
    quarter = parse_period(period, start_month=tenant.fiscal_year_start_month)
    month = period_containing(quarter.end, kind=MONTH, start_month=tenant.fiscal_year_start_month).previous()
    before = Review.objects.count()
    cycle = _check_ins(month, admin)
    held = Review.objects.filter(cycle=cycle, track=ReviewTrack.DETAILED, manager__isnull=False).order_by("priority")
    for number, review in enumerate(held.select_related("manager")[:2]):
        _hold_meeting(review, number=number)
        review_transition(review=review, to=ReviewState.FINALIZED, by=review.manager)
    cycle_close(cycle=cycle, by=admin, confirm_unfinished=True)
    created["review cycle"] += 1
    created["review"] += Review.objects.count() - before


def _alpine_voice(cycle: ReviewCycle, *, role: str) -> Review:
    """Alpine's people tell what they bring to this quarter's review, before it is prepared."""
    membership = Membership.objects.select_related("user").get(role=role, partner__isnull=False)
    review = Review.objects.get(cycle=cycle, partner_id=membership.partner_id)
    partner_voice_submit(
        review=review,
        by=membership.user,
        wins="Two analytics platform deals closed in the DACH public sector, one of them a competitive displacement.",
        lessons_learned="Bringing the solution engineer to the first call shortened the cycle by weeks.",
        needs="A second certified engineer for Cloud Platform before the spring roll-outs.",
        asks="Co-funded webinar in the coming quarter; earlier access to the pricing update.",
        forecast="Pipeline up about 20% on last quarter; three renewals due, all expected to renew.",
        risks="One key account is evaluating a competitor's bundle.",
    )
    return review


# --- Reviews -----------------------------------------------------------------------------------------------


def _reviews(cycle: ReviewCycle, admin: User, created: Counter) -> dict[str, Review]:
    """Detailed reviews taken to every state, the most in need furthest along; monitored ones wait.

    Returns the reviews the action items follow up, by the state they were left in.
    """
    alpine = _alpine_voice(cycle, role=Role.PARTNER_MEMBER)
    detailed = list(
        Review.objects.filter(cycle=cycle, track=ReviewTrack.DETAILED)
        .exclude(pk=alpine.pk)
        .select_related("partner", "manager")
        .order_by("priority", "manager__email", "pk")
    )
    shared, finalized, amended, meeting, meeting2, preparing = detailed[:6]
    for number, review in enumerate([shared, finalized, amended, meeting, meeting2]):
        _hold_meeting(review, number=number)
    for review in (shared, amended):
        summary_set(review=review, summary=_summary(review), by=review.manager)
    for review in (shared, finalized, amended):
        review_transition(review=review, to=ReviewState.FINALIZED, by=review.manager)
    for review in (shared, amended):
        review_transition(review=review, to=ReviewState.SHARED, by=review.manager)
    revision = review_amend(review=amended, reason=AMENDMENT_REASON, by=amended.manager)
    decision_record(
        review=revision,
        decision="Pipeline target for next quarter restated on the current forecast.",
        rationale="The figure recorded in the meeting came from the previous quarter's forecast.",
        by=amended.manager,
    )
    review_transition(review=revision, to=ReviewState.FINALIZED, by=amended.manager)
    review_transition(review=revision, to=ReviewState.SHARED, by=amended.manager)
    for review in (preparing, alpine):
        review_transition(review=review, to=ReviewState.PREPARING, by=review.manager or admin)
    created["review amendment"] += 1
    return {"shared": shared, "finalized": finalized, "amended": revision, "meeting": meeting, "alpine": alpine}


def _summary(review: Review) -> str:
    return (
        f"Thank you for the {review.period} review. We agreed on the priorities below and will follow them up "
        "in the action items; your partner manager will check in on progress before the next review."
    )


def _hold_meeting(review: Review, *, number: int) -> None:
    """Prepare the review (freezing its pre-read), hold its meeting and fill the workspace."""
    manager = review.manager
    review_transition(review=review, to=ReviewState.PREPARING, by=manager)
    review_transition(review=review, to=ReviewState.IN_MEETING, by=manager)
    for index, prompt in enumerate(CollaborationPrompt.objects.filter(active=True).order_by("position")):
        score = RATINGS[(index + number) % len(RATINGS)]
        comment = "Clearly better than last quarter." if score >= 4 else "Room to improve; see the commitments."
        rating_set(review=review, prompt=prompt, score=score, comment=comment, by=manager)
    note_add(
        review=review,
        body="Partner leadership is committed, but the pipeline depends on one senior seller; watch attrition.",
        visibility=NoteVisibility.INTERNAL,
        by=manager,
    )
    note_add(
        review=review,
        body="We walked through the scorecard together; the partner agreed with the trend and the priorities.",
        visibility=NoteVisibility.SHARED,
        by=manager,
    )
    decision_record(
        review=review,
        decision="Focus next quarter on certifications and joint pipeline in two named accounts.",
        rationale="The scorecard shows development lagging while revenue holds; enablement is the cheapest lever.",
        by=manager,
        decided_by_name="The partner's managing director",
    )
    due = review.due_on + datetime.timedelta(days=60)
    commitment_add(
        review=review, party=CommitmentParty.VENDOR, text="Run two enablement sessions.", due_on=due, by=manager
    )
    commitment_add(
        review=review,
        party=CommitmentParty.PARTNER,
        text="Certify two more engineers on the Cloud Platform track.",
        due_on=due,
        by=manager,
    )


# --- Action items ------------------------------------------------------------------------------------------


def _make_overdue(action: ActionItem, due_on: datetime.date) -> None:
    # action_create accepts only a due date still to come, as a person entering one today should.
    # The demo needs actions that fell due weeks ago, so their due date is set here directly, in
    # the scorecard's calendar; no other field changes and the history reads as if it had slipped.
    ActionItem.objects.filter(pk=action.pk).update(due_on=due_on)
    action.due_on = due_on


def _actions(cycle: ReviewCycle, held: dict[str, Review], admin: User, created: Counter) -> None:
    today = timezone.localdate()
    opens = cycle.opens_on
    executive = User.objects.get(pk=Membership.objects.filter(role=Role.EXECUTIVE).values("user_id")[:1])
    alpine_people = {m.role: m.user for m in Membership.objects.filter(partner__isnull=False).select_related("user")}
    certifications = Metric.objects.get(key="certifications_completed")
    # (review, title, partner user who owns it, priority, kind, days overdue when the cycle opened, moves)
    specs = [
        ("shared", "Certify two engineers on Cloud Platform", None, Priority.HIGH, ActionKind.MID_TERM, 25, []),
        ("meeting", "Agree the joint account plan for two named accounts", None, Priority.CRITICAL,
         ActionKind.QUICK_WIN, 35, [ActionStatus.IN_PROGRESS]),
        ("finalized", "Refresh the co-marketing calendar", None, Priority.MEDIUM, ActionKind.QUICK_WIN, 10,
         [ActionStatus.BLOCKED]),
        ("finalized", "Share the updated price list with the sales team", None, Priority.LOW, ActionKind.QUICK_WIN,
         None, [ActionStatus.DONE]),
        ("amended", "Run the enablement workshop", None, Priority.MEDIUM, ActionKind.QUICK_WIN, None,
         [ActionStatus.IN_PROGRESS]),
        ("amended", "Register the renewal pipeline in the deal portal", None, Priority.LOW, ActionKind.QUICK_WIN,
         None, [ActionStatus.CANCELLED]),
        ("meeting", "Name an executive sponsor on both sides", None, Priority.HIGH, ActionKind.MID_TERM, None, []),
        ("alpine", "Submit the quarter-end forecast in the portal", Role.PARTNER_ADMIN, Priority.MEDIUM,
         ActionKind.QUICK_WIN, 18, []),
        ("alpine", "Complete the Cloud Platform certification", Role.PARTNER_MEMBER, Priority.HIGH,
         ActionKind.MID_TERM, None, [ActionStatus.IN_PROGRESS]),
    ]  # fmt: skip
    notes = {
        ActionStatus.BLOCKED: "Waiting on the partner's new marketing lead, who starts next month.",
        ActionStatus.CANCELLED: "Superseded: the deal portal import now brings the renewals in.",
    }
    for number, (which, title, partner_role, priority, kind, overdue, moves) in enumerate(specs):
        review = held[which]
        manager = review.manager or admin
        owner = alpine_people[partner_role] if partner_role else manager
        action = action_create(
            partner=review.partner,
            by=manager,
            title=title,
            due_on=today + datetime.timedelta(days=30 + 7 * number),
            owner=owner,
            review=review,
            priority=priority,
            kind=kind,
            root_cause=RootCause.ENABLEMENT if kind == ActionKind.MID_TERM else RootCause.GTM_MESSAGING,
            success_criteria="Done and confirmed by the partner in the next check-in.",
            targets=[(certifications, "3")] if "certif" in title.lower() else (),
        )
        created["action item"] += 1
        if overdue is not None:
            _make_overdue(action, opens - datetime.timedelta(days=overdue))
        for status in moves:
            action = action_transition(action=action, to=status, by=owner, note=notes.get(status, ""))
        if not action.is_finished and action.status != ActionStatus.BLOCKED:
            action_progress(action=action, by=owner, percent=20 + 10 * (number % 5), note="First steps done.")
        action_comment(action=action, by=manager, body="Discussed in the review; the owner confirmed the plan.")
        if priority == Priority.CRITICAL:
            action_escalate(
                action=action,
                to=executive,
                by=manager,
                reason="Two named accounts are at stake and the partner's sales lead has not engaged.",
            )
        if which == "meeting":  # still in its meeting: the commitment names the action following it up
            commitment_add(
                review=review,
                party=CommitmentParty.PARTNER,
                text=title + ".",
                due_on=action.due_on,
                action_item=action,
                by=manager,
            )


# --- Remediation plans -------------------------------------------------------------------------------------


def _plans(admin: User, periods: list[str], created: Counter) -> None:
    """Suggested plans for the partners the last quarter flagged; one of them put to work."""
    period = periods[-1]
    suggested = plans_suggest(period=period)
    created["remediation plan"] += len(suggested)
    revenue, velocity = Metric.objects.get(key="revenue_won"), Metric.objects.get(key="deal_velocity")
    observed = {
        (partner_id, metric_id): value
        for partner_id, metric_id, value in counted_observations(
            MetricObservation.objects.current().filter(
                period=period,
                metric__in=[revenue, velocity],
                partner_id__in=[plan.partner_id for plan in suggested],
            )
        ).values_list("partner_id", "metric_id", "value")
    }
    # The plan put to work is the first (by partner) whose partner booked revenue and closed deals.
    plan = next(
        plan
        for plan in suggested
        if observed.get((plan.partner_id, revenue.pk), 0) > 0 and observed.get((plan.partner_id, velocity.pk), 0) > 0
    )
    partner = Partner.objects.select_related("manager").get(pk=plan.partner_id)
    leader = partner.manager or admin
    plan_activate(
        plan=plan,
        leader=leader,
        root_cause=RootCause.CAPABILITY_GAP,
        root_cause_analysis=(
            "Two of the partner's three certified engineers left in the spring; deals stall at the technical "
            "evaluation, so velocity dropped and revenue followed. Hiring alone will not close the gap in time."
        ),
        by=admin,
    )
    quarter = parse_period(period, start_month=Tenant.objects.get(pk=partner.tenant_id).fiscal_year_start_month)
    booked = observed[(partner.pk, revenue.pk)]
    days = observed[(partner.pk, velocity.pk)]
    milestones = [
        ("Hold revenue at 90% of the quarter booked", period, revenue, Comparison.AT_LEAST, booked * MET_SHARE),
        ("Close deals 20% faster", period, velocity, Comparison.AT_MOST, days * MISSED_SHARE),
        ("Back to the revenue of the quarter", quarter.next().key, revenue, Comparison.AT_LEAST, booked),
    ]
    for title, key, metric, comparison, target in milestones:
        milestone_add(
            plan=plan,
            by=leader,
            title=title,
            due_on=parse_period(key, start_month=quarter.start_month).end,
            period=key,
            metric=metric,
            target_value=target.quantize(Decimal("1"), rounding=ROUND_FLOOR),
            comparison=comparison,
        )
        created["milestone"] += 1
    milestones_evaluate(period=period)
    today = timezone.localdate()
    for held_on, outcome, note in [
        (quarter.end + datetime.timedelta(days=3), CheckpointOutcome.ON_TRACK, "Hiring plan agreed; two offers out."),
        (quarter.end + datetime.timedelta(days=17), CheckpointOutcome.AT_RISK, "Velocity missed its milestone."),
    ]:
        # A checkpoint is recorded once held; on a clock before the scorecard's calendar it is held today.
        checkpoint_add(plan=plan, by=leader, held_on=min(held_on, today), outcome=outcome, note=note)
    action = action_create(
        partner=partner,
        by=leader,
        title="Pair the partner's new engineers with our solution architects",
        due_on=today + datetime.timedelta(days=45),
        owner=leader,
        plan=plan,
        priority=Priority.HIGH,
        kind=ActionKind.MID_TERM,
        root_cause=RootCause.CAPABILITY_GAP,
    )
    action_progress(action=action, by=leader, percent=30, note="First two pairings held.")
    created["action item"] += 1
