"""Tenant and partner isolation across every API endpoint and portal page, for every principal.

Two tenants (acme, globex), two partners each, a member of every role and two API keys per
tenant (see tests/world.py). Endpoints are discovered from the API router, so a new viewset is
covered here the day it is registered: the world must then hold a row of its model per tenant.
"""

from __future__ import annotations

import datetime

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from partnerhub.api import router
from partnerhub.tenancy.context import tenant_scope

INTERNAL = ("admin", "partner_manager", "executive")
PARTNER = ("partner_admin", "partner_member")
ROLES = INTERNAL + PARTNER


def session_client(world_tenant, role: str) -> Client:
    client = Client()
    client.force_login(world_tenant.users[role])
    return client


def principals(world_tenant):
    """Every way to call tenant a: each role's session and both API keys."""
    for role in ROLES:
        yield role, session_client(world_tenant, role)
    for name, (_, plaintext) in (("read_key", world_tenant.read_key), ("write_key", world_tenant.write_key)):
        yield name, Client(HTTP_AUTHORIZATION=f"Api-Key {plaintext}")


def rows(response) -> list[dict]:
    body = response.json()
    return body["results"] if isinstance(body, dict) and "results" in body else body


def foreign_objects(world, model):
    """A row of ``model`` in tenant b, and in tenant a one that belongs to the other partner."""
    with tenant_scope(world.b.tenant):
        other_tenant = model.objects.order_by("pk").first()
    other_partner = None
    if model.partner_path is not None:
        with tenant_scope(world.a.tenant):
            other_partner = model.objects.filter(**{model.partner_path: world.a.partners[1].pk}).first()
    return other_tenant, other_partner


@pytest.mark.parametrize(
    "prefix, viewset", [(p, v) for p, v, _ in router.registry], ids=[p for p, _, _ in router.registry]
)
def test_no_api_endpoint_reveals_another_tenants_or_partners_rows(world, prefix, viewset):
    other_tenant, other_partner = foreign_objects(world, viewset.model)
    assert other_tenant is not None, f"the test world needs a {viewset.model.__name__} in tenant b"
    list_url = f"/api/v1/{prefix}/"
    for who, client in principals(world.a):
        response = client.get(list_url, {"page_size": 200})
        if response.status_code == 200:
            ids = {row["id"] for row in rows(response)}
            assert other_tenant.pk not in ids, who
            if who in PARTNER and other_partner is not None:
                assert other_partner.pk not in ids, who
        else:
            assert response.status_code in (403, 404), (who, response.status_code)
        for foreign in (other_tenant, other_partner if who in PARTNER else None):
            if foreign is None:
                continue
            url = f"{list_url}{foreign.pk}/"
            assert client.get(url).status_code == 404, (who, url)
            for method in ("patch", "put", "delete"):
                status = getattr(client, method)(url, {}, content_type="application/json").status_code
                assert status in (403, 404, 405), (who, method, url, status)


def review_rows(world):
    """Reviews of both partners of tenant a (the first partner's shared with it) and one of tenant b, made once."""
    if "page_reviews" not in world.a.extra:
        from reviews.models import CadenceRule, Review, ReviewState
        from reviews.services.cadences import cadence_rule_create
        from reviews.services.cycles import cycle_generate

        def generate(tw, period):
            with tenant_scope(tw.tenant):
                if not CadenceRule.objects.filter(kind="qbr").exists():
                    cadence_rule_create(kind="qbr", by=tw.users["admin"])
                cycle = cycle_generate(
                    kind="qbr",
                    period=period,
                    opens_on=datetime.date(2026, 1, 1),
                    due_on=datetime.date(2026, 1, 31),
                    capacity_per_manager=8,
                    by=tw.users["admin"],
                )
                reviews = {review.partner_id: review for review in Review.objects.filter(cycle=cycle)}
                return cycle, [reviews.get(partner.pk) for partner in tw.partners]

        a_cycle, a_reviews = generate(world.a, "FY2025-Q4")
        with tenant_scope(world.a.tenant):
            Review.objects.filter(pk=a_reviews[0].pk).update(
                state=ReviewState.SHARED, finalized_at=timezone.now(), shared_at=timezone.now()
            )
        b_cycle, b_reviews = generate(world.b, "FY2025-Q4")
        world.a.extra["page_reviews"] = (a_cycle, a_reviews, b_cycle, next(r for r in b_reviews if r))
    return world.a.extra["page_reviews"]


