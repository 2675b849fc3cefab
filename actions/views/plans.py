"""Remediation pages: the plans (suggested, active, closed) by partner, and one plan's follow-through.

Every write to a plan is the program's; the services say why a step is refused (a plan not yet
active takes no checkpoint, a suggestion is cancelled rather than completed, ...).
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from actions import selectors
from actions.forms import CheckpointForm, MilestoneForm, PlanActivateForm, PlanCloseForm
from actions.models import PlanStatus
from actions.services import plans as plan_services
from actions.views.common import MILESTONE_BADGES, PAGE_SIZE, PLAN_BADGES, decorate, error_text, flash, program_page
from partnerhub.partners.models import Partner

PLAN_TABS = (
    ("open", "Open"),
    (PlanStatus.SUGGESTED, "Suggested"),
    (PlanStatus.ACTIVE, "Active"),
    ("closed", "Closed"),
    ("all", "All"),
)


def _decorate_plan(plan):
    plan.badge = PLAN_BADGES.get(plan.status, "")
    milestones = list(plan.milestones.all())
    for milestone in milestones:
        milestone.badge = MILESTONE_BADGES.get(milestone.status, "")
    plan.milestone_rows = milestones
    plan.checkpoint_rows = list(plan.checkpoints.all())
    plan.met = sum(m.status == "met" for m in milestones)
    plan.missed = sum(m.status == "missed" for m in milestones)
    return plan


@program_page
@require_GET
def plan_list(request):
    """Plans by status (open by default) and partner, newest first; a fixed number of queries."""
    tab = request.GET.get("status") or "open"
    if tab not in dict(PLAN_TABS):
        tab = "open"
    partner_raw = request.GET.get("partner") or ""
    partner = int(partner_raw) if partner_raw.isdigit() else None
    queryset = selectors.plans_with_milestones(
        by=request.user, status=None if tab in ("all", "closed") else tab, partner=partner
    )
    if tab == "closed":
        queryset = queryset.filter(status__in=(PlanStatus.COMPLETED, PlanStatus.CANCELLED))
    page = Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "nav": "remediation",
        "page_obj": page,
        "plans": [_decorate_plan(plan) for plan in page.object_list],
        "tabs": PLAN_TABS,
        "tab": tab,
        "partner": partner,
        "partners": list(Partner.objects.order_by("name").values_list("pk", "name")),
    }
    return render(request, "actions/plans/list.html", context)


def _plan_context(request, plan, forms: dict | None = None) -> dict:
    forms = forms or {}
    plan = _decorate_plan(plan)
    today = timezone.localdate()
    actions = decorate(plan.action_items.select_related("owner").order_by("due_on", "pk"), today=today, internal=True)
    context = {"nav": "remediation", "plan": plan, "actions": actions, "errors": forms.get("errors", [])}
    if plan.status == PlanStatus.SUGGESTED:
        context["activate_form"] = forms.get("activate") or PlanActivateForm(partner=plan.partner)
    if plan.is_open:
        context["milestone_form"] = forms.get("milestone") or MilestoneForm()
        context["close_form"] = forms.get("close") or PlanCloseForm(
            initial={"status": PlanStatus.COMPLETED if plan.status == PlanStatus.ACTIVE else PlanStatus.CANCELLED}
        )
    if plan.status == PlanStatus.ACTIVE:
        context["checkpoint_form"] = forms.get("checkpoint") or CheckpointForm(initial={"held_on": today})
    return context


@program_page
@require_GET
def plan_detail(request, pk: int):
    """A plan: why it was opened, its root cause and leader, milestones judged against observed values, checkpoints."""
    plan = selectors.plan_get(pk=pk, by=request.user)
    return render(request, "actions/plans/detail.html", _plan_context(request, plan))


def _plan_post(request, pk: int, *, kind: str):
    plan = selectors.plan_get(pk=pk, by=request.user)
    if kind == "activate":
        form = PlanActivateForm(request.POST, partner=plan.partner)
    else:
        form = {"milestone": MilestoneForm, "checkpoint": CheckpointForm, "close": PlanCloseForm}[kind](request.POST)
    ok = ""
    if form.is_valid():
        data = form.cleaned_data
        try:
            if kind == "activate":
                plan_services.plan_activate(
                    plan=plan,
                    leader=data["leader"],
                    root_cause=data["root_cause"],
                    root_cause_analysis=data["root_cause_analysis"],
                    by=request.user,
                )
                ok = "The plan is active."
            elif kind == "milestone":
                milestone = plan_services.milestone_add(plan=plan, by=request.user, **data)
                ok = f"Milestone “{milestone.title}” added."
            elif kind == "checkpoint":
                plan_services.checkpoint_add(plan=plan, by=request.user, **data)
                ok = "Checkpoint recorded."
            else:
                closed = plan_services.plan_close(plan=plan, status=data["status"], note=data["note"], by=request.user)
                ok = f"The plan is {closed.get_status_display().lower()}."
        except ValidationError as problem:
            form.add_service_errors(problem)
        except PermissionDenied as problem:
            form.add_error(None, error_text(problem))
    fresh = selectors.plan_get(pk=pk, by=request.user)
    if form.errors:
        context = _plan_context(request, fresh, {kind: form, "errors": form.all_messages()})
        if request.htmx:
            return render(request, "actions/plans/_body.html", context)
        return render(request, "actions/plans/detail.html", context, status=400)
    if request.htmx:
        context = _plan_context(request, fresh)
        context["note"] = ok
        return render(request, "actions/plans/_body.html", context)
    flash(request, ok=ok)
    return redirect("plan_detail", pk=pk)


@program_page
@require_POST
def plan_activate(request, pk: int):
    return _plan_post(request, pk, kind="activate")


@program_page
@require_POST
def plan_milestone_add(request, pk: int):
    return _plan_post(request, pk, kind="milestone")


@program_page
@require_POST
def plan_checkpoint_add(request, pk: int):
    return _plan_post(request, pk, kind="checkpoint")


@program_page
@require_POST
def plan_close(request, pk: int):
    return _plan_post(request, pk, kind="close")
