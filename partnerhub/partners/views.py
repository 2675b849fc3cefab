"""Partner directory, detail, create/edit, and the partner portal home."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_http_methods

from actions.selectors import partner_actions_overview
from actions.views.common import decorate
from partnerhub.paging import DeferredJoinPaginator
from partnerhub.partners.filters import PartnerFilter
from partnerhub.partners.forms import PartnerForm
from partnerhub.partners.history import partner_change_history
from partnerhub.partners.models import LifecycleStage, Partner, PartnerStatus
from partnerhub.partners.selectors import partner_regions
from partnerhub.tenancy.decorators import member_required
from partnerhub.tenancy.roles import Capability
from reviews.selectors import partner_reviews_overview
from scorecards.health_selectors import partner_data_summary

PAGE_SIZE = 50

# Directory columns that sort, the label on their header, and which way the first click sorts:
# biggest, newest and most recently changed first, everything else A to Z.
SORTABLE_COLUMNS = {
    "name": ("Name", ""),
    "stage": ("Stage", ""),
    "region": ("Region", ""),
    "size": ("Size", "-"),
    "joined": ("Joined", "-"),
    "updated": ("Updated", "-"),
}

FILTER_FIELDS = ("q", "type", "stage", "status", "region", "manager")


@dataclass(frozen=True)
class SortHeader:
    key: str
    label: str
    next_sort: str  # the ?sort= value a click on the header asks for
    direction: str  # "asc", "desc" or "" when the table is not sorted by this column

    @property
    def aria_sort(self) -> str:
        return {"asc": "ascending", "desc": "descending"}.get(self.direction, "none")


def _sort_headers(requested: list[str] | None) -> dict[str, SortHeader]:
    current = (requested or ["name"])[0]
    current_key, descending = current.removeprefix("-"), current.startswith("-")
    headers = {}
    for key, (label, first_click) in SORTABLE_COLUMNS.items():
        if key == current_key:
            direction = "desc" if descending else "asc"
            next_sort = key if descending else f"-{key}"
        else:
            direction, next_sort = "", f"{first_click}{key}"
        headers[key] = SortHeader(key=key, label=label, next_sort=next_sort, direction=direction)
    return headers


@member_required(Capability.VIEW_PARTNERS)
@require_GET
def partner_list(request):
    """The internal partner directory: search, filter, sort and page through partners.

    Two queries do the heavy lifting whatever the tenant's size: the count and the page itself
    (ids along an index that starts with tenant_id, then those rows with their relations). htmx
    requests get only the results block.
    """
    filterset = PartnerFilter(request.GET or None, queryset=Partner.objects.with_listing_relations(), request=request)
    if filterset.is_bound:
        # Values that do not parse (a stale link, an edited address) are left out and named on the page.
        filterset.is_valid()
    cleaned = getattr(filterset.form, "cleaned_data", {})
    paginator = DeferredJoinPaginator(filterset.qs, PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    filtering = any(cleaned.get(name) not in (None, "") for name in FILTER_FIELDS)
    context = {
        "nav": "partners",
        "filterset": filterset,
        "ignored_filters": [filterset.form.fields[name].label or name.title() for name in filterset.errors],
        "filtering": filtering,
        "page_obj": page,
        "partners": list(page.object_list),
        "sort_headers": _sort_headers(cleaned.get("sort")),
        "current_sort": ",".join(cleaned.get("sort") or []),
        "can_edit": request.membership.can(Capability.EDIT_PARTNERS),
        "size_label": request.tenant.size_measure_label,
    }
    if request.htmx and not request.htmx.history_restore_request:
        response = render(request, "partners/_directory_results.html", context)
    else:
        context.update(
            stages=LifecycleStage.choices,
            statuses=PartnerStatus.choices,
            regions=partner_regions(),
        )
        response = render(request, "partners/directory.html", context)
    # The same URL answers a full page or a fragment: caches must keep them apart.
    patch_vary_headers(response, ("HX-Request",))
    return response


@member_required(Capability.VIEW_PARTNERS)
@require_GET
def partner_detail(request, pk: int):
    """One partner: who they are, their CRM ids, their reviews and follow-up, and what changed."""
    partner = get_object_or_404(Partner.objects.with_listing_relations(), pk=pk)
    today = timezone.localdate()
    follow_up = partner_actions_overview(partner=partner, by=request.user, today=today)
    context = {
        "nav": "partners",
        "partner": partner,
        "reviews": partner_reviews_overview(partner=partner),
        "data": partner_data_summary(partner),
        "follow_up": follow_up,
        "soonest": decorate(follow_up.soonest, today=today, internal=True),
        "changes": partner_change_history(partner),
        "can_edit": request.membership.can(Capability.EDIT_PARTNERS),
        "size_label": request.tenant.size_measure_label,
    }
    return render(request, "partners/detail.html", context)


def _form_page(request, *, partner: Partner | None):
    form = PartnerForm(request.POST or None, partner=partner, size_label=request.tenant.size_measure_label)
    if request.method == "POST" and form.is_valid():
        saved = form.save(by=request.user)
        if saved is not None:
            verb = "added" if partner is None else "saved"
            messages.success(request, f"{saved.name} {verb}.")
            return redirect("partner_detail", pk=saved.pk)
    context = {
        "nav": "partners",
        "form": form,
        "partner": partner,
        "regions": partner_regions(),
    }
    return render(request, "partners/form.html", context)


@member_required(Capability.EDIT_PARTNERS)
@require_http_methods(["GET", "HEAD", "POST"])
def partner_create(request):
    """Add a partner to the workspace."""
    return _form_page(request, partner=None)


@member_required(Capability.VIEW_PARTNERS)
@require_http_methods(["GET", "HEAD", "POST"])
def partner_edit(request, pk: int):
    """Change a partner's details.

    Looked up before the edit check, so another tenant's id is a 404 for every internal role,
    as on the detail page; partner users are refused before any lookup.
    """
    partner = get_object_or_404(Partner.objects.with_listing_relations(), pk=pk)
    if not request.membership.can(Capability.EDIT_PARTNERS):
        raise PermissionDenied("Your role can view partners but not change them.")
    return _form_page(request, partner=partner)


@member_required()
@require_GET
def portal_home(request):
    """A partner user's start page: their own company and what the program will show them.

    Internal people have the directory instead and are sent there.
    """
    membership = request.membership
    if not membership.can(Capability.VIEW_OWN_PARTNER):
        if membership.can(Capability.VIEW_PARTNERS):
            return redirect("partner_list")
        raise PermissionDenied("The partner portal is for the partner's own people.")
    partner = get_object_or_404(Partner.objects.with_listing_relations(), pk=membership.partner_id)
    return render(request, "portal/home.html", {"nav": "portal", "partner": partner})
