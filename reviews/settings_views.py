"""Review settings: the cadence rules that decide each partner's reviews, and the collaboration prompts.

Every internal member reads the page; only administrators (``require_configurer``) change it, and the
services check that again. To partner users the page does not exist, as for the other internal review
pages. Another tenant's rule or prompt is "not found" like a missing one: rows are looked up through
the scoped managers before the role is checked, so an id never tells whether it exists elsewhere.
Each change works as a plain form post and redirect; with htmx, the section changed comes back alone.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import reswap, retarget

from partnerhub.partners.models import LifecycleStage, Partner, PartnerStatus, PartnerType
from partnerhub.tenancy.decorators import member_required
from partnerhub.tenancy.roles import Capability
from reviews.models import CadenceRule, CollaborationPrompt
from reviews.services import cadences, prompts
from reviews.settings_forms import CadenceRuleForm, PromptForm

MAX_ID = 2**63 - 1
RULES_SECTION = "#cadence-rules"
PROMPTS_SECTION = "#collaboration-prompts"


def _internal_page(view):
    """The program's own people read; to partner users the page does not exist."""

    @member_required()
    @functools.wraps(view)
    def guarded(request, *args, **kwargs):
        if not request.membership.is_internal:
            raise Http404("No such page.")
        if not request.membership.can(Capability.VIEW_PARTNERS):
            raise PermissionDenied("Your role in this workspace does not include this page.")
        return view(request, *args, **kwargs)

    return guarded


def _may_configure(request) -> bool:
    return request.membership.can(Capability.CONFIGURE_TENANT)


def _require_configure(request) -> None:
    if not _may_configure(request):
        raise PermissionDenied("Only administrators set up review cadences and prompts.")


def _by_id(queryset, pk: int):
    """The row ``pk`` of a scoped queryset, or 404 (also for ids no database column can hold)."""
    found = queryset.filter(pk=pk).first() if 0 < pk <= MAX_ID else None
    if found is None:
        raise Http404("Not found.")
    return found


def _words(error: ValidationError) -> str:
    return " ".join(error.messages)


# --- What the page shows ------------------------------------------------------------------------------------


@dataclass
class RuleRow:
    rule: CadenceRule
    segment: str
    decides: int = 0


@dataclass
class Uncovered:
    """Active partners of one segment that no active rule covers: they get no reviews."""

    segment: str
    count: int
    url: str


@dataclass
class RulesOverview:
    rows: list[RuleRow] = field(default_factory=list)
    uncovered: list[Uncovered] = field(default_factory=list)
    active_partners: int = 0

    @property
    def uncovered_count(self) -> int:
        return sum(row.count for row in self.uncovered)


def _application_order(rule: CadenceRule) -> tuple:
    # Active rules in the order matching_rule prefers them; inactive ones after, by position.
    return (not rule.active, -cadences.specificity(rule), rule.position, rule.pk)


def _type_name(types: dict[int, PartnerType], type_id: int) -> str:
    partner_type = types.get(type_id)
    return partner_type.name if partner_type else "no type"


def rules_overview() -> RulesOverview:
    """Every rule in the order it applies, with the active partners it decides today (three queries).

    The active partners are read as counts per (type, stage), so the work grows with segments, not partners.
    """
    rules = sorted(CadenceRule.objects.select_related("partner_type"), key=_application_order)
    types = {partner_type.pk: partner_type for partner_type in PartnerType.objects.all()}
    segments = (
        Partner.objects.filter(status=PartnerStatus.ACTIVE)
        .order_by()
        .values_list("partner_type_id", "lifecycle_stage")
        .annotate(count=Count("pk"))
    )
    overview = RulesOverview(rows=[RuleRow(rule=rule, segment=cadences.segment_text(rule)) for rule in rules])
    by_rule = {row.rule.pk: row for row in overview.rows}
    for type_id, stage, count in sorted(segments, key=lambda segment: (_type_name(types, segment[0]), segment[1])):
        overview.active_partners += count
        rule = cadences.matching_rule(rules, partner_type_id=type_id, lifecycle_stage=stage)
        if rule is not None:
            by_rule[rule.pk].decides += count
            continue
        partner_type = types.get(type_id)
        stage_label = LifecycleStage(stage).label.lower() if stage in LifecycleStage.values else stage
        query = {"status": PartnerStatus.ACTIVE, "stage": stage, **({"type": partner_type.key} if partner_type else {})}
        overview.uncovered.append(
            Uncovered(
                segment=f"{_type_name(types, type_id)}, {stage_label}",
                count=count,
                url=f"{reverse('partner_list')}?{urlencode(query)}",
            )
        )
    return overview


