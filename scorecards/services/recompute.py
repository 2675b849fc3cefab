"""Storing scores: recompute a period or one partner, and coalesce requests to recompute.

A selector builds the engine's frames, ``scorecards.scoring`` computes, and this module stores the
result. Stored numbers come from the engine's floats, which hold exact thousandths (points, totals)
or millionths (raw values, benchmarks): ``Decimal(repr(x))`` reads back exactly those digits, so
the same version and observations always store byte-identical numbers.

Idempotent by construction: a partner whose current score already has this version, the same
fingerprint (observations and rules used) and the same basis (the earlier scores its change,
explanation and flags are measured against) gets nothing written. Anything else gets a new
revision; the previous one stays, with ``is_current`` False, as history.
"""

from __future__ import annotations

import hashlib
import logging
import math
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max
from django.db.models.fields.json import KT
from django.utils import timezone

from partnerhub.partners.models import Partner
from partnerhub.tenancy.audit import audit
from partnerhub.tenancy.context import current_tenant_id
from scorecards import selectors
from scorecards.flags import FlagRules, trend_flags
from scorecards.models import (
    Normalization,
    RecomputeRun,
    RecomputeStatus,
    Score,
    ScorecardVersion,
    SegmentBenchmark,
    VersionStatus,
)
from scorecards.periods import parse_period
from scorecards.scoring import ScoringResult, compute_period, explain_change, fingerprint
from scorecards.selectors import ScoringInputs
from scorecards.services.health import check_observations
from scorecards.services.score_writes import COLUMNS, components_text, explanation_text, insert_scores, terms_text

logger = logging.getLogger(__name__)

# Partners written per transaction: each batch commits, so a recompute's progress is visible to
# the pages while it runs, and a redelivered task skips the batches already stored.
BATCH_SIZE = 2000
THOUSANDTH = Decimal("0.001")
MILLIONTH = Decimal("0.000001")


@dataclass
class RecomputeSummary:
    """What one recompute did."""

    version_id: int
    period: str
    partners: int = 0
    written: int = 0
    reranked: int = 0
    benchmarks: int = 0
    partner_ids_written: list[int] = field(default_factory=list)


# --- Numbers ---------------------------------------------------------------------------------------


