"""Celery tasks run inside the tenant they are given, and leave no tenant behind."""

from __future__ import annotations

import pytest
from django.db import connection

from partnerhub.celery import app as celery_app
from partnerhub.partners.models import Partner
from partnerhub.tenancy.context import current_scope, tenant_scope
from partnerhub.tenancy.tasks import tenant_task
from tests.tenancy.urls_probe import database_tenant


@tenant_task(name="tests.partner_names")
def partner_names_task(*, tenant_id: int) -> dict:
    return {
        "tenant_id": current_scope().tenant_id,
        "db_tenant": database_tenant(),
        "names": sorted(Partner.objects.values_list("name", flat=True)),
    }


def test_a_task_sees_exactly_its_tenants_data(world):
    result = partner_names_task.delay(tenant_id=world.b.tenant.pk).get()
    assert result["tenant_id"] == world.b.tenant.pk
    assert result["names"] == ["Globex Partner 1", "Globex Partner 2"]
    assert current_scope().tenant_id is None


def test_a_task_resets_the_tenant_even_inside_another_scope(world):
    with tenant_scope(world.a.tenant):
        partner_names_task.delay(tenant_id=world.b.tenant.pk).get()
        assert current_scope().tenant_id == world.a.tenant.pk
        assert {p.tenant_id for p in Partner.objects.all()} == {world.a.tenant.pk}


def test_a_task_without_a_tenant_is_refused(world):
    with pytest.raises(TypeError):
        partner_names_task.delay().get()
    with pytest.raises(ValueError, match="tenant_id"):
        partner_names_task.delay(tenant_id=None).get()


def test_task_defaults_are_safe_to_redeliver():
    assert partner_names_task.acks_late is True
    assert partner_names_task.reject_on_worker_lost is True
    # Time limits apply to every task from the configuration (CELERY_TASK_*_TIME_LIMIT).
    assert celery_app.conf.task_time_limit and celery_app.conf.task_soft_time_limit
    assert celery_app.conf.task_soft_time_limit < celery_app.conf.task_time_limit
    assert partner_names_task.max_retries and partner_names_task.retry_backoff


@pytest.mark.redis
def test_a_real_worker_runs_the_task_through_redis_in_the_right_tenant(committed_world):
    world = committed_world
    from celery.contrib.testing.worker import start_worker

    assert celery_app.conf.broker_url.startswith("redis://")
    celery_app.conf.task_always_eager = False
    try:
        with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            result = partner_names_task.delay(tenant_id=world.a.tenant.pk).get(timeout=30)
    finally:
        celery_app.conf.task_always_eager = True
    assert result["tenant_id"] == world.a.tenant.pk
    assert result["names"] == ["Acme Partner 1", "Acme Partner 2"]
    if connection.vendor == "postgresql":
        assert result["db_tenant"] == str(world.a.tenant.pk)
