"""Files of deals and marketing facts: checked row by row, recorded atomically into the file-upload source, once."""

from __future__ import annotations

import datetime
import io
from decimal import Decimal

import openpyxl
import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from partnerhub.integrations.marketing import marketing_bulk_record
from partnerhub.integrations.models import Upload, UploadKind, UploadStatus
from partnerhub.integrations.source_models import DataSource, Deal, MarketingFact, PartnerMapping, SourceKind
from partnerhub.integrations.uploads import (
    FILE_SOURCE_NAME,
    facts_import,
    file_upload_source,
    upload_commit_request,
    upload_receive,
    upload_recomputes,
)
from partnerhub.tenancy.context import tenant_scope
from partnerhub.tenancy.models import AuditEvent
from scorecards.models import MetricObservation, ObservationSource
from tests.factories import MembershipFactory, PartnerFactory, TenantFactory

D = datetime.date

# Two deals of partner 1 (one won in FY2026-Q3, one open), one of partner 2 named by its id, and one
# whose partner nobody knows yet (kept, unmatched).
DEALS = """external_id,partner,partner_id,name,amount,currency,stage,closed,won,created_on,close_date,deleted
D-1,Acme Partner 1,,Renewal,1000.50,USD,Closed won,true,true,2026-07-02,2026-08-14,
D-2,acme partner 1,,New logo,500,USD,Proposal,false,false,2026-07-03,,
D-3,,{second},Expansion,250,usd,Closed lost,TRUE,FALSE,2026-07-04,2026-09-01,
D-4,Reseller Nine,,Unknown partner,75,USD,Discovery,,,2026-08-01,,
"""

MARKETING = """external_id,partner,kind,occurred_on,quantity,currency,campaign
M-1,Acme Partner 1,mql,2026-07-01,3,,Webinar
M-2,Acme Partner 1,campaign_pipeline,2026-08-15,2500.50,USD,Webinar
M-3,Acme Partner 2,event_attended,2026-09-02,,,Partner summit
M-4,Reseller Nine,mql,2026-09-03,1,,Webinar
"""


def deals_file(world_tenant) -> str:
    return DEALS.format(second=world_tenant.partners[1].pk)


def value(partner, key: str, period: str = "FY2026-Q3") -> Decimal | None:
    row = MetricObservation.objects.current().filter(partner=partner, metric__key=key, period=period).first()
    return None if row is None else row.value


def problems(upload: Upload) -> list[tuple[int | None, str, str]]:
    return [(error["row"], error["column"], error["message"]) for error in upload.check_report["errors"]]


def workbook(rows: list[list], *, title: str = "Deals") -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = title
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# --- Deals --------------------------------------------------------------------------------------------------


def test_a_deals_file_is_checked_without_writing_and_says_what_recording_would_do(in_a, receive):
    upload = receive(deals_file(in_a), kind=UploadKind.DEALS)
    assert upload.status == UploadStatus.CHECKED, upload.check_report
    source = DataSource.objects.get(kind=SourceKind.FILE)
    assert upload.check_report == {
        "rows": 4,
        "created": 4,
        "updated": 0,
        "unchanged": 0,
        "deleted": 0,
        "unmatched": 1,
        "unmatched_refs": [{"ref": "Reseller Nine", "rows": 1}],
        "unmatched_refs_total": 1,
        "observations": 0,
        "periods": ["FY2026-Q3"],
        "source": {"id": source.pk, "name": FILE_SOURCE_NAME},
        "source_ref": f"upload:sha256:{upload.sha256}",
        "errors": [],
        "notes": [],
    }
    assert (upload.rows_done, upload.rows_total) == (4, 4)
    assert not Deal.objects.exists() and not AuditEvent.objects.filter(verb="deals.bulk_recorded").exists()


