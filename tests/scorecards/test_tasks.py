"""Recompute tasks: coalesced scheduling, idempotent runs, failures, the nightly fan-out, a real worker."""

from __future__ import annotations

import datetime
import time

import pytest
from django.conf import settings as django_settings

from partnerhub.celery import app as celery_app
from partnerhub.tenancy.context import tenant_scope
from partnerhub.tenancy.models import AuditEvent
from scorecards.models import RecomputeRun, RecomputeStatus, Score, ScorecardItem
from scorecards.periods import last_closed, period_containing
from scorecards.services.governance import version_create_draft
from scorecards.services.recompute import schedule_recompute
from scorecards.tasks import nightly_recompute_fanout_task, score_recompute_task
from tests.factories import TenantFactory
from tests.scorecards.scoring_setup import active_version, correct, observe_all, partners

Q1 = "FY2026-Q1"


@pytest.fixture
def tenant(db):
    tenant = TenantFactory()
    with tenant_scope(tenant):
        yield tenant


@pytest.fixture
def setup(tenant):
    version = active_version(effective_from="FY2020-Q1")
    people = partners(3)
    observe_all({p: {"revenue_won": 10 * (n + 1), "win_rate": 20} for n, p in enumerate(people)}, Q1)
    return version, people


@pytest.mark.usefixtures("setup")
def test_a_burst_of_requests_queues_one_run_and_one_task(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        runs = [schedule_recompute(period=Q1, reason=f"correction {n}") for n in range(5)]
    assert len({run.pk for (run,) in runs}) == 1
    assert RecomputeRun.objects.filter(status=RecomputeStatus.QUEUED).count() == 1
    assert len(callbacks) == 1
    callbacks[0]()  # the one task, as the broker would deliver it
    (run,) = runs[0]
    run.refresh_from_db()
    assert run.status == RecomputeStatus.DONE and run.scores_written == 3 and run.progress == 100
    assert run.reason == "correction 0"
    assert Score.objects.filter(period=Q1).count() == 3


@pytest.mark.usefixtures("setup")
def test_a_request_while_a_run_is_running_queues_a_new_one(django_capture_on_commit_callbacks):
    (first,) = schedule_recompute(period=Q1, reason="upload")
    RecomputeRun.objects.filter(pk=first.pk).update(status=RecomputeStatus.RUNNING)
    with django_capture_on_commit_callbacks() as callbacks:
        (second,) = schedule_recompute(period=Q1, reason="correction")
    assert second.pk != first.pk and len(callbacks) == 1


def test_without_a_version_every_scorecard_scoring_the_period_is_scheduled(setup):
    assert [run.version_id for run in schedule_recompute(period=Q1, reason="upload")] == [setup[0].pk]
    assert schedule_recompute(period="FY2026-M01", reason="monthly") == []  # no monthly scorecard
    with pytest.raises(ValueError, match="not a period"):
        schedule_recompute(period="last quarter", reason="typo")


def test_running_a_done_run_again_changes_nothing(setup):
    version, _ = setup
    run = RecomputeRun.objects.create(version=version, period=Q1)
    score_recompute_task.delay(tenant_id=version.tenant_id, run_id=run.pk).get()
    scores = list(Score.objects.values_list("pk", "revision"))
    events = AuditEvent.objects.count()
    assert score_recompute_task.delay(tenant_id=version.tenant_id, run_id=run.pk).get() is None
    assert list(Score.objects.values_list("pk", "revision")) == scores
    assert AuditEvent.objects.count() == events


def test_a_redelivered_running_run_restarts_and_writes_nothing_twice(setup):
    version, _ = setup
    run = RecomputeRun.objects.create(version=version, period=Q1)
    score_recompute_task.delay(tenant_id=version.tenant_id, run_id=run.pk).get()
    # The worker died after storing the scores but before marking the run done.
    RecomputeRun.objects.filter(pk=run.pk).update(status=RecomputeStatus.RUNNING, partners_done=1)
    result = score_recompute_task.delay(tenant_id=version.tenant_id, run_id=run.pk).get()
    assert result["status"] == RecomputeStatus.DONE and result["scores_written"] == 0
    assert Score.objects.count() == 3 and not Score.objects.exclude(revision=1).exists()


def test_a_failing_run_is_marked_failed_with_the_reason_and_a_retry_completes_it(setup):
    version, _ = setup
    # Rules the engine cannot use can only be a draft's (published rules never change): a run of
    # the draft fails, and once the draft is fixed the retry completes.
    draft = version_create_draft(scorecard=version.scorecard, by=None)
    item = ScorecardItem.objects.get(version=draft, metric__key="win_rate")
    ScorecardItem.objects.filter(pk=item.pk).update(floor=None)  # a linear rubric without a floor
    run = RecomputeRun.objects.create(version=draft, period=Q1)
    with pytest.raises(ValueError, match="floor"):
        score_recompute_task.delay(tenant_id=version.tenant_id, run_id=run.pk).get()
    run.refresh_from_db()
    assert run.status == RecomputeStatus.FAILED and "floor" in run.error and not Score.objects.exists()
    ScorecardItem.objects.filter(pk=item.pk).update(floor=0)
    score_recompute_task.delay(tenant_id=version.tenant_id, run_id=run.pk).get()
    run.refresh_from_db()
    assert run.status == RecomputeStatus.DONE and run.error == "" and Score.objects.count() == 3


def test_a_run_of_another_tenant_is_not_found(setup):
    version, _ = setup
    run = RecomputeRun.objects.create(version=version, period=Q1)
    other = TenantFactory()
    assert score_recompute_task.delay(tenant_id=other.pk, run_id=run.pk).get() is None
    run.refresh_from_db()
    assert run.status == RecomputeStatus.QUEUED


@pytest.mark.usefixtures("setup")
def test_the_nightly_fan_out_queues_each_active_tenants_open_and_last_closed_periods():
    sleeping = TenantFactory(is_active=False)
    with tenant_scope(sleeping):
        active_version(effective_from="FY2020-Q1")
    empty = TenantFactory()  # no scorecard: nothing to queue
    assert nightly_recompute_fanout_task.delay().get() == 2  # the active tenants
    today = datetime.datetime.now(tz=datetime.UTC).date()
    expected = {
        last_closed(today, kind="quarter", start_month=1).key,
        period_containing(today, kind="quarter", start_month=1).key,
    }
    assert set(RecomputeRun.objects.values_list("period", flat=True)) == expected
    assert RecomputeRun.objects.filter(reason="nightly").count() == 2
    for other in (sleeping, empty):
        with tenant_scope(other):
            assert not RecomputeRun.objects.exists()


def test_the_beat_schedule_runs_the_fan_out_nightly():
    entry = django_settings.CELERY_BEAT_SCHEDULE["scorecards-nightly-recompute"]
    assert entry["task"] == nightly_recompute_fanout_task.name
    assert entry["task"] in celery_app.tasks
    schedule = entry["schedule"]
    assert schedule.hour == {2} and schedule.minute == {30}


def test_recompute_tasks_are_safe_to_redeliver():
    assert score_recompute_task.acks_late and score_recompute_task.reject_on_worker_lost
    assert score_recompute_task.max_retries and score_recompute_task.retry_backoff
    assert score_recompute_task.soft_time_limit < score_recompute_task.time_limit


def wait_for(run: RecomputeRun, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.status in (RecomputeStatus.DONE, RecomputeStatus.FAILED):
            return
        time.sleep(0.1)


@pytest.mark.redis
def test_a_real_worker_recomputes_through_redis(committed_world):
    from celery.contrib.testing.worker import start_worker

    world = committed_world
    scorecards = world.a.extra["scorecards"]
    latest = scorecards.periods[-1]
    celery_app.conf.task_always_eager = False
    try:
        worker = start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=10)
        with worker, tenant_scope(world.a.tenant):
            (nightly,) = schedule_recompute(period=latest, reason="nightly")
            wait_for(nightly)
            # Recording the correction queues the recompute itself, once the correction commits.
            correct(world.a.partners[0], "customer_satisfaction", latest, "9.5")
            (corrected,) = RecomputeRun.objects.exclude(pk=nightly.pk)
            wait_for(corrected)
    finally:
        celery_app.conf.task_always_eager = True
    # The world's scores were already computed: the nightly run had nothing to write.
    assert (nightly.status, nightly.scores_written, nightly.error) == (RecomputeStatus.DONE, 0, "")
    assert (corrected.status, corrected.scores_written, corrected.reason) == (
        RecomputeStatus.DONE,
        1,
        "observations changed",
    )
    with tenant_scope(world.a.tenant):
        revisions = Score.objects.filter(partner=world.a.partners[0], period=latest).order_by("revision")
        assert [(s.revision, s.is_current) for s in revisions] == [(1, False), (2, True)]
        assert revisions[1].total > revisions[0].total
    with tenant_scope(world.b.tenant):
        assert not Score.objects.filter(revision__gt=1).exists()
