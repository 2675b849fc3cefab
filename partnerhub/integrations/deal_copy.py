"""Deals from a large CSV file, upserted set-based on PostgreSQL: COPY into a scratch table, one upsert.

For files of hundreds of thousands of deals the per-row path (:mod:`partnerhub.integrations.deals`)
spends its time in Python; here PostgreSQL does the work:

1. ``COPY`` the file into a temporary table whose columns have the deal types, so a malformed
   number or date stops the copy and is reported with its row and column;
2. the rules a type cannot hold (an external id, a won deal that is closed, a close date for a
   closed deal, no negative amounts, three-letter currencies, each deal once) are checked with a
   few set-based queries, every problem reported by row, column and reason;
3. under the source's lock (one writer per source, as for syncs), one ``UPDATE`` rewrites the
   stored deals that changed (a deal that did not change is not touched) and one ``INSERT`` adds
   the new ones, matching partner references through the source's mappings and its matching rule
   in the same statements.

All or nothing: everything happens in the caller's transaction, and any problem writes nothing.
Uploading the same file again changes nothing. The columns are those of the deal upload
template: ``external_id, partner, name, amount, currency, stage, closed, won, created_on,
close_date``; ``partner`` is matched by the source's rule (PartnerHub id, HubSpot company id or
Salesforce account id) or a mapping.
"""

from __future__ import annotations

import codecs
import datetime
import io
import re
import uuid
from dataclasses import dataclass, field
from typing import BinaryIO

from django.core.exceptions import ValidationError
from django.db import DataError, connection, transaction
from django.utils import timezone

from partnerhub.integrations.facts import record_deal_observations
from partnerhub.integrations.source_models import DataSource, Deal, PartnerMapping, PartnerMatch, SourceKind
from partnerhub.integrations.sync import source_lock
from partnerhub.partners.models import Partner
from partnerhub.tenancy.audit import audit
from partnerhub.tenancy.context import current_tenant_id

COLUMNS = ("external_id", "partner", "name", "amount", "currency", "stage", "closed", "won", "created_on", "close_date")
MAX_REPORTED = 50

# No key on the scratch table: a deal named twice is caught by the deal table's own unique key
# (a source's first file) or by one grouping query (later files), and only then looked for by line.
_SCRATCH = """
CREATE TEMPORARY TABLE deal_incoming (
    line bigint GENERATED ALWAYS AS IDENTITY,
    external_id text, partner text, name text, amount numeric(18, 2), currency text, stage text,
    closed boolean, won boolean, created_on text, close_date text
) ON COMMIT DROP
"""

# (column, reason, condition on a row of deal_incoming)
# Dates are read as text first: PostgreSQL would also take 01/08/2026, and read it by its DateStyle.
# The shape is checked with LIKE (a tenth of a regular expression's cost on a million rows); a day
# of that shape that is not one (2026-02-30, 2026-ab-01) stops the cast in the write, and only
# then are the rows looked at one by one. ISO days of that shape compare as text in date order.
_ISO_DAY = "'____-__-__'"

