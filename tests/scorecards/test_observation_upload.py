"""CSV uploads of observations: row-level errors, all or nothing, idempotent, encodings and limits."""

from __future__ import annotations

import io
from decimal import Decimal

import openpyxl
import pytest

from partnerhub.partners.models import Partner
from partnerhub.tenancy.context import tenant_scope
from partnerhub.tenancy.models import AuditEvent
from scorecards.models import MetricObservation, ObservationSource
from scorecards.services import observations
from scorecards.services.observations import observation_record, observations_import_csv
from tests.factories import PartnerFactory

GOOD = """partner,metric,period,value,note
Acme Partner 1,revenue_won,FY2026-Q2,184500,From the CRM export
Acme Partner 1,win_rate,FY2026-Q2,0.31,
Acme Partner 2,revenue_won,FY2026-Q2,92000.50,
"""


@pytest.fixture
def in_a(world):
    with tenant_scope(world.a.tenant):
        yield world.a


@pytest.fixture
def recompute_calls(in_a):
    """(period, reason) of each recompute run asked for since the test began, oldest first."""
    from scorecards.models import RecomputeRun

    before = set(RecomputeRun.objects.values_list("pk", flat=True))

    def requested() -> list[tuple[str, str]]:
        runs = RecomputeRun.objects.exclude(pk__in=before).order_by("queued_at", "pk")
        return [(run.period, run.reason) for run in runs]

    return requested


def upload(world_tenant, text: str | bytes, *, dry_run: bool = False, encoding: str = "utf-8"):
    data = text.encode(encoding) if isinstance(text, str) else text
    return observations_import_csv(file=io.BytesIO(data), by=world_tenant.users["admin"], dry_run=dry_run)


def uploaded() -> list[tuple[str, str, str, Decimal]]:
    return sorted(
        MetricObservation.objects.filter(source=ObservationSource.UPLOAD)
        .exclude(source_ref="world")
        .values_list("partner__name", "metric__key", "period", "value")
    )


def problems(result) -> list[tuple[int | None, str, str]]:
    return [(error.position, error.field, error.message) for error in result.errors]


def test_a_good_file_records_every_row(in_a):
    result = upload(in_a, GOOD)
    assert result.errors == [] and result.written
    assert (result.rows, result.created, result.unchanged, result.periods) == (3, 3, 0, ["FY2026-Q2"])
    assert uploaded() == [
        ("Acme Partner 1", "revenue_won", "FY2026-Q2", Decimal("184500")),
        ("Acme Partner 1", "win_rate", "FY2026-Q2", Decimal("0.31")),
        ("Acme Partner 2", "revenue_won", "FY2026-Q2", Decimal("92000.5")),
    ]
    rows = MetricObservation.objects.filter(source=ObservationSource.UPLOAD).exclude(source_ref="world")
    assert {row.source_ref for row in rows} == {result.source_ref}
    assert result.source_ref.startswith("upload:sha256:")


def test_a_file_writes_one_audit_event_naming_its_count_periods_and_source(in_a):
    result = upload(in_a, GOOD + "Acme Partner 2,win_rate,FY2026-Q1,0.2\n")
    assert not AuditEvent.objects.filter(verb="observation.recorded").exists()
    event = AuditEvent.objects.get(verb="observations.imported")
    assert event.actor == in_a.users["admin"]
    assert (event.target_type, event.target_id) == ("tenancy.tenant", str(in_a.tenant.pk))
    assert event.changes == {
        "observations": [None, 4],
        "replaced": [None, 0],
        "unchanged": [None, 0],
        "periods": [None, ["FY2026-Q1", "FY2026-Q2"]],
        "source": [None, "upload"],
        "source_ref": [None, result.source_ref],
        "notes": [None, ["Acme Partner 1 · revenue_won · FY2026-Q2: From the CRM export"]],
    }


def test_a_changed_file_names_the_values_it_replaced_and_a_repeated_one_writes_no_event(in_a):
    upload(in_a, GOOD)
    upload(in_a, GOOD)
    assert AuditEvent.objects.filter(verb="observations.imported").count() == 1
    upload(in_a, GOOD.replace("92000.50", "93000"))
    latest = AuditEvent.objects.filter(verb="observations.imported").order_by("-pk").first()
    assert (latest.changes["observations"], latest.changes["replaced"], latest.changes["unchanged"]) == (
        [None, 1],
        [None, 1],
        [None, 2],
    )


