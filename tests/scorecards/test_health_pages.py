"""Data-health pages: the program's and one partner's, and reviewing a suspect value from them."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from partnerhub.integrations.source_models import DataSource, Deal, SourceKind, SyncRun, SyncStatus
from partnerhub.partners.models import Partner
from partnerhub.tenancy.context import tenant_scope
from partnerhub.tenancy.models import AuditEvent, Tenant
from partnerhub.tenancy.roles import Role
from scorecards import selectors
from scorecards.health_selectors import period_label
from scorecards.models import CheckReview, Metric, ObservationCheck, ObservationSource, Score
from scorecards.services.health import check_observations
from scorecards.services.observations import observation_record
from tests.factories import MembershipFactory, TenantFactory
from tests.scorecards.world_data import world_periods

PROGRAM = reverse("data_health")
METRIC = "customer_satisfaction"
REVIEWERS = ("admin", "partner_manager")
PARTNER_ROLES = ("partner_admin", "partner_member")
HTMX = {"HTTP_HX_REQUEST": "true"}


def signed_in(tenant_world, role: str = "admin") -> Client:
    client = Client()
    client.force_login(tenant_world.users[role])
    return client


def record_wild_value(tenant_world, partner, *, metric_key=METRIC, steady=("8.0", "8.2", "8.3"), wild="1", **fields):
    """A steady history of three periods before the world's first, then a wild value in its last."""
    with tenant_scope(tenant_world.tenant):
        metric = Metric.objects.get(key=metric_key)
        earlier, last = world_periods(tenant_world.tenant)
        admin = tenant_world.users["admin"]
        for period, value in zip(selectors.previous_periods(earlier, 3), steady, strict=True):
            observation_record(partner=partner, metric=metric, period=period, value=value, by=admin)
        observation, _ = observation_record(partner=partner, metric=metric, period=last, value=wild, by=admin, **fields)
        return observation


def check_period(tenant_world, period: str) -> None:
    with tenant_scope(tenant_world.tenant):
        check_observations(period=period)


@pytest.fixture
def setting(world):
    """Tenant a's first partner with a steady satisfaction history and a wild value in the last period, checked."""
    tenant = world.a.tenant
    partner = world.a.partners[0]
    wild = record_wild_value(world.a, partner)
    _, last = world_periods(tenant)
    check_period(world.a, last)
    with tenant_scope(tenant):
        check = ObservationCheck.objects.get(observation=wild)
    assert check.suspect
    return {
        "world": world,
        "tenant": tenant,
        "partner": partner,
        "period": last,
        "label": period_label(last, start_month=tenant.fiscal_year_start_month),
        "wild": wild,
        "check": check,
        "review_url": reverse("check_review", args=[check.pk]),
    }


def reload(check: ObservationCheck, tenant: Tenant) -> ObservationCheck:
    with tenant_scope(tenant):
        return ObservationCheck.objects.select_related("reviewed_by").get(pk=check.pk)


# --- Who sees what ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", REVIEWERS)
def test_managers_and_administrators_see_the_suspect_value_with_accept_and_reject(setting, role):
    client = signed_in(setting["world"].a, role)
    for url in (f"{PROGRAM}?scope=all", reverse("partner_data_health", args=[setting["partner"].pk])):
        response = client.get(url)
        assert response.status_code == 200, url
        body = response.content.decode()
        assert f'id="check-{setting["check"].pk}"' in body
        assert "Customer satisfaction is far below this partner&#x27;s own history" in body
        assert 'value="accept"' in body and 'value="reject"' in body
        assert setting["review_url"] in body


def test_an_executive_reads_the_pages_without_buttons_and_cannot_review(setting, django_capture_on_commit_callbacks):
    client = signed_in(setting["world"].a, "executive")
    for url in (PROGRAM, reverse("partner_data_health", args=[setting["partner"].pk])):
        response = client.get(url)
        assert response.status_code == 200, url
        body = response.content.decode()
        assert f'id="check-{setting["check"].pk}"' in body and "Not reviewed" in body
        assert 'value="accept"' not in body and setting["review_url"] not in body
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert client.post(setting["review_url"], {"decision": "accept"}).status_code == 403
        assert client.post(setting["review_url"], {"decision": "accept"}, **HTMX).status_code == 403
        assert client.get(setting["review_url"]).status_code == 403
    assert not callbacks
    assert reload(setting["check"], setting["tenant"]).review == CheckReview.UNREVIEWED