_RULES = (
    ("external_id", "Give the deal's id in your system.", "coalesce(btrim(external_id), '') = ''"),
    ("external_id", "Keep ids to 64 characters.", "length(external_id) > 64"),
    ("created_on", "Give the day the deal was created.", "created_on IS NULL"),
    ("closed", "Say whether the deal is closed (true or false).", "closed IS NULL"),
    ("won", "Say whether the deal was won (true or false).", "won IS NULL"),
    ("won", "A won deal is closed: set closed to true.", "won AND NOT closed"),
    ("close_date", "A closed deal needs its close date.", "closed AND close_date IS NULL"),
    ("created_on", "Write dates as YYYY-MM-DD, e.g. 2026-07-01.", f"created_on NOT LIKE {_ISO_DAY}"),
    ("close_date", "Write dates as YYYY-MM-DD, e.g. 2026-07-01.", f"close_date NOT LIKE {_ISO_DAY}"),
    (
        "close_date",
        "The close date is before the creation date.",
        f"close_date < created_on AND close_date LIKE {_ISO_DAY} AND created_on LIKE {_ISO_DAY}",
    ),
    ("amount", "Amounts cannot be negative.", "amount < 0"),
    ("currency", "Use a three-letter currency code such as USD.", "currency !~ '^[A-Za-z]{3}$'"),
    ("name", "Keep names to 255 characters.", "length(name) > 255"),
    ("partner", "Keep partner references to 200 characters.", "length(partner) > 200"),
    # Text a spreadsheet would run as a formula: tabular.formula_like, whose FORMULA_LIKE and
    # PLAIN_NUMBER patterns these are, so this path and the per-row one refuse the same cells
    # (a partner reference -123 is a number, not a formula). The ascii() test runs the patterns
    # only on cells starting with ASCII whitespace, =, +, - or @ (a tenth of their cost on a
    # million rows); cells are stored here as written, so other whitespace needs no looking past,
    # unlike the per-row path, which strips it. The other columns take only numbers, flags, dates
    # and currency codes, as the rules above hold them to.
    *(
        (
            column,
            "Cells that start with =, +, -, @, a tab or a carriage return are read as formulas by spreadsheets; "
            "remove the leading character.",
            rf"ascii({column}) IN (9, 10, 11, 12, 13, 32, 43, 45, 61, 64) "
            rf"AND {column} ~ '^(?:\s*[=+@-]|[\t\r]\s*\S)' "
            rf"AND {column} !~ '^\s*[+-]?(?:[0-9]+(?:[.][0-9]*)?|[.][0-9]+)(?:[eE][+-]?[0-9]+)?\s*$'",
        )
        for column in ("external_id", "partner", "name", "stage")
    ),
)


@dataclass(frozen=True)
class RowError:
    row: int | None  # the header is row 1
    column: str
    message: str


@dataclass
class CopyResult:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    unmatched: int = 0
    errors: list[RowError] = field(default_factory=list)
    partner_ids: set[int] = field(default_factory=set)  # partners whose deals changed, before and after
    days: set[datetime.date] = field(default_factory=set)  # their creation and close days, before and after
    observations_written: int = 0

    @property
    def written(self) -> bool:
        return not self.errors and (self.created + self.updated) > 0


_COPY_CONTEXT = re.compile(r"COPY deal_incoming, line (\d+)(?:, column (\w+))?")
NOT_UTF8 = ("22021",)  # character_not_in_repertoire: a byte sequence that is not UTF-8


def _copy_error(error: Exception) -> RowError:
    """A row, column and reason from PostgreSQL's report of a line COPY could not take.

    COPY counts lines from 1 with the header, as a spreadsheet counts rows.
    """
    cause = getattr(error, "__cause__", None) or error
    diag = getattr(cause, "diag", None)
    context = getattr(diag, "context", None) or str(cause)
    primary = getattr(diag, "message_primary", None) or str(cause).splitlines()[0]
    match = _COPY_CONTEXT.search(context)
    row = int(match[1]) if match else None
    lowered = primary.lower()
    if getattr(cause, "pgcode", None) in NOT_UTF8 or "encoding" in lowered:
        return RowError(row, "", "This row is not UTF-8 text: save the file as “CSV UTF-8” and upload it again.")
    if "header line" in lowered:
        return RowError(1, "", f"The first row must name the template's columns, in order: {', '.join(COLUMNS)}.")
    if "missing data for column" in lowered or "extra data after last expected column" in lowered:
        return RowError(row, "", f"This row does not have the {len(COLUMNS)} cells of the header; check its commas.")
    column = match[2] if match and match[2] else ""
    value = re.search(r'"(.*)"', primary)
    shown = f"“{value[1]}” " if value else "This value "
    if column in _FORMATS and ("syntax" in primary or "out of range" in primary or "overflow" in primary):
        return RowError(row, column, f"{shown}cannot be read: {_FORMATS[column]}")
    return RowError(row, column, primary[:1].upper() + primary[1:] + ".")


