"""The active tenant of the current unit of work, and the only way to set it.

Every entry point (an HTTP request, a Celery task, a management command) opens exactly one
``tenant_scope``; inside it the tenant may be bound once the principal is known (the session's
membership, an API key). Leaving the scope always restores the previous state, in Python and in the
database session, so nothing leaks into the next request served on the same thread or connection.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


class TenantNotSet(RuntimeError):
    """Raised when tenant-owned data is touched outside a tenant scope (fail closed)."""


@dataclass(frozen=True, slots=True)
class Scope:
    tenant_id: int | None = None
    user_id: int | None = None


_EMPTY = Scope()
_scope: ContextVar[Scope] = ContextVar("partnerhub_scope", default=_EMPTY)
_entry_depth: ContextVar[int] = ContextVar("partnerhub_entry_depth", default=0)


def current_scope() -> Scope:
    return _scope.get()


def current_tenant_id() -> int:
    """The active tenant's id; raises ``TenantNotSet`` when there is none."""
    tenant_id = _scope.get().tenant_id
    if tenant_id is None:
        raise TenantNotSet(
            "No tenant is active. Tenant-owned data is only reachable inside tenant_scope(); "
            "entry points (requests, tasks, commands) open it."
        )
    return tenant_id


def _as_id(value) -> int | None:
    if value is None:
        return None
    return int(getattr(value, "pk", value))


@contextmanager
def tenant_scope(tenant=None, *, user=None) -> Iterator[Scope]:
    """Open a scope for one unit of work; the previous scope is restored on exit, even on error."""
    scope = Scope(tenant_id=_as_id(tenant), user_id=_as_id(user))
    token = _scope.set(scope)
    depth_token = _entry_depth.set(_entry_depth.get() + 1)
    try:
        _push_to_database()
        yield scope
    finally:
        _entry_depth.reset(depth_token)
        _scope.reset(token)
        _push_to_database()


def bind(tenant=None, *, user=None) -> Scope:
    """Rebind the tenant inside the scope of the current entry point (e.g. after API key auth).

    Binding outside a scope is refused: nothing would ever reset it.
    """
    if _entry_depth.get() == 0:
        raise RuntimeError("bind() called outside tenant_scope(); open a scope at the entry point")
    scope = Scope(tenant_id=_as_id(tenant), user_id=_as_id(user))
    _scope.set(scope)
    _push_to_database()
    return scope


def _push_to_database() -> None:
    # Imported late: this module is imported by models and must not pull in the DB layer early.
    from partnerhub.tenancy import rls

    rls.push_scope(_scope.get())
