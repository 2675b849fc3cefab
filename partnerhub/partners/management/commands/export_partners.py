"""Write a tenant's partner directory as CSV (for support and migrations between systems)."""

from __future__ import annotations

import csv

from partnerhub.partners.models import Partner
from partnerhub.tenancy.management.base import TenantCommand

COLUMNS = [
    "id",
    "name",
    "partner_type",
    "lifecycle_stage",
    "status",
    "region",
    "product_lines",
    "size",
    "hubspot_company_id",
    "salesforce_account_id",
    "manager",
    "joined_on",
]


class Command(TenantCommand):
    help = "Export a tenant's partners as CSV to standard output."

    def handle_tenant(self, tenant, *args, **options):
        writer = csv.writer(self.stdout, lineterminator="\n")
        writer.writerow(COLUMNS)
        partners = Partner.objects.with_listing_relations().order_by("name", "id")
        for partner in partners.iterator(chunk_size=2000):
            writer.writerow(
                [
                    partner.pk,
                    partner.name,
                    partner.partner_type.key,
                    partner.lifecycle_stage,
                    partner.status,
                    partner.region,
                    "; ".join(partner.product_lines),
                    "" if partner.size is None else partner.size,
                    partner.hubspot_company_id,
                    partner.salesforce_account_id,
                    partner.manager.email if partner.manager_id else "",
                    partner.joined_on or "",
                ]
            )
