"""Remediation plans: suggested from scores, activated with a leader and a root cause, followed
through milestones and checkpoints, closed completed or cancelled.

A partner has at most one open plan (suggested or active): the partial unique constraint
``plan_one_open_per_partner`` holds that whatever runs at once. Every write here is the program's
(internal people's); suggestions are the system's, after a period's recompute.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.http import Http404
from django.template.loader import render_to_string
from django.utils import timezone

from actions.models import (
    Checkpoint,
    CheckpointOutcome,
    Comparison,
    Milestone,
    PlanStatus,
    PlanTrigger,
    RemediationPlan,
    RootCause,
)
from actions.services.access import (
    NO_SUCH_PLAN,
    ensure_in_workspace,
    is_eligible_person,
    require_internal,
)
from actions.services.checks import clean_text, raise_errors
from partnerhub.partners.models import Partner, PartnerStatus
from partnerhub.tenancy.audit import audit
from partnerhub.tenancy.context import current_tenant_id
from partnerhub.tenancy.emails import Email, send_on_commit, subject
from partnerhub.tenancy.models import Membership, Tenant, User
from partnerhub.tenancy.roles import INTERNAL_ROLES
from scorecards.models import Metric, Rating, Score
from scorecards.periods import PeriodError, parse_period
from scorecards.services.observations import clean_value

PROGRAM_ONLY = "Remediation plans are run by the program's people."
FLAG_FIELDS = (
    ("regression", "flag_regression"),
    ("stagnation", "flag_stagnation"),
    ("improving", "flag_improving"),
    ("data_gap", "flag_data_gap"),
)


def _plain(number: Decimal | None) -> str | None:
    return None if number is None else format(number, "f")


def _locked(plan: Any) -> RemediationPlan:
    """The plan as stored now, locked until the transaction ends; another workspace's is "not found"."""
    ensure_in_workspace(plan, RemediationPlan, missing=NO_SUCH_PLAN)
    locked = (
        RemediationPlan.objects.select_for_update(of=("self",)).select_related("partner").filter(pk=plan.pk).first()
    )
    if locked is None:
        raise Http404(NO_SUCH_PLAN)
    return locked


def _ensure_open(plan: RemediationPlan) -> None:
    if not plan.is_open:
        raise ValidationError(
            f"This plan is {plan.get_status_display().lower()}; a closed plan stays closed. Open a new one.",
            code="closed",
        )


def _canonical_period(key: Any, field: str, errors: dict[str, list[str]]) -> str:
    tenant = Tenant.objects.only("fiscal_year_start_month").get(pk=current_tenant_id())
    try:
        return parse_period(key if isinstance(key, str) else "", start_month=tenant.fiscal_year_start_month).key
    except PeriodError as error:
        errors.setdefault(field, []).append(str(error))
        return ""


# --- Suggestions ----------------------------------------------------------------------------------------


def _trigger_detail(score: Score) -> dict[str, Any]:
    return {
        "score_id": score.pk,
        "version_id": score.version_id,
        "total": _plain(score.total),
        "rating": score.rating,
        "change": _plain(score.change),
        "flags": [name for name, field in FLAG_FIELDS if getattr(score, field)],
    }


def _newer_closed_periods(key: str) -> list[str] | None:
    """The keys of the closed periods after ``key``, up to yesterday's; None while ``key`` is still running."""
    tenant = Tenant.objects.only("fiscal_year_start_month").get(pk=current_tenant_id())
    period = parse_period(key, start_month=tenant.fiscal_year_start_month)
    today = timezone.localdate()
    if period.end >= today:
        return None
    newer = []
    following = period.next()
    while following.end < today:
        newer.append(following.key)
        following = following.next()
    return newer


@transaction.atomic
def plans_suggest(*, period: str) -> list[RemediationPlan]:
    """Suggest a plan for every partner whose current score of ``period`` needs improvement or regressed.

    Suggestions come from a closed period, and only from the newest closed period a partner was
    scored for: a period still running has partial figures, and a partner who has been scored
    since has moved on (so recomputing two years of history suggests nothing from it).
    Never a second open plan: a partner with one (suggested or active) is left alone, and so is a
    partner that already had a plan prompted by this period (one dismissed by cancelling it is not
    suggested again at every nightly recompute). Partners that left the program are skipped.
    Returns the plans created; running it again creates none.
    """
    errors: dict[str, list[str]] = {}
    period = _canonical_period(period, "period", errors)
    raise_errors(errors)
    newer = _newer_closed_periods(period)
    if newer is None:
        return []
    plans = RemediationPlan.objects.filter(partner_id=OuterRef("partner_id"))
    scored_since = Score.objects.current().filter(partner_id=OuterRef("partner_id"), period__in=newer)
    scores = (
        Score.objects.current()
        .filter(period=period)
        .filter(Q(rating=Rating.NEEDS_IMPROVEMENT) | Q(flag_regression=True))
        .exclude(partner__status=PartnerStatus.TERMINATED)
        .exclude(Exists(plans.open()))
        .exclude(Exists(plans.filter(trigger_period=period)))
        .exclude(Exists(scored_since))
        .select_related("partner__manager")
        .order_by("partner_id")
    )
    created = []
    for score in scores:
        needs_improvement = score.rating == Rating.NEEDS_IMPROVEMENT
        plan = RemediationPlan(
            partner=score.partner,
            status=PlanStatus.SUGGESTED,
            trigger=PlanTrigger.NEEDS_IMPROVEMENT if needs_improvement else PlanTrigger.REGRESSING,
            trigger_period=period,
            trigger_detail=_trigger_detail(score),
        )
        try:
            # A savepoint per plan: a concurrent run (or a manager opening a plan by hand) that got
            # there first makes plan_one_open_per_partner refuse this insert. On PostgreSQL the
            # insert waits for the other transaction and fails only if it commits; either way this
            # partner is skipped and the rest go on.
            with transaction.atomic():
                plan.save()
        except IntegrityError:
            continue
        audit(
            actor=None,
            verb="plan.suggested",
            target=plan,
            changes={
                "partner": [None, score.partner.name],
                "trigger": [None, plan.trigger],
                "trigger_period": [None, period],
                "total": [None, plan.trigger_detail["total"]],
            },
        )
        created.append(plan)
    send_on_commit(_suggested_emails(created))
    return created


