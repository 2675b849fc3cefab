"""Scorecard pages: a partner's scorecard, the portal's own scorecard and rules, and the portfolio."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from partnerhub.tenancy.context import tenant_scope
from scorecards.models import Rating, Score
from tests.factories import PartnerFactory

INTERNAL = ("admin", "partner_manager", "executive")
PARTNER = ("partner_admin", "partner_member")


@pytest.fixture(autouse=True)
def _scored_world(world):
    """The world's scorecard computed for both of its periods (recomputing is idempotent)."""
    from scorecards.services.recompute import recompute_period

    for world_tenant in (world.a, world.b):
        scorecards = world_tenant.extra["scorecards"]
        with tenant_scope(world_tenant.tenant):
            for period in scorecards.periods:
                recompute_period(version=scorecards.version, period=period)


def login(world_tenant, role: str) -> Client:
    client = Client()
    client.force_login(world_tenant.users[role])
    return client


def scorecard_url(partner) -> str:
    return reverse("partner_scorecard", args=[partner.pk])


def latest_period(world_tenant) -> str:
    return world_tenant.extra["scorecards"].periods[-1]


# --- Who may open what -----------------------------------------------------------------------------


@pytest.mark.parametrize("role", INTERNAL + PARTNER)
def test_each_scorecard_page_answers_each_role_as_allowed(world, role):
    client = login(world.a, role)
    internal_pages = [
        scorecard_url(world.a.partners[0]),
        reverse("scorecard_portfolio"),
        reverse("scorecard_rules"),
    ]
    portal_pages = [reverse("portal_scorecard"), reverse("portal_rules")]
    for url in internal_pages:
        assert client.get(url).status_code == (200 if role in INTERNAL else 403), (role, url)
    for url in portal_pages:
        assert client.get(url).status_code == (200 if role in PARTNER else 403), (role, url)


@pytest.mark.parametrize("role", INTERNAL)
def test_another_tenants_partner_scorecard_is_not_found(world, role):
    response = login(world.a, role).get(scorecard_url(world.b.partners[0]))
    assert response.status_code == 404


@pytest.mark.parametrize("role", PARTNER)
def test_a_partner_user_sees_only_their_own_scorecard(world, role):
    client = login(world.a, role)
    own, other = world.a.partners
    body = client.get(reverse("portal_scorecard")).content.decode()
    assert own.name in body
    assert other.name not in body
    assert client.get(scorecard_url(other)).status_code == 403
    assert client.get(scorecard_url(own)).status_code == 403
    # A period in the link changes the period, never the partner.
    body = client.get(reverse("portal_scorecard"), {"period": latest_period(world.a), "pk": other.pk}).content
    assert other.name.encode() not in body


def test_the_other_partners_admin_sees_their_own_score_in_the_portal(world):
    response = login(world.a, "other_partner_admin").get(reverse("portal_scorecard"))
    assert response.context["partner"] == world.a.partners[1]
    assert response.context["score"].partner_id == world.a.partners[1].pk
    assert world.a.partners[0].name not in response.content.decode()


# --- The scorecard page ----------------------------------------------------------------------------


def test_scorecard_page_shows_the_latest_scored_period_by_default(world):
    response = login(world.a, "executive").get(scorecard_url(world.a.partners[0]))
    score = response.context["score"]
    assert score.period == latest_period(world.a)
    body = response.content.decode()
    assert "89.5" in body and "Excellent" in body
    assert "1st" in body and "of 2" in body
    assert "Pipeline created" in body and "Customer satisfaction" in body
    assert "median 185,000" in body


def test_scorecard_waterfall_bars_sum_to_the_change(world):
    response = login(world.a, "admin").get(scorecard_url(world.a.partners[0]))
    svg = str(response.context["waterfall_svg"])
    score = response.context["score"]
    start = Decimal(re.search(r'class="bar bar-start" data-value="([^"]+)"', svg)[1])
    end = Decimal(re.search(r'class="bar bar-end" data-value="([^"]+)"', svg)[1])
    terms = [Decimal(v) for v in re.findall(r'class="bar bar-term" data-value="([^"]+)"', svg)]
    assert len(terms) == 3
    assert sum(terms) == score.change == end - start
    assert end == score.total


