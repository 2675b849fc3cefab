from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema_serializer
from rest_framework import serializers

from partnerhub.partners.models import Partner, PartnerType
from partnerhub.partners.selectors import internal_users
from partnerhub.partners.services import PARTNER_EDITABLE_FIELDS
from partnerhub.tenancy.api.fields import ScopedSlugRelatedField
from partnerhub.tenancy.models import User


class ManagerField(serializers.SlugRelatedField):
    """The responsible partner manager, by email; must be an internal member of the tenant."""

    def __init__(self, **kwargs):
        super().__init__(slug_field="email", queryset=User.objects.none(), **kwargs)

    def get_queryset(self):
        return internal_users()


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A reseller in DACH",
            value={
                "name": "Alpine Systems GmbH",
                "partner_type": "reseller",
                "lifecycle_stage": "growing",
                "status": "active",
                "region": "EMEA — DACH",
                "product_lines": ["Analytics", "Cloud"],
                "size": "12.00",
                "hubspot_company_id": "18340021",
                "salesforce_account_id": "0015g00000AbCdEAAZ",
                "external_ids": {"erp": "P-0042"},
                "manager": "manager@vendor.example",
                "website": "https://alpine.example",
                "joined_on": "2024-03-01",
            },
            request_only=True,
        )
    ]
)
class PartnerSerializer(serializers.ModelSerializer):
    partner_type = ScopedSlugRelatedField(model=PartnerType, slug_field="key")
    partner_type_name = serializers.CharField(source="partner_type.name", read_only=True)
    manager = ManagerField(required=False, allow_null=True)
    manager_name = serializers.SerializerMethodField()

    class Meta:
        model = Partner
        fields = ["id", *PARTNER_EDITABLE_FIELDS, "partner_type_name", "manager_name", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]
        # Uniqueness is checked by the service inside the tenant, with the constraint's message.
        validators: list = []

    def get_manager_name(self, partner: Partner) -> str | None:
        return str(partner.manager) if partner.manager_id else None

    def validate_product_lines(self, value):
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise serializers.ValidationError("Give product lines as a list of names.")
        return value

    def validate_external_ids(self, value):
        if not isinstance(value, dict) or not all(isinstance(v, str | int) for v in value.values()):
            raise serializers.ValidationError('Give other systems\' ids as {"system": "id"}.')
        return value
