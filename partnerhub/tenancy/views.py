"""Workspace pages: switching tenants, people and invitations, API keys, the audit log, settings.

Objects are always looked up through the scoped managers (or selectors built on them), so an id
of another tenant, or of another partner for a partner admin, is a 404 like a missing one.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from partnerhub.tenancy import services
from partnerhub.tenancy.context import bind
from partnerhub.tenancy.decorators import member_required
from partnerhub.tenancy.forms import (
    AcceptInvitationForm,
    ApiKeyForm,
    AuditFilterForm,
    InvitationForm,
    MembershipRoleForm,
    WorkspaceSettingsForm,
    add_service_errors,
)
from partnerhub.tenancy.middleware import SESSION_TENANT_KEY
from partnerhub.tenancy.models import ApiKey, Membership, User
from partnerhub.tenancy.roles import PARTNER_ROLES, Capability, Role
from partnerhub.tenancy.selectors import (
    AuditCursor,
    api_keys_for_listing,
    audit_change_rows,
    audit_events,
    audit_page,
    invitations_visible_to,
    may_manage_people,
    members_visible_to,
    memberships_of,
    open_invitations_visible_to,
)

MEMBERS_PER_PAGE = 50
API_KEYS_PER_PAGE = 50
AUDIT_EVENTS_PER_PAGE = 50
# Open invitations are few in practice; the list is capped so the page stays bounded regardless.
INVITATIONS_SHOWN = 200


# --- Workspace switcher ---------------------------------------------------------------------------


@login_required
@require_POST
def workspace_switch(request):
    """Make another of the person's tenants the active one."""
    try:
        tenant_id = int(request.POST.get("tenant", ""))
    except ValueError:
        raise Http404 from None
    if not memberships_of(request.user).filter(tenant_id=tenant_id).exists():
        raise Http404
    request.session[SESSION_TENANT_KEY] = tenant_id
    return redirect("home")


# --- People ---------------------------------------------------------------------------------------


def _require_people_access(request) -> Membership:
    if not may_manage_people(request.membership):
        raise PermissionDenied("Only administrators and partner admins manage people in this workspace.")
    return request.membership


def _people_page(request, *, invite_form: InvitationForm, status: int = 200):
    actor = request.membership
    search = request.GET.get("q", "")[:200]
    role = request.GET.get("role", "")
    if role not in Role.values:
        role = ""
    members = members_visible_to(actor, search=search, role=role)
    page = Paginator(members, MEMBERS_PER_PAGE).get_page(request.GET.get("page"))
    invitations = list(open_invitations_visible_to(actor)[: INVITATIONS_SHOWN + 1])
    context = {
        "nav": "members",
        "actor": actor,
        "is_admin": actor.can(Capability.MANAGE_MEMBERS),
        "can_configure": actor.can(Capability.CONFIGURE_TENANT),
        "scope_partner": None if actor.can(Capability.MANAGE_MEMBERS) else actor.partner,
        "page_obj": page,
        "members": page.object_list,
        "search": search,
        "role": role,
        "role_choices": Role.choices,
        "partner_role_values": [role.value for role in PARTNER_ROLES],
        "invitations": invitations[:INVITATIONS_SHOWN],
        "more_invitations": len(invitations) > INVITATIONS_SHOWN,
        "invite_form": invite_form,
        "invitation_ttl_days": settings.INVITATION_TTL_DAYS,
    }
    return render(request, "tenancy/people.html", context, status=status)


@member_required()
def member_list(request):
    """Members and open invitations of the workspace (or of the partner admin's own partner)."""
    actor = _require_people_access(request)
    return _people_page(request, invite_form=InvitationForm(actor=actor))


