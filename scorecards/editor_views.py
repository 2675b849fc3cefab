"""The scorecard editor: scorecards and their versions, a draft's settings and items, the approval
steps, and the what-if preview of a draft.

Administrators edit and take the governance steps; executives and partner managers read the list
and the versions. Every change goes through the governance services, which validate, lock and
audit; a refusal is shown next to what it concerns, never as an error page. Items are added,
changed and removed with htmx (the items panel is swapped in place) and with plain forms that
post and redirect. Objects are found through the scoped managers: another tenant's id is a 404.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, Prefetch
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRefresh, reswap, retarget

from partnerhub import charts
from partnerhub.partners.models import PartnerType
from partnerhub.tenancy.decorators import member_required
from partnerhub.tenancy.forms import add_service_errors
from partnerhub.tenancy.roles import Capability
from scorecards.editor_forms import (
    PLUG_IN,
    ActivateForm,
    ApproveForm,
    ItemForm,
    NewScorecardForm,
    ProposeForm,
    SendBackForm,
    VersionSettingsForm,
)
from scorecards.models import Rating, Scorecard, ScorecardItem, ScorecardVersion, VersionStatus
from scorecards.periods import period_containing
from scorecards.selectors import version_items
from scorecards.services.governance import (
    COPIED_VERSION_FIELDS,
    STATUS_WORDS,
    VersionProblem,
    item_add,
    item_remove,
    item_update,
    scorecard_create,
    version_activate,
    version_approve,
    version_create_draft,
    version_discard,
    version_propose,
    version_update,
    version_validate,
    version_withdraw,
)
from scorecards.whatif import preview_periods, preview_version

HUNDRED = Decimal("100")
viewer_required = member_required(Capability.VIEW_SCORECARDS)
admin_required = member_required(Capability.MANAGE_SCORECARDS)

# Problems of the version as a whole, placed next to the setting they concern. version_validate
# names no field for these, so they are recognised by how its sentences begin.
SETTING_OF_PROBLEM = (
    ("Choose the partner types", "partner_types"),
    ("These partner types no longer exist", "partner_types"),
    ("Choose whether the version scores", "period_kind"),
    ("The rating thresholds", "band_good"),
    ("The minimum completeness", "min_completeness"),
)
ADD_ITEM_ID = "add-%s"
# The governance steps the version page offers in each status.
SHOWN_STEPS = {
    VersionStatus.DRAFT: {"propose"},
    VersionStatus.PROPOSED: {"approve", "withdraw"},
    VersionStatus.APPROVED: {"activate"},
}
ACTION_FORMS = {
    "propose": ProposeForm,
    "withdraw": SendBackForm,
    "approve": ApproveForm,
    "activate": ActivateForm,
}


# --- What the version pages show --------------------------------------------------------------------


@dataclass
class PlacedProblems:
    """version_validate's problems, each next to what it concerns; ``every`` keeps them all, in order."""

    every: list[VersionProblem] = field(default_factory=list)
    by_item: dict[int, list[str]] = field(default_factory=dict)
    by_segment: dict[str, list[str]] = field(default_factory=dict)
    by_setting: dict[str, list[str]] = field(default_factory=dict)
    about_items: list[str] = field(default_factory=list)  # about the items as a whole
    other: list[str] = field(default_factory=list)


def place_problems(problems: list[VersionProblem]) -> PlacedProblems:
    placed = PlacedProblems(every=list(problems))
    for problem in problems:
        if problem.item_id is not None:
            placed.by_item.setdefault(problem.item_id, []).append(problem.message)
        elif problem.partner_type is not None:
            placed.by_segment.setdefault(problem.partner_type, []).append(problem.message)
        elif problem.message.startswith("Add at least one metric"):
            placed.about_items.append(problem.message)
        else:
            setting = next((name for start, name in SETTING_OF_PROBLEM if problem.message.startswith(start)), None)
            if setting is None:
                placed.other.append(problem.message)
            else:
                placed.by_setting.setdefault(setting, []).append(problem.message)
    return placed


@dataclass(frozen=True)
class SegmentWeight:
    """The weights of the items that apply to one partner type; they must add up to 100."""

    key: str
    name: str
    total: Decimal
    items: int

    @property
    def complete(self) -> bool:
        return self.total == HUNDRED

    @property
    def missing(self) -> Decimal:
        return HUNDRED - self.total

    @property
    def excess(self) -> Decimal:
        return self.total - HUNDRED


