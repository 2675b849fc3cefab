"""View guards for portal pages."""

from __future__ import annotations

import functools

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.shortcuts import render

from partnerhub.tenancy.roles import Capability


def member_required(capability: Capability | None = None):
    """Require a signed-in member of the active tenant, holding ``capability`` when given.

    Anonymous visitors go to the sign-in page; people without a workspace see why; members whose
    role lacks the capability get 403. Objects are looked up through scoped managers, so another
    tenant's id is a 404 on top of this.
    """

    def decorate(view):
        @functools.wraps(view)
        def guarded(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if request.membership is None:
                return render(request, "no_workspace.html", status=403)
            if capability is not None and not request.membership.can(capability):
                raise PermissionDenied("Your role in this workspace does not include this page.")
            return view(request, *args, **kwargs)

        return guarded

    return decorate