def page_urls(world):
    """Every portal page, with the roles that may open it."""
    a_partner, a_other, b_partner = world.a.partners[0], world.a.partners[1], world.b.partners[0]
    a_version, b_version = world.a.extra["scorecards"].version, world.b.extra["scorecards"].version
    a_cycle, (a_review, a_other_review), b_cycle, b_review = review_rows(world)
    return [
        (reverse("partner_list"), set(INTERNAL)),
        (reverse("partner_create"), {"admin", "partner_manager"}),
        (reverse("partner_detail", args=[a_partner.pk]), set(INTERNAL)),
        (reverse("partner_edit", args=[a_partner.pk]), {"admin", "partner_manager"}),
        (reverse("partner_detail", args=[a_other.pk]), set(INTERNAL)),
        (reverse("portal_home"), set(PARTNER)),
        (reverse("member_list"), {"admin", "partner_admin"}),
        (reverse("api_key_list"), {"admin"}),
        (reverse("audit_list"), {"admin"}),
        (reverse("partner_scorecard", args=[a_partner.pk]), set(INTERNAL)),
        (reverse("partner_scorecard", args=[a_other.pk]), set(INTERNAL)),
        (reverse("scorecard_portfolio") + "?scope=all", set(INTERNAL)),
        (reverse("scorecard_rules"), set(INTERNAL)),
        (reverse("portal_scorecard"), set(PARTNER)),
        (reverse("portal_rules"), set(PARTNER)),
        # The scorecard editor and recomputes
        (reverse("scorecard_editor"), set(INTERNAL)),
        (reverse("scorecard_editor_version", args=[a_version.pk]), set(INTERNAL)),
        (reverse("scorecard_editor_new"), {"admin"}),
        (reverse("scorecard_editor_preview", args=[a_version.pk]), {"admin"}),
        (reverse("recompute_list"), set(INTERNAL)),
        # Observations and uploads
        (reverse("observation_list"), {"admin", "partner_manager"}),
        (reverse("observation_create"), {"admin", "partner_manager"}),
        (reverse("observation_upload"), {"admin", "partner_manager"}),
        (reverse("observation_upload_template"), {"admin", "partner_manager"}),
        # Data sources and data health
        (reverse("data_source_list"), set(INTERNAL)),
        (reverse("unmatched_queue"), set(INTERNAL)),
        (reverse("data_source_new"), {"admin"}),
        (reverse("data_health") + "?scope=all", set(INTERNAL)),
        (reverse("partner_data_health", args=[a_partner.pk]), set(INTERNAL)),
        (reverse("partner_data_health", args=[a_other.pk]), set(INTERNAL)),
        # Corrections and appeals
        (reverse("correction_queue"), {"admin", "partner_manager"}),
        (reverse("portal_data"), set(PARTNER)),
        (reverse("correction_portal_requests"), set(PARTNER)),
        # Reviews
        (reverse("review_mine"), set(INTERNAL)),
        (reverse("review_cycles"), set(INTERNAL)),
        (reverse("review_cycle", args=[a_cycle.pk]), set(INTERNAL)),
        (reverse("review_cycle_memo", args=[a_cycle.pk]), set(INTERNAL)),
        (reverse("review_cycle_memo_csv", args=[a_cycle.pk]), set(INTERNAL)),
        (reverse("review_detail", args=[a_review.pk]), set(INTERNAL)),
        (reverse("review_detail", args=[a_other_review.pk]), set(INTERNAL)),
        (reverse("portal_reviews"), set(PARTNER)),
        (reverse("portal_review", args=[a_review.pk]), set(PARTNER)),
        (reverse("portal_review", args=[a_other_review.pk]), set()),
        *settings_pages(world),
        # Actions and remediation
        *action_pages(world),
    ], [
        reverse("partner_detail", args=[b_partner.pk]),
        reverse("partner_edit", args=[b_partner.pk]),
        reverse("partner_scorecard", args=[b_partner.pk]),
        reverse("scorecard_editor_version", args=[b_version.pk]),
        reverse("partner_data_health", args=[b_partner.pk]),
        reverse("data_source_detail", args=[world.b.extra["crm_source"].pk]),
        reverse("data_source_edit", args=[world.b.extra["crm_source"].pk]),
        reverse("mapping_list", args=[world.b.extra["crm_source"].pk]),
        reverse("sync_run_progress", args=[world.b.extra["sync_run"].pk]),
        reverse("correction_evidence", args=[world.b.extra["correction_request"].pk]),
        reverse("review_cycle", args=[b_cycle.pk]),
        reverse("review_cycle_memo", args=[b_cycle.pk]),
        reverse("review_cycle_memo_csv", args=[b_cycle.pk]),
        reverse("review_detail", args=[b_review.pk]),
        reverse("portal_review", args=[b_review.pk]),
        *foreign_settings_pages(world),
        *foreign_action_pages(world),
    ]


