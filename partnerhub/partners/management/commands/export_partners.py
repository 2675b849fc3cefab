"""Write a tenant's partner directory as CSV (for support and migrations between systems)."""

from __future__ import annotations

import csv

from partnerhub.integrations.tabular import formula_safe
from partnerhub.partners.models import Partner
from partnerhub.partners.services import PARTNER_EDITABLE_FIELDS
from partnerhub.tenancy.management.base import TenantCommand

COLUMNS = ["id", *PARTNER_EDITABLE_FIELDS]


def _cell(partner: Partner, field: str):
    """A partner's field as a CSV cell: related rows by key or email, lists joined."""
    value = getattr(partner, field)
    if field == "partner_type":
        return partner.partner_type.key
    if field == "manager":
        return partner.manager.email if partner.manager_id else ""
    if field == "product_lines":
        return "; ".join(value)
    if field == "external_ids":
        return "; ".join(f"{system}={ident}" for system, ident in value.items())
    return "" if value is None else value


def _csv_cell(partner: Partner, field: str):
    """The cell as written: text a spreadsheet would run as a formula gets a leading quote."""
    value = _cell(partner, field)
    return formula_safe(value) if isinstance(value, str) else value


class Command(TenantCommand):
    help = "Export a tenant's partners as CSV to standard output."

    def handle_tenant(self, tenant, *args, **options):
        writer = csv.writer(self.stdout, lineterminator="\n")
        writer.writerow(COLUMNS)
        partners = Partner.objects.with_listing_relations().order_by("name", "id")
        for partner in partners.iterator(chunk_size=2000):
            writer.writerow([_csv_cell(partner, field) for field in COLUMNS])