@pytest.mark.parametrize("role", PARTNER_ROLES)
def test_partner_users_are_refused_every_data_health_page(setting, role):
    client = signed_in(setting["world"].a, role)
    assert client.get(PROGRAM).status_code == 403
    assert client.get(reverse("partner_data_health", args=[setting["partner"].pk])).status_code == 403
    assert client.get(setting["review_url"]).status_code == 403
    assert client.post(setting["review_url"], {"decision": "accept"}).status_code == 403
    assert reload(setting["check"], setting["tenant"]).review == CheckReview.UNREVIEWED


def test_anonymous_visitors_are_sent_to_sign_in(setting):
    for url in (PROGRAM, reverse("partner_data_health", args=[setting["partner"].pk]), setting["review_url"]):
        response = Client().get(url)
        assert response.status_code == 302 and reverse("account_login") in response["Location"], url


@pytest.mark.parametrize("role", ("admin", "partner_manager", "executive"))
def test_another_tenants_check_or_partner_answers_not_found(setting, role):
    world = setting["world"]
    foreign = record_wild_value(world.b, world.b.partners[0])
    check_period(world.b, setting["period"])
    with tenant_scope(world.b.tenant):
        foreign_check = ObservationCheck.objects.get(observation=foreign)
    client = signed_in(world.a, role)
    url = reverse("check_review", args=[foreign_check.pk])
    assert client.post(url, {"decision": "reject", "note": "Not ours."}).status_code == 404
    assert client.post(url, {"decision": "accept"}, **HTMX).status_code == 404
    assert client.get(url).status_code == 404
    assert client.get(reverse("partner_data_health", args=[world.b.partners[0].pk])).status_code == 404
    for missing in (999_999_999, 10**20):
        assert client.get(reverse("check_review", args=[missing])).status_code == 404
        assert client.post(reverse("check_review", args=[missing]), {"decision": "accept"}).status_code == 404
        assert client.get(reverse("partner_data_health", args=[missing])).status_code == 404
    assert reload(foreign_check, world.b.tenant).review == CheckReview.UNREVIEWED
    # Nor does the program page show the other tenant's partner or value.
    body = client.get(f"{PROGRAM}?scope=all").content.decode()
    assert world.b.partners[0].name not in body and f'id="check-{foreign_check.pk}"' not in body


# --- Reviewing ----------------------------------------------------------------------------------------------


def test_accepting_inline_with_htmx_answers_the_row_and_rescores(setting, django_capture_on_commit_callbacks):
    client = signed_in(setting["world"].a, "partner_manager")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(
            setting["review_url"], {"decision": "accept", "layout": "program", "next": PROGRAM}, **HTMX
        )
    assert response.status_code == 200
    body = response.content.decode()
    assert body.strip().startswith(f'<tr id="check-{setting["check"].pk}"')
    assert "Accepted." in body and 'value="accept"' not in body and 'value="reject"' in body
    check = reload(setting["check"], setting["tenant"])
    assert check.review == CheckReview.ACCEPTED
    assert check.reviewed_by == setting["world"].a.users["partner_manager"]
    assert len(callbacks) == 1
    with tenant_scope(setting["tenant"]):
        assert AuditEvent.objects.filter(verb="observation.reviewed").count() == 1
        score = Score.objects.current().get(partner=setting["partner"], period=setting["period"])
    component = next(c for c in score.components if c["metric_key"] == METRIC)
    assert Decimal(str(component["raw"])) == 1


def test_rejecting_with_a_plain_form_redirects_back_with_the_note_shown(setting, django_capture_on_commit_callbacks):
    client = signed_in(setting["world"].a, "admin")
    back = f"{PROGRAM}?period={setting['period']}&scope=all"
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(
            setting["review_url"],
            {"decision": "reject", "note": "Survey export cut off; the real figure follows.", "next": back},
        )
    assert response.status_code == 302 and response["Location"] == back
    assert len(callbacks) == 1
    check = reload(setting["check"], setting["tenant"])
    assert check.review == CheckReview.REJECTED and check.review_note.startswith("Survey export cut off")
    page = client.get(back).content.decode()
    assert "Customer satisfaction of" in page and "rejected; the partner&#x27;s score is recomputed." in page
    assert "“Survey export cut off; the real figure follows.”" in page
    # A rejected value can still be accepted, and no longer rejected again.
    assert 'value="accept"' in page


