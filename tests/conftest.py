"""Test set-up shared by the whole suite.

SQLite by default; PostgreSQL when DATABASE_URL points at it. On PostgreSQL the schema is created
as the connecting (owner) role, then every test session switches to the application role, so
row-level security applies to every test exactly as in production.
"""

from __future__ import annotations

import importlib
import os

import pytest
from django.db import connection

from partnerhub.celery import app as celery_app
from tests.world import build_world


def pytest_collection_modifyitems(config, items):
    on_postgres = os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))
    has_redis = bool(os.environ.get("REDIS_URL"))
    for item in items:
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(pytest.mark.skip(reason="needs PostgreSQL (DATABASE_URL)"))
        if "redis" in item.keywords and not has_redis:
            item.add_marker(pytest.mark.skip(reason="needs Redis (REDIS_URL)"))


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    from partnerhub.tenancy import rls

    with django_db_blocker.unblock():
        if connection.vendor == "postgresql":
            rls.assume_app_role()
    yield
    with django_db_blocker.unblock():
        if connection.vendor == "postgresql":
            rls.release_app_role()


@pytest.fixture(autouse=True, scope="session")
def _eager_celery():
    """Tasks run in-process in tests; tests of the real broker start a worker themselves."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture(autouse=True)
def _fast_hashing_and_fresh_cache(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def world(db):
    """Two tenants, each with two partners, a member of every role and two API keys."""
    return build_world()


def _published_rules_guard():
    """The migration that keeps published scorecard rules immutable (its SQLite triggers)."""
    return importlib.import_module("scorecards.migrations.0005_published_rules_immutable")


@pytest.fixture
def _owner_role_for_flush(django_db_blocker):
    """Between committed-data tests the database is flushed (TRUNCATE), which is schema work.

    TRUNCATE is the owner's privilege, never the application role's; the flush that follows a
    transactional test runs as the owner, and the application role is assumed again afterwards.
    SQLite flushes with a DELETE per row, which the guard of published scorecard rules refuses: its
    triggers are dropped for the flush (see committed_world) and installed again afterwards.
    """
    from partnerhub.tenancy import rls

    yield
    if connection.vendor == "postgresql":
        rls.assume_app_role()
    else:
        guard = _published_rules_guard()
        with django_db_blocker.unblock(), connection.cursor() as cursor:
            # Fixtures that never lifted the guard (no published rules to flush) leave it in place.
            for statement in [*guard._sqlite_remove(), *guard._sqlite_install()]:
                cursor.execute(statement)


@pytest.fixture
def committed_world(_owner_role_for_flush, transactional_db):
    """The two-tenant world, committed, for tests where another thread or process reads it."""
    from partnerhub.tenancy import rls

    world = build_world()
    yield world
    if connection.vendor == "postgresql":
        rls.release_app_role()
    else:
        with connection.cursor() as cursor:
            for statement in _published_rules_guard()._sqlite_remove():
                cursor.execute(statement)
