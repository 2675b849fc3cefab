"""Uploaded tables: a CSV or XLSX file read into a header and rows of text, and written back for templates.

Every kind of upload (observations, deals, marketing facts) reads its file here, so each has the
same formats, limits and messages. A table is text: the header as written, then each non-blank
row with its number as a spreadsheet shows it (the header is row 1). What the columns mean is the
reader's business; :func:`map_rows` checks a header against a kind's columns and gives each row as
a dict.

CSV files are UTF-8, with or without a byte order mark, separated by commas, semicolons or tabs
(the one that makes the header name the known columns). XLSX workbooks are read from their first
worksheet only, with openpyxl in read-only, values-only mode: a date cell reads as ``2026-07-01``,
a number as the number a spreadsheet shows (``0.1``, not ``0.1000000000000000055``), a formula as
the value the spreadsheet last computed. Before openpyxl sees a workbook its ZIP directory is
checked: the sizes its entries unpack to (read from the directory, without unpacking anything)
must stay under a limit, no entry may be compressed beyond any plausible ratio, and no XML part
may declare a DTD or entities. openpyxl parses with defusedxml, which refuses entity declarations
wherever they are; the prolog check makes the message plain and refuses a bare DTD too.

A text cell a spreadsheet would run as a formula (OWASP's "CSV injection") is refused, row and
column named, whatever kind of file it is in (:func:`formula_like`); cells this module writes
(the templates) get a leading quote instead (:func:`formula_safe`).
"""

from __future__ import annotations

import csv
import datetime
import io
import math
import re
import warnings
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

CSV = "csv"
XLSX = "xlsx"

MAX_UNPACKED_BYTES = 50 * 1024 * 1024  # what a workbook's entries may unpack to, in all
MAX_COMPRESSION_RATIO = 100  # real sheets compress 5 to 25 times; a zip bomb a thousand times
RATIO_CHECKED_FROM = 1024 * 1024  # entries smaller than this unpacked cannot hurt, whatever their ratio
MAX_ZIP_ENTRIES = 1_000
MAX_COLUMNS = 200
PROLOG_BYTES = 4096  # where an XML part's DTD would be: before its first element
XML_SUFFIXES = (".xml", ".rels", ".vml")
ZIP_MAGIC = b"PK\x03\x04"
EMPTY_ZIP_MAGIC = b"PK\x05\x06"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # Excel 97-2003 files, and password-protected workbooks
SAVE_AS = "save it from your spreadsheet as .xlsx (Excel Workbook) or as “CSV UTF-8”, and upload that file"


class TableError(ValueError):
    """A file that cannot be read as a table; the message is written for the person who uploaded it."""

    def __init__(self, message: str, *, row: int | None = None):
        super().__init__(message)
        self.message, self.row = message, row


@dataclass(frozen=True, slots=True)
class Problem:
    """A problem of one row (or of the file, when ``row`` is None): the column, when known, and why."""

    row: int | None
    column: str
    message: str


@dataclass
class Table:
    """A file's header and non-blank rows, each with its number (the header is row 1)."""

    format: str
    header: list[str]
    rows: list[tuple[int, list[str]]]
    problems: list[Problem] = field(default_factory=list)  # rows that could not be read
    notes: list[str] = field(default_factory=list)  # what the reader wants the person to know
    header_row: int = 1


# --- Which format -----------------------------------------------------------------------------------


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):,.1f} MB"


def file_format(data: bytes, name: str = "") -> str:
    """CSV or XLSX, from the content first and the name second; other formats are refused by name."""
    suffix = name.lower().rsplit(".", 1)[-1] if "." in name else ""
    if data.startswith(OLE_MAGIC) or suffix == "xls":
        if suffix in ("xlsx", "xlsm"):
            raise TableError(f"This workbook is protected by a password, which cannot be read; {SAVE_AS}.")
        raise TableError(f"This is an Excel 97-2003 workbook (.xls), which cannot be read; {SAVE_AS}.")
    if suffix in ("ods", "numbers"):
        raise TableError(f"A .{suffix} spreadsheet cannot be read; {SAVE_AS}.")
    if data.startswith((ZIP_MAGIC, EMPTY_ZIP_MAGIC)) or suffix in ("xlsx", "xlsm"):
        return XLSX
    return CSV