_DATES = "write dates as YYYY-MM-DD, e.g. 2026-07-01."
_FORMATS = {
    "amount": "write amounts as plain numbers such as 1234.50, without currency signs or thousands separators.",
    "closed": "write true or false.",
    "won": "write true or false.",
    "created_on": _DATES,
    "close_date": _DATES,
}


def _match_clause(source: DataSource) -> str:
    """SQL matching ``i.partner`` to a partner by the source's rule (mappings come first)."""
    rule = source.partner_match
    if rule == PartnerMatch.PARTNER_ID:
        return "p.id = CASE WHEN i.partner ~ '^[0-9]{1,18}$' THEN i.partner::bigint END"
    if rule in (PartnerMatch.HUBSPOT_COMPANY_ID, PartnerMatch.SALESFORCE_ACCOUNT_ID):
        return f"p.{rule} = i.partner AND i.partner <> ''"
    return "FALSE"


class _WithoutBom(io.RawIOBase):
    """``file`` read as is, but for a UTF-8 byte-order mark at its start (spreadsheets write one)."""

    def __init__(self, file: BinaryIO):
        self.file, self.started = file, False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.file.read(size)
        if not self.started:
            self.started = True
            if data.startswith(codecs.BOM_UTF8):
                data = data[len(codecs.BOM_UTF8) :]
        return data


def deals_copy_upsert(*, file: BinaryIO, source: DataSource, upload_id: int | None = None) -> CopyResult:
    """Upsert the deals of a CSV file (UTF-8, header row) into ``source``; PostgreSQL only."""
    if connection.vendor != "postgresql":
        raise NotImplementedError("Set-based deal files need PostgreSQL; the per-row path serves SQLite.")
    file = _WithoutBom(file)
    result = CopyResult()
    tenant_id, now = current_tenant_id(), timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        raw = cursor.cursor
        # ON COMMIT DROP only acts at the outermost commit: inside a caller's transaction an
        # earlier file's scratch table may still be there.
        raw.execute("DROP TABLE IF EXISTS pg_temp.deal_incoming")
        raw.execute(_SCRATCH)
        try:
            with transaction.atomic():
                columns = ", ".join(COLUMNS)
                raw.copy_expert(f"COPY deal_incoming ({columns}) FROM STDIN WITH (FORMAT csv, HEADER MATCH)", file)
        except DataError as error:
            result.errors.append(_copy_error(error))
            return result
        except Exception as error:  # psycopg2 raises its own classes through copy_expert
            if type(error).__module__.startswith("psycopg2"):
                result.errors.append(_copy_error(error))
                return result
            raise
        result.rows = raw.rowcount
        if not result.rows:
            result.errors.append(RowError(None, "", "The file has a header but no rows."))
            return result
        result.errors = _broken_rules(raw)
        if result.errors:
            return result

        with source_lock(source):
            stored = _stored_before(raw, source)
            if stored and (repeated := _repeated(raw)):
                result.errors = repeated  # an update would take one of the two rows, silently
                return result
            try:
                with transaction.atomic():
                    _write(raw, result, source=source, stored=stored, tenant_id=tenant_id, now=now, upload_id=upload_id)
            except Exception as error:
                code = getattr(error, "pgcode", None)
                if not type(error).__module__.startswith("psycopg2") or code not in (UNIQUE_VIOLATION, *DATE_ERRORS):
                    raise
                result.created = result.updated = 0
                result.partner_ids, result.days = set(), set()
                result.errors = _repeated(raw) if code == UNIQUE_VIOLATION else _bad_days(raw)
                return result
        result.unchanged = result.rows - result.created - result.updated
    return result


UNIQUE_VIOLATION = "23505"
DATE_ERRORS = ("22007", "22008")  # invalid_datetime_format, datetime_field_overflow


def _broken_rules(raw) -> list[RowError]:
    """Every rule over every row in one pass; rows numbered as a spreadsheet shows them (header = 1)."""
    flags = ", ".join(f"({condition}) IS TRUE" for _, _, condition in _RULES)
    raw.execute(
        f"SELECT line + 1, ARRAY[{flags}] FROM deal_incoming "  # noqa: S608 - rule texts are constants
        f"WHERE {' OR '.join(f'({condition}) IS TRUE' for _, _, condition in _RULES)} ORDER BY line LIMIT %s",
        [MAX_REPORTED],
    )
    errors = [
        RowError(row, column, reason)
        for row, broken in raw.fetchall()
        for (column, reason, _), hit in zip(_RULES, broken, strict=True)
        if hit
    ]
    return sorted(errors, key=lambda error: (error.row or 0, COLUMNS.index(error.column)))[:MAX_REPORTED]


