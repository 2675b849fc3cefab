"""Recompute pages: recent runs with their progress, the bar's poll URL, and an administrator's request."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from partnerhub.tenancy.context import tenant_scope
from scorecards.models import RecomputeRun, RecomputeStatus

INTERNAL = ("admin", "partner_manager", "executive")
PARTNER = ("partner_admin", "partner_member")
LIST = reverse("recompute_list")
REQUEST = reverse("recompute_request")
T0 = datetime.datetime(2026, 10, 2, 2, 30, tzinfo=datetime.UTC)


def login(world_tenant, role: str) -> Client:
    client = Client()
    client.force_login(world_tenant.users[role])
    return client


def progress_url(run: RecomputeRun) -> str:
    return reverse("recompute_progress", args=[run.pk])


def make_run(world_tenant, *, status=RecomputeStatus.DONE, minutes_ago: int = 0, **fields) -> RecomputeRun:
    """A run of the world's scorecard version at pinned times (queued ``minutes_ago`` before T0)."""
    scorecards = world_tenant.extra["scorecards"]
    queued = T0 - datetime.timedelta(minutes=minutes_ago)
    values = {
        "version": scorecards.version,
        "period": scorecards.periods[-1],
        "status": status,
        "reason": "nightly",
        "queued_at": queued,
    }
    if status != RecomputeStatus.QUEUED:
        values["started_at"] = queued + datetime.timedelta(seconds=3)
    if status in (RecomputeStatus.DONE, RecomputeStatus.FAILED):
        values["finished_at"] = queued + datetime.timedelta(seconds=128)
    values.update(fields)
    with tenant_scope(world_tenant.tenant):
        return RecomputeRun.objects.create(**values)


def latest_period(world_tenant) -> str:
    return world_tenant.extra["scorecards"].periods[-1]


# --- Who sees what ---------------------------------------------------------------------------------


@pytest.mark.parametrize("role", INTERNAL + PARTNER)
def test_internal_people_see_the_runs_and_partner_users_do_not(world, role):
    run = make_run(world.a)
    client = login(world.a, role)
    allowed = role in INTERNAL
    assert client.get(LIST).status_code == (200 if allowed else 403)
    assert client.get(progress_url(run)).status_code == (200 if allowed else 403)


@pytest.mark.parametrize("role", INTERNAL)
def test_another_tenants_run_is_not_found_and_never_listed(world, role):
    foreign = make_run(world.b, reason="globex nightly", status=RecomputeStatus.RUNNING, partners_total=10)
    make_run(world.a, reason="acme nightly")
    client = login(world.a, role)
    assert client.get(progress_url(foreign)).status_code == 404
    assert client.get(reverse("recompute_progress", args=[foreign.pk + 10_000])).status_code == 404
    body = client.get(LIST).content.decode()
    assert "acme nightly" in body and "globex nightly" not in body and progress_url(foreign) not in body


def test_anonymous_visitors_are_sent_to_sign_in(world):
    run = make_run(world.a)
    for url in (LIST, progress_url(run)):
        response = Client().get(url)
        assert response.status_code == 302 and reverse("account_login") in response["Location"]
    assert Client().post(REQUEST, {"period": latest_period(world.a)}).status_code == 302
    with tenant_scope(world.a.tenant):
        assert RecomputeRun.objects.count() == 1


# --- The list --------------------------------------------------------------------------------------


def test_the_list_shows_each_runs_period_version_reason_status_counts_times_and_error(world):
    make_run(world.a, reason="scores of FY2026-Q4 changed", partners_total=1200, partners_done=1200, scores_written=37)
    make_run(
        world.a,
        status=RecomputeStatus.FAILED,
        minutes_ago=5,
        reason="correction",
        partners_total=40,
        partners_done=10,
        error="ValueError: win rate: a linear rubric needs a floor",
    )
    body = login(world.a, "executive").get(LIST).content.decode()
    version = str(world.a.extra["scorecards"].version)
    assert latest_period(world.a) in body and version in body
    assert "scores of FY2026-Q4 changed" in body and "badge-ok" in body and "37" in body
    assert "1,200 of 1,200 partners" in body and "100%" in body
    assert "2 Oct 2026, 02:30:00" in body and "2 Oct 2026, 02:30:03" in body and "2 Oct 2026, 02:32:08" in body
    assert "2 min 05 s" in body
    assert "Failed" in body and "badge-bad" in body and "a linear rubric needs a floor" in body and "25%" in body


def test_runs_under_way_show_a_progress_bar_that_polls_its_own_url(world):
    running = make_run(world.a, status=RecomputeStatus.RUNNING, partners_total=2000, partners_done=1200)
    queued = make_run(world.a, status=RecomputeStatus.QUEUED, minutes_ago=1)
    done = make_run(world.a, minutes_ago=2)
    body = login(world.a, "partner_manager").get(LIST).content.decode()
    assert f'hx-get="{progress_url(running)}" hx-trigger="every 1s"' in body
    assert 'aria-valuenow="60"' in body and "1,200 of 2,000 partners" in body
    assert f'hx-get="{progress_url(queued)}"' in body and "Queued:" in body and "progress-indeterminate" in body
    assert progress_url(done) not in body  # a finished run has nothing to poll