def test_an_import_names_the_stored_upload_it_came_from_when_given(in_a):
    partner = in_a.partners[1]
    observations_import_csv(file=GOOD.encode(), by=in_a.users["admin"], audit_target=partner)
    event = AuditEvent.objects.get(verb="observations.imported")
    assert (event.target_type, event.target_id) == ("partners.partner", str(partner.pk))


def many_rows(count_months: int = 60) -> str:
    """Two partners, five metrics and ``count_months`` months: ten rows per month."""
    lines = ["partner,metric,period,value"]
    for month in range(count_months):
        period = f"FY{2021 + month // 12}-M{month % 12 + 1:02d}"
        for partner in ("Acme Partner 1", "Acme Partner 2"):
            for key in ("revenue_won", "deals_won", "deals_registered", "pipeline_created", "new_customers"):
                lines.append(f"{partner},{key},{period},{month + 1}")
    return "\n".join(lines) + "\n"


def test_a_dry_run_reports_its_progress_every_few_hundred_rows(in_a):
    calls = []
    result = observations_import_csv(
        file=many_rows().encode(), by=None, dry_run=True, progress=lambda done, total: calls.append((done, total))
    )
    assert result.errors == [] and result.created == 600
    assert calls == [(0, 600), (250, 600), (500, 600), (600, 600)]


def test_a_recorded_file_counts_each_row_when_checked_and_again_when_written(in_a):
    calls = []
    result = observations_import_csv(
        file=many_rows().encode(), by=None, progress=lambda done, total: calls.append((done, total))
    )
    assert result.created == 600
    assert calls == [(0, 1200), (250, 1200), (500, 1200), (1100, 1200), (1200, 1200)]
    again = []
    observations_import_csv(file=many_rows().encode(), by=None, progress=lambda done, total: again.append(done))
    assert again == [0, 250, 500, 1200]  # nothing to write: every row is done once checked


def test_partners_may_be_named_by_crm_id_or_partner_id_and_names_ignore_case(in_a):
    PartnerFactory(name="Nordlicht AG", hubspot_company_id="998877", salesforce_account_id="0015g00000AbCdEAAZ")
    partner_id = in_a.partners[1].pk
    text = (
        "Partner,Partner_ID,Metric,Period,Value\n"
        "998877,,revenue_won,FY2026-Q2,1\n"
        "0015g00000AbCdEAAZ,,win_rate,FY2026-Q2,0.5\n"
        f",{partner_id},revenue_won,FY2026-Q2,2\n"
        "ACME PARTNER 1,,revenue_won,FY2026-Q2,3\n"
    )
    result = upload(in_a, text)
    assert result.errors == []
    assert uploaded() == [
        ("Acme Partner 1", "revenue_won", "FY2026-Q2", Decimal("3")),
        ("Acme Partner 2", "revenue_won", "FY2026-Q2", Decimal("2")),
        ("Nordlicht AG", "revenue_won", "FY2026-Q2", Decimal("1")),
        ("Nordlicht AG", "win_rate", "FY2026-Q2", Decimal("0.5")),
    ]


def test_every_row_is_checked_and_any_error_means_nothing_is_written(in_a):
    text = (
        "partner,metric,period,value\n"
        "Acme Partner 1,revenue_won,FY2026-Q2,100\n"  # row 2: fine
        "Acme Partner 9,revenue_won,FY2026-Q2,100\n"  # row 3
        "Acme Partner 1,revenu_won,FY2026-Q2,100\n"  # row 4
        "\n"  # row 5: blank, skipped
        "Acme Partner 2,win_rate,2026 Q2,1.7\n"  # row 6
        "Acme Partner 2,renewal_rate,FY2026-Q2,1.234,5\n"  # row 7
        "Acme Partner 1,revenue_won,fy2026-q2,100\n"  # row 8: the same key as row 2
    )
    result = upload(in_a, text)
    assert not result.written and result.created == 0
    assert problems(result) == [
        (3, "partner", "There is no partner named “Acme Partner 9” or with that HubSpot or Salesforce id."),
        (4, "metric", "There is no metric with the key “revenu_won”. Did you mean “revenue_won”?"),
        (6, "period", "“2026 Q2” is not a period; write it like FY2026-Q3 or FY2026-M07."),
        (
            6,
            "value",
            "1.7 is outside the plausible range for Win rate: between 0 and 1 (a ratio: 0.25 means one in four).",
        ),
        (7, "", "This row has 5 values; the header names 4 columns."),
        (8, "partner", "Repeats row 2: a partner has one value per metric and period."),
    ]
    assert uploaded() == []
    assert not AuditEvent.objects.filter(verb__in=["observation.recorded", "observations.imported"]).exists()


