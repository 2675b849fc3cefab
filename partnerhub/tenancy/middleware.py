"""Request entry point: the tenant comes from the signed-in person's active membership."""

from __future__ import annotations

from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import reverse

from partnerhub.tenancy.context import bind, tenant_scope
from partnerhub.tenancy.roles import Role
from partnerhub.tenancy.selectors import active_membership_for

SESSION_TENANT_KEY = "partnerhub_active_tenant"


class TenantMiddleware:
    """Open the request's tenant scope and bind the active membership's tenant to it.

    API keys rebind the scope during DRF authentication; either way the scope is closed, and the
    database session reset, when the response leaves, also when the view raised.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.tenant = None
        request.membership = None
        with tenant_scope(None):
            user = request.user
            if user.is_authenticated:
                bind(None, user=user)
                membership = active_membership_for(user, preferred_tenant_id=request.session.get(SESSION_TENANT_KEY))
                if membership is not None:
                    if request.session.get(SESSION_TENANT_KEY) != membership.tenant_id:
                        request.session[SESSION_TENANT_KEY] = membership.tenant_id
                    bind(membership.tenant_id, user=user)
                    request.tenant = membership.tenant
                    request.membership = membership
            return self.get_response(request)


class RequireMfaMiddleware:
    """Hold administrators of tenants that require MFA at the authenticator set-up page.

    Until they have an authenticator they may only reach the account pages (to set it up or sign
    out), switch to another workspace, or answer an invitation. Browser calls to the API are
    refused with 403; API keys are not people and are not affected (they carry no membership).
    """

    OPEN_PREFIXES = ("/accounts/", "/static/", "/healthz", "/workspace/switch/", "/invitations/")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if self._owes_mfa(request):
            if request.path.startswith("/api/"):
                return JsonResponse(
                    {"detail": "This workspace requires two-factor authentication; set up an authenticator first."},
                    status=403,
                )
            return redirect(reverse("mfa_activate_totp") + "?required=1")
        return self.get_response(request)

    def _owes_mfa(self, request) -> bool:
        membership = request.membership
        if (
            membership is None
            or membership.role != Role.ADMIN
            or not request.tenant.require_mfa_for_admins
            or request.path.startswith(self.OPEN_PREFIXES)
        ):
            return False
        from allauth.mfa.models import Authenticator

        return not Authenticator.objects.filter(user=request.user, type=Authenticator.Type.TOTP).exists()
