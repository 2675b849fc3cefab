"""A local fake of the HubSpot CRM API for deals, following the public v3/v4 contracts.

Served endpoints (every one needs ``Authorization: Bearer <token>``):

- ``POST /crm/v3/objects/deals/search``: filterGroups (OR of groups, AND inside a group), one sort,
  properties, limit (at most 200), after (an offset cursor); the result cap (10,000 by default).
- ``GET /crm/v3/objects/deals``: the basic list, ``archived=true`` lists archived deals with archivedAt;
  ``associations=companies`` adds each deal's company ids.
- ``GET /crm/v3/objects/deals/{id}``.
- ``POST /crm/v4/associations/deals/companies/batch/read``: company ids with association types and labels.

Contract details kept from HubSpot (see the search guide and the error-handling page):

- every property value is a string; requested properties a deal does not have come back as null;
  search always returns ``hs_object_id``, ``createdate`` and ``hs_lastmodifieddate`` besides those asked;
  without ``properties`` it returns the default deal set.
- date-time filters take epoch milliseconds as a string, or an ISO-8601 string.
- archived deals never appear in search results.
- paging past the cap answers 400 even though ``paging.next`` offered that page: a client has to stop
  at the cap itself (or narrow the query), it is not told in advance.
- the v4 batch read answers 207 Multi-Status with ``errors`` for inputs that have no associations.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from tests.fakes.server import (
    FakeClock,
    FakeServer,
    RecordedRequest,
    Response,
    epoch_ms,
    json_response,
    parse_moment,
)

SEARCH_PATH = "/crm/v3/objects/deals/search"
DEALS_PATH = "/crm/v3/objects/deals"
ASSOCIATIONS_PATH = "/crm/v4/associations/deals/companies/batch/read"

# Returned by a deal search that names no properties (HubSpot's documented default set for deals).
DEFAULT_SEARCH_PROPERTIES = (
    "dealname",
    "amount",
    "closedate",
    "pipeline",
    "dealstage",
    "createdate",
    "hs_lastmodifieddate",
    "hs_object_id",
)
ALWAYS_RETURNED = ("hs_object_id", "createdate", "hs_lastmodifieddate")
# What a free-text ``query`` matches in the fake (HubSpot searches a deal's default searchable properties).
TEXT_SEARCHED = ("dealname", "description")
# The basic list and read endpoints default to fewer properties than search does.
DEFAULT_LIST_PROPERTIES = (
    "dealname",
    "amount",
    "closedate",
    "pipeline",
    "dealstage",
    "createdate",
    "hs_lastmodifieddate",
)

DATETIME_PROPERTIES = frozenset({"createdate", "hs_lastmodifieddate", "closedate", "hs_createdate", "hs_closed_date"})
NUMBER_PROPERTIES = frozenset({"amount", "hs_object_id", "hs_deal_stage_probability", "amount_in_home_currency"})

MAX_SEARCH_LIMIT = 200
MAX_LIST_LIMIT = 100
MAX_FILTER_GROUPS = 5
MAX_FILTERS_PER_GROUP = 6
MAX_FILTERS = 18
MAX_BATCH_INPUTS = 1000
MAX_SEARCH_BODY_CHARS = 3000

# Association type ids HubSpot defines for deal -> company.
DEAL_TO_COMPANY_UNLABELED = 341
DEAL_TO_COMPANY_PRIMARY = 5
FIRST_USER_DEFINED_TYPE_ID = 1000

AUTH_MESSAGE = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find "
    "more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)
# HubSpot documents only "a 400 error" for paging past the 10,000th result (and for an over-long
# search body); the fake answers HubSpot's generic validation message. Clients must recognise the cap
# from their own offset, never from this text.
GENERIC_400_MESSAGE = "There was a problem with the request."


@dataclass
class Deal:
    id: str
    properties: dict[str, str]
    companies: list[tuple[str, str | None]] = field(default_factory=list)
    archived: bool = False
    archived_at: str | None = None


class HubSpotError(Exception):
    def __init__(self, message: str, status: int = 400, category: str = "VALIDATION_ERROR") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.category = category


class FakeHubSpot(FakeServer):
    """HubSpot deals, their company associations, auth, rate limits and queued faults.

    ``rate_limit=(n, seconds)`` allows n requests per rolling window; past it the fake answers 429 with
    HubSpot's rate-limit body (and ``Retry-After`` only when ``rate_limit_retry_after`` is set).
    ``result_cap`` is the search's total-results cap (10,000 on HubSpot).
    """

    def __init__(
        self,
        *,
        token: str = "pat-test",  # noqa: S107 - a fake's credential, known to every test
        result_cap: int = 10_000,
        rate_limit: tuple[int, float] | None = None,
        rate_limit_retry_after: int | None = None,
        rate_limit_policy: str = "TEN_SECONDLY_ROLLING",
        start: datetime = datetime(2026, 1, 1, tzinfo=UTC),
    ) -> None:
        super().__init__()
        self.token = token
        self.result_cap = result_cap
        self.rate_limit = rate_limit
        self.rate_limit_retry_after = rate_limit_retry_after
        self.rate_limit_policy = rate_limit_policy
        self._deals: dict[str, Deal] = {}
        self._label_type_ids: dict[str, int] = {}
        self._clock = FakeClock(start)
        self._window: deque[float] = deque()
        self._endpoint = self._add_endpoint("api")

    @property
    def base_url(self) -> str:
        return self._endpoint.base_url

    # -- data --------------------------------------------------------------------------------------

    def add_deal(self, deal_id: str, *, companies: list[Any] | None = None, **properties: Any) -> None:
        """Create a deal. Property values are stored as strings; createdate/hs_lastmodifieddate default to the clock.

        ``companies`` holds company ids, ``(id, label)`` pairs, or ``(id, [labels])``; a label of None or
        no label is the unlabeled association, "Primary" is HubSpot's primary-company type.
        """
        deal_id = str(deal_id)
        with self._lock:
            if deal_id in self._deals:
                raise ValueError(f"deal {deal_id} exists already")
            values = _stringify(properties)
            for name in ("createdate", "hs_lastmodifieddate"):
                self._clock.observe(parse_moment(values.get(name)))
            # A deal dated by one of the two takes it for both; an undated one gets the next clock tick.
            moment = values.get("createdate") or values.get("hs_lastmodifieddate") or _iso(self._clock.tick())
            values.setdefault("createdate", moment)
            values.setdefault("hs_lastmodifieddate", values["createdate"])
            values["hs_object_id"] = deal_id
            self._deals[deal_id] = Deal(deal_id, values, _normalise_companies(companies or []))

    def update_deal(self, deal_id: str, *, companies: list[Any] | None = None, **properties: Any) -> None:
        """Change properties (None removes one); hs_lastmodifieddate moves forward unless given."""
        with self._lock:
            deal = self._deals[str(deal_id)]
            for name, value in _stringify(properties, keep_none=True).items():
                if value is None:
                    deal.properties.pop(name, None)
                else:
                    deal.properties[name] = value
            self._clock.observe(parse_moment(deal.properties.get("hs_lastmodifieddate")))
            if "hs_lastmodifieddate" not in properties:
                deal.properties["hs_lastmodifieddate"] = _iso(self._clock.tick())
            if companies is not None:
                deal.companies = _normalise_companies(companies)

    def archive_deal(self, deal_id: str, *, archived_at: str | None = None) -> None:
        """Archive a deal: it leaves search and the default list, and shows in the archived list."""
        with self._lock:
            deal = self._deals[str(deal_id)]
            self._clock.observe(parse_moment(deal.properties.get("hs_lastmodifieddate")))
            deal.archived = True
            deal.archived_at = archived_at or _iso(self._clock.tick())

    def restore_deal(self, deal_id: str) -> None:
        with self._lock:
            deal = self._deals[str(deal_id)]
            deal.archived = False
            deal.archived_at = None

    def deal(self, deal_id: str) -> dict[str, str]:
        """A copy of a deal's stored properties."""
        with self._lock:
            return dict(self._deals[str(deal_id)].properties)

    def reset_rate_limit(self) -> None:
        """Refill the rate-limit budget now (tests need not wait for the window to roll)."""
        with self._lock:
            self._window.clear()

    def fail_next(
        self,
        *,
        status: int = 500,
        body: Any = None,
        headers: dict[str, str] | None = None,
        times: int = 1,
        path: str | None = None,
        disconnect: bool = False,
    ) -> None:
        """Answer the next ``times`` requests (whose path starts with ``path``, when given) with this fault.

        ``body`` may be a dict/list (sent as JSON), str/bytes (sent verbatim, e.g. malformed JSON), or
        None (a HubSpot-shaped error body for the status). ``disconnect`` drops the connection instead.
        """
        if body is None and not disconnect:
            body = self._error_body_for(status)
        self._queue_fault(
            status=status,
            body=body,
            headers=headers,
            times=times,
            matches=(lambda request: request.path.startswith(path)) if path else (lambda request: True),
            disconnect=disconnect,
        )

    # -- serving -----------------------------------------------------------------------------------

    def route(self, endpoint: str, request: RecordedRequest) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return self._error(401, AUTH_MESSAGE, "INVALID_AUTHENTICATION")
        limited = self._spend_rate_limit()
        if limited is not None:
            return limited
        try:
            if request.method == "POST" and request.path == SEARCH_PATH:
                return self._search(request)
            if request.method == "POST" and request.path == ASSOCIATIONS_PATH:
                return self._associations(request)
            if request.method == "GET" and request.path == DEALS_PATH:
                return self._with_limit_headers(self._list(request))
            if request.method == "GET" and request.path.startswith(DEALS_PATH + "/"):
                return self._with_limit_headers(self._read(request, request.path.removeprefix(DEALS_PATH + "/")))
        except HubSpotError as error:
            return self._error(error.status, error.message, error.category)
        return self._error(404, f"No route for {request.method} {request.path}", "OBJECT_NOT_FOUND")

    def _error(self, status: int, message: str, category: str, **extra: Any) -> Response:
        body = {"status": "error", "message": message, "correlationId": self.correlation_id(), "category": category}
        return json_response(status, {**body, **extra})

    def _error_body_for(self, status: int) -> dict[str, Any]:
        if status == 401:
            category, message = "INVALID_AUTHENTICATION", AUTH_MESSAGE
        elif status == 429:
            return self._rate_limit_body()
        elif status >= 500:
            category, message = "INTERNAL_ERROR", "internal error"
        else:
            category, message = "VALIDATION_ERROR", GENERIC_400_MESSAGE
        return {"status": "error", "message": message, "correlationId": self.correlation_id(), "category": category}

    def _rate_limit_body(self) -> dict[str, Any]:
        return {
            "status": "error",
            "message": f"You have reached your {self.rate_limit_policy.lower()} limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": self.correlation_id(),
            "policyName": self.rate_limit_policy,
            "category": "RATE_LIMITS",
        }

    def _spend_rate_limit(self) -> Response | None:
        if self.rate_limit is None:
            return None
        allowed, seconds = self.rate_limit
        now = time.monotonic()
        with self._lock:
            while self._window and self._window[0] <= now - seconds:
                self._window.popleft()
            if len(self._window) >= allowed:
                headers = {}
                if self.rate_limit_retry_after is not None:
                    headers["Retry-After"] = str(self.rate_limit_retry_after)
                return json_response(429, self._rate_limit_body(), headers)
            self._window.append(now)
        return None

    def _with_limit_headers(self, response: Response) -> Response:
        # HubSpot sends these on most endpoints but documents that search responses carry none.
        if self.rate_limit is not None:
            allowed, seconds = self.rate_limit
            with self._lock:
                remaining = max(allowed - len(self._window), 0)
            response.headers.update(
                {
                    "X-HubSpot-RateLimit-Max": str(allowed),
                    "X-HubSpot-RateLimit-Remaining": str(remaining),
                    "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(seconds * 1000)),
                }
            )
        return response

    # -- search ------------------------------------------------------------------------------------

    def _search(self, request: RecordedRequest) -> Response:
        if len(request.body.decode("utf-8", "replace")) > MAX_SEARCH_BODY_CHARS:
            raise HubSpotError(GENERIC_400_MESSAGE)
        payload = _json_object(request)
        text = str(payload.get("query") or "").strip().lower()
        limit = _int_field(payload, "limit", default=10)
        if limit < 0 or limit > MAX_SEARCH_LIMIT:
            raise HubSpotError(f"limit must be between 0 and {MAX_SEARCH_LIMIT}; got {limit}")
        offset = _offset(payload.get("after"))
        groups = _filter_groups(payload.get("filterGroups") or [])
        sorts = payload.get("sorts") or []
        if not isinstance(sorts, list) or len(sorts) > 1:
            raise HubSpotError("Only one sort is supported")
        requested = payload.get("properties") or []
        if not isinstance(requested, list):
            raise HubSpotError("properties must be a list of property names")
        names = list(dict.fromkeys([*requested, *ALWAYS_RETURNED])) if requested else list(DEFAULT_SEARCH_PROPERTIES)
        if offset + limit > self.result_cap:
            raise HubSpotError(GENERIC_400_MESSAGE)

        with self._lock:
            matched = [
                deal
                for deal in self._deals.values()
                if not deal.archived
                and (not groups or any(all(f(deal) for f in group) for group in groups))
                and (not text or any(text in (deal.properties.get(name) or "").lower() for name in TEXT_SEARCHED))
            ]
            matched.sort(key=_default_order)
            if sorts:
                matched = _sorted(matched, sorts[0])
            page = [self._result(deal, names) for deal in matched[offset : offset + limit]]
        body: dict[str, Any] = {"total": len(matched), "results": page}
        if offset + limit < len(matched):
            after = str(offset + limit)
            body["paging"] = {"next": {"after": after, "link": f"?after={after}"}}
        return json_response(200, body)

    def _result(self, deal: Deal, names: list[str], *, archived: bool = False) -> dict[str, Any]:
        result = {
            "id": deal.id,
            "properties": {name: deal.properties.get(name) for name in names},
            "createdAt": _instant(deal.properties.get("createdate")),
            "updatedAt": _instant(deal.properties.get("hs_lastmodifieddate")),
            "archived": archived,
        }
        if archived:
            result["archivedAt"] = _instant(deal.archived_at)
        return result

    # -- list and read -----------------------------------------------------------------------------

    def _list(self, request: RecordedRequest) -> Response:
        archived = request.query.get("archived", "false").lower() == "true"
        try:
            limit = min(int(request.query.get("limit", "10")), MAX_LIST_LIMIT)
        except ValueError:
            raise HubSpotError("limit must be an integer") from None
        offset = _offset(request.query.get("after"))
        names = _list_properties(request)
        associations = _property_names(request, "associations")
        with self._lock:
            deals = sorted((d for d in self._deals.values() if d.archived == archived), key=_default_order)
            page = []
            for deal in deals[offset : offset + limit]:
                result = self._result(deal, names, archived=archived)
                if "companies" in associations and deal.companies:
                    result["associations"] = {"companies": {"results": _v3_association_results(deal)}}
                page.append(result)
        body: dict[str, Any] = {"results": page}
        if offset + limit < len(deals):
            after = str(offset + limit)
            body["paging"] = {"next": {"after": after, "link": f"{self.base_url}{DEALS_PATH}?after={after}"}}
        return json_response(200, body)

    def _read(self, request: RecordedRequest, deal_id: str) -> Response:
        archived = request.query.get("archived", "false").lower() == "true"
        names = _list_properties(request)
        with self._lock:
            deal = self._deals.get(deal_id)
            if deal is None or deal.archived != archived:
                return self._error(
                    404,
                    "Object not found.  objectId are usually numeric.",
                    "OBJECT_NOT_FOUND",
                    context={"id": [deal_id]},
                )
            result = self._result(deal, names, archived=archived)
            if "companies" in _property_names(request, "associations") and deal.companies:
                result["associations"] = {"companies": {"results": _v3_association_results(deal)}}
        return json_response(200, result)

    # -- associations v4 ---------------------------------------------------------------------------

    def _associations(self, request: RecordedRequest) -> Response:
        payload = _json_object(request)
        inputs = payload.get("inputs")
        if not isinstance(inputs, list) or not all(isinstance(item, dict) and "id" in item for item in inputs):
            raise HubSpotError('inputs must be a list of {"id": ...} objects')
        if len(inputs) > MAX_BATCH_INPUTS:
            raise HubSpotError(f"Too many inputs: at most {MAX_BATCH_INPUTS} per batch")
        results, errors = [], []
        with self._lock:
            for item in inputs:
                deal = self._deals.get(str(item["id"]))
                if deal is None or deal.archived or not deal.companies:
                    errors.append(
                        {
                            "status": "error",
                            "category": "OBJECT_NOT_FOUND",
                            "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
                            "message": f"No company is associated with deal {item['id']}.",
                            "context": {"fromObjectId": [str(item["id"])]},
                        }
                    )
                    continue
                results.append({"from": {"id": deal.id}, "to": self._v4_to(deal)})
        body: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": "2026-01-01T00:00:00.000Z",
            "completedAt": "2026-01-01T00:00:00.001Z",
        }
        if errors:
            body["numErrors"] = len(errors)
            body["errors"] = errors
        return json_response(207 if errors else 200, body)

    def _v4_to(self, deal: Deal) -> list[dict[str, Any]]:
        grouped: dict[str, list[dict[str, Any]]] = {}
        for company_id, label in deal.companies:
            types = grouped.setdefault(company_id, [])
            if not types:
                types.append({"category": "HUBSPOT_DEFINED", "typeId": DEAL_TO_COMPANY_UNLABELED, "label": None})
            if label is None:
                continue
            if label == "Primary":
                types.append({"category": "HUBSPOT_DEFINED", "typeId": DEAL_TO_COMPANY_PRIMARY, "label": "Primary"})
            else:
                types.append({"category": "USER_DEFINED", "typeId": self._label_type_id(label), "label": label})
        return [
            {"toObjectId": _maybe_int(company_id), "associationTypes": types} for company_id, types in grouped.items()
        ]

    def _label_type_id(self, label: str) -> int:
        if label not in self._label_type_ids:
            self._label_type_ids[label] = FIRST_USER_DEFINED_TYPE_ID + len(self._label_type_ids)
        return self._label_type_ids[label]