def test_recording_a_deals_file_upserts_into_the_file_source_keeps_the_unmatched_and_derives_metrics(
    in_a, receive, commit
):
    first, second = in_a.partners
    upload = commit(receive(deals_file(in_a), kind=UploadKind.DEALS))
    assert upload.status == UploadStatus.COMMITTED, (upload.error, upload.commit_report)
    report = upload.commit_report
    assert (report["created"], report["updated"], report["unchanged"], report["unmatched"]) == (4, 0, 0, 1)
    assert report["observations"] > 0 and report["periods"] == ["FY2026-Q3"]
    source = DataSource.objects.get()
    assert (source.name, source.kind, source.schedule_minutes) == ("File uploads", SourceKind.FILE, 0)
    stored = {deal.external_id: deal for deal in Deal.objects.all()}
    assert {deal.source_id for deal in stored.values()} == {source.pk}
    assert {deal.upload_id for deal in stored.values()} == {upload.pk}
    assert stored["D-1"].partner == first and stored["D-1"].won and stored["D-1"].amount == Decimal("1000.50")
    assert stored["D-1"].partner_ref == "Acme Partner 1" and stored["D-2"].partner == first  # names ignore case
    assert stored["D-3"].partner == second and stored["D-3"].closed and not stored["D-3"].won
    assert stored["D-3"].currency == "USD" and stored["D-2"].close_date is None
    assert stored["D-4"].partner is None and stored["D-4"].partner_ref == "Reseller Nine"  # kept, unmatched
    assert value(first, "revenue_won") == Decimal("1000.50")
    assert value(first, "pipeline_created") == Decimal("1500.50")
    assert value(second, "deals_closed") == 1 and value(second, "win_rate") == 0
    derived = MetricObservation.objects.current().get(partner=first, metric__key="revenue_won", period="FY2026-Q3")
    assert derived.source == ObservationSource.DERIVED and derived.source_ref == f"upload:sha256:{upload.sha256}"
    [event] = AuditEvent.objects.filter(verb="deals.bulk_recorded")
    assert (event.actor, event.target_type, event.target_id) == (
        in_a.users["admin"],
        "integrations.datasource",
        str(source.pk),
    )
    assert event.changes["created"] == [None, 4] and event.changes["unmatched"] == [None, 1]
    assert {run.period for run in upload_recomputes(upload)} == {"FY2026-Q3"}


def test_the_same_deals_file_twice_adds_nothing(in_a, receive, commit):
    commit(receive(deals_file(in_a), kind=UploadKind.DEALS))
    deals_before = list(Deal.objects.order_by("pk").values_list("pk", "modified_at"))
    observations_before = MetricObservation.objects.count()
    again = receive(deals_file(in_a), kind=UploadKind.DEALS, name="facts (1).csv")
    assert again.check_report["created"] == 0 and again.check_report["unchanged"] == 4
    assert again.check_report["unmatched"] == 1 and again.check_report["periods"] == []
    again = commit(again)
    assert again.status == UploadStatus.COMMITTED
    assert (again.commit_report["created"], again.commit_report["updated"], again.commit_report["observations"]) == (
        0,
        0,
        0,
    )
    assert list(Deal.objects.order_by("pk").values_list("pk", "modified_at")) == deals_before
    assert MetricObservation.objects.count() == observations_before
    assert AuditEvent.objects.filter(verb="deals.bulk_recorded").count() == 1


def test_a_changed_row_updates_its_deal_and_a_deleted_one_leaves_the_metrics(in_a, receive, commit):
    first = in_a.partners[0]
    commit(receive(deals_file(in_a), kind=UploadKind.DEALS))
    changed = (
        "external_id,partner,amount,currency,closed,won,created_on,close_date,deleted\n"
        "D-1,Acme Partner 1,2000,USD,true,true,2026-07-02,2026-08-14,\n"
        "D-2,,,,,,,,yes\n"
    )
    checked = receive(changed, kind=UploadKind.DEALS, name="changes.csv")
    assert checked.status == UploadStatus.CHECKED, checked.check_report["errors"]
    upload = commit(checked)
    report = upload.commit_report
    assert (report["created"], report["updated"], report["deleted"], report["unchanged"]) == (0, 1, 1, 0)
    assert Deal.objects.get(external_id="D-1").amount == Decimal("2000.00")
    assert Deal.objects.get(external_id="D-2").deleted_at is not None
    assert value(first, "revenue_won") == Decimal("2000.00")
    assert value(first, "pipeline_created") == Decimal("2000.00")


