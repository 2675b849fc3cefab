"""The audit log page: newest first, filters, keyset pagination, readable changes, isolation."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from partnerhub.tenancy.audit import audit
from partnerhub.tenancy.context import tenant_scope
from partnerhub.tenancy.models import AuditEvent
from partnerhub.tenancy.selectors import audit_change_rows

AUDIT = reverse("audit_list")


def add_events(tenant_world, count, *, verb="partner.updated", start=None, step=datetime.timedelta(minutes=1)):
    """``count`` events, one ``step`` apart, the newest at ``start`` (default: now).

    Written with their time set at creation: the log is append-only, and on PostgreSQL the
    application role may not UPDATE it at all.
    """
    start = start or timezone.now()
    target = tenant_world.partners[0]
    admin = tenant_world.users["admin"]
    with tenant_scope(tenant_world.tenant):
        AuditEvent.objects.bulk_create(
            AuditEvent(
                tenant=tenant_world.tenant,
                actor=admin,
                actor_label=admin.email,
                verb=verb,
                target_type=target._meta.label_lower,
                target_id=str(target.pk),
                target_repr=str(target),
                changes={"region": [f"R{n}", f"R{n + 1}"]},
                created_at=start - n * step,
            )
            for n in range(count)
        )


def listed(response):
    return [event for event, _changes in response.context["rows"]]


def test_admin_sees_the_log_newest_first_with_readable_changes(client, world):
    with tenant_scope(world.a.tenant):
        audit(
            actor=world.a.users["admin"],
            verb="membership.role_changed",
            target=world.a.memberships["executive"],
            changes={"role": ["executive", "partner_manager"], "partner": ["", "Acme Partner 1"]},
        )
    client.force_login(world.a.users["admin"])
    response = client.get(AUDIT)
    assert response.status_code == 200
    assert response.context["nav"] == "audit"
    events = listed(response)
    assert events[0].verb == "membership.role_changed"
    assert [e.created_at for e in events] == sorted((e.created_at for e in events), reverse=True)
    body = response.content.decode()
    assert '<span class="change-field">role</span> <span class="change-old">executive</span> → ' in body
    assert '<span class="change-new">partner_manager</span>' in body
    # An empty old value reads as a dash, not as nothing.
    assert '<span class="change-field">partner</span> <span class="change-none">—</span> → ' in body


def test_the_log_shows_only_the_active_tenants_events(client, world):
    add_events(world.b, 3, verb="partner.deleted")
    client.force_login(world.a.users["admin"])
    response = client.get(AUDIT)
    assert {event.tenant_id for event in listed(response)} == {world.a.tenant.pk}
    assert "partner.deleted" not in response.content.decode()


@pytest.mark.parametrize("role", ["partner_manager", "executive", "partner_admin", "partner_member"])
def test_only_admins_may_read_the_audit_log(client, world, role):
    client.force_login(world.a.users[role])
    assert client.get(AUDIT).status_code == 403


def test_filters_by_action_who_object_and_dates(client, world):
    now = timezone.now()
    add_events(world.a, 2, verb="membership.created", start=now - datetime.timedelta(days=10))
    add_events(world.a, 3, verb="membership.removed", start=now - datetime.timedelta(days=2))
    client.force_login(world.a.users["admin"])

    exact = listed(client.get(AUDIT, {"verb": "membership.removed"}))
    assert {e.verb for e in exact} == {"membership.removed"} and len(exact) == 3
    family = listed(client.get(AUDIT, {"verb": "membership"}))
    assert {e.verb for e in family} == {"membership.created", "membership.removed"}
    assert len(listed(client.get(AUDIT, {"verb": "membership."}))) == 5

    by_actor = listed(client.get(AUDIT, {"actor": "ADMIN@acme"}))
    assert by_actor and all(e.actor_label == "admin@acme.test" for e in by_actor)
    assert listed(client.get(AUDIT, {"actor": "nobody@"})) == []

    keys = listed(client.get(AUDIT, {"target_type": "tenancy.apikey"}))
    assert {e.verb for e in keys} == {"api_key.created"}

    day = (now - datetime.timedelta(days=10)).date()
    dated = listed(client.get(AUDIT, {"since": day.isoformat(), "until": day.isoformat()}))
    assert {e.verb for e in dated} == {"membership.created"}
    recent = listed(client.get(AUDIT, {"since": (now - datetime.timedelta(days=3)).date().isoformat()}))
    assert "membership.created" not in {e.verb for e in recent}


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"since": "yesterday"}, "since", "Enter a valid date."),
        ({"until": "2024-13-45"}, "until", "Enter a valid date."),
        ({"since": "2025-02-01", "until": "2025-01-01"}, "until", "The end date is before the start date."),
        ({"target_type": "auth.permission"}, "target_type", "Select a valid choice."),
    ],
)
def test_bad_filter_values_are_explained_not_crashed_on(client, world, params, field, message):
    client.force_login(world.a.users["admin"])
    response = client.get(AUDIT, params)
    assert response.status_code == 200
    assert any(message in error for error in response.context["form"].errors[field])


def test_an_empty_result_says_so(client, world):
    client.force_login(world.a.users["admin"])
    response = client.get(AUDIT, {"verb": "nothing.happened"})
    assert "No entries match these filters" in response.content.decode()


def _follow(client, response, rel):
    link = response.context["page"].older if rel == "older" else response.context["page"].newer
    if link is None:
        return None
    key = "after" if rel == "older" else "before"
    return client.get(AUDIT, {key: link.encode(), "verb": "partner.updated"})


def test_pages_walk_by_position_both_ways_without_gaps_or_repeats(client, world):
    add_events(world.a, 120)
    client.force_login(world.a.users["admin"])
    first = client.get(AUDIT, {"verb": "partner.updated"})
    pages = [first]
    while (following := _follow(client, pages[-1], "older")) is not None:
        pages.append(following)
    assert [len(listed(page)) for page in pages] == [50, 50, 20]
    seen = [event.pk for page in pages for event in listed(page)]
    assert len(seen) == len(set(seen)) == 120
    # The links keep the filter and carry a cursor, never an offset.
    body = first.content.decode()
    assert "verb=partner.updated" in body and "after=" in body and "page=" not in body
    # Back from the last page to the one before it.
    back = _follow(client, pages[2], "newer")
    assert [e.pk for e in listed(back)] == [e.pk for e in listed(pages[1])]
    back_to_top = _follow(client, back, "newer")
    assert [e.pk for e in listed(back_to_top)] == [e.pk for e in listed(first)]
    assert back_to_top.context["page"].is_first


def test_events_sharing_a_timestamp_are_neither_skipped_nor_repeated(client, world):
    add_events(world.a, 75, step=datetime.timedelta(0))
    client.force_login(world.a.users["admin"])
    first = client.get(AUDIT, {"verb": "partner.updated"})
    second = _follow(client, first, "older")
    seen = [e.pk for e in listed(first)] + [e.pk for e in listed(second)]
    assert len(seen) == len(set(seen)) == 75


@pytest.mark.parametrize("cursor", ["", "abc", "1.2.3", "99999999999999999999.1", "-5.3", "12."])
def test_a_mangled_cursor_shows_the_first_page(client, world, cursor):
    client.force_login(world.a.users["admin"])
    response = client.get(AUDIT, {"after": cursor, "before": cursor})
    assert response.status_code == 200
    assert response.context["page"].is_first


def _audit_queries(client, world, count) -> int:
    add_events(world.a, count)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(AUDIT)
    assert response.status_code == 200
    return len(queries)


def test_audit_page_query_count_does_not_grow_with_rows(client, world):
    client.force_login(world.a.users["admin"])
    client.get(AUDIT)  # the first request stores the active workspace in the session
    assert _audit_queries(client, world, 3) == _audit_queries(client, world, 27)


def test_changes_are_listed_as_written_and_empty_to_empty_pairs_are_left_out():
    rows = audit_change_rows({"partner": [None, ""], "role": ["a", "b"], "note": "free text", "replaced": [None, True]})
    assert rows == [("role", "a", "b", True), ("note", None, "free text", False), ("replaced", None, True, True)]
    assert audit_change_rows("odd") == [("", None, "odd", False)]
    assert audit_change_rows({}) == [] and audit_change_rows(None) == []
