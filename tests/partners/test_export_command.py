import csv
import io

import pytest
from django.core.management import CommandError, call_command

from partnerhub.tenancy.context import current_scope


def test_export_writes_only_the_named_tenants_partners(world):
    out = io.StringIO()
    call_command("export_partners", tenant="globex", stdout=out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [row["name"] for row in rows] == ["Globex Partner 1", "Globex Partner 2"]
    assert rows[0]["partner_type"] == "reseller"
    assert current_scope().tenant_id is None


def test_export_of_an_unknown_tenant_is_a_clear_error(world):
    with pytest.raises(CommandError, match="No tenant with slug"):
        call_command("export_partners", tenant="nope", stdout=io.StringIO())


def test_export_names_related_rows_and_joins_lists(world):
    from partnerhub.partners.services import partner_update
    from partnerhub.tenancy.context import tenant_scope

    with tenant_scope(world.a.tenant):
        partner_update(
            partner=world.a.partners[0],
            by=world.a.users["admin"],
            manager=world.a.users["partner_manager"],
            product_lines=["Cloud", "Analytics"],
            external_ids={"erp": "P-1"},
        )
    out = io.StringIO()
    call_command("export_partners", tenant="acme", stdout=out)
    row = next(csv.DictReader(io.StringIO(out.getvalue())))
    assert row["manager"] == "partner_manager@acme.test"
    assert row["product_lines"] == "Analytics; Cloud"
    assert row["external_ids"] == "erp=P-1"


def test_export_quotes_text_a_spreadsheet_would_run_as_a_formula(world):
    from partnerhub.tenancy.context import tenant_scope

    with tenant_scope(world.a.tenant):
        partner = world.a.partners[0]
        partner.name, partner.region, partner.hubspot_company_id = '=HYPERLINK("https://evil.example")', "@EMEA", "-42"
        partner.save()
    out = io.StringIO()
    call_command("export_partners", tenant="acme", stdout=out)
    row = next(row for row in csv.DictReader(io.StringIO(out.getvalue())) if row["id"] == str(partner.pk))
    assert row["name"] == '\'=HYPERLINK("https://evil.example")' and row["region"] == "'@EMEA"
    assert row["hubspot_company_id"] == "-42"  # a number, as it is