# --- CSV ----------------------------------------------------------------------------------------------


def decode_text(data: bytes) -> str:
    """UTF-8 text, with or without a byte order mark; anything else is refused with what to do."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise TableError("The file is UTF-16 text; save it as “CSV UTF-8” from your spreadsheet and upload it again.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise TableError(
            f"The file is not UTF-8 text (byte {error.start + 1} cannot be read); save it as “CSV UTF-8” "
            "from your spreadsheet and upload it again."
        ) from None


def header_key(name: str) -> str:
    """A column name as compared with the known ones: ``Partner ID`` is ``partner_id``."""
    return "_".join(name.strip().lower().split())


def csv_delimiter(text: str, known: Iterable[str] = ()) -> str:
    """The delimiter that makes the first line name the most known columns (Excel may use ;)."""
    known = set(known)
    first_line = text.split("\n", 1)[0]
    best, best_known = ",", -1
    for delimiter in (",", ";", "\t"):
        names = next(csv.reader([first_line], delimiter=delimiter), [])
        count = sum(header_key(name) in known for name in names)
        if count > best_known:
            best, best_known = delimiter, count
    return best


def _too_many_rows(max_rows: int) -> TableError:
    return TableError(f"The file has more than {max_rows:,} rows; split it into smaller files.")


def read_csv(data: bytes, *, max_rows: int, known: Iterable[str] = ()) -> Table:
    """A CSV file's header and non-blank rows; a row the csv module cannot read stops the reading."""
    text = decode_text(data)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=csv_delimiter(text, known))
    try:
        header = next(reader, None) or []
    except csv.Error as error:
        raise TableError(f"The header row cannot be read: {error}.", row=1) from None
    table = Table(format=CSV, header=header, rows=[])
    number = 1
    try:
        for cells in reader:
            number += 1
            if not any(cell.strip() for cell in cells):
                continue  # blank lines are skipped, but keep their numbers
            if len(table.rows) >= max_rows:
                raise _too_many_rows(max_rows)
            table.rows.append((number, cells))
    except csv.Error as error:
        table.problems.append(Problem(number + 1, "", f"This row cannot be read: {error}."))
    return table


# --- XLSX ---------------------------------------------------------------------------------------------


