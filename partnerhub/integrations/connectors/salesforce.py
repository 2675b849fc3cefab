"""Salesforce opportunities, read incrementally through the REST API's queryAll resource.

Authentication is the OAuth 2.0 client credentials flow against `{login_url}/services/oauth2/token`;
every later call goes to the `instance_url` that token answer names. A run asks SOQL for the
opportunities whose `SystemModstamp` lies in (since - overlap, window_end], oldest first, through
`queryAll` so deleted rows (IsDeleted = true) come back too, and follows `nextRecordsUrl`.

Query locators expire after a few idle minutes, so a cursor never stores one: it
stores the last `SystemModstamp` handed out and the ids handed out in that second, and a resumed
run (or a run whose session expired mid-way) re-issues the SOQL from there and skips those ids.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from partnerhub.integrations.connectors.base import (
    AuthenticationFailed,
    ConfigurationError,
    ConnectorError,
    Cursor,
    DealRecord,
    Page,
    PageStats,
    RateLimited,
)
from partnerhub.integrations.connectors.http import (
    ApiSession,
    Clock,
    RetryPolicy,
    Sleep,
    response_json,
    utc_now,
)
from partnerhub.integrations.connectors.values import (
    from_epoch_millis,
    parse_bool,
    parse_date,
    parse_datetime,
    parse_decimal,
    to_epoch_millis,
)

TOKEN_PATH = "/services/oauth2/token"  # noqa: S105 - a URL path, not a secret
MODIFIED = "SystemModstamp"
BASE_FIELDS = (
    "Id",
    "Name",
    "Amount",
    "StageName",
    "IsClosed",
    "IsWon",
    "CloseDate",
    "CreatedDate",
    MODIFIED,
    "IsDeleted",
)
# Salesforce honours batchSize between 200 and 2,000, and treats it as a hint.
MIN_BATCH_SIZE = 200
MAX_BATCH_SIZE = 2000
_FIELD_PATH = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*$")
_API_VERSION = re.compile(r"^v\d+\.\d$")
_NAMED_FIELD = re.compile(r"(?:No such column|relationship) '([^']+)'")


@dataclass
class _RunState:
    """The JSON-safe state of one run; `Cursor.state` is exactly this."""

    start: int | None  # exclusive lower bound of the run (epoch ms, whole second); None reads everything
    last_stamp: int | None = None  # SystemModstamp of the last opportunity handed out (epoch ms)
    last_ids: list[str] = field(default_factory=list)  # handed out within last_stamp's second
    done: bool = False

    def to_state(self) -> dict[str, Any]:
        return {"start": self.start, "last_stamp": self.last_stamp, "last_ids": list(self.last_ids), "done": self.done}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> _RunState:
        try:
            return cls(
                start=None if state.get("start") is None else int(state["start"]),
                last_stamp=None if state.get("last_stamp") is None else int(state["last_stamp"]),
                last_ids=[str(record_id) for record_id in state.get("last_ids") or []],
                done=bool(state.get("done", False)),
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(f"Not a Salesforce cursor: {exc}") from exc


class _RestartQuery(Exception):
    """The query locator is no longer usable; re-issue the SOQL from the run's state."""