@pytest.mark.parametrize(
    "header, message",
    [
        ("partner,metric,period", "Missing column: value."),
        ("metric,period,value", "Missing column: partner."),
        ("partner,metric,period,vaule", "Unknown column “vaule”"),
    ],
)
def test_the_header_must_name_the_columns(in_a, header, message):
    result = upload(in_a, f"{header}\nAcme Partner 1,revenue_won,FY2026-Q2\n")
    assert len(result.errors) >= 1 and result.errors[0].position == 1
    assert any(message in error.message for error in result.errors)


def test_the_same_file_uploaded_twice_adds_nothing(in_a):
    first = upload(in_a, GOOD)
    second = upload(in_a, GOOD)
    assert (second.created, second.unchanged, second.errors) == (0, 3, [])
    assert not second.written and second.source_ref == first.source_ref
    assert MetricObservation.objects.filter(source_ref=first.source_ref).count() == 3


def test_uploading_an_old_file_again_does_not_undo_a_correction(in_a):
    upload(in_a, GOOD)
    corrected, _ = observation_record(
        partner=in_a.partners[0],
        metric=MetricObservation.objects.filter(metric__key="revenue_won").first().metric,
        period="FY2026-Q2",
        value="190000",
        source=ObservationSource.CORRECTION,
        by=in_a.users["admin"],
    )
    result = upload(in_a, GOOD)
    assert result.created == 0
    assert (
        MetricObservation.objects.current().get(partner=in_a.partners[0], metric__key="revenue_won", period="FY2026-Q2")
        == corrected
    )


def test_a_changed_file_supersedes_only_the_values_that_changed(in_a):
    upload(in_a, GOOD)
    result = upload(in_a, GOOD.replace("92000.50", "93000"))
    assert (result.created, result.unchanged) == (1, 2)
    assert (
        MetricObservation.objects.filter(
            partner=in_a.partners[1], metric__key="revenue_won", period="FY2026-Q2"
        ).count()
        == 2
    )


def test_a_dry_run_reports_what_would_change_and_writes_nothing(in_a):
    upload(in_a, GOOD)
    before = MetricObservation.objects.count()
    result = upload(in_a, GOOD.replace("0.31", "0.35") + "Acme Partner 2,win_rate,FY2026-Q1,0.2\n", dry_run=True)
    assert result.dry_run and not result.written and result.errors == []
    assert (result.rows, result.created, result.unchanged, result.periods) == (4, 2, 2, ["FY2026-Q1", "FY2026-Q2"])
    assert MetricObservation.objects.count() == before


def test_a_byte_order_mark_is_fine(in_a):
    result = upload(in_a, "\ufeff" + GOOD)
    assert result.errors == [] and result.created == 3


def test_spreadsheet_semicolons_and_crlf_line_ends_are_fine(in_a):
    result = upload(in_a, GOOD.replace(",", ";").replace("\n", "\r\n").replace("92000;50", "92000.50"))
    assert result.errors == [] and result.created == 3


def test_a_partner_name_with_a_comma_can_be_quoted(in_a):
    PartnerFactory(name="Smith, Jones & Co")
    result = upload(in_a, 'partner,metric,period,value\n"Smith, Jones & Co",revenue_won,FY2026-Q2,5\n')
    assert result.errors == [] and result.created == 1


@pytest.mark.parametrize(
    "data, message",
    [
        (GOOD.replace("Acme Partner 2", "Acmé Partner 2").encode("latin-1"), "The file is not UTF-8 text"),
        (GOOD.encode("utf-16"), "The file is UTF-16 text"),
        (b"", "The file is empty"),
        (b"\n\n", "The file is empty"),
        (b"partner,metric,period,value\n", "The file has a header but no rows."),
    ],
)
def test_unreadable_files_get_a_clear_message(in_a, data, message):
    result = upload(in_a, data)
    assert len(result.errors) == 1 and result.errors[0].message.startswith(message)
    assert uploaded() == []