def test_every_problem_of_a_deals_file_is_named_by_row_and_column_and_nothing_is_written(in_a, receive):
    text = (
        "external_id,partner,partner_id,amount,currency,closed,won,created_on,close_date\n"
        "D-1,Acme Partner 1,,1000,USD,true,true,2026-07-02,2026-08-14\n"  # row 2: fine
        ",Acme Partner 1,,10,USD,,,2026-07-02,\n"  # row 3: no id
        "D-3,Acme Partner 1,,1.000,50,EUR,,,2026-07-02,\n"  # row 4: one value too many
        "D-4,Acme Partner 1,,ten,USD,maybe,,01/07/2026,\n"  # row 5
        "D-5,,abc,10,USD,false,true,2026-07-02,\n"  # row 6
        "D-6,,999999,10,,true,,2026-07-02,\n"  # row 7
        "D-1,Acme Partner 2,,10,USD,,,2026-07-02,\n"  # row 8: repeats row 2
        "D-8,,,10,USD,,,2099-01-01,\n"  # row 9
    )
    upload = receive(text, kind=UploadKind.DEALS)
    assert upload.status == UploadStatus.INVALID
    assert problems(upload) == [
        (3, "external_id", "Give the deal's id in your system (at most 64 characters)."),
        (4, "", "This row has 10 values; the header names 9 columns."),
        (5, "amount", "“ten” is not a number. Give the amount as a number, like 1234.50 (a dot for decimals, "
         "no thousands separators)."),
        (5, "closed", "“maybe” is not true or false; write true or false (or leave it empty)."),
        (5, "created_on", "Give the date as YYYY-MM-DD, e.g. 2026-07-01."),
        (6, "partner_id", "“abc” is not a partner id; ids are whole numbers."),
        (6, "won", "A won deal is closed: send closed: true, or leave closed out."),
        (6, "close_date", "A closed deal needs its close date, as YYYY-MM-DD."),
        (7, "partner_id", "There is no partner with the id 999999."),
        (7, "currency", "Give the amount's currency as a three-letter code, like EUR."),
        (7, "close_date", "A closed deal needs its close date, as YYYY-MM-DD."),
        (8, "external_id", "Repeats row 2: each deal appears once per file."),
        (9, "partner", "Name the partner (its name, HubSpot or Salesforce id), or give its partner_id."),
        (9, "created_on", "2099-01-01 is in the future; a deal is created on or before today."),
    ]  # fmt: skip
    with pytest.raises(ValidationError, match="it has problems to fix first"):
        upload_commit_request(upload=upload, by=in_a.users["admin"])
    assert not Deal.objects.exists() and not AuditEvent.objects.filter(verb="deals.bulk_recorded").exists()


def test_one_bad_row_means_nothing_is_written_even_when_the_data_changed_after_the_check(in_a, receive, commit):
    short_lived = PartnerFactory(name="Short-lived Partner")
    text = deals_file(in_a) + f"D-5,,{short_lived.pk},Last,10,USD,Open,false,false,2026-07-05,,\n"
    upload = receive(text, kind=UploadKind.DEALS)
    assert upload.status == UploadStatus.CHECKED
    gone = short_lived.pk
    short_lived.delete()  # the partner row 6 names by id is gone before the recording
    upload = commit(upload)
    assert upload.status == UploadStatus.INVALID
    assert upload.error.startswith("The file no longer passes its check")
    assert problems(upload) == [(6, "partner_id", f"There is no partner with the id {gone}.")]
    assert not Deal.objects.exists() and not MetricObservation.objects.filter(source="derived").exists()


def test_a_deals_workbook_reads_dates_numbers_and_flags_from_its_cells(in_a, receive, commit):
    first = in_a.partners[0]
    midnight = datetime.datetime(2026, 8, 14)  # noqa: DTZ001 - a spreadsheet's date cells are naive
    content = workbook(
        [
            ["external_id", "partner", "amount", "currency", "closed", "won", "created_on", "close_date"],
            [1001, "Acme Partner 1", 1234.56, "USD", True, True, D(2026, 7, 2), midnight],
            ["D-2", "Acme Partner 1", 0.1, "USD", False, False, D(2026, 7, 3), None],
        ]
    )
    upload = commit(receive(content, kind=UploadKind.DEALS, name="deals.xlsx"))
    assert upload.status == UploadStatus.COMMITTED, upload.check_report
    assert upload.check_report["notes"] == ["Read the first sheet, “Deals”."]
    stored = {deal.external_id: deal for deal in Deal.objects.all()}
    assert stored["1001"].amount == Decimal("1234.56") and stored["1001"].close_date == D(2026, 8, 14)
    assert stored["D-2"].amount == Decimal("0.10") and not stored["D-2"].closed
    assert value(first, "revenue_won") == Decimal("1234.56")