# -- helpers ---------------------------------------------------------------------------------------


def _stringify(properties: dict[str, Any], *, keep_none: bool = False) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, value in properties.items():
        if value is None:
            if keep_none:
                values[name] = None
        elif isinstance(value, bool):
            values[name] = "true" if value else "false"
        elif isinstance(value, datetime):
            values[name] = _iso(value)
        else:
            values[name] = str(value)
    return values


def _iso(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _instant(value: str | None) -> str | None:
    moment = parse_moment(value)
    return _iso(moment) if moment else value


def _normalise_companies(companies: list[Any]) -> list[tuple[str, str | None]]:
    pairs: list[tuple[str, str | None]] = []
    for entry in companies:
        if isinstance(entry, tuple | list):
            company_id, labels = entry[0], entry[1] if len(entry) > 1 else None
            if not isinstance(labels, list | tuple):
                labels = [labels]
            pairs.extend((str(company_id), label) for label in labels or [None])
        else:
            pairs.append((str(entry), None))
    return pairs


def _v3_association_results(deal: Deal) -> list[dict[str, str]]:
    seen: dict[str, None] = dict.fromkeys(company_id for company_id, _ in deal.companies)
    return [{"id": company_id, "type": "deal_to_company"} for company_id in seen]


def _maybe_int(value: str) -> int | str:
    return int(value) if value.isdigit() else value


def _json_object(request: RecordedRequest) -> dict[str, Any]:
    if not request.body:
        return {}
    if request.json is None or not isinstance(request.json, dict):
        raise HubSpotError("Invalid input JSON on line 1, column 1: Cannot build request body, expected an object")
    return request.json


def _int_field(payload: dict[str, Any], name: str, *, default: int) -> int:
    value = payload.get(name, default)
    if isinstance(value, bool):
        raise HubSpotError(f"{name} must be an integer")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise HubSpotError(f"{name} must be an integer") from None


def _offset(after: Any) -> int:
    if after in (None, ""):
        return 0
    try:
        offset = int(str(after))
    except ValueError:
        raise HubSpotError(f"Invalid after value: {after}") from None
    if offset < 0:
        raise HubSpotError(f"Invalid after value: {after}")
    return offset


def _property_names(request: RecordedRequest, parameter: str = "properties") -> list[str]:
    names: list[str] = []
    for value in request.query_lists.get(parameter, []):
        names.extend(name.strip() for name in value.split(",") if name.strip())
    return list(dict.fromkeys(names))


def _list_properties(request: RecordedRequest) -> list[str]:
    requested = _property_names(request)
    return list(dict.fromkeys([*requested, *ALWAYS_RETURNED])) if requested else list(DEFAULT_LIST_PROPERTIES)


def _default_order(deal: Deal) -> tuple[int, int, str]:
    return (0, int(deal.id), "") if deal.id.isdigit() else (1, 0, deal.id)


def _typed(name: str, value: str | None) -> Any:
    """A stored or filter value as something comparable for its property's type; None when absent/unparsable."""
    if value is None:
        return None
    if name in DATETIME_PROPERTIES:
        moment = parse_moment(value)
        return epoch_ms(moment) if moment else None
    if name in NUMBER_PROPERTIES:
        try:
            return Decimal(str(value))
        except InvalidOperation:
            return None
    return str(value)


def _sorted(deals: list[Deal], sort: Any) -> list[Deal]:
    if not isinstance(sort, dict) or "propertyName" not in sort:
        raise HubSpotError("Each sort needs a propertyName and a direction")
    name = sort["propertyName"]
    direction = sort.get("direction", "ASCENDING")
    if direction not in ("ASCENDING", "DESCENDING"):
        raise HubSpotError(f"Invalid sort direction: {direction}")
    present = [deal for deal in deals if _typed(name, deal.properties.get(name)) is not None]
    missing = [deal for deal in deals if _typed(name, deal.properties.get(name)) is None]
    # Stable sort on an already id-ordered list: ties keep id order in both directions.
    present.sort(key=lambda deal: _typed(name, deal.properties.get(name)), reverse=direction == "DESCENDING")
    return present + missing


def _filter_groups(groups: Any) -> list[list[Any]]:
    if not isinstance(groups, list):
        raise HubSpotError("filterGroups must be a list")
    if len(groups) > MAX_FILTER_GROUPS:
        raise HubSpotError(f"Too many filter groups: at most {MAX_FILTER_GROUPS}")
    compiled, total = [], 0
    for group in groups:
        filters = group.get("filters") if isinstance(group, dict) else None
        if not isinstance(filters, list):
            raise HubSpotError("Each filter group needs a filters list")
        if len(filters) > MAX_FILTERS_PER_GROUP:
            raise HubSpotError(f"Too many filters in a group: at most {MAX_FILTERS_PER_GROUP}")
        total += len(filters)
        compiled.append([_compile_filter(item) for item in filters])
    if total > MAX_FILTERS:
        raise HubSpotError(f"Too many filters: at most {MAX_FILTERS} in all")
    return compiled


def _compile_filter(item: Any):
    if not isinstance(item, dict) or "propertyName" not in item or "operator" not in item:
        raise HubSpotError("Each filter needs a propertyName and an operator")
    name, operator = item["propertyName"], item["operator"]

    def stored(deal: Deal) -> Any:
        return _typed(name, deal.properties.get(name))

    if operator == "HAS_PROPERTY":
        return lambda deal: deal.properties.get(name) not in (None, "")
    if operator == "NOT_HAS_PROPERTY":
        return lambda deal: deal.properties.get(name) in (None, "")
    if operator in ("IN", "NOT_IN"):
        values = item.get("values")
        if not isinstance(values, list):
            raise HubSpotError(f"{operator} needs a values list")
        wanted = {_filter_value(name, value, operator) for value in values}
        if operator == "IN":
            return lambda deal: stored(deal) in wanted
        return lambda deal: stored(deal) not in wanted
    if operator == "BETWEEN":
        low = _filter_value(name, item.get("value"), operator)
        high = _filter_value(name, item.get("highValue"), operator)
        return lambda deal: stored(deal) is not None and low <= stored(deal) <= high
    if operator in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        token = str(item.get("value", "")).strip("*").lower()

        def contains(deal: Deal) -> bool:
            return token in (deal.properties.get(name) or "").lower()

        return contains if operator == "CONTAINS_TOKEN" else (lambda deal: not contains(deal))
    comparisons = {
        "EQ": lambda a, b: a == b,
        "NEQ": lambda a, b: a != b,
        "LT": lambda a, b: a < b,
        "LTE": lambda a, b: a <= b,
        "GT": lambda a, b: a > b,
        "GTE": lambda a, b: a >= b,
    }
    if operator not in comparisons:
        raise HubSpotError(f"Unsupported filter operator: {operator}")
    compare = comparisons[operator]
    value = _filter_value(name, item.get("value"), operator)
    if operator == "NEQ":
        return lambda deal: stored(deal) is None or compare(stored(deal), value)
    return lambda deal: stored(deal) is not None and compare(stored(deal), value)


def _filter_value(name: str, value: Any, operator: str) -> Any:
    if value is None:
        raise HubSpotError(f"{operator} on {name} needs a value")
    typed = _typed(name, _stringify({name: value})[name])
    if typed is None:
        raise HubSpotError(f"Invalid value for {name}: {value!r}")
    return typed