def test_a_name_matching_two_partners_asks_for_the_partner_id(in_a):
    PartnerFactory(name="Twin Peaks", hubspot_company_id="555")
    PartnerFactory(name="555")
    result = upload(in_a, "partner,metric,period,value\n555,revenue_won,FY2026-Q2,1\n")
    assert problems(result) == [
        (2, "partner", "“555” matches more than one partner; use the partner_id column for this row.")
    ]


def test_files_above_the_size_limit_are_refused(in_a, monkeypatch):
    monkeypatch.setattr(observations, "MAX_UPLOAD_BYTES", 100)
    result = upload(in_a, GOOD)
    [error] = result.errors
    assert error.message.startswith("The file is larger than") and error.position is None
    assert uploaded() == []


def test_files_above_the_row_limit_are_refused(in_a, monkeypatch):
    monkeypatch.setattr(observations, "MAX_UPLOAD_ROWS", 2)
    result = upload(in_a, GOOD)
    assert problems(result) == [(None, "", "The file has more than 2 rows; split it into smaller files.")]
    assert uploaded() == []


def test_only_the_first_problems_are_listed_when_there_are_many(in_a, monkeypatch):
    monkeypatch.setattr(observations, "MAX_REPORTED_ERRORS", 2)
    text = "partner,metric,period,value\n" + "Nobody,revenue_won,FY2026-Q2,1\n" * 5
    result = upload(in_a, text)
    assert [error.message for error in result.errors][-1] == "…and 3 more problems."


def test_an_upload_asks_for_one_recompute_per_period_it_changed(
    in_a, recompute_calls, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        upload(in_a, GOOD + "Acme Partner 2,win_rate,FY2026-Q1,0.2\n")
    # FY2026-Q1 comes before the active version's first period: no version scores it, so no run.
    assert sorted(recompute_calls()) == [("FY2026-Q2", "observations changed")]


def test_uploads_only_see_the_active_tenants_partners(world):
    with tenant_scope(world.a.tenant):
        text = (
            "partner,partner_id,metric,period,value\n"
            "Globex Partner 1,,revenue_won,FY2026-Q2,1\n"
            f",{world.b.partners[0].pk},revenue_won,FY2026-Q2,1\n"
        )
        result = upload(world.a, text)
    assert [(error.position, error.field) for error in result.errors] == [(2, "partner"), (3, "partner_id")]
    with tenant_scope(world.b.tenant):
        assert not MetricObservation.objects.exclude(source_ref="world").exists()
        assert Partner.objects.count() == 2


def test_a_workbook_of_observations_records_its_first_sheet_with_numbers_as_shown(in_a):
    book = openpyxl.Workbook()
    book.active.append(["Partner", "Metric", "Period", "Value"])
    book.active.append(["Acme Partner 1", "win_rate", "FY2026-Q2", 0.31])
    book.active.append(["Acme Partner 2", "revenue_won", "FY2026-Q2", 92000.5])
    book.create_sheet("Notes").append(["partner", "metric", "period", "value"])
    out = io.BytesIO()
    book.save(out)
    result = observations_import_csv(file=out.getvalue(), name="values.xlsx", by=in_a.users["admin"])
    assert result.errors == [] and result.created == 2
    assert result.notes == ["Read the first sheet, “Sheet”. Not read: “Notes”."]
    assert uploaded() == [
        ("Acme Partner 1", "win_rate", "FY2026-Q2", Decimal("0.31")),
        ("Acme Partner 2", "revenue_won", "FY2026-Q2", Decimal("92000.5")),
    ]


def test_an_old_excel_file_is_refused_with_what_to_do(in_a):
    result = observations_import_csv(file=b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", name="values.xls", by=None)
    assert problems(result) == [
        (
            None,
            "",
            "This is an Excel 97-2003 workbook (.xls), which cannot be read; save it from your spreadsheet as "
            ".xlsx (Excel Workbook) or as “CSV UTF-8”, and upload that file.",
        )
    ]