def test_a_mapping_of_the_file_source_names_the_partner_before_names_do(in_a, receive, commit):
    second = in_a.partners[1]
    PartnerMapping.objects.create(source=file_upload_source(), external_ref="Acme Partner 1", partner=second)
    commit(receive(deals_file(in_a), kind=UploadKind.DEALS))
    assert Deal.objects.get(external_id="D-1").partner == second


def test_a_name_matching_two_partners_asks_for_the_partner_id(in_a, receive):
    PartnerFactory(name="Twin", hubspot_company_id="555")
    PartnerFactory(name="555")
    text = "external_id,partner,created_on\nD-1,555,2026-07-01\n"
    upload = receive(text, kind=UploadKind.DEALS)
    assert problems(upload) == [(2, "partner", "“555” matches more than one partner; use the partner_id column.")]


def test_the_header_of_a_deals_file_must_name_its_columns(in_a, receive):
    upload = receive("external_id,name,created_on\nD-1,x,2026-07-01\n", kind=UploadKind.DEALS)
    [(row, column, message)] = problems(upload)
    assert (row, column) == (1, "") and message.startswith("Missing column: partner. The columns are external_id")
    upload = receive("external_id,partner,created_on,colour\nD-1,x,2026-07-01,red\n", kind=UploadKind.DEALS)
    assert problems(upload)[0][2].startswith("Unknown column “colour”")


def test_a_file_source_that_is_switched_off_receives_nothing(in_a, receive):
    DataSource.objects.create(name=FILE_SOURCE_NAME, kind=SourceKind.FILE, schedule_minutes=0, is_active=False)
    for kind, content in ((UploadKind.DEALS, deals_file(in_a)), (UploadKind.MARKETING, MARKETING)):
        upload = receive(content, kind=kind)
        assert upload.status == UploadStatus.INVALID
        assert problems(upload) == [(None, "", "File uploads is switched off; switch it on to receive facts.")]


def test_a_source_of_another_kind_holding_the_name_is_named_in_the_report(in_a, receive):
    DataSource.objects.create(name=FILE_SOURCE_NAME, kind=SourceKind.API, schedule_minutes=0)
    upload = receive(deals_file(in_a), kind=UploadKind.DEALS)
    assert upload.status == UploadStatus.INVALID
    assert problems(upload)[0][2].startswith("The data source name “File uploads” is taken by a source of another")


def test_the_deal_row_limit_is_named(in_a, receive):
    rows = "".join(f"D-{n},Acme Partner 1,2026-07-01\n" for n in range(5_001))
    upload = receive("external_id,partner,created_on\n" + rows, kind=UploadKind.DEALS)
    assert problems(upload) == [(None, "", "The file has more than 5,000 rows; split it into smaller files.")]


# --- Marketing facts --------------------------------------------------------------------------------------------


def test_a_marketing_file_is_recorded_into_the_file_source_and_its_metrics_derived(in_a, receive, commit):
    first, second = in_a.partners
    upload = receive(MARKETING, kind=UploadKind.MARKETING)
    assert upload.status == UploadStatus.CHECKED, upload.check_report
    assert (upload.check_report["created"], upload.check_report["unmatched"]) == (4, 1)
    assert not MarketingFact.objects.exists()
    upload = commit(upload)
    assert upload.status == UploadStatus.COMMITTED
    facts = {fact.external_id: fact for fact in MarketingFact.objects.all()}
    assert {fact.source.kind for fact in facts.values()} == {SourceKind.FILE}
    assert {fact.upload_id for fact in facts.values()} == {upload.pk}
    assert facts["M-3"].quantity == 1 and facts["M-2"].currency == "USD"
    assert facts["M-4"].partner is None and facts["M-4"].partner_ref == "Reseller Nine"
    assert value(first, "mqls_generated") == 3
    assert value(first, "campaign_influenced_pipeline") == Decimal("2500.50")
    assert value(second, "joint_marketing_events") == 1
    [event] = AuditEvent.objects.filter(verb="marketing.bulk_recorded")
    assert event.changes["created"] == [None, 4] and event.changes["unmatched"] == [None, 1]
    assert event.changes["source_ref"] == [None, f"upload:sha256:{upload.sha256}"]
    assert upload.commit_report["unmatched_refs"] == [{"ref": "Reseller Nine", "rows": 1}]


