"""Review pages: a manager's reviews, cycles and their memo, the review workspace, and the partner's reviews.

Internal pages answer 404 to partner users, as if they did not exist; the partner's pages answer
404 to everyone but the partner's own people. Another tenant's ids are 404 like missing ones (the
scoped managers never load them). Every write goes through ``reviews.services``; a refusal is
shown with the service's words and changes nothing.
"""

from __future__ import annotations

import csv
import functools

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from partnerhub.charts import distribution_chart
from partnerhub.tenancy.decorators import member_required
from partnerhub.tenancy.roles import Capability
from reviews import selectors
from reviews.forms import (
    AmendForm,
    CommitmentForm,
    CycleCloseForm,
    CycleGenerateForm,
    DecisionForm,
    NoteForm,
    RatingForm,
    SummaryForm,
    VoiceForm,
)
from reviews.models import (
    CLOSED_STATES,
    REVIEW_TRANSITIONS,
    CollaborationPrompt,
    CycleStatus,
    Review,
    ReviewCycle,
    ReviewState,
)
from reviews.services import cycles, lifecycle, workspace

PAGE_SIZE = 25
STATE_BADGES = {
    ReviewState.SCHEDULED: "",
    ReviewState.PREPARING: "pending",
    ReviewState.IN_MEETING: "warn",
    ReviewState.FINALIZED: "ok",
    ReviewState.SHARED: "ok",
}
MOVE_LABELS = {
    ReviewState.PREPARING: "Start preparing (freezes the pre-read)",
    ReviewState.SCHEDULED: "Back to scheduled",
    ReviewState.IN_MEETING: "Start the meeting",
    ReviewState.FINALIZED: "Finalize",
    ReviewState.SHARED: "Share with the partner",
}
SCORES = (1, 2, 3, 4, 5)


def _messages_of(error: ValidationError) -> str:
    return " ".join(error.messages)


def _by_id(queryset, pk: int):
    """The row ``pk`` of a scoped queryset, or 404 (also for ids no database column can hold)."""
    found = queryset.filter(pk=pk).first() if 0 < pk <= selectors.MAX_ID else None
    if found is None:
        raise Http404("Not found.")
    return found


def _internal_page(capability: Capability = Capability.VIEW_PARTNERS):
    """The program's own people; to partner users the page does not exist."""

    def decorate(view):
        @member_required()
        @functools.wraps(view)
        def guarded(request, *args, **kwargs):
            if not request.membership.is_internal:
                raise Http404("No such page.")
            if not request.membership.can(capability):
                raise PermissionDenied("Your role in this workspace does not include this page.")
            return view(request, *args, **kwargs)

        return guarded

    return decorate


def _partner_page(view):
    """The partner's own people; to anyone else the page does not exist."""

    @member_required()
    @functools.wraps(view)
    def guarded(request, *args, **kwargs):
        if not request.membership.is_partner_user:
            raise Http404("No such page.")
        return view(request, *args, **kwargs)

    return guarded


def _page(queryset, request, param: str):
    """A page of ``queryset`` numbered by ``param``, with links to its neighbours that keep the other parameters."""
    page = Paginator(queryset, PAGE_SIZE).get_page(request.GET.get(param))

    def link(number: int) -> str:
        query = request.GET.copy()
        query[param] = str(number)
        return f"?{query.urlencode()}"

    page.object_list = list(page.object_list)
    for row in page.object_list:
        if isinstance(row, Review):
            row.badge = STATE_BADGES.get(row.state, "")
    page.previous_url = link(page.previous_page_number()) if page.has_previous() else ""
    page.next_url = link(page.next_page_number()) if page.has_next() else ""
    return page


# --- A manager's reviews and the cycles ------------------------------------------------------------------


@_internal_page()
@require_GET
def my_reviews(request):
    """The signed-in manager's upcoming reviews, soonest due first."""
    page = _page(selectors.reviews_for_manager(manager=request.user), request, "page")
    context = {"nav": "reviews", "page_obj": page, "badges": STATE_BADGES}
    return render(request, "reviews/my_reviews.html", context)


def _cycles():
    return ReviewCycle.objects.annotate(
        partner_count=Count("reviews__partner", distinct=True),
        completed_count=Count("reviews__partner", distinct=True, filter=Q(reviews__state__in=CLOSED_STATES)),
    ).order_by("-opens_on", "-pk")


