"""Milestones judged against what was observed: met or missed, from the counted value of the period.

After a period's recompute, every milestone of an open plan whose period is that period or an
earlier one, and has ended, is compared with the partner's counted value of the metric for the
milestone's period (the same value scores use: current, not rejected, suspect ones per the
workspace's policy; see ``scorecards.services.health.counted_observations``). "At least" is met at
or above the target, "at most" at or below it. A period still under way is not judged: a partial
quarter would make a sum look missed.

The judgement follows the value in force while the plan is open: an approved correction
supersedes the observation and queues the period's recompute, which evaluates again and turns a
missed milestone met (or back) if the corrected value says so; a value that no longer counts (a
rejected one) puts the milestone back to pending. Each change gets an audit event naming the
values. A closed plan's milestones keep their last judgement. Running it again changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from actions.models import OPEN_PLAN_STATUSES, Comparison, Milestone, MilestoneStatus
from partnerhub.tenancy.audit import actor_label
from partnerhub.tenancy.context import current_tenant_id
from partnerhub.tenancy.models import AuditEvent, Tenant
from scorecards.models import MetricObservation
from scorecards.periods import PeriodError, parse_period
from scorecards.services.health import counted_observations

UPDATE_BATCH = 500


@dataclass(frozen=True, slots=True)
class MilestonesEvaluated:
    """What one evaluation changed."""

    met: int = 0
    missed: int = 0
    pending_again: int = 0

    @property
    def changed(self) -> int:
        return self.met + self.missed + self.pending_again


def judge(comparison: str, observed: Decimal, target: Decimal) -> str:
    """Met or missed: "at least" is met at or above the target, "at most" at or below it."""
    met = observed >= target if comparison == Comparison.AT_LEAST else observed <= target
    return MilestoneStatus.MET if met else MilestoneStatus.MISSED


def _plain(number: Decimal | None) -> str | None:
    return None if number is None else format(number.normalize(), "f")


@transaction.atomic
def milestones_evaluate(*, period: str) -> MilestonesEvaluated:
    """Judge the milestones of open plans whose period is ``period`` or earlier and has ended.

    A fixed number of queries whatever the number of milestones: the milestones (locked), the
    counted values they name, one bulk update and one bulk insert of audit events.
    """
    tenant = Tenant.objects.only("fiscal_year_start_month").get(pk=current_tenant_id())
    start_month = tenant.fiscal_year_start_month
    upto = parse_period(period, start_month=start_month)
    today = timezone.localdate()
    # Locked in primary-key order: two evaluations at once take turns, and the second reads the
    # first one's judgements (a locked row is returned as last committed) and changes nothing.
    rows = (
        Milestone.objects.filter(plan__status__in=OPEN_PLAN_STATUSES)
        .select_for_update(of=("self",))
        .select_related("plan__partner", "metric")
        .order_by("pk")
    )
    due = []
    for milestone in rows:
        try:
            end = parse_period(milestone.period, start_month=start_month).end
        except PeriodError:  # stored keys are validated on the way in; an odd one is never judged
            continue
        if end <= upto.end and end < today:
            due.append(milestone)
    if not due:
        return MilestonesEvaluated()
    observed = {
        (partner_id, metric_id, key): value
        for partner_id, metric_id, key, value in counted_observations(
            MetricObservation.objects.current().filter(
                partner_id__in={m.plan.partner_id for m in due},
                metric_id__in={m.metric_id for m in due},
                period__in={m.period for m in due},
            )
        ).values_list("partner_id", "metric_id", "period", "value")
    }
    now = timezone.now()
    changed: list[Milestone] = []
    events: list[AuditEvent] = []
    counts = {MilestoneStatus.MET: 0, MilestoneStatus.MISSED: 0, MilestoneStatus.PENDING: 0}
    for milestone in due:
        value = observed.get((milestone.plan.partner_id, milestone.metric_id, milestone.period))
        status = (
            MilestoneStatus.PENDING if value is None else judge(milestone.comparison, value, milestone.target_value)
        )
        if status == milestone.status and value == milestone.observed_value:
            continue
        events.append(_event(milestone, status=status, value=value))
        milestone.status = status
        milestone.observed_value = value
        milestone.evaluated_at = None if value is None else now
        changed.append(milestone)
        counts[status] += 1
    if changed:
        Milestone.objects.bulk_update(changed, ["status", "observed_value", "evaluated_at"], batch_size=UPDATE_BATCH)
        AuditEvent.objects.bulk_create(events, batch_size=UPDATE_BATCH)
    return MilestonesEvaluated(
        met=counts[MilestoneStatus.MET],
        missed=counts[MilestoneStatus.MISSED],
        pending_again=counts[MilestoneStatus.PENDING],
    )


def _event(milestone: Milestone, *, status: str, value: Decimal | None) -> AuditEvent:
    """The audit event of one judgement, as ``audit()`` writes it (in bulk here, to keep queries flat)."""
    plan = milestone.plan
    return AuditEvent(
        tenant_id=milestone.tenant_id,
        actor=None,
        actor_label=actor_label(None),
        verb="plan.milestone_evaluated",
        target_type=plan._meta.label_lower,
        target_id=str(plan.pk),
        target_repr=str(plan)[:300],
        changes={
            "milestone": [None, milestone.title],
            "metric": [None, milestone.metric.key],
            "period": [None, milestone.period],
            "target": [None, f"{milestone.comparison} {_plain(milestone.target_value)}"],
            "observed": [_plain(milestone.observed_value), _plain(value)],
            "status": [milestone.status, status],
        },
    )