def test_the_same_marketing_file_twice_adds_nothing(in_a, receive, commit):
    commit(receive(MARKETING, kind=UploadKind.MARKETING))
    facts_before = list(MarketingFact.objects.order_by("pk").values_list("pk", "quantity"))
    observations_before = MetricObservation.objects.count()
    again = commit(receive(MARKETING, kind=UploadKind.MARKETING, name="again.csv"))
    assert (again.commit_report["created"], again.commit_report["unchanged"]) == (0, 4)
    assert list(MarketingFact.objects.order_by("pk").values_list("pk", "quantity")) == facts_before
    assert MetricObservation.objects.count() == observations_before
    assert AuditEvent.objects.filter(verb="marketing.bulk_recorded").count() == 1


def test_every_problem_of_a_marketing_file_is_named_and_nothing_is_written(in_a, receive):
    text = (
        "external_id,partner,kind,occurred_on,quantity,currency\n"
        "M-1,Acme Partner 1,mql,2026-07-01,2,\n"  # row 2: fine
        "M-2,Acme Partner 1,lead,2026-07-01,1,\n"  # row 3
        "M-3,Acme Partner 1,mql,2026-07-01,2.5,\n"  # row 4
        "M-4,Acme Partner 1,campaign_pipeline,2026-07-01,,\n"  # row 5
        "M-5,Acme Partner 1,event_attended,2099-07-01,-1,\n"  # row 6
        "M-6,Acme Partner 1,mql,2026-07-01 10:30,1,EURO\n"  # row 7: a date and time reads as its day
    )
    upload = receive(text, kind=UploadKind.MARKETING)
    assert upload.status == UploadStatus.INVALID
    assert problems(upload) == [
        (3, "kind", "“lead” is not a kind of marketing fact; give mql, campaign_pipeline, event_attended."),
        (4, "quantity", "2.5 is not a whole number; count mql facts in whole numbers."),
        (5, "quantity", "Give the pipeline amount, like 25000 (a dot for decimals)."),
        (5, "currency", "Give the amount's currency as a three-letter code, like EUR."),
        (6, "occurred_on", "2099-07-01 is in the future; record what has happened."),
        (6, "quantity", "A quantity cannot be negative."),
        (7, "currency", "Give the currency as a three-letter code, like EUR."),
    ]
    assert not MarketingFact.objects.exists()


def test_a_marketing_workbook_is_read_from_its_first_sheet(in_a, receive, commit):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Facts"
    sheet.append(["external_id", "partner", "kind", "occurred_on", "quantity"])
    sheet.append(["M-1", "Acme Partner 1", "mql", D(2026, 7, 1), 4])
    book.create_sheet("Notes").append(["not read"])
    out = io.BytesIO()
    book.save(out)
    upload = commit(receive(out.getvalue(), kind=UploadKind.MARKETING, name="facts.xlsx"))
    assert upload.status == UploadStatus.COMMITTED
    assert upload.commit_report["notes"] == ["Read the first sheet, “Facts”. Not read: “Notes”."]
    assert value(in_a.partners[0], "mqls_generated") == 4


def test_marketing_bulk_record_takes_items_like_the_deals_and_refuses_crm_sources(in_a):
    first = in_a.partners[0]
    items = [
        {"external_id": "A-1", "partner": first.pk, "kind": "mql", "occurred_on": "2026-07-01", "quantity": 2},
        {"external_id": "A-2", "partner_ref": "nobody", "kind": "event_attended", "occurred_on": "2026-07-01"},
        "not an object",
    ]
    result = marketing_bulk_record(items=items, by=in_a.users["admin"], atomic=False)
    assert result.statuses == ["created", "unmatched", "invalid"] and result.written
    assert [(error.index, error.field) for error in result.errors] == [(2, "non_field_errors")]
    assert result.source.kind == SourceKind.API and value(first, "mqls_generated") == 2
    again = marketing_bulk_record(items=items[:2], by=in_a.users["admin"])
    assert again.statuses == ["unchanged", "unmatched"] and again.observations_written == 0
    crm = DataSource.objects.create(name="CRM", kind=SourceKind.HUBSPOT)
    with pytest.raises(ValidationError, match="marketing facts are received by file-upload and API-push sources"):
        marketing_bulk_record(items=items[:1], by=None, source=crm)


