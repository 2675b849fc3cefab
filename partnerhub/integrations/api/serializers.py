"""Serializers for deals, data sources and sync runs: they shape answers and envelopes, nothing more.

Deals are validated item by item by the service (``partnerhub.integrations.deals``), so the bulk
envelope keeps them raw. Credentials are never serialized; a source says which are set.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from partnerhub.integrations.deals import MAX_DEALS, STATUSES
from partnerhub.integrations.source_models import DataSource, Deal, SyncRun

MAX_ID = 2**63 - 1


class DataSourceSerializer(serializers.ModelSerializer):
    kind_name = serializers.CharField(source="get_kind_display", read_only=True)
    stale = serializers.SerializerMethodField(help_text="No successful sync for longer than stale_after_hours.")

    class Meta:
        model = DataSource
        fields = [
            "id", "name", "kind", "kind_name", "is_active", "base_url", "token_url", "api_version",
            "credentials_set", "attribution", "attribution_field", "partner_match", "currency",
            "schedule_minutes", "overlap_minutes", "stale_after_hours", "synced_until", "last_success_at",
            "next_run_at", "stale", "created_at",
        ]  # fmt: skip
        read_only_fields = fields
        extra_kwargs = {"credentials_set": {"help_text": "Which credentials are stored (never their values)."}}

    def get_stale(self, source: DataSource) -> bool:
        return source.is_stale()


class SyncRunSerializer(serializers.ModelSerializer):
    source_name = serializers.CharField(source="source.name", read_only=True)
    requested_by = serializers.SlugRelatedField(slug_field="email", read_only=True)

    class Meta:
        model = SyncRun
        fields = [
            "id", "source", "source_name", "status", "trigger", "requested_by", "queued_at", "started_at",
            "finished_at", "since", "until", "pages", "fetched", "created", "updated", "deleted", "unmatched",
            "observations_written", "error_kind", "error", "retry_at",
        ]  # fmt: skip
        read_only_fields = fields


class DealSerializer(serializers.ModelSerializer):
    source_name = serializers.CharField(source="source.name", read_only=True)
    partner_name = serializers.CharField(source="partner.name", read_only=True, allow_null=True, default=None)
    unmatched = serializers.SerializerMethodField(help_text="No partner matches the deal's partner_ref yet.")
    deleted = serializers.SerializerMethodField(help_text="Deleted or archived at the source.")

    class Meta:
        model = Deal
        fields = [
            "id", "external_id", "source", "source_name", "partner", "partner_name", "partner_ref", "unmatched",
            "name", "amount", "currency", "stage", "closed", "won", "created_on", "close_date", "deleted",
            "deleted_at", "modified_at", "first_seen_at", "updated_at", "sync_run", "upload",
        ]  # fmt: skip
        read_only_fields = fields

    def get_unmatched(self, deal: Deal) -> bool:
        return deal.partner_id is None

    def get_deleted(self, deal: Deal) -> bool:
        return deal.deleted_at is not None


class PartnerDealSerializer(serializers.ModelSerializer):
    """What a partner user reads of their own deals: no source, reference or bookkeeping of ours."""

    partner_name = serializers.CharField(source="partner.name", read_only=True)
    deleted = serializers.SerializerMethodField()

    class Meta:
        model = Deal
        fields = [
            "id", "partner", "partner_name", "name", "amount", "currency", "stage", "closed", "won", "created_on",
            "close_date", "deleted", "modified_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_deleted(self, deal: Deal) -> bool:
        return deal.deleted_at is not None


# --- Pushing deals ---------------------------------------------------------------------------------------


class DealBulkItemSerializer(serializers.Serializer):
    """One deal of a bulk request (documentation; deals are validated by the service)."""

    external_id = serializers.CharField(max_length=64, help_text="The deal's id in your system.")
    partner = serializers.IntegerField(required=False, help_text="The partner's PartnerHub id.")
    partner_ref = serializers.CharField(
        required=False,
        max_length=200,
        help_text="The partner as your system names it, when you do not send `partner`; matched through the "
        "source's partner mappings. A reference that matches no partner is kept (unmatched) until it is mapped.",
    )
    name = serializers.CharField(required=False, max_length=255)
    amount = serializers.DecimalField(
        required=False, max_digits=18, decimal_places=2, help_text="A number or a decimal string; needs currency."
    )
    currency = serializers.CharField(required=False, min_length=3, max_length=3, help_text="e.g. EUR")
    stage = serializers.CharField(required=False, max_length=120)
    closed = serializers.BooleanField(required=False, default=False)
    won = serializers.BooleanField(required=False, default=False, help_text="A won deal is closed.")
    created_on = serializers.DateField(help_text="The day the deal was created (registered).")
    close_date = serializers.DateField(required=False, help_text="Required when the deal is closed.")
    deleted = serializers.BooleanField(
        required=False, default=False, help_text="Marks a deal sent before as deleted; only external_id is read."
    )


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Won, open and deleted",
            summary="A won deal, an open one named as your CRM names its partner, and a deletion",
            value={
                "atomic": True,
                "deals": [
                    {
                        "external_id": "D-1001",
                        "partner": 42,
                        "name": "Alpine — analytics renewal",
                        "amount": "18400.00",
                        "currency": "EUR",
                        "stage": "Closed won",
                        "closed": True,
                        "won": True,
                        "created_on": "2026-05-04",
                        "close_date": "2026-07-15",
                    },
                    {
                        "external_id": "D-1002",
                        "partner_ref": "ACC-0042",
                        "name": "Nordlicht — cloud migration",
                        "amount": 52000,
                        "currency": "EUR",
                        "stage": "Proposal",
                        "created_on": "2026-07-20",
                    },
                    {"external_id": "D-0977", "deleted": True},
                ],
            },
            request_only=True,
        )
    ]
)
class DealBulkSerializer(serializers.Serializer):
    atomic = serializers.BooleanField(
        default=True, help_text="True: one invalid deal means none is recorded. False: record the valid ones."
    )
    source = serializers.IntegerField(
        required=False, help_text="An API-push data source's id; by default the tenant's “API push” source."
    )
    deals = DealBulkItemSerializer(many=True, help_text=f"At most {MAX_DEALS:,}.")


class DealBulkEnvelopeSerializer(serializers.Serializer):
    """What the bulk endpoint actually parses: the deals stay raw so each gets its own errors."""

    atomic = serializers.BooleanField(default=True)
    source = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=MAX_ID)
    deals = serializers.ListField(
        child=serializers.JSONField(),
        allow_empty=False,
        max_length=MAX_DEALS,
        error_messages={"max_length": f"Send at most {MAX_DEALS:,} deals per request."},
    )

    def validate_source(self, value: int | None) -> DataSource | None:
        if value is None:
            return None
        source = DataSource.objects.filter(pk=value).first()
        if source is None:
            raise serializers.ValidationError("There is no data source with this id.")
        return source


@extend_schema_field({"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}})
class FieldErrorsField(serializers.DictField):
    pass


class DealBulkItemResultSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="The position of the deal in the request, from 0.")
    status = serializers.ChoiceField(
        choices=list(STATUSES),
        help_text="created, updated, unchanged, unmatched (stored without a partner), deleted, invalid, or valid "
        "(nothing was recorded because another deal of an atomic request is invalid).",
    )
    id = serializers.IntegerField(allow_null=True, help_text="The stored deal.")
    errors = FieldErrorsField()


class DealBulkResultSerializer(serializers.Serializer):
    written = serializers.BooleanField(help_text="False when an atomic request was refused.")
    source = serializers.IntegerField(help_text="The data source the deals were recorded in.")
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    unmatched = serializers.IntegerField()
    deleted = serializers.IntegerField()
    invalid = serializers.IntegerField()
    observations_written = serializers.IntegerField(help_text="Metric values derived from the changed deals.")
    results = DealBulkItemResultSerializer(many=True)