def segment_weights(version: ScorecardVersion, items: list[ScorecardItem], names: dict[str, str]) -> list:
    weights = []
    for key in version.partner_types or []:
        applying = [item for item in items if not item.applies_to or key in item.applies_to]
        total = sum((item.weight for item in applying), Decimal("0"))
        weights.append(SegmentWeight(key=key, name=names.get(key, key), total=total, items=len(applying)))
    return weights


def _version_or_404(pk: int) -> ScorecardVersion:
    queryset = ScorecardVersion.objects.select_related("scorecard", "created_by", "proposed_by", "approved_by")
    return get_object_or_404(queryset, pk=pk)


def _item_or_404(pk: int) -> ScorecardItem:
    queryset = ScorecardItem.objects.select_related("metric", "version", "version__scorecard")
    return get_object_or_404(queryset, pk=pk)


def _version_url(version: ScorecardVersion, anchor: str = "") -> str:
    return reverse("scorecard_editor_version", args=[version.pk]) + (f"#{anchor}" if anchor else "")


def _is_admin(request) -> bool:
    return request.membership.can(Capability.MANAGE_SCORECARDS)


def _default_activation_period(version: ScorecardVersion) -> str:
    today = timezone.localdate()
    return period_containing(today, kind=version.period_kind, start_month=version.tenant.fiscal_year_start_month).key


def _workbench_context(request, version: ScorecardVersion, *, add_form=None, note: str = "") -> dict:
    """The items panel: weights per partner type, the items with their problems, the add form."""
    items = version_items(version)
    names = dict(PartnerType.objects.values_list("key", "name"))
    shows_problems = version.status in (VersionStatus.DRAFT, VersionStatus.PROPOSED)
    problems = place_problems(version_validate(version) if shows_problems else [])
    editable = _is_admin(request) and version.is_editable
    if editable and add_form is None:
        add_form = ItemForm(version=version, auto_id=ADD_ITEM_ID)
    return {
        "version": version,
        "items": [(item, problems.by_item.get(item.pk, [])) for item in items],
        "type_names": names,
        "weights": segment_weights(version, items, names),
        "problems": problems,
        "shows_problems": shows_problems,
        "editable": editable,
        "add_form": add_form if editable else None,
        "note": note,
    }


def _render_version(request, version: ScorecardVersion, *, settings_form=None, add_form=None, action=None):
    """The version page; ``action`` is (name, bound form) of a governance step that was refused."""
    is_admin = _is_admin(request)
    context = {
        "nav": "scorecard_editor",
        **_workbench_context(request, version, add_form=add_form),
        "is_admin": is_admin,
        "is_proposer": version.proposed_by_id == request.user.pk,
        "siblings": list(
            ScorecardVersion.objects.filter(scorecard_id=version.scorecard_id)
            .order_by("-number")
            .values("pk", "number", "status", "effective_from")
        ),
        "status_words": STATUS_WORDS[version.status],
    }
    if context["editable"]:
        context["settings_form"] = settings_form or VersionSettingsForm(version=version)
    if is_admin:
        forms = {
            "propose": ProposeForm(initial={"rationale": version.rationale}, auto_id="propose-%s"),
            "withdraw": SendBackForm(auto_id="withdraw-%s"),
            "approve": ApproveForm(auto_id="approve-%s"),
            "activate": ActivateForm(
                initial={"effective_from": _default_activation_period(version)}, auto_id="activate-%s"
            ),
        }
        context["refusal"] = []
        if action is not None:
            name, form = action
            forms[name] = form
            shown = SHOWN_STEPS.get(version.status, set()) - ({"approve"} if context["is_proposer"] else set())
            # Errors of a form the page shows go next to its fields; a step the version's status
            # does not offer any more (it moved on meanwhile) is explained above them all.
            context["refusal"] = list(form.non_field_errors()) if name in shown else _all_errors(form)
        context["action_forms"] = forms
    return render(request, "scorecards/editor/version.html", context)


def _all_errors(form) -> list[str]:
    return [message for messages_ in form.errors.values() for message in messages_]


def _render_workbench(request, version: ScorecardVersion, **kwargs):
    return render(request, "scorecards/editor/_workbench.html", _workbench_context(request, version, **kwargs))


def _sentence(error: ValidationError | PermissionDenied) -> str:
    if isinstance(error, PermissionDenied):
        return str(error) or "Your role does not allow this."
    return " ".join(error.messages)