def _stored_before(raw, source: DataSource) -> bool:
    raw.execute(f"SELECT EXISTS (SELECT 1 FROM {Deal._meta.db_table} WHERE source_id = %s)", [source.pk])  # noqa: S608
    return raw.fetchone()[0]


def _repeated(raw) -> list[RowError]:
    """Deals the file names more than once, reported on every row after the first."""
    raw.execute(
        """
        SELECT line + 1, external_id FROM (
            SELECT line, btrim(external_id) AS external_id,
                   row_number() OVER (PARTITION BY btrim(external_id) ORDER BY line) AS nth
            FROM deal_incoming
            WHERE btrim(external_id) IN (
                SELECT btrim(external_id) FROM deal_incoming GROUP BY 1 HAVING count(*) > 1
            )
        ) named WHERE nth > 1 ORDER BY line LIMIT %s
        """,
        [MAX_REPORTED],
    )
    return [
        RowError(row, "external_id", f"Deal “{external_id}” appears earlier in the file: list each deal once.")
        for row, external_id in raw.fetchall()
    ]


def _bad_days(raw) -> list[RowError]:
    """The days of YYYY-MM-DD shape that are not days (2026-02-30), looked for row by row.

    Only on this failure path: the write casts the days of the whole file at once.
    """
    raw.execute("SELECT line + 1, created_on, close_date FROM deal_incoming ORDER BY line")
    errors = []
    for row, *days in raw.fetchall():
        for column, day in zip(("created_on", "close_date"), days, strict=True):
            if not day:
                continue
            try:
                if not _DIGITS_DAY.fullmatch(day):
                    raise ValueError(day)
                datetime.date.fromisoformat(day)
            except ValueError:
                errors.append(RowError(row, column, f"“{day}” is not a day of the calendar."))
        if len(errors) >= MAX_REPORTED:
            break
    return errors[:MAX_REPORTED] or [RowError(None, "", "The dates of the file cannot be read.")]


_DIGITS_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


_VALUES = "partner_id, partner_ref, name, amount, currency, stage, closed, won, created_on, close_date"