def _action_rows(tenant_world):
    """An action of each partner and an open plan of the first, made once per world."""
    from actions.models import ActionItem, PlanTrigger, RemediationPlan

    if "action_pages" not in tenant_world.extra:
        with tenant_scope(tenant_world.tenant):
            own, other = (
                ActionItem.objects.create(partner=partner, title=f"Isolation action {n}", due_on=timezone.localdate())
                for n, partner in enumerate(tenant_world.partners)
            )
            # The world may hold a plan of its own for the first partner (one open plan each).
            plan = tenant_world.extra.get("plan") or RemediationPlan.objects.create(
                partner=tenant_world.partners[0], trigger=PlanTrigger.MANUAL, trigger_period="2026-Q3"
            )
        tenant_world.extra["action_pages"] = (own, other, plan)
    return tenant_world.extra["action_pages"]


def action_pages(world):
    own, other, plan = _action_rows(world.a)
    return [
        (reverse("action_mine"), set(INTERNAL)),
        (reverse("action_board"), set(INTERNAL)),
        (reverse("action_list"), set(INTERNAL)),
        (reverse("action_create"), set(INTERNAL)),
        (reverse("action_detail", args=[own.pk]), set(INTERNAL)),
        (reverse("action_detail", args=[other.pk]), set(INTERNAL)),
        (reverse("action_edit", args=[own.pk]), set(INTERNAL)),
        (reverse("action_edit", args=[other.pk]), set(INTERNAL)),
        (reverse("plan_list") + "?status=all", set(INTERNAL)),
        (reverse("plan_detail", args=[plan.pk]), set(INTERNAL)),
        (reverse("portal_actions") + "?show=all", set(PARTNER)),
        (reverse("portal_action_detail", args=[own.pk]), set(PARTNER)),
        (reverse("portal_action_detail", args=[other.pk]), set()),
        (reverse("portal_action_edit", args=[own.pk]), set(PARTNER)),
        (reverse("portal_action_edit", args=[other.pk]), set()),
    ]


def foreign_action_pages(world):
    action, _, plan = _action_rows(world.b)
    return [
        reverse("action_detail", args=[action.pk]),
        reverse("plan_detail", args=[plan.pk]),
        reverse("portal_action_detail", args=[action.pk]),
        reverse("action_edit", args=[action.pk]),
        reverse("portal_action_edit", args=[action.pk]),
    ]


def _settings_rows(tenant_world):
    """A cadence rule and a collaboration prompt of the tenant, for the review settings pages."""
    from reviews.models import CadenceRule, CollaborationPrompt
    from reviews.services.cadences import cadence_rule_create

    with tenant_scope(tenant_world.tenant):
        rule = CadenceRule.objects.order_by("pk").first() or cadence_rule_create(
            kind="qbr", by=tenant_world.users["admin"]
        )
        return rule, CollaborationPrompt.objects.get(key="communication")


def settings_pages(world):
    rule, prompt = _settings_rows(world.a)
    return [
        (reverse("review_settings"), set(INTERNAL)),
        (reverse("review_settings_rule_edit", args=[rule.pk]), {"admin"}),
        (reverse("review_settings_rule_delete", args=[rule.pk]), {"admin"}),
        (reverse("review_settings_prompt_edit", args=[prompt.pk]), {"admin"}),
    ]


def foreign_settings_pages(world):
    rule, prompt = _settings_rows(world.b)
    return [
        reverse("review_settings_rule_edit", args=[rule.pk]),
        reverse("review_settings_rule_delete", args=[rule.pk]),
        reverse("review_settings_prompt_edit", args=[prompt.pk]),
    ]