def _no_longer_a_draft(request, version: ScorecardVersion, message: str = ""):
    """The draft moved on (proposed, or discarded) while the page was open: say so on a fresh page."""
    messages.error(
        request,
        message
        or f"Version {version.number} is {STATUS_WORDS[version.status]} and can no longer be changed; "
        "create a new draft to change the rules.",
    )
    if request.htmx:
        return HttpResponseClientRefresh()
    return redirect(_version_url(version))


def _fresh(version: ScorecardVersion) -> ScorecardVersion | None:
    return (
        ScorecardVersion.objects.select_related("scorecard", "created_by", "proposed_by", "approved_by")
        .filter(pk=version.pk)
        .first()
    )


# --- The list --------------------------------------------------------------------------------------------


@viewer_required
@require_GET
def editor_index(request):
    """Every scorecard with its versions: status, period in force, who proposed and who approved.

    Two queries whatever the number of scorecards and versions.
    """
    versions = (
        ScorecardVersion.objects.select_related("created_by", "proposed_by", "approved_by")
        .annotate(item_count=Count("items"))
        .order_by("-number")
    )
    scorecards = Scorecard.objects.prefetch_related(Prefetch("versions", queryset=versions)).order_by("name")
    context = {"nav": "scorecard_editor", "scorecards": scorecards, "is_admin": _is_admin(request)}
    return render(request, "scorecards/editor/index.html", context)


@admin_required
@require_http_methods(["GET", "POST"])
def scorecard_new(request):
    """A new scorecard and its first draft, opened in the editor."""
    form = NewScorecardForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            with transaction.atomic():
                scorecard = scorecard_create(name=data["name"], description=data["description"], by=request.user)
                draft = version_create_draft(
                    scorecard=scorecard,
                    by=request.user,
                    copy_latest=False,
                    partner_types=list(data["partner_types"]),
                    period_kind=data["period_kind"],
                )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, f"{scorecard.name} is created; add the metrics of its first draft.")
            return redirect(_version_url(draft))
    return render(request, "scorecards/editor/new_scorecard.html", {"nav": "scorecard_editor", "form": form})


@transaction.atomic
def _draft_copying(source: ScorecardVersion, *, by) -> ScorecardVersion:
    """A new draft of the source's scorecard with the source's settings and items.

    The latest version is copied by ``version_create_draft`` itself; an earlier one is rebuilt
    from its settings and items through the same services (so every item is checked and audited
    as it is added). All or nothing.
    """
    versions = ScorecardVersion.objects.filter(scorecard_id=source.scorecard_id)
    latest = versions.order_by("-number").values_list("pk", "number").first()
    if latest is not None and latest[0] == source.pk:
        draft = version_create_draft(scorecard=source.scorecard, by=by)
        if draft.number != latest[1] + 1:
            # Another version was created in between and was copied instead of the one asked for.
            raise ValidationError("Another version of this scorecard was created at the same moment; try again.")
        return draft
    draft = version_create_draft(
        scorecard=source.scorecard,
        by=by,
        copy_latest=False,
        **{name: getattr(source, name) for name in COPIED_VERSION_FIELDS},
    )
    for item in version_items(source):
        item_add(
            version=draft,
            by=by,
            metric=item.metric,
            weight=item.weight,
            applies_to=list(item.applies_to or []),
            normalization=item.normalization,
            segment_targets=dict(item.segment_targets or {}),
            rubric=item.rubric,
            floor=item.floor,
            target=item.target,
            cap=item.cap,
            bands=list(item.bands or []),
            position=item.position,
        )
    return draft


@admin_required
@require_POST
def draft_new(request, pk: int):
    """“New draft from this version”: a draft with the version's settings and items."""
    source = _version_or_404(pk)
    try:
        draft = _draft_copying(source, by=request.user)
    except ValidationError as error:
        messages.error(request, f"No draft was created: {_sentence(error)}")
        return redirect("scorecard_editor")
    messages.success(request, f"Version {draft.number} is a new draft, a copy of version {source.number}.")
    return redirect(_version_url(draft))


# --- A version and its draft settings ----------------------------------------------------------------------


@viewer_required
@require_GET
def version_detail(request, pk: int):
    """A version's settings, items, weights and problems; editable while it is a draft."""
    return _render_version(request, _version_or_404(pk))


