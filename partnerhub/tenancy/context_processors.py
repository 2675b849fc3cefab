"""Template context: the active workspace and the person's other workspaces."""

from partnerhub.tenancy.roles import Capability
from partnerhub.tenancy.selectors import memberships_of


def workspace(request):
    membership = getattr(request, "membership", None)
    if membership is None:
        return {"workspace": None}

    def other_workspaces():
        return [m for m in memberships_of(request.user) if m.tenant_id != membership.tenant_id]

    return {
        "workspace": {
            "tenant": request.tenant,
            "membership": membership,
            "role": membership.get_role_display(),
            "is_internal": membership.is_internal,
            "can": {capability.value: membership.can(capability) for capability in Capability},
            # Evaluated only when a template renders the switcher.
            "others": other_workspaces,
        }
    }