def test_the_poll_url_answers_the_same_fragment_until_the_run_ends(world):
    run = make_run(world.a, status=RecomputeStatus.RUNNING, partners_total=0)
    client = login(world.a, "admin")
    fragment = client.get(progress_url(run), HTTP_HX_REQUEST="true").content.decode()
    assert fragment.lstrip().startswith('<div class="progress-block"')
    assert f'hx-get="{progress_url(run)}"' in fragment and "Starting:" in fragment
    with tenant_scope(world.a.tenant):
        RecomputeRun.objects.filter(pk=run.pk).update(partners_total=4, partners_done=1)
    fragment = client.get(progress_url(run)).content.decode()
    assert 'aria-valuenow="25"' in fragment and "1 of 4 partners" in fragment and "every 1s" in fragment
    with tenant_scope(world.a.tenant):
        RecomputeRun.objects.filter(pk=run.pk).update(status=RecomputeStatus.DONE, partners_done=4, scores_written=3)
    response = client.get(progress_url(run))
    fragment = response.content.decode()
    assert "hx-get" not in fragment and 'aria-valuenow="100"' in fragment and "3 scores written" in fragment
    assert "no-cache" in response["Cache-Control"]


def test_the_list_without_runs_says_so(world):
    body = login(world.a, "executive").get(LIST).content.decode()
    assert "No recomputes yet" in body


def test_a_page_number_that_is_not_one_answers_a_page(world):
    make_run(world.a)
    client = login(world.a, "admin")
    for page in ("2", "999", "last", "-1", "x" * 50):
        assert client.get(LIST, {"page": page}).status_code == 200, page


def test_the_list_query_count_does_not_grow_with_rows(world):
    client = login(world.a, "admin")

    def queries_for_page(**params) -> tuple[int, int]:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(LIST, params)
        assert response.status_code == 200
        return len(queries), len(response.context["rows"])

    for n in range(3):
        make_run(world.a, minutes_ago=n, status=RecomputeStatus.RUNNING if n == 0 else RecomputeStatus.DONE)
    queries_for_page()  # the first request of a session also loads it
    few, rows_few = queries_for_page()
    for n in range(3, 40):
        make_run(world.a, minutes_ago=n, status=RecomputeStatus.FAILED if n % 3 else RecomputeStatus.QUEUED)
    many, rows_many = queries_for_page()
    last, rows_last = queries_for_page(page=2)
    assert (rows_few, rows_many, rows_last) == (3, 25, 15)
    assert few == many == last


# --- Asking for a recompute ------------------------------------------------------------------------


def test_administrators_see_the_recompute_form_and_others_do_not(world):
    assert "Recompute period" in login(world.a, "admin").get(LIST).content.decode()
    for role in ("partner_manager", "executive"):
        assert "Recompute period" not in login(world.a, role).get(LIST).content.decode()


def test_an_administrator_queues_a_period_and_is_told_so(world, django_capture_on_commit_callbacks):
    period = latest_period(world.a)
    client = login(world.a, "admin")
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(REQUEST, {"period": period}, follow=True)
    assert response.redirect_chain == [(LIST, 302)]
    version = world.a.extra["scorecards"].version
    assert f"{period} for {version} is queued for recompute" in response.content.decode()
    with tenant_scope(world.a.tenant):
        (run,) = RecomputeRun.objects.all()
        assert (run.period, run.version_id, run.status) == (period, version.pk, RecomputeStatus.QUEUED)
        assert run.reason.startswith("requested by ")
        assert len(callbacks) == 1
        callbacks[0]()  # the task, as the broker would deliver it once the request committed
        run.refresh_from_db()
        assert run.status == RecomputeStatus.DONE and run.partners_done == run.partners_total == 2


def test_asking_again_while_the_run_waits_joins_it(world, django_capture_on_commit_callbacks):
    period = latest_period(world.a)
    client = login(world.a, "admin")
    with django_capture_on_commit_callbacks() as callbacks:
        client.post(REQUEST, {"period": period})
        response = client.post(REQUEST, {"period": period}, follow=True)
    assert "was already queued; your request joins it" in response.content.decode()
    assert len(callbacks) == 1
    with tenant_scope(world.a.tenant):
        assert RecomputeRun.objects.filter(period=period, status=RecomputeStatus.QUEUED).count() == 1


@pytest.mark.parametrize(
    "period, message",
    [
        ("last quarter", "is not a period; write it like FY2026-Q3"),
        ("FY2019-Q1", "No active scorecard scores FY2019-Q1, so there is nothing to recompute."),
        ("", "This field is required."),
        ("FY2026-Q9", "is not a period"),
        ("x" * 500, "Ensure this value has at most 40 characters"),
    ],
)
def test_a_period_that_cannot_be_recomputed_answers_a_clear_error(world, period, message):
    response = login(world.a, "admin").post(REQUEST, {"period": period})
    assert response.status_code == 400
    assert message in response.content.decode()
    with tenant_scope(world.a.tenant):
        assert not RecomputeRun.objects.exists()


@pytest.mark.parametrize("role", ("partner_manager", "executive", *PARTNER))
def test_only_administrators_may_ask_for_a_recompute(world, role):
    response = login(world.a, role).post(REQUEST, {"period": latest_period(world.a)})
    assert response.status_code == 403
    with tenant_scope(world.a.tenant):
        assert not RecomputeRun.objects.exists()


def test_a_request_only_ever_queues_runs_in_the_requesters_tenant(world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():
        login(world.a, "admin").post(REQUEST, {"period": latest_period(world.a), "tenant": world.b.tenant.pk})
    with tenant_scope(world.b.tenant):
        assert not RecomputeRun.objects.exists()
    with tenant_scope(world.a.tenant):
        assert RecomputeRun.objects.count() == 1


def test_the_request_url_only_takes_posts(world):
    assert login(world.a, "admin").get(REQUEST).status_code == 405
