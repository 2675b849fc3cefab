"""Large deal files upserted set-based on PostgreSQL: every problem by row and column, all or nothing."""

from __future__ import annotations

import datetime
import io
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from partnerhub.integrations.deal_copy import deals_copy_upsert, deals_file_import
from partnerhub.integrations.source_models import DataSource, Deal, PartnerMapping, PartnerMatch, SourceKind
from partnerhub.tenancy.context import tenant_scope
from partnerhub.tenancy.models import AuditEvent
from scorecards.models import MetricObservation

pytestmark = pytest.mark.postgres

HEADER = "external_id,partner,name,amount,currency,stage,closed,won,created_on,close_date\n"


def csv(*lines: str, header: str = HEADER) -> io.BytesIO:
    return io.BytesIO((header + "".join(f"{line}\n" for line in lines)).encode())


@pytest.fixture
def setting(world):
    with tenant_scope(world.a.tenant):
        first, second = world.a.partners
        first.salesforce_account_id = "001A0000001"
        first.save()
        source = DataSource.objects.create(
            name="Deal files", kind=SourceKind.FILE, partner_match=PartnerMatch.SALESFORCE_ACCOUNT_ID
        )
        PartnerMapping.objects.create(source=source, external_ref="LEGACY-7", partner=second)
        yield {"world": world, "source": source, "first": first, "second": second}


GOOD = (
    "D-1,001A0000001,Renewal,1200.50,usd,Closed Won,true,true,2026-07-01,2026-08-15",
    "D-2,LEGACY-7,New logo,300,USD,Negotiation,false,false,2026-07-02,",
    "D-3,001ZZZ,Unknown partner,99.99,EUR,Closed Lost,true,false,2026-07-03,2026-07-30",
)


def test_a_file_of_deals_is_stored_matched_and_counted(setting):
    result = deals_copy_upsert(file=csv(*GOOD), source=setting["source"])

    assert result.errors == []
    assert (result.rows, result.created, result.updated, result.unchanged, result.unmatched) == (3, 3, 0, 0, 1)
    deals = {deal.external_id: deal for deal in Deal.objects.filter(source=setting["source"])}
    assert deals["D-1"].partner == setting["first"] and deals["D-1"].amount == Decimal("1200.50")
    assert deals["D-1"].currency == "USD" and deals["D-1"].won and deals["D-1"].close_date == datetime.date(2026, 8, 15)
    assert deals["D-2"].partner == setting["second"]  # through the mapping
    assert deals["D-3"].partner is None and deals["D-3"].partner_ref == "001ZZZ"
    assert result.partner_ids == {setting["first"].pk, setting["second"].pk}
    assert datetime.date(2026, 8, 15) in result.days and datetime.date(2026, 7, 2) in result.days


def test_the_same_file_again_changes_nothing_and_a_change_is_one_update(setting):
    deals_copy_upsert(file=csv(*GOOD), source=setting["source"])
    again = deals_copy_upsert(file=csv(*GOOD), source=setting["source"])
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)
    assert again.partner_ids == set()

    moved = GOOD[0].replace("2026-08-15", "2026-10-02").replace("1200.50", "1300")
    changed = deals_copy_upsert(file=csv(moved, *GOOD[1:]), source=setting["source"])
    assert (changed.created, changed.updated, changed.unchanged) == (0, 1, 2)
    assert {datetime.date(2026, 8, 15), datetime.date(2026, 10, 2)} <= changed.days  # the old period too
    assert Deal.objects.get(external_id="D-1").amount == Decimal("1300.00")
    assert Deal.objects.filter(source=setting["source"]).count() == 3


def test_unreadable_values_name_their_row_and_column_and_nothing_is_written(setting):
    result = deals_copy_upsert(
        file=csv(GOOD[0], "D-2,x,Bad day,10,USD,Open,false,false,2026-13-01,"), source=setting["source"]
    )
    assert len(result.errors) == 1
    error = result.errors[0]
    assert (error.row, error.column) == (3, "created_on")
    assert error.message == "“2026-13-01” is not a day of the calendar."
    assert not Deal.objects.exists()


@pytest.mark.parametrize(
    ("line", "column", "advice"),
    [
        ('D-1,x,Amount,"1,200",USD,Open,false,false,2026-07-01,', "amount", "plain numbers"),
        ("D-1,x,Amount,$12,USD,Open,false,false,2026-07-01,", "amount", "plain numbers"),
        ("D-1,x,Flag,12,USD,Open,maybe,false,2026-07-01,", "closed", "true or false"),
        ("D-1,x,Day,12,USD,Lost,true,false,2026-07-01,01/08/2026", "close_date", "YYYY-MM-DD"),
    ],
)
def test_malformed_values_get_advice(setting, line, column, advice):
    result = deals_copy_upsert(file=csv(line), source=setting["source"])
    assert [(error.row, error.column) for error in result.errors] == [(2, column)]
    assert advice in result.errors[0].message
    assert not Deal.objects.exists()


