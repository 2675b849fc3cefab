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
