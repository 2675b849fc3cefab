"""Support admin for tenancy: tenant-owned rows read-only and scoped; tenants and people global."""

from __future__ import annotations

import json

# Imported first so that allauth's admins are registered before the end of this module replaces them.
import allauth.account.admin
import allauth.mfa.admin  # noqa: F401
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from django.contrib import admin
from django.forms.models import model_to_dict
from django.utils.html import format_html

from partnerhub.admin_scoping import ReadOnlyTenantOwnedAdmin, is_tenant_staff, tenant_members
from partnerhub.tenancy.audit import audit, diff
from partnerhub.tenancy.context import tenant_scope
from partnerhub.tenancy.models import ApiKey, AuditEvent, Invitation, Membership, Tenant, User
from partnerhub.tenancy.services import tenant_create

# --- Tenant-owned: read-only. Their services enforce rules the admin would bypass (the last
# administrator, partner admins inviting only to their own partner, one-time secrets). ---------------


@admin.register(Membership)
class MembershipAdmin(ReadOnlyTenantOwnedAdmin):
    list_display = ("user", "role", "partner", "created_at")
    list_filter = ("role",)
    list_select_related = ("user", "partner")
    search_fields = ("user__email", "user__full_name")
    fields = ("user", "role", "partner", "created_at")


@admin.register(Invitation)
class InvitationAdmin(ReadOnlyTenantOwnedAdmin):
    list_display = ("email", "role", "partner", "status", "created_at", "expires_at")
    list_filter = ("role",)
    list_select_related = ("partner",)
    search_fields = ("email",)
    # The token digest is never shown nor filterable.
    fields = (
        "email",
        "role",
        "partner",
        "status",
        "invited_by",
        "created_at",
        "expires_at",
        "accepted_at",
        "accepted_by",
        "revoked_at",
    )
    readonly_fields = ("status",)
    secret_fields = ("digest",)


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnlyTenantOwnedAdmin):
    list_display = ("name", "prefix", "access", "created_by", "created_at", "last_used_at", "revoked_at")
    list_filter = ("access",)
    list_select_related = ("created_by",)
    search_fields = ("name", "prefix")
    # The secret's digest is never shown nor filterable; the prefix identifies a key.
    fields = ("name", "prefix", "access", "created_by", "created_at", "last_used_at", "revoked_at")
    secret_fields = ("digest",)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyTenantOwnedAdmin):
    list_display = ("created_at", "actor_label", "verb", "target_type", "target_repr")
    list_filter = ("verb", "target_type")
    search_fields = ("actor_label", "target_repr", "target_id")
    date_hierarchy = "created_at"
    fields = ("created_at", "actor_label", "actor", "verb", "target_type", "target_id", "target_repr", "changes_pretty")
    readonly_fields = ("changes_pretty",)

    @admin.display(description="Changes")
    def changes_pretty(self, event):
        return format_html("<pre>{}</pre>", json.dumps(event.changes, indent=2, ensure_ascii=False, sort_keys=True))


# --- Global models: tenants and people ---------------------------------------------------------------


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    """Superusers manage every tenant; support staff see the one they work in, read-only."""

    list_display = ("name", "slug", "is_active", "size_measure_label", "created_at")
    list_filter = ("is_active",)
    search_fields = ("name", "slug")
    readonly_fields = ("created_at",)

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(pk=request.tenant.pk) if is_tenant_staff(request) else queryset.none()

    def has_module_permission(self, request):
        return request.user.is_superuser or is_tenant_staff(request)

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser or is_tenant_staff(request)

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        # Under row-level security a deletion cannot see, and so cannot cascade to, the tenant's
        # rows; deactivate a tenant instead (is_active).
        return False

    def save_model(self, request, obj, form, change):
        if not change:
            # A new tenant gets its default partner types from the service, like every other tenant.
            created = tenant_create(**form.cleaned_data)
            obj.pk, obj._state.adding = created.pk, False
            with tenant_scope(created, user=request.user):
                audit(actor=request.user, verb="tenant.created", target=created, changes=diff({}, form.cleaned_data))
            return
        before = model_to_dict(Tenant.objects.get(pk=obj.pk), fields=form.changed_data)
        obj.save()
        changes = diff(before, model_to_dict(obj, fields=form.changed_data))
        if changes:
            # Recorded in the changed tenant's own log, where its administrators read it.
            with tenant_scope(obj, user=request.user):
                audit(actor=request.user, verb="tenant.updated", target=obj, changes=changes)


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    """People are global; support staff see the members of their tenant, superusers everyone.

    Nobody adds or deletes people here: they join through invitations, and a deletion could not
    see their memberships in other tenants under row-level security. Deactivate instead.
    """

    list_display = ("email", "full_name", "is_active", "is_staff", "last_login")
    list_filter = ("is_active", "is_staff", "is_superuser")
    search_fields = ("email", "full_name")
    fields = (
        "email",
        "full_name",
        "is_active",
        "is_staff",
        "is_superuser",
        "groups",
        "user_permissions",
        "last_login",
        "date_joined",
    )
    readonly_fields = ("last_login", "date_joined")
    filter_horizontal = ("groups", "user_permissions")

    def get_queryset(self, request):
        if request.user.is_superuser:
            return super().get_queryset(request)
        return tenant_members() if is_tenant_staff(request) else User.objects.none()

    def has_module_permission(self, request):
        return request.user.is_superuser or is_tenant_staff(request)

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser or is_tenant_staff(request)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return False


# --- allauth's own models ---------------------------------------------------------------------------
# Email addresses and authenticators belong to people, who are global: allauth's admins list them for
# every tenant. Only superusers may see them; support staff work inside one tenant.


def _superusers_only(admin_class):
    class SuperuserOnly(admin_class):
        def has_module_permission(self, request):
            return request.user.is_superuser

        def has_view_permission(self, request, obj=None):
            return request.user.is_superuser

        def has_add_permission(self, request):
            return request.user.is_superuser

        def has_change_permission(self, request, obj=None):
            return request.user.is_superuser

        def has_delete_permission(self, request, obj=None):
            return request.user.is_superuser

    SuperuserOnly.__name__ = f"SuperuserOnly{admin_class.__name__}"
    return SuperuserOnly


for _model in (EmailAddress, Authenticator):
    _original = type(admin.site._registry[_model])
    admin.site.unregister(_model)
    admin.site.register(_model, _superusers_only(_original))
