"""Observation pages: the list with its history, entry by hand, and CSV uploads checked and recorded by tasks.

Internal people who may enter observations only. Partner users never reach these pages, whatever
their role may do one day: they will correct their data through their own flow.
"""

from __future__ import annotations

import csv
import functools
import io
from decimal import Decimal

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from partnerhub.integrations.models import Upload, UploadStatus
from partnerhub.integrations.uploads import (
    recent_uploads,
    same_file_uploads,
    upload_commit_request,
    upload_is_stalled,
    upload_recheck,
    upload_recomputes,
)
from partnerhub.paging import DeferredJoinPaginator
from partnerhub.partners.models import Partner
from partnerhub.tenancy.decorators import member_required
from partnerhub.tenancy.roles import Capability
from scorecards.models import Metric, MetricObservation, ObservationSource, RecomputeStatus, Unit
from scorecards.observation_forms import ObservationEntryForm, ObservationPageFilter, UploadForm
from scorecards.periods import QUARTER, last_closed, period_containing
from scorecards.services.observations import MAX_UPLOAD_BYTES, MAX_UPLOAD_ROWS, REQUIRED_COLUMNS

PAGE_SIZE = 50
MAX_PARTNER_OPTIONS = 1000  # beyond this many partners, the entry form offers no list of names
UNIT_SUFFIX = {Unit.PERCENT: "%", Unit.DAYS: " days", Unit.HOURS: " hours"}
STATUS_BADGES = {
    UploadStatus.RECEIVED: "pending",
    UploadStatus.CHECKING: "pending",
    UploadStatus.CHECKED: "growing",
    UploadStatus.INVALID: "bad",
    UploadStatus.COMMITTING: "pending",
    UploadStatus.COMMITTED: "ok",
    UploadStatus.FAILED: "bad",
}
RECOMPUTE_BADGES = {
    RecomputeStatus.QUEUED: "pending",
    RecomputeStatus.RUNNING: "pending",
    RecomputeStatus.DONE: "ok",
    RecomputeStatus.FAILED: "bad",
}


def observations_page(view):
    """Internal members who may enter observations; everyone else is refused before any lookup."""

    @member_required(Capability.ENTER_OBSERVATIONS)
    @functools.wraps(view)
    def guarded(request, *args, **kwargs):
        if not request.membership.is_internal:
            raise PermissionDenied("Observations are entered by the program's own people.")
        return view(request, *args, **kwargs)

    return guarded


# --- The list ---------------------------------------------------------------------------------------


@observations_page
@require_GET
def observation_list(request):
    """Observations with their history: filter by partner, metric, period and source; page.

    A superseded value is listed (greyed) with the value that replaced it. The page costs the
    same few queries whatever its length: the metrics and periods of the filters, the count, the page.
    """
    queryset = MetricObservation.objects.select_related(
        "partner", "metric", "recorded_by", "superseded_by", "superseded_by__recorded_by"
    ).order_by("-period", "partner_id", "metric_id", "-pk")  # a key's history together, newest first
    filterset = ObservationPageFilter(request.GET or None, queryset=queryset, request=request)
    if filterset.is_bound:
        # Values that do not parse (a stale link, an edited address) are left out and named on the page.
        filterset.is_valid()
    cleaned = getattr(filterset.form, "cleaned_data", {})
    filter_names = ("q", "partner", "metric", "period", "source")
    page = DeferredJoinPaginator(filterset.qs, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "nav": "observations",
        "filterset": filterset,
        "selected": {name: request.GET.get(name, "") for name in filter_names},
        "current_only": cleaned.get("current") is True,
        "ignored_filters": [filterset.form.fields[name].label or name.title() for name in filterset.errors],
        "filtering": any(
            cleaned.get(name) not in (None, "") for name in ("q", "partner", "metric", "period", "source")
        ),
        "page_obj": page,
        "observations": list(page.object_list),
        "metrics": list(Metric.objects.order_by("name").values_list("key", "name")),
        "periods": list(
            MetricObservation.objects.current().order_by("-period").values_list("period", flat=True).distinct()
        ),
        "sources": ObservationSource.choices,
        "unit_suffix": UNIT_SUFFIX,
    }
    return render(request, "scorecards/observations/list.html", context)