def test_a_deal_named_twice_is_reported_on_its_second_row(setting):
    result = deals_copy_upsert(file=csv(GOOD[0], GOOD[1], GOOD[0]), source=setting["source"])
    assert [(error.row, error.column) for error in result.errors] == [(4, "external_id")]
    assert "appears earlier in the file" in result.errors[0].message
    assert not Deal.objects.exists()


def test_every_rule_a_type_cannot_hold_is_reported_by_row_and_column(setting):
    result = deals_copy_upsert(
        file=csv(
            ",x,No id,10,USD,Open,false,false,2026-07-01,",
            "D-2,x,Won but open,10,USD,Won,false,true,2026-07-01,",
            "D-3,x,Closed without a day,10,USD,Lost,true,false,2026-07-01,",
            "D-4,x,Negative,-5,USD,Open,false,false,2026-07-01,",
            "D-5,x,Bad currency,5,DOLLARS,Open,false,false,2026-07-01,",
            "D-6,x,Day first,5,USD,Lost,true,false,2026-07-10,10/07/2026",
            "D-7,x,No creation day,5,USD,Open,false,false,,",
        ),
        source=setting["source"],
    )
    assert [(error.row, error.column) for error in result.errors] == [
        (2, "external_id"),
        (3, "won"),
        (4, "close_date"),
        (5, "amount"),
        (6, "currency"),
        (7, "close_date"),
        (8, "created_on"),
    ]
    assert not Deal.objects.exists()
    assert result.errors[5].message == "Write dates as YYYY-MM-DD, e.g. 2026-07-01."


def test_a_close_before_the_creation_is_refused(setting):
    result = deals_copy_upsert(
        file=csv("D-6,x,Closed before created,5,USD,Lost,true,false,2026-07-10,2026-07-01"), source=setting["source"]
    )
    assert [(error.row, error.column, error.message) for error in result.errors] == [
        (2, "close_date", "The close date is before the creation date.")
    ]


def test_a_header_that_is_not_the_template_is_refused(setting):
    result = deals_copy_upsert(file=csv(GOOD[0], header="id,partner,name\n"), source=setting["source"])
    assert len(result.errors) == 1 and result.errors[0].row == 1
    assert not Deal.objects.exists()


def test_text_that_is_not_utf8_is_refused_with_its_row(setting):
    latin = HEADER.encode() + "D-1,x,Café,10,USD,Open,false,false,2026-07-01,\n".encode("latin-1")
    result = deals_copy_upsert(file=io.BytesIO(latin), source=setting["source"])
    assert [(error.row, error.message) for error in result.errors] == [
        (2, "This row is not UTF-8 text: save the file as “CSV UTF-8” and upload it again.")
    ]
    assert not Deal.objects.exists()


def test_a_utf16_file_is_refused_as_not_utf8(setting):
    data = (HEADER + GOOD[0] + "\n").encode("utf-16")
    result = deals_copy_upsert(file=io.BytesIO(data), source=setting["source"])
    assert len(result.errors) == 1 and "not UTF-8 text" in result.errors[0].message
    assert not Deal.objects.exists()


@pytest.mark.parametrize(
    "header",
    [
        "external_id,partner,name,amount,currency,stage,closed,won,created_on\n",  # a column missing
        HEADER.replace("\n", ",notes\n"),  # a column too many
        HEADER.replace("partner,name", "name,partner"),  # the right columns out of order
    ],
)
def test_a_header_other_than_the_template_names_the_columns_expected(setting, header):
    result = deals_copy_upsert(file=csv(GOOD[0], header=header), source=setting["source"])
    assert [(error.row, error.message) for error in result.errors] == [
        (
            1,
            "The first row must name the template's columns, in order: "
            "external_id, partner, name, amount, currency, stage, closed, won, created_on, close_date.",
        )
    ]
    assert not Deal.objects.exists()


def test_a_row_with_too_few_cells_is_named(setting):
    result = deals_copy_upsert(file=csv(GOOD[0], "D-9,x,Short,10,USD"), source=setting["source"])
    assert [(error.row, error.message) for error in result.errors] == [
        (3, "This row does not have the 10 cells of the header; check its commas.")
    ]
    assert not Deal.objects.exists()


