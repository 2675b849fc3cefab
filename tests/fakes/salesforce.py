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

The SOQL subset it understands, and the errors it gives, are described in tests.fakes.soql.
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
    json_response,
    parse_moment,
)
from tests.fakes.soql import NUMERIC_TYPES, SoqlError, parse

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

MIN_BATCH_SIZE, MAX_BATCH_SIZE = 200, 2000

INVALID_SESSION = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
REQUEST_LIMIT = [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
NOT_FOUND = [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]


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

    @property
    def api_calls(self) -> int:
        """Authenticated data-API calls answered so far (what ``request_limit`` counts)."""
        with self._lock:
            return self._api_calls

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
        """Values in stored form under their canonical names; a field new to the org gets a type from its value."""
        values: dict[str, Any] = {}
        for name, value in fields.items():
            known = self._schema_entry(name)
            if known is None:
                known = (name, _infer_type(value))
                self._extra_fields[name] = known[1]
            canonical, kind = known
            values[canonical] = _store(kind, value)
        return values

    def _schema_entry(self, name: str) -> tuple[str, str] | None:
        lowered = name.lower()
        for canonical, kind in (*OPPORTUNITY_FIELDS.items(), *self._extra_fields.items()):
            if canonical.lower() == lowered:
                return canonical, kind
        return None

    def _field_type(self, name: str) -> tuple[str, str] | None:
        """(canonical name, type) for a field name in any case, or None when the org lacks it."""
        with self._lock:  # tests may add fields (and hide them) while a query is being parsed
            if name.lower() in {unknown.lower() for unknown in self.unknown_fields}:
                return None
            return self._schema_entry(name)

    # -- serving -----------------------------------------------------------------------------------

    def route(self, endpoint: str, request: RecordedRequest) -> Response:
        if endpoint == "login":
            if request.method == "POST" and request.path == TOKEN_PATH:
                return self._token(request)
            return json_response(404, NOT_FOUND)
        if request.method == "GET" and request.path.rstrip("/") == "/services/data":
            # The versions list is the one resource Salesforce serves without a session.
            version = self.api_version.removeprefix("v")
            return json_response(
                200, [{"label": "Fake", "url": f"/services/data/{self.api_version}", "version": version}]
            )
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
        query = parse(text, sobject=SOBJECT, field_type=self._field_type)
        with self._lock:
            rows = [dict(row.values) for row in self._rows.values() if include_deleted or not row.values["IsDeleted"]]
        url = f"/services/data/{self.api_version}/sobjects/{SOBJECT}/"
        return [
            {"attributes": {"type": SOBJECT, "url": url + row["Id"]}, **{name: row.get(name) for name in query.fields}}
            for row in query.apply(rows)
        ]


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


def _requested_batch_size(request: RecordedRequest) -> int | None:
    match = re.search(r"batchSize=(\d+)", request.headers.get("sforce-query-options", ""))
    if not match:
        return None
    return max(MIN_BATCH_SIZE, min(MAX_BATCH_SIZE, int(match.group(1))))


def _oauth_error(error: str, description: str) -> Response:
    return json_response(400, {"error": error, "error_description": description})