def _suggested_emails(plans: list[RemediationPlan]) -> list[Email]:
    """One email per partner manager listing the plans suggested for their partners; nobody else is told.

    A manager who is no longer one of the workspace's program people is skipped.
    """
    by_manager: dict[int, list[RemediationPlan]] = defaultdict(list)
    for plan in plans:
        if plan.partner.manager_id is not None:
            by_manager[plan.partner.manager_id].append(plan)
    if not by_manager:
        return []
    managers = {
        membership.user_id: membership.user
        for membership in Membership.objects.filter(
            user_id__in=by_manager, role__in=INTERNAL_ROLES, user__is_active=True
        ).select_related("user")
    }
    return [
        Email(
            subject=subject(
                f"Remediation plan suggested: {ours[0].partner.name}"
                if len(ours) == 1
                else f"{len(ours)} remediation plans suggested for your partners"
            ),
            body=render_to_string("actions/email/plans_suggested.txt", {"manager": manager, "plans": ours}),
            recipients=(manager.email,),
        )
        for manager_id, ours in by_manager.items()
        if (manager := managers.get(manager_id)) is not None and manager.email
    ]


@transaction.atomic
def plan_open(*, partner: Partner, by: User, trigger_period: str, note: str = "") -> RemediationPlan:
    """One of the program's people opens a plan for a partner by hand (suggested, to be activated)."""
    require_internal(by, PROGRAM_ONLY)
    if not isinstance(partner, Partner) or partner.tenant_id != current_tenant_id():
        raise ValidationError({"partner": "Choose a partner of this workspace."})
    errors: dict[str, list[str]] = {}
    period = _canonical_period(trigger_period, "trigger_period", errors)
    note = clean_text(note, "note", errors)
    raise_errors(errors)
    if RemediationPlan.objects.open().filter(partner=partner).exists():
        raise ValidationError(f"{partner.name} already has an open remediation plan.", code="already_open")
    plan = RemediationPlan(
        partner=partner,
        status=PlanStatus.SUGGESTED,
        trigger=PlanTrigger.MANUAL,
        trigger_period=period,
        trigger_detail={"note": note} if note else {},
        created_by=by,
    )
    try:
        with transaction.atomic():
            plan.save()
    except IntegrityError as error:  # opened (or suggested) at the same moment
        raise ValidationError(f"{partner.name} already has an open remediation plan.", code="already_open") from error
    audit(
        actor=by,
        verb="plan.opened",
        target=plan,
        changes={"partner": [None, partner.name], "trigger_period": [None, period]},
    )
    return plan


# --- Lifecycle -----------------------------------------------------------------------------------------


@transaction.atomic
def plan_activate(
    *, plan: RemediationPlan, leader: User, root_cause: str, root_cause_analysis: str, by: User
) -> RemediationPlan:
    """Put a suggested plan to work: an accountable leader, the root cause and its analysis."""
    require_internal(by, PROGRAM_ONLY)
    plan = _locked(plan)
    _ensure_open(plan)
    if plan.status == PlanStatus.ACTIVE:
        raise ValidationError("This plan is already active.", code="active")
    errors: dict[str, list[str]] = {}
    if leader is None:
        errors["leader"] = ["An active plan has an accountable leader; choose one."]
    elif not is_eligible_person(leader, plan.partner):
        errors["leader"] = [f"The leader must be one of the program's people or a user of {plan.partner.name}."]
    if root_cause not in RootCause.values:
        errors["root_cause"] = ["Choose the root cause the plan addresses."]
    analysis = clean_text(
        root_cause_analysis,
        "root_cause_analysis",
        errors,
        missing="Write the root-cause analysis: what went wrong, why.",
    )
    raise_errors(errors)
    plan.status = PlanStatus.ACTIVE
    plan.leader = leader
    plan.root_cause = root_cause
    plan.root_cause_analysis = analysis
    plan.activated_at = timezone.now()
    plan.save(update_fields=["status", "leader", "root_cause", "root_cause_analysis", "activated_at"])
    audit(
        actor=by,
        verb="plan.activated",
        target=plan,
        changes={
            "status": [PlanStatus.SUGGESTED.value, PlanStatus.ACTIVE.value],
            "leader": [None, leader.email],
            "root_cause": [None, root_cause],
        },
    )
    return plan


