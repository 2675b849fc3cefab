"""Data-health pages: the program's and one partner's suspect values, completeness and sources.

Internal people holding the data-health capability read them; partner managers and
administrators (who decide corrections) also accept or reject suspect values, inline with htmx or
on a page of their own without it. Objects are looked up through the scoped managers before the
review capability is checked, so another tenant's id answers 404 for every internal role.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods

from partnerhub import charts
from partnerhub.partners.models import Partner
from partnerhub.tenancy.decorators import member_required
from partnerhub.tenancy.roles import Capability, Role
from scorecards.health import HISTORY_PERIODS, MIN_HISTORY, MIN_PEERS, THRESHOLD
from scorecards.health_selectors import (
    SourceLink,
    completeness,
    completeness_history,
    health_periods,
    lowest_completeness,
    observation_periods,
    partner_observations,
    period_label,
    review_counts,
    source_links,
    sources_needing_attention,
    suspect_values,
    unmatched_deal_count,
)
from scorecards.models import CheckReview, ObservationCheck
from scorecards.page_selectors import clean_period
from scorecards.services.health import check_review

SUSPECTS_PAGE_SIZE = 25
VALUES_PAGE_SIZE = 50
LOWEST_SHOWN = 10
NOTE_MAX_LENGTH = 2000
REVIEW_BADGES = {CheckReview.UNREVIEWED: "warn", CheckReview.ACCEPTED: "ok", CheckReview.REJECTED: "bad"}
REVIEW_FILTERS = [
    ("", "Any review state"),
    (CheckReview.UNREVIEWED, "Awaiting review"),
    (CheckReview.ACCEPTED, "Accepted"),
    (CheckReview.REJECTED, "Rejected"),
]
LAYOUTS = ("program", "partner")
# The method's thresholds, for the pages that explain it.
METHOD = {
    "threshold": THRESHOLD,
    "history_periods": HISTORY_PERIODS,
    "min_history": MIN_HISTORY,
    "min_peers": MIN_PEERS,
}


def health_page(capability: Capability = Capability.VIEW_DATA_HEALTH):
    """Internal members holding ``capability``; partner users are refused before any lookup."""

    def decorate(view):
        @member_required(capability)
        @functools.wraps(view)
        def guarded(request, *args, **kwargs):
            if not request.membership.is_internal:
                raise PermissionDenied("Data health is for the program's own people.")
            return view(request, *args, **kwargs)

        return guarded

    return decorate


def _can_review(request) -> bool:
    return request.membership.can(Capability.DECIDE_CORRECTIONS)


def _safe_next(request, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return fallback


def _z_text(value: float | None) -> str:
    if value is None:
        return "—"
    text = f"{value:+.1f}"
    return text.replace("-", "\u2212")


@dataclass
class SuspectRow:
    """A suspect value as a table row shows it."""

    check: ObservationCheck
    link: SourceLink | None = None
    error: str = ""
    note: str = ""
    note_value: str = ""  # the note as typed, given back with an error

    @property
    def badge(self) -> str:
        return REVIEW_BADGES.get(self.check.review, "")

    @property
    def history_z(self) -> str:
        return _z_text(self.check.history_z)

    @property
    def segment_z(self) -> str:
        return _z_text(self.check.segment_z)

    @property
    def replaced(self) -> bool:
        return self.check.observation.superseded_by_id is not None


def _suspect_rows(checks) -> list[SuspectRow]:
    checks = list(checks)
    links = source_links(check.observation for check in checks)
    return [SuspectRow(check, link=links.get(check.observation_id)) for check in checks]


def _scope(request) -> tuple[str, bool]:
    """The partners shown, mine or all: partner managers start with the partners they manage."""
    is_manager = request.membership.role == Role.PARTNER_MANAGER
    scope = request.GET.get("scope")
    if scope not in ("mine", "all"):
        scope = "mine" if is_manager else "all"
    return scope, is_manager


def _review_filter(request) -> str:
    review = request.GET.get("review") or ""
    return review if review in CheckReview.values else ""


def _results(request, *, page: str, partial: str, context: dict):
    """The whole page, or only its results for an htmx filter change."""
    template = partial if request.htmx and not request.htmx.history_restore_request else page
    response = render(request, template, context)
    patch_vary_headers(response, ("HX-Request",))
    return response


def _completeness_chart(summary, *, label: str):
    if not summary.scored:
        return ""
    minimum = summary.minimum
    return charts.histogram_chart(
        [(float(low), float(high), count) for low, high, count in summary.bins],
        title=f"Partners by completeness in {label}",
        mark=None if minimum is None else float(minimum),
        mark_label="" if minimum is None else f"Minimum {float(minimum) * 100:.0f}%",
    )


def _review_words(review: str) -> str:
    return {
        CheckReview.UNREVIEWED: "awaiting review",
        CheckReview.ACCEPTED: "accepted",
        CheckReview.REJECTED: "rejected",
    }[review]


def _program_empty(counts: dict, *, label: str, review: str, mine: bool) -> tuple[str, str]:
    """What an empty suspect table means, in words."""
    among = " among the partners you manage" if mine else ""
    if review:
        return f"No suspect values {_review_words(review)} in {label}{among}", "Choose another review state."
    if not counts["checked"]:
        return (
            f"No values of {label} have been checked yet{among}",
            "Values are checked against their history and segment before the period is scored.",
        )
    return (
        f"No suspect values in {label}{among}: every value checked is in line with its history and segment",
        f"{counts['checked']:,} value{'s' if counts['checked'] != 1 else ''} checked.",
    )


def _partner_empty(counts: dict, *, partner: Partner, review: str) -> tuple[str, str]:
    if review:
        return f"No suspect values of {partner.name} {_review_words(review)}", "Choose another review state."
    if not counts["checked"]:
        return (
            f"None of {partner.name}'s values have been checked yet",
            "Values are checked against their history and segment before their period is scored.",
        )
    return (
        f"No suspect values for {partner.name}: every value checked is in line with its history and segment",
        f"{counts['checked']:,} value{'s' if counts['checked'] != 1 else ''} checked.",
    )


def _show_all_url(request) -> str:
    query = request.GET.copy()
    query["scope"] = "all"
    query.pop("page", None)
    return f"{reverse('data_health')}?{query.urlencode()}"


# --- The program -----------------------------------------------------------------------------------------


@health_page()
@require_GET
def data_health(request):
    """The program's data health for a period: suspect values to review, completeness, sources, deals.

    A fixed number of queries whatever the number of partners, values or sources: the periods,
    the review counts, the completeness aggregate and minimums, the least complete scores, the
    sources and their last runs, the unmatched count, and the suspect page with its references.
    """
    tenant = request.tenant
    start_month = tenant.fiscal_year_start_month
    periods, latest_scored = health_periods(start_month=start_month)
    requested = request.GET.get("period")
    period = clean_period(requested) if requested else None
    ignored_period = requested[:40] if requested and period is None else None
    if period is None:
        period = latest_scored or (periods[0] if periods else None)
    if period and period not in periods:
        periods = [period, *periods]
    scope, is_manager = _scope(request)
    manager = request.user if scope == "mine" else None
    review = _review_filter(request)
    label = period_label(period, start_month=start_month) if period else ""

    context = {
        "nav": "data_health",
        "periods": [(key, period_label(key, start_month=start_month)) for key in periods],
        "period": period,
        "period_label": label,
        "ignored_period": ignored_period,
        "selected": {"scope": scope, "review": review},
        "review_filters": REVIEW_FILTERS,
        "is_manager": is_manager,
        "can_review": _can_review(request),
        "can_configure": request.membership.can(Capability.CONFIGURE_TENANT),
        "suspects_count_in_scores": tenant.suspect_values_count,
        "layout": "program",
        "method": METHOD,
        "sources": sources_needing_attention(),
        "unmatched": unmatched_deal_count(),
        "rows": [],
        "page_obj": None,
    }
    if period:
        summary = completeness(period=period, manager=manager)
        page_obj = Paginator(
            suspect_values(period=period, review=review, manager=manager), SUSPECTS_PAGE_SIZE
        ).get_page(request.GET.get("page"))
        counts = review_counts(period=period, manager=manager)
        context.update(
            counts=counts,
            empty=_program_empty(counts, label=label, review=review, mine=scope == "mine"),
            show_all_url=_show_all_url(request) if scope == "mine" else "",
            summary=summary,
            chart_svg=_completeness_chart(summary, label=label),
            lowest=lowest_completeness(period=period, manager=manager, limit=LOWEST_SHOWN),
            page_obj=page_obj,
            rows=_suspect_rows(page_obj.object_list),
        )
    context["stale_or_failing"] = sum(1 for row in context["sources"] if row.health.key in ("stale", "failing"))
    context["never_synced"] = sum(1 for row in context["sources"] if row.health.key == "never")
    return _results(
        request,
        page="scorecards/health/program.html",
        partial="scorecards/health/_program_results.html",
        context=context,
    )


# --- One partner -------------------------------------------------------------------------------------------


@health_page()
@require_GET
def partner_data_health(request, pk: int):
    """One partner's data health: its suspect values in every period, completeness over time, and
    the values of a period (the latest by default) with their source and check."""
    partner = get_object_or_404(Partner.objects.with_listing_relations(), pk=pk)
    start_month = request.tenant.fiscal_year_start_month
    periods = observation_periods(partner=partner, start_month=start_month)
    requested = request.GET.get("period")
    period = clean_period(requested) if requested else None
    ignored_period = requested[:40] if requested and period is None else None
    if period is None:
        period = periods[0] if periods else None
    if period and period not in periods:
        periods = [period, *periods]
    review = _review_filter(request)
    counts = review_counts(partner=partner)

    history = completeness_history(partner=partner)
    latest = history[-1] if history else None
    minimum = latest.version.min_completeness if latest else None
    trend_svg = ""
    if history:
        trend_svg = charts.trend_chart(
            [(period_label(s.period, start_month=start_month), float(s.completeness) * 100) for s in history],
            title=f"Completeness of {partner.name}'s scores over the last {len(history)} scored periods (%)",
            band=(0.0, float(minimum) * 100) if minimum is not None else None,
            band_label="Under the minimum completeness",
            width=480,
            height=180,
        )

    suspects_page = Paginator(suspect_values(partner=partner, review=review), SUSPECTS_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    values_page = None
    values = []
    if period:
        values_page = Paginator(partner_observations(partner=partner, period=period), VALUES_PAGE_SIZE).get_page(
            request.GET.get("values_page")
        )
        observations = list(values_page.object_list)
        links = source_links(observations)
        values = [
            {"observation": o, "check": getattr(o, "health_check", None), "link": links.get(o.pk)} for o in observations
        ]
    context = {
        "nav": "partners",
        "partner": partner,
        "periods": [(key, period_label(key, start_month=start_month)) for key in periods],
        "period": period,
        "period_label": period_label(period, start_month=start_month) if period else "",
        "ignored_period": ignored_period,
        "selected": {"review": review},
        "review_filters": REVIEW_FILTERS,
        "can_review": _can_review(request),
        "can_configure": request.membership.can(Capability.CONFIGURE_TENANT),
        "suspects_count_in_scores": request.tenant.suspect_values_count,
        "layout": "partner",
        "method": METHOD,
        "counts": counts,
        "history": history,
        "latest": latest,
        "latest_label": period_label(latest.period, start_month=start_month) if latest else "",
        "minimum": minimum,
        "gaps": sum(1 for score in history if score.flag_data_gap),
        "trend_svg": trend_svg,
        "page_obj": suspects_page,
        "rows": _suspect_rows(suspects_page.object_list),
        "empty": _partner_empty(counts, partner=partner, review=review),
        "values_page": values_page,
        "values": values,
    }
    return _results(
        request,
        page="scorecards/health/partner.html",
        partial="scorecards/health/_partner_results.html",
        context=context,
    )


# --- Reviewing a suspect value -------------------------------------------------------------------------------


class ReviewForm(forms.Form):
    """Accept or reject a suspect value; rejecting says why (the service insists)."""

    decision = forms.ChoiceField(
        choices=[("accept", "Accept"), ("reject", "Reject")],
        error_messages={"required": "Choose Accept or Reject.", "invalid_choice": "Choose Accept or Reject."},
    )
    note = forms.CharField(required=False, max_length=NOTE_MAX_LENGTH, strip=True)

    def save(self, *, check: ObservationCheck, by) -> ObservationCheck | None:
        """Review through the service; None with the problems on the form when it refuses."""
        if not self.is_valid():
            return None
        try:
            return check_review(
                check=check,
                accept=self.cleaned_data["decision"] == "accept",
                note=self.cleaned_data["note"],
                by=by,
            )
        except ValidationError as error:
            self.add_error(None, error)
            return None


def _form_messages(form: ReviewForm) -> list[str]:
    return [message for errors in form.errors.values() for message in errors]


def _reviewed_message(check: ObservationCheck) -> str:
    verb = "accepted" if check.review == CheckReview.ACCEPTED else "rejected"
    return f"{check.metric.name} of {check.partner.name} in {check.period} {verb}; the partner's score is recomputed."


def _check_or_404(pk: int) -> ObservationCheck:
    return get_object_or_404(
        ObservationCheck.objects.select_related("partner", "metric", "observation", "reviewed_by"), pk=pk
    )


@health_page()
@require_http_methods(["GET", "HEAD", "POST"])
def check_review_page(request, pk: int):
    """Accept or reject a suspect value: inline in a table with htmx, on this page without it."""
    check = _check_or_404(pk)
    if not _can_review(request):
        raise PermissionDenied("Your role can see suspect values but not review them.")
    layout = request.POST.get("layout") if request.POST.get("layout") in LAYOUTS else "program"
    fallback = (
        reverse("partner_data_health", args=[check.partner_id])
        if layout == "partner"
        else f"{reverse('data_health')}?period={check.period}"
    )
    form = ReviewForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        reviewed = form.save(check=check, by=request.user)
        if reviewed is not None:
            if request.htmx:
                row = _suspect_rows([_check_or_404(pk)])[0]
                row.note = "Accepted." if reviewed.review == CheckReview.ACCEPTED else "Rejected."
                return _row_response(request, row, layout=layout)
            messages.success(request, _reviewed_message(reviewed))
            return redirect(_safe_next(request, fallback))
        if request.htmx:
            # htmx swaps 200 answers only: the row comes back with the problem named on it.
            row = _suspect_rows([_check_or_404(pk)])[0]
            row.error = " ".join(_form_messages(form))
            row.note_value = form.data.get("note", "")
            return _row_response(request, row, layout=layout)
    context = {
        "nav": "data_health",
        "row": _suspect_rows([check])[0],
        "form": form,
        "layout": layout,
        "can_review": True,
        "next": _safe_next(request, fallback),
        # The note's own problems show by the field; the rest above the form.
        "errors": [message for name, errors in form.errors.items() if name != "note" for message in errors],
        "suspects_count_in_scores": request.tenant.suspect_values_count,
    }
    return render(request, "scorecards/health/review.html", context, status=400 if form.errors else 200)


def _row_response(request, row: SuspectRow, *, layout: str):
    context = {"row": row, "layout": layout, "can_review": True, "next": _safe_next(request, "")}
    return render(request, "scorecards/health/_suspect_row.html", context)
