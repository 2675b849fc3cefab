"""Storing scores: idempotent, revised on change, reproducible, explained, ranked, in batches."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.db import connection

from partnerhub.tenancy.context import tenant_scope
from partnerhub.tenancy.models import AuditEvent
from scorecards.models import RecomputeRun, RecomputeStatus, Score, SegmentBenchmark, VersionStatus
from scorecards.services import recompute as recompute_service
from scorecards.services.recompute import recompute_partner, recompute_period
from tests.factories import TenantFactory
from tests.scorecards.scoring_setup import active_version, correct, observe, observe_all, partners

Q1, Q2, Q3, Q4 = "FY2026-Q1", "FY2026-Q2", "FY2026-Q3", "FY2026-Q4"
STORED = (
    "partner_id",
    "version_id",
    "period",
    "revision",
    "is_current",
    "segment",
    "total",
    "rating",
    "completeness",
    "rank",
    "percentile",
    "change",
    "flag_regression",
    "flag_stagnation",
    "flag_improving",
    "flag_data_gap",
    "fingerprint",
)


@pytest.fixture
def tenant(db):
    tenant = TenantFactory()
    with tenant_scope(tenant):
        yield tenant


@pytest.fixture
def setup(tenant):
    version = active_version()
    people = partners(4)
    values = [
        {"revenue_won": 120, "win_rate": 40, "certifications": 3},
        {"revenue_won": 60, "win_rate": 20, "certifications": 1},
        {"revenue_won": 30, "win_rate": 45},
        {},
    ]
    observe_all(dict(zip(people, values, strict=True)), Q1)
    observe_all(
        dict(
            zip(
                people,
                [
                    {"revenue_won": 100, "win_rate": 45, "certifications": 3},
                    {"revenue_won": 75.5, "win_rate": 20, "certifications": 2},
                    {"revenue_won": 30, "win_rate": 45, "certifications": 1},
                    {"revenue_won": 10},
                ],
                strict=True,
            )
        ),
        Q2,
    )
    return version, people


def snapshot(period: str | None = None) -> list[tuple]:
    """Every stored score as text: Decimals by their digits, JSON by its canonical dump."""
    queryset = Score.objects.order_by("partner_id", "period", "revision")
    if period:
        queryset = queryset.filter(period=period)
    return [
        (
            *(str(getattr(score, name)) for name in STORED),
            json.dumps(score.components, sort_keys=True),
            json.dumps(score.explanation, sort_keys=True),
        )
        for score in queryset
    ]


def benchmarks_snapshot() -> list[tuple]:
    return [
        (b.version_id, b.period, b.segment, b.metric_id, b.partners, str(b.p25), str(b.median), str(b.p75))
        for b in SegmentBenchmark.objects.order_by("period", "segment", "metric_id")
    ]


def test_recompute_scores_every_partner_of_the_version(setup):
    version, people = setup
    summary = recompute_period(version=version, period=Q1)
    assert summary.written == 4
    scores = {s.partner_id: s for s in Score.objects.filter(period=Q1)}
    # revenue 120 caps at 100 points (x 50%), win rate 40 of 50 gives 80 (x 30%), 3 certifications 100 (x 20%)
    assert scores[people[0].pk].total == Decimal("94.000")
    # The third partner has no certifications: its weights are spread over the two items it has.
    assert [scores[p.pk].rank for p in people] == [1, 3, 2, 4]
    assert scores[people[3].pk].rating == "incomplete" and scores[people[3].pk].flag_data_gap
    assert scores[people[0].pk].revision == 1 and scores[people[0].pk].change is None
    component = scores[people[0].pk].components[0]
    assert component["metric_key"] == "revenue_won" and component["metric"] == "Revenue won"
    assert {"raw", "normalized", "points", "weight", "effective_weight", "contribution", "present"} <= set(component)
    assert SegmentBenchmark.objects.filter(period=Q1, version=version).count() == 3


def test_recompute_with_nothing_changed_writes_nothing(setup):
    version, _ = setup
    recompute_period(version=version, period=Q1)
    before = snapshot()
    summary = recompute_period(version=version, period=Q1)
    assert (summary.written, summary.reranked) == (0, 0)
    assert snapshot() == before


def test_a_corrected_observation_creates_revision_two_and_keeps_revision_one(setup):
    version, people = setup
    recompute_period(version=version, period=Q1)
    first = Score.objects.get(partner=people[1], period=Q1)
    correct(people[1], "revenue_won", Q1, 90)
    summary = recompute_period(version=version, period=Q1)
    assert summary.written == 1
    history = list(Score.objects.filter(partner=people[1], period=Q1).order_by("revision"))
    assert [(s.revision, s.is_current) for s in history] == [(1, False), (2, True)]
    assert history[0].pk == first.pk and history[0].total == first.total  # history is left as it was
    assert history[1].total > first.total and history[1].fingerprint != first.fingerprint
    assert Score.objects.current().filter(period=Q1).count() == 4


def test_numbers_are_byte_identical_after_deleting_and_recomputing(setup):
    version, _ = setup
    for period in (Q1, Q2):
        recompute_period(version=version, period=period)
    scores, benchmarks = snapshot(), benchmarks_snapshot()
    Score.objects.all().delete()
    SegmentBenchmark.objects.all().delete()
    for period in (Q1, Q2):
        recompute_period(version=version, period=period)
    assert snapshot() == scores
    assert benchmarks_snapshot() == benchmarks


def test_the_explanation_adds_up_exactly_to_the_change(setup):
    version, _ = setup
    recompute_period(version=version, period=Q1)
    recompute_period(version=version, period=Q2)
    for score in Score.objects.filter(period=Q2):
        previous = Score.objects.current().get(partner_id=score.partner_id, period=Q1)
        assert score.change == score.total - previous.total
        terms = score.explanation["terms"]
        assert {t["term"] for t in terms} <= {"metric"}
        assert sum(Decimal(repr(t["delta"])) for t in terms) == score.change
        assert score.explanation["previous_total"] == str(previous.total)


def test_a_new_version_adds_a_version_term_and_still_adds_up(setup):
    version, _ = setup
    recompute_period(version=version, period=Q1)
    version.status = VersionStatus.RETIRED
    version.save()
    successor = active_version(
        number=2,
        scorecard=version.scorecard,
        effective_from=Q2,
        items=[
            ("revenue_won", "70", {"floor": "0", "target": "150"}),
            ("win_rate", "30", {"floor": "10", "target": "50"}),
        ],
    )
    recompute_period(version=successor, period=Q2)
    for score in Score.objects.filter(period=Q2):
        terms = score.explanation["terms"]
        assert terms[0]["term"] == "version"
        assert sum(Decimal(repr(t["delta"])) for t in terms) == score.change
        assert score.explanation["previous_version"] == version.pk


def test_a_partner_without_a_previous_score_has_no_change_and_no_terms(setup):
    version, _ = setup
    recompute_period(version=version, period=Q2)
    for score in Score.objects.filter(period=Q2):
        assert score.change is None and score.explanation["terms"] == []


def test_ranks_move_in_place_when_another_partners_score_changes(setup):
    version, people = setup
    recompute_period(version=version, period=Q1)
    correct(people[2], "revenue_won", Q1, 500)  # now the best of the segment
    summary = recompute_period(version=version, period=Q1)
    assert summary.written == 1 and summary.reranked == 1
    ranks = {s.partner_id: (s.rank, s.revision) for s in Score.objects.current().filter(period=Q1)}
    assert ranks[people[2].pk] == (1, 2)
    assert ranks[people[0].pk] == (2, 1) and ranks[people[1].pk] == (3, 1)


def test_percentile_normalization_revises_the_whole_segment_when_one_value_changes(tenant):
    version = active_version(
        items=[
            ("revenue_won", "60", {"normalization": "percentile"}),
            ("win_rate", "40", {"floor": "0", "target": "50"}),
        ]
    )
    people = partners(3)
    observe_all({p: {"revenue_won": 10 * (n + 1), "win_rate": 30} for n, p in enumerate(people)}, Q1)
    recompute_period(version=version, period=Q1)
    correct(people[0], "revenue_won", Q1, 25)  # overtakes the second partner
    summary = recompute_period(version=version, period=Q1)
    # Each partner's percentile was computed from the segment's values, which changed: all revised,
    # even the best partner whose points stayed the same.
    assert summary.written == 3
    first, second = Score.objects.filter(partner=people[2], period=Q1).order_by("revision")
    assert first.total == second.total and first.fingerprint != second.fingerprint
    assert Score.objects.current().get(partner=people[0], period=Q1).rank == 2


def test_only_the_segments_of_named_partners_are_recomputed(tenant):
    version = active_version(segments=("reseller", "msp"))
    resellers, msps = partners(2), partners(2, segment="msp")
    observe_all({p: {"revenue_won": 50, "win_rate": 20} for p in [*resellers, *msps]}, Q1)
    recompute_period(version=version, period=Q1)
    correct(msps[0], "revenue_won", Q1, 80)
    correct(resellers[0], "revenue_won", Q1, 80)
    summary = recompute_period(version=version, period=Q1, partner_ids=[msps[0].pk])
    assert summary.partners == 2 and summary.partner_ids_written == [msps[0].pk]
    assert Score.objects.get(partner=resellers[0], period=Q1).revision == 1  # left for its own recompute


def test_one_partner_recompute_stores_what_a_full_recompute_would(tenant, django_capture_on_commit_callbacks):
    """65 partners: 64 others make a percentile tie at .5 (1/64 = 1.5625 %) that rounds half to even."""
    version = active_version(segments=("reseller", "msp"))
    people = partners(65)
    msps = partners(3, segment="msp")
    observe_all({p: {"revenue_won": n, "win_rate": 10 + n % 7} for n, p in enumerate(people)}, Q1)
    observe_all({p: {"revenue_won": 40, "win_rate": 30} for p in msps}, Q1)
    observe_all({p: {"revenue_won": n + 3, "win_rate": 10} for n, p in enumerate(people)}, Q2)
    recompute_period(version=version, period=Q1)
    recompute_period(version=version, period=Q2)
    correct(people[10], "revenue_won", Q2, 64.5)
    observe(people[10], "certifications", Q2, 2)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        summary = recompute_partner(partner=people[10], period=Q2)
    assert summary.written == 1 and summary.reranked > 0
    fast, fast_benchmarks = snapshot(Q2), benchmarks_snapshot()
    assert any(row[10] == "1.562" for row in fast)  # the half-even percentile
    # The benchmarks came from the period's recompute it queued, which found no score to change
    # (and, once done, queued the remediation plans' suggestions and milestone checks).
    assert len(callbacks) == 3
    (run,) = RecomputeRun.objects.filter(reason="benchmarks after correction")
    assert run.status == RecomputeStatus.DONE and run.scores_written == 0
    event = AuditEvent.objects.filter(target_type="scorecards.recomputerun", target_id=str(run.pk)).get()
    assert event.changes["reranked"] == [None, 0]

    Score.objects.filter(period=Q2).delete()
    SegmentBenchmark.objects.filter(period=Q2).delete()
    recompute_period(version=version, period=Q2)
    full = snapshot(Q2)

    def numbers(rows):  # revisions differ (the fast path wrote revision 2); everything else may not
        return [row[:3] + row[4:16] + row[17:] for row in rows if row[4] == "True"]

    assert numbers(fast) == numbers(full)
    assert fast_benchmarks == benchmarks_snapshot()


def test_one_partner_recompute_with_nothing_changed_writes_nothing(setup):
    version, people = setup
    recompute_period(version=version, period=Q1)
    summary = recompute_partner(partner=people[0], period=Q1)
    assert summary.written == 0
    assert Score.objects.filter(period=Q1).count() == 4


def test_one_partner_recompute_with_percentiles_recomputes_its_segment(tenant):
    version = active_version(items=[("revenue_won", "100", {"normalization": "percentile"})])
    people = partners(3)
    observe_all({p: {"revenue_won": n} for n, p in enumerate(people)}, Q1)
    recompute_period(version=version, period=Q1)
    correct(people[0], "revenue_won", Q1, 10)
    summary = recompute_partner(partner=people[0], period=Q1)
    assert summary.written == 3
    assert [s.partner_id for s in Score.objects.current().filter(period=Q1).order_by("rank")] == [
        people[0].pk,
        people[2].pk,
        people[1].pk,
    ]


def test_a_run_reports_progress_in_batches_and_one_audit_event(setup, monkeypatch):
    version, _ = setup
    monkeypatch.setattr(recompute_service, "BATCH_SIZE", 1)
    run = RecomputeRun.objects.create(version=version, period=Q1, status=RecomputeStatus.RUNNING)
    seen = []

    def record(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if sql.startswith("UPDATE") and RecomputeRun._meta.db_table in sql:
            seen.append(RecomputeRun.objects.values_list("partners_done", flat=True).get(pk=run.pk))
        return result

    with connection.execute_wrapper(record):
        recompute_period(version=version, period=Q1, run=run)
    run.refresh_from_db()
    assert (run.partners_total, run.partners_done, run.scores_written) == (4, 4, 4)
    assert seen == [0, 1, 2, 3, 4, 4]
    events = AuditEvent.objects.filter(verb="scores.recomputed")
    assert events.count() == 1 and events.get().changes["revised"] == [None, 4]


def test_a_late_correction_recomputes_the_following_period_too(setup, django_capture_on_commit_callbacks):
    version, people = setup
    recompute_period(version=version, period=Q1)
    recompute_period(version=version, period=Q2)
    before = Score.objects.current().get(partner=people[1], period=Q2)
    correct(people[1], "revenue_won", Q1, 10)
    with django_capture_on_commit_callbacks(execute=True):
        recompute_period(version=version, period=Q1)
    after = Score.objects.current().get(partner=people[1], period=Q2)
    assert after.revision == 2 and after.total == before.total and after.change != before.change
    assert sum(Decimal(repr(t["delta"])) for t in after.explanation["terms"]) == after.change
    assert Score.objects.current().get(partner=people[0], period=Q2).revision == 1
