"""Comparing a partner's score with a baseline period: on the scorecard pages and in the score API."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from partnerhub.tenancy.context import tenant_scope
from scorecards.models import Score, ScorecardVersion, VersionStatus
from scorecards.page_selectors import year_earlier
from scorecards.selectors import baseline_comparison
from scorecards.services.governance import version_create_draft
from scorecards.services.recompute import recompute_period
from tests.scorecards.scoring_setup import observe_all

INTERNAL = ("admin", "partner_manager", "executive")
PARTNER = ("partner_admin", "partner_member")
# The world's first partner a year before its latest quarter: pipeline still ahead of the other
# reseller (100 points, 40), satisfaction 7.0 (50 points, 15), training 60% (the 50-point band, 15).
A_YEAR_EARLIER = {
    0: {"pipeline_created": 200000, "customer_satisfaction": "7.0", "training_completion_rate": 60},
    1: {"pipeline_created": 100000, "customer_satisfaction": "6.5", "training_completion_rate": 55},
}


def login(world_tenant, role: str) -> Client:
    client = Client()
    client.force_login(world_tenant.users[role])
    return client


def periods(world_tenant) -> list[str]:
    return world_tenant.extra["scorecards"].periods


def latest(world_tenant) -> str:
    return periods(world_tenant)[-1]


def score_a_year_earlier(world_tenant, *, version: ScorecardVersion | None = None) -> str:
    """Observations and scores of both partners in the same quarter a year before the latest one."""
    period = year_earlier(latest(world_tenant))
    with tenant_scope(world_tenant.tenant):
        partners = world_tenant.partners
        observe_all({partners[n]: values for n, values in A_YEAR_EARLIER.items()}, period)
        recompute_period(version=version or world_tenant.extra["scorecards"].version, period=period)
    return period


def scorecard(client: Client, partner, **params):
    return client.get(reverse("partner_scorecard", args=[partner.pk]), params)


def current_score(world_tenant, partner, period: str) -> Score:
    with tenant_scope(world_tenant.tenant):
        return Score.objects.current().get(partner=partner, period=period)


# --- The selector ----------------------------------------------------------------------------------


def test_the_contribution_changes_add_up_exactly_to_the_change_of_the_total(world):
    baseline = score_a_year_earlier(world.a)
    with tenant_scope(world.a.tenant):
        comparison = baseline_comparison(partner=world.a.partners[0], period=latest(world.a), baseline=baseline)
    assert (comparison["baseline_total"], comparison["total"], comparison["difference"]) == (
        Decimal("70.000"),
        Decimal("89.500"),
        Decimal("19.500"),
    )
    rows = {row["metric_key"]: row for row in comparison["metrics"]}
    assert [row["metric_key"] for row in comparison["metrics"]] == [
        "pipeline_created",
        "customer_satisfaction",
        "training_completion_rate",
    ]
    assert (rows["customer_satisfaction"]["points_baseline"], rows["customer_satisfaction"]["points_current"]) == (
        50.0,
        85.0,
    )
    assert rows["customer_satisfaction"]["points_change"] == 35.0 and rows["customer_satisfaction"]["change"] == 10.5
    assert rows["training_completion_rate"]["change"] == 9.0 and rows["pipeline_created"]["change"] == 0.0
    assert sum(Decimal(str(row["change"])) for row in comparison["metrics"]) == comparison["difference"]
    assert comparison["scored"] and comparison["same_rules"] and comparison["note"] == ""


# --- The scorecard pages ---------------------------------------------------------------------------


@pytest.mark.parametrize("role", INTERNAL)
def test_the_scorecard_compares_with_the_same_quarter_a_year_earlier_by_default(world, role):
    baseline = score_a_year_earlier(world.a)
    response = scorecard(login(world.a, role), world.a.partners[0])
    view = response.context["baseline"]
    assert (view.selected, view.chosen, view.note) == (baseline, False, "")
    body = response.content.decode()
    assert f"{latest(world.a)} compared with {baseline}" in body
    assert "<strong>70</strong> in" in body and "<strong>89.5</strong> in" in body and "+19.5" in body
    assert "the same quarter a year earlier" in body and "+35" in body and "+10.5" in body


def test_without_a_score_a_year_earlier_nothing_is_compared_until_a_period_is_chosen(world):
    response = scorecard(login(world.a, "admin"), world.a.partners[0])
    view = response.context["baseline"]
    assert (view.selected, view.comparison, view.note, view.options) == (None, None, "", [periods(world.a)[0]])
    assert f"Choose a period to compare {latest(world.a)} with." in response.content.decode()


def test_a_chosen_baseline_shows_points_then_and_now_with_the_change(world):
    first = periods(world.a)[0]
    response = scorecard(login(world.a, "executive"), world.a.partners[0], baseline=first)
    view = response.context["baseline"]
    assert view.selected == first and view.chosen and view.comparison["scored"]
    previous = current_score(world.a, world.a.partners[0], first)
    assert view.comparison["baseline_total"] == previous.total
    assert view.comparison["difference"] == Decimal("89.500") - previous.total
    body = response.content.decode()
    assert f"Points {first}" in body and f"Contribution {latest(world.a)}" in body
    assert f'<option value="{first}" selected>' in body


@pytest.mark.parametrize(
    "requested, note",
    [
        ("last year", "“last year” is not a period; write it like"),
        ("FY2019-Q1", "There is no score for FY2019-Q1 to compare with."),
        ("FY2099-Q1", "is not before"),
        ("FY2026-M01", "compare it with another quarter"),
        ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;” is not a period"),
        ("Q" * 5000, "” is not a period"),
    ],
)
def test_a_baseline_that_cannot_be_compared_gives_a_note_not_an_error(world, requested, note):
    response = scorecard(login(world.a, "admin"), world.a.partners[0], baseline=requested)
    assert response.status_code == 200
    body = response.content.decode()
    assert note in body and "<script>alert(1)</script>" not in body
    assert response.context["score"].period == latest(world.a)  # the page itself is unaffected
    assert "Q" * 41 not in body


def test_the_same_period_or_none_compares_nothing(world):
    score_a_year_earlier(world.a)
    client = login(world.a, "admin")
    view = scorecard(client, world.a.partners[0], baseline=latest(world.a)).context["baseline"]
    assert view.comparison is None and "is not before" in view.note
    view = scorecard(client, world.a.partners[0], baseline="none").context["baseline"]
    assert (view.selected, view.comparison, view.note, view.chosen) == (None, None, "", True)


def test_a_baseline_scored_under_other_rules_says_so(world):
    with tenant_scope(world.a.tenant):
        version = world.a.extra["scorecards"].version
        earlier_rules = version_create_draft(scorecard=version.scorecard, by=None)
        ScorecardVersion.objects.filter(pk=earlier_rules.pk).update(status=VersionStatus.RETIRED)
        earlier_rules.refresh_from_db()
    baseline = score_a_year_earlier(world.a, version=earlier_rules)
    view = scorecard(login(world.a, "admin"), world.a.partners[0]).context["baseline"]
    assert view.selected == baseline and not view.comparison["same_rules"]
    body = scorecard(login(world.a, "admin"), world.a.partners[0]).content.decode()
    assert f"{baseline} was scored under Partner health v2 and {latest(world.a)} under Partner health v1" in body


def test_the_baseline_of_a_period_without_a_score_is_not_offered(world):
    body = scorecard(login(world.a, "admin"), world.a.partners[0], period="FY2019-Q1", baseline="FY2018-Q1")
    assert body.context["baseline"].comparison is None
    assert "No score for FY2019-Q1 yet" in body.content.decode()


@pytest.mark.parametrize("role", PARTNER)
def test_the_portal_compares_the_partners_own_scores_only(world, role):
    baseline = score_a_year_earlier(world.a)
    own, other = world.a.partners
    response = login(world.a, role).get(
        reverse("portal_scorecard"), {"baseline": baseline, "pk": other.pk, "partner": other.pk}
    )
    comparison = response.context["baseline"].comparison
    assert response.context["partner"] == own
    assert comparison["baseline_total"] == current_score(world.a, own, baseline).total
    assert comparison["total"] == current_score(world.a, own, latest(world.a)).total
    assert other.name not in response.content.decode()


def test_the_other_partners_admin_compares_their_own_scores(world):
    baseline = score_a_year_earlier(world.a)
    other = world.a.partners[1]
    response = login(world.a, "other_partner_admin").get(reverse("portal_scorecard"), {"baseline": baseline})
    comparison = response.context["baseline"].comparison
    assert comparison["baseline_total"] == current_score(world.a, other, baseline).total
    assert world.a.partners[0].name not in response.content.decode()


def test_another_tenants_or_partners_scorecard_with_a_baseline_is_refused(world):
    baseline = score_a_year_earlier(world.b)
    for role in INTERNAL:
        assert scorecard(login(world.a, role), world.b.partners[0], baseline=baseline).status_code == 404
    for role in PARTNER:
        for partner in (world.a.partners[1], world.b.partners[0]):
            assert scorecard(login(world.a, role), partner, baseline=baseline).status_code in (403, 404)


# --- The score API ---------------------------------------------------------------------------------


def api_detail(client: Client, score: Score, **params):
    return client.get(f"/api/v1/scores/{score.pk}/", params)


def key_client(world_tenant) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Api-Key {world_tenant.read_key[1]}")


def test_score_detail_with_a_baseline_adds_the_comparison(world):
    baseline = score_a_year_earlier(world.a)
    score = current_score(world.a, world.a.partners[0], latest(world.a))
    response = api_detail(key_client(world.a), score, baseline=baseline)
    assert response.status_code == 200, response.content
    body = response.json()["baseline"]
    assert (body["period"], body["scored"], body["note"], body["same_rules"]) == (baseline, True, "", True)
    assert (body["total"], body["change"], body["version"]) == ("70.000", "19.500", score.version_id)
    rows = {row["metric_key"]: row for row in body["metrics"]}
    assert rows["customer_satisfaction"] == {
        "metric_key": "customer_satisfaction",
        "metric": "Customer satisfaction",
        "points": 50.0,
        "points_now": 85.0,
        "points_change": 35.0,
        "contribution": 15.0,
        "contribution_now": 25.5,
        "contribution_change": 10.5,
    }
    assert sum(Decimal(str(row["contribution_change"])) for row in body["metrics"]) == Decimal(body["change"])


def test_score_detail_without_a_baseline_has_none(world):
    score = current_score(world.a, world.a.partners[0], latest(world.a))
    for params in ({}, {"baseline": ""}):
        assert api_detail(key_client(world.a), score, **params).json()["baseline"] is None


def test_an_unscored_baseline_is_a_note_and_a_malformed_one_is_a_400(world):
    score = current_score(world.a, world.a.partners[0], latest(world.a))
    body = api_detail(key_client(world.a), score, baseline="fy2019-q1").json()["baseline"]
    assert (body["period"], body["scored"], body["total"], body["change"]) == ("FY2019-Q1", False, None, None)
    assert body["note"] == "There is no score for FY2019-Q1 to compare with."
    assert all(row["contribution"] is None and row["contribution_change"] is None for row in body["metrics"])
    for bad in ("last year", "FY2026-Q7", "x" * 3000):
        response = api_detail(key_client(world.a), score, baseline=bad)
        assert response.status_code == 400 and "baseline" in response.json(), bad


def test_a_past_revision_is_compared_as_it_was(world):
    first, second = periods(world.a)
    with tenant_scope(world.a.tenant):
        score = Score.objects.current().get(partner=world.a.partners[0], period=second)
        past = Score.objects.create(
            **{
                field.attname: getattr(score, field.attname)
                for field in Score._meta.concrete_fields
                if field.attname not in ("id", "revision", "is_current", "total")
            },
            revision=score.revision + 1,
            is_current=False,
            total=Decimal("80.000"),
        )
    body = api_detail(key_client(world.a), past, baseline=first).json()["baseline"]
    base = current_score(world.a, world.a.partners[0], first)
    assert Decimal(body["change"]) == Decimal("80.000") - base.total


@pytest.mark.parametrize("role", PARTNER)
def test_partner_users_get_a_baseline_of_their_own_partner_only(world, role):
    baseline = score_a_year_earlier(world.a)
    score_a_year_earlier(world.b)
    own, other = world.a.partners
    client = login(world.a, role)
    mine = current_score(world.a, own, latest(world.a))
    response = api_detail(client, mine, baseline=baseline)
    assert response.status_code == 200
    assert response.json()["baseline"]["total"] == str(current_score(world.a, own, baseline).total)
    assert api_detail(client, current_score(world.a, other, latest(world.a)), baseline=baseline).status_code == 404
    foreign = current_score(world.b, world.b.partners[0], latest(world.b))
    assert api_detail(client, foreign, baseline=baseline).status_code == 404


def test_another_tenants_score_with_a_baseline_is_not_found(world):
    baseline = score_a_year_earlier(world.b)
    foreign = current_score(world.b, world.b.partners[0], latest(world.b))
    for client in [key_client(world.a), *(login(world.a, role) for role in INTERNAL)]:
        assert api_detail(client, foreign, baseline=baseline).status_code == 404