@pytest.mark.parametrize("role", ROLES)
def test_every_review_settings_change_answers_by_role_and_never_touches_another_tenant(world, role):
    from reviews.models import CadenceRule, CollaborationPrompt

    rule, prompt = _settings_rows(world.a)
    b_rule, b_prompt = _settings_rows(world.b)
    commands = [
        (reverse("review_settings_rule_add"), {"rule-kind": "deep_dive", "rule-lifecycle_stage": "mature"}),
        (reverse("review_settings_rule_edit", args=[rule.pk]), {"kind": "check_in"}),
        (reverse("review_settings_rule_active", args=[rule.pk]), {"active": "0"}),
        (reverse("review_settings_rule_delete", args=[rule.pk]), {}),
        (reverse("review_settings_prompt_add"), {"prompt-label": "Isolation prompt"}),
        (reverse("review_settings_prompt_edit", args=[prompt.pk]), {"label": "Talking"}),
        (reverse("review_settings_prompt_active", args=[prompt.pk]), {"active": "0"}),
    ]
    foreign_commands = [
        (reverse("review_settings_rule_edit", args=[b_rule.pk]), {"kind": "check_in"}),
        (reverse("review_settings_rule_active", args=[b_rule.pk]), {"active": "0"}),
        (reverse("review_settings_rule_delete", args=[b_rule.pk]), {}),
        (reverse("review_settings_prompt_edit", args=[b_prompt.pk]), {"label": "Taken over"}),
        (reverse("review_settings_prompt_active", args=[b_prompt.pk]), {"active": "0"}),
    ]
    client = session_client(world.a, role)
    for url, body in foreign_commands:  # looked up before the role is checked: never "exists elsewhere"
        assert client.post(url, body).status_code == 404, (role, url)
        assert Client().post(url, body).status_code == 302, url  # anonymous: to sign in
    for url, body in commands:
        response = client.post(url, body)
        if role == "admin":
            assert response.status_code == 302 and "/reviews/settings/" in response["Location"], (role, url)
        else:
            assert response.status_code == (404 if role in PARTNER else 403), (role, url, response.status_code)
    with tenant_scope(world.b.tenant):
        b_rule.refresh_from_db()
        b_prompt.refresh_from_db()
        assert (b_rule.kind, b_rule.active, b_prompt.label, b_prompt.active) == ("qbr", True, "Communication", True)
        assert not CollaborationPrompt.objects.filter(label="Isolation prompt").exists()
    with tenant_scope(world.a.tenant):
        changed = role == "admin"
        assert CadenceRule.objects.filter(pk=rule.pk).exists() is not changed
        assert CollaborationPrompt.objects.filter(label="Isolation prompt").exists() is changed


@pytest.mark.parametrize("role", ROLES)
def test_every_portal_page_answers_by_role_and_never_shows_another_tenant(world, role):
    client = session_client(world.a, role)
    pages, foreign_pages = page_urls(world)
    foreign_names = [p.name for p in world.b.partners] + [world.b.tenant.name]
    for url, allowed in pages:
        response = client.get(url, follow=True)
        body = response.content.decode()
        if role in allowed:
            assert response.status_code == 200, (role, url, response.status_code)
        else:
            assert response.status_code in (403, 404) or response.redirect_chain, (role, url, response.status_code)
        for name in foreign_names:
            assert name not in body, (role, url, name)
        if role in PARTNER:
            assert world.a.partners[1].name not in body, (role, url)
    for url in foreign_pages:
        assert client.get(url).status_code in (403, 404), (role, url)
        if role in INTERNAL:
            assert client.get(url).status_code == 404, (role, url)


def command_urls(world):
    """The review pages that take a POST only, with the roles that may post them; and tenant b's."""
    a_cycle, _, b_cycle, _ = review_rows(world)
    # In this order: the cycle is closed, then reopened, so each allowed post succeeds.
    return [
        (reverse("review_cycle_close", args=[a_cycle.pk]), {"admin"}),
        (reverse("review_cycle_reopen", args=[a_cycle.pk]), {"admin"}),
    ], [
        reverse("review_cycle_close", args=[b_cycle.pk]),
        reverse("review_cycle_reopen", args=[b_cycle.pk]),
    ]


@pytest.mark.parametrize("role", ROLES)
def test_every_review_cycle_command_answers_by_role_and_never_touches_another_tenant(world, role):
    from reviews.models import ReviewCycle

    client = session_client(world.a, role)
    commands, foreign_commands = command_urls(world)
    body = {"confirm_unfinished": "on"}
    refused = 404 if role in PARTNER else 403
    for url, allowed in commands:
        assert client.get(url).status_code == (405 if role in allowed else refused), (role, url)
        response = client.post(url, body)
        if role in allowed:
            assert response.status_code == 302 and "/reviews/cycles/" in response["Location"], (role, url)
        else:
            assert response.status_code == refused, (role, url, response.status_code)
    may_post = set().union(*(allowed for _, allowed in commands))
    for url in foreign_commands:
        # Refused for the role before any lookup, or not found: never another tenant's cycle.
        assert client.post(url, body).status_code == (404 if role in may_post else refused), (role, url)
    b_cycle = review_rows(world)[2]
    for name, client in principals(world.a):
        for command in ("close", "reopen"):
            url = f"/api/v1/review-cycles/{b_cycle.pk}/{command}/"
            status = client.post(url, body, content_type="application/json").status_code
            assert status in (403, 404), (name, url, status)
    with tenant_scope(world.b.tenant):
        assert ReviewCycle.objects.get(pk=b_cycle.pk).status == "open"


def test_anonymous_visitors_are_sent_to_sign_in_from_every_page(world):
    pages, foreign_pages = page_urls(world)
    commands, foreign_commands = command_urls(world)
    for url in [url for url, _ in pages] + foreign_pages:
        response = Client().get(url)
        assert response.status_code == 302 and reverse("account_login") in response["Location"], url
    for url in [url for url, _ in commands] + foreign_commands:
        response = Client().post(url)
        assert response.status_code == 302 and reverse("account_login") in response["Location"], url