def _rules_context(request, *, note: str = "", error: str = "") -> dict:
    return {
        "overview": rules_overview(),
        "may_configure": _may_configure(request),
        "rules_note": note,
        "rules_error": error,
    }


def _prompts_context(request, *, note: str = "", error: str = "") -> dict:
    return {
        "prompts": list(CollaborationPrompt.objects.order_by("position", "pk")),
        "may_configure": _may_configure(request),
        "prompts_note": note,
        "prompts_error": error,
    }


def _page(request, *, rule_form=None, prompt_form=None, status: int = 200):
    may_configure = _may_configure(request)
    context = {
        "nav": "reviews",
        **_rules_context(request),
        **_prompts_context(request),
        "rule_form": rule_form or (CadenceRuleForm(prefix="rule") if may_configure else None),
        "prompt_form": prompt_form or (PromptForm(prefix="prompt") if may_configure else None),
    }
    return render(request, "reviews/settings/page.html", context, status=status)


def _section(request, template: str, target: str, context: dict):
    """A section of the page for htmx, swapped wherever the request came from."""
    response = render(request, template, context)
    return reswap(retarget(response, target), "outerHTML")


def _rules_section(request, **kwargs):
    return _section(request, "reviews/settings/_rules.html", RULES_SECTION, _rules_context(request, **kwargs))


def _prompts_section(request, **kwargs):
    return _section(request, "reviews/settings/_prompts.html", PROMPTS_SECTION, _prompts_context(request, **kwargs))


def _done(request, section, message: str, anchor: str, *, error: bool = False):
    """After a change (or its refusal): the section again for htmx, else the page with a message."""
    if request.htmx:
        return section(request, **({"error": message} if error else {"note": message}))
    (messages.error if error else messages.success)(request, message)
    return redirect(reverse("review_settings") + anchor)


# --- The page --------------------------------------------------------------------------------------------------


@_internal_page
@require_GET
def review_settings(request):
    """Cadence rules in the order they apply, the partners each decides, and the collaboration prompts."""
    if request.htmx and request.GET.get("part") == "rules":
        return _rules_section(request)
    if request.htmx and request.GET.get("part") == "prompts":
        return _prompts_section(request)
    return _page(request)


# --- Cadence rules -------------------------------------------------------------------------------------------


@_internal_page
@require_POST
def cadence_rule_add(request):
    """Add a rule; a refusal shows the page again with the reasons beside the fields."""
    _require_configure(request)
    form = CadenceRuleForm(request.POST, prefix="rule")
    if form.is_valid():
        try:
            rule = cadences.cadence_rule_create(by=request.user, **form.cleaned_data)
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, f"Added: {cadences.segment_text(rule)} get a {rule.get_kind_display().lower()}.")
            return redirect(reverse("review_settings") + RULES_SECTION)
    return _page(request, rule_form=form, status=400)


@_internal_page
@require_http_methods(["GET", "HEAD", "POST"])
def cadence_rule_edit(request, pk: int):
    """Change a rule's segment, kind or position: an inline row with htmx, a page of its own without."""
    rule = _by_id(CadenceRule.objects.select_related("partner_type"), pk)
    _require_configure(request)
    if request.method == "POST":
        form = CadenceRuleForm(request.POST)
        if form.is_valid():
            try:
                rule = cadences.cadence_rule_update(rule=rule, by=request.user, **form.cleaned_data)
            except ValidationError as error:
                form.add_service_errors(error)
            else:
                return _done(request, _rules_section, f"Saved: {cadences.segment_text(rule)}.", RULES_SECTION)
    else:
        form = CadenceRuleForm(initial=CadenceRuleForm.initial_of(rule))
    context = {"rule": rule, "form": form, "nav": "reviews"}
    if request.htmx:
        # htmx swaps 200 answers only: the row comes back with the problems named on it.
        return render(request, "reviews/settings/_rule_row_edit.html", context)
    return render(request, "reviews/settings/rule_edit.html", context, status=400 if form.errors else 200)