@admin_required
@require_POST
def version_settings(request, pk: int):
    version = _version_or_404(pk)
    if not version.is_editable:
        return _no_longer_a_draft(request, version)
    form = VersionSettingsForm(request.POST, version=version)
    if form.is_valid():
        try:
            version_update(version=version, by=request.user, **form.service_fields())
        except ValidationError as error:
            answer = _refused_change(request, version, error)
            if answer is not None:
                return answer
            version = _fresh(version)  # the service may have set fields it then refused
            add_service_errors(form, error)
        else:
            messages.success(request, "The settings are saved.")
            return redirect(_version_url(version, "settings"))
    return _render_version(request, version, settings_form=form)


# --- Items of a draft ---------------------------------------------------------------------------------------


def _item_saved(request, version: ScorecardVersion, note: str):
    if request.htmx:
        return _render_workbench(request, _fresh(version), note=note)
    messages.success(request, note)
    return redirect(_version_url(version, "items"))


def _refused_change(request, version: ScorecardVersion, error: ValidationError):
    """When the draft moved on meanwhile, a fresh page that says so; otherwise None (show the errors)."""
    fresh = _fresh(version)
    if fresh is None:
        messages.error(request, "This draft was discarded meanwhile; nothing was saved.")
        if request.htmx:
            return HttpResponseClientRefresh()
        return redirect("scorecard_editor")
    if not fresh.is_editable:
        return _no_longer_a_draft(request, fresh, _sentence(error))
    return None


@admin_required
@require_POST
def item_new(request, pk: int):
    """Add a metric to a draft: the items panel comes back with htmx, the page without."""
    version = _version_or_404(pk)
    if not version.is_editable:
        return _no_longer_a_draft(request, version)
    form = ItemForm(request.POST, version=version, auto_id=ADD_ITEM_ID)
    if form.is_valid():
        try:
            item = item_add(version=version, by=request.user, **form.service_fields())
        except ValidationError as error:
            answer = _refused_change(request, version, error)
            if answer is not None:
                return answer
            add_service_errors(form, error)
        else:
            return _item_saved(request, version, f"{item.metric.name} is added.")
    if request.htmx:
        return _render_workbench(request, version, add_form=form)
    return _render_version(request, version, add_form=form)


@admin_required
@require_http_methods(["GET", "POST"])
def item_edit(request, pk: int):
    """Change an item: a row turns into a form with htmx; a page of its own without."""
    item = _item_or_404(pk)
    version = item.version
    if not version.is_editable:
        return _no_longer_a_draft(request, version)
    form = ItemForm(request.POST or None, version=version, item=item, auto_id=f"item-{item.pk}-%s")
    if request.method == "POST" and form.is_valid():
        try:
            item_update(item=item, by=request.user, **form.service_fields())
        except ValidationError as error:
            answer = _refused_change(request, version, error)
            if answer is not None:
                return answer
            add_service_errors(form, error)
        else:
            return _item_saved(request, version, f"{item.metric.name} is saved.")
    context = {"nav": "scorecard_editor", "version": version, "item": item, "form": form}
    if request.htmx:
        response = render(request, "scorecards/editor/_item_edit_row.html", context)
        if request.method == "POST":
            # The form posts with the items panel as its target; its errors go back into its row.
            response = reswap(retarget(response, f"#item-{item.pk}"), "outerHTML")
        return response
    return render(request, "scorecards/editor/item_edit.html", context)


@admin_required
@require_http_methods(["GET", "POST"])
def item_delete(request, pk: int):
    """Remove an item: htmx asks in the browser; without it, a page asks."""
    item = _item_or_404(pk)
    version = item.version
    if not version.is_editable:
        return _no_longer_a_draft(request, version)
    if request.method == "GET":
        return render(request, "scorecards/editor/item_remove.html", {"nav": "scorecard_editor", "item": item})
    name = item.metric.name
    try:
        item_remove(item=item, by=request.user)
    except ValidationError as error:
        answer = _refused_change(request, version, error)
        if answer is not None:
            return answer
        messages.error(request, _sentence(error))
        return redirect(_version_url(version, "items"))
    return _item_saved(request, version, f"{name} is removed.")


