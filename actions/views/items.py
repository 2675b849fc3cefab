"""Action pages: "my actions", the board, the filtered list, creating and editing an action, its follow-up.

The program's people use these pages; a partner's own people follow their partner's actions in the
portal (:mod:`actions.views.portal`), which shares the follow-up writes below. Every lookup goes
through ``actions.selectors``, so another partner's action or another workspace's is a 404.
Writes answer htmx with the swapped partial (200, with the problem named on it) and plain posts
with a redirect and a message.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from actions import selectors
from actions.filters import ActionFilterForm
from actions.forms import (
    EDIT_LABELS,
    ActionCreateForm,
    ActionEditForm,
    CommentForm,
    EscalateForm,
    ProgressForm,
    TransitionForm,
)
from actions.models import ActionStatus, UpdateKind
from actions.services import escalation, followup, items
from actions.services.checks import finished_refusal
from actions.views.common import (
    PAGE_SIZE,
    STATUS_BADGES,
    decorate,
    error_text,
    flash,
    may_escalate,
    program_page,
    safe_next,
)
from partnerhub.partners.models import Partner


def _links(action, *, portal: bool) -> dict[str, str]:
    prefix = "portal_action" if portal else "action"
    return {
        name: reverse(f"{prefix}_{name}", args=[action.pk]) for name in ("detail", "comment", "progress", "move")
    } | ({} if portal else {"escalate": reverse("action_escalate", args=[action.pk])})


def followup_context(request, action, *, portal: bool, forms: dict | None = None, error: str = "", note: str = ""):
    """What the follow-up panel of an action shows: status, progress, moves, forms and history."""
    internal = not portal
    today = timezone.localdate()
    (action,) = decorate([action], today=today, internal=internal)
    history = selectors.action_history(action=action, by=request.user)
    if portal:
        # Escalations are the program's own deliberation.
        history = [update for update in history if update.kind != UpdateKind.ESCALATION]
    forms = forms or {}
    context = {
        "action": action,
        "portal": portal,
        "links": _links(action, portal=portal),
        "history": history,
        "comment_form": forms.get("comment") or CommentForm(),
        "progress_form": forms.get("progress") or ProgressForm(initial={"percent": action.progress}),
        "move_form": forms.get("move") or TransitionForm(),
        "error": error,
        "note": note,
        "today": today,
    }
    if may_escalate(action, internal=internal, today=today):
        context["escalate_form"] = forms.get("escalate") or EscalateForm()
    return context


# --- Lists ------------------------------------------------------------------------------------------------


@program_page
@require_GET
def my_actions(request):
    """The signed-in person's unfinished actions, by due date, overdue ones marked."""
    today = timezone.localdate()
    rows = decorate(selectors.my_actions(user=request.user), today=today, internal=True)
    context = {"nav": "actions", "rows": rows, "overdue": sum(row.overdue for row in rows)}
    return render(request, "actions/mine.html", context)


def _filtered(params):
    """The filter form and the selector's keyword arguments it gives (empty when it cannot be read)."""
    form = ActionFilterForm(params or None)
    filters = form.selector_filters() if form.is_bound and form.is_valid() else {}
    return form, filters


@program_page
@require_GET
def action_list(request):
    """Every action of the workspace, filtered by owner, partner, status, overdue and root cause; paginated.

    A fixed number of queries whatever the number of actions.
    """
    form, filters = _filtered(request.GET)
    try:
        queryset = selectors.actions_list(by=request.user, **filters)
    except ValidationError:
        form, queryset = ActionFilterForm(), selectors.actions_list(by=request.user)
    page = Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = decorate(page.object_list, today=timezone.localdate(), internal=True)
    context = {"nav": "actions", "form": form, "page_obj": page, "rows": rows, "view": "list"}
    return render(request, "actions/list.html", context)


@program_page
@require_GET
def action_board(request):
    """The actions in columns by status; a card moves with a status change."""
    form, filters = _filtered(request.GET)
    try:
        columns = selectors.actions_board(by=request.user, **filters)
    except ValidationError:
        form, columns = ActionFilterForm(), selectors.actions_board(by=request.user)
    today = timezone.localdate()
    board = [
        _column(status, count=len(cards)) | {"cards": decorate(cards, today=today, internal=True)}
        for status, cards in columns.items()
    ]
    context = {"nav": "actions", "form": form, "board": board, "view": "board"}
    return render(request, "actions/board.html", context)