class SalesforceConnector:
    """Reads a Salesforce org's opportunities as an external client app with client credentials."""

    kind = "salesforce"

    def __init__(
        self,
        login_url: str,
        client_id: str,
        client_secret: str,
        *,
        api_version: str = "v61.0",
        token_url: str | None = None,
        partner_field: str = "PartnerAccountId",
        currency_field: str | None = "CurrencyIsoCode",
        overlap: timedelta = timedelta(minutes=5),
        page_size: int = MAX_BATCH_SIZE,
        clock: Clock = utc_now,
        sleep: Sleep = time.sleep,
        retry_policy: RetryPolicy | None = None,
        timeout: float = 30.0,
    ) -> None:
        if not client_id or not client_secret:
            raise ConfigurationError("A Salesforce consumer key and consumer secret are required.")
        if not _API_VERSION.match(api_version):
            raise ConfigurationError(f"A Salesforce API version looks like v61.0; got {api_version!r}.")
        for name in (partner_field, currency_field):
            if name is not None and not _FIELD_PATH.match(name):
                raise ConfigurationError(f"{name!r} is not a Salesforce field API name.")
        if overlap < timedelta(0):
            raise ValueError("overlap must not be negative")
        self.login_url = login_url.rstrip("/")
        # My Domain orgs and sandboxes may name their own token endpoint; by default it is the login host's.
        self.token_url = (token_url or "").strip() or f"{self.login_url}{TOKEN_PATH}"
        self.api_version = api_version
        self.partner_field = partner_field
        self.currency_field = currency_field
        self.overlap = overlap
        self.batch_size = max(MIN_BATCH_SIZE, min(MAX_BATCH_SIZE, page_size))
        self.clock = clock
        self._client_id = client_id
        self._client_secret = client_secret
        self._access_token: str | None = None
        self._instance_url: str | None = None
        self._client = httpx.Client(timeout=timeout)
        self._session = ApiSession(
            client=self._client,
            service="Salesforce",
            describe_error=_describe_error,
            policy=retry_policy or RetryPolicy(),
            sleep=sleep,
            clock=clock,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> SalesforceConnector:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def instance_url(self) -> str | None:
        """The org's API host, as named by the last token answer."""
        return self._instance_url

    # -- the run -------------------------------------------------------------------------------

    def iter_pages(self, since: datetime | None = None, cursor: Cursor | None = None) -> Iterator[Page]:
        """Opportunities modified (or deleted) since `since` minus the overlap, page by page.

        With `cursor`, resumes the run it was taken from (and `since` is ignored). The last page
        has `done=True`; its `cursor.window_end` is the `since` for the next run.
        """
        if cursor is not None:
            if cursor.kind != self.kind:
                raise ValueError(f"A {cursor.kind} cursor cannot resume a Salesforce run")
            window_end = cursor.window_end
            run = _RunState.from_state(dict(cursor.state))
        else:
            window_end = self.clock()
            start = _whole_second(to_epoch_millis(since - self.overlap)) if since is not None else None
            run = _RunState(start=start)
        end = _whole_second(to_epoch_millis(window_end))

        if run.done:
            # Resuming a finished run hands back its final cursor and nothing else.
            yield Page(
                records=[], cursor=Cursor(kind=self.kind, window_end=window_end, state=run.to_state()), done=True
            )
            return

        requests, retries = self._session.requests, self._session.retries
        next_url: str | None = None
        # One fresh session per failure: a session refused right after it was issued is not retried.
        session_renewed = False
        locator_restarted = False
        while not run.done:
            try:
                if next_url is None:
                    body = self._api_get(
                        f"/services/data/{self.api_version}/queryAll", params={"q": self._soql(run, end)}
                    )
                else:
                    body = self._api_get(next_url)
            except _SessionExpired:
                if session_renewed:
                    raise AuthenticationFailed(
                        "Salesforce refused a session it had just issued (INVALID_SESSION_ID); check the "
                        "external client app's policies and the integration user."
                    ) from None
                self._authenticate()
                session_renewed, next_url = True, None
                continue
            except _RestartQuery:
                if locator_restarted or next_url is None:
                    raise ConnectorError("Salesforce rejected the query locator twice in a row.") from None
                locator_restarted, next_url = True, None
                continue
            session_renewed = locator_restarted = False

            records, skipped = self._take(run, body.get("records") or [])
            next_url = body.get("nextRecordsUrl")
            run.done = bool(body.get("done", True)) or not next_url
            yield Page(
                records=records,
                cursor=Cursor(kind=self.kind, window_end=window_end, state=run.to_state()),
                done=run.done,
                stats=PageStats(
                    requests=self._session.requests - requests,
                    retries=self._session.retries - retries,
                    duplicates_skipped=skipped,
                ),
            )
            requests, retries = self._session.requests, self._session.retries

    def _take(self, run: _RunState, rows: list[dict[str, Any]]) -> tuple[list[DealRecord], int]:
        records, skipped = [], 0
        for row in rows:
            record = self._record(row)
            stamp = to_epoch_millis(record.modified_at)
            if run.last_stamp is not None and stamp < run.last_stamp:
                # SOQL resumed from the start of last_stamp's second; earlier rows were handed out.
                skipped += 1
                continue
            if record.external_id in run.last_ids and _whole_second(stamp) == _whole_second(run.last_stamp or 0):
                skipped += 1
                continue
            if run.last_stamp is None or _whole_second(stamp) != _whole_second(run.last_stamp):
                run.last_ids = []
            run.last_stamp = stamp
            run.last_ids.append(record.external_id)
            records.append(record)
        return records, skipped

    def _soql(self, run: _RunState, end: int) -> str:
        fields = list(BASE_FIELDS)
        for extra in (self.currency_field, self.partner_field):
            if extra and extra not in fields:
                fields.append(extra)
        conditions = []
        if run.last_stamp is not None:
            conditions.append(f"{MODIFIED} >= {_soql_datetime(_whole_second(run.last_stamp))}")
        elif run.start is not None:
            conditions.append(f"{MODIFIED} > {_soql_datetime(run.start)}")
        conditions.append(f"{MODIFIED} <= {_soql_datetime(end)}")
        # Field names are validated API names and the literals are formatted timestamps: nothing user-typed.
        where = " AND ".join(conditions)
        return f"SELECT {', '.join(fields)} FROM Opportunity WHERE {where} ORDER BY {MODIFIED} ASC"  # noqa: S608

    # -- requests ------------------------------------------------------------------------------

    def _authenticate(self) -> None:
        response = self._session.send(
            "POST",
            self.token_url,
            data={
                "grant_type": "client_credentials",
                "client_id": self._client_id,
                "client_secret": self._client_secret,
            },
            headers={"Accept": "application/json"},
        )
        body = response_json(response)
        if response.status_code != 200:
            if isinstance(body, dict) and body.get("error"):
                detail = f"{body['error']}: {body.get('error_description') or ''}".rstrip(": ")
            else:
                detail = response.text[:300] or response.reason_phrase
            raise AuthenticationFailed(f"Salesforce refused the client credentials ({response.status_code} {detail}).")
        if not isinstance(body, dict) or not body.get("access_token") or not body.get("instance_url"):
            raise AuthenticationFailed("Salesforce's token answer has no access_token or instance_url.")
        self._access_token = str(body["access_token"])
        self._instance_url = str(body["instance_url"]).rstrip("/")

    def _api_get(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        if self._access_token is None:
            self._authenticate()
        response = self._session.send(
            "GET",
            f"{self._instance_url}{path}",
            params=params,
            headers={
                "Authorization": f"Bearer {self._access_token}",
                "Accept": "application/json",
                "Sforce-Query-Options": f"batchSize={self.batch_size}",
            },
        )
        if response.status_code == 200:
            body = response_json(response)
            if not isinstance(body, dict):
                raise ConnectorError("Salesforce answered 200 without a JSON object.")
            return body
        errors = _errors(response)
        codes = {error.get("errorCode") for error in errors}
        message = _describe_error(response)
        if response.status_code == 401 or "INVALID_SESSION_ID" in codes:
            raise _SessionExpired(message)
        if "REQUEST_LIMIT_EXCEEDED" in codes:
            raise RateLimited(f"Salesforce API request limit reached: {message}", retry_after=None)
        if "INVALID_QUERY_LOCATOR" in codes:
            raise _RestartQuery(message)
        if "INVALID_FIELD" in codes:
            raise self._field_error(message)
        raise ConnectorError(f"Salesforce answered {response.status_code}: {message}")

    def _field_error(self, message: str) -> ConnectorError:
        if _names_field(message, self.partner_field):
            if self.partner_field == "PartnerAccountId":
                advice = (
                    "enable Partner Relationship Management (partner accounts) in the org, or map a custom "
                    "Opportunity field that holds the partner"
                )
            else:
                advice = (
                    "check the field's API name (custom fields end in __c) and that the integration user "
                    "can read it, or map another field"
                )
            return ConfigurationError(
                f"The Salesforce field {self.partner_field} is not available on Opportunity: {advice}. "
                f"Salesforce said: {message}"
            )
        if self.currency_field and _names_field(message, self.currency_field):
            return ConfigurationError(
                f"The Salesforce field {self.currency_field} is not available on Opportunity: the org does not "
                f"use multiple currencies; configure the source without a currency field. Salesforce said: {message}"
            )
        return ConnectorError(f"Salesforce rejected a field of the query: {message}")

    # -- records -------------------------------------------------------------------------------

    def _record(self, row: dict[str, Any]) -> DealRecord:
        record_id = str(row.get("Id") or "")
        if not record_id:
            raise ConnectorError("Salesforce returned an opportunity without an Id.")

        def value(name: str, parser: Any) -> Any:
            try:
                return parser(_field_value(row, name))
            except ValueError as exc:
                raise ConnectorError(f"Salesforce opportunity {record_id}: field {name}: {exc}") from exc

        created_at = value("CreatedDate", parse_datetime)
        modified_at = value(MODIFIED, parse_datetime)
        if created_at is None or modified_at is None:
            raise ConnectorError(f"Salesforce opportunity {record_id} has no CreatedDate or {MODIFIED}.")
        partner = _field_value(row, self.partner_field)
        partner_ref = (str(partner).strip() or None) if partner is not None else None
        return DealRecord(
            external_id=record_id,
            name=str(row.get("Name") or ""),
            amount=value("Amount", parse_decimal),
            currency=(str(_field_value(row, self.currency_field) or "") or None) if self.currency_field else None,
            stage=str(row.get("StageName") or ""),
            closed=bool(value("IsClosed", parse_bool)),
            won=bool(value("IsWon", parse_bool)),
            created_at=created_at,
            close_date=value("CloseDate", parse_date),
            modified_at=modified_at,
            partner_ref=partner_ref,
            deleted=bool(value("IsDeleted", parse_bool)),
            raw=row,
        )


class _SessionExpired(Exception):
    """Salesforce answered INVALID_SESSION_ID."""


def _field_value(row: dict[str, Any], path: str | None) -> Any:
    """A field of a query row, following relationship paths such as `Partner__r.Code__c`."""
    if not path:
        return None
    value: Any = row
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _names_field(message: str, field_path: str) -> bool:
    """Whether an INVALID_FIELD message is about `field_path` (not merely echoing the query that holds it)."""
    # Salesforce echoes the whole query, a caret and a position, then the reason naming the culprit:
    # "No such column 'X' on entity ..." or "Didn't understand relationship 'X__r' in field path ...".
    named = {name.lower() for name in _NAMED_FIELD.findall(message)}
    if named:
        wanted = field_path.lower()
        return wanted in named or wanted.split(".", 1)[0] in named
    reason = message.strip().splitlines()[-1] if message.strip() else ""
    return re.search(rf"(?<![A-Za-z0-9_.]){re.escape(field_path)}(?![A-Za-z0-9_])", reason) is not None


def _whole_second(millis: int) -> int:
    return millis - millis % 1000


def _soql_datetime(millis: int) -> str:
    """SOQL takes dateTime literals unquoted, as ISO 8601 in UTC with a Z."""
    return from_epoch_millis(millis).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _errors(response: httpx.Response) -> list[dict[str, Any]]:
    body = response_json(response)
    if isinstance(body, dict):
        body = [body]
    if not isinstance(body, list):
        return []
    return [error for error in body if isinstance(error, dict)]


def _describe_error(response: httpx.Response) -> str:
    errors = _errors(response)
    parts = []
    for error in errors:
        code = error.get("errorCode") or error.get("error")
        text = error.get("message") or error.get("error_description")
        if code or text:
            parts.append(": ".join(str(part) for part in (code, text) if part))
    if parts:
        return "; ".join(parts)
    return response.text[:300] or response.reason_phrase
