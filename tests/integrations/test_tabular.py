"""Reading uploaded tables: CSV encodings and delimiters, XLSX cells as a spreadsheet shows them, and the
checks a workbook passes before it is parsed (ZIP directory sizes and ratios, DTD and entity declarations)."""

from __future__ import annotations

import csv
import datetime
import io
import time
import zipfile
from decimal import Decimal

import openpyxl
import openpyxl.xml
import pytest

from partnerhub.integrations import tabular
from partnerhub.integrations.tabular import (
    CSV,
    FORMULA_REFUSED,
    XLSX,
    Columns,
    Problem,
    TableError,
    cell_text,
    check_workbook,
    csv_bytes,
    file_format,
    formula_like,
    formula_safe,
    map_rows,
    read_table,
    read_xlsx,
    xlsx_bytes,
)

COLUMNS = Columns(
    one_of=("partner", "partner_id"),
    required=("metric", "value"),
    optional=("note",),
    help="partner or partner_id, metric, value and an optional note",
    numbers=("value",),
)
SAVE_AS = "save it from your spreadsheet as .xlsx (Excel Workbook) or as “CSV UTF-8”, and upload that file."


def workbook(*sheets: tuple[str, list[list]]) -> bytes:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, rows in sheets:
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def rebuilt(data: bytes, part: str, transform, *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """The workbook with one part's bytes transformed (or added), every other part as it was."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        names = source.namelist()
        for name in [*names, *([part] if part not in names else [])]:
            body = source.read(name) if name in names else b""
            if name == part:
                target.writestr(name, transform(body), compress_type=compression)
            else:
                target.writestr(name, body)
    return out.getvalue()


SIMPLE = workbook(("Values", [["partner", "metric", "value"], ["Acme", "revenue_won", 10]]))
SHEET = "xl/worksheets/sheet1.xml"


# --- Format -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, name, expected",
    [
        (b"partner,metric\n", "values.csv", CSV),
        (b"partner,metric\n", "", CSV),
        (SIMPLE, "values.xlsx", XLSX),
        (SIMPLE, "values.csv", XLSX),  # the content decides: a workbook misnamed is still read as one
        (b"partner,metric\n", "values.xlsx", XLSX),  # and is then refused as not a ZIP archive
    ],
)
def test_the_format_comes_from_the_content_then_the_name(data, name, expected):
    assert file_format(data, name) == expected


@pytest.mark.parametrize(
    "data, name, message",
    [
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1 old", "values.xls", "This is an Excel 97-2003 workbook (.xls)"),
        (b"anything at all", "values.xls", "This is an Excel 97-2003 workbook (.xls)"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1 old", "values.csv", "This is an Excel 97-2003 workbook (.xls)"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1 locked", "values.xlsx", "This workbook is protected by a password"),
        (b"PK\x03\x04", "values.ods", "A .ods spreadsheet cannot be read"),
        (b"PK\x03\x04", "values.numbers", "A .numbers spreadsheet cannot be read"),
    ],
)
def test_formats_that_cannot_be_read_are_named_with_what_to_do(data, name, message):
    with pytest.raises(TableError) as error:
        read_table(data, name=name, max_rows=10)
    assert error.value.message.startswith(message) and error.value.message.endswith(SAVE_AS)


# --- CSV ----------------------------------------------------------------------------------------------------


def test_utf8_with_and_without_a_byte_order_mark_reads_the_same():
    text = "partner,metric,value\nAcmé,revenue_won,10\n"
    plain = read_table(text.encode(), max_rows=10)
    marked = read_table(b"\xef\xbb\xbf" + text.encode(), max_rows=10)
    assert plain.header == marked.header == ["partner", "metric", "value"]
    assert plain.rows == marked.rows == [(2, ["Acmé", "revenue_won", "10"])]
    assert plain.format == CSV and plain.notes == []


@pytest.mark.parametrize(
    "encoding, message",
    [
        ("latin-1", "The file is not UTF-8 text (byte 25 cannot be read); save it as “CSV UTF-8”"),
        ("utf-16", "The file is UTF-16 text; save it as “CSV UTF-8”"),
    ],
)
def test_other_encodings_are_refused_with_a_clear_message(encoding, message):
    with pytest.raises(TableError) as error:
        read_table("partner,metric,value\nAcmé,revenue_won,10\n".encode(encoding), max_rows=10)
    assert error.value.message.startswith(message)


def test_the_delimiter_is_the_one_that_names_the_known_columns():
    table = read_table(b"partner;metric;value\r\nAcme;revenue_won;10,5\r\n", max_rows=10, known=COLUMNS.known)
    assert table.header == ["partner", "metric", "value"] and table.rows == [(2, ["Acme", "revenue_won", "10,5"])]
    table = read_table(b"partner\tmetric\tvalue\nAcme\trevenue_won\t10\n", max_rows=10, known=COLUMNS.known)
    assert table.rows == [(2, ["Acme", "revenue_won", "10"])]


def test_blank_rows_are_skipped_and_keep_their_numbers():
    table = read_table(b"partner,metric,value\n\nAcme,a,1\n , ,\nAcme,b,2\n", max_rows=10)
    assert [number for number, _ in table.rows] == [3, 5]


def test_the_row_limit_counts_rows_with_values():
    data = b"partner,metric,value\n" + b"Acme,a,1\n\n" * 3
    assert len(read_table(data, max_rows=3).rows) == 3
    with pytest.raises(TableError, match=r"^The file has more than 2 rows; split it into smaller files\.$"):
        read_table(data, max_rows=2)


def test_a_row_the_csv_module_cannot_read_stops_the_reading_with_its_number():
    too_long = b'"' + b"x" * 200_000 + b'"'  # beyond the csv module's field limit
    table = read_table(b"partner,metric,value\nAcme,a,1\nAcme,b," + too_long + b"\nAcme,c,3\n", max_rows=10)
    assert table.rows == [(2, ["Acme", "a", "1"])]
    [problem] = table.problems
    assert problem.row == 3 and problem.message.startswith("This row cannot be read:")


# --- XLSX ---------------------------------------------------------------------------------------------------


def test_a_workbook_reads_dates_numbers_flags_and_text_as_a_spreadsheet_shows_them():
    data = workbook(
        (
            "Deals",
            [
                ["external_id", "amount", "created_on", "won", "note"],
                [1001, 0.1, datetime.date(2026, 7, 1), True, "first"],
                ["D-2", 1234.5, datetime.datetime(2026, 7, 1, 14, 30), False, None],  # noqa: DTZ001 - cells are naive
                [12345678901234, 1e20, datetime.datetime(2026, 8, 1), None, 3.0],  # noqa: DTZ001
                [None, None, None, None, None],
                ["D-4", -0.0, datetime.time(9, 15), Decimal("2.50"), "  padded  "],
            ],
        )
    )
    table = read_table(data, name="deals.xlsx", max_rows=10)
    assert table.format == XLSX and table.notes == ["Read the first sheet, “Deals”."]
    assert table.header == ["external_id", "amount", "created_on", "won", "note"]
    assert table.rows == [
        (2, ["1001", "0.1", "2026-07-01", "TRUE", "first"]),
        (3, ["D-2", "1234.5", "2026-07-01 14:30:00", "FALSE", ""]),
        (4, ["12345678901234", "100000000000000000000", "2026-08-01", "", "3"]),
        (6, ["D-4", "0", "09:15:00", "2.5", "  padded  "]),
    ]


def test_a_formula_reads_as_the_value_the_spreadsheet_last_computed_without_float_artefacts():
    data = workbook(("Sheet", [["a", "b"], [2, "=A2*2"], [0.1, "=A3+0.2"], [1, "=NOW()"]]))
    # openpyxl writes formulas without values; a spreadsheet stores the values it computed next to them.
    data = rebuilt(
        data,
        SHEET,
        lambda xml: xml.replace(b"<f>A2*2</f><v />", b"<f>A2*2</f><v>4</v>").replace(
            b"<f>A3+0.2</f><v />", b"<f>A3+0.2</f><v>0.30000000000000004</v>"
        ),
    )
    table = read_xlsx(data, max_rows=10)
    assert table.rows == [(2, ["2", "4"]), (3, ["0.1", "0.3"]), (4, ["1", ""])]


def test_only_the_first_sheet_is_read_and_the_note_names_the_others():
    data = workbook(
        ("Facts", [["partner", "metric", "value"], ["Acme", "a", 1]]),
        ("Notes", [["ignored"]]),
        ("Lists", [["ignored too"]]),
    )
    table = read_xlsx(data, max_rows=10)
    assert table.rows == [(2, ["Acme", "a", "1"])]
    assert table.notes == ["Read the first sheet, “Facts”. Not read: “Notes”, “Lists”."]


def test_a_header_below_blank_rows_keeps_the_sheets_row_numbers():
    data = workbook(("S", [[None], [None], ["partner", "metric", "value"], ["Acme", "a", 1]]))
    table = read_xlsx(data, max_rows=10)
    assert table.header_row == 3 and table.rows == [(4, ["Acme", "a", "1"])]
    rows, problems = map_rows(table, COLUMNS)
    assert rows == [(4, {"partner": "Acme", "metric": "a", "value": "1"})] and problems == []
    table = read_xlsx(workbook(("S", [[None], ["partner", "metric", "colour"], ["Acme", "a", 1]])), max_rows=10)
    assert map_rows(table, COLUMNS)[1][0].row == 2  # the header's problems name its row


def test_rows_are_as_wide_as_the_header_and_a_value_beyond_it_is_the_rows_problem():
    data = workbook(("S", [["partner", "metric", "value", "note"], ["Acme", "a", 1], ["Acme", "b", 2, None, "x"]]))
    table = read_xlsx(data, max_rows=10)
    assert table.rows == [(2, ["Acme", "a", "1", ""])]
    assert table.problems == [
        Problem(3, "", "This row has a value in column E, right of the last column the header names.")
    ]


def test_the_row_limit_applies_to_workbooks_too():
    data = workbook(("S", [["partner", "metric", "value"], *[["Acme", "a", n] for n in range(4)]]))
    assert len(read_xlsx(data, max_rows=4).rows) == 4
    with pytest.raises(TableError, match=r"^The file has more than 3 rows; split it into smaller files\.$"):
        read_xlsx(data, max_rows=3)


def test_a_header_of_too_many_columns_is_refused():
    data = workbook(("S", [[f"c{n}" for n in range(tabular.MAX_COLUMNS + 1)]]))
    with pytest.raises(TableError, match="The header row names more than 200 columns"):
        read_xlsx(data, max_rows=10)


def test_a_workbook_without_rows_reads_as_empty():
    table = read_xlsx(workbook(("Empty", [])), max_rows=10)
    assert table.header == [] and table.rows == []
    assert map_rows(table, COLUMNS)[1] == [
        Problem(None, "", "The file is empty; the first row names the columns: " + COLUMNS.help + ".")
    ]


# --- What a workbook must pass before it is parsed ----------------------------------------------------------


def test_openpyxl_parses_with_defusedxml():
    assert openpyxl.xml.DEFUSEDXML is True


ENTITY = b'<?xml version="1.0"?><!DOCTYPE worksheet [<!ENTITY boom "expanded">]>'


@pytest.mark.parametrize("part", [SHEET, "xl/workbook.xml", "[Content_Types].xml"])
def test_an_entity_declaration_is_refused_with_a_clear_message(part):
    data = rebuilt(SIMPLE, part, lambda xml: ENTITY + xml.replace(b">Acme<", b">&boom;<"))
    with pytest.raises(TableError) as error:
        read_table(data, name="values.xlsx", max_rows=10)
    assert error.value.message == tabular.DTD_REFUSED
    assert error.value.message.startswith("This workbook declares XML entities or a DTD")


def test_an_entity_declared_past_the_prolog_is_refused_by_the_parser_itself():
    # A long comment first: the declaration is beyond what the prolog check reads, so only defusedxml
    # meets it, while openpyxl parses the sheet; it refuses the declaration, and nothing is expanded.
    padding = b"<!-- " + b"x" * (2 * tabular.PROLOG_BYTES) + b" -->"
    data = rebuilt(SIMPLE, SHEET, lambda xml: b'<?xml version="1.0"?>' + padding + ENTITY[21:] + xml)
    check_workbook(data)  # the ZIP and the prologs pass
    with pytest.raises(TableError) as error:
        read_xlsx(data, max_rows=10)
    assert error.value.message == tabular.DTD_REFUSED


def test_a_dtd_without_entities_is_refused_too():
    data = rebuilt(SIMPLE, SHEET, lambda xml: b'<?xml version="1.0"?><!DOCTYPE worksheet>' + xml)
    with pytest.raises(TableError, match="declares XML entities or a DTD"):
        read_xlsx(data, max_rows=10)


def test_a_zip_bomb_is_refused_from_its_directory_before_anything_is_parsed():
    # 3 MB of zeros compress about a thousand times; as a sheet they are not even XML, so a parser
    # reaching them would call the workbook damaged: the message shows the directory check came first.
    data = rebuilt(SIMPLE, SHEET, lambda _xml: b"\0" * (3 * 1024 * 1024))
    assert len(data) < 20_000
    started = time.monotonic()
    with pytest.raises(TableError) as error:
        read_xlsx(data, max_rows=10)
    assert time.monotonic() - started < 1
    assert error.value.message.startswith(f"This workbook is refused: its part “{SHEET}” is compressed")
    assert "(a “zip bomb” looks like this)" in error.value.message


def test_a_workbook_that_unpacks_to_more_than_the_limit_is_refused():
    big = tabular.MAX_UNPACKED_BYTES + 1
    # Stored, not compressed: no ratio to object to, only the size the directory declares.
    data = rebuilt(SIMPLE, "xl/media/filler.bin", lambda _body: b" " * big, compression=zipfile.ZIP_STORED)
    with pytest.raises(TableError, match=r"^This workbook unpacks to 50\.0 MB, more than the 50 MB allowed"):
        check_workbook(data)


def test_a_part_compressed_in_a_way_spreadsheets_do_not_use_is_refused():
    data = rebuilt(SIMPLE, SHEET, lambda xml: xml, compression=zipfile.ZIP_BZIP2)
    with pytest.raises(TableError, match="compressed in a way spreadsheets do not use"):
        check_workbook(data)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"partner,metric,value\n", "This file is not an XLSX workbook: .xlsx files are ZIP archives"),
        (b"PK\x03\x04 truncated", "This file is not an XLSX workbook: .xlsx files are ZIP archives"),
        (SIMPLE[: len(SIMPLE) // 2], "This file is not an XLSX workbook: .xlsx files are ZIP archives"),
    ],
)
def test_a_file_that_is_not_a_zip_archive_is_refused(data, message):
    with pytest.raises(TableError) as error:
        read_table(data, name="values.xlsx", max_rows=10)
    assert error.value.message.startswith(message) and error.value.message.endswith(SAVE_AS)


def test_a_zip_archive_that_is_not_a_workbook_is_refused():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("notes.txt", "hello")
    with pytest.raises(TableError, match="This ZIP archive is not an Excel workbook"):
        read_table(out.getvalue(), name="values.xlsx", max_rows=10)


def test_a_damaged_workbook_is_named_damaged():
    data = rebuilt(SIMPLE, SHEET, lambda xml: xml[: len(xml) // 2])
    with pytest.raises(TableError, match=r"^This workbook cannot be read \(it may be damaged\)"):
        read_xlsx(data, max_rows=10)


# --- Cells, columns and templates ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, text",
    [
        (None, ""),
        (True, "TRUE"),
        (7, "7"),
        (0.1, "0.1"),
        (0.1 + 0.2, "0.3"),
        (1234567.891, "1234567.891"),
        (1e-7, "0.0000001"),
        (2.0, "2"),
        (float("inf"), "inf"),
        (Decimal("12.500"), "12.5"),
        (datetime.date(2026, 7, 1), "2026-07-01"),
        (datetime.datetime(2026, 7, 1), "2026-07-01"),  # noqa: DTZ001
        (datetime.datetime(2026, 7, 1, 8, 5, 9, 123), "2026-07-01 08:05:09"),  # noqa: DTZ001
        ("  text  ", "  text  "),
    ],
)
def test_cell_text(value, text):
    assert cell_text(value) == text


UNNAMED = "Column B of the header row has no name; name it or remove the column."


@pytest.mark.parametrize(
    "header, problem",
    [
        ([], Problem(None, "", f"The file is empty; the first row names the columns: {COLUMNS.help}.")),
        (["partner", "metric"], Problem(1, "", f"Missing column: value. The columns are {COLUMNS.help}.")),
        (["metric", "value"], Problem(1, "", f"Missing column: partner. The columns are {COLUMNS.help}.")),
        (
            ["partner", "metric", "value", "colour"],
            Problem(1, "", f"Unknown column “colour”; the columns are {COLUMNS.help}."),
        ),
        (["partner", "", "metric", "value"], Problem(1, "", f"{UNNAMED} The columns are {COLUMNS.help}.")),
        (["partner", "metric", "Metric", "value"], Problem(1, "metric", "The column “metric” appears more than once.")),
    ],
)
def test_the_header_must_name_the_columns(header, problem):
    table = tabular.Table(format=CSV, header=header, rows=[(2, ["Acme", "a", "1"])])
    assert problem in map_rows(table, COLUMNS)[1]


def test_rows_become_dicts_and_trailing_optional_cells_may_be_left_out():
    table = tabular.Table(
        format=CSV,
        header=["Partner ID", "Metric", "Value", "Note"],
        rows=[(2, ["1", "a", "10"]), (3, ["1", "b", "11", "why"]), (4, ["1", "c"]), (5, ["1", "d", "1", "x", "y"])],
    )
    rows, problems = map_rows(table, COLUMNS)
    assert rows == [
        (2, {"partner_id": "1", "metric": "a", "value": "10", "note": ""}),
        (3, {"partner_id": "1", "metric": "b", "value": "11", "note": "why"}),
    ]
    assert problems == [
        Problem(4, "", "This row has 2 values; the header names 4 columns."),
        Problem(5, "", "This row has 5 values; the header names 4 columns."),
    ]


def test_templates_written_as_csv_and_xlsx_read_back_the_same():
    header = ["external_id", "amount", "created_on", "won"]
    rows = [["E-1", Decimal("12500.00"), datetime.date(2026, 7, 1), True], ["E-2", Decimal("0.1"), None, False]]
    expected = [(2, ["E-1", "12500", "2026-07-01", "TRUE"]), (3, ["E-2", "0.1", "", "FALSE"])]
    from_csv = read_table(csv_bytes(header, rows), max_rows=10)
    from_xlsx = read_table(xlsx_bytes(header, rows, title="Deals"), name="t.xlsx", max_rows=10)
    assert from_csv.header == from_xlsx.header == header
    assert from_csv.rows == from_xlsx.rows == expected
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx_bytes(header, rows, title="Deals"))).active
    assert sheet["C2"].number_format == "yyyy-mm-dd" and sheet["A1"].font.bold


# --- Cells a spreadsheet would run as formulas ------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, formula",
    [
        ("=1+1", True),
        ('=HYPERLINK("https://evil.example","Acme")', True),
        ("+44 20 7946 0000", True),
        ("-1+2", True),  # a minus and digits, but not a number
        ("-abc", True),
        ("- see note", True),
        ("-", True),
        ("@SUM(A1)", True),
        ("\tAcme", True),
        ("\r=1", True),
        ("  =1+1", True),  # the readers strip the spaces before storing
        ("\u00a0=1+1", True),
        ("-12.5", False),
        ("+3", False),
        ("-123", False),  # a partner reference that is an id
        ("-.5", False),
        ("1e5", False),
        ("-1E-3", False),
        (" -7 ", False),
        ("Acme", False),
        ("a=b", False),
        ("12-3", False),
        ("", False),
        ("\t", False),  # whitespace only: an empty cell
    ],
)
def test_formula_like_text_is_what_a_spreadsheet_would_run(text, formula):
    assert formula_like(text) is formula
    assert formula_safe(text) == (f"'{text}" if formula else text)


def test_formula_like_cells_are_problems_of_their_row_outside_the_number_columns():
    table = tabular.Table(
        format=CSV,
        header=["partner", "metric", "value", "note"],
        rows=[
            (2, ["Acme", "revenue_won", "-12.5", "=1+1"]),
            (3, ["@Acme", "+revenue_won", "=2", ""]),
            (4, ["-123", "revenue_won", "10", "fine"]),
        ],
    )
    rows, problems = map_rows(table, COLUMNS)
    # =2 in the value column is left to the reading of numbers, which refuses it as not a number.
    assert rows == [(4, {"partner": "-123", "metric": "revenue_won", "value": "10", "note": "fine"})]
    assert problems == [
        Problem(2, "note", FORMULA_REFUSED),
        Problem(3, "partner", FORMULA_REFUSED),
        Problem(3, "metric", FORMULA_REFUSED),
    ]


def test_templates_write_formula_like_text_as_text():
    header = ["partner", "amount", "note"]
    rows = [['=HYPERLINK("https://evil.example")', Decimal("-12.5"), "@SUM(A1)"], ["-123", -3, "+44 20"]]
    assert list(csv.reader(io.StringIO(csv_bytes(header, rows).decode()))) == [
        header,
        ['\'=HYPERLINK("https://evil.example")', "-12.5", "'@SUM(A1)"],
        ["-123", "-3", "'+44 20"],
    ]
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx_bytes(header, rows, title="Deals"))).active
    assert (sheet["A2"].value, sheet["A2"].data_type) == ('=HYPERLINK("https://evil.example")', "s")
    assert (sheet["B2"].value, sheet["C2"].data_type, sheet["B3"].value) == (-12.5, "s", -3)