def test_a_byte_order_mark_is_read_past(setting):
    data = b"\xef\xbb\xbf" + (HEADER + GOOD[0] + "\n").encode()
    result = deals_copy_upsert(file=io.BytesIO(data), source=setting["source"])
    assert result.errors == [] and result.created == 1


def test_a_file_with_no_rows_is_refused(setting):
    result = deals_copy_upsert(file=csv(), source=setting["source"])
    assert [error.message for error in result.errors] == ["The file has a header but no rows."]


def test_another_tenants_deals_with_the_same_ids_are_their_own(setting):
    deals_copy_upsert(file=csv(*GOOD), source=setting["source"])
    world = setting["world"]
    with tenant_scope(world.b.tenant):
        source = DataSource.objects.create(name="Deal files", kind=SourceKind.FILE)
        result = deals_copy_upsert(file=csv(*GOOD), source=source)
        assert (result.created, result.unmatched) == (3, 3)
        assert Deal.objects.filter(external_id="D-1").count() == 1
    assert Deal.objects.filter(external_id="D-1").count() == 1
    assert Deal.objects.get(external_id="D-1").partner == setting["first"]


def _tenant_slug(setting) -> str:
    return setting["world"].a.tenant.slug


def test_importing_a_deal_file_derives_the_partners_metrics_and_audits_once(setting):

    result = deals_file_import(file=csv(*GOOD), source=setting["source"], name="export.csv")

    assert (result.created, result.unmatched) == (3, 1)
    derived = MetricObservation.objects.filter(source_ref__startswith="file:export.csv:")
    assert result.observations_written > 0 and derived.count() == result.observations_written
    assert set(derived.values_list("partner_id", flat=True)) == {setting["first"].pk, setting["second"].pk}
    event = AuditEvent.objects.get(verb="deals.file_imported")
    assert event.changes["created"] == [None, 3]
    assert event.changes["observations"] == [None, result.observations_written]

    again = deals_file_import(file=csv(*GOOD), source=setting["source"], name="export.csv")
    assert (again.created, again.updated, again.observations_written) == (0, 0, 0)
    assert AuditEvent.objects.filter(verb="deals.file_imported").count() == 1


def test_a_deal_file_with_a_problem_imports_nothing(setting):

    before = MetricObservation.objects.count()
    result = deals_file_import(file=csv(GOOD[0], GOOD[1].replace("300", "-300")), source=setting["source"])
    assert [(error.row, error.column) for error in result.errors] == [(3, "amount")]
    assert not Deal.objects.exists() and MetricObservation.objects.count() == before


def test_deal_files_go_to_file_sources_only(setting):

    pushed = DataSource.objects.create(name="Pushed", kind=SourceKind.API)
    with pytest.raises(ValidationError, match="deal files go to a file source"):
        deals_file_import(file=csv(*GOOD), source=pushed)
    assert not Deal.objects.exists()


def test_the_import_command_reports_counts_and_problems(setting, tmp_path):
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text(HEADER + "\n".join(GOOD) + "\n", encoding="utf-8")
    bad.write_text(HEADER + GOOD[0].replace("2026-07-01", "2026-02-30") + "\n", encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    slug = _tenant_slug(setting)

    call_command("import_deals", str(good), tenant=slug, source="Deal files", stdout=out)
    assert "3 deals read: 3 created, 0 updated, 0 unchanged, 1 without a partner yet" in out.getvalue()

    with pytest.raises(CommandError, match="1 problem"):
        call_command("import_deals", str(bad), tenant=slug, source=str(setting["source"].pk), stderr=err)
    assert "row 2, created_on: “2026-02-30” is not a day of the calendar." in err.getvalue()
    with pytest.raises(CommandError, match="no file data source “Elsewhere”"):
        call_command("import_deals", str(good), tenant=slug, source="Elsewhere")
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("import_deals", str(tmp_path / "missing.csv"), tenant=slug, source="Deal files")
    assert Deal.objects.filter(source=setting["source"]).count() == 3


def test_another_tenant_cannot_import_into_a_source_it_does_not_own(setting, tmp_path):
    good = tmp_path / "good.csv"
    good.write_text(HEADER + GOOD[0] + "\n", encoding="utf-8")
    other = setting["world"].b.tenant.slug
    with pytest.raises(CommandError, match="no file data source"):
        call_command("import_deals", str(good), tenant=other, source=str(setting["source"].pk))
    assert not Deal.objects.exists()