def _finite(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def to_decimal(value: float, places: Decimal = THOUSANDTH) -> Decimal:
    """A stored Decimal from an engine float: its shortest repr, then quantized (exact for the engine's values)."""
    return Decimal(repr(float(value))).quantize(places)


def _json_number(value):
    """An engine float as a JSON number (None when missing); ints stay ints."""
    if not _finite(value):
        return None
    value = float(value) + 0.0  # -0.0 reads as 0.0
    return value


# --- Inputs of the derived fields ---------------------------------------------------------------------


def flag_rules(version: ScorecardVersion) -> FlagRules:
    return FlagRules(
        regression_points=float(settings.SCORECARD_REGRESSION_POINTS),
        stagnation_points=float(settings.SCORECARD_STAGNATION_POINTS),
        streak=3,
        min_completeness=float(version.min_completeness),
    )


def _scope_filter(queryset, *, partner_ids: list[int] | None, segments: list[str] | None, field_prefix=""):
    """Narrow a per-partner queryset the cheapest way: ids when few, segments when given, else all."""
    if partner_ids is not None and len(partner_ids) <= 1000:
        return queryset.filter(**{f"{field_prefix}partner_id__in": partner_ids})
    if segments is not None:
        return queryset.filter(**{f"{field_prefix}partner__partner_type__key__in": segments})
    return queryset


def _current_scores(period: str, ids: pd.Index, *, segments) -> pd.DataFrame:
    """The current score of each partner in the period (if any) and the highest revision so far."""
    queryset = _scope_filter(Score.objects.filter(period=period), partner_ids=list(ids), segments=segments)
    current = pd.DataFrame(
        list(
            queryset.filter(is_current=True)
            .annotate(basis=KT("explanation__basis"))
            .values_list("partner_id", "pk", "version_id", "fingerprint", "rank", "percentile", "basis")
        ),
        columns=["partner_id", "score_id", "version_id", "fingerprint", "rank", "percentile", "basis"],
    ).set_index("partner_id")
    revisions = pd.DataFrame(
        list(queryset.values("partner_id").annotate(top=Max("revision")).values_list("partner_id", "top")),
        columns=["partner_id", "top_revision"],
    ).set_index("partner_id")
    frame = current.join(revisions, how="outer").reindex(ids)
    frame["top_revision"] = frame["top_revision"].fillna(0).astype("int64")
    return frame


def _history(period: str, ids: pd.Index, *, segments, count: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Current scores of the ``count`` periods before ``period``.

    Returns the totals (partner x periods back, column k = k periods before, NaN where none) and
    the previous period's rows (score_id, version_id, fingerprint, segment, total).
    """
    before = selectors.previous_periods(period, count)
    queryset = _scope_filter(
        Score.objects.current().filter(period__in=before), partner_ids=list(ids), segments=segments
    )
    rows = pd.DataFrame(
        list(queryset.values_list("partner_id", "period", "total")), columns=["partner_id", "period", "total"]
    )
    totals = pd.DataFrame(np.nan, index=ids, columns=before)
    if len(rows):
        rows["total"] = rows["total"].map(float).astype("float64")
        table = rows.pivot_table(index="partner_id", columns="period", values="total", aggfunc="last")
        totals = table.reindex(index=ids, columns=before)
    totals.columns = range(1, count + 1)
    previous = pd.DataFrame(
        list(
            queryset.filter(period=before[0]).values_list(
                "partner_id", "pk", "version_id", "fingerprint", "segment", "total"
            )
        ),
        columns=["partner_id", "score_id", "version_id", "fingerprint", "segment", "total"],
    ).set_index("partner_id")
    previous = previous[previous.index.isin(ids)]
    return totals, previous


def _previous_result(period: str, previous: pd.DataFrame) -> ScoringResult | None:
    """The previous period's stored scores as an engine result (totals and contributions only)."""
    if previous.empty:
        return None
    scores = pd.DataFrame(
        {
            "partner_id": previous.index.to_numpy(dtype=np.int64),
            "segment": previous["segment"].to_numpy(dtype=object),
            "total": previous["total"].map(float).to_numpy(dtype=np.float64),
        }
    )
    few = len(previous) <= 1000
    components = selectors.stored_contributions(
        period=period, partner_ids=[int(pk) for pk in previous.index] if few else None
    )
    components = components[components["partner_id"].isin(previous.index)]
    return ScoringResult(scores=scores, components=components, benchmarks=pd.DataFrame())


def _restrict(result: ScoringResult, ids: Iterable[int]) -> ScoringResult:
    keep = np.asarray(list(ids), dtype=np.int64)
    return ScoringResult(
        scores=result.scores[result.scores["partner_id"].isin(keep)],
        components=result.components[result.components["partner_id"].isin(keep)],
        benchmarks=result.benchmarks,
    )


def _explanations(
    inputs: ScoringInputs, result: ScoringResult, previous: pd.DataFrame
) -> tuple[pd.DataFrame, dict[int, str]]:
    """The change decomposition of every partner with a previous score, and per partner the
    fingerprint of the previous period's observations under this version's rules (for partners
    whose previous score used another version)."""
    prior_period = selectors.previous_periods(inputs.period, 1)[0]
    previous_result = _previous_result(prior_period, previous)
    if previous_result is None:
        return explain_change(previous=None, current=result), {}
    same = previous.index[previous["version_id"] == inputs.version.pk]
    other = previous.index[previous["version_id"] != inputs.version.pk]
    parts = []
    if len(same):
        parts.append(explain_change(previous=_restrict(previous_result, same), current=_restrict(result, same)))
    rescored_fingerprints: dict[int, str] = {}
    if len(other):
        # The rules changed between the periods: last period's observations scored under this
        # period's rules separate the effect of the new rules (one 'version' term) from the data.
        segments = sorted(set(inputs.partners.loc[inputs.partners["partner_id"].isin(other), "segment"]))
        prior = selectors.scoring_inputs(version=inputs.version, period=prior_period, segments=segments)
        rescored = compute_period(rules=prior.rules, partners=prior.partners, observations=prior.observations)
        prints = fingerprint(
            rules_fingerprint=prior.rules_fingerprint,
            observations=prior.observations,
            partners=prior.partners,
            rules=prior.rules,
        )
        rescored_fingerprints = {int(k): v for k, v in prints.items() if k in set(other)}
        parts.append(
            explain_change(
                previous=_restrict(previous_result, other),
                current=_restrict(result, other),
                previous_under_current_rules=_restrict(rescored, other),
            )
        )
    return pd.concat(parts, ignore_index=True), rescored_fingerprints


def _bases(
    ids: pd.Index, totals: pd.DataFrame, previous: pd.DataFrame, rescored: dict[int, str], rules: FlagRules
) -> pd.Series:
    """Per partner, a digest of what its change, explanation and flags are measured against."""
    history = totals.apply(lambda column: column.map(lambda v: "-" if pd.isna(v) else repr(float(v))))
    text = pd.Series(f"flags {rules.regression_points!r} {rules.stagnation_points!r} {rules.streak}", index=ids)
    for column in history.columns:
        text = text + " " + history[column]
    prev = previous.reindex(ids)
    text = (
        text
        + "|"
        + prev["version_id"].map(lambda v: "-" if pd.isna(v) else str(int(v)))
        + "|"
        + prev["fingerprint"].fillna("-").astype(str)
        + "|"
        + pd.Series([rescored.get(int(pk), "-") for pk in ids], index=ids)
    )
    return text.map(lambda value: hashlib.sha256(value.encode()).hexdigest())


# --- Recompute -----------------------------------------------------------------------------------------


def recompute_period(
    *, version: ScorecardVersion, period: str, run: RecomputeRun | None = None, partner_ids=None
) -> RecomputeSummary:
    """Recompute a period's scores under a version, writing only what changed.

    ``partner_ids`` names partners whose data changed: only their segments are recomputed (every
    number the engine produces is relative to the segment at most), and every partner there whose
    inputs changed gets a new revision. Not one transaction: each batch of partners commits with
    its progress, and the whole is idempotent, so a run that dies half-way is completed by the
    next one without writing anything twice.
    """
    segments = None
    if partner_ids is not None:
        segments = sorted(
            set(Partner.objects.filter(pk__in=list(partner_ids)).values_list("partner_type__key", flat=True))
        )
    inputs = selectors.scoring_inputs(version=version, period=period, segments=segments)
    return _store(inputs, run=run, segments=segments)


def _store(
    inputs: ScoringInputs,
    *,
    run: RecomputeRun | None,
    segments: list[str] | None,
    alone: bool = False,
) -> RecomputeSummary:
    """Compute and store. ``alone``: the frames hold one partner, so ranks, percentiles and
    benchmarks are not the engine's to give; the database re-ranks the segment instead."""
    version, period = inputs.version, inputs.period
    summary = RecomputeSummary(version_id=version.pk, period=period, partners=len(inputs.partners))
    if run is not None:
        RecomputeRun.objects.filter(pk=run.pk).update(partners_total=summary.partners, partners_done=0)

    result = compute_period(rules=inputs.rules, partners=inputs.partners, observations=inputs.observations)
    prints = fingerprint(
        rules_fingerprint=inputs.rules_fingerprint,
        observations=inputs.observations,
        partners=inputs.partners,
        rules=inputs.rules,
    )
    ids = pd.Index(inputs.partners["partner_id"].to_numpy(dtype=np.int64), name="partner_id")
    rules = flag_rules(version)
    existing = _current_scores(period, ids, segments=segments)
    totals, previous = _history(period, ids, segments=segments, count=rules.history_needed)
    change, rescored = _explanations(inputs, result, previous)
    bases = _bases(ids, totals, previous, rescored, rules)

    scores = result.scores.set_index("partner_id").reindex(ids)
    flags = trend_flags(pd.concat([scores["total"].rename(0), totals], axis=1), scores["completeness"], rules)

    unchanged = (
        existing["score_id"].notna()
        & (existing["version_id"] == version.pk)
        & (existing["fingerprint"] == prints.reindex(ids))
        & (existing["basis"] == bases)
    ).to_numpy()
    to_write = ids[~unchanged]
    summary.partner_ids_written = [int(pk) for pk in to_write]

    # Rank and percentile are positions within the segment: another partner's new total moves
    # them without changing this partner's own score, so they are updated in place, not revised.
    if not alone:
        kept = existing.loc[unchanged]
        moved = kept[
            (kept["rank"] != scores.loc[kept.index, "rank"])
            | (kept["percentile"] != scores.loc[kept.index, "percentile"].map(to_decimal))
        ]
        summary.reranked = _rerank(moved, scores)

    frame = _rows_frame(inputs, scores, flags, existing, previous, bases, prints, to_write)
    names = dict(zip(inputs.metrics["metric_key"], inputs.metrics["name"], strict=True))
    components = result.components[result.components["partner_id"].isin(to_write)]
    if len(change):
        change = change[change["partner_id"].isin(to_write)]
    computed_at = timezone.now()
    done = len(ids) - len(to_write)
    for start in range(0, len(frame), BATCH_SIZE):
        batch = frame.iloc[start : start + BATCH_SIZE]
        low, high = int(batch.index[0]), int(batch.index[-1])
        # Components and terms are sorted by partner: each batch is a contiguous slice of them.
        rows = _score_rows(
            inputs,
            batch,
            components_text(components[components["partner_id"].between(low, high)], names),
            terms_text(change[change["partner_id"].between(low, high)]) if len(change) else {},
            computed_at,
        )
        superseded = [int(pk) for pk in batch["score_id"].dropna()]
        with transaction.atomic():
            Score.objects.filter(pk__in=superseded).update(is_current=False)
            insert_scores(rows)
            done += len(batch)
            if run is not None:
                RecomputeRun.objects.filter(pk=run.pk).update(partners_done=done, scores_written=start + len(batch))
    summary.written = len(frame)

    with transaction.atomic():
        if alone:
            if summary.written:
                summary.reranked = rerank_segments(version=version, period=period, segments=segments)
        else:
            summary.benchmarks = _replace_benchmarks(inputs, result, segments=segments)
        if run is not None:
            RecomputeRun.objects.filter(pk=run.pk).update(partners_done=len(ids), scores_written=summary.written)
            audit(
                actor=None,
                verb="scores.recomputed",
                target=run,
                changes={
                    "version": [None, str(version)],
                    "period": [None, period],
                    "partners": [None, summary.partners],
                    "revised": [None, summary.written],
                    "reranked": [None, summary.reranked],
                },
            )
        if summary.written:
            _schedule_following_period(version=version, period=period, reason=f"scores of {period} changed")
    return summary


def _rows_frame(inputs, scores, flags, existing, previous, bases, prints, to_write) -> pd.DataFrame:
    """One row per partner to write, in partner order: the engine's numbers and what they are measured against."""
    frame = scores.loc[to_write, ["segment", "total", "rating", "completeness", "rank", "percentile"]]
    frame = frame.join(flags).join(existing[["score_id", "top_revision"]])
    frame["fingerprint"] = prints.reindex(to_write)
    frame["basis"] = bases.reindex(to_write)
    frame = frame.join(previous[["total", "version_id"]].rename(columns=lambda c: f"previous_{c}"))
    return frame.sort_index()


def _score_rows(inputs: ScoringInputs, batch: pd.DataFrame, components: dict, terms: dict, computed_at) -> list:
    """Score tuples in ``score_writes.COLUMNS`` order (JSON columns as text)."""
    version = inputs.version
    prior_period = selectors.previous_periods(inputs.period, 1)[0]
    values = {
        "tenant_id": version.tenant_id,
        "version_id": version.pk,
        "period": inputs.period,
        "is_current": True,
        "computed_at": computed_at,
    }
    rows = []
    for row in batch.itertuples():
        pid = int(row.Index)
        total = to_decimal(row.total)
        prior_total = None if pd.isna(row.previous_total) else row.previous_total
        values.update(
            partner_id=pid,
            revision=int(row.top_revision) + 1,
            segment=row.segment,
            total=total,
            rating=row.rating,
            completeness=to_decimal(row.completeness),
            rank=int(row.rank),
            percentile=to_decimal(row.percentile),
            change=None if prior_total is None else total - prior_total,
            components=components.get(pid, "[]"),
            explanation=explanation_text(
                previous_period=prior_period,
                previous_total=prior_total,
                previous_version=None if pd.isna(row.previous_version_id) else row.previous_version_id,
                basis=row.basis,
                terms=terms.get(pid, "[]"),
            ),
            flag_regression=bool(row.flag_regression),
            flag_stagnation=bool(row.flag_stagnation),
            flag_improving=bool(row.flag_improving),
            flag_data_gap=bool(row.flag_data_gap),
            fingerprint=row.fingerprint,
        )
        rows.append(tuple(values[column] for column in COLUMNS))
    return rows


def _rerank(moved: pd.DataFrame, scores: pd.DataFrame) -> int:
    """Write new ranks and percentiles onto current scores in place (bulk, in batches)."""
    if moved.empty:
        return 0
    rows = [
        Score(
            pk=int(score_id),
            rank=int(scores.at[partner_id, "rank"]),
            percentile=to_decimal(scores.at[partner_id, "percentile"]),
        )
        for partner_id, score_id in moved["score_id"].items()
    ]
    with transaction.atomic():
        Score.objects.bulk_update(rows, ["rank", "percentile"], batch_size=500)
    return len(rows)


def rerank_segments(*, version: ScorecardVersion, period: str, segments: list[str] | None) -> int:
    """Rank and percentile of every current score of the version's segments, in one statement.

    The same formulas as the engine: rank 1 is the best total (ties share the better rank); the
    percentile is the share of the other partners of the segment with a strictly lower total,
    rounded to thousandths half to even (integer arithmetic, identical on every database), 50 when
    a partner is alone in its segment.
    """
    table = Score._meta.db_table
    segment_list = list(segments if segments is not None else version.partner_types or [])
    if not segment_list:
        return 0
    placeholders = ", ".join(["%s"] * len(segment_list))
    # n / d to thousandths of a percent, half to even: q = floor(n / d), r = n - q d; compare 2r with d.
    n, d = "(100000 * (below))", "(others)"
    q = f"({n} / {d})"
    rounded = (
        f"CASE WHEN 2 * ({n} - {q} * {d}) > {d} THEN {q} + 1 "
        f"WHEN 2 * ({n} - {q} * {d}) < {d} THEN {q} "
        f"ELSE {q} + ({q} %% 2) END"
    )
    percentile = f"CASE WHEN others > 0 THEN ({rounded}) ELSE 50000 END"
    sql = f"""
        WITH positions AS (
            SELECT id, new_rank, milli
            FROM (
                SELECT id, rank, percentile, new_rank, {percentile} AS milli
                FROM (
                    SELECT id, rank, percentile,
                           RANK() OVER (PARTITION BY segment ORDER BY total DESC) AS new_rank,
                           RANK() OVER (PARTITION BY segment ORDER BY total ASC) - 1 AS below,
                           COUNT(*) OVER (PARTITION BY segment) - 1 AS others
                    FROM {table}
                    WHERE tenant_id = %s AND version_id = %s AND period = %s AND is_current
                      AND segment IN ({placeholders})
                ) ranked
            ) placed
            -- Only rows whose position moved are touched.
            WHERE rank <> new_rank OR percentile <> milli / 1000.0
        )
        UPDATE {table} SET rank = positions.new_rank, percentile = positions.milli / 1000.0
        FROM positions
        WHERE {table}.id = positions.id
    """  # noqa: S608 - the table name is the model's; every value is a parameter
    with connection.cursor() as cursor:
        cursor.execute(sql, [current_tenant_id(), version.pk, period, *segment_list])
        if connection.vendor == "sqlite":  # its rowcount is -1 for UPDATE ... FROM with a CTE
            cursor.execute("SELECT changes()")
            return cursor.fetchone()[0]
        return max(cursor.rowcount, 0)


def _replace_benchmarks(inputs: ScoringInputs, result: ScoringResult, *, segments: list[str] | None) -> int:
    """Replace the period's benchmarks of the version (of ``segments`` when given)."""
    metric_ids = dict(zip(inputs.metrics["metric_key"], inputs.metrics["metric_id"], strict=True))
    existing = SegmentBenchmark.objects.filter(version=inputs.version, period=inputs.period)
    if segments is not None:
        existing = existing.filter(segment__in=segments)
    existing.delete()
    now = timezone.now()
    rows = [
        SegmentBenchmark(
            tenant_id=inputs.version.tenant_id,
            version_id=inputs.version.pk,
            period=inputs.period,
            segment=row.segment,
            metric_id=metric_ids[row.metric_key],
            partners=int(row.partners),
            p25=to_decimal(row.p25, MILLIONTH),
            median=to_decimal(row.median, MILLIONTH),
            p75=to_decimal(row.p75, MILLIONTH),
            computed_at=now,
        )
        for row in result.benchmarks.itertuples(index=False)
        if segments is None or row.segment in segments
    ]
    SegmentBenchmark.objects.bulk_create(rows, batch_size=500)
    return len(rows)


# --- One partner after a correction -----------------------------------------------------------------


def version_scoring(partner: Partner, period: str) -> ScorecardVersion | None:
    """The version that scores ``partner`` in ``period``, if any."""
    segment = partner.partner_type.key
    for version in selectors.versions_for_period(period):
        if segment in (version.partner_types or []):
            return version
    return None


@transaction.atomic
def recompute_partner(*, partner: Partner, period: str, reason: str = "correction") -> RecomputeSummary | None:
    """Recompute one partner's score for a period, fast enough to run inside a request.

    When no item of the version normalizes by percentile within the segment, a partner's score
    depends on its own observations only: the engine scores that partner alone, a new revision is
    written if anything changed, and one set-based statement re-ranks its segment (ranks and
    percentiles are positions among the segment's current totals). The segment's benchmarks are
    quartiles over every partner: they are left to the period's recompute, queued (coalesced) on
    commit. With a percentile item every partner of the segment depends on the changed value, so
    the segment is recomputed (only partners whose inputs changed are written), benchmarks
    included. See docs/performance.md.
    """
    version = version_scoring(partner, period)
    if version is None:
        return None
    segment = partner.partner_type.key
    _lock_period_for_transaction(version_id=version.pk, period=period)
    run = RecomputeRun.objects.create(
        version=version, period=period, status=RecomputeStatus.RUNNING, reason=reason[:200], started_at=timezone.now()
    )
    # No data-health check here: this path answers within a request. The period's recompute, which
    # every observation change queues, checks the new values first and rescores what they change.
    inputs = selectors.scoring_inputs(version=version, period=period, segments=[segment], partner_ids=[partner.pk])
    items = inputs.rules.items
    applies = items["applies_to"].map(lambda keys: not keys or segment in keys)
    if (items.loc[applies, "normalization"] == Normalization.PERCENTILE).any():
        inputs = selectors.scoring_inputs(version=version, period=period, segments=[segment])
        summary = _store(inputs, run=run, segments=[segment])
    else:
        summary = _store(inputs, run=run, segments=[segment], alone=True)
        if summary.written:
            # The segment's benchmarks (quartiles over every partner) follow in the background:
            # the period's recompute, coalesced with the one the correction itself queued.
            schedule_recompute(period=period, reason=f"benchmarks after {reason}"[:200], version=version)
    RecomputeRun.objects.filter(pk=run.pk).update(status=RecomputeStatus.DONE, finished_at=timezone.now())
    return summary


# --- Scheduling ---------------------------------------------------------------------------------------


def _lock_queue(version_id: int) -> None:
    """Serialize scheduling and starting of runs for one version (until the transaction ends).

    Without it a run could start reading observations while a correction that reused the queued
    run has not committed yet, and that correction would never be scored.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [0x5C0E, version_id % (2**31)])
    else:
        ScorecardVersion.objects.select_for_update().filter(pk=version_id).exists()


def _period_key(version_id: int, period: str) -> tuple[int, int]:
    # Two int4 keys: a constant for "recompute of a period", and a stable hash of the pair.
    return 0x5C0F, zlib.crc32(f"{version_id}:{period}".encode()) - 2**31


@contextmanager
def period_lock(*, version_id: int, period: str) -> Iterator[None]:
    """Hold the recompute of one version and period for this session: two runs of the same period
    (a redelivered task next to the original, a new run while one is running) take turns instead of
    writing the same revisions at once. Session-level, so that batches may commit inside it."""
    if connection.vendor != "postgresql":
        yield
        return
    key = _period_key(version_id, period)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s, %s)", key)
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", key)


def _lock_period_for_transaction(*, version_id: int, period: str) -> None:
    """The same lock as ``period_lock``, held until the current transaction ends."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", _period_key(version_id, period))


@transaction.atomic
def schedule_recompute(*, period: str, reason: str, version: ScorecardVersion | None = None) -> list[RecomputeRun]:
    """Ask for a period to be recomputed; requests coalesce while one is queued.

    Without ``version``, every scorecard's version that scores the period is recomputed. A run
    still queued for the same version and period is reused, so a burst of changes (an upload of
    many observations, several corrections) causes one recompute. The task is sent on commit, so
    it sees the changes that asked for it.
    """
    from scorecards.tasks import score_recompute_task

    parse_period(period, start_month=1)  # a clear error for a key that is not a period
    versions = [version] if version is not None else selectors.versions_for_period(period)
    runs = []
    for scored in versions:
        _lock_queue(scored.pk)
        run = (
            RecomputeRun.objects.filter(version=scored, period=period, status=RecomputeStatus.QUEUED)
            .order_by("queued_at", "pk")
            .first()
        )
        if run is None:
            run = RecomputeRun.objects.create(version=scored, period=period, reason=reason[:200])
            tenant_id, run_id = run.tenant_id, run.pk
            transaction.on_commit(lambda t=tenant_id, r=run_id: score_recompute_task.delay(tenant_id=t, run_id=r))
        runs.append(run)
    return runs


def _schedule_following_period(*, version: ScorecardVersion, period: str, reason: str) -> None:
    """The next period's changes and flags are measured against this one: recompute it if scored."""
    following = parse_period(period, start_month=1).next().key
    if not Score.objects.filter(period=following, is_current=True, version__scorecard_id=version.scorecard_id).exists():
        return
    successor = selectors.version_for_period(scorecard_id=version.scorecard_id, period=following)
    if successor is not None:
        schedule_recompute(period=following, reason=reason, version=successor)


def start_run(*, run_id: int) -> RecomputeRun | None:
    """Claim a run for execution: queued, running (a redelivery) or failed (a retry) become running.

    Returns None when there is nothing to do (the run is done, or gone).
    """
    with transaction.atomic():
        run = RecomputeRun.objects.filter(pk=run_id).first()
        if run is None:
            return None
        _lock_queue(run.version_id)
        run = RecomputeRun.objects.select_for_update().get(pk=run_id)
        if run.status == RecomputeStatus.DONE:
            return None
        run.status = RecomputeStatus.RUNNING
        run.started_at = timezone.now()
        run.error = ""
        run.save(update_fields=["status", "started_at", "error"])
    return run


def run_recompute(*, run_id: int) -> RecomputeRun | None:
    """Execute a recompute run end to end: claim it, recompute, mark it done (or failed)."""
    run = start_run(run_id=run_id)
    if run is None:
        return None
    try:
        with period_lock(version_id=run.version_id, period=run.period):
            check_observations(period=run.period)  # new values are checked before they are scored
            recompute_period(version=run.version, period=run.period, run=run)
    except Exception as error:
        RecomputeRun.objects.filter(pk=run.pk).update(
            status=RecomputeStatus.FAILED, error=f"{type(error).__name__}: {error}"[:2000], finished_at=timezone.now()
        )
        raise
    RecomputeRun.objects.filter(pk=run.pk).update(status=RecomputeStatus.DONE, finished_at=timezone.now())
    _after_period_scored(tenant_id=run.tenant_id, period=run.period)
    run.refresh_from_db()
    return run


def _after_period_scored(*, tenant_id: int, period: str) -> None:
    """Remediation plans are suggested from the period's new scores, and milestones judged, once they are stored."""
    from actions.tasks import milestones_evaluate_task, plans_suggest_task

    # Robust: the scores are stored; a follow-up that cannot be queued is logged, not turned into a
    # failed recompute (the nightly recompute of the period queues them again).
    transaction.on_commit(lambda: plans_suggest_task.delay(tenant_id=tenant_id, period=period), robust=True)
    transaction.on_commit(lambda: milestones_evaluate_task.delay(tenant_id=tenant_id, period=period), robust=True)


def nightly_recompute() -> list[RecomputeRun]:
    """Every scorecard's current period and last closed period, queued (coalesced) for recompute."""
    from partnerhub.tenancy.models import Tenant
    from scorecards.periods import last_closed, period_containing

    tenant = Tenant.objects.get(pk=current_tenant_id())
    today = timezone.now().date()
    runs = []
    kinds = set(
        ScorecardVersion.objects.filter(status=VersionStatus.ACTIVE).values_list("period_kind", flat=True).distinct()
    )
    for kind in sorted(kinds):
        for period in (
            last_closed(today, kind=kind, start_month=tenant.fiscal_year_start_month),
            period_containing(today, kind=kind, start_month=tenant.fiscal_year_start_month),
        ):
            runs.extend(schedule_recompute(period=period.key, reason="nightly"))
    return runs
