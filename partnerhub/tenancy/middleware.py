"""Request entry point: the tenant comes from the signed-in person's active membership."""

from __future__ import annotations

from django.shortcuts import redirect
from django.urls import reverse

from partnerhub.tenancy.context import bind, tenant_scope
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
    """Send administrators of tenants that require MFA to the authenticator set-up page."""

    ALLOWED_PREFIXES = ("/accounts/", "/static/", "/api/", "/healthz")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        membership = request.membership
        if (
            membership is not None
            and request.tenant.require_mfa_for_admins
            and membership.role == "admin"
            and not request.path.startswith(self.ALLOWED_PREFIXES)
        ):
            from allauth.mfa.models import Authenticator

            if not Authenticator.objects.filter(user=request.user, type=Authenticator.Type.TOTP).exists():
                return redirect(reverse("mfa_activate_totp") + "?required=1")
        return self.get_response(request)