# --- Entry by hand --------------------------------------------------------------------------------


def _recent_periods(tenant) -> list[str]:
    """This quarter and the seven before it, newest first: the periods values are usually entered for."""
    current = period_containing(timezone.localdate(), kind=QUARTER, start_month=tenant.fiscal_year_start_month)
    return [period.key for period in reversed(current.last(8))]


def _entry_initial(request) -> dict:
    """Fields named in the link (``?partner=<id>&metric=<key>&period=<key>``), for “enter a value” links."""
    initial = {}
    partner_id = request.GET.get("partner", "")
    if partner_id.isascii() and partner_id.isdigit() and len(partner_id) < 19:
        partner = Partner.objects.filter(pk=int(partner_id)).only("name").first()
        if partner is not None:
            initial["partner"] = partner.name
    for name in ("metric", "period"):
        if request.GET.get(name):
            initial[name] = request.GET[name][:60]
    return initial


@observations_page
@require_http_methods(["GET", "HEAD", "POST"])
def observation_create(request):
    """Enter one value by hand; a different value for the same partner, metric and period supersedes."""
    data = request.POST if request.method == "POST" else None
    form = ObservationEntryForm(data, initial=_entry_initial(request), tenant=request.tenant)
    if request.method == "POST":
        outcome = form.save(by=request.user)
        if outcome is not None:
            observation, created = outcome
            what = f"{observation.metric.name} of {observation.partner.name} for {observation.period}"
            if created:
                messages.success(request, f"Recorded {what}. Its scores are being recomputed.")
            else:
                messages.info(request, f"Nothing changed: {what} already has this value.")
            query = urlencode(
                {"partner": observation.partner_id, "metric": observation.metric.key, "period": observation.period}
            )
            return redirect(f"{reverse('observation_list')}?{query}")
    partners = list(Partner.objects.order_by("name").values_list("name", flat=True)[: MAX_PARTNER_OPTIONS + 1])
    context = {
        "nav": "observations",
        "form": form,
        "partner_options": partners if len(partners) <= MAX_PARTNER_OPTIONS else [],
        "period_options": _recent_periods(request.tenant),
    }
    return render(request, "scorecards/observations/form.html", context, status=400 if form.errors else 200)


# --- Uploads ------------------------------------------------------------------------------------------


@observations_page
@require_http_methods(["GET", "HEAD", "POST"])
def observation_upload(request):
    """Choose a CSV file; it is stored and checked by a task, and its page follows the check."""
    form = UploadForm(request.POST, request.FILES) if request.method == "POST" else UploadForm()
    if request.method == "POST":
        upload = form.save(by=request.user)
        if upload is not None:
            return redirect("observation_upload_detail", pk=upload.pk)
    context = {
        "nav": "observations",
        "form": form,
        "uploads": [(upload, STATUS_BADGES[upload.status]) for upload in recent_uploads()],
        "max_megabytes": MAX_UPLOAD_BYTES // (1024 * 1024),
        "max_rows": MAX_UPLOAD_ROWS,
        "required_columns": REQUIRED_COLUMNS,
    }
    return render(request, "scorecards/observations/upload.html", context, status=400 if form.errors else 200)


def _example_value(metric: Metric) -> Decimal:
    """A plausible value of the metric's unit, within its plausible bounds."""
    value = {
        Unit.PERCENT: Decimal("85"),
        Unit.RATIO: Decimal("0.25"),
        Unit.CURRENCY: Decimal("125000"),
        Unit.DAYS: Decimal("14"),
        Unit.HOURS: Decimal("4"),
        Unit.SCORE: Decimal("8"),
    }.get(metric.unit, Decimal("12"))
    if metric.plausible_max is not None:
        value = min(value, metric.plausible_max)
    if metric.plausible_min is not None:
        value = max(value, metric.plausible_min)
    return value.normalize()