def test_another_tenants_partner_id_is_unknown_in_a_fact_file(world, in_a, receive):
    theirs = world.b.partners[0].pk
    upload = receive(f"external_id,partner_id,kind,occurred_on\nM-1,{theirs},mql,2026-07-01\n", kind="marketing")
    assert problems(upload) == [(2, "partner_id", f"There is no partner with the id {theirs}.")]
    with tenant_scope(world.b.tenant):
        assert not MarketingFact.objects.exists()


def test_each_tenant_records_into_its_own_file_source(world, django_capture_on_commit_callbacks):
    for tenant_world in (world.a, world.b):
        with tenant_scope(tenant_world.tenant):
            with django_capture_on_commit_callbacks(execute=True):
                upload = upload_receive(
                    file=SimpleUploadedFile("m.csv", MARKETING.replace("Acme", tenant_world.tenant.name).encode()),
                    by=tenant_world.users["admin"],
                    kind=UploadKind.MARKETING,
                )
            with django_capture_on_commit_callbacks(execute=True):
                upload_commit_request(upload=upload, by=tenant_world.users["admin"])
    for tenant_world in (world.a, world.b):
        with tenant_scope(tenant_world.tenant):
            source = DataSource.objects.get(kind=SourceKind.FILE)
            assert MarketingFact.objects.filter(source=source).count() == 4
            assert set(MarketingFact.objects.values_list("tenant_id", flat=True)) == {tenant_world.tenant.pk}


# --- Progress --------------------------------------------------------------------------------------------------


def many_deals(count: int) -> str:
    rows = "".join(f"D-{n},Acme Partner 1,{n},USD,2026-07-01\n" for n in range(count))
    return "external_id,partner,amount,currency,created_on\n" + rows


def test_a_fact_file_reports_its_progress_every_few_hundred_rows(in_a):
    upload = Upload.objects.create(
        kind=UploadKind.DEALS,
        file_name="many.csv",
        size=1,
        sha256="0" * 64,
        content=many_deals(600).encode(),
        status=UploadStatus.CHECKING,
    )
    checked, recorded = [], []
    result = facts_import(upload=upload, by=None, dry_run=True, progress=lambda *step: checked.append(step))
    assert result.errors == [] and result.created == 600
    assert checked == [(0, 600), (250, 600), (500, 600), (600, 600)]
    result = facts_import(upload=upload, by=None, dry_run=False, progress=lambda *step: recorded.append(step))
    assert result.created == 600 and recorded[0] == (0, 1200) and recorded[-1] == (1200, 1200)


@pytest.fixture
def committed_tenant(_owner_role_for_flush, transactional_db):
    """A tenant with a partner, committed, so that the progress connection sees its rows."""
    from partnerhub.tenancy import rls

    tenant = TenantFactory(slug="initech", name="Initech")
    with tenant_scope(tenant):
        PartnerFactory(name="Acme Partner 1")
        admin = MembershipFactory(tenant=tenant, role="admin", user__email="admin@initech.test").user
    yield tenant, admin
    if connection.vendor == "postgresql":
        rls.release_app_role()


def test_a_fact_file_is_checked_and_recorded_end_to_end_with_its_progress_stored(committed_tenant):
    """As in production: every step commits, and progress goes through its own connection."""
    tenant, admin = committed_tenant
    with tenant_scope(tenant):
        upload = upload_receive(file=SimpleUploadedFile("many.csv", many_deals(600).encode()), by=admin, kind="deals")
        upload.refresh_from_db()
        assert upload.status == UploadStatus.CHECKED and (upload.rows_done, upload.rows_total) == (600, 600)
        upload = upload_commit_request(upload=upload, by=admin)
        upload.refresh_from_db()
        assert upload.status == UploadStatus.COMMITTED and (upload.rows_done, upload.rows_total) == (600, 600)
        assert Deal.objects.filter(upload=upload).count() == 600