def test_scorecard_page_with_an_earlier_period_has_no_change_to_explain(world):
    first = world.a.extra["scorecards"].periods[0]
    response = login(world.a, "admin").get(scorecard_url(world.a.partners[0]), {"period": first})
    assert response.context["score"].period == first
    assert response.context["waterfall_svg"] is None
    assert "First scored period" in response.content.decode()


def test_scorecard_page_says_when_a_period_has_no_score_yet(world):
    response = login(world.a, "admin").get(scorecard_url(world.a.partners[0]), {"period": "FY2019-Q1"})
    body = response.content.decode()
    assert response.status_code == 200 and response.context["score"] is None
    assert "No score for FY2019-Q1 yet" in body
    assert f"?period={latest_period(world.a)}" in body


def test_scorecard_page_for_a_partner_never_scored_explains_why(world):
    with tenant_scope(world.a.tenant):
        newcomer = PartnerFactory(tenant=world.a.tenant, name="Newcomer Ltd")
    body = login(world.a, "admin").get(scorecard_url(newcomer)).content.decode()
    assert "No score for" in body and "has not been scored yet" in body


def test_scorecard_page_names_a_period_it_could_not_read(world):
    response = login(world.a, "admin").get(scorecard_url(world.a.partners[0]), {"period": "last quarter"})
    assert response.context["score"].period == latest_period(world.a)
    assert "is not a period" in response.content.decode()


def test_scorecard_page_notes_a_change_of_rules(world):
    with tenant_scope(world.a.tenant):
        score = Score.objects.current().get(partner=world.a.partners[0], period=latest_period(world.a))
        score.explanation = {
            **score.explanation,
            "previous_version": score.version_id + 1000,
            "terms": [{"term": "version", "metric_key": None, "delta": 1.25}, *score.explanation["terms"]],
        }
        score.save(update_fields=["explanation"])
    response = login(world.a, "admin").get(scorecard_url(world.a.partners[0]))
    body = response.content.decode()
    assert "The scorecard rules changed this period" in body
    assert "New scorecard rules" in str(response.context["waterfall_svg"])


def test_scorecard_page_shows_flags_as_badges(world):
    with tenant_scope(world.a.tenant):
        Score.objects.current().filter(partner=world.a.partners[1], period=latest_period(world.a)).update(
            flag_regression=True, flag_data_gap=True
        )
    body = login(world.a, "admin").get(scorecard_url(world.a.partners[1])).content.decode()
    assert "sc-flag-regression" in body and "sc-flag-data_gap" in body


def test_metric_names_are_escaped_on_the_scorecard_page(world):
    with tenant_scope(world.a.tenant):
        score = Score.objects.current().get(partner=world.a.partners[0], period=latest_period(world.a))
        components = score.components
        components[0]["metric"] = "<script>alert(1)</script>"
        Score.objects.filter(pk=score.pk).update(components=components)
    body = login(world.a, "admin").get(scorecard_url(world.a.partners[0])).content.decode()
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;" in body


# --- Rules pages -----------------------------------------------------------------------------------


def test_how_you_are_scored_lists_the_segments_rules_in_words(world):
    body = login(world.a, "partner_member").get(reverse("portal_rules")).content.decode()
    assert "Partner health" in body
    assert "Training completion rate" in body  # the reseller plug-in
    assert "Lead response time" not in body  # the MSP plug-in does not apply
    assert "at least 95: 100 points" in body
    assert "0 points at 5 or below, 100 points at 9" in body
    assert "Excellent" in body and "80" in body
    assert "Pipeline and satisfaction for everyone" in body
    assert "Version 1" in body and "in force" in body


def test_internal_rules_page_lists_every_active_version_with_all_items(world):
    body = login(world.a, "executive").get(reverse("scorecard_rules")).content.decode()
    assert "Training completion rate" in body and "Lead response time" in body
    assert "Globex" not in body


def test_portal_home_links_to_the_scorecard_and_the_rules(world):
    body = login(world.a, "partner_admin").get(reverse("portal_home")).content.decode()
    assert reverse("portal_scorecard") in body and reverse("portal_rules") in body
    assert "89.5" in body