def test_a_review_only_follows_a_next_address_of_this_site(setting):
    client = signed_in(setting["world"].a, "admin")
    response = client.post(setting["review_url"], {"decision": "accept", "next": "https://evil.example/"})
    assert response.status_code == 302
    assert response["Location"] == f"{PROGRAM}?period={setting['period']}"


def test_rejecting_without_a_note_names_the_problem_and_writes_nothing(setting, django_capture_on_commit_callbacks):
    client = signed_in(setting["world"].a, "partner_manager")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        inline = client.post(setting["review_url"], {"decision": "reject", "note": "  "}, **HTMX)
        plain = client.post(setting["review_url"], {"decision": "reject"})
    assert inline.status_code == 200
    assert 'class="row-error"' in inline.content.decode()
    assert "Say why the value is rejected" in inline.content.decode()
    assert plain.status_code == 400
    assert plain.content.decode().count("Say why the value is rejected") == 1
    assert 'aria-invalid="true"' in plain.content.decode()
    assert not callbacks
    assert reload(setting["check"], setting["tenant"]).review == CheckReview.UNREVIEWED
    with tenant_scope(setting["tenant"]):
        assert not AuditEvent.objects.filter(verb="observation.reviewed").exists()


@pytest.mark.parametrize("data", [{}, {"decision": "maybe"}, {"decision": "reject", "note": "x" * 2001}])
def test_a_review_form_that_makes_no_sense_is_refused_without_a_server_error(setting, data):
    client = signed_in(setting["world"].a, "admin")
    assert client.post(setting["review_url"], data).status_code == 400
    assert client.post(setting["review_url"], data, **HTMX).status_code == 200
    assert reload(setting["check"], setting["tenant"]).review == CheckReview.UNREVIEWED


def test_a_value_replaced_since_is_not_reviewed_and_the_page_says_why(setting, django_capture_on_commit_callbacks):
    world = setting["world"]
    with tenant_scope(setting["tenant"]):
        observation_record(
            partner=setting["partner"],
            metric=Metric.objects.get(key=METRIC),
            period=setting["period"],
            value="8.5",
            by=world.a.users["admin"],
        )
    client = signed_in(world.a, "partner_manager")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        plain = client.post(setting["review_url"], {"decision": "accept"})
        inline = client.post(setting["review_url"], {"decision": "accept"}, **HTMX)
    message = "A newer value has replaced this one since; review the newer value instead."
    assert plain.status_code == 400 and message in plain.content.decode()
    assert inline.status_code == 200 and message in inline.content.decode()
    assert 'value="accept"' not in inline.content.decode()
    assert not callbacks
    assert reload(setting["check"], setting["tenant"]).review == CheckReview.UNREVIEWED


def test_the_review_page_without_javascript_shows_the_value_and_its_reasons(setting):
    response = signed_in(setting["world"].a, "admin").get(setting["review_url"])
    assert response.status_code == 200
    body = response.content.decode()
    assert "Why it is suspect" in body and "far below this partner&#x27;s own history" in body
    assert 'name="decision" value="reject"' in body


# --- What the pages say ------------------------------------------------------------------------------------


def test_the_program_page_shows_the_period_its_counts_and_where_to_look(setting):
    world = setting["world"]
    with tenant_scope(setting["tenant"]):
        crm = DataSource.objects.create(name="Stalled CRM", kind=SourceKind.HUBSPOT, schedule_minutes=0)
        SyncRun.objects.create(
            source=crm, status=SyncStatus.FAILED, error_kind="other", error="Boom.", finished_at=timezone.now()
        )
        DataSource.objects.create(name="Quiet CRM", kind=SourceKind.SALESFORCE, schedule_minutes=0)
        Deal.objects.create(
            source=crm, external_id="U-1", partner_ref="nobody", created_on=date(2026, 7, 1), modified_at=timezone.now()
        )
    response = signed_in(world.a, "executive").get(PROGRAM)
    assert response.status_code == 200
    body = response.content.decode()
    assert f'<option value="{setting["period"]}" selected>{setting["label"]}</option>' in body
    assert 'data-stat="unreviewed">1<' in body
    assert 'data-stat="sources">1<' in body and "and 1 never synced" in body
    assert 'data-stat="unmatched">1<' in body
    assert reverse("data_source_detail", args=[crm.pk]) in body and "Boom." in body and "Quiet CRM" in body
    # Both partners are complete: the histogram's top range holds them, the minimum is marked.
    assert 'data-low="0.9" data-high="1.0" data-value="2"' in body
    assert '<g class="mark" data-value="0.7">' in body and "Minimum 70%" in body
    assert reverse("partner_scorecard", args=[setting["partner"].pk]) in body


