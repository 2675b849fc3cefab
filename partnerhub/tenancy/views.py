"""Workspace pages: switching tenants, members, invitations, API keys and the audit log."""

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from partnerhub.tenancy.middleware import SESSION_TENANT_KEY
from partnerhub.tenancy.selectors import memberships_of


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


def invitation_accept(request, token):
    raise Http404