def cell_text(value: Any) -> str:
    """A cell's value as the spreadsheet shows it, as text.

    Numbers keep the 15 significant digits a spreadsheet works with, so a value stored as
    0.30000000000000004 reads 0.3, and never use an exponent. Dates read as YYYY-MM-DD, and a
    date with a time of day as YYYY-MM-DD HH:MM:SS.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        number = Decimal(f"{value:.15g}")
        return "0" if number == 0 else format(number.normalize(), "f")
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, datetime.datetime):
        if value.time() == datetime.time(0, 0):
            return value.date().isoformat()
        return value.replace(tzinfo=None).isoformat(sep=" ", timespec="seconds")
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, datetime.time):
        return value.isoformat(timespec="seconds")
    return str(value)


def column_letter(index: int) -> str:
    """The spreadsheet letter of a column, from 1: A, B, ..., Z, AA."""
    letters = ""
    while index > 0:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def _declares_dtd(head: bytes) -> bool:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        head = head.decode("utf-16", "ignore").encode("ascii", "ignore")
    head = head.upper()
    return b"<!DOCTYPE" in head or b"<!ENTITY" in head


DTD_REFUSED = (
    "This workbook declares XML entities or a DTD, which spreadsheets never need and which are refused "
    f"for safety; {SAVE_AS}."
)


def check_workbook(data: bytes) -> None:
    """Refuse a file that is not an XLSX workbook, or that would unpack to too much, before parsing it.

    Sizes come from the ZIP directory, so nothing is unpacked to judge them; and since Python's
    zipfile never unpacks an entry beyond the size its directory declares, a directory that lies
    cannot make the parser inflate more than these checks allowed. Only the first few kilobytes of
    each XML part are unpacked, to refuse DTD and entity declarations.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError):
        raise TableError(
            "This file is not an XLSX workbook: .xlsx files are ZIP archives and this one is not, or it is "
            f"damaged; {SAVE_AS}."
        ) from None
    with archive:
        entries = archive.infolist()
        if len(entries) > MAX_ZIP_ENTRIES:
            raise TableError(f"This workbook has more than {MAX_ZIP_ENTRIES:,} parts; {SAVE_AS}.")
        names = {entry.filename for entry in entries}
        if "[Content_Types].xml" not in names or not any(name.startswith("xl/") for name in names):
            raise TableError(f"This ZIP archive is not an Excel workbook; {SAVE_AS}.")
        unpacked = sum(entry.file_size for entry in entries)
        if unpacked > MAX_UNPACKED_BYTES:
            raise TableError(
                f"This workbook unpacks to {_megabytes(unpacked)}, more than the "
                f"{MAX_UNPACKED_BYTES // (1024 * 1024)} MB allowed; split it into smaller files."
            )
        for entry in entries:
            if entry.flag_bits & 0x1:
                raise TableError(f"This workbook is encrypted, which cannot be read; {SAVE_AS}.")
            if entry.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise TableError(f"This workbook is compressed in a way spreadsheets do not use; {SAVE_AS}.")
            ratio = entry.file_size / max(entry.compress_size, 1)
            if entry.file_size > RATIO_CHECKED_FROM and ratio > MAX_COMPRESSION_RATIO:
                raise TableError(
                    f"This workbook is refused: its part “{entry.filename[:80]}” is compressed {ratio:,.0f} to 1, "
                    "far beyond what a spreadsheet compresses (a “zip bomb” looks like this)."
                )
        for entry in entries:
            if not entry.filename.lower().endswith(XML_SUFFIXES):
                continue
            try:
                with archive.open(entry) as part:
                    head = part.read(PROLOG_BYTES)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError):
                raise TableError(f"This workbook is damaged and cannot be read; {SAVE_AS}.") from None
            if _declares_dtd(head):
                raise TableError(DTD_REFUSED)


def _refused_xml(error: BaseException) -> bool:
    """Whether defusedxml refused what openpyxl was parsing, anywhere in the chain of causes."""
    from defusedxml import DefusedXmlException

    seen = 0
    while error is not None and seen < 10:
        if isinstance(error, DefusedXmlException):
            return True
        error, seen = error.__cause__ or error.__context__, seen + 1
    return False


def _first_sheet_note(titles: list[str]) -> str:
    note = f"Read the first sheet, “{titles[0]}”."
    others = titles[1:]
    if others:
        shown = ", ".join(f"“{title}”" for title in others[:5]) + (" …" if len(others) > 5 else "")
        note += f" Not read: {shown}."
    return note


def _rows_of_first_sheet(data: bytes, table: Table, *, max_rows: int) -> None:
    import openpyxl

    with warnings.catch_warnings():
        # openpyxl warns about features it skips (data validation, conditional formats); values are unaffected.
        warnings.simplefilter("ignore")
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True, keep_links=False)
        try:
            sheets = workbook.worksheets
            if not sheets:
                raise TableError("This workbook has no worksheet to read.")
            table.notes.append(_first_sheet_note([sheet.title for sheet in sheets]))
            # Rows missing from the sheet's XML come as empty rows, so the count is the sheet's row number.
            for number, values in enumerate(sheets[0].iter_rows(values_only=True), start=1):
                cells = [cell_text(value) for value in values[: MAX_COLUMNS + 1]]
                while cells and not cells[-1].strip():
                    cells.pop()
                if not cells:
                    continue
                if not table.header:
                    if len(cells) > MAX_COLUMNS:
                        raise TableError(f"The header row names more than {MAX_COLUMNS} columns.", row=number)
                    table.header, table.header_row = cells, number
                    continue
                if len(table.rows) >= max_rows:
                    raise _too_many_rows(max_rows)
                width = len(table.header)
                if len(cells) > width:
                    beyond = next(index for index in range(width, len(cells)) if cells[index].strip())
                    message = (
                        f"This row has a value in column {column_letter(beyond + 1)}, right of the last column "
                        "the header names."
                    )
                    table.problems.append(Problem(number, "", message))
                    continue
                table.rows.append((number, cells + [""] * (width - len(cells))))
        finally:
            workbook.close()


