"""Reads for scoring: the engine's input frames, score history, baselines and flag lists.

Every frame is built with a fixed number of set-based queries whatever the number of partners;
nothing here loops over partners with a query each. Frames are sorted so that the same data
always produces the same frame (the engine and the fingerprints depend on it).
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from decimal import Decimal

import pandas as pd
from django.db import connection
from django.db.models import QuerySet

from partnerhub.partners.models import Partner, PartnerStatus
from scorecards.models import (
    MetricObservation,
    Normalization,
    Score,
    ScorecardItem,
    ScorecardVersion,
    SegmentBenchmark,
    VersionStatus,
)
from scorecards.periods import parse_period
from scorecards.scoring import Rules

PARTNER_COLUMNS = ["partner_id", "segment", "size"]
OBSERVATION_COLUMNS = ["partner_id", "metric_key", "value"]
HISTORY_PERIODS = 8
FLAGS = ("regression", "stagnation", "improving", "data_gap")


@dataclass(frozen=True)
class ScoringInputs:
    """Everything the engine needs for one version and period, plus what the stored rows name."""

    version: ScorecardVersion
    period: str
    rules: Rules
    rules_fingerprint: str
    partners: pd.DataFrame  # partner_id, segment, size
    observations: pd.DataFrame  # partner_id, metric_key, value
    metrics: pd.DataFrame  # metric_id, metric_key, name (one row per item)

    @property
    def uses_percentiles(self) -> bool:
        return bool((self.rules.items["normalization"] == Normalization.PERCENTILE).any())

    @property
    def percentile_metric_keys(self) -> list[str]:
        items = self.rules.items
        return sorted(items.loc[items["normalization"] == Normalization.PERCENTILE, "metric_key"])


# --- Rules --------------------------------------------------------------------------------------


def _number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _canonical(value: Decimal | None) -> str | None:
    # Decimal("10.00") and Decimal("10") are the same rule; normalize() makes their text equal.
    return None if value is None else format(Decimal(value).normalize(), "f")


def version_items(version: ScorecardVersion) -> list[ScorecardItem]:
    """The version's items with their metrics, in the editor's order (one query)."""
    return list(ScorecardItem.objects.filter(version=version).select_related("metric").order_by("position", "id"))


def version_rules(version: ScorecardVersion, items: list[ScorecardItem] | None = None) -> tuple[Rules, str]:
    """The engine's rules for a version, and the SHA-256 of their canonical JSON."""
    items = version_items(version) if items is None else items
    rows = []
    canonical_items = []
    for item in items:
        bands = tuple((float(band["at_least"]), float(band["points"])) for band in item.bands or [])
        targets = {str(key): float(value) for key, value in sorted((item.segment_targets or {}).items())}
        rows.append(
            {
                "item_id": item.pk,
                "metric_key": item.metric.key,
                "weight": float(item.weight),
                "applies_to": tuple(sorted(item.applies_to or [])),
                "normalization": item.normalization,
                "segment_targets": targets,
                "rubric": item.rubric,
                "floor": _number(item.floor),
                "target": _number(item.target),
                "cap": float(item.cap),
                "bands": bands,
                "direction": item.metric.direction,
            }
        )
        canonical_items.append(
            {
                "metric_key": item.metric.key,
                "weight": _canonical(item.weight),
                "applies_to": sorted(item.applies_to or []),
                "normalization": item.normalization,
                "segment_targets": {
                    str(key): _canonical(Decimal(str(value))) for key, value in (item.segment_targets or {}).items()
                },
                "rubric": item.rubric,
                "floor": _canonical(item.floor),
                "target": _canonical(item.target),
                "cap": _canonical(item.cap),
                "bands": [
                    [_canonical(Decimal(str(b["at_least"]))), _canonical(Decimal(str(b["points"])))]
                    for b in item.bands or []
                ],
                "direction": item.metric.direction,
            }
        )
    columns = [
        "item_id",
        "metric_key",
        "weight",
        "applies_to",
        "normalization",
        "segment_targets",
        "rubric",
        "floor",
        "target",
        "cap",
        "bands",
        "direction",
    ]
    rules = Rules(
        items=pd.DataFrame(rows, columns=columns),
        band_excellent=float(version.band_excellent),
        band_good=float(version.band_good),
        missing_data=version.missing_data,
        min_completeness=float(version.min_completeness),
    )
    canonical = {
        "partner_types": sorted(version.partner_types or []),
        "band_excellent": _canonical(version.band_excellent),
        "band_good": _canonical(version.band_good),
        "missing_data": version.missing_data,
        "min_completeness": _canonical(version.min_completeness),
        "items": sorted(canonical_items, key=lambda item: item["metric_key"]),
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return rules, hashlib.sha256(text.encode()).hexdigest()


# --- Partners and observations -------------------------------------------------------------------


def scored_partners(version: ScorecardVersion, *, segments: list[str] | None = None) -> QuerySet:
    """Partners a version scores: those of its segments that have not left the program."""
    segments = list(version.partner_types or []) if segments is None else segments
    return Partner.objects.filter(partner_type__key__in=segments).exclude(status=PartnerStatus.TERMINATED)


def partners_frame(version: ScorecardVersion, *, segments: list[str] | None = None, partner_ids=None) -> pd.DataFrame:
    """partner_id, segment (the partner type's key), size (NaN when unknown); one query."""
    queryset = scored_partners(version, segments=segments)
    if partner_ids is not None:
        queryset = queryset.filter(pk__in=list(partner_ids))
    rows = list(queryset.order_by("pk").values_list("pk", "partner_type__key", "size"))
    frame = pd.DataFrame(rows, columns=PARTNER_COLUMNS)
    frame["partner_id"] = frame["partner_id"].astype("int64")
    frame["segment"] = frame["segment"].astype(str)
    frame["size"] = pd.to_numeric(frame["size"].map(lambda v: None if v is None else float(v)), errors="coerce")
    return frame.astype({"size": "float64"})


def _copy_frame(queryset: QuerySet, columns: list[str], dtypes: dict) -> pd.DataFrame:
    """A values_list queryset read with COPY ... TO STDOUT into a frame (PostgreSQL).

    The SQL is Django's own for the queryset, so the scoped manager's tenant filter is in it;
    row-level security applies to COPY (query) like to any SELECT.
    """
    sql, params = queryset.query.sql_with_params()
    buffer = io.StringIO()
    with connection.cursor() as cursor:
        raw = cursor.cursor
        statement = raw.mogrify(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)", params).decode()
        raw.copy_expert(statement, buffer)
    buffer.seek(0)
    if not buffer.getvalue():
        return pd.DataFrame({column: pd.Series(dtype=dtypes[column]) for column in columns})
    return pd.read_csv(buffer, header=None, names=columns, dtype=dtypes)


def observations_frame(
    version: ScorecardVersion, period: str, metrics: pd.DataFrame, *, partner_ids=None, segments=None
) -> pd.DataFrame:
    """Current observations of the period for the version's metrics that count: partner_id, metric_key, value."""
    from scorecards.services.health import counted_observations

    if metrics.empty:  # a version without items has no inputs (and COPY cannot run an empty IN)
        return pd.DataFrame({"partner_id": [], "metric_key": [], "value": []}).astype(
            {"partner_id": "int64", "metric_key": str, "value": "float64"}
        )[OBSERVATION_COLUMNS]
    queryset = MetricObservation.objects.current().filter(period=period, metric_id__in=list(metrics["metric_id"]))
    queryset = counted_observations(queryset)  # without rejected values, and suspect ones if the policy says so
    if partner_ids is not None:
        queryset = queryset.filter(partner_id__in=list(partner_ids))
    elif segments is not None:
        queryset = queryset.filter(partner__partner_type__key__in=segments)
    queryset = queryset.order_by().values_list("partner_id", "metric_id", "value")
    dtypes = {"partner_id": "int64", "metric_id": "int64", "value": "float64"}
    if connection.vendor == "postgresql":
        frame = _copy_frame(queryset, ["partner_id", "metric_id", "value"], dtypes)
    else:
        rows = [(partner_id, metric_id, float(value)) for partner_id, metric_id, value in queryset]
        frame = pd.DataFrame(rows, columns=["partner_id", "metric_id", "value"]).astype(dtypes)
    keys = dict(zip(metrics["metric_id"], metrics["metric_key"], strict=True))
    frame["metric_key"] = frame["metric_id"].map(keys).astype(str)
    frame = frame[OBSERVATION_COLUMNS].sort_values(["partner_id", "metric_key"], kind="stable")
    return frame.reset_index(drop=True)


def scoring_inputs(
    *,
    version: ScorecardVersion,
    period: str,
    segments: list[str] | None = None,
    partner_ids=None,
    metric_keys: list[str] | None = None,
) -> ScoringInputs:
    """The engine's inputs for a version and period: rules, partners and their observations.

    ``segments`` limits the frames to some of the version's segments (everything the engine
    computes is within a segment, so a segment's results do not depend on other segments);
    ``partner_ids`` limits them to some partners (only valid when no item ranks partners against
    each other, see ``recompute_partner``); ``metric_keys`` to some of the version's items.
    """
    items = version_items(version)
    if metric_keys is not None:
        items = [item for item in items if item.metric.key in set(metric_keys)]
    rules, rules_fingerprint = version_rules(version, items)
    metrics = pd.DataFrame(
        [(item.metric_id, item.metric.key, item.metric.name) for item in items],
        columns=["metric_id", "metric_key", "name"],
    )
    segment_list = None if segments is None else [s for s in segments if s in (version.partner_types or [])]
    partners = partners_frame(version, segments=segment_list, partner_ids=partner_ids)
    if partner_ids is not None:
        observations = observations_frame(version, period, metrics, partner_ids=list(partners["partner_id"]))
    else:
        observations = observations_frame(version, period, metrics, segments=segment_list)
        # Observations of partners outside the frame (other segments, terminated) are not inputs.
        observations = observations[observations["partner_id"].isin(partners["partner_id"])].reset_index(drop=True)
    return ScoringInputs(
        version=version,
        period=period,
        rules=rules,
        rules_fingerprint=rules_fingerprint,
        partners=partners,
        observations=observations,
        metrics=metrics,
    )


def stored_contributions(*, period: str, partner_ids: list[int] | None = None) -> pd.DataFrame:
    """Each item's contribution in the period's current scores: partner_id, metric_key, contribution.

    On PostgreSQL the components JSON is unpacked by the database and read with COPY, which is
    many times faster than decoding tens of megabytes of JSON in Python at 20,000 partners.
    """
    columns = ["partner_id", "metric_key", "contribution"]
    if connection.vendor != "postgresql":
        queryset = Score.objects.current().filter(period=period)
        if partner_ids is not None:
            queryset = queryset.filter(partner_id__in=partner_ids)
        rows = [
            (partner_id, component["metric_key"], float(component.get("contribution") or 0.0))
            for partner_id, components in queryset.values_list("partner_id", "components")
            for component in components or []
        ]
        frame = pd.DataFrame(rows, columns=columns)
        return frame.astype({"partner_id": "int64", "contribution": "float64"})
    from partnerhub.tenancy.context import current_tenant_id

    table = Score._meta.db_table
    only = "AND s.partner_id = ANY(%s)" if partner_ids is not None else ""
    sql = (
        f"SELECT s.partner_id, c->>'metric_key', c->>'contribution' FROM {table} s "  # noqa: S608 - our table
        f"CROSS JOIN LATERAL jsonb_array_elements(s.components) c "
        f"WHERE s.tenant_id = %s AND s.period = %s AND s.is_current {only}"
    )
    params = [current_tenant_id(), period] + ([list(partner_ids)] if partner_ids is not None else [])
    buffer = io.StringIO()
    with connection.cursor() as cursor:
        raw = cursor.cursor
        raw.copy_expert(raw.mogrify(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)", params).decode(), buffer)
    buffer.seek(0)
    dtypes = {"partner_id": "int64", "metric_key": object, "contribution": "float64"}
    if not buffer.getvalue():
        return pd.DataFrame({column: pd.Series(dtype=dtypes[column]) for column in columns})
    frame = pd.read_csv(
        buffer, header=None, names=columns, dtype=dtypes, keep_default_na=False, na_values={"contribution": [""]}
    )
    frame["contribution"] = frame["contribution"].fillna(0.0)
    return frame


# --- Versions --------------------------------------------------------------------------------------


def version_for_period(*, scorecard_id: int, period: str) -> ScorecardVersion | None:
    """The version of a scorecard that scores ``period``: the latest in force from on or before it.

    Period keys of one kind sort in time order, so "on or before" is a string comparison.
    """
    candidates = ScorecardVersion.objects.filter(
        scorecard_id=scorecard_id, status__in=[VersionStatus.ACTIVE, VersionStatus.RETIRED]
    ).order_by("-effective_from", "-number")
    for version in candidates:
        if period_matches_version(version, period) and (not version.effective_from or version.effective_from <= period):
            return version
    return None


def period_matches_version(version: ScorecardVersion, period: str) -> bool:
    try:
        return parse_period(period, start_month=1).kind == version.period_kind
    except ValueError:
        return False


def versions_for_period(period: str) -> list[ScorecardVersion]:
    """For each scorecard with an active version, the version that scores ``period`` (if any)."""
    scorecard_ids = (
        ScorecardVersion.objects.filter(status=VersionStatus.ACTIVE)
        .order_by("scorecard_id")
        .values_list("scorecard_id", flat=True)
    )
    versions = [version_for_period(scorecard_id=pk, period=period) for pk in scorecard_ids]
    return [version for version in versions if version is not None]


# --- History, baselines, flags ---------------------------------------------------------------------


def previous_periods(period: str, count: int) -> list[str]:
    """The ``count`` periods before ``period``, most recent first (keys only; fiscal start is irrelevant)."""
    current = parse_period(period, start_month=1)
    keys = []
    for _ in range(count):
        current = current.previous()
        keys.append(current.key)
    return keys


def score_history(*, partner: Partner, period: str, count: int = HISTORY_PERIODS) -> list[dict]:
    """A partner's current score in each of the last ``count`` periods up to ``period``, oldest first.

    Periods without a score are included with ``total`` None, so a chart shows the gap.
    """
    periods = [*reversed(previous_periods(period, count - 1)), parse_period(period, start_month=1).key]
    scores = {
        row["period"]: row
        for row in Score.objects.current()
        .filter(partner=partner, period__in=periods)
        .values("period", "total", "rating", "change", "completeness", "rank", "percentile", "version_id")
    }
    return [scores.get(key, {"period": key, "total": None, "rating": None, "change": None}) for key in periods]


def metric_history(*, partner: Partner, period: str, count: int = HISTORY_PERIODS) -> pd.DataFrame:
    """Each metric's current value for a partner over the last ``count`` periods: metrics x periods."""
    periods = [*reversed(previous_periods(period, count - 1)), parse_period(period, start_month=1).key]
    rows = list(
        MetricObservation.objects.current()
        .filter(partner=partner, period__in=periods)
        .values_list("metric__key", "period", "value")
    )
    frame = pd.DataFrame(rows, columns=["metric_key", "period", "value"])
    frame["value"] = frame["value"].map(float).astype("float64") if len(frame) else frame["value"].astype("float64")
    table = frame.pivot_table(index="metric_key", columns="period", values="value", aggfunc="last")
    return table.reindex(columns=periods).sort_index()


def _exact_change(now, then) -> float:
    """``now - then`` of two engine floats (exact thousandths), as the nearest float to the exact result."""
    return float((Decimal(repr(float(now or 0.0))) - Decimal(repr(float(then or 0.0)))).quantize(Decimal("0.001")))


def baseline_comparison(*, partner: Partner, period: str, baseline: str, score: Score | None = None) -> dict:
    """A partner's score in ``period`` against its score in a baseline period: totals and per-metric points.

    ``score`` is the score of ``period`` to compare (a past revision, say); by default its current
    score. Per metric: the contribution to the total then and now (``baseline``, ``current``) with
    its change, and the rubric points then and now. A metric scored in only one of the periods
    counts 0 in the other, so the changes of the contributions add up exactly to the difference of
    the totals. When the baseline has no score, ``scored`` is False and ``note`` says so.
    """
    wanted = [baseline] if score is not None else [period, baseline]
    rows = Score.objects.current().filter(partner=partner, period__in=wanted).select_related("version__scorecard")
    scores = {row.period: row for row in rows}
    current = score if score is not None else scores.get(period)
    base = scores.get(baseline)

    def components(row: Score | None) -> dict[str, dict]:
        return {component["metric_key"]: component for component in (row.components or [] if row else [])}

    now, then = components(current), components(base)
    metrics = []
    for key in [*now, *(key for key in then if key not in now)]:
        new, old = now.get(key, {}), then.get(key, {})
        points_now, points_then = new.get("points"), old.get("points")
        both = points_now is not None and points_then is not None
        metrics.append(
            {
                "metric_key": key,
                "metric": new.get("metric") or old.get("metric") or key,
                "current": new.get("contribution"),
                "baseline": old.get("contribution"),
                "change": _exact_change(new.get("contribution"), old.get("contribution")) if base else None,
                "points_current": points_now,
                "points_baseline": points_then,
                "points_change": _exact_change(points_now, points_then) if both else None,
            }
        )
    return {
        "period": period,
        "baseline": baseline,
        "scored": base is not None,
        "note": "" if base is not None else f"There is no score for {baseline} to compare with.",
        "total": current.total if current else None,
        "baseline_total": base.total if base else None,
        "difference": (current.total - base.total) if current and base else None,
        "version": current.version if current else None,
        "baseline_version": base.version if base else None,
        "same_rules": bool(current and base and current.version_id == base.version_id),
        "metrics": metrics,
    }


def scores_flagged(*, flag: str, period: str | None = None) -> QuerySet:
    """Current scores carrying ``flag`` (regression, stagnation, improving, data_gap), worst first."""
    if flag not in FLAGS:
        raise ValueError(f"Unknown flag “{flag}”; use one of {', '.join(FLAGS)}.")
    queryset = Score.objects.current().filter(**{f"flag_{flag}": True}).select_related("partner")
    if period:
        queryset = queryset.filter(period=period)
    return queryset.order_by("period", "total", "partner__name")


def benchmarks_for(*, version: ScorecardVersion, period: str, segment: str) -> QuerySet:
    return SegmentBenchmark.objects.filter(version=version, period=period, segment=segment).select_related("metric")