@transaction.atomic
def plan_close(*, plan: RemediationPlan, status: str, note: str, by: User) -> RemediationPlan:
    """Close an open plan: completed (an active plan that did its work) or cancelled (with a reason).

    Its milestones keep their last evaluation and are not evaluated again.
    """
    require_internal(by, PROGRAM_ONLY)
    plan = _locked(plan)
    _ensure_open(plan)
    errors: dict[str, list[str]] = {}
    if status not in (PlanStatus.COMPLETED, PlanStatus.CANCELLED):
        errors["status"] = ["A plan is closed as completed or cancelled."]
    elif status == PlanStatus.COMPLETED and plan.status != PlanStatus.ACTIVE:
        errors["status"] = ["Only an active plan is completed; cancel a suggestion that is not needed."]
    note = clean_text(
        note, "note", errors, missing="Say why the plan is cancelled." if status == PlanStatus.CANCELLED else None
    )
    raise_errors(errors)
    previous = plan.status
    plan.status = status
    plan.closed_at = timezone.now()
    plan.closing_note = note
    plan.save(update_fields=["status", "closed_at", "closing_note"])
    audit(
        actor=by,
        verb=f"plan.{status}",
        target=plan,
        changes={"status": [previous, status], **({"note": [None, note]} if note else {})},
    )
    return plan


# --- Milestones and checkpoints ----------------------------------------------------------------------------


@transaction.atomic
def milestone_add(
    *,
    plan: RemediationPlan,
    by: User,
    title: str,
    due_on: datetime.date,
    period: str,
    metric: Metric,
    target_value: Any,
    comparison: str = Comparison.AT_LEAST,
) -> Milestone:
    """Add a milestone to an open plan: a metric's target for a period, checked once the period is observed."""
    require_internal(by, PROGRAM_ONLY)
    plan = _locked(plan)
    _ensure_open(plan)
    errors: dict[str, list[str]] = {}
    title = clean_text(title, "title", errors, missing="Give the milestone a title.")
    if not isinstance(due_on, datetime.date) or isinstance(due_on, datetime.datetime):
        errors["due_on"] = ["Give the due date as a day."]
    period = _canonical_period(period, "period", errors)
    if comparison not in Comparison.values:
        errors["comparison"] = ["Compare with “at least” or “at most”."]
    value = None
    if not isinstance(metric, Metric) or metric.tenant_id != current_tenant_id():
        errors["metric"] = ["Choose a metric of this workspace."]
    elif not metric.is_active:
        errors["metric"] = [f"{metric.name} is no longer in use in the catalogue."]
    else:
        try:
            value = clean_value(target_value, metric=metric)
        except ValidationError as error:
            errors["target_value"] = error.message_dict["value"]
    raise_errors(errors)
    milestone = Milestone.objects.create(
        plan=plan,
        title=title,
        due_on=due_on,
        period=period,
        metric=metric,
        comparison=comparison,
        target_value=value,
    )
    audit(
        actor=by,
        verb="plan.milestone_added",
        target=plan,
        changes={
            "milestone": [None, title],
            "metric": [None, metric.key],
            "period": [None, period],
            "target": [None, f"{comparison} {_plain(value)}"],
        },
    )
    return milestone


@transaction.atomic
def checkpoint_add(
    *, plan: RemediationPlan, by: User, held_on: datetime.date, outcome: str, note: str = ""
) -> Checkpoint:
    """Record a look at an active plan's progress; a plan at risk or off track says why."""
    require_internal(by, PROGRAM_ONLY)
    plan = _locked(plan)
    _ensure_open(plan)
    if plan.status != PlanStatus.ACTIVE:
        raise ValidationError("Checkpoints follow an active plan; activate the plan first.", code="not_active")
    errors: dict[str, list[str]] = {}
    if not isinstance(held_on, datetime.date) or isinstance(held_on, datetime.datetime):
        errors["held_on"] = ["Give the day the checkpoint was held."]
    elif held_on > timezone.localdate():
        errors["held_on"] = ["A checkpoint is recorded once it has been held; that day is still to come."]
    if outcome not in CheckpointOutcome.values:
        errors["outcome"] = ["Say whether the plan is on track, at risk or off track."]
    note = clean_text(
        note,
        "note",
        errors,
        missing="Say what puts the plan at risk or off track." if outcome != CheckpointOutcome.ON_TRACK else None,
    )
    raise_errors(errors)
    checkpoint = Checkpoint.objects.create(plan=plan, held_on=held_on, outcome=outcome, note=note, author=by)
    audit(
        actor=by,
        verb="plan.checkpoint_added",
        target=plan,
        changes={
            "held_on": [None, str(held_on)],
            "outcome": [None, outcome],
            **({"note": [None, note]} if note else {}),
        },
    )
    return checkpoint
