"""The scores and benchmarks API: filters, history, detail, and who sees what."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from partnerhub.tenancy.context import tenant_scope
from scorecards.models import Score, SegmentBenchmark
from scorecards.services.recompute import recompute_period
from tests.scorecards.scoring_setup import correct, observe_all, partners

SCORES, BENCHMARKS = "/api/v1/scores/", "/api/v1/benchmarks/"
INTERNAL = ("admin", "partner_manager", "executive")
PARTNER = ("partner_admin", "partner_member")


def session(world_tenant, role: str) -> Client:
    client = Client()
    client.force_login(world_tenant.users[role])
    return client


def key_client(world_tenant) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Api-Key {world_tenant.read_key[1]}")


def results(response) -> list[dict]:
    assert response.status_code == 200, response.content
    return response.json()["results"]


def add_msps(world_tenant, count: int, *, prefix: str = "MSP") -> list:
    """MSPs scored by the world's scorecard in both of its periods."""
    scorecards = world_tenant.extra["scorecards"]
    with tenant_scope(world_tenant.tenant):
        msps = partners(count, segment="msp", prefix=f"{world_tenant.tenant.slug} {prefix}")
        for offset, period in enumerate(scorecards.periods):
            values = {
                p: {"pipeline_created": 40000 + 5000 * (n + offset), "customer_satisfaction": 7}
                for n, p in enumerate(msps)
            }
            observe_all(values, period)
            recompute_period(version=scorecards.version, period=period)
    return msps


@pytest.fixture
def scored(world):
    """Each tenant: the world's two resellers and two MSPs scored in two quarters; one correction."""
    scored = {}
    for name in ("a", "b"):
        world_tenant = getattr(world, name)
        scorecards = world_tenant.extra["scorecards"]
        msps = add_msps(world_tenant, 2)
        with tenant_scope(world_tenant.tenant):
            correct(world_tenant.partners[1], "pipeline_created", scorecards.periods[0], 95000)
            recompute_period(version=scorecards.version, period=scorecards.periods[0])
        scored[name] = {"resellers": world_tenant.partners, "msps": msps, "periods": scorecards.periods}
    return scored


def test_internal_users_list_current_scores_of_their_tenant_only(world, scored):
    for role in INTERNAL:
        rows = results(session(world.a, role).get(SCORES, {"page_size": 200}))
        assert len(rows) == 8, role  # 4 partners x 2 periods, current revisions only
        assert all(row["is_current"] for row in rows)
        with tenant_scope(world.b.tenant):
            foreign = set(Score.objects.values_list("pk", flat=True))
        assert not foreign & {row["id"] for row in rows}


def test_revisions_all_includes_the_superseded_revision(world, scored):
    client = key_client(world.a)
    partner, (first, _) = scored["a"]["resellers"][1], scored["a"]["periods"]
    rows = results(client.get(SCORES, {"partner": partner.pk, "period": first, "revisions": "all"}))
    assert sorted((row["revision"], row["is_current"]) for row in rows) == [(1, False), (2, True)]
    current = results(client.get(SCORES, {"partner": partner.pk, "period": first}))
    assert [row["revision"] for row in current] == [2]


def test_scores_filter_by_period_segment_rating_flag_and_partner(world, scored):
    client = key_client(world.a)
    latest = scored["a"]["periods"][1]
    assert {row["period"] for row in results(client.get(SCORES, {"period": latest}))} == {latest}
    msp_rows = results(client.get(SCORES, {"segment": "msp"}))
    assert len(msp_rows) == 4 and {row["segment"] for row in msp_rows} == {"msp"}
    with tenant_scope(world.a.tenant):
        expected_gap = set(Score.objects.current().filter(flag_data_gap=True).values_list("pk", flat=True))
        rating = Score.objects.current().first().rating
    assert {row["id"] for row in results(client.get(SCORES, {"flag": "data_gap"}))} == expected_gap
    assert all(row["rating"] == rating for row in results(client.get(SCORES, {"rating": rating})))
    partner = scored["a"]["msps"][0]
    assert {row["partner"] for row in results(client.get(SCORES, {"partner": partner.pk}))} == {partner.pk}
    for bad in ({"rating": "superb"}, {"flag": "bogus"}, {"revisions": "some"}, {"partner": "x"}):
        assert client.get(SCORES, bad).status_code == 400, bad


