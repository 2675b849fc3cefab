"""Correction pages: the partner's data and requests in the portal, and the internal corrections queue.

Partner users reach their own partner's data only: the partner comes from the membership, never
from the URL, and another partner's value, score or request answers 404 like a missing one.
The queue is for internal people who decide corrections. Evidence files are served here, after
the same checks, as attachments; there is no public URL for them.
"""

from __future__ import annotations

import datetime
import functools
from pathlib import PurePath

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from partnerhub.partners.models import Partner
from partnerhub.tenancy.decorators import member_required
from partnerhub.tenancy.roles import Capability
from scorecards.correction_forms import AppealForm, CorrectionRequestFilter, CorrectionRequestForm, DecisionForm
from scorecards.models import CorrectionKind, CorrectionRequest, CorrectionStatus, MetricObservation, Score
from scorecards.page_selectors import clean_period, default_period
from scorecards.services import corrections
from scorecards.services.corrections import MAX_EVIDENCE_BYTES, request_values, value_text

PAGE_SIZE = 50
STATUS_BADGES = {
    CorrectionStatus.OPEN: "warn",
    CorrectionStatus.APPROVED: "ok",
    CorrectionStatus.REJECTED: "bad",
    CorrectionStatus.WITHDRAWN: "",
}


# --- Shared display -----------------------------------------------------------------------------------


def _count(number: int, unit: str) -> str:
    return f"{number} {unit}{'' if number == 1 else 's'}"


