"""Support admin for partners and partner types (scoped to the active tenant)."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse

from partnerhub.admin_scoping import TenantOwnedAdmin, TenantOwnedAdminForm
from partnerhub.partners.forms import ExternalIdsField, ProductLinesField
from partnerhub.partners.models import Partner, PartnerType
from partnerhub.partners.services import PARTNER_EDITABLE_FIELDS, partner_create, partner_update


class PartnerAdminForm(TenantOwnedAdminForm):
    """The same parsing as the portal's form for product lines and ids, instead of raw JSON.

    No Meta: the admin builds the form class per request, inside the tenant scope, because the
    foreign-key choices come from scoped managers that refuse to run at import time.
    """

    product_lines = ProductLinesField(help_text="Separate with commas, e.g. “Analytics, Cloud”.")
    external_ids = ExternalIdsField(label="Other external ids", help_text="One per line as system=id.")


@admin.register(Partner)
class PartnerAdmin(TenantOwnedAdmin):
    form = PartnerAdminForm
    list_display = ("name", "partner_type", "lifecycle_stage", "status", "region", "manager", "updated_at")
    list_filter = ("partner_type", "lifecycle_stage", "status", ("manager", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("partner_type", "manager")
    search_fields = ("name", "hubspot_company_id", "salesforce_account_id")
    readonly_fields = ("created_at", "updated_at")
    internal_user_fields = ("manager",)
    fieldsets = (
        (None, {"fields": ("name", "partner_type", "lifecycle_stage", "status", "manager")}),
        ("Segmentation", {"fields": ("region", "size", "product_lines", "joined_on", "website")}),
        ("External ids", {"fields": ("hubspot_company_id", "salesforce_account_id", "external_ids")}),
        ("History", {"fields": ("created_at", "updated_at")}),
    )

    def view_on_site(self, obj):
        return reverse("partner_detail", args=[obj.pk])

    def save_model(self, request, obj, form, change):
        # The services normalize, validate and audit as for every other writer. The form has
        # already run the same model validation, so a refusal here means a concurrent write.
        fields = {name: form.cleaned_data[name] for name in PARTNER_EDITABLE_FIELDS if name in form.cleaned_data}
        if change:
            # The admin has already copied the form onto obj; the service diffs against the stored row.
            partner_update(partner=Partner.objects.get(pk=obj.pk), by=request.user, **fields)
        else:
            obj.pk = partner_create(by=request.user, **fields).pk
            obj._state.adding = False

    def has_delete_permission(self, request, obj=None):
        # Deleting would cascade to memberships and history; set the status to Terminated instead.
        return False


@admin.register(PartnerType)
class PartnerTypeAdmin(TenantOwnedAdmin):
    list_display = ("name", "key", "position")
    list_editable = ("position",)
    search_fields = ("name", "key")
    prepopulated_fields = {"key": ("name",)}
