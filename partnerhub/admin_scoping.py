"""The support admin, scoped to the active tenant like every other entry point.

Support staff are ``is_staff`` accounts that also hold an internal membership in the tenant the
request runs in (the workspace chosen in the portal). Every tenant-owned model's admin derives from
``TenantOwnedAdmin``: with no active tenant it grants nothing (the scoped manager would raise), its
querysets and foreign-key choices come from the scoped managers, and each save or delete goes
through the model (which fills the tenant from the scope) and lands in the tenant's audit log.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db import models
from django.forms.models import model_to_dict

from partnerhub.tenancy.audit import audit, diff
from partnerhub.tenancy.models import Membership, User


def is_tenant_staff(request) -> bool:
    """A staff account working inside a tenant it belongs to as an internal member.

    Partner-role memberships do not qualify: the admin shows every partner of the tenant, and
    partner users never see other partners.
    """
    membership = getattr(request, "membership", None)
    return (
        request.user.is_active
        and request.user.is_staff
        and getattr(request, "tenant", None) is not None
        and membership is not None
        and membership.is_internal
    )


def tenant_members():
    """Everyone with a membership in the active tenant: the only people a dropdown may offer."""
    return User.objects.filter(pk__in=Membership.objects.values("user_id")).order_by("email")


class TenantOwnedAdminForm(forms.ModelForm):
    """Checks per-tenant unique constraints in the active tenant.

    ``tenant`` is not a form field, so a ModelForm leaves it out of validation and with it every
    constraint that names it (all of ours): duplicates would reach the database as an
    IntegrityError. The model's ``full_clean`` fills the tenant from the scope; here we keep it in.
    """

    def _get_validation_exclusions(self):
        exclusions = super()._get_validation_exclusions()
        exclusions.discard("tenant")
        return exclusions


class TenantOwnedAdmin(admin.ModelAdmin):
    """Base admin for tenant-owned models."""

    form = TenantOwnedAdminForm
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    # Lookups the changelist URL may never filter on (e.g. ?digest__startswith=...), to keep
    # secrets from leaking one character at a time.
    secret_fields: tuple[str, ...] = ()
    # Foreign keys to User that must offer internal members only (others offer any member).
    internal_user_fields: tuple[str, ...] = ()

    # --- Who may do what --------------------------------------------------------------------------

    def has_module_permission(self, request):
        return is_tenant_staff(request) and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return is_tenant_staff(request) and super().has_view_permission(request, obj)

    def has_add_permission(self, request):
        return is_tenant_staff(request) and super().has_add_permission(request)

    def has_change_permission(self, request, obj=None):
        return is_tenant_staff(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return is_tenant_staff(request) and super().has_delete_permission(request, obj)

    # --- What they see ----------------------------------------------------------------------------

    def get_queryset(self, request):
        if not is_tenant_staff(request):
            # Reached only if a permission check was skipped; answer nothing rather than raise.
            return models.QuerySet(self.model).none()
        return super().get_queryset(request)

    def lookup_allowed(self, lookup, value, request=None):
        if lookup.split("__", 1)[0] in self.secret_fields:
            return False
        return super().lookup_allowed(lookup, value, request)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        # Tenant-owned targets are already limited by their scoped default manager; people are
        # global, so limit them to this tenant's members here.
        if db_field.related_model is User:
            if db_field.name in self.internal_user_fields:
                from partnerhub.partners.selectors import internal_users

                kwargs["queryset"] = internal_users()
            else:
                kwargs["queryset"] = tenant_members()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    # --- Writes -----------------------------------------------------------------------------------

    def _verb(self, action: str) -> str:
        return f"{self.model._meta.model_name}.{action}"

    def save_model(self, request, obj, form, change):
        fields = form.changed_data if change else list(form.fields)
        before = model_to_dict(type(obj).objects.get(pk=obj.pk), fields=fields) if change else {}
        obj.save()
        changes = diff(before, model_to_dict(obj, fields=fields))
        if changes or not change:
            audit(actor=request.user, verb=self._verb("updated" if change else "created"), target=obj, changes=changes)

    def delete_model(self, request, obj):
        audit(actor=request.user, verb=self._verb("deleted"), target=obj)
        obj.delete()

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


class ReadOnlyTenantOwnedAdmin(TenantOwnedAdmin):
    """For rows that only their own services may write: support staff look, never touch."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