def _write(
    raw, result: CopyResult, *, source: DataSource, stored: bool, tenant_id: int, now, upload_id: int | None
) -> None:
    deals, partners, mappings = Deal._meta.db_table, Partner._meta.db_table, PartnerMapping._meta.db_table
    incoming = f"""
        SELECT btrim(i.external_id) AS external_id, coalesce(m.partner_id, p.id) AS partner_id,
               coalesce(i.partner, '') AS partner_ref, coalesce(i.name, '') AS name, i.amount,
               upper(coalesce(i.currency, '')) AS currency, coalesce(i.stage, '') AS stage, i.closed, i.won,
               i.created_on::date AS created_on, CASE WHEN i.closed THEN i.close_date::date END AS close_date
        FROM deal_incoming i
        LEFT JOIN {mappings} m ON m.source_id = %(source)s AND m.external_ref = i.partner
        LEFT JOIN {partners} p ON m.partner_id IS NULL AND {_match_clause(source)}
    """  # noqa: S608 - table names come from the models, values are parameters
    params = {"tenant": tenant_id, "source": source.pk, "now": now, "upload": upload_id}
    if stored:
        # Deals stored before: the changed ones are rewritten, remembering the partners and days
        # they counted in before the change (their periods change too).
        raw.execute(
            f"""
            WITH changed AS (
                SELECT d.id, d.partner_id AS old_partner, d.created_on AS old_created, d.close_date AS old_closed,
                       n.*
                FROM {deals} d JOIN ({incoming}) n ON d.external_id = n.external_id
                WHERE d.source_id = %(source)s
                  AND ((d.{_VALUES.replace(", ", ", d.")}, d.deleted_at) IS DISTINCT FROM
                       (n.{_VALUES.replace(", ", ", n.")}, NULL))
            ), updated AS (
                UPDATE {deals} d SET ({_VALUES}, deleted_at, modified_at, upload_id, updated_at) =
                    (c.{_VALUES.replace(", ", ", c.")}, NULL, %(now)s, %(upload)s, %(now)s)
                FROM changed c WHERE d.id = c.id
                RETURNING c.old_partner, c.old_created, c.old_closed, d.partner_id, d.created_on, d.close_date
            )
            SELECT count(*), array_agg(DISTINCT old_partner), array_agg(DISTINCT old_created),
                   array_agg(DISTINCT old_closed), array_agg(DISTINCT partner_id), array_agg(DISTINCT created_on),
                   array_agg(DISTINCT close_date)
            FROM updated
            """,  # noqa: S608
            params,
        )
        updated, *days = raw.fetchone()
        result.updated = updated
        _collect(result, days[0], days[1], days[2])
        _collect(result, days[3], days[4], days[5])
        new_only = (
            f"WHERE NOT EXISTS (SELECT 1 FROM {deals} d "  # noqa: S608
            "WHERE d.source_id = %(source)s AND d.external_id = n.external_id)"
        )
    else:
        new_only = ""  # a source's first file: every deal is new
    raw.execute(
        f"""
        WITH inserted AS (
            INSERT INTO {deals} (
                tenant_id, source_id, external_id, {_VALUES}, modified_at, upload_id, first_seen_at, updated_at
            )
            SELECT %(tenant)s, %(source)s, n.external_id, n.{_VALUES.replace(", ", ", n.")},
                   %(now)s, %(upload)s, %(now)s, %(now)s
            FROM ({incoming}) n {new_only}
            RETURNING partner_id, created_on, close_date
        )
        SELECT count(*), count(*) FILTER (WHERE partner_id IS NULL),
               array_agg(DISTINCT partner_id), array_agg(DISTINCT created_on), array_agg(DISTINCT close_date)
        FROM inserted
        """,  # noqa: S608
        params,
    )
    result.created, result.unmatched, partner_ids, created, closed = raw.fetchone()
    _collect(result, partner_ids, created, closed)


def _collect(result: CopyResult, partner_ids, created, closed) -> None:
    """Add aggregated partners and days (arrays that may hold NULL, or be NULL) to the result."""
    result.partner_ids.update(partner_id for partner_id in partner_ids or () if partner_id is not None)
    result.days.update(day for days in (created, closed) for day in days or () if day is not None)


@transaction.atomic
def deals_file_import(*, file: BinaryIO, source: DataSource, by=None, name: str = "") -> CopyResult:
    """Import a large deal file into a file source and derive what it changes; PostgreSQL only.

    The set-based upsert above, then the deal metrics of the partners and periods the file changed
    (before and after each change), and one audit event on the source. All or nothing: a file
    with any problem writes nothing, the deals and their observations commit together.
    """
    if source.kind != SourceKind.FILE:
        raise ValidationError(f"{source.name} is a {source.get_kind_display()} source; deal files go to a file source.")
    if not source.is_active:
        raise ValidationError(f"{source.name} is switched off; switch it on to receive deals.")
    result = deals_copy_upsert(file=file, source=source)
    if not result.written:
        return result
    source_ref = f"file:{name or 'deals.csv'}:{uuid.uuid4().hex[:12]}"
    result.observations_written = record_deal_observations(
        partner_ids=result.partner_ids, days=result.days, currency=source.currency, source_ref=source_ref
    )
    changes = {
        "rows": [None, result.rows],
        "created": [None, result.created],
        "updated": [None, result.updated],
        "unchanged": [None, result.unchanged],
        "unmatched": [None, result.unmatched],
        "observations": [None, result.observations_written],
        "file": [None, name],
        "source_ref": [None, source_ref],
    }
    audit(actor=by, verb="deals.file_imported", target=source, changes=changes)
    return result