def test_score_detail_has_components_and_an_explanation_that_adds_up(world, scored):
    client = key_client(world.a)
    partner, (first, latest) = scored["a"]["resellers"][0], scored["a"]["periods"]
    (row,) = results(client.get(SCORES, {"partner": partner.pk, "period": latest}))
    assert "components" not in row
    detail = client.get(f"{SCORES}{row['id']}/").json()
    components = {c["metric_key"]: c for c in detail["components"]}
    assert set(components) == {"pipeline_created", "customer_satisfaction", "training_completion_rate"}
    assert components["customer_satisfaction"]["raw"] == 8.4
    assert set(components["pipeline_created"]) >= {"raw", "normalized", "points", "weight", "effective_weight"}
    explanation = detail["explanation"]
    assert explanation["previous_period"] == first and "basis" not in explanation
    assert {t["metric"] for t in explanation["terms"]} == {c["metric"] for c in detail["components"]}
    assert sum(Decimal(str(t["delta"])) for t in explanation["terms"]) == Decimal(detail["change"])
    assert Decimal(detail["change"]) == Decimal(detail["total"]) - Decimal(explanation["previous_total"])


def test_partner_users_see_only_their_own_partners_scores(world, scored):
    own, other = scored["a"]["resellers"]
    with tenant_scope(world.a.tenant):
        other_ids = list(Score.objects.filter(partner=other).values_list("pk", flat=True))
    for role in PARTNER:
        client = session(world.a, role)
        rows = results(client.get(SCORES, {"revisions": "all", "page_size": 200}))
        assert rows and {row["partner"] for row in rows} == {own.pk}, role
        for pk in other_ids:
            assert client.get(f"{SCORES}{pk}/").status_code == 404, role


def test_another_tenants_score_and_benchmark_answer_404(world, scored):
    with tenant_scope(world.b.tenant):
        score = Score.objects.first()
        benchmark = SegmentBenchmark.objects.first()
    for client in [key_client(world.a), *(session(world.a, role) for role in INTERNAL + PARTNER)]:
        assert client.get(f"{SCORES}{score.pk}/").status_code == 404
        assert client.get(f"{BENCHMARKS}{benchmark.pk}/").status_code == 404


def test_scores_and_benchmarks_are_read_only(world, scored):
    client = Client(HTTP_AUTHORIZATION=f"Api-Key {world.a.write_key[1]}")
    with tenant_scope(world.a.tenant):
        score = Score.objects.first()
    assert client.post(SCORES, {}, content_type="application/json").status_code == 405
    assert client.patch(f"{SCORES}{score.pk}/", {"total": "100"}, content_type="application/json").status_code == 405
    assert client.delete(f"{SCORES}{score.pk}/").status_code == 405


def test_benchmarks_filter_by_period_segment_and_metric(world, scored):
    client = key_client(world.a)
    rows = results(client.get(BENCHMARKS, {"page_size": 200}))
    assert {row["segment"] for row in rows} == {"reseller", "msp"}
    latest = scored["a"]["periods"][1]
    rows = results(client.get(BENCHMARKS, {"period": latest, "segment": "msp", "metric": "pipeline_created"}))
    assert len(rows) == 1
    (row,) = rows
    assert row["partners"] == 2 and Decimal(row["p25"]) <= Decimal(row["median"]) <= Decimal(row["p75"])


def test_partner_users_see_the_benchmarks_of_their_own_segment_only(world, scored):
    for role in PARTNER:
        rows = results(session(world.a, role).get(BENCHMARKS, {"page_size": 200}))
        assert rows and {row["segment"] for row in rows} == {"reseller"}, role
    with tenant_scope(world.a.tenant):
        msp_benchmark = SegmentBenchmark.objects.filter(segment="msp").first()
    assert session(world.a, "partner_member").get(f"{BENCHMARKS}{msp_benchmark.pk}/").status_code == 404


def test_list_queries_do_not_grow_with_rows(world):
    client = key_client(world.a)
    client.get(SCORES)  # the first call of a key records its use; measure steady state

    def queries(url: str) -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url, {"page_size": 200}).status_code == 200
        return len(ctx.captured_queries)

    with tenant_scope(world.a.tenant):
        assert Score.objects.current().count() == 4  # the world's two partners, two quarters
    few = (queries(SCORES), queries(BENCHMARKS))
    add_msps(world.a, 13)
    with tenant_scope(world.a.tenant):
        assert Score.objects.current().count() == 30
    many = (queries(SCORES), queries(BENCHMARKS))
    assert many == few