@_internal_page()
@require_http_methods(["GET", "HEAD", "POST"])
def cycle_list(request):
    """Every review cycle, newest first; administrators generate a new one here."""
    may_generate = request.membership.can(Capability.CONFIGURE_TENANT)
    form = CycleGenerateForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        if not may_generate:
            raise PermissionDenied("Only administrators generate review cycles.")
        if form.is_valid():
            try:
                cycle = cycles.cycle_generate(**form.cleaned_data, by=request.user)
            except ValidationError as error:
                form.add_service_errors(error)
            else:
                messages.success(request, f"“{cycle.name}” was generated.")
                return redirect("review_cycle", pk=cycle.pk)
    context = {
        "nav": "reviews",
        "page_obj": _page(_cycles(), request, "page"),
        "form": form if may_generate else None,
    }
    return render(request, "reviews/cycle_list.html", context, status=400 if form.errors else 200)


@_internal_page()
@require_GET
def cycle_detail(request, pk: int):
    """A cycle's detailed reviews and its monitored partners, each ranked by need and paginated."""
    cycle = _by_id(ReviewCycle.objects.all(), pk)
    may_configure = request.membership.can(Capability.CONFIGURE_TENANT)
    context = {
        "nav": "reviews",
        "cycle": cycle,
        "detailed": _page(selectors.cycle_detailed(cycle), request, "detailed"),
        "monitored": _page(selectors.cycle_monitored(cycle), request, "monitored"),
        "badges": STATE_BADGES,
        "may_configure": may_configure,
        "closing": selectors.cycle_closing(cycle) if may_configure and cycle.status == CycleStatus.OPEN else None,
    }
    return render(request, "reviews/cycle_detail.html", context)


@_internal_page(Capability.CONFIGURE_TENANT)
@require_POST
def cycle_close(request, pk: int):
    """Close the cycle; with reviews not held, only when the form says to close anyway."""
    cycle = _by_id(ReviewCycle.objects.all(), pk)
    form = CycleCloseForm(request.POST)
    form.is_valid()  # a checkbox: never invalid
    try:
        closed = cycles.cycle_close(
            cycle=cycle, by=request.user, confirm_unfinished=form.cleaned_data.get("confirm_unfinished", False)
        )
    except ValidationError as error:
        messages.error(request, _messages_of(error))
    else:
        messages.success(request, f"“{closed.name}” is closed.")
    return redirect("review_cycle", pk=cycle.pk)


@_internal_page(Capability.CONFIGURE_TENANT)
@require_POST
def cycle_reopen(request, pk: int):
    """Open a closed cycle again."""
    cycle = _by_id(ReviewCycle.objects.all(), pk)
    try:
        reopened = cycles.cycle_reopen(cycle=cycle, by=request.user)
    except ValidationError as error:
        messages.error(request, _messages_of(error))
    else:
        messages.success(request, f"“{reopened.name}” is open again: its reviews may start.")
    return redirect("review_cycle", pk=cycle.pk)


def _memo_chart(memo: selectors.CycleMemo):
    previous = memo.previous_cycle.name if memo.previous_cycle else "No previous cycle"
    return distribution_chart(
        [(row.label, row.previous or 0, row.count) for row in memo.ratings],
        title=f"Ratings of the partners in {memo.cycle.name}",
        before_label=previous,
        after_label=memo.cycle.name,
    )


@_internal_page()
@require_GET
def cycle_memo(request, pk: int):
    """What a cycle produced, with the rating distribution against the previous cycle."""
    cycle = _by_id(ReviewCycle.objects.all(), pk)
    memo = selectors.cycle_memo(cycle=cycle)
    context = {"nav": "reviews", "cycle": cycle, "memo": memo, "chart": _memo_chart(memo)}
    return render(request, "reviews/cycle_memo.html", context)


@_internal_page()
@require_GET
def cycle_memo_download(request, pk: int):
    """The memo as a CSV file."""
    cycle = _by_id(ReviewCycle.objects.all(), pk)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="cycle-{cycle.pk}-{cycle.period}-memo.csv"'
    response["Cache-Control"] = "private, no-store"
    csv.writer(response).writerows(selectors.cycle_memo_csv(cycle))
    return response


# --- The workspace -------------------------------------------------------------------------------------------