def _template_rows(tenant) -> list[list[str]]:
    """Two example rows from the workspace's real metrics and partners.

    Where the first partner has values in force, the rows repeat them, so a template uploaded
    unchanged records nothing; otherwise they show values of the right unit for the last closed
    quarter.
    """
    partner = Partner.objects.order_by("name").only("name").first()
    if partner is None:
        return []
    current = list(
        MetricObservation.objects.current()
        .filter(partner=partner, metric__is_active=True)
        .select_related("metric")
        .order_by("-period", "metric__name")[:2]
    )
    if current:
        return [[partner.name, row.metric.key, row.period, format(row.value.normalize(), "f"), ""] for row in current]
    period = last_closed(timezone.localdate(), kind=QUARTER, start_month=tenant.fiscal_year_start_month).key
    metrics = Metric.objects.filter(is_active=True).order_by("pillar", "name")[:2]
    return [[partner.name, metric.key, period, format(_example_value(metric), "f"), ""] for metric in metrics]


@observations_page
@require_GET
def observation_upload_template(request):
    """A CSV to fill in: the header and two example rows."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["partner", "metric", "period", "value", "note"])
    writer.writerows(_template_rows(request.tenant))
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="observations-template.csv"'
    return response


def _upload_or_404(pk: int) -> Upload:
    return get_object_or_404(Upload.objects.without_content().select_related("uploaded_by", "committed_by"), pk=pk)


def _progress(upload: Upload) -> dict:
    """The progress component's arguments for an upload."""
    rows = upload.check_report.get("rows") or 0
    if upload.status == UploadStatus.RECEIVED:
        label = "Waiting for the check to start"
    elif upload.status == UploadStatus.CHECKING:
        label = (
            f"Checking rows: {upload.rows_done:,} of {upload.rows_total:,}" if upload.rows_total else "Reading the file"
        )
    elif upload.status == UploadStatus.COMMITTING:
        label = f"Recording {rows:,} row{'s' if rows != 1 else ''}"
    else:
        label = upload.get_status_display()
    return {
        "percent": upload.percent,
        "label": label,
        "poll_url": reverse("observation_upload_progress", args=[upload.pk]),
        "done": not upload.is_running,
    }


@observations_page
@require_GET
def observation_upload_detail(request, pk: int):
    """One upload: its progress while a task works on it, then its report, the recording, the recomputes."""
    upload = _upload_or_404(pk)
    runs = upload_recomputes(upload)
    context = {
        "nav": "observations",
        "upload": upload,
        "badge": STATUS_BADGES[upload.status],
        "progress": _progress(upload),
        "stalled": upload_is_stalled(upload),
        "report": upload.check_report,
        "outcome": upload.commit_report,
        "earlier": same_file_uploads(upload),
        "runs": [(run, RECOMPUTE_BADGES.get(run.status, "")) for run in runs],
        "runs_pending": any(run.status in (RecomputeStatus.QUEUED, RecomputeStatus.RUNNING) for run in runs),
    }
    return render(request, "scorecards/observations/upload_detail.html", context)


@observations_page
@require_GET
def observation_upload_progress(request, pk: int):
    """The progress bar alone, polled while a task works on the upload.

    Once the work is over the page reloads itself (``HX-Refresh``) to show the report.
    """
    upload = _upload_or_404(pk)
    response = render(request, "components/progress.html", _progress(upload))
    if not upload.is_running and request.headers.get("HX-Request"):
        response["HX-Refresh"] = "true"
    return response


@observations_page
@require_GET
def observation_upload_scores(request, pk: int):
    """The recomputes an upload caused, polled until they are all done."""
    upload = _upload_or_404(pk)
    runs = upload_recomputes(upload)
    context = {
        "upload": upload,
        "runs": [(run, RECOMPUTE_BADGES.get(run.status, "")) for run in runs],
        "runs_pending": any(run.status in (RecomputeStatus.QUEUED, RecomputeStatus.RUNNING) for run in runs),
    }
    return render(request, "scorecards/observations/_upload_scores.html", context)


@observations_page
@require_POST
def observation_upload_commit(request, pk: int):
    """Record a checked upload: a task writes it, and the upload's page follows its progress."""
    upload = _upload_or_404(pk)
    try:
        upload_commit_request(upload=upload, by=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return redirect("observation_upload_detail", pk=upload.pk)


@observations_page
@require_POST
def observation_upload_recheck(request, pk: int):
    """Check an upload again: after a failure, or once the partners or metrics it names are fixed."""
    upload = _upload_or_404(pk)
    try:
        upload_recheck(upload=upload)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return redirect("observation_upload_detail", pk=upload.pk)
