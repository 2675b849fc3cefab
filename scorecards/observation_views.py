"""Observation pages: the list with its history, entry by hand, and uploads checked and recorded by tasks.

Uploads hold metric observations, deals or marketing facts, as CSV or XLSX files.

Internal people who may enter observations only. Partner users never reach these pages, whatever
their role may do one day: they will correct their data through their own flow.
"""

from __future__ import annotations

import functools
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from partnerhub.integrations.deals import MAX_DEALS
from partnerhub.integrations.marketing import MAX_FACTS
from partnerhub.integrations.models import Upload, UploadKind, UploadStatus
from partnerhub.integrations.tabular import csv_bytes, xlsx_bytes
from partnerhub.integrations.uploads import (
    FACT_FILES,
    fact_template_rows,
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


# What each kind of file holds, for the upload page: the columns and the templates to download.
KIND_COLUMNS = {
    UploadKind.OBSERVATIONS: [
        ("partner", "the partner's name, or its HubSpot or Salesforce id (or a partner_id column)"),
        ("metric", "the metric's key, such as revenue_won"),
        ("period", "like FY2026-Q3 or FY2026-M07"),
        ("value", "a dot for decimals, no thousands separators"),
        ("note", "optional, kept in the audit log"),
    ],
    UploadKind.DEALS: [
        ("external_id", "the deal's id in your system; a deal uploaded again is updated, not added"),
        ("partner", "the partner's name, HubSpot or Salesforce id (or a partner_id column); one that matches no "
         "partner is kept until it is mapped"),
        ("name, stage", "optional text"),
        ("amount, currency", "like 12500.00 and EUR"),
        ("closed, won", "true or false; a won deal is closed"),
        ("created_on, close_date", "YYYY-MM-DD; a closed deal needs its close date"),
        ("deleted", "optional: true removes the deal recorded under this id"),
    ],
    UploadKind.MARKETING: [
        ("external_id", "the fact's id in your system; a fact uploaded again is updated, not added"),
        ("partner", "the partner's name, HubSpot or Salesforce id (or a partner_id column); one that matches no "
         "partner is kept until it is mapped"),
        ("kind", "mql, campaign_pipeline or event_attended"),
        ("occurred_on", "YYYY-MM-DD"),
        ("quantity", "a whole count (1 when left empty); for campaign_pipeline the amount"),
        ("currency", "for campaign_pipeline, like EUR"),
        ("campaign", "optional"),
    ],
}  # fmt: skip
KIND_ROWS = {UploadKind.OBSERVATIONS: MAX_UPLOAD_ROWS, UploadKind.DEALS: MAX_DEALS, UploadKind.MARKETING: MAX_FACTS}
TEMPLATE_FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
TEMPLATE_NAMES = {
    UploadKind.OBSERVATIONS: "observations",
    UploadKind.DEALS: "deals",
    UploadKind.MARKETING: "marketing-facts",
}


def _template_url(kind: str, fmt: str) -> str:
    if (kind, fmt) == (UploadKind.OBSERVATIONS, "csv"):
        return reverse("observation_upload_template")  # the address observation templates always had
    return reverse("upload_template", args=[kind, fmt])


@observations_page
@require_http_methods(["GET", "HEAD", "POST"])
def observation_upload(request):
    """Choose what the file holds and the file; it is stored and checked by a task, and its page follows the check."""
    form = UploadForm(request.POST, request.FILES) if request.method == "POST" else UploadForm()
    if request.method == "POST":
        upload = form.save(by=request.user)
        if upload is not None:
            return redirect("observation_upload_detail", pk=upload.pk)
    kinds = [
        {
            "kind": kind,
            "label": label,
            "columns": KIND_COLUMNS[kind],
            "max_rows": KIND_ROWS[kind],
            "templates": [(fmt.upper(), _template_url(kind, fmt)) for fmt in TEMPLATE_FORMATS],
        }
        for kind, label in UploadKind.choices
    ]
    context = {
        "nav": "observations",
        "form": form,
        "kinds": kinds,
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


def _template_rows(tenant) -> list[list[Any]]:
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
        return [[partner.name, row.metric.key, row.period, row.value.normalize(), ""] for row in current]
    period = last_closed(timezone.localdate(), kind=QUARTER, start_month=tenant.fiscal_year_start_month).key
    metrics = Metric.objects.filter(is_active=True).order_by("pillar", "name")[:2]
    return [[partner.name, metric.key, period, _example_value(metric), ""] for metric in metrics]


OBSERVATION_TEMPLATE_HEADER = ["partner", "metric", "period", "value", "note"]


@observations_page
@require_GET
def observation_upload_template(request):
    """A CSV of observations to fill in: the header and two example rows."""
    return _template_file(request, UploadKind.OBSERVATIONS, "csv")


@observations_page
@require_GET
def upload_template(request, kind: str, fmt: str):
    """A file to fill in, CSV or XLSX: the header and two example rows naming the workspace's partners."""
    if kind not in UploadKind.values or fmt not in TEMPLATE_FORMATS:
        raise Http404("There is no such template.")
    return _template_file(request, kind, fmt)


def _template_file(request, kind: str, fmt: str) -> HttpResponse:
    if kind == UploadKind.OBSERVATIONS:
        header, rows = OBSERVATION_TEMPLATE_HEADER, _template_rows(request.tenant)
    else:
        header, rows = list(FACT_FILES[kind].template), fact_template_rows(kind)
    content = csv_bytes(header, rows) if fmt == "csv" else xlsx_bytes(header, rows, title=UploadKind(kind).label)
    response = HttpResponse(content, content_type=TEMPLATE_FORMATS[fmt])
    response["Content-Disposition"] = f'attachment; filename="{TEMPLATE_NAMES[kind]}-template.{fmt}"'
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
        "facts": upload.kind in FACT_FILES,
        "noun": FACT_FILES[upload.kind].noun if upload.kind in FACT_FILES else "observation",
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