@admin_required
@require_POST
def pending_weights(request, pk: int):
    """The weights per partner type as they would be with the item being typed (htmx, reads only).

    The item form posts here as its weight or scope changes; ``item`` names the item being
    edited, whose stored weight the typed one replaces. Nothing is saved or checked beyond what
    the sum needs: a weight that is not one the form would take counts as 0.
    """
    version = _version_or_404(pk)
    items = version_items(version)
    editing = request.POST.get("item", "")
    if editing.isdigit():
        items = [item for item in items if item.pk != int(editing)]
    try:
        weight = Decimal(request.POST.get("weight", "").strip())
        # Only a weight the form would take counts; anything else (NaN, 1e999, -3) as 0.
        weight = weight if weight.is_finite() and 0 <= weight <= HUNDRED else Decimal("0")
    except InvalidOperation:
        weight = Decimal("0")
    applies_to = request.POST.getlist("applies_to") if request.POST.get("scope") == PLUG_IN else []
    items.append(ScorecardItem(version=version, weight=weight, applies_to=applies_to))
    names = dict(PartnerType.objects.values_list("key", "name"))
    context = {"weights": segment_weights(version, items, names), "typed": weight}
    return render(request, "scorecards/editor/_pending_weights.html", context)


# --- The governance steps -----------------------------------------------------------------------------------


def _step(request, pk: int, action: str, run, success: str):
    """Run one governance step with the posted form; a refusal re-renders the page with its reasons."""
    version = _version_or_404(pk)
    form = ACTION_FORMS[action](request.POST, auto_id=f"{action}-%s")
    if form.is_valid():
        try:
            run(version, form.cleaned_data)
        except (ValidationError, PermissionDenied) as error:
            if isinstance(error, PermissionDenied):
                form.add_error(None, _sentence(error))
            else:
                add_service_errors(form, error)
            version = _fresh(version)
            if version is None:
                messages.error(request, _sentence(error))
                return redirect("scorecard_editor")
        else:
            messages.success(request, success.format(number=version.number, version=version))
            return redirect(_version_url(version))
    return _render_version(request, version, action=(action, form))


@admin_required
@require_POST
def version_propose_view(request, pk: int):
    return _step(
        request,
        pk,
        "propose",
        lambda version, data: version_propose(version=version, by=request.user, rationale=data["rationale"]),
        "Version {number} is proposed: another administrator can now approve it.",
    )


@admin_required
@require_POST
def version_withdraw_view(request, pk: int):
    return _step(
        request,
        pk,
        "withdraw",
        lambda version, data: version_withdraw(version=version, by=request.user, note=data["note"]),
        "Version {number} is a draft again.",
    )


@admin_required
@require_POST
def version_approve_view(request, pk: int):
    return _step(
        request,
        pk,
        "approve",
        lambda version, data: version_approve(version=version, by=request.user, note=data["note"]),
        "Version {number} is approved; activate it from a period to put it in force.",
    )


@admin_required
@require_POST
def version_activate_view(request, pk: int):
    return _step(
        request,
        pk,
        "activate",
        lambda version, data: version_activate(version=version, by=request.user, effective_from=data["effective_from"]),
        "Version {number} is in force from {version.effective_from}; periods already under way are being "
        "scored again under it.",
    )


@admin_required
@require_http_methods(["GET", "POST"])
def version_discard_view(request, pk: int):
    """Delete a draft nobody wants, after confirmation."""
    version = _version_or_404(pk)
    if not version.is_editable:
        return _no_longer_a_draft(request, version)
    if request.method == "GET":
        return render(
            request, "scorecards/editor/version_discard.html", {"nav": "scorecard_editor", "version": version}
        )
    try:
        version_discard(version=version, by=request.user)
    except ValidationError as error:
        messages.error(request, _sentence(error))
        return redirect(_version_url(version))
    messages.success(request, f"The draft version {version.number} of {version.scorecard.name} is discarded.")
    return redirect("scorecard_editor")


# --- What-if preview ------------------------------------------------------------------------------------------


@admin_required
@require_GET
def version_preview(request, pk: int):
    """A closed period scored under the version's rules next to its stored scores; nothing is written."""
    version = _version_or_404(pk)
    requested = (request.GET.get("period") or "").strip()[:40] or None
    preview = preview_version(version, period=requested)
    chart = None
    if preview.is_ready:
        chart = charts.distribution_chart(
            [(row.label, row.before, row.after) for row in preview.distribution],
            title=f"Ratings in {preview.period}: now and under version {version.number}",
            before_label="Now" if not preview.in_force else f"Now (version {', '.join(map(str, preview.in_force))})",
            after_label=f"Under version {version.number}",
        )
    context = {
        "nav": "scorecard_editor",
        "version": version,
        "preview": preview,
        "periods": preview_periods(version),
        "chart": chart,
        "type_names": dict(PartnerType.objects.values_list("key", "name")),
        "rating_labels": dict(Rating.choices),
    }
    return render(request, "scorecards/editor/preview.html", context)
