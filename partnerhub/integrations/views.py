"""Data-source pages: the list with each source's health, its settings, its sync history, and the
queue of deals whose partner reference matched no partner.

People with the data-health capability read them; administrators (who manage data sources) also
connect, reconfigure, sync and map. Objects are looked up through the scoped managers, so another
tenant's id answers 404 like a missing one.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Max, Min, OuterRef, Subquery, Sum
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from partnerhub.integrations.forms import ATTRIBUTION_LABELS, DataSourceForm, MappingForm
from partnerhub.integrations.services import (
    CREDENTIAL_LABELS,
    ConnectionTest,
    MappingOutcome,
    mapping_delete,
    source_activate,
    source_deactivate,
    source_sync_now,
    source_test_connection,
)
from partnerhub.integrations.source_models import (
    CREDENTIAL_FIELDS,
    DataSource,
    Deal,
    PartnerMapping,
    SourceKind,
    SyncRun,
    SyncStatus,
)
from partnerhub.paging import DeferredJoinPaginator
from partnerhub.partners.models import Partner
from partnerhub.tenancy.decorators import member_required
from partnerhub.tenancy.roles import Capability

SOURCES_PAGE_SIZE = 50
RUNS_PAGE_SIZE = 25
GROUPS_PAGE_SIZE = 25
MAPPINGS_PAGE_SIZE = 50
MAX_PARTNER_OPTIONS = 1000  # beyond this many partners the mapping field offers no list of names
OPEN = (SyncStatus.QUEUED, SyncStatus.RUNNING)

RUN_BADGES = {
    SyncStatus.QUEUED: "pending",
    SyncStatus.RUNNING: "pending",
    SyncStatus.SUCCEEDED: "ok",
    SyncStatus.RESCHEDULED: "warn",
    SyncStatus.FAILED: "bad",
}
KIND_INTROS = {
    SourceKind.HUBSPOT: "Deals from a HubSpot portal, read with a private app's access token.",
    SourceKind.SALESFORCE: "Opportunities from a Salesforce org, read by an external client app (client credentials).",
    SourceKind.FILE: "Facts from files people upload.",
    SourceKind.API: "Facts an integration pushes through the PartnerHub API.",
}


def data_page(capability: Capability = Capability.VIEW_DATA_HEALTH):
    """Internal members holding ``capability``; partner users are refused before any lookup."""

    def decorate(view):
        @member_required(capability)
        @functools.wraps(view)
        def guarded(request, *args, **kwargs):
            if not request.membership.is_internal:
                raise PermissionDenied("Data sources are managed by the program's own people.")
            return view(request, *args, **kwargs)

        return guarded

    return decorate


def _can_manage(request) -> bool:
    return request.membership.can(Capability.MANAGE_DATA_SOURCES)


def _require_manage(request) -> None:
    if not _can_manage(request):
        raise PermissionDenied("Your role can see data sources but not change them.")


def _safe_next(request, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return fallback


# --- Health of a source ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceHealth:
    key: str
    label: str
    badge: str
    explanation: str


def source_health(source: DataSource, last_finished: SyncRun | None, now=None) -> SourceHealth:
    """Inactive, failing, never synced, stale or healthy; sources that are not pulled just receive facts.

    ``last_finished`` is the source's last run that ended: a run under way does not hide a failure.
    """
    if not source.is_active:
        return SourceHealth("inactive", "Inactive", "", "Not scheduled; its facts are kept.")
    if not source.pulled:
        return SourceHealth("receiving", "Receives facts", "growing", "Facts arrive by upload or API; nothing to sync.")
    if last_finished is not None and last_finished.status == SyncStatus.FAILED:
        return SourceHealth("failing", "Failing", "bad", "The last sync failed; see its error.")
    if source.last_success_at is None:
        return SourceHealth("never", "Never synced", "pending", "No sync has finished yet.")
    if source.is_stale(now):
        return SourceHealth(
            "stale", "Stale", "warn", f"No successful sync for more than {source.stale_after_hours} hours."
        )
    return SourceHealth("healthy", "Healthy", "ok", "Synced recently.")


def _progress(run: SyncRun) -> dict:
    """The progress component's arguments for a run: its size is unknown, so it is indeterminate."""
    if run.status == SyncStatus.QUEUED:
        label = "Queued: waiting for a worker"
    elif run.status == SyncStatus.RUNNING:
        label = f"Syncing: {run.pages:,} page{'s' if run.pages != 1 else ''}, {run.fetched:,} deals read"
    else:
        label = f"{run.get_status_display()}: {run.pages:,} pages, {run.fetched:,} deals read"
    return {
        "percent": None if run.status in OPEN else 100,
        "label": label,
        "poll_url": reverse("sync_run_progress", args=[run.pk]),
        "done": run.status not in OPEN,
    }