def test_a_partner_manager_starts_with_the_partners_they_manage(setting):
    world = setting["world"]
    client = signed_in(world.a, "partner_manager")
    body = client.get(PROGRAM).content.decode()
    assert f'id="check-{setting["check"].pk}"' not in body
    assert "among the partners you manage" in body and "show all partners" in body
    with tenant_scope(setting["tenant"]):
        Partner.objects.filter(pk=setting["partner"].pk).update(manager=world.a.users["partner_manager"])
    assert f'id="check-{setting["check"].pk}"' in client.get(PROGRAM).content.decode()


def test_the_review_filter_narrows_the_table(setting):
    client = signed_in(setting["world"].a, "admin")
    assert f'id="check-{setting["check"].pk}"' in client.get(f"{PROGRAM}?review=unreviewed").content.decode()
    body = client.get(f"{PROGRAM}?review=accepted").content.decode()
    assert f'id="check-{setting["check"].pk}"' not in body
    assert f"No suspect values accepted in {setting['label']}" in body


def test_a_filter_change_with_htmx_answers_only_the_results(setting):
    response = signed_in(setting["world"].a, "admin").get(f"{PROGRAM}?review=unreviewed", **HTMX)
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="results"') and "<html" not in body
    assert response["Vary"] and "HX-Request" in response["Vary"]


def test_a_period_checked_without_suspects_says_so(world):
    _, last = world_periods(world.a.tenant)
    label = period_label(last, start_month=world.a.tenant.fiscal_year_start_month)
    client = signed_in(world.a, "admin")
    body = client.get(PROGRAM).content.decode()
    assert f"No values of {label} have been checked yet" in body
    check_period(world.a, last)
    body = client.get(PROGRAM).content.decode()
    assert f"No suspect values in {label}: every value checked is in line with its history and segment" in body
    partner = world.a.partners[0]
    body = client.get(reverse("partner_data_health", args=[partner.pk])).content.decode()
    assert f"No suspect values for {partner.name}: every value checked is in line" in body
    assert "In line" in body


def test_a_workspace_with_nothing_scored_says_what_is_missing(db):
    tenant = TenantFactory(slug="empty", name="Empty")
    with tenant_scope(tenant):
        admin = MembershipFactory(tenant=tenant, role=Role.ADMIN, user__email="admin@empty.test").user
    client = Client()
    client.force_login(admin)
    body = client.get(PROGRAM).content.decode()
    assert "No values checked yet" in body and "Every connected CRM synced recently" in body


@pytest.mark.parametrize("period", ["banana", "FY2026-Q9", "<script>", "x" * 500])
def test_a_period_that_is_not_one_is_named_and_the_latest_shown(setting, period):
    client = signed_in(setting["world"].a, "admin")
    for url in (PROGRAM, reverse("partner_data_health", args=[setting["partner"].pk])):
        response = client.get(url, {"period": period, "page": "zzz", "values_page": "-4", "review": "bogus"})
        assert response.status_code == 200
        body = response.content.decode()
        assert "is not a period" in body and "<script>" not in body


def test_the_policy_in_force_is_stated_with_a_settings_link_for_administrators(setting):
    world = setting["world"]
    admin, executive = signed_in(world.a, "admin"), signed_in(world.a, "executive")
    body = admin.get(PROGRAM).content.decode()
    assert "Suspect values count in scores until reviewed." in body
    assert reverse("workspace_settings") in body
    assert reverse("workspace_settings") not in executive.get(PROGRAM).content.decode()

    Tenant.objects.filter(pk=setting["tenant"].pk).update(suspect_values_count=False)
    for client in (admin, executive):
        for url in (PROGRAM, reverse("partner_data_health", args=[setting["partner"].pk])):
            body = client.get(url).content.decode()
            assert "Suspect values are left out until a manager accepts them." in body
            assert "count in scores until reviewed" not in body


