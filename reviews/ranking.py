"""Ranking a manager's partners by how much they need a detailed review. Pure: no database.

Within one manager's partners (partners without a manager form one "unassigned" group), the
order is:

1. no score up to the reviewed period: nothing tells us how the partner is doing;
2. rated "needs improvement";
3. flagged as regressing;
4. flagged with a data gap;
5. flagged as stagnating;
6. then the lowest total first; the partner's name breaks the remaining ties.

A criterion outranks everything after it (a partner needing improvement comes before every
partner that does not, whatever their flags). Rank 1 needs a detailed review most; the first
``capacity`` of each manager are reviewed in detail, the others monitored.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from reviews.models import ReviewTrack
from scorecards.models import Rating


@dataclass(frozen=True)
class Candidate:
    """A partner due for review, with what its latest score says (``score`` None: no score)."""

    partner_id: int
    name: str
    manager_id: int | None
    score: dict[str, Any] | None = None


@dataclass
class Ranked:
    candidate: Candidate
    priority: int
    track: str
    reasons: list[str] = field(default_factory=list)


def need_key(candidate: Candidate) -> tuple:
    """Sorts the partner who needs a detailed review most first."""
    score = candidate.score
    if score is None:
        return (0, 0, 0, 0, 0, Decimal(0), candidate.name.casefold(), candidate.partner_id)
    return (
        1,
        int(score["rating"] != Rating.NEEDS_IMPROVEMENT),
        int(not score["flag_regression"]),
        int(not score["flag_data_gap"]),
        int(not score["flag_stagnation"]),
        Decimal(score["total"]),
        candidate.name.casefold(),
        candidate.partner_id,
    )


MINUS = "\N{MINUS SIGN}"


def _points(value: Any) -> str:
    return format(Decimal(value).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP), "f")


def need_reasons(candidate: Candidate, *, period: str) -> list[str]:
    """Why a partner ranks where it does, in the words a manager reads on the cycle's page."""
    score = candidate.score
    if score is None:
        return [f"No score up to {period}: nothing yet tells how the partner is doing."]
    reasons = []
    if score["rating"] == Rating.NEEDS_IMPROVEMENT:
        reasons.append(f"Rated “needs improvement” in {score['period']}.")
    if score["flag_regression"]:
        reasons.append("Regressing: the score dropped sharply or twice in a row.")
    if score["flag_data_gap"]:
        reasons.append("Data gap: too few of the scorecard's values were reported.")
    if score["flag_stagnation"]:
        reasons.append("Stagnating: the score has barely moved for several periods.")
    change = score.get("change")
    change_text = ""
    if change is not None:
        sign = "+" if change >= 0 else MINUS
        change_text = f", {sign}{_points(abs(change))} since the period before"
    reasons.append(f"Score {_points(score['total'])} in {score['period']}{change_text}.")
    return reasons


def rank_by_need(
    candidates: Iterable[Candidate],
    *,
    capacity: int,
    period: str,
    taken: dict[int | None, tuple[int, int]] | None = None,
) -> list[Ranked]:
    """Rank each manager's candidates by need and split them into detailed and monitored.

    ``taken`` gives, per manager, the reviews a cycle already holds (highest priority given, detailed
    count): newcomers are ranked among themselves and placed after them, detailed while the
    manager's capacity lasts.
    """
    taken = taken or {}
    groups: dict[int | None, list[Candidate]] = defaultdict(list)
    for candidate in candidates:
        groups[candidate.manager_id].append(candidate)
    ranked = []
    for manager_id, group in groups.items():
        last_priority, detailed = taken.get(manager_id, (0, 0))
        for offset, candidate in enumerate(sorted(group, key=need_key), start=1):
            track = ReviewTrack.DETAILED if detailed < capacity else ReviewTrack.MONITORED
            detailed += track == ReviewTrack.DETAILED
            ranked.append(
                Ranked(
                    candidate=candidate,
                    priority=last_priority + offset,
                    track=track,
                    reasons=need_reasons(candidate, period=period),
                )
            )
    return ranked
