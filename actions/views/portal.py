"""The partner portal's actions: the partner's own actions, and their follow-up within what the services allow.

Internal-only data (escalations, the plan deliberations) is never shown here; another partner's
action answers 404 like a missing one, because every lookup starts from the partner user's own.
"""

from __future__ import annotations

from django.core.paginator import Paginator
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from actions import selectors
from actions.views.common import PAGE_SIZE, decorate, portal_page
from actions.views.items import detail_page, edit_page, followup_post


@portal_page
@require_GET
def portal_actions(request):
    """The partner's actions, unfinished first by due date, then the finished ones."""
    show_finished = request.GET.get("show") == "all"
    queryset = selectors.partner_actions(by=request.user, include_finished=show_finished)
    page = Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = decorate(page.object_list, today=timezone.localdate(), internal=False)
    context = {"nav": "portal_actions", "page_obj": page, "rows": rows, "show_finished": show_finished}
    return render(request, "actions/portal_list.html", context)


@portal_page
@require_GET
def portal_action_detail(request, pk: int):
    return detail_page(request, pk, portal=True)


@portal_page
@require_http_methods(["GET", "HEAD", "POST"])
def portal_action_edit(request, pk: int):
    """The partner's own people change an action's working notes; what was agreed stays the program's."""
    return edit_page(request, pk, portal=True)


@portal_page
@require_POST
def portal_action_comment(request, pk: int):
    return followup_post(request, pk, kind="comment", portal=True)


@portal_page
@require_POST
def portal_action_progress(request, pk: int):
    return followup_post(request, pk, kind="progress", portal=True)


@portal_page
@require_POST
def portal_action_move(request, pk: int):
    return followup_post(request, pk, kind="move", portal=True)