def _moves(ws: selectors.ReviewWorkspace, request) -> tuple[list[tuple[str, str]], bool]:
    """The moves the review may make now, for people who run reviews; and whether its closed cycle holds it back."""
    review = ws.review
    if not request.membership.can(Capability.EDIT_PARTNERS) or ws.revisions[-1]["pk"] != review.pk:
        return [], False
    states = REVIEW_TRANSITIONS[review.state]
    held_back = any(state in lifecycle.STARTING for state in states) and (
        ReviewCycle.objects.filter(pk=review.cycle_id, status=CycleStatus.CLOSED).exists()
    )
    if held_back:  # the service refuses them; the page does not offer them
        states = [state for state in states if state not in lifecycle.STARTING]
    return [(state, MOVE_LABELS[state]) for state in states], held_back


def _rating_rows(ws: selectors.ReviewWorkspace) -> list[dict]:
    return [{"prompt": prompt, "rating": ws.ratings.get(prompt.pk)} for prompt in ws.prompts]


def _pre_read_view(pre_read: dict) -> dict:
    """The frozen pre-read with each component and explained change named and set against its benchmark."""
    benchmarks = {row.get("metric_key"): row for row in pre_read.get("benchmarks") or []}

    def name(key) -> str:
        return (benchmarks.get(key) or {}).get("metric") or str(key or "")

    components = [
        {
            **component,
            "name": name(component.get("metric_key")),
            "benchmark": benchmarks.get(component.get("metric_key")),
        }
        for component in pre_read.get("components") or []
    ]
    explanation = pre_read.get("explanation") or {}
    terms = [
        {
            "label": "New scorecard rules" if term.get("term") == "version" else name(term.get("metric_key")),
            "delta": term.get("delta"),
        }
        for term in explanation.get("terms") or []
    ]
    return {
        **pre_read,
        "components": components,
        "terms": terms,
        "previous_period": explanation.get("previous_period"),
        "previous_total": explanation.get("previous_total"),
    }


def _workspace_context(request, pk: int, **forms) -> dict:
    ws = selectors.review_workspace(review_id=pk, viewer=request.user)
    review = ws.review
    latest = ws.revisions[-1]["pk"] == review.pk
    may_run = request.membership.can(Capability.EDIT_PARTNERS)
    moves, cycle_closed = _moves(ws, request)
    return {
        "nav": "reviews",
        "ws": ws,
        "review": review,
        "badge": STATE_BADGES.get(review.state, ""),
        "moves": moves,
        "cycle_closed": cycle_closed,
        "pre_read": _pre_read_view(review.pre_read or {}),
        "editable": ws.can_edit,
        "rating_rows": _rating_rows(ws),
        "scores": SCORES,
        "can_amend": may_run and latest and review.state in CLOSED_STATES,
        "commitment_form": forms.get("commitment_form") or CommitmentForm(),
        "note_form": forms.get("note_form") or NoteForm(),
        "decision_form": forms.get("decision_form") or DecisionForm(),
        "summary_form": forms.get("summary_form") or SummaryForm(initial={"summary": review.summary}),
        "amend_form": forms.get("amend_form") or AmendForm(),
    }


@_internal_page()
@require_GET
def review_detail(request, pk: int):
    """The review workspace: header, moves, the frozen pre-read and the pillars."""
    return render(request, "reviews/workspace.html", _workspace_context(request, pk))


def _review(pk: int) -> Review:
    return _by_id(Review.objects.select_related("partner"), pk)


@_internal_page()
@require_POST
def review_move(request, pk: int):
    """Move the review to the state asked; a refused move is explained and changes nothing."""
    review = _review(pk)
    try:
        moved = lifecycle.review_transition(review=review, to=request.POST.get("to", ""), by=request.user)
    except ValidationError as error:
        messages.error(request, _messages_of(error))
    else:
        messages.success(request, f"The review is now {moved.get_state_display().lower()}.")
    return redirect("review_detail", pk=review.pk)


