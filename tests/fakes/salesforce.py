"""A local fake of the Salesforce OAuth token endpoint and the REST query API for Opportunity.

Two servers, like the real thing: ``base_url`` is the login host (``POST /services/oauth2/token``,
client-credentials flow), and the token response's ``instance_url`` names a second port where the
data API lives. A client that sends queries to the login URL gets 404, as it would from Salesforce.

Instance endpoints (``Authorization: Bearer <access_token>``):

- ``GET /services/data/vXX.X/query?q=SOQL``: live rows only.
- ``GET /services/data/vXX.X/queryAll?q=SOQL``: also deleted rows (``IsDeleted = true``).
- ``GET /services/data/vXX.X/query/<locator>-<offset>`` (and ``queryAll/...``): the next batch.
  As on Salesforce, ``nextRecordsUrl`` says ``query`` even for a queryAll, and the batch it returns
  still includes the deleted rows; results are fixed when the query runs.

Supported SOQL: ``SELECT f, ... FROM Opportunity [WHERE cond [AND|OR cond]...] [ORDER BY f [ASC|DESC]
[NULLS FIRST|LAST], ...] [LIMIT n] [OFFSET n]`` where cond is ``Field op value`` (=, !=, <>, <, <=, >,
>=, LIKE, IN (...), NOT IN (...)), with parentheses and NOT. Values: unquoted date-time literals
(``2026-08-15T12:00:00Z``, ``...+00:00``, fractional seconds allowed), unquoted date literals,
'quoted strings', numbers, true/false, null. Field names and keywords are case-insensitive; text
equality is case-insensitive, as in SOQL. Type checks follow Salesforce: a quoted date-time, or a date
literal against a date-time field, answers 400 INVALID_QUERY_FILTER_OPERATOR.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

from tests.fakes.server import (
    FakeClock,
    FakeServer,
    RecordedRequest,
    Response,
    epoch_ms,
    json_response,
    parse_moment,
)

TOKEN_PATH = "/services/oauth2/token"
SOBJECT = "Opportunity"

# Opportunity's standard fields and their SOAP types (PartnerAccountId needs partner relationship
# management enabled, CurrencyIsoCode needs multiple currencies: ``unknown_fields`` takes them away).
OPPORTUNITY_FIELDS: dict[str, str] = {
    "Id": "id",
    "IsDeleted": "boolean",
    "AccountId": "reference",
    "IsPrivate": "boolean",
    "Name": "string",
    "Description": "textarea",
    "StageName": "picklist",
    "Amount": "currency",
    "Probability": "percent",
    "ExpectedRevenue": "currency",
    "TotalOpportunityQuantity": "double",
    "CloseDate": "date",
    "Type": "picklist",
    "NextStep": "string",
    "LeadSource": "picklist",
    "IsClosed": "boolean",
    "IsWon": "boolean",
    "ForecastCategory": "picklist",
    "ForecastCategoryName": "picklist",
    "CurrencyIsoCode": "picklist",
    "CampaignId": "reference",
    "HasOpportunityLineItem": "boolean",
    "Pricebook2Id": "reference",
    "OwnerId": "reference",
    "CreatedDate": "datetime",
    "CreatedById": "reference",
    "LastModifiedDate": "datetime",
    "LastModifiedById": "reference",
    "SystemModstamp": "datetime",
    "LastActivityDate": "date",
    "FiscalQuarter": "int",
    "FiscalYear": "int",
    "Fiscal": "string",
    "PartnerAccountId": "reference",
}
NUMERIC_TYPES = frozenset({"currency", "percent", "double", "int"})
SOAP_TYPE_NAMES = {"datetime": "dateTime", "currency": "double", "percent": "double", "int": "double"}

MIN_BATCH_SIZE, MAX_BATCH_SIZE = 200, 2000

INVALID_SESSION = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
REQUEST_LIMIT = [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
NOT_FOUND = [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]


class SoqlError(Exception):
    def __init__(self, error_code: str, detail: str, query: str = "", column: int | None = None) -> None:
        super().__init__(detail)
        self.error_code = error_code
        self.detail = detail
        self.query = query
        self.column = column

    def body(self) -> list[dict[str, str]]:
        if self.column is None:
            message = self.detail
        else:
            # Salesforce's shape: the query, a caret under the offending token, the position, the reason.
            caret = " " * (self.column - 1) + "^"
            message = f"\n{self.query}\n{caret}\nERROR at Row:1:Column:{self.column}\n{self.detail}"
        return [{"message": message, "errorCode": self.error_code}]


@dataclass
class _Cursor:
    records: list[dict[str, Any]]
    batch_size: int


@dataclass
class _Opportunity:
    values: dict[str, Any] = field(default_factory=dict)


class FakeSalesforce(FakeServer):
    """Salesforce login + instance for Opportunity queries, with token expiry, faults and field sets."""

    def __init__(
        self,
        *,
        client_id: str = "cid",
        client_secret: str = "secret",  # noqa: S107 - a fake's credential, known to every test
        api_version: str = "v61.0",
        page_size: int = 2000,
        org_id: str = "00Dxx0000001gPLEAY",
        user_id: str = "005xx000001X8UzAAK",
        start: datetime = datetime(2026, 1, 1, tzinfo=UTC),
    ) -> None:
        super().__init__()
        self.client_id = client_id
        self.client_secret = client_secret
        self.api_version = api_version
        self.page_size = page_size
        self.org_id = org_id
        self.user_id = user_id
        self.unknown_fields: set[str] = set()
        self.request_limit: int | None = None  # API calls allowed before 403 REQUEST_LIMIT_EXCEEDED
        self._api_calls = 0
        self._valid_tokens: set[str] = set()
        self._issued = 0
        self._rows: dict[str, _Opportunity] = {}
        self._extra_fields: dict[str, str] = {}
        self._cursors: dict[str, _Cursor] = {}
        self._clock = FakeClock(start)
        self._login = self._add_endpoint("login")
        self._instance = self._add_endpoint("instance")

    @property
    def base_url(self) -> str:
        """The login host: where the token request goes."""
        return self._login.base_url

    @property
    def instance_url(self) -> str:
        """Where the data API answers; clients learn it from the token response."""
        return self._instance.base_url

    # -- data --------------------------------------------------------------------------------------

    def add_opportunity(self, opportunity_id: str, **fields: Any) -> None:
        """Create an Opportunity. Date-times are stored in Salesforce's format; system fields default to the clock."""
        with self._lock:
            if opportunity_id in self._rows:
                raise ValueError(f"opportunity {opportunity_id} exists already")
            values = {"Id": opportunity_id, "IsDeleted": False}
            values.update(self._normalise(fields))
            stamps = ("CreatedDate", "LastModifiedDate", "SystemModstamp")
            given = [moment for moment in (parse_moment(values.get(name)) for name in stamps) if moment]
            for moment in given:
                self._clock.observe(moment)
            # Missing system stamps take the earliest given one (created <= modified), or the next clock tick.
            default = sf_datetime(min(given)) if given else sf_datetime(self._clock.tick())
            values.setdefault("CreatedDate", default)
            values.setdefault("LastModifiedDate", values.get("SystemModstamp", default))
            values.setdefault("SystemModstamp", values["LastModifiedDate"])
            self._rows[opportunity_id] = _Opportunity(values)

    def update_opportunity(self, opportunity_id: str, **fields: Any) -> None:
        """Change fields; SystemModstamp and LastModifiedDate move forward unless given."""
        with self._lock:
            row = self._rows[opportunity_id]
            row.values.update(self._normalise(fields))
            self._touch(row, fields)

    def delete_opportunity(self, opportunity_id: str) -> None:
        """Move to the recycle bin: gone from query, in queryAll with IsDeleted = true and a new SystemModstamp."""
        with self._lock:
            row = self._rows[opportunity_id]
            row.values["IsDeleted"] = True
            self._touch(row, {})

    def undelete_opportunity(self, opportunity_id: str) -> None:
        with self._lock:
            row = self._rows[opportunity_id]
            row.values["IsDeleted"] = False
            self._touch(row, {})

    def opportunity(self, opportunity_id: str) -> dict[str, Any]:
        """A copy of a row's stored fields."""
        with self._lock:
            return dict(self._rows[opportunity_id].values)

    def expire_tokens(self) -> None:
        """Invalidate every issued access token: the next API call answers 401 INVALID_SESSION_ID."""
        with self._lock:
            self._valid_tokens.clear()

    def expire_query_locators(self) -> None:
        """Forget open query cursors: following a nextRecordsUrl answers 400 INVALID_QUERY_LOCATOR."""
        with self._lock:
            self._cursors.clear()

    def fail_next(
        self,
        *,
        status: int = 500,
        body: Any = None,
        headers: dict[str, str] | None = None,
        times: int = 1,
        endpoint: str = "api",
        disconnect: bool = False,
    ) -> None:
        """Answer the next ``times`` requests on ``endpoint`` ("api", "token" or "any") with this fault.

        ``body`` may be a list/dict (JSON), str/bytes (verbatim), or None (a Salesforce-shaped body).
        """
        if endpoint not in ("api", "token", "any"):
            raise ValueError("endpoint must be 'api', 'token' or 'any'")
        if body is None and not disconnect:
            body = [{"message": "An unexpected error occurred.", "errorCode": "UNKNOWN_EXCEPTION"}]

        def matches(request: RecordedRequest) -> bool:
            if endpoint == "any":
                return True
            is_token = request.base_url == self.base_url and request.path == TOKEN_PATH
            return is_token if endpoint == "token" else request.base_url == self.instance_url

        self._queue_fault(
            status=status, body=body, headers=headers, times=times, matches=matches, disconnect=disconnect
        )

    def _touch(self, row: _Opportunity, given: dict[str, Any]) -> None:
        for name in ("LastModifiedDate", "SystemModstamp"):
            self._clock.observe(parse_moment(row.values.get(name)))
        if "SystemModstamp" not in given:
            now = sf_datetime(self._clock.tick())
            row.values["SystemModstamp"] = now
            if "LastModifiedDate" not in given:
                row.values["LastModifiedDate"] = now

    def _normalise(self, fields: dict[str, Any]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, value in fields.items():
            kind = OPPORTUNITY_FIELDS.get(name) or self._extra_fields.get(name)
            if kind is None:
                kind = _infer_type(value)
                self._extra_fields[name] = kind
            values[name] = _store(kind, value)
        return values

    def _field_type(self, name: str) -> tuple[str, str] | None:
        """(canonical name, type) for a field name in any case, or None when the org lacks it."""
        lowered = name.lower()
        if lowered in {unknown.lower() for unknown in self.unknown_fields}:
            return None
        for canonical, kind in (*OPPORTUNITY_FIELDS.items(), *self._extra_fields.items()):
            if canonical.lower() == lowered:
                return canonical, kind
        return None

    # -- serving -----------------------------------------------------------------------------------

    def route(self, endpoint: str, request: RecordedRequest) -> Response:
        if endpoint == "login":
            if request.method == "POST" and request.path == TOKEN_PATH:
                return self._token(request)
            return json_response(404, NOT_FOUND)
        return self._api(request)

    def _token(self, request: RecordedRequest) -> Response:
        form = dict(request.form)
        basic = request.headers.get("authorization", "")
        if basic.startswith("Basic "):
            try:
                client_id, _, client_secret = base64.b64decode(basic[6:]).decode().partition(":")
            except ValueError:
                client_id = client_secret = ""
            form.setdefault("client_id", unquote(client_id))
            form.setdefault("client_secret", unquote(client_secret))
        if not form.get("grant_type"):
            return _oauth_error("invalid_request", "grant type is missing")
        if form["grant_type"] != "client_credentials":
            return _oauth_error("unsupported_grant_type", "grant type not supported")
        if form.get("client_id") != self.client_id:
            return _oauth_error("invalid_client_id", "client identifier invalid")
        if form.get("client_secret") != self.client_secret:
            return _oauth_error("invalid_client", "invalid client credentials")
        with self._lock:
            self._issued += 1
            token = f"{self.org_id[:15]}!AQ4AQFAKE{self._issued:06d}"
            self._valid_tokens.add(token)
            issued_at = str(int(time.time() * 1000))  # only the token's age; the data clock stays put
        identity = f"{self.base_url}/id/{self.org_id}/{self.user_id}"
        # Salesforce signs id + issued_at with the client secret (HMAC-SHA256, base64).
        signature = base64.b64encode(
            hmac.new(self.client_secret.encode(), (identity + issued_at).encode(), hashlib.sha256).digest()
        ).decode()
        return json_response(
            200,
            {
                "access_token": token,
                "signature": signature,
                "scope": "api",
                "instance_url": self.instance_url,
                "id": identity,
                "token_type": "Bearer",
                "issued_at": issued_at,
            },
        )

    def _api(self, request: RecordedRequest) -> Response:
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        with self._lock:
            authorised = scheme in ("Bearer", "OAuth") and token in self._valid_tokens
        if not authorised:
            return json_response(401, INVALID_SESSION, {"WWW-Authenticate": 'Token realm="Salesforce"'})
        with self._lock:
            if self.request_limit is not None and self._api_calls >= self.request_limit:
                return json_response(403, REQUEST_LIMIT)
            self._api_calls += 1
            usage = {"Sforce-Limit-Info": f"api-usage={self._api_calls}/{self.request_limit or 15000}"}
        response = self._api_route(request)
        response.headers.update(usage)
        return response

    def _api_route(self, request: RecordedRequest) -> Response:
        prefix = f"/services/data/{self.api_version}/"
        if request.method != "GET" or not request.path.startswith(prefix):
            return json_response(404, NOT_FOUND)
        resource = request.path.removeprefix(prefix).rstrip("/")
        if resource in ("query", "queryAll"):
            query = request.query.get("q")
            if not query:
                return json_response(
                    400, [{"message": "A query string has to be specified", "errorCode": "MALFORMED_QUERY"}]
                )
            try:
                records = self._run(query, include_deleted=resource == "queryAll")
            except SoqlError as error:
                return json_response(400, error.body())
            return self._first_batch(records, _requested_batch_size(request))
        match = re.fullmatch(r"(?:query|queryAll)/([A-Za-z0-9]+)-(\d+)", resource)
        if match:
            return self._next_batch(match.group(1), int(match.group(2)))
        return json_response(404, NOT_FOUND)

    def _first_batch(self, records: list[dict[str, Any]], requested: int | None) -> Response:
        batch_size = self.page_size if requested is None else min(self.page_size, requested)
        with self._lock:
            locator = f"01gxx{self._next_id():010d}FAKE"
            if len(records) > batch_size:
                self._cursors[locator] = _Cursor(records, batch_size)
        return json_response(200, self._batch(locator, records, 0, batch_size))

    def _next_batch(self, locator: str, offset: int) -> Response:
        with self._lock:
            cursor = self._cursors.get(locator)
        if cursor is None or offset <= 0 or offset >= len(cursor.records):
            return json_response(400, [{"message": "invalid query locator", "errorCode": "INVALID_QUERY_LOCATOR"}])
        return json_response(200, self._batch(locator, cursor.records, offset, cursor.batch_size))

    def _batch(self, locator: str, records: list[dict[str, Any]], offset: int, size: int) -> dict[str, Any]:
        end = offset + size
        body: dict[str, Any] = {"totalSize": len(records), "done": end >= len(records)}
        if end < len(records):
            body["nextRecordsUrl"] = f"/services/data/{self.api_version}/query/{locator}-{end}"
        body["records"] = records[offset:end]
        return body

    # -- SOQL --------------------------------------------------------------------------------------

    def _run(self, text: str, *, include_deleted: bool) -> list[dict[str, Any]]:
        query = _Parser(text, self._field_type).parse()
        with self._lock:
            rows = [dict(row.values) for row in self._rows.values()]
        rows = [row for row in rows if include_deleted or not row.get("IsDeleted")]
        if query.where is not None:
            rows = [row for row in rows if query.where(row)]
        for name, descending, nulls_first in reversed(query.order_by):
            kind = self._field_type(name)[1]  # type: ignore[index]
            present = [row for row in rows if row.get(name) is not None]
            missing = [row for row in rows if row.get(name) is None]
            present.sort(key=lambda row, n=name, k=kind: _sort_key(k, row[n]), reverse=descending)
            rows = missing + present if nulls_first else present + missing
        rows = rows[query.offset :]
        if query.limit is not None:
            rows = rows[: query.limit]
        url = f"/services/data/{self.api_version}/sobjects/{SOBJECT}/"
        return [
            {
                "attributes": {"type": SOBJECT, "url": url + row["Id"]},
                **{name: _out(row.get(name)) for name in query.fields},
            }
            for row in rows
        ]


# -- SOQL parsing ----------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<op>!=|<>|<=|>=|=|<|>)
  | (?P<punct>[(),])
  | (?P<ident>[A-Za-z_][A-Za-z0-9_.:]*)
    """,
    re.VERBOSE,
)
_KEYWORDS = frozenset(
    {"select", "from", "where", "and", "or", "not", "in", "like", "order", "by", "asc", "desc", "nulls", "first",
     "last", "limit", "offset", "true", "false", "null"}
)  # fmt: skip


@dataclass
class _Token:
    kind: str
    text: str
    column: int  # 1-based


@dataclass
class _Query:
    fields: list[str]
    where: Any
    order_by: list[tuple[str, bool, bool]]
    limit: int | None
    offset: int


class _Parser:
    def __init__(self, text: str, field_type) -> None:
        self.text = text
        self.field_type = field_type
        self.tokens = self._tokenize(text)
        self.position = 0

    def _tokenize(self, text: str) -> list[_Token]:
        tokens, index = [], 0
        while index < len(text):
            match = _TOKEN.match(text, index)
            if match is None:
                raise self._error("MALFORMED_QUERY", f"unexpected token: '{text[index]}'", index + 1)
            if match.lastgroup != "ws":
                tokens.append(_Token(match.lastgroup or "", match.group(), index + 1))
            index = match.end()
        tokens.append(_Token("eof", "<EOF>", len(text) + 1))
        return tokens

    def _error(self, code: str, detail: str, column: int) -> SoqlError:
        return SoqlError(code, detail, self.text, column)

    # token helpers

    def _peek(self) -> _Token:
        return self.tokens[self.position]

    def _next(self) -> _Token:
        token = self.tokens[self.position]
        self.position += 1
        return token

    def _is(self, *words: str) -> bool:
        token = self._peek()
        return token.kind == "ident" and token.text.lower() in words

    def _expect_word(self, word: str) -> _Token:
        token = self._next()
        if token.kind != "ident" or token.text.lower() != word:
            raise self._unexpected(token)
        return token

    def _expect_punct(self, text: str) -> None:
        token = self._next()
        if token.kind != "punct" or token.text != text:
            raise self._unexpected(token)

    def _unexpected(self, token: _Token) -> SoqlError:
        shown = token.text if token.kind == "eof" else f"'{token.text}'"
        return self._error("MALFORMED_QUERY", f"unexpected token: {shown}", token.column)

    # grammar

    def parse(self) -> _Query:
        self._expect_word("select")
        select_tokens = [self._field_token()]
        while self._peek().kind == "punct" and self._peek().text == ",":
            self._next()
            select_tokens.append(self._field_token())
        self._expect_word("from")
        entity = self._next()
        if entity.kind != "ident" or entity.text.lower() in _KEYWORDS:
            raise self._unexpected(entity)
        if entity.text.lower() != SOBJECT.lower():
            raise SoqlError(
                "INVALID_TYPE",
                f"\n{self.text}\n{' ' * (entity.column - 1)}^\nERROR at Row:1:Column:{entity.column}\n"
                f"sObject type '{entity.text}' is not supported. If you are attempting to use a custom object, "
                "be sure to append the '__c' after the entity name. Please reference your WSDL or the describe "
                "call for the appropriate names.",
            )
        fields = [self._resolve(token) for token in select_tokens]
        seen: set[str] = set()
        for name, token in zip(fields, select_tokens, strict=True):
            if name in seen:
                raise self._error("MALFORMED_QUERY", f"duplicate field selected: {name}", token.column)
            seen.add(name)
        where = None
        if self._is("where"):
            self._next()
            where = self._or()
        order_by: list[tuple[str, bool, bool]] = []
        if self._is("order"):
            self._next()
            self._expect_word("by")
            order_by.append(self._order_item())
            while self._peek().kind == "punct" and self._peek().text == ",":
                self._next()
                order_by.append(self._order_item())
        limit = offset = None
        if self._is("limit"):
            self._next()
            limit = self._integer()
        if self._is("offset"):
            self._next()
            offset = self._integer()
        if self._peek().kind != "eof":
            raise self._unexpected(self._peek())
        return _Query(fields, where, order_by, limit, offset or 0)

    def _field_token(self) -> _Token:
        token = self._next()
        if token.kind != "ident" or token.text.lower() in _KEYWORDS:
            raise self._unexpected(token)
        if self._peek().kind == "punct" and self._peek().text == "(":
            raise self._error(
                "MALFORMED_QUERY", f"the fake supports plain fields only, not {token.text}(...)", token.column
            )
        return token

    def _resolve(self, token: _Token) -> str:
        found = self.field_type(token.text)
        if found is None or "." in token.text:
            raise self._error(
                "INVALID_FIELD",
                f"No such column '{token.text}' on entity '{SOBJECT}'. If you are attempting to use a custom "
                "field, be sure to append the '__c' after the custom field name. Please reference your WSDL or "
                "the describe call for the appropriate names.",
                token.column,
            )
        return found[0]

    def _integer(self) -> int:
        token = self._next()
        if token.kind != "number" or not token.text.isdigit():
            raise self._unexpected(token)
        return int(token.text)

    def _order_item(self) -> tuple[str, bool, bool]:
        name = self._resolve(self._field_token())
        descending = False
        if self._is("asc", "desc"):
            descending = self._next().text.lower() == "desc"
        nulls_first = not descending  # Salesforce: nulls first ascending, last descending
        if self._is("nulls"):
            self._next()
            if not self._is("first", "last"):
                raise self._unexpected(self._peek())
            nulls_first = self._next().text.lower() == "first"
        return name, descending, nulls_first

    def _or(self):
        parts = [self._and()]
        while self._is("or"):
            self._next()
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else (lambda row: any(part(row) for part in parts))

    def _and(self):
        parts = [self._not()]
        while self._is("and"):
            self._next()
            parts.append(self._not())
        return parts[0] if len(parts) == 1 else (lambda row: all(part(row) for part in parts))

    def _not(self):
        if self._is("not"):
            self._next()
            inner = self._not()
            return lambda row: not inner(row)
        if self._peek().kind == "punct" and self._peek().text == "(":
            self._next()
            inner = self._or()
            self._expect_punct(")")
            return inner
        return self._condition()

    def _condition(self):
        field_token = self._field_token()
        name = self._resolve(field_token)
        kind = self.field_type(name)[1]
        if self._is("not", "in"):
            negate = self._next().text.lower() == "not"
            if negate:
                self._expect_word("in")
            self._expect_punct("(")
            values = [self._value(name, kind)]
            while self._peek().kind == "punct" and self._peek().text == ",":
                self._next()
                values.append(self._value(name, kind))
            self._expect_punct(")")

            def member(row: dict[str, Any]) -> bool:
                current = _comparable(kind, row.get(name))
                return any(current == value for value in values)

            return (lambda row: not member(row)) if negate else member
        if self._is("like"):
            self._next()
            token = self._next()
            if token.kind != "string":
                raise self._unexpected(token)
            pattern = _like_pattern(_unquote(token.text))
            return lambda row: row.get(name) is not None and pattern.fullmatch(str(row[name])) is not None
        operator = self._next()
        if operator.kind != "op":
            raise self._unexpected(operator)
        value = self._value(name, kind)
        return _comparison(name, kind, operator.text, value)

    def _value(self, name: str, kind: str) -> Any:
        token = self._next()
        if token.kind == "ident" and token.text.lower() == "null":
            return None
        if token.kind == "ident" and token.text.lower() in ("true", "false"):
            if kind != "boolean":
                raise self._type_error(name, kind, token)
            return token.text.lower() == "true"
        if token.kind == "datetime":
            if kind != "datetime":
                raise self._type_error(name, kind, token)
            return epoch_ms(parse_moment(token.text.replace(" ", "")))  # type: ignore[arg-type]
        if token.kind == "date":
            if kind != "date":
                raise self._type_error(name, kind, token)
            return token.text
        if token.kind == "number":
            if kind not in NUMERIC_TYPES:
                raise self._type_error(name, kind, token)
            return Decimal(token.text)
        if token.kind == "string":
            if kind in ("datetime", "date", "boolean") or kind in NUMERIC_TYPES:
                raise self._type_error(name, kind, token)
            return _unquote(token.text).lower()
        if token.kind == "ident":
            raise self._error(
                "MALFORMED_QUERY",
                f"the fake does not support date literals or bind variables like {token.text}",
                token.column,
            )
        raise self._unexpected(token)

    def _type_error(self, name: str, kind: str, token: _Token) -> SoqlError:
        soap = SOAP_TYPE_NAMES.get(kind, kind if kind in ("date", "boolean") else "string")
        if soap == "string":
            detail = (
                f"value of filter criterion for field '{name}' must be of type string and should be enclosed in quotes"
            )
        else:
            detail = (
                f"value of filter criterion for field '{name}' must be of type {soap} "
                "and should not be enclosed in quotes"
            )
        return self._error("INVALID_QUERY_FILTER_OPERATOR", detail, token.column)


def _comparison(name: str, kind: str, operator: str, value: Any):
    if value is None:
        if operator == "=":
            return lambda row: row.get(name) is None
        if operator in ("!=", "<>"):
            return lambda row: row.get(name) is not None
        return lambda row: False
    compare = {
        "=": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        "<>": lambda a, b: a != b,
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }[operator]

    def test(row: dict[str, Any]) -> bool:
        current = _comparable(kind, row.get(name))
        if current is None:
            return operator in ("!=", "<>")
        return compare(current, value)

    return test


def _comparable(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "datetime":
        moment = parse_moment(value)
        return epoch_ms(moment) if moment else None
    if kind == "date":
        return str(value)[:10]
    if kind in NUMERIC_TYPES:
        return Decimal(str(value))
    if kind == "boolean":
        return bool(value)
    return str(value).lower()


def _sort_key(kind: str, value: Any) -> Any:
    return _comparable(kind, value)


def _like_pattern(pattern: str) -> re.Pattern[str]:
    parts = ["." if char == "_" else ".*" if char == "%" else re.escape(char) for char in pattern]
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def _unquote(literal: str) -> str:
    inner = literal[1:-1]
    escapes = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}
    return re.sub(r"\\(.)", lambda match: escapes.get(match.group(1), match.group(0)), inner)


# -- values ----------------------------------------------------------------------------------------


def sf_datetime(moment: datetime) -> str:
    """Salesforce's JSON date-time: 2026-08-15T12:00:00.000+0000."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def _infer_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float | Decimal):
        return "double"
    if isinstance(value, datetime):
        return "datetime"
    if isinstance(value, date):
        return "date"
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return "date"
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}T.+", value) and parse_moment(value):
        return "datetime"
    return "string"


def _store(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "datetime":
        moment = parse_moment(value)
        if moment is None:
            raise ValueError(f"not a date-time: {value!r}")
        return sf_datetime(moment)
    if kind == "date":
        return value.isoformat()[:10] if isinstance(value, date) else str(value)
    if kind == "int":
        return int(value)
    if kind in NUMERIC_TYPES:
        return float(value)  # currency, percent and double come back as JSON numbers with a fraction
    return value


def _out(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal) else value


def _requested_batch_size(request: RecordedRequest) -> int | None:
    match = re.search(r"batchSize=(\d+)", request.headers.get("sforce-query-options", ""))
    if not match:
        return None
    return max(MIN_BATCH_SIZE, min(MAX_BATCH_SIZE, int(match.group(1))))


def _oauth_error(error: str, description: str) -> Response:
    return json_response(400, {"error": error, "error_description": description})
