"""Data health: check incoming observations, review suspect ones, and say which count in scores.

Every current observation of a period is checked once (observations are append-only: a new value
gets a check of its own) before the period is scored, against the partner's earlier periods and
its segment's values (:mod:`scorecards.health` holds the method). A suspect value waits for a
manager's review; until then the tenant's policy decides whether it counts in scores. Reviewing
one queues the partner's recompute, so the score follows the decision.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from partnerhub.tenancy.audit import audit
from partnerhub.tenancy.context import current_tenant_id
from partnerhub.tenancy.models import Membership, Tenant, User
from partnerhub.tenancy.roles import Capability
from scorecards.health import HISTORY_PERIODS, SUPPORT, MetricInfo, check_values
from scorecards.models import CheckReview, Metric, MetricObservation, ObservationCheck, ObservationSource

CHECK_BATCH = 5_000


def counted_observations(queryset: QuerySet) -> QuerySet:
    """``queryset`` of observations without the ones that must not count in scores.

    A rejected value never counts; a suspect value not reviewed yet counts only when the tenant's
    policy says so. Values without a check (not checked yet) count.
    """
    excluded = Q(health_check__review=CheckReview.REJECTED)
    tenant = Tenant.objects.only("suspect_values_count").get(pk=current_tenant_id())
    if not tenant.suspect_values_count:
        excluded |= Q(health_check__suspect=True, health_check__review=CheckReview.UNREVIEWED)
    return queryset.exclude(excluded)


def _previous_periods(period: str, count: int) -> list[str]:
    from scorecards.selectors import previous_periods

    return previous_periods(period, count)


def check_observations(*, period: str, partner_ids: Iterable[int] | None = None) -> int:
    """Check the period's current observations that have no check yet; returns how many were checked."""
    todo = MetricObservation.objects.current().filter(period=period, health_check__isnull=True)
    if partner_ids is not None:
        todo = todo.filter(partner_id__in=list(partner_ids))
    rows = list(
        todo.order_by("pk").values_list(
            "pk", "partner_id", "partner__partner_type__key", "metric_id", "metric__key", "value", "source"
        )
    )
    if not rows:
        return 0
    columns = ["observation_id", "partner_id", "segment", "metric_id", "metric", "value", "source"]
    incoming = pd.DataFrame(rows, columns=columns)
    incoming["period"] = period
    incoming["value"] = incoming["value"].astype(float)
    partners = sorted(set(incoming["partner_id"]))
    metric_ids = sorted(set(incoming["metric_id"]))
    segments = sorted(set(incoming["segment"]))
    metrics = {metric.key: MetricInfo(metric.name, metric.unit) for metric in Metric.objects.filter(pk__in=metric_ids)}

    current = MetricObservation.objects.current()
    history = pd.DataFrame(
        list(
            current.filter(
                partner_id__in=partners, metric_id__in=metric_ids, period__in=_previous_periods(period, HISTORY_PERIODS)
            ).values_list("partner_id", "metric__key", "value")
        ),
        columns=["partner_id", "metric", "value"],
    )
    peers = pd.DataFrame(
        list(
            current.filter(period=period, metric_id__in=metric_ids, partner__partner_type__key__in=segments)
            .exclude(health_check__review=CheckReview.REJECTED)
            .values_list("partner__partner_type__key", "metric__key", "value")
        ),
        columns=["segment", "metric", "value"],
    )
    peers["period"] = period
    activity = pd.DataFrame(
        list(
            current.filter(
                partner_id__in=partners, period=period, metric__key__in=sorted(set(SUPPORT.values()))
            ).values_list("partner_id", "metric__key", "value")
        ),
        columns=["partner_id", "metric", "value"],
    )
    activity["period"] = period
    for frame in (history, peers, activity):
        frame["value"] = frame["value"].astype(float)

    checked = check_values(
        incoming[["partner_id", "segment", "metric", "period", "value"]],
        history=history,
        peers=peers,
        metrics=metrics,
        activity=activity,
    )
    tenant_id, now = current_tenant_id(), timezone.now()
    sources = dict(zip(incoming["observation_id"], incoming["source"], strict=True))
    checks = [
        ObservationCheck(
            tenant_id=tenant_id,
            observation_id=int(observation_id),
            partner_id=int(partner_id),
            metric_id=int(metric_id),
            period=period,
            suspect=bool(suspect),
            reasons=list(reasons),
            history_z=None if pd.isna(history_z) else round(float(history_z), 3),
            segment_z=None if pd.isna(segment_z) else round(float(segment_z), 3),
            checked_at=now,
            # An approved correction is a value a manager has already decided on.
            review=CheckReview.ACCEPTED
            if sources.get(observation_id) == ObservationSource.CORRECTION
            else CheckReview.UNREVIEWED,
        )
        for observation_id, partner_id, metric_id, suspect, reasons, history_z, segment_z in zip(
            incoming["observation_id"],
            incoming["partner_id"],
            incoming["metric_id"],
            checked["suspect"],
            checked["reasons"],
            checked["history_z"],
            checked["segment_z"],
            strict=True,
        )
    ]
    # ignore_conflicts: a check written meanwhile by a concurrent recompute of the same period stands.
    ObservationCheck.objects.bulk_create(checks, batch_size=CHECK_BATCH, ignore_conflicts=True)
    return len(checks)


