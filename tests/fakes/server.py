"""The machinery shared by the local fakes of external APIs.

Each fake is a plain-stdlib ``ThreadingHTTPServer`` on 127.0.0.1 (port 0) served from a daemon thread.
A fake owns its state behind one lock, records every request it receives (in arrival order, with the
status it answered), and holds a queue of faults that replace the next matching responses.

The servers never sleep and never read the wall clock to decide an answer, except for an optional
rate-limit window: everything else, including timestamps a fake invents, comes from ``FakeClock``,
which advances only when the test writes data.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

JSON_CONTENT_TYPE = "application/json;charset=UTF-8"


@dataclass(frozen=True)
class RecordedRequest:
    """One request as a fake received it, and the status it answered."""

    method: str
    path: str
    query: dict[str, str]  # last value of each parameter
    query_lists: dict[str, list[str]]  # every value of each parameter
    headers: dict[str, str]  # names lower-cased
    body: bytes
    json: Any  # the parsed JSON body, or None when the body is empty or not JSON
    form: dict[str, str]  # the parsed body when it is application/x-www-form-urlencoded
    base_url: str  # which of the fake's servers received it
    status: int = 0


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    disconnect: bool = False  # drop the connection without answering


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status=status,
        body=json.dumps(payload, separators=(",", ":")).encode(),
        headers={"Content-Type": JSON_CONTENT_TYPE, **(headers or {})},
    )


@dataclass
class Fault:
    """A queued answer that replaces the real one for the next ``remaining`` matching requests."""

    status: int
    body: Any
    headers: dict[str, str]
    remaining: int
    matches: Callable[[RecordedRequest], bool]
    disconnect: bool = False

    def response(self) -> Response:
        if self.disconnect:
            return Response(status=0, disconnect=True)
        if isinstance(self.body, bytes | str):
            # Raw bodies (truncated or malformed JSON, HTML error pages) go out exactly as given.
            raw = self.body.encode() if isinstance(self.body, str) else self.body
            return Response(self.status, raw, {"Content-Type": JSON_CONTENT_TYPE, **self.headers})
        if self.body is None:
            return Response(self.status, b"", dict(self.headers))
        return json_response(self.status, self.body, self.headers)


class FakeClock:
    """Timestamps for data the test did not date itself: fixed start, moves only on writes.

    ``tick`` returns a moment one second after both the previous tick and the latest moment the
    fake has seen, so an update is always newer than what it replaces.
    """

    def __init__(self, start: datetime) -> None:
        self._now = start

    def observe(self, moment: datetime | None) -> None:
        if moment is not None and moment > self._now:
            self._now = moment

    def tick(self) -> datetime:
        self._now += timedelta(seconds=1)
        return self._now


def parse_moment(value: Any) -> datetime | None:
    """A datetime from epoch milliseconds (int or digit string), an ISO string, or a date; else None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class _Endpoint:
    """One listening socket: a ThreadingHTTPServer in a daemon thread, answering through ``dispatch``."""

    def __init__(self, owner: FakeServer, name: str) -> None:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body leave in separate writes; with Nagle on, each answer waits ~40 ms for an ACK.
            disable_nagle_algorithm = True
            timeout = 10  # an idle keep-alive connection frees its thread

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                owner._serve(endpoint, self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        self.name = name
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        # A short poll interval makes shutdown() quick; the default half second would dominate test time.
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.01}, name=f"fake-{name}", daemon=True
        )

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


class FakeServer:
    """Base of a fake API: servers, lock, request log and fault queue. Subclasses implement ``route``."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._requests: list[RecordedRequest] = []
        self._faults: deque[Fault] = deque()
        self._endpoints: dict[str, _Endpoint] = {}
        self._ids = itertools.count(1)
        self._started = False

    # -- lifecycle -------------------------------------------------------------------------------

    def _add_endpoint(self, name: str) -> _Endpoint:
        endpoint = _Endpoint(self, name)
        self._endpoints[name] = endpoint
        return endpoint

    def start(self) -> FakeServer:
        if not self._started:
            for endpoint in self._endpoints.values():
                endpoint.start()
            self._started = True
        return self

    def stop(self) -> None:
        if self._started:
            for endpoint in self._endpoints.values():
                endpoint.stop()
            self._started = False

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- what tests read and queue -----------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def _queue_fault(
        self,
        *,
        status: int,
        body: Any,
        headers: dict[str, str] | None,
        times: int,
        matches: Callable[[RecordedRequest], bool],
        disconnect: bool,
    ) -> None:
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._faults.append(Fault(status, body, dict(headers or {}), times, matches, disconnect))

    def _take_fault(self, request: RecordedRequest) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(request):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def pending_faults(self) -> int:
        """How many faulty answers are still queued."""
        with self._lock:
            return sum(fault.remaining for fault in self._faults)

    def _next_id(self) -> int:
        with self._lock:
            return next(self._ids)

    def correlation_id(self) -> str:
        """A deterministic UUID-shaped id for error bodies."""
        return f"00000000-0000-4000-8000-{self._next_id():012d}"

    # -- serving -----------------------------------------------------------------------------------

    def route(self, endpoint: str, request: RecordedRequest) -> Response:
        raise NotImplementedError

    def _serve(self, endpoint: _Endpoint, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        request = _parse_request(handler.command, handler.path, dict(handler.headers.items()), body, endpoint)
        fault = self._take_fault(request)
        try:
            response = fault.response() if fault else self.route(endpoint.name, request)
        except Exception as exc:  # a bug in a fake must show up as a loud 500, never a hung test
            response = Response(500, f"fake server error: {exc!r}".encode(), {"Content-Type": "text/plain"})
        # Logged before answering, so a client that has its answer always finds its request in the log.
        with self._lock:
            self._requests.append(_with_status(request, response.status))
        if response.disconnect:
            handler.close_connection = True
            return
        handler.send_response(response.status)
        for name, value in response.headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(response.body)))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(response.body)


def _with_status(request: RecordedRequest, status: int) -> RecordedRequest:
    return RecordedRequest(**{**request.__dict__, "status": status})


def _parse_request(method: str, target: str, headers: dict[str, str], body: bytes, endpoint: _Endpoint):
    parts = urlsplit(target)
    query_lists = parse_qs(parts.query, keep_blank_values=True)
    lowered = {name.lower(): value for name, value in headers.items()}
    parsed_json = None
    if body:
        try:
            parsed_json = json.loads(body)
        except ValueError:
            parsed_json = None
    form: dict[str, str] = {}
    if "application/x-www-form-urlencoded" in lowered.get("content-type", ""):
        form = {key: values[-1] for key, values in parse_qs(body.decode("utf-8", "replace")).items()}
    return RecordedRequest(
        method=method,
        path=parts.path,
        query={key: values[-1] for key, values in query_lists.items()},
        query_lists=query_lists,
        headers=lowered,
        body=body,
        json=parsed_json,
        form=form,
        base_url=endpoint.base_url,
    )