def test_partner_detail_card_shows_the_current_score_with_a_link(world):
    body = login(world.a, "partner_manager").get(reverse("partner_detail", args=[world.a.partners[0].pk]))
    text = body.content.decode()
    assert scorecard_url(world.a.partners[0]) in text
    assert "89.5" in text and "+11.3 since last period" in text and "chart-spark" in text


# --- Portfolio -------------------------------------------------------------------------------------


def portfolio(client, **params):
    return client.get(reverse("scorecard_portfolio"), params)


def listed(response) -> list[str]:
    return [score.partner.name for score, _ in response.context["rows"]]


def test_portfolio_lists_the_latest_period_best_first_with_links(world):
    response = portfolio(login(world.a, "admin"))
    assert response.context["period"] == latest_period(world.a)
    assert listed(response) == [p.name for p in world.a.partners]
    assert scorecard_url(world.a.partners[0]) in response.content.decode()


def test_portfolio_sorts_by_change_and_name(world):
    client = login(world.a, "admin")
    assert listed(portfolio(client, sort="change")) == [world.a.partners[1].name, world.a.partners[0].name]
    assert listed(portfolio(client, sort="-partner")) == [world.a.partners[1].name, world.a.partners[0].name]


def test_portfolio_filters_by_rating_flag_and_segment(world):
    client = login(world.a, "admin")
    assert listed(portfolio(client, rating=Rating.NEEDS_IMPROVEMENT)) == [world.a.partners[1].name]
    assert listed(portfolio(client, flag="regression")) == []
    with tenant_scope(world.a.tenant):
        Score.objects.current().filter(partner=world.a.partners[1]).update(flag_regression=True)
    assert listed(portfolio(client, flag="regression")) == [world.a.partners[1].name]
    assert listed(portfolio(client, segment="msp")) == []


def test_portfolio_shows_a_manager_their_own_partners_until_they_ask_for_all(world):
    manager = world.a.users["partner_manager"]
    with tenant_scope(world.a.tenant):
        world.a.partners[1].manager = manager
        world.a.partners[1].save(update_fields=["manager"])
    client = login(world.a, "partner_manager")
    assert listed(portfolio(client)) == [world.a.partners[1].name]
    assert len(listed(portfolio(client, scope="all"))) == 2
    # Administrators and executives see everyone by default.
    assert len(listed(portfolio(login(world.a, "executive")))) == 2


def test_portfolio_answers_htmx_with_the_results_only(world):
    response = login(world.a, "admin").get(reverse("scorecard_portfolio"), HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="results"')
    assert "HX-Request" in response["Vary"]


def test_portfolio_without_scores_says_so(world):
    with tenant_scope(world.a.tenant):
        Score.objects.all().delete()
    body = portfolio(login(world.a, "admin")).content.decode()
    assert "No scores yet" in body


def add_scored_partners(world_tenant, count: int) -> None:
    period = latest_period(world_tenant)
    version = world_tenant.extra["scorecards"].version
    manager = world_tenant.users["partner_manager"]
    with tenant_scope(world_tenant.tenant):
        partners = [PartnerFactory(tenant=world_tenant.tenant, manager=manager) for _ in range(count)]
        Score.objects.bulk_create(
            Score(
                tenant=world_tenant.tenant,
                partner=partner,
                version=version,
                period=period,
                segment="reseller",
                total=Decimal(50 + n),
                rating=Rating.NEEDS_IMPROVEMENT,
                completeness=Decimal("1"),
                rank=n + 3,
                percentile=Decimal("50"),
                change=Decimal("-1.5"),
                flag_regression=bool(n % 2),
                fingerprint="x" * 64,
            )
            for n, partner in enumerate(partners)
        )


def test_portfolio_query_count_does_not_grow_with_rows(world):
    client = login(world.a, "admin")

    def queries_for_page() -> int:
        with CaptureQueriesContext(connection) as queries:
            response = portfolio(client, sort="score")
        assert response.status_code == 200
        return len(queries), len(response.context["rows"])

    add_scored_partners(world.a, 1)
    queries_for_page()  # the first request of a session also loads it
    few, rows_few = queries_for_page()
    add_scored_partners(world.a, 27)
    many, rows_many = queries_for_page()
    assert (rows_few, rows_many) == (3, 30)
    assert few == many
