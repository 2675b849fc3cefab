"""Records, pages, cursors and errors shared by every CRM connector."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

CURSOR_VERSION = 1


@dataclass(frozen=True, slots=True)
class DealRecord:
    """One deal (HubSpot) or opportunity (Salesforce) as the CRM reported it."""

    external_id: str
    name: str
    amount: Decimal | None
    currency: str | None
    stage: str
    closed: bool
    won: bool
    created_at: datetime
    close_date: date | None
    modified_at: datetime
    # The partner attribution exactly as found in the CRM: a custom property value, the id of the
    # company associated under the configured label, or the opportunity's partner account id.
    # Mapping it to a PartnerHub partner is the caller's job.
    partner_ref: str | None
    deleted: bool
    raw: dict[str, Any] = field(repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class PageStats:
    """What fetching one page cost."""

    requests: int = 0
    retries: int = 0
    window_splits: int = 0
    duplicates_skipped: int = 0


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a run stands, as JSON-safe state: stored after each committed page, resumed from by a new worker.

    `window_end` is the fixed upper bound of the run, taken from the clock when the run started;
    once a run is done it is the `since` for the next run (the connector subtracts its overlap).
    """

    kind: str
    window_end: datetime
    state: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": CURSOR_VERSION,
            "kind": self.kind,
            "window_end": self.window_end.isoformat(),
            "state": dict(self.state),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Cursor:
        if data.get("version") != CURSOR_VERSION:
            raise ValueError(f"Unsupported cursor version: {data.get('version')!r}")
        window_end = datetime.fromisoformat(data["window_end"])
        if window_end.tzinfo is None:
            raise ValueError("Cursor window_end must carry a time zone")
        state = data.get("state")
        if not isinstance(state, Mapping):
            raise ValueError("Cursor state must be an object")
        return cls(kind=str(data["kind"]), window_end=window_end, state=dict(state))

    @classmethod
    def from_json(cls, text: str) -> Cursor:
        return cls.from_dict(json.loads(text))


@dataclass(frozen=True, slots=True)
class Page:
    """One batch of records; commit them, store `cursor`, then ask for the next page."""

    records: list[DealRecord]
    cursor: Cursor
    done: bool
    stats: PageStats = PageStats()


class ConnectorError(Exception):
    """The CRM refused or could not answer; the message is meant for the tenant admin."""


class AuthenticationFailed(ConnectorError):
    """The credentials are invalid or revoked; retrying will not help until someone fixes them."""


class ConfigurationError(ConnectorError):
    """The source is configured in a way the CRM cannot serve (a missing field, a missing scope)."""


class RateLimited(ConnectorError):
    """The CRM is throttling us beyond what is worth waiting for in-process; reschedule the run."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TransientError(ConnectorError):
    """Server errors or network failures that outlasted our retries; a later run may succeed."""