@_internal_page()
@require_POST
def review_rate(request, pk: int, prompt_pk: int):
    """Rate one prompt: the row alone comes back to htmx, the whole page to a plain form."""
    review = _review(pk)
    prompt = _by_id(CollaborationPrompt.objects.all(), prompt_pk)
    form = RatingForm(request.POST)
    error = note = ""
    rating = None
    if form.is_valid():
        try:
            rating = workspace.rating_set(
                review=review,
                prompt=prompt,
                score=form.cleaned_data["score"],
                comment=form.cleaned_data["comment"],
                by=request.user,
            )
        except ValidationError as failure:
            error = _messages_of(failure)
        else:
            note = "Saved."
    else:
        error = " ".join(message for errors in form.errors.values() for message in errors)
    if request.htmx:
        if rating is None:
            rating = review.ratings.filter(prompt=prompt).first()
        row = {"prompt": prompt, "rating": rating, "error": error, "note": note, "submitted": form.data}
        context = {"row": row, "review": review, "scores": SCORES, "editable": True}
        # htmx swaps 200 answers only: the row comes back with the problem named on it.
        return render(request, "reviews/_rating_row.html", context)
    if error:
        messages.error(request, f"{prompt.label}: {error}")
    else:
        messages.success(request, f"{prompt.label} rated {rating.score}.")
    return redirect(reverse("review_detail", args=[review.pk]) + f"#prompt-{prompt.pk}")


def _pillar_write(form_class, context_name: str, service, success: str):
    """A workspace form posted to one service: back to the workspace, or the page again with the errors."""

    @_internal_page()
    @require_POST
    def view(request, pk: int):
        review = _review(pk)
        form = form_class(request.POST)
        if form.is_valid():
            try:
                service(review=review, by=request.user, **form.cleaned_data)
            except ValidationError as error:
                form.add_service_errors(error)
            else:
                messages.success(request, success)
                return redirect(reverse("review_detail", args=[review.pk]) + f"#{context_name}")
        context = _workspace_context(request, review.pk, **{context_name: form})
        return render(request, "reviews/workspace.html", context, status=400)

    view.__doc__ = f"Post the workspace's {context_name.removesuffix('_form')} form."
    return view


review_commitment = _pillar_write(CommitmentForm, "commitment_form", workspace.commitment_add, "Commitment added.")
review_note = _pillar_write(NoteForm, "note_form", workspace.note_add, "Note added.")
review_decision = _pillar_write(DecisionForm, "decision_form", workspace.decision_record, "Decision logged.")
review_summary = _pillar_write(SummaryForm, "summary_form", workspace.summary_set, "Summary saved.")


@_internal_page()
@require_POST
def review_amend(request, pk: int):
    """Amend a finalized or shared review: a new revision opens in its meeting."""
    review = _review(pk)
    form = AmendForm(request.POST)
    if form.is_valid():
        try:
            amendment = lifecycle.review_amend(review=review, reason=form.cleaned_data["reason"], by=request.user)
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, f"Revision {amendment.revision} is open; revision {review.revision} is kept.")
            return redirect("review_detail", pk=amendment.pk)
    context = _workspace_context(request, review.pk, amend_form=form)
    return render(request, "reviews/workspace.html", context, status=400)


# --- The partner's reviews ---------------------------------------------------------------------------------


@_partner_page
@require_GET
def portal_reviews(request):
    """The partner's reviews: those shared with them, and those awaiting their input."""
    context = {
        "nav": "portal_reviews",
        "reviews": selectors.partner_reviews(viewer=request.user),
        "voice_states": selectors.VOICE_STATES,
    }
    return render(request, "reviews/portal_reviews.html", context)


@_partner_page
@require_http_methods(["GET", "HEAD", "POST"])
def portal_review(request, pk: int):
    """A shared review as the partner reads it, or the form of what they bring to an upcoming one."""
    ws = selectors.review_workspace(review_id=pk, viewer=request.user)
    form = None
    if ws.can_submit_voice:
        voice = ws.voice
        initial = {name: getattr(voice, name) for name in workspace.VOICE_FIELDS} if voice else {}
        form = VoiceForm(request.POST if request.method == "POST" else None, initial=initial)
        if request.method == "POST" and form.is_valid():
            try:
                workspace.partner_voice_submit(review=_review(pk), by=request.user, **form.cleaned_data)
            except ValidationError as error:
                form.add_service_errors(error)
            else:
                messages.success(request, "Thank you: your input was sent to your partner manager.")
                return redirect("portal_review", pk=pk)
    elif request.method == "POST":
        messages.error(request, workspace.VOICE_CLOSED)
        return redirect("portal_review", pk=pk)
    context = {"nav": "portal_reviews", "ws": ws, "form": form, "rating_rows": _rating_rows(ws)}
    status = 400 if form is not None and form.errors else 200
    return render(request, "reviews/portal_review.html", context, status=status)