def _column(status: str, *, count: int) -> dict:
    """What a board column's header shows."""
    return {
        "status": status,
        "label": ActionStatus(status).label,
        "badge": STATUS_BADGES.get(status, ""),
        "count": count,
    }


def board_card_answer(request, action, *, moved_from: str, error: str, note: str):
    """The htmx answer to a card's button on the board.

    A refused move re-renders the card where it is, with the reason. A move re-renders it at the
    top of its new column and both columns' headers (out of band), counted with the filters of the
    board it was moved on (the ``next`` it came with), so a card the filters no longer show leaves.
    """
    (card,) = decorate([action], today=timezone.localdate(), internal=True)
    board_path = safe_next(request, reverse("action_board"))
    context = {"action": card, "error": error, "note": note, "board_path": board_path}
    if error or moved_from == action.status:
        return render(request, "actions/_card.html", context)
    _, filters = _filtered(QueryDict(urlsplit(board_path).query))
    try:
        shown = selectors.actions_list(by=request.user, **filters)
    except ValidationError:
        shown = selectors.actions_list(by=request.user)
    counts = shown.aggregate(
        old=Count("pk", filter=Q(status=moved_from)),
        new=Count("pk", filter=Q(status=action.status)),
        here=Count("pk", filter=Q(pk=action.pk)),
    )
    context |= {
        "left_empty": counts["old"] == 0,
        "arrived": counts["here"] == 1,
        "first_in_column": counts["new"] == 1,
        "heads": [_column(moved_from, count=counts["old"]), _column(action.status, count=counts["new"])],
    }
    return render(request, "actions/_card_moved.html", context)


# --- Create -----------------------------------------------------------------------------------------------


def _chosen_partner(request):
    raw = request.POST.get("partner") if request.method == "POST" else request.GET.get("partner")
    if not raw or not str(raw).isdigit():
        return None
    return Partner.objects.filter(pk=int(raw)).first()


@program_page
@require_http_methods(["GET", "HEAD", "POST"])
def action_create(request):
    """Record an action for a partner. Choosing the partner narrows the owners to those eligible."""
    partner = _chosen_partner(request)
    if request.method == "POST":
        form = ActionCreateForm(request.POST, partner=partner)
        try:
            created = form.save(by=request.user)
        except PermissionDenied as error:
            form.add_error(None, error_text(error))
            created = None
        if created is not None:
            flash(request, ok=f"The action “{created.title}” was created for {created.partner.name}.")
            return redirect("action_detail", pk=created.pk)
    else:
        # Choosing the partner reloads the form with what was typed so far (htmx sends it along).
        form = ActionCreateForm(
            initial={**request.GET.dict(), "partner": partner.pk if partner else None}, partner=partner
        )
    context = {"nav": "actions", "form": form, "partner": partner}
    template = "actions/_create_form.html" if request.htmx and request.method == "GET" else "actions/create.html"
    return render(request, template, context, status=400 if form.errors else 200)


# --- Edit -------------------------------------------------------------------------------------------------


def _save_edit(request, form: ActionEditForm, action) -> str | None:
    """What the flash message says once saved; None with the form's errors set when nothing could be saved."""
    if not form.is_valid():
        return None
    changes = form.changes()
    if form.errors:
        return None
    if form.conflicts:
        # Someone else changed the same fields meanwhile: nothing is saved until this person decides.
        form.show_conflicts()
        return None
    if not changes:
        return "Nothing changed."
    try:
        items.action_update(action=action, by=request.user, **changes)
    except ValidationError as error:
        form.add_service_errors(error)
        return None
    except PermissionDenied as error:
        form.add_error(None, error_text(error))
        return None
    return "Saved: " + ", ".join(sorted(EDIT_LABELS[name] for name in changes)) + "."