def duration_text(delta: datetime.timedelta) -> str:
    """6 days · 3 hours · 12 minutes · less than a minute (whole units, rounded down)."""
    seconds = max(int(delta.total_seconds()), 0)
    if seconds >= 86400:
        return _count(seconds // 86400, "day")
    if seconds >= 3600:
        return _count(seconds // 3600, "hour")
    if seconds >= 60:
        return _count(seconds // 60, "minute")
    return "less than a minute"


def age_text(request: CorrectionRequest, *, now: datetime.datetime) -> str:
    """“open 6 days”, or how long it took: “approved after 2 days”, “withdrawn after 3 hours”."""
    if request.status == CorrectionStatus.OPEN or request.decided_at is None:
        return f"open {duration_text(now - request.requested_at)}"
    return f"{request.get_status_display().lower()} after {duration_text(request.decided_at - request.requested_at)}"


class RequestRow:
    """A request as a list shows it: the request with its values, age and badge, computed once."""

    def __init__(self, request: CorrectionRequest, *, now: datetime.datetime, error: str = "", note: str = ""):
        self.request = request
        self.old_value, self.new_value = request_values(request)
        self.age = age_text(request, now=now)
        self.badge = STATUS_BADGES.get(request.status, "")
        self.error = error
        self.note = note

    @property
    def what(self) -> str:
        if self.request.kind == CorrectionKind.CORRECTION:
            return self.request.metric.name
        return "Score"


def _rows(requests, now=None) -> list[RequestRow]:
    now = now or timezone.now()
    return [RequestRow(request, now=now) for request in requests]


def _listing(queryset):
    """What a list row shows, fetched with it: partner, metric, people (one query per page)."""
    return queryset.select_related("partner", "metric", "requested_by", "decided_by")


def open_requests_link(request) -> dict:
    """Template context for the navigation: the number of open requests, for people who decide them.

    Evaluated only when a template shows it, at most once per page.
    """
    membership = getattr(request, "membership", None)
    if membership is None or not membership.is_internal or not membership.can(Capability.DECIDE_CORRECTIONS):
        return {}
    return {"corrections_open": functools.cache(lambda: CorrectionRequest.objects.open().count())}


def _safe_next(request, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=False):
        return target
    return fallback


# --- Partner portal: your data ----------------------------------------------------------------------------


def _own_partner(request) -> Partner:
    return get_object_or_404(Partner.objects.select_related("partner_type"), pk=request.membership.partner_id)


def _portal_periods(partner: Partner) -> list[str]:
    """Periods with values or scores of the partner, newest first."""
    observed = MetricObservation.objects.current().filter(partner=partner).values_list("period", flat=True)
    scored = Score.objects.current().filter(partner=partner).values_list("period", flat=True)
    return sorted(set(observed.distinct()) | set(scored.distinct()), reverse=True)


@member_required(Capability.REQUEST_CORRECTIONS)
@require_GET
def portal_data(request):
    """“Your data”: the values in force behind the partner's score for a period, where each came from,
    and a way to dispute each value or the score. A fixed number of queries whatever the number of values."""
    partner = _own_partner(request)
    periods = _portal_periods(partner)
    requested = request.GET.get("period")
    period = clean_period(requested) if requested else None
    period = period or (periods[0] if periods else default_period(partner))
    score = Score.objects.current().filter(partner=partner, period=period).select_related("version").first()
    observations = list(
        MetricObservation.objects.current()
        .filter(partner=partner, period=period)
        .select_related("metric")
        .order_by("metric__name", "pk")
    )
    open_by_observation = {
        row.observation_id: row
        for row in CorrectionRequest.objects.open().filter(observation__in=[o.pk for o in observations])
    }
    scored_keys = {component.get("metric_key") for component in (score.components or [])} if score else set()
    rows = [
        {
            "observation": observation,
            "value": value_text(observation.value, observation.metric.unit),
            "counts": observation.metric.key in scored_keys,
            "open_request": open_by_observation.get(observation.pk),
        }
        for observation in observations
    ]
    open_appeal = CorrectionRequest.objects.open().filter(score=score).first() if score else None
    context = {
        "nav": "portal_data",
        "partner": partner,
        "period": period,
        "periods": periods,
        "score": score,
        "rows": rows,
        "open_appeal": open_appeal,
        "ignored_period": requested if requested and clean_period(requested) is None else None,
    }
    return render(request, "scorecards/corrections/portal_data.html", context)


def _own_observation(request, pk: int) -> MetricObservation:
    return get_object_or_404(
        MetricObservation.objects.select_related("metric", "partner").filter(partner_id=request.membership.partner_id),
        pk=pk,
    )


@member_required(Capability.REQUEST_CORRECTIONS)
@require_http_methods(["GET", "HEAD", "POST"])
def correction_new(request, pk: int):
    """Ask for one of the partner's values to be corrected: the right value, why, and evidence."""
    observation = _own_observation(request, pk)
    if request.method == "POST":
        form = CorrectionRequestForm(request.POST, request.FILES)
        created = form.save(observation=observation, by=request.user)
        if created is not None:
            messages.success(
                request,
                f"Your request to correct {observation.metric.name} for {observation.period} was sent. "
                "You will get an email when it is decided.",
            )
            return redirect("correction_portal_requests")
    else:
        form = CorrectionRequestForm()
    context = {
        "nav": "portal_data",
        "form": form,
        "observation": observation,
        "value": value_text(observation.value, observation.metric.unit),
        "superseded": observation.superseded_by_id is not None,
        "max_megabytes": MAX_EVIDENCE_BYTES // (1024 * 1024),
    }
    return render(request, "scorecards/corrections/request_form.html", context, status=400 if form.errors else 200)


@member_required(Capability.REQUEST_CORRECTIONS)
@require_http_methods(["GET", "HEAD", "POST"])
def appeal_new(request, pk: int):
    """Appeal the partner's score for a period."""
    score = get_object_or_404(
        Score.objects.select_related("version").filter(partner_id=request.membership.partner_id), pk=pk
    )
    if request.method == "POST":
        form = AppealForm(request.POST, request.FILES)
        created = form.save(score=score, by=request.user)
        if created is not None:
            messages.success(
                request, f"Your appeal of the {score.period} score was sent. You will get an email when it is decided."
            )
            return redirect("correction_portal_requests")
    else:
        form = AppealForm()
    context = {
        "nav": "portal_data",
        "form": form,
        "score": score,
        "total": value_text(score.total),
        "max_megabytes": MAX_EVIDENCE_BYTES // (1024 * 1024),
    }
    return render(request, "scorecards/corrections/appeal_form.html", context, status=400 if form.errors else 200)


@member_required(Capability.REQUEST_CORRECTIONS)
@require_GET
def portal_requests(request):
    """“Your requests”: the partner's corrections and appeals, newest first, with their decisions."""
    queryset = _listing(CorrectionRequest.objects.filter(partner_id=request.membership.partner_id)).order_by(
        "-requested_at", "-pk"
    )
    page = Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"nav": "portal_requests", "page_obj": page, "rows": _rows(page.object_list)}
    return render(request, "scorecards/corrections/portal_requests.html", context)


@member_required(Capability.REQUEST_CORRECTIONS)
@require_POST
def request_withdraw(request, pk: int):
    """The requester takes back an open request."""
    found = get_object_or_404(CorrectionRequest.objects.filter(partner_id=request.membership.partner_id), pk=pk)
    try:
        corrections.request_withdraw(request=found, by=request.user)
    except PermissionDenied as error:
        messages.error(request, str(error))
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"Request #{found.pk} was withdrawn.")
    return redirect("correction_portal_requests")


# --- Internal: the corrections queue ---------------------------------------------------------------------


def _queue_page(view):
    """Internal people who decide corrections; partner users and other roles get 403 before any lookup."""

    @member_required(Capability.DECIDE_CORRECTIONS)
    @functools.wraps(view)
    def guarded(request, *args, **kwargs):
        if not request.membership.is_internal:
            raise PermissionDenied("Corrections are decided by the program's own people.")
        return view(request, *args, **kwargs)

    return guarded


def _queue_order(queryset, status: str | None):
    if status in (None, "", CorrectionStatus.OPEN):
        return queryset.order_by("requested_at", "pk")  # the longest waiting first
    return queryset.order_by("-decided_at", "-pk")


@_queue_page
@require_GET
def correction_queue(request):
    """Requests to decide, the longest waiting first, with filters; open requests by default.

    A fixed number of queries whatever the number of requests: the partner options, the count, the page.
    """
    data = request.GET.copy()
    if "status" not in data:
        data["status"] = CorrectionStatus.OPEN
    filterset = CorrectionRequestFilter(data, queryset=_listing(CorrectionRequest.objects.all()))
    valid = filterset.is_valid()
    status = filterset.form.cleaned_data.get("status") if valid else CorrectionStatus.OPEN
    queryset = filterset.qs if valid else _listing(CorrectionRequest.objects.open())
    page = Paginator(_queue_order(queryset, status), PAGE_SIZE).get_page(request.GET.get("page"))
    partner_ids = CorrectionRequest.objects.values("partner_id").distinct()
    context = {
        "nav": "corrections",
        "page_obj": page,
        "rows": _rows(page.object_list),
        "selected": {name: data.get(name, "") for name in ("status", "partner", "kind")},
        "statuses": CorrectionStatus.choices,
        "kinds": CorrectionKind.choices,
        "partners": list(Partner.objects.filter(pk__in=partner_ids).order_by("name").values_list("pk", "name")),
        "ignored_filters": sorted(filterset.errors),
        "corrections_open": CorrectionRequest.objects.open().count(),
    }
    return render(request, "scorecards/corrections/queue.html", context)


def _queue_row(request, found: CorrectionRequest, *, error: str = "", note: str = "", form=None):
    found = _listing(CorrectionRequest.objects.filter(pk=found.pk)).get()
    row = RequestRow(found, now=timezone.now(), error=error, note=note)
    return render(request, "scorecards/corrections/_queue_row.html", {"row": row, "form": form})


@_queue_page
@require_http_methods(["GET", "HEAD", "POST"])
def correction_decide(request, pk: int):
    """Approve or reject: inline in the queue with htmx, on a page of its own without."""
    found = get_object_or_404(_listing(CorrectionRequest.objects.all()), pk=pk)
    form = DecisionForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        decided = form.save(request=found, by=request.user)
        if decided is not None:
            verb = decided.get_status_display().lower()
            if request.htmx:
                return _queue_row(request, decided, note=f"{verb.capitalize()}.")
            messages.success(request, f"Request #{decided.pk} of {decided.partner.name} was {verb}.")
            return redirect(_safe_next(request, reverse("correction_queue")))
        if request.htmx:
            # htmx swaps 200 answers only: the row comes back with the problem named on it.
            return _queue_row(request, found, error=" ".join(_form_messages(form)), form=form)
    context = {
        "nav": "corrections",
        "row": RequestRow(found, now=timezone.now()),
        "form": form,
        "next": _safe_next(request, reverse("correction_queue")),
    }
    return render(request, "scorecards/corrections/decide.html", context, status=400 if form.errors else 200)


def _form_messages(form) -> list[str]:
    return [message for messages_ in form.errors.values() for message in messages_]


# --- Evidence ------------------------------------------------------------------------------------------------


@member_required()
@require_GET
def correction_evidence(request, pk: int):
    """A request's evidence file, as an attachment: for the partner's own people and the program's people."""
    membership = request.membership
    queryset = CorrectionRequest.objects.exclude(evidence="")
    if membership.is_partner_user:
        queryset = queryset.filter(partner_id=membership.partner_id)
    elif not membership.is_internal:
        raise PermissionDenied("Your role does not include evidence files.")
    found = get_object_or_404(queryset, pk=pk)
    response = evidence_response(found)
    if response is None:
        raise Http404("The evidence file is no longer stored.")
    return response


def evidence_response(found: CorrectionRequest) -> FileResponse | None:
    """The evidence file as a download (never shown inline); None when the file is gone from storage.

    The name is the partner's own, with the extension of the kind the content was found to be;
    the content type is that kind's, and browsers are told not to guess another.
    """
    try:
        handle = found.evidence.open("rb")
    except OSError:
        return None
    stem = PurePath(found.evidence_name).stem[:100] or f"evidence-{found.pk}"
    response = FileResponse(
        handle,
        as_attachment=True,
        filename=f"{stem}{PurePath(found.evidence.name).suffix}",
        content_type=found.evidence_type or "application/octet-stream",
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response
