"""The pre-read: what a review starts from, frozen into the review when it starts preparing.

A JSON-safe snapshot of the partner's latest score up to the period reviewed (total, rating,
change, completeness, rank, components, the change explained, flags), the segment's benchmarks
for that score, the partner's open action items, and the commitments and decisions of the
partner's previous finalized review. Numbers are plain floats, days and moments ISO 8601 text.
Reads only; a fixed number of queries.
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

from django.db.models import Prefetch

from actions.models import ActionItem
from partnerhub.partners.models import Partner
from reviews.models import CLOSED_STATES, DevelopmentCommitment, Review, ReviewDecision
from reviews.scores import SCORE_VALUES, latest_scores
from scorecards.models import Rating, SegmentBenchmark
from scorecards.periods import parse_period

PRE_READ_VERSION = 1
SCORE_DETAIL = (
    *SCORE_VALUES,
    "completeness",
    "rank",
    "percentile",
    "segment",
    "version_id",
    "components",
    "explanation",
)
FLAG_LABELS = {
    "flag_regression": "Regression",
    "flag_stagnation": "Stagnation",
    "flag_improving": "Improving",
    "flag_data_gap": "Data gap",
}


def _number(value: Decimal | float | None) -> float | None:
    return None if value is None else float(value)


def _day(value: datetime.date | None) -> str | None:
    return None if value is None else value.isoformat()


def _person(user) -> str | None:
    return None if user is None else user.get_full_name()


def _score(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {
        "id": row["pk"],
        "period": row["period"],
        "total": _number(row["total"]),
        "rating": row["rating"],
        "rating_label": Rating(row["rating"]).label if row["rating"] in Rating.values else row["rating"],
        "change": _number(row["change"]),
        "completeness": _number(row["completeness"]),
        "rank": row["rank"],
        "percentile": _number(row["percentile"]),
        "segment": row["segment"],
        "version_id": row["version_id"],
    }


def _benchmarks(row: dict[str, Any] | None) -> list[dict[str, Any]]:
    if row is None:
        return []
    benchmarks = SegmentBenchmark.objects.filter(
        version_id=row["version_id"], period=row["period"], segment=row["segment"]
    ).select_related("metric")
    return [
        {
            "metric_key": benchmark.metric.key,
            "metric": benchmark.metric.name,
            "partners": benchmark.partners,
            "p25": _number(benchmark.p25),
            "median": _number(benchmark.median),
            "p75": _number(benchmark.p75),
        }
        for benchmark in benchmarks.order_by("metric__key")
    ]


def _open_actions(partner_id: int, today: datetime.date) -> list[dict[str, Any]]:
    items = (
        ActionItem.objects.unfinished().filter(partner_id=partner_id).select_related("owner").order_by("due_on", "pk")
    )
    return [
        {
            "id": item.pk,
            "title": item.title,
            "status": item.status,
            "priority": item.priority,
            "due_on": _day(item.due_on),
            "overdue": item.is_overdue(today),
            "progress": item.progress,
            "owner": _person(item.owner),
        }
        for item in items
    ]


def _previous_review(review: Review) -> dict[str, Any] | None:
    previous = (
        Review.objects.current()
        .filter(partner_id=review.partner_id, state__in=CLOSED_STATES)
        .exclude(cycle_id=review.cycle_id)
        .order_by("-finalized_at", "-pk")
        .prefetch_related(
            Prefetch("commitments", queryset=DevelopmentCommitment.objects.order_by("created_at", "pk")),
            Prefetch(
                "decisions", queryset=ReviewDecision.objects.select_related("decided_by").order_by("created_at", "pk")
            ),
        )
        .first()
    )
    if previous is None:
        return None
    return {
        "id": previous.pk,
        "kind": previous.kind,
        "period": previous.period,
        "revision": previous.revision,
        "finalized_at": previous.finalized_at.isoformat() if previous.finalized_at else None,
        "commitments": [
            {
                "party": commitment.party,
                "text": commitment.text,
                "due_on": _day(commitment.due_on),
                "action_item_id": commitment.action_item_id,
            }
            for commitment in previous.commitments.all()
        ],
        "decisions": [
            {
                "decision": decision.decision,
                "rationale": decision.rationale,
                "decided_by": decision.decided_by_name or _person(decision.decided_by),
            }
            for decision in previous.decisions.all()
        ],
    }


def build_pre_read(review: Review, *, start_month: int, today: datetime.date) -> dict[str, Any]:
    """The snapshot a review's pre-read freezes, as of now."""
    period = parse_period(review.period, start_month=start_month)
    row = latest_scores(period=period, partners=Partner.objects.filter(pk=review.partner_id), fields=SCORE_DETAIL).get(
        review.partner_id
    )
    return {
        "version": PRE_READ_VERSION,
        "period": review.period,
        "score": _score(row),
        "components": list(row["components"] or []) if row else [],
        "explanation": dict(row["explanation"] or {}) if row else {},
        "flags": [label for name, label in FLAG_LABELS.items() if row and row[name]],
        "benchmarks": _benchmarks(row),
        "open_actions": _open_actions(review.partner_id, today),
        "previous_review": _previous_review(review),
    }
