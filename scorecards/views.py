"""Scorecard pages: a partner's scorecard (internal and in the portal), the published rules, the portfolio.

A scorecard page compares its period with a baseline period: by default the same quarter a year earlier.
"""

from __future__ import annotations

from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET

from partnerhub import charts
from partnerhub.partners.models import Partner, PartnerType
from partnerhub.tenancy.decorators import member_required
from partnerhub.tenancy.roles import Capability, Role
from scorecards.models import Rating
from scorecards.page_selectors import (
    FLAG_LABELS,
    PORTFOLIO_SORTS,
    PartnerScorecard,
    baseline_view,
    clean_period,
    default_period,
    partner_scorecard,
    portfolio_scores,
    score_flags,
    scored_periods,
)
from scorecards.periods import parse_period
from scorecards.published_rules import published_rules

PORTFOLIO_PAGE_SIZE = 50
SORT_LABELS = {"partner": "Partner", "segment": "Segment", "score": "Score", "change": "Change", "rank": "Rank"}


def _scorecard_charts(page: PartnerScorecard) -> dict:
    """The SVG charts of a scorecard page, built from what the selector read."""
    history = [
        (parse_period(row["period"], start_month=1).label, None if row["total"] is None else float(row["total"]))
        for row in page.history
    ]
    result = {
        "trend_svg": charts.trend_chart(history, title=f"Total score over the last {len(history)} periods"),
        "row_charts": [],
        "waterfall_svg": None,
    }
    for row in page.rows:
        result["row_charts"].append(
            (
                row,
                charts.benchmark_bar(
                    value=row.raw, median=row.median, p75=row.p75, title=f"{row.metric_name}: you and your segment"
                ),
                charts.sparkline(row.trend, title=f"{row.metric_name} over 8 periods") if row.trend else "",
            )
        )
    if page.score is not None and page.previous_total is not None and page.terms:
        result["waterfall_svg"] = charts.waterfall_chart(
            start=page.previous_total,
            terms=[(term.label, term.delta) for term in page.terms],
            end=float(page.score.total),
            start_label=f"{page.previous_period} total",
            end_label=f"{page.period} total",
            title=f"What changed the score from {page.previous_period} to {page.period}",
        )
    return result


def _scorecard_response(request, *, partner: Partner, portal: bool):
    requested = request.GET.get("period")
    period = clean_period(requested) if requested else None
    page = partner_scorecard(partner=partner, period=period or default_period(partner))
    # The baseline is the same partner's: the page's partner comes from the URL (internal, scoped
    # to the tenant) or from the membership (portal), never from the query string.
    baseline = baseline_view(
        page=page, requested=request.GET.get("baseline"), start_month=request.tenant.fiscal_year_start_month
    )
    context = {
        "nav": "portal" if portal else "partners",
        "portal": portal,
        "partner": partner,
        "page": page,
        "score": page.score,
        "baseline": baseline,
        "flags": score_flags(page.score) if page.score else [],
        "ignored_period": requested if requested and period is None else None,
        **_scorecard_charts(page),
    }
    return render(request, "scorecards/partner_scorecard.html", context)


@member_required(Capability.VIEW_SCORECARDS)
@require_GET
def partner_scorecard_page(request, pk: int):
    """One partner's scorecard for a period: total, components against the segment, trend, change."""
    partner = get_object_or_404(Partner.objects.with_listing_relations(), pk=pk)
    return _scorecard_response(request, partner=partner, portal=False)


@member_required(Capability.VIEW_OWN_PARTNER)
@require_GET
def portal_scorecard(request):
    """The partner's own scorecard in the portal; the partner comes from the membership, never the URL."""
    partner = get_object_or_404(Partner.objects.with_listing_relations(), pk=request.membership.partner_id)
    return _scorecard_response(request, partner=partner, portal=True)


@member_required(Capability.VIEW_OWN_PARTNER)
@require_GET
def portal_rules(request):
    """“How you are scored”: the rules in force for the partner's segment and their history."""
    partner = get_object_or_404(Partner.objects.with_listing_relations(), pk=request.membership.partner_id)
    context = {
        "nav": "portal",
        "portal": True,
        "partner": partner,
        "scorecards": published_rules(partner_type=partner.partner_type.key),
    }
    return render(request, "scorecards/rules.html", context)


@member_required(Capability.VIEW_SCORECARDS)
@require_GET
def scorecard_rules(request):
    """Every active version as partners read it, for internal people answering their questions."""
    context = {
        "nav": "scorecards",
        "portal": False,
        "scorecards": published_rules(partner_type=None),
        "segment_names": dict(PartnerType.objects.values_list("key", "name")),
    }
    return render(request, "scorecards/rules.html", context)


@member_required(Capability.VIEW_SCORECARDS)
@require_GET
def portfolio(request):
    """Partners' scores for a period: filter by segment, rating, flag and manager; sort; page.

    Partner managers see their own partners first (``scope=all`` widens it). A page costs the same
    few queries whatever its length: the period list, the segments, the count and the page.
    """
    periods = scored_periods()
    period = clean_period(request.GET.get("period")) or (periods[0] if periods else None)
    segment = request.GET.get("segment") or None
    rating = request.GET.get("rating") if request.GET.get("rating") in Rating.values else None
    flag = request.GET.get("flag") if request.GET.get("flag") in FLAG_LABELS else None
    is_manager = request.membership.role == Role.PARTNER_MANAGER
    scope = request.GET.get("scope") or ("mine" if is_manager else "all")
    sort_param = request.GET.get("sort") or "-score"
    sort_key = sort_param.removeprefix("-")
    if sort_key not in PORTFOLIO_SORTS:
        sort_key, sort_param = "score", "-score"
    descending = sort_param.startswith("-")
    rows = []
    page_obj = None
    if period:
        queryset = portfolio_scores(
            period=period,
            segment=segment,
            rating=rating,
            flag=flag,
            manager=request.user if scope == "mine" else None,
            sort=sort_key,
            descending=descending,
        )
        page_obj = Paginator(queryset, PORTFOLIO_PAGE_SIZE).get_page(request.GET.get("page"))
        rows = [(score, score_flags(score)) for score in page_obj.object_list]
    headers = []
    for key, label in SORT_LABELS.items():
        direction = ("desc" if descending else "asc") if key == sort_key else ""
        next_sort = key if direction == "desc" else f"-{key}"
        if key in ("partner", "segment") and not direction:
            next_sort = key
        headers.append({"key": key, "label": label, "direction": direction, "next_sort": next_sort})
    context = {
        "nav": "scorecards",
        "periods": periods,
        "period": period,
        "segments": list(PartnerType.objects.order_by("name").values_list("key", "name")),
        "ratings": Rating.choices,
        "flags": list(FLAG_LABELS.items()),
        "selected": {"segment": segment or "", "rating": rating or "", "flag": flag or "", "scope": scope},
        "is_manager": is_manager,
        "headers": headers,
        "current_sort": sort_param,
        "rows": rows,
        "page_obj": page_obj,
        "filtering": bool(segment or rating or flag or scope == "mine"),
    }
    if request.htmx and not request.htmx.history_restore_request:
        response = render(request, "scorecards/_portfolio_results.html", context)
    else:
        response = render(request, "scorecards/portfolio.html", context)
    patch_vary_headers(response, ("HX-Request",))
    return response