def test_the_partner_page_shows_its_values_completeness_and_links_back(setting):
    partner = setting["partner"]
    body = signed_in(setting["world"].a, "executive").get(reverse("partner_data_health", args=[partner.pk]))
    assert body.status_code == 200
    body = body.content.decode()
    assert reverse("partner_detail", args=[partner.pk]) in body
    assert reverse("partner_scorecard", args=[partner.pk]) in body
    assert 'class="chart chart-trend"' in body
    # The latest period's values, each with its source and check.
    assert f"Values of {setting['label']}" in body
    assert "Entered by hand" in body and "Suspect" in body and "Not reviewed" in body


def test_a_value_from_a_sync_links_to_its_data_source(setting):
    world = setting["world"]
    with tenant_scope(setting["tenant"]):
        crm = DataSource.objects.create(name="Partner CRM", kind=SourceKind.HUBSPOT, schedule_minutes=0)
        run = SyncRun.objects.create(source=crm, status=SyncStatus.SUCCEEDED, finished_at=timezone.now())
    record_wild_value(
        world.a,
        world.a.partners[1],
        source=ObservationSource.HUBSPOT,
        source_ref=f"sync:{run.pk}",
    )
    check_period(world.a, setting["period"])
    body = signed_in(world.a, "admin").get(f"{PROGRAM}?scope=all").content.decode()
    assert f'<a href="{reverse("data_source_detail", args=[crm.pk])}">Partner CRM</a>' in body


# --- Cost ---------------------------------------------------------------------------------------------------


def count_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


def test_the_pages_cost_the_same_few_queries_with_more_rows(setting, django_assert_max_num_queries):
    world = setting["world"]
    tenant = setting["tenant"]
    client = signed_in(world.a, "admin")
    program = f"{PROGRAM}?scope=all"
    partner_page = reverse("partner_data_health", args=[world.a.partners[1].pk])
    client.get(program)  # the first request stores the active workspace in the session
    with tenant_scope(tenant):
        crm = DataSource.objects.create(name="CRM 0", kind=SourceKind.HUBSPOT, schedule_minutes=0)
        run = SyncRun.objects.create(source=crm, status=SyncStatus.SUCCEEDED, finished_at=timezone.now())
    second = world.a.partners[1]
    record_wild_value(world.a, second, source=ObservationSource.HUBSPOT, source_ref=f"sync:{run.pk}")
    check_period(world.a, setting["period"])
    program_cost = count_queries(client, program)
    partner_cost = count_queries(client, partner_page)

    # More suspect values (from syncs, reviewed by different people), sources and unmatched deals.
    record_wild_value(world.a, second, metric_key="pipeline_created", steady=("90000", "95000", "92000"), wild="1")
    record_wild_value(
        world.a,
        world.a.partners[0],
        metric_key="pipeline_created",
        steady=("250000", "260000", "255000"),
        wild="3",
        source=ObservationSource.HUBSPOT,
        source_ref=f"sync:{run.pk}",
    )
    check_period(world.a, setting["period"])
    with tenant_scope(tenant):
        checks = list(ObservationCheck.objects.filter(suspect=True).order_by("pk"))
        assert len(checks) >= 4
        for check, role in zip(checks, ("admin", "partner_manager"), strict=False):
            ObservationCheck.objects.filter(pk=check.pk).update(
                review=CheckReview.ACCEPTED, reviewed_by=world.a.users[role], reviewed_at=timezone.now()
            )
        for n in range(1, 4):
            source = DataSource.objects.create(name=f"CRM {n}", kind=SourceKind.SALESFORCE, schedule_minutes=0)
            SyncRun.objects.create(
                source=source, status=SyncStatus.FAILED, error_kind="other", error="x", finished_at=timezone.now()
            )
            SyncRun.objects.create(
                source=source,
                status=SyncStatus.SUCCEEDED,
                finished_at=timezone.now() - timedelta(days=3),
                queued_at=timezone.now() - timedelta(days=3),
            )
            Deal.objects.create(
                source=source,
                external_id=f"U-{n}",
                partner_ref=f"ref-{n}",
                created_on=date(2026, 7, 1),
                modified_at=timezone.now(),
            )
    body = client.get(program).content.decode()
    assert body.count('<tr id="check-') >= 4 and "CRM 3" in body
    with django_assert_max_num_queries(program_cost):
        client.get(program)
    with django_assert_max_num_queries(partner_cost):
        response = client.get(partner_page)
    assert response.content.decode().count('<tr id="check-') >= 2