@transaction.atomic
def check_review(*, check: ObservationCheck, accept: bool, note: str = "", by: User) -> ObservationCheck:
    """A manager's decision on a suspect value: accepted, it counts; rejected, it never counts."""
    membership = Membership.objects.filter(user=by).first() if isinstance(by, User) else None
    if membership is None or not membership.can(Capability.DECIDE_CORRECTIONS):
        raise PermissionDenied("Only partner managers and administrators review suspect values.")
    check = (
        ObservationCheck.objects.select_for_update().select_related("observation", "partner", "metric").get(pk=check.pk)
    )
    if not check.suspect:
        raise ValidationError("This value was not found suspect; there is nothing to review.")
    if check.observation.superseded_by_id is not None:
        raise ValidationError("A newer value has replaced this one since; review the newer value instead.")
    note = (note or "").strip()
    if not accept and not note:
        raise ValidationError({"note": "Say why the value is rejected: the partner's manager will read it."})
    before = check.review
    check.review = CheckReview.ACCEPTED if accept else CheckReview.REJECTED
    check.reviewed_by, check.reviewed_at, check.review_note = by, timezone.now(), note
    check.save(update_fields=["review", "reviewed_by", "reviewed_at", "review_note"])
    audit(
        actor=by,
        verb="observation.reviewed",
        target=check.observation,
        changes={
            "review": [before, check.review],
            "partner": [None, check.partner.name],
            "metric": [None, check.metric.key],
            "period": [None, check.period],
            "value": [None, str(check.observation.value)],
            **({"note": [None, note]} if note else {}),
        },
    )
    _rescore(check)
    return check


def _rescore(check: ObservationCheck) -> None:
    """The partner's score for the period follows the review: its recompute, on commit."""
    from scorecards.tasks import recompute_partner_task

    tenant_id, partner_id, period = check.tenant_id, check.partner_id, check.period
    transaction.on_commit(
        lambda: recompute_partner_task.delay(
            tenant_id=tenant_id, partner_id=partner_id, period=period, reason="suspect value reviewed"
        )
    )


def suspects(*, period: str | None = None, partner_ids: Iterable[int] | None = None, review: str | None = None):
    """Suspect checks of current observations, newest first, with what the pages show."""
    rows = ObservationCheck.objects.filter(suspect=True, observation__superseded_by__isnull=True).select_related(
        "partner", "metric", "observation", "reviewed_by"
    )
    if period:
        rows = rows.filter(period=period)
    if partner_ids is not None:
        rows = rows.filter(partner_id__in=list(partner_ids))
    if review:
        rows = rows.filter(review=review)
    return rows.order_by("review", "-checked_at", "-pk")