@_internal_page
@require_POST
def cadence_rule_activate(request, pk: int):
    """Make a rule apply again (``active=1``) or stop applying (``active=0``); it keeps its place."""
    rule = _by_id(CadenceRule.objects.select_related("partner_type"), pk)
    _require_configure(request)
    active = request.POST.get("active") == "1"
    try:
        rule = cadences.cadence_rule_update(rule=rule, by=request.user, active=active)
    except ValidationError as error:
        return _done(request, _rules_section, _words(error), RULES_SECTION, error=True)
    state = "applies again" if active else "no longer applies"
    return _done(request, _rules_section, f"The rule for {cadences.segment_text(rule)} {state}.", RULES_SECTION)


@_internal_page
@require_http_methods(["GET", "HEAD", "POST"])
def cadence_rule_delete(request, pk: int):
    """Remove a rule after confirmation (htmx asks in the browser; without it, a page asks)."""
    rule = _by_id(CadenceRule.objects.select_related("partner_type"), pk)
    _require_configure(request)
    error = ""
    if request.method == "POST":
        segment = cadences.segment_text(rule)
        try:
            cadences.cadence_rule_delete(rule=rule, by=request.user)
        except ValidationError as failure:
            error = _words(failure)
            if request.htmx:
                return _rules_section(request, error=error)
        else:
            return _done(request, _rules_section, f"The rule for {segment} was removed.", RULES_SECTION)
    context = {"rule": rule, "segment": cadences.segment_text(rule), "error": error, "nav": "reviews"}
    return render(request, "reviews/settings/rule_delete.html", context, status=400 if error else 200)


# --- Collaboration prompts ------------------------------------------------------------------------------------


@_internal_page
@require_POST
def prompt_add(request):
    """Add a prompt of the workspace's own; it is asked from the next rating on."""
    _require_configure(request)
    form = PromptForm(request.POST, prefix="prompt")
    if form.is_valid():
        try:
            prompt = prompts.prompt_create(by=request.user, **form.cleaned_data)
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, f"Added “{prompt.label}”: it is asked in new ratings from now on.")
            return redirect(reverse("review_settings") + PROMPTS_SECTION)
    return _page(request, prompt_form=form, status=400)


@_internal_page
@require_http_methods(["GET", "HEAD", "POST"])
def prompt_edit(request, pk: int):
    """Reword or reorder a prompt: an inline row with htmx, a page of its own without."""
    prompt = _by_id(CollaborationPrompt.objects.all(), pk)
    _require_configure(request)
    if request.method == "POST":
        form = PromptForm(request.POST)
        if form.is_valid():
            try:
                prompt = prompts.prompt_update(prompt=prompt, by=request.user, **form.cleaned_data)
            except ValidationError as error:
                form.add_service_errors(error)
            else:
                return _done(request, _prompts_section, f"Saved “{prompt.label}”.", PROMPTS_SECTION)
    else:
        form = PromptForm(initial={"label": prompt.label, "help_text": prompt.help_text, "position": prompt.position})
    context = {"prompt": prompt, "form": form, "nav": "reviews"}
    if request.htmx:
        return render(request, "reviews/settings/_prompt_row_edit.html", context)
    return render(request, "reviews/settings/prompt_edit.html", context, status=400 if form.errors else 200)


@_internal_page
@require_POST
def prompt_activate(request, pk: int):
    """Ask a prompt again (``active=1``) or stop asking it (``active=0``); its past ratings stay."""
    prompt = _by_id(CollaborationPrompt.objects.all(), pk)
    _require_configure(request)
    active = request.POST.get("active") == "1"
    try:
        prompt = prompts.prompt_update(prompt=prompt, by=request.user, active=active)
    except ValidationError as error:
        return _done(request, _prompts_section, _words(error), PROMPTS_SECTION, error=True)
    if active:
        message = f"“{prompt.label}” is asked again in new reviews."
    else:
        message = f"“{prompt.label}” is no longer asked in new reviews; it keeps its past ratings."
    return _done(request, _prompts_section, message, PROMPTS_SECTION)
