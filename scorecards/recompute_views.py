"""Recompute pages: recent runs with their progress, and an administrator's request to recompute a period.

Recomputes run as tasks (nightly, after new data, after an activation); these pages follow them.
A run in progress shows a bar that reloads itself every second from ``recompute_progress`` until
the run ends. Asking for a period goes through ``schedule_recompute``, which joins a run of the
same version and period that is still queued instead of adding another.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from partnerhub.tenancy.decorators import member_required
from partnerhub.tenancy.roles import Capability
from scorecards.models import RecomputeRun, RecomputeStatus
from scorecards.page_selectors import clean_period, recomputable_periods, recompute_runs
from scorecards.selectors import versions_for_period
from scorecards.services.recompute import schedule_recompute

RUNS_PAGE_SIZE = 25
STATUS_BADGE = {
    RecomputeStatus.QUEUED: "pending",
    RecomputeStatus.RUNNING: "growing",
    RecomputeStatus.DONE: "ok",
    RecomputeStatus.FAILED: "bad",
}


class RecomputeRequestForm(forms.Form):
    """The period to recompute; every scorecard version that scores it is recomputed."""

    period = forms.CharField(label="Period", max_length=40)

    def __init__(self, *args, periods: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["period"].widget = forms.Select(choices=[(key, key) for key in periods])

    def clean_period(self) -> str:
        value = self.cleaned_data["period"].strip()
        key = clean_period(value)
        if key is None:
            raise ValidationError(f"“{value}” is not a period; write it like FY2026-Q3 or FY2026-M07.")
        if not versions_for_period(key):
            raise ValidationError(f"No active scorecard scores {key}, so there is nothing to recompute.")
        return key


@dataclass(frozen=True)
class RunRow:
    run: RecomputeRun
    badge: str
    progress: dict | None  # the progress bar's context while the run is queued or running
    duration: str


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def progress_context(run: RecomputeRun) -> dict:
    """What the progress bar shows for a run; polling stops once the run has ended."""
    poll_url = reverse("recompute_progress", args=[run.pk])
    what = f"{run.period} · {run.version}"
    if run.status == RecomputeStatus.QUEUED:
        return {"percent": None, "label": f"Queued: {what}", "poll_url": poll_url, "done": False}
    if run.status == RecomputeStatus.RUNNING:
        if not run.partners_total:
            return {"percent": None, "label": f"Starting: {what}", "poll_url": poll_url, "done": False}
        label = f"{what}: {run.partners_done:,} of {_count(run.partners_total, 'partner')}"
        return {"percent": run.progress, "label": label, "poll_url": poll_url, "done": False}
    if run.status == RecomputeStatus.DONE:
        label = f"Done: {what}, {_count(run.scores_written, 'score')} written"
        return {"percent": 100, "label": label, "poll_url": poll_url, "done": True}
    return {"percent": run.progress, "label": f"Failed: {what}", "poll_url": poll_url, "done": True}


def duration_text(run: RecomputeRun, *, now: datetime.datetime) -> str:
    """How long the run took, or has taken so far: 4 s, 2 min 05 s, 1 h 03 min, 2 d 05 h."""
    if run.started_at is None:
        return ""
    seconds = max(int(((run.finished_at or now) - run.started_at).total_seconds()), 0)
    if seconds < 60:
        text = f"{seconds} s"
    elif seconds < 3600:
        text = f"{seconds // 60} min {seconds % 60:02d} s"
    elif seconds < 86400:
        text = f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    else:
        text = f"{seconds // 86400} d {seconds % 86400 // 3600:02d} h"
    return text if run.finished_at else f"{text} so far"


def _request_form(request, data=None) -> RecomputeRequestForm | None:
    if not request.membership.can(Capability.MANAGE_SCORECARDS):
        return None
    periods = recomputable_periods(start_month=request.tenant.fiscal_year_start_month)
    return RecomputeRequestForm(data, periods=periods)


def _list_page(request, *, form: RecomputeRequestForm | None, status: int = 200):
    page_obj = Paginator(recompute_runs(), RUNS_PAGE_SIZE).get_page(request.GET.get("page"))
    now = timezone.now()
    rows = [
        RunRow(
            run=run,
            badge=STATUS_BADGE.get(run.status, ""),
            progress=progress_context(run) if run.status in (RecomputeStatus.QUEUED, RecomputeStatus.RUNNING) else None,
            duration=duration_text(run, now=now),
        )
        for run in page_obj.object_list
    ]
    context = {"nav": "scorecards", "rows": rows, "page_obj": page_obj, "form": form}
    return render(request, "scorecards/recomputes/list.html", context, status=status)


@member_required(Capability.VIEW_SCORECARDS)
@require_GET
def recompute_list(request):
    """Recent recomputes of the workspace's scores, newest first, with progress for those under way."""
    return _list_page(request, form=_request_form(request))


@member_required(Capability.MANAGE_SCORECARDS)
@require_POST
def recompute_request(request):
    """Queue a period's recompute; a run of the same period still waiting is joined, never doubled."""
    form = _request_form(request, request.POST)
    if not form.is_valid():
        return _list_page(request, form=form, status=400)
    period = form.cleaned_data["period"]
    # Only the wording depends on it: the service itself decides whether a run is joined.
    queued = RecomputeRun.objects.filter(period=period, status=RecomputeStatus.QUEUED)
    waiting = set(queued.values_list("pk", flat=True))
    requester = request.user.get_full_name() or request.user.email
    runs = schedule_recompute(period=period, reason=f"requested by {requester}")
    for run in runs:
        if run.pk in waiting:
            messages.info(
                request,
                f"A recompute of {period} for {run.version} was already queued; "
                "your request joins it, so it runs once.",
            )
        else:
            messages.success(request, f"{period} for {run.version} is queued for recompute; its progress shows below.")
    return redirect("recompute_list")


@never_cache
@member_required(Capability.VIEW_SCORECARDS)
@require_GET
def recompute_progress(request, pk: int):
    """The progress bar of one run, which htmx reloads every second while the run is under way."""
    run = get_object_or_404(RecomputeRun.objects.select_related("version__scorecard"), pk=pk)
    return render(request, "components/progress.html", progress_context(run))