def _duration(value) -> str:
    if value is None:
        return ""
    seconds = max(0, int(value.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


# --- The list -----------------------------------------------------------------------------------------


@data_page()
@require_GET
def data_source_list(request):
    """Every source with its health, last success, next run and the last run's outcome.

    A fixed number of queries whatever the number of sources or runs: the count, the page (with
    the id of each source's last run as a subquery), those runs, and the unmatched counts.
    """
    newest = SyncRun.objects.filter(source=OuterRef("pk")).order_by("-queued_at", "-pk")
    sources = DataSource.objects.annotate(
        last_run_id=Subquery(newest.values("pk")[:1]),
        last_finished_id=Subquery(newest.exclude(status__in=OPEN).values("pk")[:1]),
    ).order_by("name", "pk")
    page = Paginator(sources, SOURCES_PAGE_SIZE).get_page(request.GET.get("page"))
    rows = list(page.object_list)
    runs = SyncRun.objects.in_bulk(
        {run_id for row in rows for run_id in (row.last_run_id, row.last_finished_id) if run_id}
    )
    unmatched = dict(
        Deal.objects.filter(source__in=[row.pk for row in rows], partner__isnull=True, deleted_at__isnull=True)
        .order_by()
        .values_list("source_id")
        .annotate(count=Count("pk"))
    )
    now = timezone.now()
    context = {
        "nav": "data_sources",
        "page_obj": page,
        "rows": [
            {
                "source": row,
                "health": source_health(row, runs.get(row.last_finished_id), now),
                "last_run": runs.get(row.last_run_id),
                "badge": RUN_BADGES.get(getattr(runs.get(row.last_run_id), "status", ""), ""),
                "unmatched": unmatched.get(row.pk, 0),
            }
            for row in rows
        ],
        "can_manage": _can_manage(request),
        "kinds": [(kind, KIND_INTROS[kind]) for kind in SourceKind],
    }
    return render(request, "integrations/source_list.html", context)


# --- Connecting and configuring ---------------------------------------------------------------------


@data_page(Capability.MANAGE_DATA_SOURCES)
@require_GET
def data_source_new(request):
    """Choose what kind of source to connect."""
    context = {"nav": "data_sources", "kinds": [(kind, KIND_INTROS[kind]) for kind in SourceKind]}
    return render(request, "integrations/source_new.html", context)


def _test_response(request, form: DataSourceForm, test: ConnectionTest | None, template_context: dict):
    """The outcome of "Test connection": a fragment for htmx, else the whole form page."""
    test_errors = [
        (form.fields[name].label if name in form.fields else "", error)
        for name, errors in form.errors.items()
        for error in errors
    ]
    context = {**template_context, "form": form, "test": test, "test_errors": test_errors}
    if request.htmx:
        return render(request, "integrations/_connection_test.html", context)
    return render(request, "integrations/source_form.html", context, status=200 if test else 400)


def _form_page(request, *, kind: str, source: DataSource | None):
    data = request.POST if request.method == "POST" else None
    form = DataSourceForm(data, kind=kind, source=source)
    context = {
        "nav": "data_sources",
        "source": source,
        "kind": kind,
        "kind_label": SourceKind(kind).label,
        "kind_intro": KIND_INTROS[kind],
        "pulled": kind in (SourceKind.HUBSPOT, SourceKind.SALESFORCE),
    }
    if request.method == "POST" and request.POST.get("action") == "test":
        return _test_response(request, form, form.test_connection(), context)
    if request.method == "POST":
        saved = form.save(by=request.user)
        if saved is not None:
            messages.success(request, f"{saved.name} {'connected' if source is None else 'saved'}.")
            return redirect("data_source_detail", pk=saved.pk)
    context["form"] = form
    return render(request, "integrations/source_form.html", context, status=400 if form.errors else 200)


@data_page(Capability.MANAGE_DATA_SOURCES)
@require_http_methods(["GET", "HEAD", "POST"])
def data_source_create(request, kind: str):
    """Connect a source of one kind, starting from its usual endpoints."""
    if kind not in SourceKind.values:
        raise Http404("No such kind of data source.")
    return _form_page(request, kind=kind, source=None)


def _source_or_404(pk: int) -> DataSource:
    return get_object_or_404(DataSource, pk=pk)


@data_page()
@require_http_methods(["GET", "HEAD", "POST"])
def data_source_edit(request, pk: int):
    """Change a source's settings and credentials (write-only: only whether each is set shows).

    Looked up before the capability check, so another tenant's id is a 404 for every internal role.
    """
    source = _source_or_404(pk)
    _require_manage(request)
    return _form_page(request, kind=source.kind, source=source)


@data_page()
@require_POST
def data_source_test(request, pk: int):
    """Test a saved source's connection with its stored settings and credentials."""
    source = _source_or_404(pk)
    _require_manage(request)
    test = source_test_connection(source=source)
    if request.htmx:
        return render(request, "integrations/_connection_test.html", {"test": test})
    level = messages.SUCCESS if test.ok else messages.ERROR
    messages.add_message(request, level, f"{test.message} {test.advice}".strip())
    return redirect("data_source_detail", pk=source.pk)


@data_page()
@require_POST
def data_source_sync(request, pk: int):
    """Sync now: queue a run, or say that one is already under way."""
    source = _source_or_404(pk)
    _require_manage(request)
    try:
        _, queued = source_sync_now(source=source, by=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        if queued:
            messages.success(request, "Sync queued.")
        else:
            messages.info(request, "A sync is already running.")
    return redirect(_safe_next(request, reverse("data_source_detail", args=[source.pk])))


@data_page()
@require_POST
def data_source_active(request, pk: int):
    """Deactivate a source (stop its schedule) or activate it again."""
    source = _source_or_404(pk)
    _require_manage(request)
    if request.POST.get("active") == "1":
        source_activate(source=source, by=request.user)
        messages.success(request, f"{source.name} is active again; it syncs on its schedule.")
    else:
        source_deactivate(source=source, by=request.user)
        messages.success(request, f"{source.name} is deactivated; its facts are kept.")
    return redirect("data_source_detail", pk=source.pk)


# --- A source and its runs ----------------------------------------------------------------------------


@data_page()
@require_GET
def data_source_detail(request, pk: int):
    """A source's settings, and its sync runs, newest first, with what each read, wrote and hit."""
    source = _source_or_404(pk)
    runs = SyncRun.objects.filter(source=source).select_related("requested_by").order_by("-queued_at", "-pk")
    page = DeferredJoinPaginator(runs, RUNS_PAGE_SIZE).get_page(request.GET.get("page"))
    run_rows = [
        {"run": run, "badge": RUN_BADGES.get(run.status, ""), "progress": None, "duration": _duration(run.duration)}
        for run in page.object_list
    ]
    for row in run_rows:
        if row["run"].status in OPEN:
            row["progress"] = _progress(row["run"])
    last_finished = runs.exclude(status__in=OPEN).first()
    stored = set(source.credentials_set or [])
    context = {
        "nav": "data_sources",
        "source": source,
        "health": source_health(source, last_finished),
        "attribution_label": ATTRIBUTION_LABELS.get(source.kind, {}).get(source.attribution, ""),
        "page_obj": page,
        "runs": run_rows,
        "credentials": [
            (CREDENTIAL_LABELS.get(name, name), name in stored) for name in CREDENTIAL_FIELDS[SourceKind(source.kind)]
        ],
        "mappings": PartnerMapping.objects.filter(source=source).count(),
        "unmatched": Deal.objects.filter(source=source, partner__isnull=True, deleted_at__isnull=True).count(),
        "can_manage": _can_manage(request),
    }
    return render(request, "integrations/source_detail.html", context)


@data_page()
@require_GET
def sync_run_progress(request, pk: int):
    """A run's progress bar alone, polled while it is queued or running; the page reloads once it ends."""
    run = get_object_or_404(SyncRun, pk=pk)
    response = render(request, "components/progress.html", _progress(run))
    if run.status not in OPEN and request.headers.get("HX-Request"):
        response["HX-Refresh"] = "true"
    return response


# --- The unmatched queue ------------------------------------------------------------------------------


def _source_filter(request) -> int | None:
    value = request.GET.get("source", "")
    return int(value) if value.isascii() and value.isdigit() and len(value) < 19 else None


def _queue_context(request, *, errors: dict | None = None, posted: dict | None = None) -> dict:
    """The groups of unmatched deals on this page, with what the page needs to show and map them.

    The same queries whatever the number of deals or groups: the count of groups, the page of
    groups, their sources, the mappings already made for them, and the partner names offered.
    """
    deals = Deal.objects.filter(partner__isnull=True, deleted_at__isnull=True)
    source_id = _source_filter(request)
    if source_id is not None:
        deals = deals.filter(source_id=source_id)
    groups = (
        deals.values("source_id", "partner_ref")
        .annotate(
            count=Count("pk"),
            total=Sum("amount"),
            currencies=Count("currency", distinct=True),
            currency=Max("currency"),
            oldest=Min("created_on"),
            newest=Max("created_on"),
        )
        .order_by("-count", "source_id", "partner_ref")
    )
    page = Paginator(groups, GROUPS_PAGE_SIZE).get_page(request.GET.get("page"))
    rows = list(page.object_list)
    sources = DataSource.objects.in_bulk({row["source_id"] for row in rows})
    mapped = {
        (mapping.source_id, mapping.external_ref): mapping
        for mapping in PartnerMapping.objects.filter(
            source_id__in=list(sources),
            external_ref__in=list({row["partner_ref"] for row in rows if row["partner_ref"]}),
        ).select_related("partner")
    }
    errors, posted = errors or {}, posted or {}
    for row in rows:
        key = (row["source_id"], row["partner_ref"])
        row["source"] = sources.get(row["source_id"])
        row["mapping"] = mapped.get(key)
        row["error"] = errors.get(key)
        row["partner_value"] = posted.get(key, row["mapping"].partner.name if row["mapping"] else "")
    partner_names = []
    if _can_manage(request):
        partner_names = list(Partner.objects.order_by("name").values_list("name", flat=True)[: MAX_PARTNER_OPTIONS + 1])
    filter_source = DataSource.objects.filter(pk=source_id).first() if source_id is not None else None
    return {
        "nav": "data_sources",
        "page_obj": page,
        "groups": rows,
        "filter_source": filter_source,
        "filter_unknown": source_id is not None and filter_source is None,
        "partner_options": partner_names if len(partner_names) <= MAX_PARTNER_OPTIONS else [],
        "can_manage": _can_manage(request),
    }


@data_page()
@require_GET
def unmatched_queue(request):
    """Unmatched deals grouped by source and partner reference, biggest groups first, each with a form to map it."""
    return render(request, "integrations/unmatched.html", _queue_context(request))


def _outcome_message(outcome: MappingOutcome) -> str:
    mapping = outcome.mapping
    if not outcome.deals and not outcome.facts:
        if outcome.created:
            return f"Mapped “{mapping.external_ref}” to {mapping.partner}. No unmatched deals named it yet."
        return f"“{mapping.external_ref}” was already mapped to {mapping.partner}; nothing was left to match."
    parts = [f"{outcome.deals:,} deal{'s' if outcome.deals != 1 else ''} matched"]
    if outcome.facts:
        parts.append(f"{outcome.facts:,} marketing fact{'s' if outcome.facts != 1 else ''} matched")
    parts.append(f"{outcome.observations:,} observation{'s' if outcome.observations != 1 else ''} recorded")
    return f"Mapped “{mapping.external_ref}” to {mapping.partner}: {', '.join(parts)}."


# --- Mappings -----------------------------------------------------------------------------------------


@data_page()
@require_http_methods(["GET", "HEAD", "POST"])
def mapping_list(request, pk: int):
    """A source's mappings (GET), or map a reference to a partner (POST, from here or the queue)."""
    source = _source_or_404(pk)
    if request.method == "POST":
        _require_manage(request)
        form = MappingForm(request.POST, source=source)
        outcome = form.save(by=request.user)
        if outcome is not None:
            messages.success(request, _outcome_message(outcome))
            return redirect(_safe_next(request, reverse("mapping_list", args=[source.pk])))
        if request.POST.get("from") == "queue":
            ref = request.POST.get("external_ref", "")
            message = " ".join(" ".join(errors) for errors in form.errors.values())
            context = _queue_context(
                request,
                errors={(source.pk, ref): message},
                posted={(source.pk, ref): request.POST.get("partner", "")},
            )
            return render(request, "integrations/unmatched.html", context, status=400)
    else:
        form = MappingForm(source=source)
    mappings = PartnerMapping.objects.filter(source=source).select_related("partner", "created_by")
    page = DeferredJoinPaginator(mappings.order_by("external_ref", "pk"), MAPPINGS_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    can_manage = _can_manage(request)
    partner_names = []
    if can_manage:
        partner_names = list(Partner.objects.order_by("name").values_list("name", flat=True)[: MAX_PARTNER_OPTIONS + 1])
    context = {
        "nav": "data_sources",
        "source": source,
        "form": form,
        "page_obj": page,
        "mappings": list(page.object_list),
        "can_manage": can_manage,
        "partner_options": partner_names if len(partner_names) <= MAX_PARTNER_OPTIONS else [],
    }
    return render(request, "integrations/mappings.html", context, status=400 if form.errors else 200)


@data_page()
@require_http_methods(["GET", "HEAD", "POST"])
def mapping_remove(request, pk: int):
    """Remove a mapping, after saying what happens to the deals it matched."""
    mapping = get_object_or_404(PartnerMapping.objects.select_related("source", "partner"), pk=pk)
    _require_manage(request)
    if request.method == "POST":
        outcome = mapping_delete(mapping=mapping, by=request.user)
        moved = f"{outcome.deals:,} deal{'s' if outcome.deals != 1 else ''}"
        messages.success(
            request,
            f"Removed the mapping of “{mapping.external_ref}”: {moved} moved off {mapping.partner}, "
            f"{outcome.observations:,} observations recorded.",
        )
        return redirect("mapping_list", pk=mapping.source_id)
    matched = Deal.objects.filter(
        source=mapping.source, partner_ref=mapping.external_ref, partner=mapping.partner
    ).count()
    return render(
        request,
        "integrations/mapping_remove.html",
        {"nav": "data_sources", "mapping": mapping, "matched": matched},
    )