@member_required()
@require_POST
def invitation_create(request):
    actor = _require_people_access(request)
    form = InvitationForm(request.POST, actor=actor)
    if form.is_valid():
        try:
            invitation, _token = services.invitation_create(
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                partner=form.cleaned_data.get("partner"),
                by_membership=actor,
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(
                request,
                f"Invitation sent to {invitation.email}. The link works for {settings.INVITATION_TTL_DAYS} days.",
            )
            return redirect("member_list")
    return _people_page(request, invite_form=form)


def _member_row(request, membership: Membership, *, error: str = "", note: str = ""):
    context = {"m": membership, "actor": request.membership, "row_error": error, "row_note": note}
    return render(request, "tenancy/_member_row.html", context)


@member_required()
@require_http_methods(["GET", "POST"])
def member_edit(request, pk: int):
    """Change a member's role: an inline row with htmx, a page of its own without."""
    actor = _require_people_access(request)
    membership = get_object_or_404(members_visible_to(actor), pk=pk)
    if request.method == "GET" and request.htmx and request.GET.get("view") == "row":
        return _member_row(request, membership)
    form = MembershipRoleForm(request.POST or None, actor=actor, membership=membership)
    if request.method == "POST" and form.is_valid():
        try:
            services.membership_change_role(
                membership=membership,
                role=form.cleaned_data["role"],
                partner=form.cleaned_data.get("partner"),
                by_membership=actor,
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            if membership.pk == actor.pk and not may_manage_people(membership):
                # The person just gave away their own right to this page.
                return _leave_people_page(request, f"Your role is now {membership.get_role_display()}.")
            if request.htmx:
                return _member_row(request, membership, note="Role updated.")
            messages.success(request, f"{membership.user.email} is now {membership.get_role_display()}.")
            return redirect("member_list")
    context = {"m": membership, "form": form, "actor": actor, "nav": "members"}
    if request.htmx:
        return render(request, "tenancy/_member_row_edit.html", context)
    return render(request, "tenancy/member_edit.html", context)


@member_required()
@require_http_methods(["GET", "POST"])
def member_remove(request, pk: int):
    """Remove a member after confirmation (htmx asks in the browser; without it, a page asks)."""
    actor = _require_people_access(request)
    membership = get_object_or_404(members_visible_to(actor), pk=pk)
    error = ""
    if request.method == "POST":
        removing_self = membership.pk == actor.pk
        email = membership.user.email
        try:
            services.membership_remove(membership=membership, by_membership=actor)
        except ValidationError as exc:
            error = " ".join(exc.messages)
        else:
            if removing_self:
                return _leave_people_page(request, f"You have left {request.tenant.name}.")
            if request.htmx:
                return HttpResponse("")
            messages.success(request, f"{email} no longer has access to {request.tenant.name}.")
            return redirect("member_list")
        if request.htmx:
            return _member_row(request, membership, error=error)
    context = {"m": membership, "actor": actor, "error": error, "nav": "members"}
    return render(request, "tenancy/member_remove.html", context)


def _leave_people_page(request, message: str):
    messages.info(request, message)
    if request.htmx:
        return HttpResponseClientRedirect(reverse("home"))
    return redirect("home")


def _invitation_row(request, invitation, *, error: str = "", note: str = ""):
    context = {"inv": invitation, "row_error": error, "row_note": note}
    return render(request, "tenancy/_invitation_row.html", context)


@member_required()
@require_http_methods(["GET", "POST"])
def invitation_revoke(request, pk: int):
    actor = _require_people_access(request)
    invitation = get_object_or_404(invitations_visible_to(actor), pk=pk)
    error = ""
    if request.method == "POST":
        try:
            services.invitation_revoke(invitation=invitation, by_membership=actor)
        except ValidationError as exc:
            error = " ".join(exc.messages)
        else:
            if request.htmx:
                return HttpResponse("")
            messages.success(request, f"The invitation for {invitation.email} was withdrawn; its link no longer works.")
            return redirect("member_list")
        if request.htmx:
            return _invitation_row(request, invitation, error=error)
    context = {"inv": invitation, "error": error, "nav": "members"}
    return render(request, "tenancy/invitation_revoke.html", context)


@member_required()
@require_POST
def invitation_resend(request, pk: int):
    actor = _require_people_access(request)
    invitation = get_object_or_404(invitations_visible_to(actor), pk=pk)
    try:
        services.invitation_resend(invitation=invitation, by_membership=actor)
    except ValidationError as exc:
        if request.htmx:
            return _invitation_row(request, invitation, error=" ".join(exc.messages))
        messages.error(request, " ".join(exc.messages))
        return redirect("member_list")
    if request.htmx:
        return _invitation_row(request, invitation, note="Sent again with a new link.")
    messages.success(request, f"The invitation was sent to {invitation.email} again; the earlier link no longer works.")
    return redirect("member_list")


# --- Accepting an invitation ----------------------------------------------------------------------


def invitation_accept(request, token: str):
    """Join a workspace from an invitation link.

    The token names its tenant; that tenant is bound before the invitation is looked up, and the
    lookup is by the token's digest, so a forged tenant id just finds nothing. Nothing is accepted
    on GET: mail scanners open links too.
    """
    user = request.user if request.user.is_authenticated else None
    tenant_id = services.invitation_tenant_id(token)
    invitation = None
    if tenant_id is not None:
        bind(tenant_id, user=user)
        invitation = services.invitation_for_token(token)
    if invitation is None or not invitation.tenant.is_active:
        return _invitation_page(request, "invalid", {}, status=404)
    context = {"invitation": invitation, "tenant": invitation.tenant, "token": token}
    if not invitation.is_pending:
        context["accepted_by_you"] = user is not None and invitation.accepted_by_id == user.pk
        return _invitation_page(request, "closed", context, status=410)
    if user is not None:
        return _accept_signed_in(request, invitation, user, context)
    if User.objects.filter(email__iexact=invitation.email).exists():
        context["login_url"] = f"{reverse('account_login')}?next={request.path}"
        return _invitation_page(request, "sign_in", context)
    return _accept_as_new_user(request, invitation, context)


def _accept_signed_in(request, invitation, user: User, context: dict):
    if user.email.lower() != invitation.email.lower():
        return _invitation_page(request, "other_account", context, status=403)
    # The invitation's tenant is bound: this finds the person's membership there, if any.
    if Membership.objects.filter(user=user).exists():
        return _invitation_page(request, "already_member", context)
    if request.method == "POST":
        try:
            services.invitation_accept(invitation=invitation, user=user)
        except ValidationError as error:
            context["error"] = " ".join(error.messages)
            return _invitation_page(request, "confirm", context, status=409)
        return _enter_workspace(request, invitation)
    return _invitation_page(request, "confirm", context)


def _accept_as_new_user(request, invitation, context: dict):
    form = AcceptInvitationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user, _membership = services.invitation_accept_as_new_user(
                invitation=invitation,
                full_name=form.cleaned_data["full_name"],
                password=form.cleaned_data["password1"],
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return _enter_workspace(request, invitation)
    context["form"] = form
    return _invitation_page(request, "new_account", context)


def _invitation_page(request, panel: str, context: dict, *, status: int = 200):
    context = {**context, "panel": f"tenancy/invitation/{panel}.html"}
    response = render(request, "tenancy/invitation.html", context, status=status)
    # The page's address holds the token: keep it out of caches.
    add_never_cache_headers(response)
    return response


def _enter_workspace(request, invitation):
    request.session[SESSION_TENANT_KEY] = invitation.tenant_id
    messages.success(request, f"Welcome to {invitation.tenant.name}.")
    return redirect("home")


# --- API keys -------------------------------------------------------------------------------------


@never_cache
@member_required(Capability.MANAGE_API_KEYS)
@require_http_methods(["GET", "POST"])
def api_key_list(request):
    """Keys of the workspace and a form for a new one; a new key's secret is shown on this response only."""
    form = ApiKeyForm(request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        try:
            key, plaintext = services.api_key_create(
                name=form.cleaned_data["name"], access=form.cleaned_data["access"], by=request.user
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            created = {"key": key, "plaintext": plaintext}
            form = ApiKeyForm()
    page = Paginator(api_keys_for_listing(), API_KEYS_PER_PAGE).get_page(request.GET.get("page"))
    context = {"nav": "api_keys", "form": form, "created": created, "page_obj": page, "keys": page.object_list}
    # never_cache: the one response that carries a secret must not be stored by the browser or a proxy.
    return render(request, "tenancy/api_keys.html", context)


@member_required(Capability.MANAGE_API_KEYS)
@require_http_methods(["GET", "POST"])
def api_key_revoke(request, pk: int):
    key = get_object_or_404(ApiKey.objects.select_related("created_by"), pk=pk)
    error = ""
    if request.method == "POST":
        try:
            services.api_key_revoke(key=key, by=request.user)
        except ValidationError as exc:
            error = " ".join(exc.messages)
        else:
            messages.success(request, f"The key “{key.name}” is revoked; requests made with it are now refused.")
            return redirect("api_key_list")
    return render(request, "tenancy/api_key_revoke.html", {"key": key, "error": error, "nav": "api_keys"})


# --- Audit log ------------------------------------------------------------------------------------


@member_required(Capability.VIEW_AUDIT)
def audit_list(request):
    """Who changed what, newest first, with filters; paged by position, not by offset."""
    form = AuditFilterForm(request.GET or None)
    events = audit_events(**form.filters()) if form.is_bound else audit_events()
    page = audit_page(
        events,
        after=AuditCursor.decode(request.GET.get("after")),
        before=AuditCursor.decode(request.GET.get("before")),
        size=AUDIT_EVENTS_PER_PAGE,
    )
    rows = [(event, audit_change_rows(event.changes)) for event in page.events]
    filters_active = form.is_bound and any(value for value in form.filters().values())
    context = {
        "nav": "audit",
        "form": form,
        "page": page,
        "rows": rows,
        "filters_active": filters_active,
        "known_verbs": AuditFilterForm.KNOWN_VERBS,
    }
    return render(request, "tenancy/audit.html", context)


# --- Workspace settings ---------------------------------------------------------------------------


@member_required(Capability.CONFIGURE_TENANT)
@require_http_methods(["GET", "POST"])
def workspace_settings(request):
    tenant = request.tenant
    initial = {name: getattr(tenant, name) for name in services.TENANT_EDITABLE_FIELDS}
    form = WorkspaceSettingsForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.tenant_update(tenant=tenant, by=request.user, **form.cleaned_data)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, "Workspace settings saved.")
            return redirect("workspace_settings")
    has_authenticator = _has_totp(request.user)
    context = {"nav": "workspace", "form": form, "has_authenticator": has_authenticator}
    return render(request, "tenancy/workspace_settings.html", context)


def _has_totp(user) -> bool:
    from allauth.mfa.models import Authenticator

    return Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()
