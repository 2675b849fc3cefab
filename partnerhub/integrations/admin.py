"""Support admin for uploads, data sources, sync runs, deals and mappings: read-only, since only their
services (and the syncs) write them. A data source's encrypted credentials are never shown."""

from __future__ import annotations

import json

from django.contrib import admin
from django.utils.html import format_html

from partnerhub.admin_scoping import ReadOnlyTenantOwnedAdmin
from partnerhub.integrations.models import Upload
from partnerhub.integrations.source_models import DataSource, Deal, PartnerMapping, SyncRun


@admin.register(Upload)
class UploadAdmin(ReadOnlyTenantOwnedAdmin):
    list_display = ("created_at", "file_name", "kind", "status", "rows_total", "uploaded_by", "committed_at")
    list_filter = ("kind", "status")
    list_select_related = ("uploaded_by",)
    search_fields = ("file_name", "sha256")
    date_hierarchy = "created_at"
    fields = (
        ("file_name", "kind", "size", "sha256"),
        ("status", "rows_done", "rows_total", "error"),
        ("uploaded_by", "created_at", "checked_at"),
        ("committed_by", "committed_at"),
        "result_pretty",
    )
    readonly_fields = ("result_pretty",)

    def get_queryset(self, request):
        return super().get_queryset(request).defer("content")

    @admin.display(description="Result")
    def result_pretty(self, upload):
        return format_html("<pre>{}</pre>", json.dumps(upload.result, indent=2, ensure_ascii=False, sort_keys=True))


# --- Data sources, sync runs, facts and mappings: written by their services and syncs only ----------


@admin.register(DataSource)
class DataSourceAdmin(ReadOnlyTenantOwnedAdmin):
    list_display = ("name", "kind", "is_active", "last_success_at", "next_run_at", "credentials_fields")
    list_filter = ("kind", "is_active")
    search_fields = ("name",)
    # The encrypted credentials are neither shown nor filterable; only which fields are set.
    exclude = ("credentials",)
    secret_fields = ("credentials",)
    fields = (
        ("name", "kind", "is_active"),
        ("base_url", "token_url", "api_version"),
        ("attribution", "attribution_field", "partner_match", "currency"),
        ("schedule_minutes", "overlap_minutes", "stale_after_hours"),
        ("synced_until", "last_success_at", "next_run_at", "created_at"),
        "credentials_fields",
    )
    readonly_fields = ("credentials_fields", "created_at")

    @admin.display(description="Credentials set")
    def credentials_fields(self, source):
        return ", ".join(source.credentials_set or []) or "—"


@admin.register(SyncRun)
class SyncRunAdmin(ReadOnlyTenantOwnedAdmin):
    list_display = ("queued_at", "source", "status", "trigger", "pages", "fetched", "unmatched", "error_kind")
    list_filter = ("status", "error_kind", "trigger")
    list_select_related = ("source",)
    date_hierarchy = "queued_at"
    fields = (
        ("source", "status", "trigger", "requested_by"),
        ("queued_at", "started_at", "finished_at", "retry_at"),
        ("since", "until"),
        ("pages", "fetched", "created", "updated", "deleted", "unmatched", "observations_written"),
        ("error_kind", "error"),
        "cursor",
    )


@admin.register(Deal)
class DealAdmin(ReadOnlyTenantOwnedAdmin):
    list_display = ("external_id", "name", "source", "partner", "partner_ref", "amount", "currency", "stage")
    list_filter = ("source", "closed", "won")
    list_select_related = ("source", "partner")
    search_fields = ("external_id", "name", "partner_ref")
    date_hierarchy = "modified_at"
    raw_id_fields = ("partner", "sync_run", "upload")


@admin.register(PartnerMapping)
class PartnerMappingAdmin(ReadOnlyTenantOwnedAdmin):
    list_display = ("external_ref", "source", "partner", "created_by", "created_at")
    list_filter = ("source",)
    list_select_related = ("source", "partner", "created_by")
    search_fields = ("external_ref",)