def read_xlsx(data: bytes, *, max_rows: int) -> Table:
    """The first worksheet of an XLSX workbook: its header (its first non-blank row) and rows, as text.

    Rows are as wide as the header: the empty cells a spreadsheet leaves out at the end of a row
    read as empty, and a value to the right of the last named column is a problem of its row.
    """
    check_workbook(data)
    table = Table(format=XLSX, header=[], rows=[])
    try:
        _rows_of_first_sheet(data, table, max_rows=max_rows)
    except TableError:
        raise
    except Exception as error:
        # openpyxl raises whatever its parsers meet in a damaged file (KeyError, TypeError, ...):
        # every one of them means the same thing to the person who uploaded it.
        if _refused_xml(error):
            raise TableError(DTD_REFUSED) from None
        raise TableError(f"This workbook cannot be read (it may be damaged); {SAVE_AS}.") from None
    return table


# --- Any file -----------------------------------------------------------------------------------------


def read_table(data: bytes, *, name: str = "", max_rows: int, known: Iterable[str] = ()) -> Table:
    """A CSV or XLSX file's header and rows (see the module docstring); TableError says why it cannot be read."""
    if file_format(data, name) == XLSX:
        return read_xlsx(data, max_rows=max_rows)
    return read_csv(data, max_rows=max_rows, known=known)


# --- Cells a spreadsheet would run ------------------------------------------------------------------

# The same patterns, character for character, are the formula rules of the set-based deal path
# (deal_copy._RULES): both are written for Python's re and PostgreSQL's regular expressions alike.
FORMULA_LIKE = r"^(?:\s*[=+@-]|[\t\r]\s*\S)"
PLAIN_NUMBER = r"^\s*[+-]?(?:[0-9]+(?:[.][0-9]*)?|[.][0-9]+)(?:[eE][+-]?[0-9]+)?\s*$"
FORMULA_REFUSED = (
    "Cells that start with =, +, -, @, a tab or a carriage return are read as formulas by spreadsheets; "
    "remove the leading character."
)
_FORMULA_LIKE = re.compile(FORMULA_LIKE)
_PLAIN_NUMBER = re.compile(PLAIN_NUMBER)


def formula_like(text: str) -> bool:
    """Whether a spreadsheet would read this text as a formula (OWASP's "CSV injection").

    That is text whose first character past any whitespace is ``=``, ``+``, ``-`` or ``@`` (the
    readers strip whitespace before storing), or which starts with a tab or a carriage return
    before other text, unless the whole of it is a plain number: ``-12.5``, ``+3`` and ``1e5`` are
    numbers to a spreadsheet, not formulas, so a partner reference ``-123`` (an id) passes, like
    a negative number anywhere. ``-1+2``, ``-abc``, ``=HYPERLINK(...)``, ``@SUM(A1)``, ``+44 20 7946
    0000`` and ``- see note`` are formula-like; a cell of whitespace only is not.
    """
    return _FORMULA_LIKE.match(text) is not None and _PLAIN_NUMBER.match(text) is None


def formula_safe(text: str) -> str:
    """A cell of a file people open in spreadsheets: formula-like text gets a leading ``'``, which they show as text."""
    return f"'{text}" if formula_like(text) else text


# --- Columns ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Columns:
    """The columns a kind of file has: those it needs, those it may leave out, and how to name them.

    ``one_of`` is a set of alternatives at least one of which is needed (the partner by name or by
    id); a missing one is named by its first. ``numbers`` are the columns read as numbers: their
    own reading takes nothing but a number, so they are left out of the formula check.
    """

    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    one_of: tuple[str, ...] = ()
    help: str = ""
    numbers: tuple[str, ...] = ()

    @property
    def known(self) -> tuple[str, ...]:
        return (*self.one_of, *self.required, *self.optional)

    @property
    def header(self) -> list[str]:
        """The columns in the order a template lists them: the first alternative only."""
        return [*self.one_of[:1], *self.required, *self.optional]