def edit_page(request, pk: int, *, portal: bool):
    """Change an unfinished action's fields; a partner's own users change only the working notes.

    Only the fields whose value changed go to ``action_update``, so what was left alone stays as
    it is (a due date that has passed is kept; moving one into the past is refused).
    """
    action = selectors.action_get(pk=pk, by=request.user)
    detail_url = reverse("portal_action_detail" if portal else "action_detail", args=[action.pk])
    context = {"nav": "portal_actions" if portal else "actions", "action": action, "portal": portal}
    context["detail_url"] = detail_url
    if action.is_finished:
        context["refusal"] = finished_refusal(action)
        return render(request, "actions/edit.html", context, status=400 if request.method == "POST" else 200)
    form = ActionEditForm(request.POST if request.method == "POST" else None, action=action, partner_user=portal)
    if request.method == "POST":
        saved = _save_edit(request, form, action)
        if saved is not None:
            flash(request, ok=saved)
            return redirect(detail_url)
    context["form"] = form
    return render(request, "actions/edit.html", context, status=400 if form.errors else 200)


@program_page
@require_http_methods(["GET", "HEAD", "POST"])
def action_edit(request, pk: int):
    """Change an action's title, owner, due date, priority, kind, root cause, plan, notes and targets."""
    return edit_page(request, pk, portal=False)


# --- One action ------------------------------------------------------------------------------------------


def detail_page(request, pk: int, *, portal: bool):
    action = selectors.action_get(pk=pk, by=request.user)
    context = followup_context(request, action, portal=portal)
    context["nav"] = "portal_actions" if portal else "actions"
    context["targets"] = list(action.targets.all())
    return render(request, "actions/detail.html", context)


@program_page
@require_GET
def action_detail(request, pk: int):
    """An action with everything agreed, its history, and the follow-up forms."""
    return detail_page(request, pk, portal=False)


def followup_post(request, pk: int, *, kind: str, portal: bool):
    """A comment, progress report, status move or escalation; the service decides what is allowed."""
    action = selectors.action_get(pk=pk, by=request.user)
    form_class = {"comment": CommentForm, "progress": ProgressForm, "move": TransitionForm, "escalate": EscalateForm}
    form = form_class[kind](request.POST)
    ok, error = "", ""
    if form.is_valid():
        data = form.cleaned_data
        try:
            if kind == "comment":
                followup.action_comment(action=action, by=request.user, body=data["body"])
                ok = "Comment added."
            elif kind == "progress":
                followup.action_progress(action=action, by=request.user, percent=data["percent"], note=data["note"])
                ok = f"Progress reported: {data['percent']}%."
            elif kind == "move":
                moved = followup.action_transition(action=action, to=data["to"], by=request.user, note=data["note"])
                ok = f"Moved to {moved.get_status_display().lower()}."
            else:
                escalation.action_escalate(action=action, to=data["to"], reason=data["reason"], by=request.user)
                ok = f"Escalated to {data['to'].get_full_name() or data['to'].email}."
        except ValidationError as problem:
            form.add_service_errors(problem)
        except PermissionDenied as problem:
            form.add_error(None, error_text(problem))
    if form.errors:
        error = " ".join(form.all_messages())
    fresh = selectors.action_get(pk=pk, by=request.user)
    if request.htmx:
        if request.POST.get("view") == "card" and not portal:
            return board_card_answer(request, fresh, moved_from=action.status, error=error, note=ok)
        context = followup_context(
            request, fresh, portal=portal, forms={kind: form} if error else None, error=error, note=ok
        )
        return render(request, "actions/_followup.html", context)
    flash(request, ok=ok, error=error)
    fallback = reverse("portal_action_detail" if portal else "action_detail", args=[pk])
    return redirect(safe_next(request, fallback))


@program_page
@require_POST
def action_comment(request, pk: int):
    return followup_post(request, pk, kind="comment", portal=False)


@program_page
@require_POST
def action_progress(request, pk: int):
    return followup_post(request, pk, kind="progress", portal=False)


@program_page
@require_POST
def action_move(request, pk: int):
    return followup_post(request, pk, kind="move", portal=False)


@program_page
@require_POST
def action_escalate(request, pk: int):
    return followup_post(request, pk, kind="escalate", portal=False)
