"""Idempotency keys for write requests: a retried request gets the first one's answer, not a second write.

An integration that lost the answer to a push (a time-out, a dropped connection) cannot know
whether the push was recorded. It sends the same request again with the same ``Idempotency-Key``
header and gets the answer the first one got. Keys are the client's: 1 to 200 printable ASCII
characters, a new one for each new request, unique per tenant and principal (API key or person).

====================================  ==============================================================
a key seen for the first time          the work is done; its answer is stored with the key
the same key and content, answered     the stored answer, byte for byte, with ``Idempotent-Replayed:
                                       true``; nothing is written
the same key, other content or path    422, nothing is done
the same key while the first runs      409 with ``Retry-After``
====================================  ==============================================================

Only answers about the request's content are stored: successes (2xx) and refusals of the content
(400, 422). Any other answer (401, 403, 404, 409, 429, a server error) leaves the key free, so the
client can retry with it. Keys are kept 24 hours (``idempotent_requests_expire``, every hour).

Requests without the header work as before: the bulk services are idempotent by content anyway.
The key makes the *answer* repeatable too, and spares the second request its work.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import status
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from partnerhub.integrations.models import IdempotentRequest
from partnerhub.tenancy.models import ApiKey

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 200
KEEP_FOR = datetime.timedelta(hours=24)
# A request still "in flight" this long after it started has lost its process (a web request is
# cut off long before); its key is handed to the next request that brings it.
ABANDONED_AFTER = datetime.timedelta(minutes=10)
# Errors that say "try again", not "this content is wrong": their answers are never stored.
RETRYABLE_CODES = frozenset({"concurrent_change"})

IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    IDEMPOTENCY_HEADER,
    OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    description="A key of your choosing (1-200 printable ASCII characters), new for each request. Sending the "
    "same request again with the same key within 24 hours answers what the first one answered, with "
    "`Idempotent-Replayed: true`, and writes nothing. The same key with other content answers 422; while the "
    "first request is still running, 409.",
)


# --- Keys, principals, content -----------------------------------------------------------------------


def key_problem(key: str) -> str | None:
    """Why ``key`` cannot be an idempotency key, or None."""
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not all(" " <= char <= "~" for char in key):
        return f"The {IDEMPOTENCY_HEADER} header must be 1 to {MAX_KEY_LENGTH} printable ASCII characters, e.g. a UUID."
    return None


def principal_of(request) -> str:
    """Who sends the request: an API key or a person (keys are never shared between them)."""
    if isinstance(request.auth, ApiKey):
        return f"key:{request.auth.pk}"
    return f"user:{request.user.pk}"


def content_hash(data: Any) -> str:
    """SHA-256 of the request's parsed JSON, with its keys sorted and without spacing.

    Parsed rather than raw, so a client that re-encodes the same content (another key order,
    other spacing) is recognized; and reading the raw body again would be limited to
    DATA_UPLOAD_MAX_MEMORY_SIZE, which the parsers are not.
    """
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


# --- Claiming a key, storing the answer, letting go -------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """What a key allows: run the request (``row`` is the new in-flight row), replay ``row``, or refuse."""

    row: IdempotentRequest | None = None
    replay: bool = False
    refusal_status: int | None = None
    refusal: str = ""


def _stale(row: IdempotentRequest, now: datetime.datetime) -> bool:
    return row.created_at < now - KEEP_FOR or (row.in_flight and row.created_at < now - ABANDONED_AFTER)


def idempotent_request_claim(*, principal: str, key: str, endpoint: str, request_hash: str) -> Claim:
    """Take ``key`` for a request, or say what an earlier request with it decides.

    The in-flight row is inserted in a transaction of its own, committed before the request's
    work starts (API views run in autocommit), so a duplicate arriving meanwhile runs into the
    unique constraint instead of doing the work a second time. On PostgreSQL a duplicate that
    arrives before that commit waits on the unique index until it is done.
    """
    now = timezone.now()
    for _attempt in range(3):
        try:
            with transaction.atomic():
                row = IdempotentRequest.objects.create(
                    principal=principal, key=key, endpoint=endpoint[:200], request_hash=request_hash, created_at=now
                )
            return Claim(row=row)
        except IntegrityError:
            pass
        earlier = IdempotentRequest.objects.filter(principal=principal, key=key).first()
        if earlier is None:
            continue  # let go of meanwhile (an answer that is not kept, or expired)
        if _stale(earlier, now):
            # Expired, or its request died: the key is free again. Another request may be freeing it
            # at the same time; the insert above decides which of the two gets it.
            stale = IdempotentRequest.objects.filter(pk=earlier.pk, response_status=earlier.response_status)
            stale.delete()
            continue
        if earlier.endpoint != endpoint[:200]:
            return Claim(
                refusal_status=status.HTTP_422_UNPROCESSABLE_ENTITY,
                refusal=f"This {IDEMPOTENCY_HEADER} was used for {earlier.endpoint}; send a new key with each "
                "new request.",
            )
        if earlier.request_hash != request_hash:
            return Claim(
                refusal_status=status.HTTP_422_UNPROCESSABLE_ENTITY,
                refusal=f"This {IDEMPOTENCY_HEADER} was used with different content; send a new key with each "
                "new request, or the same content to get the first answer again.",
            )
        if earlier.in_flight:
            break
        return Claim(row=earlier, replay=True)
    return Claim(
        refusal_status=status.HTTP_409_CONFLICT,
        refusal=f"A request with this {IDEMPOTENCY_HEADER} is still being processed; send it again once that "
        "one has finished to get its answer.",
    )


def idempotent_request_complete(*, row: IdempotentRequest, response_status: int, body: str) -> None:
    """Store the answer of the request that holds ``row`` (in the request's own transaction).

    A request that ran past ``ABANDONED_AFTER`` may have lost its key to a retry meanwhile; its
    work still stands, only its answer is not kept.
    """
    row.response_status, row.response_body, row.completed_at = response_status, body, timezone.now()
    IdempotentRequest.objects.filter(pk=row.pk, response_status__isnull=True).update(
        response_status=row.response_status, response_body=row.response_body, completed_at=row.completed_at
    )


def idempotent_request_release(*, row: IdempotentRequest) -> None:
    """Let go of a key whose answer is not kept, so the client can retry with it."""
    IdempotentRequest.objects.filter(pk=row.pk, response_status__isnull=True).delete()


def idempotent_requests_expire(*, now: datetime.datetime | None = None) -> int:
    """Forget the active tenant's keys older than 24 hours; returns how many."""
    cutoff = (now or timezone.now()) - KEEP_FOR
    deleted, _ = IdempotentRequest.objects.filter(created_at__lt=cutoff).delete()
    return deleted


# --- The decorator -------------------------------------------------------------------------------------


def _kept(response: HttpResponse) -> bool:
    code = response.status_code
    return status.is_success(code) or code in (status.HTTP_400_BAD_REQUEST, status.HTTP_422_UNPROCESSABLE_ENTITY)


def _replay(row: IdempotentRequest) -> HttpResponse:
    response = HttpResponse(row.response_body, status=row.response_status, content_type="application/json")
    response[REPLAYED_HEADER] = "true"
    return response


def _run(view, action, request, args, kwargs) -> tuple[HttpResponse, bool]:
    """The action's answer, with what it raised turned into DRF's answer; and whether it may be kept.

    A savepoint around the action undoes whatever it wrote before raising.
    """
    try:
        with transaction.atomic():
            return action(view, request, *args, **kwargs), True
    except Exception as error:
        response = view.handle_exception(error)  # raises again what the API does not answer
        retryable = isinstance(error, DjangoValidationError) and getattr(error, "code", None) in RETRYABLE_CODES
        return response, not retryable


def idempotent(action):
    """Give a DRF action ``Idempotency-Key`` support (see the module docstring).

    Put it under ``@action``: it runs after authentication, permissions and throttling, so a
    refused principal never claims a key.
    """

    @functools.wraps(action)
    def run(view, request, *args, **kwargs):
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if key is None:
            return action(view, request, *args, **kwargs)
        problem = key_problem(key)
        if problem:
            return Response({"detail": problem}, status=status.HTTP_400_BAD_REQUEST)
        request_hash = content_hash(request.data)  # malformed JSON answers 400 here, claiming nothing
        claim = idempotent_request_claim(
            principal=principal_of(request),
            key=key,
            endpoint=f"{request.method} {request.path}",
            request_hash=request_hash,
        )
        if claim.refusal_status is not None:
            headers = {"Retry-After": "1"} if claim.refusal_status == status.HTTP_409_CONFLICT else None
            return Response({"detail": claim.refusal}, status=claim.refusal_status, headers=headers)
        if claim.replay:
            return _replay(claim.row)
        request.idempotency_key = key
        try:
            # The work and its stored answer commit together: a stored answer always describes
            # work that was committed, and committed work always has its answer stored.
            with transaction.atomic():
                response, keep = _run(view, action, request, args, kwargs)
                keep = keep and _kept(response)
                if keep:
                    body = JSONRenderer().render(getattr(response, "data", None)).decode("utf-8")
                    idempotent_request_complete(row=claim.row, response_status=response.status_code, body=body)
                else:
                    transaction.set_rollback(True)  # an answer that is not kept leaves nothing written
        except BaseException:
            idempotent_request_release(row=claim.row)
            raise
        if not keep:
            idempotent_request_release(row=claim.row)
        return response

    return run


def idempotency_source_ref(request, *, prefix: str = "api") -> str:
    """The reference a pushed batch's derived values carry: the idempotency key, or a new request id.

    Long keys are hashed so the reference fits its 200 characters.
    """
    key = getattr(request, "idempotency_key", None)
    if key is None:
        return f"{prefix}:{uuid.uuid4().hex}"
    ref = f"{prefix}:{key}"
    if len(ref) > 200:
        ref = f"{prefix}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"
    return ref