def check_header(header: Sequence[str], columns: Columns, *, row: int = 1) -> tuple[list[str], list[Problem]]:
    """The header's column keys, and its problems: unknown, repeated, unnamed and missing columns."""
    if not header or not any(name.strip() for name in header):
        return [], [Problem(None, "", f"The file is empty; the first row names the columns: {columns.help}.")]
    names = [header_key(name) for name in header]
    problems = []
    unnamed = [index for index, name in enumerate(names) if not name]
    unknown = [name for name in names if name and name not in columns.known]
    if unnamed:
        problems.append(
            Problem(
                row,
                "",
                f"Column {column_letter(unnamed[0] + 1)} of the header row has no name; name it or remove the "
                f"column. The columns are {columns.help}.",
            )
        )
    elif unknown:
        problems.append(Problem(row, "", f"Unknown column “{unknown[0]}”; the columns are {columns.help}."))
    repeated = sorted({name for name in names if name and names.count(name) > 1})
    if repeated:
        problems.append(Problem(row, repeated[0], f"The column “{repeated[0]}” appears more than once."))
    missing = [name for name in columns.required if name not in names]
    if columns.one_of and not any(name in names for name in columns.one_of):
        missing.insert(0, columns.one_of[0])
    if missing:
        problems.append(Problem(row, "", f"Missing column: {', '.join(missing)}. The columns are {columns.help}."))
    return names, problems


def map_rows(table: Table, columns: Columns) -> tuple[list[tuple[int, dict[str, str]]], list[Problem]]:
    """Each row as ``{column: text}`` with its number, or the header's problems and those of rows that do not fit.

    A row may leave out trailing cells of optional columns; a row of another length is a problem.
    So is a row with a formula-like cell (:func:`formula_like`) outside the number columns: each
    such cell is named, and the row is not read further, so that cell gets no second problem.
    """
    names, problems = check_header(table.header, columns, row=table.header_row)
    if problems:
        return [], problems
    rows, problems = [], list(table.problems)
    for number, cells in table.rows:
        if len(cells) < len(names) and all(name in columns.optional for name in names[len(cells) :]):
            cells = [*cells, *[""] * (len(names) - len(cells))]
        if len(cells) != len(names):
            problems.append(
                Problem(number, "", f"This row has {len(cells)} values; the header names {len(names)} columns.")
            )
            continue
        row = dict(zip(names, cells, strict=True))
        formulas = [name for name, text in row.items() if name not in columns.numbers and formula_like(text)]
        if formulas:
            problems.extend(Problem(number, name, FORMULA_REFUSED) for name in formulas)
            continue
        rows.append((number, row))
    if not rows and not problems:
        problems.append(Problem(None, "", "The file has a header but no rows."))
    problems.sort(key=lambda problem: problem.row or 0)
    return rows, problems


# --- Writing templates ----------------------------------------------------------------------------------


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """A CSV file (UTF-8, comma-separated) of the header and rows; dates as YYYY-MM-DD, formula-like text quoted."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([formula_safe(name) for name in header])
    writer.writerows([formula_safe(cell_text(value)) for value in row] for row in rows)
    return out.getvalue().encode("utf-8")


def xlsx_bytes(header: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str) -> bytes:
    """An XLSX workbook of one sheet: the header in bold, then the rows, with dates as date cells."""
    import openpyxl
    from openpyxl.styles import Font

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = title[:31]
    sheet.append(list(header))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append([_xlsx_value(value) for value in row])
    for index, name in enumerate(header, start=1):
        sheet.column_dimensions[column_letter(index)].width = max(12, len(name) + 4)
    for row in sheet.iter_rows(min_row=2):
        for cell in row:
            if isinstance(cell.value, datetime.date):
                cell.number_format = "yyyy-mm-dd"
            elif cell.data_type == "f":
                cell.data_type = "s"  # openpyxl takes text starting with = for a formula; ours is text
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def _xlsx_value(value: Any) -> Any:
    """Numbers as numbers (a Decimal as the float it prints as), everything else as it is."""
    if isinstance(value, Decimal):
        try:
            return int(value) if value == value.to_integral_value() else float(value)
        except (InvalidOperation, OverflowError):
            return str(value)
    return value
