"""HTTP sending with one retry policy for every connector.

Rate limits (429) are waited out in-process when the wait is short and bounded: the server's
`Retry-After` when it gives one, exponential backoff with jitter when it does not. Server errors
(5xx) and network failures are retried with exponential backoff and jitter. When the attempts run
out the caller gets `RateLimited` (reschedule the run) or `TransientError`. Every other answer,
4xx included, goes back to the connector, which knows what the CRM means by it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type

from partnerhub.integrations.connectors.base import RateLimited, TransientError

Sleep = Callable[[float], None]
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard one request tries before giving up; attempts count the first try."""

    max_attempts: int = 4
    rate_limit_attempts: int = 3
    # A Retry-After longer than this is not slept through in a worker: the run is rescheduled.
    max_retry_after: float = 30.0
    backoff_initial: float = 0.5
    backoff_max: float = 8.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.rate_limit_attempts < 1:
            raise ValueError("A retry policy needs at least one attempt")


def backoff_delay(policy: RetryPolicy, attempt: int) -> float:
    """Exponential backoff after the `attempt`-th failure, plus jitter so workers do not retry in step."""
    exponential = min(policy.backoff_max, policy.backoff_initial * 2 ** (attempt - 1))
    return exponential + random.uniform(0, policy.jitter)  # noqa: S311 - jitter, not cryptography


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds to wait from a `Retry-After` header: delay-seconds or an HTTP date."""
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = (moment - now).total_seconds()
    return max(seconds, 0.0)


class ApiSession:
    """Sends requests through an `httpx.Client` under a `RetryPolicy`, counting requests and retries."""

    def __init__(
        self,
        *,
        client: httpx.Client,
        service: str,
        describe_error: Callable[[httpx.Response], str],
        policy: RetryPolicy,
        sleep: Sleep,
        clock: Clock,
    ) -> None:
        self.client = client
        self.service = service
        self.describe_error = describe_error
        self.policy = policy
        self.sleep = sleep
        self.clock = clock
        self.requests = 0
        self.retries = 0

    def send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        retrying = Retrying(
            retry=retry_if_exception_type((RateLimited, TransientError)),
            stop=self._stop,
            wait=self._wait,
            sleep=self.sleep,
            before_sleep=self._count_retry,
            reraise=True,
        )
        return retrying(self._attempt, method, url, **kwargs)

    def _attempt(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        self.requests += 1
        try:
            response = self.client.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            raise TransientError(f"{self.service} could not be reached: {exc}") from exc
        if response.status_code == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), now=self.clock())
            raise RateLimited(
                f"{self.service} rate limit reached: {self.describe_error(response)}", retry_after=retry_after
            )
        if response.status_code >= 500:
            raise TransientError(f"{self.service} answered {response.status_code}: {self.describe_error(response)}")
        return response

    def _stop(self, state: RetryCallState) -> bool:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, RateLimited):
            if error.retry_after is not None and error.retry_after > self.policy.max_retry_after:
                return True
            return state.attempt_number >= self.policy.rate_limit_attempts
        return state.attempt_number >= self.policy.max_attempts

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, RateLimited) and error.retry_after is not None:
            return error.retry_after
        return backoff_delay(self.policy, state.attempt_number)

    def _count_retry(self, state: RetryCallState) -> None:
        self.retries += 1


def response_json(response: httpx.Response) -> Any:
    """The decoded body, or None when it is not JSON (a proxy's HTML error page, an empty body)."""
    try:
        return response.json()
    except ValueError:
        return None
