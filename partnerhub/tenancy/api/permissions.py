"""Who may call what: members by role capability, API keys by read-only / read-write."""

from __future__ import annotations

from rest_framework import permissions

from partnerhub.tenancy.models import ApiKey


class TenantMember(permissions.BasePermission):
    """A member of the active tenant, or one of its API keys.

    A view names the capability it needs with ``read_capability`` / ``write_capability``;
    partner users are let through for reading where the view allows partner access, and the base
    viewset restricts what they see to their own partner.
    """

    message = "You do not have access to this workspace."

    def has_permission(self, request, view) -> bool:
        if getattr(request, "tenant", None) is None:
            return False
        safe = request.method in permissions.SAFE_METHODS
        if isinstance(request.auth, ApiKey):
            if not safe and not request.auth.can_write:
                self.message = "This API key is read-only."
                return False
            return True
        membership = getattr(request, "membership", None)
        if membership is None:
            return False
        if membership.is_partner_user:
            if not safe or getattr(view, "partner_access", False) is False:
                self.message = "Partner users cannot do this."
                return False
            return True
        capability = getattr(view, "read_capability" if safe else "write_capability", None)
        if capability is not None and not membership.can(capability):
            self.message = "Your role does not allow this."
            return False
        return True


class PeopleWrite(TenantMember):
    """Reading as for any tenant data; writes only by the workspace's people, whose roles the services check.

    For areas whose writes name a person (who ran a review, who owns an action): API keys read only.
    A subclass says why in ``api_key_message``.
    """

    api_key_message = "This is changed by people; API keys read it only."

    def has_permission(self, request, view) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return super().has_permission(request, view)
        if getattr(request, "tenant", None) is None:
            return False
        if isinstance(request.auth, ApiKey):
            self.message = self.api_key_message
            return False
        return getattr(request, "membership", None) is not None
