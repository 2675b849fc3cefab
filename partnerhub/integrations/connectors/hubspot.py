"""HubSpot deals, read incrementally through the CRM v3 search API.

A run reads the deals whose `hs_lastmodifieddate` lies in [since - overlap, window_end), where
window_end is the clock when the run started, then the deals archived in the same window.

Two properties of the search API shape the paging:
- a search serves at most 10,000 results (HubSpot answers 400 past that; `total` tells us up front),
  so a window whose total passes the cap is halved, recursively, until every search fits;
- `after` is an offset into the sorted results, so a deal modified while we page moves out of the
  window and would shift every later offset by one, skipping a deal we never saw. Instead of
  following `after`, each next page restarts the window at the last modification time we were
  given (keyset paging), and the ids already handed out at exactly that time are skipped. Offsets
  are only followed while a whole page shares one modification time (bulk updates), where no
  keyset can move forward.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
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

SEARCH_PATH = "/crm/v3/objects/deals/search"
ARCHIVED_PATH = "/crm/v3/objects/deals"
ASSOCIATIONS_PATH = "/crm/v4/associations/deals/companies/batch/read"
MODIFIED = "hs_lastmodifieddate"
MAX_PAGE_SIZE = 200
ARCHIVED_PAGE_SIZE = 100
SEARCH_RESULT_CAP = 10_000
DEAL_PROPERTIES = (
    "dealname",
    "amount",
    "deal_currency_code",
    "dealstage",
    "pipeline",
    "hs_is_closed",
    "hs_is_closed_won",
    "createdate",
    "closedate",
    MODIFIED,
    "hs_object_id",
)
# Stages of the default sales pipeline, for portals whose deals lack hs_is_closed / hs_is_closed_won.
DEFAULT_WON_STAGES = frozenset({"closedwon"})
DEFAULT_CLOSED_STAGES = frozenset({"closedwon", "closedlost"})


@dataclass
class _RunState:
    """The JSON-safe state of one run; `Cursor.state` is exactly this."""

    phase: str  # "search", then "archived", then "done"
    windows: list[list[int]]  # pending [start, end) windows in epoch ms, ascending; the first is current
    after: str | None = None  # offset within the current window, only while paging through a tie
    floor_ts: int | None = None  # the current window's start when it was moved up to a seen deal's time
    floor_ids: list[str] = field(default_factory=list)  # deals already handed out at floor_ts
    archived_from: int | None = None  # archived deals before this (epoch ms) were reported by earlier runs
    archived_after: str | None = None

    def to_state(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "windows": [list(window) for window in self.windows],
            "after": self.after,
            "floor_ts": self.floor_ts,
            "floor_ids": list(self.floor_ids),
            "archived_from": self.archived_from,
            "archived_after": self.archived_after,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> _RunState:
        try:
            return cls(
                phase=str(state["phase"]),
                windows=[[int(start), int(end)] for start, end in state["windows"]],
                after=state.get("after"),
                floor_ts=state.get("floor_ts"),
                floor_ids=[str(deal_id) for deal_id in state.get("floor_ids") or []],
                archived_from=state.get("archived_from"),
                archived_after=state.get("archived_after"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"Not a HubSpot cursor: {exc}") from exc


@dataclass
class _Tally:
    window_splits: int = 0
    duplicates_skipped: int = 0


class HubSpotConnector:
    """Reads a HubSpot portal's deals with a private app access token."""

    kind = "hubspot"

    def __init__(
        self,
        base_url: str = "https://api.hubapi.com",
        token: str = "",
        *,
        partner_property: str | None = None,
        association_label: str | None = None,
        overlap: timedelta = timedelta(minutes=5),
        page_size: int = MAX_PAGE_SIZE,
        result_cap: int = SEARCH_RESULT_CAP,
        clock: Clock = utc_now,
        sleep: Sleep = time.sleep,
        retry_policy: RetryPolicy | None = None,
        timeout: float = 30.0,
    ) -> None:
        if not token:
            raise ConfigurationError("A HubSpot private app access token is required.")
        if partner_property and association_label:
            raise ConfigurationError(
                "Attribute HubSpot deals to partners either by a deal property or by an association label, not both."
            )
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        if result_cap < page_size:
            raise ValueError("result_cap must be at least page_size")
        if overlap < timedelta(0):
            raise ValueError("overlap must not be negative")
        self.partner_property = partner_property or None
        self.association_label = (association_label or "").strip() or None
        self.overlap = overlap
        self.page_size = page_size
        self.result_cap = result_cap
        self.clock = clock
        self._token = token
        self._client = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout)
        self._session = ApiSession(
            client=self._client,
            service="HubSpot",
            describe_error=_describe_error,
            policy=retry_policy or RetryPolicy(),
            sleep=sleep,
            clock=clock,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HubSpotConnector:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the run -------------------------------------------------------------------------------

    def iter_pages(self, since: datetime | None = None, cursor: Cursor | None = None) -> Iterator[Page]:
        """Deals modified since `since` (minus the overlap), then the ones archived, page by page.

        With `cursor`, resumes the run it was taken from (and `since` is ignored). The last page
        has `done=True`; its `cursor.window_end` is the `since` for the next run.
        """
        if cursor is not None:
            if cursor.kind != self.kind:
                raise ValueError(f"A {cursor.kind} cursor cannot resume a HubSpot run")
            window_end = cursor.window_end
            run = _RunState.from_state(dict(cursor.state))
        else:
            window_end = self.clock()
            start = to_epoch_millis(since - self.overlap) if since is not None else 0
            run = _RunState(
                phase="search",
                windows=[[start, to_epoch_millis(window_end)]],
                archived_from=start if since is not None else None,
            )
        # Deal id to the newest modification time handed out in this run. The same version is never
        # handed out twice; a newer one is (a deal edited while we page, on a clock behind ours).
        seen: dict[str, int] = {}
        archived_seen: set[str] = set()
        requests, retries = self._session.requests, self._session.retries
        tally = _Tally()
        while True:
            if run.phase == "search":
                records = self._search_step(run, seen, tally)
            elif run.phase == "archived":
                records = self._archived_step(run, window_end, archived_seen)
            else:
                records = []
            done = run.phase == "done"
            if records or done:
                stats = PageStats(
                    requests=self._session.requests - requests,
                    retries=self._session.retries - retries,
                    window_splits=tally.window_splits,
                    duplicates_skipped=tally.duplicates_skipped,
                )
                yield Page(
                    records=records,
                    cursor=Cursor(kind=self.kind, window_end=window_end, state=run.to_state()),
                    done=done,
                    stats=stats,
                )
                requests, retries = self._session.requests, self._session.retries
                tally = _Tally()
            if done:
                return

    def _search_step(self, run: _RunState, seen: dict[str, int], tally: _Tally) -> list[DealRecord]:
        if not run.windows:
            run.phase = "archived"
            return []
        start, end = run.windows[0]
        body = self._search(start, end, run.after)
        results = body.get("results") or []
        total = int(body.get("total") or 0)
        if run.after is None and total > self.result_cap:
            # Results come sorted ascending, so nothing in the window is older than the first one.
            if results:
                start = max(start, _modified_ms(results[0]))
            if end - start < 2:
                raise ConnectorError(
                    f"More than {self.result_cap} HubSpot deals were modified at "
                    f"{from_epoch_millis(start).isoformat()}; the search API cannot page past that many."
                )
            middle = start + (end - start) // 2
            run.windows[0:1] = [[start, middle], [middle, end]]
            tally.window_splits += 1
            return []

        kept: list[dict[str, Any]] = []
        floor = set(run.floor_ids) if run.floor_ts is not None else set()
        for item in results:
            deal_id, modified = str(item["id"]), _modified_ms(item)
            if modified <= seen.get(deal_id, -1) or (deal_id in floor and modified == run.floor_ts):
                tally.duplicates_skipped += 1
                continue
            seen[deal_id] = modified
            kept.append(item)

        next_after = ((body.get("paging") or {}).get("next") or {}).get("after")
        if not results or not next_after:
            run.windows.pop(0)
            run.after, run.floor_ts, run.floor_ids = None, None, []
            if not run.windows:
                run.phase = "archived"
        else:
            last = _modified_ms(results[-1])
            if last > start:
                run.windows[0] = [last, end]
                run.after = None
                run.floor_ts = last
                run.floor_ids = [str(item["id"]) for item in results if _modified_ms(item) == last]
            else:
                run.after = str(next_after)
        return self._records(kept)

    def _archived_step(self, run: _RunState, window_end: datetime, seen: set[str]) -> list[DealRecord]:
        params: dict[str, Any] = {
            "archived": "true",
            "limit": ARCHIVED_PAGE_SIZE,
            "properties": ",".join(self._properties()),
        }
        if run.archived_after:
            params["after"] = run.archived_after
        body = self._check(self._session.send("GET", ARCHIVED_PATH, params=params, headers=self._headers()))
        end = to_epoch_millis(window_end)
        records = []
        for item in body.get("results") or []:
            archived_at = _parse(item, "archivedAt", parse_datetime, item.get("archivedAt"))
            if archived_at is not None:
                archived_ms = to_epoch_millis(archived_at)
                if archived_ms >= end or (run.archived_from is not None and archived_ms < run.archived_from):
                    continue
            # The archive is paged by offset too: a deal archived meanwhile can shift one in twice.
            if str(item["id"]) in seen:
                continue
            seen.add(str(item["id"]))
            records.append(self._record(item, deleted=True, partner_ref=self._property_partner(item)))
        next_after = ((body.get("paging") or {}).get("next") or {}).get("after")
        run.archived_after = str(next_after) if next_after else None
        if not next_after:
            run.phase = "done"
        return records

    # -- requests ------------------------------------------------------------------------------

    def _search(self, start: int, end: int, after: str | None) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "filterGroups": [
                {
                    "filters": [
                        {"propertyName": MODIFIED, "operator": "GTE", "value": str(start)},
                        {"propertyName": MODIFIED, "operator": "LT", "value": str(end)},
                    ]
                }
            ],
            "sorts": [{"propertyName": MODIFIED, "direction": "ASCENDING"}],
            "properties": self._properties(),
            # HubSpot answers 400 for any page reaching past the cap, even one it offered.
            "limit": min(self.page_size, self.result_cap - int(after or 0)),
        }
        if after is not None:
            payload["after"] = after
        return self._check(self._session.send("POST", SEARCH_PATH, json=payload, headers=self._headers()))

    def _partner_companies(self, deal_ids: list[str]) -> dict[str, str]:
        """Deal id to the id of its first company associated under the configured label."""
        wanted = (self.association_label or "").casefold()
        found: dict[str, str] = {}
        inputs: list[dict[str, str]] = [{"id": deal_id} for deal_id in deal_ids]
        while inputs:
            response = self._session.send("POST", ASSOCIATIONS_PATH, json={"inputs": inputs}, headers=self._headers())
            # 207 Multi-Status: some deals have no company associations and are listed as errors.
            body = self._check(response)
            inputs = []
            for item in body.get("results") or []:
                deal_id = str((item.get("from") or {}).get("id"))
                for target in item.get("to") or []:
                    labels = [
                        (kind.get("label") or "").strip().casefold() for kind in target.get("associationTypes") or []
                    ]
                    if wanted in labels and deal_id not in found:
                        found[deal_id] = str(target["toObjectId"])
                after = ((item.get("paging") or {}).get("next") or {}).get("after")
                if after and deal_id not in found:
                    inputs.append({"id": deal_id, "after": str(after)})
        return found

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}

    def _properties(self) -> list[str]:
        properties = list(DEAL_PROPERTIES)
        if self.partner_property and self.partner_property not in properties:
            properties.append(self.partner_property)
        return properties

    def _check(self, response: httpx.Response) -> dict[str, Any]:
        status = response.status_code
        if 200 <= status < 300:
            body = response_json(response)
            if not isinstance(body, dict):
                raise ConnectorError(f"HubSpot answered {status} without a JSON object.")
            return body
        message = _describe_error(response)
        if status == 401:
            raise AuthenticationFailed(f"HubSpot rejected the access token: {message}")
        if status == 403:
            raise ConfigurationError(f"HubSpot refused access; check the private app's scopes: {message}")
        raise ConnectorError(f"HubSpot answered {status}: {message}")

    # -- records -------------------------------------------------------------------------------

    def _records(self, items: list[dict[str, Any]]) -> list[DealRecord]:
        if not items:
            return []
        companies: dict[str, str] = {}
        if self.association_label:
            companies = self._partner_companies([str(item["id"]) for item in items])
        return [
            self._record(
                item,
                deleted=False,
                partner_ref=companies.get(str(item["id"])) if self.association_label else self._property_partner(item),
            )
            for item in items
        ]

    def _property_partner(self, item: dict[str, Any]) -> str | None:
        if not self.partner_property:
            return None
        value = (item.get("properties") or {}).get(self.partner_property)
        if value is None:
            return None
        return str(value).strip() or None

    def _record(self, item: dict[str, Any], *, deleted: bool, partner_ref: str | None) -> DealRecord:
        properties = item.get("properties") or {}
        deal_id = str(item.get("id") or properties.get("hs_object_id"))
        stage = str(properties.get("dealstage") or "")
        closed = _parse(item, "hs_is_closed", parse_bool)
        won = _parse(item, "hs_is_closed_won", parse_bool)
        created_at = _parse(item, "createdate", parse_datetime, item.get("createdAt"))
        modified_at = _parse(item, MODIFIED, parse_datetime, item.get("updatedAt"))
        if deleted:
            # The archive is the deal's latest change, and hs_lastmodifieddate does not move with it.
            modified_at = _parse(item, "archivedAt", parse_datetime, item.get("archivedAt")) or modified_at
        if created_at is None or modified_at is None:
            raise ConnectorError(f"HubSpot deal {deal_id} has no creation or modification time.")
        return DealRecord(
            external_id=deal_id,
            name=str(properties.get("dealname") or ""),
            amount=_parse(item, "amount", parse_decimal),
            currency=properties.get("deal_currency_code") or None,
            stage=stage,
            closed=closed if closed is not None else stage in DEFAULT_CLOSED_STAGES,
            won=won if won is not None else stage in DEFAULT_WON_STAGES,
            created_at=created_at,
            close_date=_parse(item, "closedate", parse_date),
            modified_at=modified_at,
            partner_ref=partner_ref,
            deleted=deleted,
            raw=item,
        )


def _parse(item: dict[str, Any], name: str, parser: Any, value: object = None) -> Any:
    """Parse one property (or `value` when given), naming the deal and property when it is malformed."""
    if value is None:
        value = (item.get("properties") or {}).get(name)
    try:
        return parser(value)
    except ValueError as exc:
        raise ConnectorError(f"HubSpot deal {item.get('id')}: property {name}: {exc}") from exc


def _modified_ms(item: dict[str, Any]) -> int:
    modified = _parse(item, MODIFIED, parse_datetime) or _parse(
        item, "updatedAt", parse_datetime, item.get("updatedAt")
    )
    if modified is None:
        raise ConnectorError(f"HubSpot deal {item.get('id')} has no {MODIFIED}.")
    return to_epoch_millis(modified)


def _describe_error(response: httpx.Response) -> str:
    body = response_json(response)
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return response.text[:300] or response.reason_phrase
