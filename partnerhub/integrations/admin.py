"""Support admin for uploads: read-only, since only the upload services move an upload along."""

from __future__ import annotations

import json

from django.contrib import admin
from django.utils.html import format_html

from partnerhub.admin_scoping import ReadOnlyTenantOwnedAdmin
from partnerhub.integrations.models import Upload


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
