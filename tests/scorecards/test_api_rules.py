"""The API for the metric catalogue, scorecards, versions and items: roles, governance, isolation, shape."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from partnerhub.tenancy.context import tenant_scope
from partnerhub.tenancy.models import AuditEvent
from partnerhub.tenancy.roles import Role
from scorecards.models import Metric, Scorecard, ScorecardItem, ScorecardVersion, VersionStatus
from scorecards.services.governance import version_create_draft
from tests.factories import MembershipFactory

METRICS = "/api/v1/metrics/"
SCORECARDS = "/api/v1/scorecards/"
VERSIONS = "/api/v1/scorecard-versions/"
ITEMS = "/api/v1/scorecard-items/"
INTERNAL = ("admin", "partner_manager", "executive")
PARTNER = ("partner_admin", "partner_member")
JSON = "application/json"


def session(world_tenant, role: str) -> Client:
    client = Client()
    client.force_login(world_tenant.users[role])
    return client


def key_client(plaintext: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Api-Key {plaintext}")


def rows(response) -> list[dict]:
    assert response.status_code == 200, response.content
    body = response.json()
    return body["results"] if isinstance(body, dict) and "results" in body else body


@pytest.fixture
def second_admin(world):
    with tenant_scope(world.a.tenant):
        return MembershipFactory(tenant=world.a.tenant, role=Role.ADMIN, user__email="second-admin@acme.test").user


@pytest.fixture
def admin(world):
    return session(world.a, "admin")


def new_draft(client, world, **fields) -> dict:
    scorecard = world.a.extra["scorecards"].scorecard
    response = client.post(VERSIONS, {"scorecard": scorecard.pk, **fields}, content_type=JSON)
    assert response.status_code == 201, response.json()
    return response.json()


# --- Metrics -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", [*INTERNAL, "read_key"])
def test_internal_users_and_keys_read_the_catalogue_of_their_tenant(world, who):
    client = key_client(world.a.read_key[1]) if who == "read_key" else session(world.a, who)
    keys = {row["key"] for row in rows(client.get(METRICS, {"page_size": 200}))}
    with tenant_scope(world.a.tenant):
        assert keys == set(Metric.objects.values_list("key", flat=True))
    with tenant_scope(world.b.tenant):
        foreign = Metric.objects.get(key="revenue_won")
    assert client.get(f"{METRICS}{foreign.pk}/").status_code == 404


def test_admin_adds_and_changes_a_metric(world, admin):
    response = admin.post(
        METRICS,
        {"key": "sourced_pipeline", "name": "Sourced pipeline", "definition": "Deals the partner found.",
         "unit": "currency", "plausible_min": "0", "plausible_max": "1000000", "owner": "admin@acme.test"},
        content_type=JSON,
    )  # fmt: skip
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["owner"] == "admin@acme.test" and body["plausible_max"] == "1000000.000000"
    changed = admin.patch(f"{METRICS}{body['id']}/", {"name": "Partner-sourced pipeline"}, content_type=JSON)
    assert changed.status_code == 200 and changed.json()["name"] == "Partner-sourced pipeline"
    with tenant_scope(world.a.tenant):
        assert AuditEvent.objects.filter(verb__in=["metric.created", "metric.updated"]).count() == 2


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"key": "revenue_won", "name": "X", "definition": "x"}, "key"),
        ({"key": "x_ratio", "name": "X", "definition": "x", "aggregation": "ratio"}, "numerator"),
        ({"key": "x", "name": "X", "definition": "x", "numerator": "no_such_metric"}, "numerator"),
        ({"key": "x", "name": "X", "definition": "x", "owner": "partner_admin@acme.test"}, "owner"),
        ({"key": "x", "name": "X", "definition": "x", "unit": "parsecs"}, "unit"),
    ],
)
def test_bad_metrics_answer_400_on_the_field(world, admin, payload, field):
    response = admin.post(METRICS, payload, content_type=JSON)
    assert response.status_code == 400 and field in response.json(), response.json()


def test_a_metrics_key_cannot_be_renamed_through_the_api(world, admin):
    with tenant_scope(world.a.tenant):
        revenue = Metric.objects.get(key="revenue_won")
    response = admin.patch(f"{METRICS}{revenue.pk}/", {"key": "bookings"}, content_type=JSON)
    assert response.status_code == 400 and "key" in response.json()


@pytest.mark.parametrize("role", ["partner_manager", "executive"])
def test_only_admins_change_the_catalogue(world, role):
    response = session(world.a, role).post(METRICS, {"key": "x", "name": "X", "definition": "x"}, content_type=JSON)
    assert response.status_code == 403


# --- Scorecards --------------------------------------------------------------------------------------------


def test_scorecards_show_their_version_in_force(world, admin):
    [row] = rows(admin.get(SCORECARDS))
    assert row["name"] == "Partner health" and row["active_version"] == world.a.extra["scorecards"].version.pk
    created = admin.post(SCORECARDS, {"name": "Distributor scorecard"}, content_type=JSON)
    assert created.status_code == 201 and created.json()["active_version"] is None
    duplicate = admin.post(SCORECARDS, {"name": "partner health"}, content_type=JSON)
    assert duplicate.status_code == 400 and "name" in duplicate.json()
    renamed = admin.patch(f"{SCORECARDS}{created.json()['id']}/", {"name": "Distributors"}, content_type=JSON)
    assert renamed.status_code == 200 and renamed.json()["name"] == "Distributors"


def test_another_tenants_scorecard_answers_404(world, admin):
    foreign = world.b.extra["scorecards"].scorecard
    assert admin.get(f"{SCORECARDS}{foreign.pk}/").status_code == 404
    assert admin.patch(f"{SCORECARDS}{foreign.pk}/", {"name": "Mine"}, content_type=JSON).status_code == 404
    response = admin.post(VERSIONS, {"scorecard": foreign.pk}, content_type=JSON)
    assert response.status_code == 400
    assert response.json() == {"scorecard": ["There is no scorecard with this id."]}


# --- Versions and the workflow ---------------------------------------------------------------------------


def test_an_admin_drafts_edits_proposes_and_another_admin_approves_and_activates(world, admin, second_admin):
    draft = new_draft(admin, world, band_excellent="85")
    assert draft["status"] == "draft" and draft["number"] == 2 and draft["band_excellent"] == "85.00"
    assert len(draft["items"]) == 4  # copied from the version in force
    pipeline = next(item for item in draft["items"] if item["metric"] == "pipeline_created")
    satisfaction = next(item for item in draft["items"] if item["metric"] == "customer_satisfaction")
    assert admin.patch(f"{ITEMS}{pipeline['id']}/", {"weight": "35"}, content_type=JSON).status_code == 200

    problems = admin.get(f"{VERSIONS}{draft['id']}/problems/").json()
    assert problems["ready"] is False
    assert [p["partner_type"] for p in problems["problems"]] == ["reseller", "msp"]
    refused = admin.post(
        f"{VERSIONS}{draft['id']}/propose/", {"rationale": "More weight on satisfaction."}, content_type=JSON
    )
    assert refused.status_code == 400 and len(refused.json()["non_field_errors"]) == 2

    assert admin.patch(f"{ITEMS}{satisfaction['id']}/", {"weight": "35"}, content_type=JSON).status_code == 200
    assert admin.get(f"{VERSIONS}{draft['id']}/problems/").json() == {"ready": True, "problems": []}
    proposed = admin.post(
        f"{VERSIONS}{draft['id']}/propose/", {"rationale": "More weight on satisfaction."}, content_type=JSON
    )
    assert proposed.status_code == 200 and proposed.json()["status"] == "proposed"
    assert proposed.json()["proposed_by"] == "admin@acme.test"

    own = admin.post(f"{VERSIONS}{draft['id']}/approve/", {}, content_type=JSON)
    assert own.status_code == 400
    assert own.json()["non_field_errors"][0].startswith("You proposed this version, so another administrator")

    other = Client()
    other.force_login(second_admin)
    approved = other.post(f"{VERSIONS}{draft['id']}/approve/", {"note": "Agreed."}, content_type=JSON)
    assert approved.status_code == 200 and approved.json()["approved_by"] == "second-admin@acme.test"
    bad_period = other.post(f"{VERSIONS}{draft['id']}/activate/", {"effective_from": "soon"}, content_type=JSON)
    assert bad_period.status_code == 400 and "effective_from" in bad_period.json()
    active = other.post(f"{VERSIONS}{draft['id']}/activate/", {"effective_from": "FY2027-Q1"}, content_type=JSON)
    assert active.status_code == 200
    assert (active.json()["status"], active.json()["effective_from"]) == ("active", "FY2027-Q1")
    first = admin.get(f"{VERSIONS}{world.a.extra['scorecards'].version.pk}/").json()
    assert first["status"] == "retired"


def test_withdrawing_needs_a_note(world, admin):
    draft = new_draft(admin, world)
    admin.post(f"{VERSIONS}{draft['id']}/propose/", {"rationale": "Why not."}, content_type=JSON)
    response = admin.post(f"{VERSIONS}{draft['id']}/withdraw/", {}, content_type=JSON)
    assert response.status_code == 400 and response.json() == {"note": ["This field is required."]}
    response = admin.post(f"{VERSIONS}{draft['id']}/withdraw/", {"note": "Wrong quarter."}, content_type=JSON)
    assert response.status_code == 200 and response.json()["status"] == "draft"


@pytest.mark.parametrize("step", ["propose", "withdraw", "approve", "activate"])
def test_versions_in_force_refuse_every_step_and_every_edit(world, admin, step):
    active = world.a.extra["scorecards"].version
    body = {"note": "x", "effective_from": "FY2027-Q1", "rationale": "x"}
    response = admin.post(f"{VERSIONS}{active.pk}/{step}/", body, content_type=JSON)
    assert response.status_code == 400
    assert "Version 1 is active, so it cannot be" in response.json()["non_field_errors"][0]
    edit = admin.patch(f"{VERSIONS}{active.pk}/", {"band_good": "50"}, content_type=JSON)
    assert edit.status_code == 400 and "can no longer be changed" in edit.json()["non_field_errors"][0]
    item = world.a.extra["scorecards"].items["pipeline_created"]
    assert admin.patch(f"{ITEMS}{item.pk}/", {"weight": "1"}, content_type=JSON).status_code == 400
    assert admin.delete(f"{ITEMS}{item.pk}/").status_code == 400
    assert admin.delete(f"{VERSIONS}{active.pk}/").status_code == 400
    with tenant_scope(world.a.tenant):
        assert ScorecardVersion.objects.get(pk=active.pk).status == VersionStatus.ACTIVE
        assert ScorecardItem.objects.filter(version=active).count() == 4


def test_a_draft_can_be_discarded(world, admin):
    draft = new_draft(admin, world)
    assert admin.delete(f"{VERSIONS}{draft['id']}/").status_code == 204
    assert admin.get(f"{VERSIONS}{draft['id']}/").status_code == 404


def test_an_api_key_may_draft_but_never_take_a_governance_step(world):
    client = key_client(world.a.write_key[1])
    draft = new_draft(client, world)
    response = client.post(f"{VERSIONS}{draft['id']}/propose/", {"rationale": "Automated."}, content_type=JSON)
    assert response.status_code == 403 and "signed in as themselves" in response.json()["detail"]
    assert (
        key_client(world.a.read_key[1]).post(VERSIONS, {"scorecard": draft["scorecard"]}, content_type=JSON).status_code
        == 403
    )


@pytest.mark.parametrize("role", ["partner_manager", "executive", *PARTNER])
def test_only_admins_write_rules(world, role):
    client = session(world.a, role)
    version = world.a.extra["scorecards"].version
    item = world.a.extra["scorecards"].items["pipeline_created"]
    assert client.post(VERSIONS, {"scorecard": version.scorecard_id}, content_type=JSON).status_code == 403
    assert client.post(f"{VERSIONS}{version.pk}/propose/", {}, content_type=JSON).status_code == 403
    assert client.patch(f"{ITEMS}{item.pk}/", {"weight": "1"}, content_type=JSON).status_code == 403
    assert client.post(SCORECARDS, {"name": "Mine"}, content_type=JSON).status_code == 403


def test_another_tenants_versions_and_items_answer_404_for_every_verb(world, admin):
    foreign = world.b.extra["scorecards"]
    with tenant_scope(world.b.tenant):
        foreign_draft = version_create_draft(scorecard=foreign.scorecard, by=world.b.users["admin"])
    for url in (f"{VERSIONS}{foreign.version.pk}/", f"{VERSIONS}{foreign_draft.pk}/"):
        assert admin.get(url).status_code == 404
        assert admin.patch(url, {"band_good": "1"}, content_type=JSON).status_code == 404
        assert admin.delete(url).status_code == 404
        for step in ("propose", "withdraw", "approve", "activate"):
            assert (
                admin.post(f"{url}{step}/", {"note": "x", "effective_from": "FY2027-Q1"}, content_type=JSON).status_code
                == 404
            )
        assert admin.get(f"{url}problems/").status_code == 404
    item = foreign.items["pipeline_created"]
    assert admin.get(f"{ITEMS}{item.pk}/").status_code == 404
    assert admin.patch(f"{ITEMS}{item.pk}/", {"weight": "1"}, content_type=JSON).status_code == 404
    response = admin.post(
        ITEMS, {"version": foreign_draft.pk, "metric": "revenue_won", "weight": "10"}, content_type=JSON
    )
    assert response.status_code == 400 and response.json() == {
        "version": ["There is no scorecard version with this id."]
    }
    with tenant_scope(world.b.tenant):
        assert ScorecardItem.objects.filter(version=foreign_draft).count() == 4


# --- Items ---------------------------------------------------------------------------------------------------


def test_items_are_added_to_drafts_with_field_errors_for_bad_input(world, admin):
    draft = new_draft(admin, world, copy_latest=False, partner_types=["reseller"])
    assert draft["items"] == [] and draft["partner_types"] == ["reseller"]
    created = admin.post(
        ITEMS,
        {"version": draft["id"], "metric": "revenue_won", "weight": "100", "normalization": "attainment",
         "segment_targets": {"reseller": "250000"}, "rubric": "banded",
         "bands": [{"at_least": "0.8", "points": "60"}, {"at_least": "1.2", "points": "100"}]},
        content_type=JSON,
    )  # fmt: skip
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["bands"] == [{"at_least": "0.800000", "points": "60.00"}, {"at_least": "1.200000", "points": "100.00"}]
    assert body["segment_targets"] == {"reseller": "250000.000000"} and body["is_core"] is True
    assert admin.get(f"{VERSIONS}{draft['id']}/problems/").json()["ready"] is True
    for payload, field in [
        ({"metric": "no_such_metric", "weight": "10"}, "metric"),
        ({"metric": "win_rate", "weight": "140"}, "weight"),
        ({"metric": "win_rate", "weight": "10", "bands": [{"from": 1}]}, "bands"),
        ({"metric": "win_rate", "weight": "10", "applies_to": ["astronauts"]}, "applies_to"),
        ({"metric": "win_rate", "weight": "10", "rubric": "vibes"}, "rubric"),
        ({"metric": "revenue_won", "weight": "10"}, "metric"),  # already in the version
        ({"metric": "win_rate"}, "weight"),
    ]:
        response = admin.post(ITEMS, {"version": draft["id"], **payload}, content_type=JSON)
        assert response.status_code == 400 and field in response.json(), (payload, response.json())


def test_items_filter_by_version_and_metric(world, admin):
    version = world.a.extra["scorecards"].version
    listed = rows(admin.get(ITEMS, {"version": version.pk}))
    assert [row["metric"] for row in listed] == [
        "pipeline_created",
        "customer_satisfaction",
        "training_completion_rate",
        "lead_response_time",
    ]
    assert len(rows(admin.get(ITEMS, {"metric": "lead_response_time"}))) == 1
    assert admin.get(ITEMS, {"version": world.b.extra["scorecards"].version.pk}).status_code == 400


# --- What partner users see -----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", PARTNER)
def test_partner_users_read_how_they_are_scored(world, admin, role):
    draft = new_draft(admin, world)
    client = session(world.a, role)
    [rules] = client.get(f"{VERSIONS}published/").json()
    assert rules["version_id"] == world.a.extra["scorecards"].version.pk
    assert [item["metric_key"] for item in rules["items"]] == [
        "pipeline_created",
        "customer_satisfaction",
        "training_completion_rate",  # their type's plug-in; the MSP plug-in is not shown
    ]
    assert rules["items"][0]["definition"] and rules["rationale"]
    assert [past["number"] for past in rules["history"]] == [1]
    assert "proposed_by" not in str(rules) and "admin@acme.test" not in str(rules)
    # Drafts and proposals are never theirs to see; the versions they can list are the published ones.
    listed = {row["id"] for row in rows(client.get(VERSIONS))}
    assert draft["id"] not in listed and listed <= {world.a.extra["scorecards"].version.pk}
    assert client.get(f"{VERSIONS}{draft['id']}/").status_code == 404
    for row in rows(client.get(VERSIONS)):
        assert "created_by" not in row and "approved_by" not in row
    # The partner_type parameter is ignored for them: always their own partner's type.
    assert client.get(f"{VERSIONS}published/", {"partner_type": "msp"}).json() == [rules]


def test_internal_users_read_the_published_rules_of_any_type(world, admin):
    [msp] = admin.get(f"{VERSIONS}published/", {"partner_type": "msp"}).json()
    assert "lead_response_time" in [item["metric_key"] for item in msp["items"]]
    assert admin.get(f"{VERSIONS}published/", {"partner_type": "referral"}).json() == []
    assert len(admin.get(f"{VERSIONS}published/").json()) == 1


# --- Lists stay flat ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [METRICS, SCORECARDS, VERSIONS, ITEMS])
def test_list_queries_do_not_grow_with_rows(world, url):
    client = key_client(world.a.read_key[1])
    client.get(url)  # the first call of a key records its use; measure steady state

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url, {"page_size": 200}).status_code == 200
        return len(ctx.captured_queries)

    def grow(count: int) -> None:
        admin = world.a.users["admin"]
        with tenant_scope(world.a.tenant):
            for n in range(count):
                scorecard = Scorecard.objects.create(name=f"Card {Scorecard.objects.count()} {n}")
                version_create_draft(scorecard=scorecard, by=admin, partner_types=["reseller"])
                Metric.objects.create(key=f"extra_{Metric.objects.count()}", name="Extra", definition="x")
                source = world.a.extra["scorecards"].version
                draft = version_create_draft(scorecard=source.scorecard, by=admin)
                assert ScorecardItem.objects.filter(version=draft).count() == 4

    grow(1)
    few = queries()
    grow(9)
    assert queries() == few
