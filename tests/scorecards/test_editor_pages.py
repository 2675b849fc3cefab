"""The scorecard editor pages: the list of scorecards and versions, a draft's settings and items
(with htmx and without), the approval steps, and the what-if preview page.

The world's scorecard ("Partner health") has version 1 in force, scoring resellers and MSPs with
pipeline 40 + satisfaction 30 (core), training 30 (resellers) and lead response 30 (MSPs).
"""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from partnerhub.tenancy.context import tenant_scope
from partnerhub.tenancy.models import AuditEvent
from partnerhub.tenancy.roles import Role
from scorecards.models import Metric, Scorecard, ScorecardItem, ScorecardVersion
from scorecards.services.governance import (
    item_add,
    item_update,
    scorecard_create,
    version_approve,
    version_create_draft,
    version_propose,
)
from tests.factories import MembershipFactory, PartnerFactory, TenantFactory

INTERNAL = ("admin", "partner_manager", "executive")
PARTNER = ("partner_admin", "partner_member")
READERS = ("partner_manager", "executive")
RATIONALE = "Satisfaction matters as much as pipeline."

pytestmark = pytest.mark.django_db


# --- Set-up ---------------------------------------------------------------------------------------------


@pytest.fixture
def second_admin(world):
    return MembershipFactory(tenant=world.a.tenant, role=Role.ADMIN, user__email="second-admin@acme.test").user


@pytest.fixture
def draft(world) -> ScorecardVersion:
    """Version 2 of the world's scorecard: a draft copying version 1."""
    with tenant_scope(world.a.tenant):
        return version_create_draft(scorecard=world.a.extra["scorecards"].scorecard, by=world.a.users["admin"])


@pytest.fixture
def foreign_draft(world) -> ScorecardVersion:
    with tenant_scope(world.b.tenant):
        return version_create_draft(scorecard=world.b.extra["scorecards"].scorecard, by=world.b.users["admin"])


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def as_role(world_tenant, role: str) -> Client:
    return login(world_tenant.users[role])


def version_url(version, name: str = "scorecard_editor_version") -> str:
    return reverse(name, args=[version.pk])


def in_a(world, query):
    with tenant_scope(world.a.tenant):
        return query()


def item_of(world, version, key: str) -> ScorecardItem:
    return in_a(world, lambda: ScorecardItem.objects.select_related("metric").get(version=version, metric__key=key))


def metric_of(world, key: str) -> Metric:
    return in_a(world, lambda: Metric.objects.get(key=key))


def refreshed(world, version) -> ScorecardVersion:
    return in_a(world, lambda: ScorecardVersion.objects.get(pk=version.pk))


def item_post(world, **overrides) -> dict:
    """A valid item form: a core metric, linear between a floor and a target."""
    data = {
        "metric": metric_of(world, "revenue_won").pk,
        "weight": "10",
        "scope": "core",
        "normalization": "none",
        "rubric": "linear",
        "floor": "0",
        "target": "500000",
        "cap": "100",
        "bands": "",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def body(response) -> str:
    return response.content.decode()


def text(response) -> str:
    """The page as words, tags removed and whitespace collapsed (messages may wrap)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body(response)))


def field_block(html: str, field_id: str) -> str:
    """The house layout's wrapper of one field: its label, input, help and errors."""
    at = html.index(f'id="{field_id}"')
    start = html.rfind('<div class="field', 0, at)
    end = html.find('<div class="field', at)
    return html[start : end if end > 0 else None]


def audit_verbs(world) -> list[str]:
    return in_a(
        world,
        lambda: list(
            AuditEvent.objects.filter(verb__startswith="scorecard").order_by("pk").values_list("verb", flat=True)
        ),
    )


def state(world) -> tuple:
    """Everything the editor could write, to check that a refused action wrote nothing."""
    return in_a(
        world,
        lambda: (
            sorted(Scorecard.objects.values_list("pk", "name")),
            sorted(
                ScorecardVersion.objects.values_list(
                    "pk", "number", "status", "rationale", "partner_types", "band_excellent", "effective_from"
                )
            ),
            sorted(
                ScorecardItem.objects.values_list(
                    "pk", "version_id", "metric_id", "weight", "applies_to", "floor", "target", "bands"
                )
            ),
            AuditEvent.objects.count(),
        ),
    )


# --- Who may open what --------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", INTERNAL + PARTNER)
def test_the_list_and_a_version_answer_internal_people_and_refuse_partner_users(world, draft, role):
    client = as_role(world.a, role)
    for url in (reverse("scorecard_editor"), version_url(draft), version_url(world.a.extra["scorecards"].version)):
        assert client.get(url).status_code == (200 if role in INTERNAL else 403), (role, url)


@pytest.mark.parametrize("role", INTERNAL + PARTNER)
def test_only_administrators_open_the_new_scorecard_page_and_the_preview(world, draft, role):
    client = as_role(world.a, role)
    for url in (reverse("scorecard_editor_new"), version_url(draft, "scorecard_editor_preview")):
        assert client.get(url).status_code == (200 if role == "admin" else 403), (role, url)


@pytest.mark.parametrize("role", READERS)
def test_executives_and_partner_managers_read_without_any_editing_control(world, draft, role):
    client = as_role(world.a, role)
    listing = body(client.get(reverse("scorecard_editor")))
    assert "Partner health" in listing and "Version 2" in listing
    assert "New scorecard" not in listing
    assert "New draft from this version" not in listing
    page = body(client.get(version_url(draft)))
    for control in ("Save settings", "Add metric", "Propose version", "What-if preview", 'name="weight"', ">Edit<"):
        assert control not in page, control
    assert "Pipeline created" in page  # the items are there to read


def writes(world, draft, item) -> list[tuple[str, dict]]:
    """Every write the editor takes, with a valid body."""
    return [
        (reverse("scorecard_editor_new"), {"name": "Another", "period_kind": "quarter"}),
        (version_url(draft, "scorecard_editor_new_draft"), {}),
        (
            version_url(draft, "scorecard_editor_settings"),
            {
                "partner_types": ["reseller"],
                "period_kind": "quarter",
                "band_excellent": "80",
                "band_good": "60",
                "missing_data": "renormalize",
                "min_completeness": "0.7",
            },
        ),
        (version_url(draft, "scorecard_editor_item_add"), item_post(world)),
        (reverse("scorecard_editor_item_edit", args=[item.pk]), item_post(world, metric=item.metric_id, weight="35")),
        (reverse("scorecard_editor_item_remove", args=[item.pk]), {}),
        (version_url(draft, "scorecard_editor_propose"), {"rationale": RATIONALE}),
        (version_url(draft, "scorecard_editor_withdraw"), {"note": "No."}),
        (version_url(draft, "scorecard_editor_approve"), {}),
        (version_url(draft, "scorecard_editor_activate"), {"effective_from": "FY2027-Q1"}),
        (version_url(draft, "scorecard_editor_discard"), {}),
    ]


@pytest.mark.parametrize("role", READERS + PARTNER)
def test_only_administrators_write_and_a_refused_write_changes_nothing(world, draft, role):
    client = as_role(world.a, role)
    item = item_of(world, draft, "pipeline_created")
    before = state(world)
    for url, data in writes(world, draft, item):
        assert client.post(url, data).status_code == 403, (role, url)
        assert client.post(url, data, HTTP_HX_REQUEST="true").status_code == 403, (role, url)
    assert state(world) == before


@pytest.mark.parametrize("role", READERS)
def test_another_tenants_version_is_not_found_by_readers(world, foreign_draft, role):
    assert as_role(world.a, role).get(version_url(foreign_draft)).status_code == 404


def test_another_tenants_versions_and_items_are_not_found_by_an_administrator(world, foreign_draft):
    client = as_role(world.a, "admin")
    with tenant_scope(world.b.tenant):
        foreign_item = ScorecardItem.objects.filter(version=foreign_draft).first()
    for url in (
        version_url(foreign_draft),
        version_url(foreign_draft, "scorecard_editor_preview"),
        version_url(foreign_draft, "scorecard_editor_discard"),
        reverse("scorecard_editor_item_edit", args=[foreign_item.pk]),
        reverse("scorecard_editor_item_remove", args=[foreign_item.pk]),
    ):
        assert client.get(url).status_code == 404, url
    before = state(world)
    for url, data in writes(world, foreign_draft, foreign_item)[1:]:
        assert client.post(url, data).status_code == 404, url
        assert client.post(url, data, HTTP_HX_REQUEST="true").status_code == 404, url
    assert state(world) == before
    with tenant_scope(world.b.tenant):
        assert ScorecardItem.objects.filter(pk=foreign_item.pk).exists()
        assert ScorecardVersion.objects.get(pk=foreign_draft.pk).status == "draft"


def test_the_list_never_shows_another_tenants_scorecards(world, foreign_draft):
    with tenant_scope(world.b.tenant):
        scorecard_create(name="Globex only", by=world.b.users["admin"])
    page = body(as_role(world.a, "admin").get(reverse("scorecard_editor")))
    assert "Globex only" not in page
    assert version_url(foreign_draft) not in page


# --- The list -----------------------------------------------------------------------------------------------


def version_rows(response) -> dict[int, str]:
    """The list's rows by version id, as words."""
    rows = re.findall(r'<tr id="version-(\d+)">(.*?)</tr>', body(response), re.S)
    return {int(pk): re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)) for pk, row in rows}


def test_the_list_shows_each_version_with_its_status_period_and_people(world, draft):
    admin = world.a.users["admin"]
    with tenant_scope(world.a.tenant):
        version_propose(version=draft, by=admin, rationale=RATIONALE)
    response = as_role(world.a, "admin").get(reverse("scorecard_editor"))
    active = world.a.extra["scorecards"].version
    rows = version_rows(response)
    assert set(rows) == {active.pk, draft.pk}
    assert "Version 1" in rows[active.pk] and "Active" in rows[active.pk]
    assert world.a.extra["scorecards"].periods[0] in rows[active.pk]
    assert "Version 2" in rows[draft.pk] and "Proposed" in rows[draft.pk]
    assert (admin.get_full_name() or admin.email) in rows[draft.pk]
    assert "4" in rows[draft.pk].split("Proposed")[1]  # its four metrics
    assert "New scorecard" in body(response)
    assert body(response).count("New draft from this version") == 2


def test_the_list_without_scorecards_says_what_to_do(db):
    admin = MembershipFactory(tenant=TenantFactory(slug="initech"), role=Role.ADMIN, user__email="a@initech.test")
    page = body(login(admin.user).get(reverse("scorecard_editor")))
    assert "No scorecards yet" in page
    assert "New scorecard" in page


# --- New scorecards and new drafts ---------------------------------------------------------------------


def test_a_new_scorecard_opens_its_first_draft_and_is_audited_once(world):
    client = as_role(world.a, "admin")
    response = client.post(
        reverse("scorecard_editor_new"),
        {"name": "Services quality", "partner_types": ["msp"], "period_kind": "month"},
    )
    scorecard = in_a(world, lambda: Scorecard.objects.get(name="Services quality"))
    draft = in_a(world, lambda: ScorecardVersion.objects.get(scorecard=scorecard))
    assert response.status_code == 302 and response["Location"] == version_url(draft)
    assert (draft.number, draft.status, draft.partner_types, draft.period_kind) == (1, "draft", ["msp"], "month")
    assert audit_verbs(world)[-2:] == ["scorecard.created", "scorecard_version.created"]
    page = text(client.get(response["Location"]))
    assert "Services quality is created" in page
    assert "Add at least one metric" in page


def test_a_scorecard_name_in_use_is_refused_next_to_the_field_and_nothing_is_written(world):
    before = state(world)
    response = as_role(world.a, "admin").post(
        reverse("scorecard_editor_new"), {"name": "partner HEALTH", "period_kind": "quarter"}
    )
    assert response.status_code == 200
    assert "A scorecard with this name already exists." in text(response)
    assert state(world) == before


def test_a_new_scorecard_with_an_unknown_period_kind_is_refused(world):
    before = state(world)
    response = as_role(world.a, "admin").post(reverse("scorecard_editor_new"), {"name": "X", "period_kind": "year"})
    assert response.status_code == 200
    assert "Select a valid choice" in text(response)
    assert state(world) == before


def test_a_new_draft_from_the_latest_version_copies_its_settings_and_items(world):
    active = world.a.extra["scorecards"].version
    response = as_role(world.a, "admin").post(version_url(active, "scorecard_editor_new_draft"))
    draft = in_a(world, lambda: ScorecardVersion.objects.get(scorecard=active.scorecard, number=2))
    assert response["Location"] == version_url(draft)
    copied = in_a(
        world, lambda: sorted(ScorecardItem.objects.filter(version=draft).values_list("metric__key", "weight"))
    )
    original = in_a(
        world, lambda: sorted(ScorecardItem.objects.filter(version=active).values_list("metric__key", "weight"))
    )
    assert copied == original and len(copied) == 4
    assert draft.partner_types == ["reseller", "msp"]


def test_a_new_draft_from_an_earlier_version_copies_that_version_not_the_latest(world, draft):
    admin = world.a.users["admin"]
    with tenant_scope(world.a.tenant):
        item_update(item=item_of(world, draft, "pipeline_created"), by=admin, weight="10")
    active = world.a.extra["scorecards"].version
    response = as_role(world.a, "admin").post(version_url(active, "scorecard_editor_new_draft"))
    third = in_a(world, lambda: ScorecardVersion.objects.get(scorecard=active.scorecard, number=3))
    assert response["Location"] == version_url(third)
    assert item_of(world, third, "pipeline_created").weight == 40  # version 1's weight, not the draft's 10
    assert in_a(world, lambda: ScorecardItem.objects.filter(version=third).count()) == 4


def test_a_new_draft_that_cannot_be_copied_says_why_and_writes_nothing(world, draft):
    # Version 1 names a metric since taken out of the catalogue: an earlier version is rebuilt
    # item by item, and the retired metric refuses the whole copy.
    with tenant_scope(world.a.tenant):
        Metric.objects.filter(key="customer_satisfaction").update(is_active=False)
    before = state(world)
    client = as_role(world.a, "admin")
    response = client.post(version_url(world.a.extra["scorecards"].version, "scorecard_editor_new_draft"))
    assert response["Location"] == reverse("scorecard_editor")
    assert "No draft was created: Customer satisfaction is no longer in use in the catalogue." in text(
        client.get(response["Location"])
    )
    assert state(world) == before


# --- Settings --------------------------------------------------------------------------------------------------


def settings_post(**overrides) -> dict:
    data = {
        "partner_types": ["reseller", "msp"],
        "period_kind": "quarter",
        "band_excellent": "85",
        "band_good": "60",
        "missing_data": "zero",
        "min_completeness": "0.8",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def test_saving_the_settings_changes_the_draft(world, draft):
    response = as_role(world.a, "admin").post(version_url(draft, "scorecard_editor_settings"), settings_post())
    assert response.status_code == 302
    draft = refreshed(world, draft)
    assert (draft.band_excellent, draft.missing_data, str(draft.min_completeness)) == (85, "zero", "0.800")
    assert audit_verbs(world)[-1] == "scorecard_version.updated"


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"band_good": "90"}, "The “good” threshold must not be above the “excellent” one."),
        ({"band_excellent": "eighty"}, "Enter a number, such as 80 or 0.75."),
        ({"band_excellent": "1e400"}, "less than or equal to 100"),
        ({"band_excellent": "NaN"}, "Enter a number"),
        ({"min_completeness": "1.5"}, "less than or equal to 1"),
        ({"band_excellent": None}, "This field is required."),
        ({"partner_types": ["wholesaler"]}, "Select a valid choice"),
        ({"missing_data": "guess"}, "Select a valid choice"),
    ],
)
def test_settings_that_cannot_be_saved_are_explained_and_nothing_changes(world, draft, overrides, message):
    before = state(world)
    response = as_role(world.a, "admin").post(
        version_url(draft, "scorecard_editor_settings"), settings_post(**overrides)
    )
    assert response.status_code == 200
    assert message in text(response)
    assert "Nothing was saved" in text(response) or message in text(response)
    assert state(world) == before


def test_a_version_without_partner_types_says_so_next_to_the_field(world, draft):
    client = as_role(world.a, "admin")
    client.post(version_url(draft, "scorecard_editor_settings"), settings_post(partner_types=None))
    html = body(client.get(version_url(draft)))
    assert "Choose the partner types this version scores." in field_block(html, "id_partner_types")
    assert "Choose the partner types this version scores." in html.split('id="problems"')[1]
    assert "Choose the partner types this version scores to see their weights." in html


# --- Items: add, change, remove -----------------------------------------------------------------------------


def test_adding_an_item_without_javascript_posts_and_redirects(world, draft):
    client = as_role(world.a, "admin")
    response = client.post(version_url(draft, "scorecard_editor_item_add"), item_post(world, weight="12.5"))
    assert (
        response.status_code == 302
        and response["Location"] == version_url(draft, "scorecard_editor_version") + "#items"
    )
    item = item_of(world, draft, "revenue_won")
    assert (item.weight, item.applies_to, item.floor, item.target) == (12.5, [], 0, 500000)
    page = text(client.get(version_url(draft)))
    assert "Revenue won is added." in page
    assert "Reseller : 112.5 of 100" in page
    assert audit_verbs(world)[-1] == "scorecard_item.added"
    assert audit_verbs(world).count("scorecard_item.added") == 1


def test_adding_an_item_with_htmx_answers_the_items_panel_with_new_weights_and_problems(world, draft):
    response = as_role(world.a, "admin").post(
        version_url(draft, "scorecard_editor_item_add"),
        item_post(world, weight="20", scope="plug_in", applies_to=["msp"]),
        HTTP_HX_REQUEST="true",
    )
    html = body(response)
    assert response.status_code == 200
    assert html.lstrip().startswith('<section id="workbench"')
    assert "Revenue won is added." in html
    weights = {key: total for key, total in re.findall(r'id="weight-(\w+)" data-total="([\d.]+)"', html)}
    assert weights == {"reseller": "100.00", "msp": "120.00"}
    msp = html.split('id="weight-msp"')[1].split("</li>")[0]
    assert "20 over" in msp
    assert "For Managed service provider partners the weights add up to 120, not 100" in msp
    assert "1 thing to fix before it can be proposed" in html
    assert item_of(world, draft, "revenue_won").applies_to == ["msp"]


def test_an_item_with_an_attainment_target_and_bands_is_stored_as_typed(world, draft):
    as_role(world.a, "admin").post(
        version_url(draft, "scorecard_editor_item_add"),
        item_post(
            world,
            metric=metric_of(world, "renewal_rate").pk,
            weight="5",
            normalization="attainment",
            target__msp="0.9",
            target__reseller="0.85",
            rubric="banded",
            bands="0.9: 50\n1 = 80; 1.1 → 100",
        ),
    )
    item = item_of(world, draft, "renewal_rate")
    assert item.segment_targets == {"reseller": 0.85, "msp": 0.9}
    assert item.bands == [
        {"at_least": 0.9, "points": 50},
        {"at_least": 1, "points": 80},
        {"at_least": 1.1, "points": 100},
    ]


@pytest.mark.parametrize(
    "overrides, field, message",
    [
        ({"weight": "ten"}, "weight", "Enter a number, such as 80 or 0.75."),
        ({"weight": "150"}, "weight", "less than or equal to 100"),
        ({"weight": None}, "weight", "This field is required."),
        ({"weight": "12.345"}, "weight", "no more than 2 decimal places"),
        ({"floor": "1,5"}, "floor", "Enter a number"),
        ({"metric": None}, "metric", "This field is required."),
        ({"metric": "999999"}, "metric", "Choose one of the metrics offered"),
        ({"metric": "pipeline_created"}, "metric", "Choose one of the metrics offered"),
        ({"scope": "plug_in"}, "applies_to", "Choose the partner types this plug-in scores"),
        ({"scope": "plug_in", "applies_to": ["distributor"]}, "applies_to", "Select a valid choice"),
        ({"normalization": "log"}, "normalization", "Select a valid choice"),
        ({"rubric": "banded", "bands": ""}, "bands", "A banded rubric needs at least one band"),
        ({"rubric": "banded", "bands": "50: 50\nhigh: 100"}, "bands", "Band 2 (“high: 100”): the threshold"),
        ({"rubric": "banded", "bands": "80 90"}, "bands", "write a band as “threshold: points”"),
        ({"rubric": "banded", "bands": "1e999: 50"}, "bands", "at most 14 digits before the point"),
        ({"rubric": "banded", "bands": "0.0000001: 50"}, "bands", "and 6 after it"),
        ({"rubric": "banded", "bands": "50: 1e999"}, "bands", "points are between 0 and 100"),
        ({"rubric": "banded", "bands": "50: 12.345"}, "bands", "to two decimals at most"),
        ({"rubric": "banded", "bands": "NaN: 50"}, "bands", "must be numbers"),
        ({"floor": "1e999"}, "floor", "Ensure that there are no more than"),
        ({"cap": "0"}, "cap", "greater than or equal to 0.01"),
    ],
)
def test_an_item_that_cannot_be_added_is_explained_next_to_its_field_and_nothing_is_written(
    world, draft, overrides, field, message
):
    before = state(world)
    client = as_role(world.a, "admin")
    for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
        response = client.post(
            version_url(draft, "scorecard_editor_item_add"), item_post(world, **overrides), **headers
        )
        assert response.status_code == 200
        html = body(response)
        form = html.split('id="add-item"')[1]
        field_html = field_block(form, f"add-{field}")
        assert message in re.sub(r"\s+", " ", field_html), (headers, field)
    assert state(world) == before


def test_a_metric_of_another_tenant_cannot_be_added(world, draft):
    with tenant_scope(world.b.tenant):
        foreign_metric = Metric.objects.get(key="revenue_won")
    before = state(world)
    response = as_role(world.a, "admin").post(
        version_url(draft, "scorecard_editor_item_add"), item_post(world, metric=foreign_metric.pk)
    )
    assert "Choose one of the metrics offered" in text(response)
    assert state(world) == before


def test_a_metric_already_in_the_draft_or_retired_cannot_be_added(world, draft):
    with tenant_scope(world.a.tenant):
        Metric.objects.filter(key="win_rate").update(is_active=False)
    before = state(world)
    client = as_role(world.a, "admin")
    for key in ("pipeline_created", "win_rate"):
        response = client.post(
            version_url(draft, "scorecard_editor_item_add"), item_post(world, metric=metric_of(world, key).pk)
        )
        assert "Choose one of the metrics offered" in field_block(body(response), "add-metric"), key
    assert state(world) == before


def test_a_metric_already_in_the_draft_is_not_offered_again(world, draft):
    html = body(as_role(world.a, "admin").get(version_url(draft)))
    options = re.findall(r"<option value=\"(\d+)\"", html.split('id="add-metric"')[1].split("</select>")[0])
    used = in_a(world, lambda: set(ScorecardItem.objects.filter(version=draft).values_list("metric_id", flat=True)))
    assert options and not used & {int(pk) for pk in options}


def test_editing_an_item_with_htmx_turns_its_row_into_a_form_and_saves_into_the_panel(world, draft):
    client = as_role(world.a, "admin")
    item = item_of(world, draft, "pipeline_created")
    url = reverse("scorecard_editor_item_edit", args=[item.pk])
    row = body(client.get(url, HTTP_HX_REQUEST="true"))
    assert row.lstrip().startswith(f'<tr id="item-{item.pk}" class="editing">')
    assert 'value="40"' in row and "hx-post" in row

    saved = client.post(
        url, item_post(world, metric=item.metric_id, weight="30", normalization="percentile"), HTTP_HX_REQUEST="true"
    )
    html = body(saved)
    assert html.lstrip().startswith('<section id="workbench"')
    assert "Pipeline created is saved." in html
    assert re.search(r'id="weight-reseller" data-total="90.00"', html)
    assert item_of(world, draft, "pipeline_created").weight == 30
    assert audit_verbs(world)[-1] == "scorecard_item.updated"


def test_an_htmx_edit_that_cannot_be_saved_goes_back_into_its_row_with_the_reason(world, draft):
    item = item_of(world, draft, "pipeline_created")
    before = state(world)
    response = as_role(world.a, "admin").post(
        reverse("scorecard_editor_item_edit", args=[item.pk]),
        item_post(world, metric=item.metric_id, weight="-5"),
        HTTP_HX_REQUEST="true",
    )
    assert response["HX-Retarget"] == f"#item-{item.pk}"
    assert response["HX-Reswap"] == "outerHTML"
    assert "greater than or equal to 0" in text(response)
    assert state(world) == before


def test_editing_an_item_without_javascript_uses_a_page_of_its_own(world, draft):
    client = as_role(world.a, "admin")
    item = item_of(world, draft, "customer_satisfaction")
    url = reverse("scorecard_editor_item_edit", args=[item.pk])
    page = client.get(url)
    assert "<h1>Change Customer satisfaction</h1>" in body(page)
    assert 'value="5"' in body(page) and 'value="9"' in body(page)
    response = client.post(url, item_post(world, metric=item.metric_id, weight="30", floor="4", target="10"))
    assert response["Location"] == version_url(draft) + "#items"
    item = item_of(world, draft, "customer_satisfaction")
    assert (item.floor, item.target) == (4, 10)


def test_removing_an_item_asks_first_without_javascript_and_answers_the_panel_with_htmx(world, draft):
    client = as_role(world.a, "admin")
    item = item_of(world, draft, "lead_response_time")
    url = reverse("scorecard_editor_item_remove", args=[item.pk])
    assert "Remove Lead response time?" in text(client.get(url))
    assert in_a(world, lambda: ScorecardItem.objects.filter(pk=item.pk).exists())

    html = body(client.post(url, HTTP_HX_REQUEST="true"))
    assert html.lstrip().startswith('<section id="workbench"')
    assert "Lead response time is removed." in html
    assert "For Managed service provider partners the weights add up to 70, not 100" in html
    assert not in_a(world, lambda: ScorecardItem.objects.filter(pk=item.pk).exists())

    other = item_of(world, draft, "training_completion_rate")
    response = client.post(reverse("scorecard_editor_item_remove", args=[other.pk]))
    assert response["Location"] == version_url(draft) + "#items"
    assert audit_verbs(world)[-2:] == ["scorecard_item.removed", "scorecard_item.removed"]


def test_an_items_problems_are_shown_in_its_row(world, draft):
    with tenant_scope(world.a.tenant):
        item_update(item=item_of(world, draft, "customer_satisfaction"), by=world.a.users["admin"], floor="9")
    item = item_of(world, draft, "customer_satisfaction")
    html = body(as_role(world.a, "admin").get(version_url(draft)))
    row_problems = html.split(f'id="item-{item.pk}-problems"')[1].split("</tr>")[0]
    assert "Customer satisfaction: the floor and the target are both 9" in row_problems
    summary = html.split('id="problems"')[1].split("</div>")[0]
    assert "Customer satisfaction: the floor and the target are both 9" in summary


# --- Read only past draft, and drafts that moved on ---------------------------------------------------------


def test_a_version_past_draft_is_read_only_and_refuses_changes_with_a_reason(world):
    active = world.a.extra["scorecards"].version
    item = item_of(world, active, "pipeline_created")
    client = as_role(world.a, "admin")
    page = body(client.get(version_url(active)))
    for control in ("Save settings", "Add metric", ">Edit<", "Propose version", "What-if preview"):
        assert control not in page, control
    assert "Version 1 is active, so its rules are read only." in text(client.get(version_url(active)))
    assert "New draft from version 1" in page

    before = state(world)
    attempts = [
        (version_url(active, "scorecard_editor_settings"), settings_post()),
        (version_url(active, "scorecard_editor_item_add"), item_post(world)),
        (reverse("scorecard_editor_item_edit", args=[item.pk]), item_post(world, metric=item.metric_id, weight="1")),
        (reverse("scorecard_editor_item_remove", args=[item.pk]), {}),
        (version_url(active, "scorecard_editor_discard"), {}),
    ]
    for url, data in attempts:
        response = client.post(url, data)
        assert response.status_code == 302, url
        assert "Version 1 is active and can no longer be changed" in text(client.get(response["Location"])), url
        htmx = client.post(url, data, HTTP_HX_REQUEST="true")
        assert htmx.status_code == 200 and htmx["HX-Refresh"] == "true", url
    assert state(world) == before


def test_a_draft_proposed_meanwhile_refuses_an_edit_from_a_page_opened_before(world, draft, second_admin):
    client = as_role(world.a, "admin")
    item = item_of(world, draft, "pipeline_created")
    row = client.get(reverse("scorecard_editor_item_edit", args=[item.pk]), HTTP_HX_REQUEST="true")
    assert row.status_code == 200  # the admin starts editing ...
    with tenant_scope(world.a.tenant):  # ... while a colleague proposes the draft
        version_propose(version=draft, by=second_admin, rationale=RATIONALE)
    before = state(world)
    response = client.post(
        reverse("scorecard_editor_item_edit", args=[item.pk]),
        item_post(world, metric=item.metric_id, weight="35"),
        HTTP_HX_REQUEST="true",
    )
    assert response["HX-Refresh"] == "true"
    assert "Version 2 is proposed and can no longer be changed" in text(client.get(version_url(draft)))
    assert state(world) == before


def test_an_item_or_draft_deleted_meanwhile_is_not_found(world, draft):
    client = as_role(world.a, "admin")
    item = item_of(world, draft, "pipeline_created")
    client.post(version_url(draft, "scorecard_editor_discard"))
    assert client.post(reverse("scorecard_editor_item_edit", args=[item.pk]), item_post(world)).status_code == 404
    assert client.post(version_url(draft, "scorecard_editor_item_add"), item_post(world)).status_code == 404
    assert client.post(version_url(draft, "scorecard_editor_propose"), {"rationale": "x"}).status_code == 404


def test_discarding_a_draft_asks_first_then_deletes_it(world, draft):
    client = as_role(world.a, "admin")
    assert "Discard the draft version 2?" in text(client.get(version_url(draft, "scorecard_editor_discard")))
    response = client.post(version_url(draft, "scorecard_editor_discard"))
    assert response["Location"] == reverse("scorecard_editor")
    assert not in_a(world, lambda: ScorecardVersion.objects.filter(pk=draft.pk).exists())
    assert "The draft version 2 of Partner health is discarded." in text(client.get(response["Location"]))
    assert audit_verbs(world)[-1] == "scorecard_version.discarded"


# --- Propose, withdraw, approve, activate -------------------------------------------------------------------


def governance_text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body(response).split('id="governance"')[1]))


def test_the_preview_link_sits_next_to_propose(world, draft):
    html = body(as_role(world.a, "admin").get(version_url(draft)))
    actions = html.split('id="propose"')[1].split("</form>")[0]
    assert version_url(draft, "scorecard_editor_preview") in actions
    assert "Propose version 2" in actions


def test_proposing_needs_a_rationale_and_keeps_what_was_typed_elsewhere(world, draft):
    before = state(world)
    response = as_role(world.a, "admin").post(version_url(draft, "scorecard_editor_propose"), {"rationale": "  "})
    assert response.status_code == 200
    rationale = field_block(body(response), "propose-rationale")
    assert "Say why these rules are right: partners read this rationale." in rationale
    assert state(world) == before


def test_a_draft_with_problems_is_not_proposed_and_the_page_lists_them(world, draft):
    with tenant_scope(world.a.tenant):
        item_update(item=item_of(world, draft, "pipeline_created"), by=world.a.users["admin"], weight="30")
    before = state(world)
    response = as_role(world.a, "admin").post(version_url(draft, "scorecard_editor_propose"), {"rationale": RATIONALE})
    assert response.status_code == 200
    refusal = body(response).split('id="refusal"')[1].split("</div>")[0]
    assert "For Reseller partners the weights add up to 90, not 100" in refusal
    assert "For Managed service provider partners the weights add up to 90, not 100" in refusal
    assert RATIONALE in body(response).split('id="propose-rationale"')[1].split("</textarea>")[0]  # kept
    assert state(world) == before


def test_a_proposal_goes_to_a_second_administrator_who_approves_it_and_it_is_activated(world, draft, second_admin):
    proposer, approver = as_role(world.a, "admin"), login(second_admin)
    response = proposer.post(version_url(draft, "scorecard_editor_propose"), {"rationale": RATIONALE})
    assert response["Location"] == version_url(draft)
    assert refreshed(world, draft).status == "proposed"
    assert "Version 2 is proposed: another administrator can now approve it." in text(proposer.get(version_url(draft)))

    # The proposer sees why they cannot approve, and is refused if they try.
    page = governance_text(proposer.get(version_url(draft)))
    assert "You proposed this version, so another administrator must approve it" in page
    assert "Approve version 2" not in page
    before = state(world)
    refused = proposer.post(version_url(draft, "scorecard_editor_approve"), {"note": ""})
    assert refused.status_code == 200
    assert (
        "You proposed this version, so another administrator must approve it" in body(refused).split('id="refusal"')[1]
    )
    assert state(world) == before

    response = approver.post(version_url(draft, "scorecard_editor_approve"), {"note": "Agreed."})
    assert response["Location"] == version_url(draft)
    draft = refreshed(world, draft)
    assert (draft.status, draft.approved_by_id) == ("approved", second_admin.pk)

    response = approver.post(version_url(draft, "scorecard_editor_activate"), {"effective_from": "FY2027-Q1"})
    assert response["Location"] == version_url(draft)
    assert (refreshed(world, draft).status, refreshed(world, draft).effective_from) == ("active", "FY2027-Q1")
    assert refreshed(world, world.a.extra["scorecards"].version).status == "retired"
    assert "Version 2 is in force from FY2027-Q1" in text(approver.get(version_url(draft)))
    assert audit_verbs(world)[-4:] == [
        "scorecard_version.proposed",
        "scorecard_version.approved",
        "scorecard_version.retired",
        "scorecard_version.activated",
    ]


def test_a_proposal_can_be_withdrawn_by_its_proposer_or_sent_back_by_another_admin(world, draft, second_admin):
    proposer = as_role(world.a, "admin")
    proposer.post(version_url(draft, "scorecard_editor_propose"), {"rationale": RATIONALE})
    assert "Withdraw the proposal" in governance_text(proposer.get(version_url(draft)))
    assert "Send back to draft" in governance_text(login(second_admin).get(version_url(draft)))

    before = state(world)
    refused = login(second_admin).post(version_url(draft, "scorecard_editor_withdraw"), {"note": ""})
    assert "Say why the proposal goes back to draft." in field_block(body(refused), "withdraw-note")
    assert state(world) == before

    login(second_admin).post(version_url(draft, "scorecard_editor_withdraw"), {"note": "Weights need a second look."})
    assert refreshed(world, draft).status == "draft"
    assert audit_verbs(world)[-1] == "scorecard_version.rejected"


@pytest.mark.parametrize("period, message", [("next year", "is not a period"), ("FY2026-M07", "name a quarter")])
def test_an_activation_period_that_cannot_be_used_is_explained(world, draft, second_admin, period, message):
    with tenant_scope(world.a.tenant):
        version_propose(version=draft, by=world.a.users["admin"], rationale=RATIONALE)
        version_approve(version=draft, by=second_admin)
    before = state(world)
    response = as_role(world.a, "admin").post(
        version_url(draft, "scorecard_editor_activate"), {"effective_from": period}
    )
    assert response.status_code == 200
    assert message in field_block(body(response), "activate-effective_from")
    assert state(world) == before


def test_an_activation_not_after_the_version_in_force_is_refused(world, draft, second_admin):
    with tenant_scope(world.a.tenant):
        version_propose(version=draft, by=world.a.users["admin"], rationale=RATIONALE)
        version_approve(version=draft, by=second_admin)
    before = state(world)
    in_force_from = world.a.extra["scorecards"].periods[0]
    response = as_role(world.a, "admin").post(
        version_url(draft, "scorecard_editor_activate"), {"effective_from": in_force_from}
    )
    assert f"Version 1 is in force from {in_force_from}; the new version must start in a later period." in text(
        response
    )
    assert state(world) == before


@pytest.mark.parametrize(
    "step, data, message",
    [
        ("propose", {"rationale": RATIONALE}, "Version 1 is active, so it cannot be proposed."),
        ("withdraw", {"note": "Why not"}, "Version 1 is active, so it cannot be sent back to draft."),
        ("approve", {"note": ""}, "Version 1 is active, so it cannot be approved."),
        ("activate", {"effective_from": "FY2027-Q1"}, "Version 1 is active, so it cannot be activated."),
    ],
)
def test_a_step_the_version_has_moved_past_is_refused_with_a_clear_message(world, step, data, message):
    active = world.a.extra["scorecards"].version
    before = state(world)
    response = as_role(world.a, "admin").post(version_url(active, f"scorecard_editor_{step}"), data)
    assert response.status_code == 200
    assert message in body(response).split('id="refusal"')[1].split("</div>")[0]
    assert state(world) == before


def test_approving_a_draft_that_was_never_proposed_is_refused(world, draft, second_admin):
    before = state(world)
    response = login(second_admin).post(version_url(draft, "scorecard_editor_approve"), {})
    assert "Version 2 is a draft, so it cannot be approved." in text(response)
    assert state(world) == before


# --- What-if preview page ---------------------------------------------------------------------------------


def preview(client, version, **params):
    return client.get(version_url(version, "scorecard_editor_preview"), params)


def test_the_preview_page_shows_the_distribution_and_the_movers_with_links(world, draft):
    period = world.a.extra["scorecards"].periods[-1]
    with tenant_scope(world.a.tenant):
        item_update(item=item_of(world, draft, "pipeline_created"), by=world.a.users["admin"], weight="30")
        item_update(item=item_of(world, draft, "customer_satisfaction"), by=world.a.users["admin"], weight="40")
    response = preview(as_role(world.a, "admin"), draft, period=period)
    html = body(response)
    bars = dict(
        re.findall(r'class="bar bar-(before|after)" data-side="\w+" data-label="Excellent" data-value="(\d+)"', html)
    )
    assert bars == {"before": "1", "after": "1"}
    first, second = world.a.partners
    ups = html.split('id="movers-up"')[1].split("</section>")[0]
    downs = html.split('id="movers-down"')[1].split("</section>")[0]
    assert f"{reverse('partner_scorecard', args=[second.pk])}?period={period}" in ups
    assert "+2.3" in ups  # 6.75 -> 9: +2.25 shown to a tenth
    assert f"{reverse('partner_scorecard', args=[first.pk])}?period={period}" in downs
    assert "\u22121.5" in downs
    assert "Propose version 2" in html


def test_the_preview_without_stored_scores_says_so(world, draft):
    response = preview(as_role(world.a, "admin"), draft, period="FY2024-Q1")
    assert response.status_code == 200
    assert "No scores to compare with in FY2024-Q1" in text(response)
    assert "FY2026-Q3" in body(response).split('id="preview-empty"')[1]  # a period that has some


@pytest.mark.parametrize("period", ["FY2099-Q1", "gibberish", "FY2026-M03", "x" * 500])
def test_the_preview_of_a_period_it_cannot_use_explains_why(world, draft, period):
    response = preview(as_role(world.a, "admin"), draft, period=period)
    assert response.status_code == 200
    assert "No closed period to preview" in text(response)


def test_the_preview_of_rules_the_engine_cannot_apply_names_the_problem(world, draft):
    with tenant_scope(world.a.tenant):
        item_update(item=item_of(world, draft, "customer_satisfaction"), by=world.a.users["admin"], target=None)
    response = preview(as_role(world.a, "admin"), draft, period=world.a.extra["scorecards"].periods[-1])
    assert "These rules cannot be applied yet" in text(response)
    assert "a linear rubric needs a floor and a target" in text(response)


def test_the_preview_page_writes_nothing(world, draft):
    from scorecards.models import RecomputeRun, Score

    def counts():
        return in_a(world, lambda: (Score.objects.count(), RecomputeRun.objects.count(), state(world)))

    before = counts()
    assert preview(as_role(world.a, "admin"), draft, period=world.a.extra["scorecards"].periods[-1]).status_code == 200
    assert counts() == before


# --- Queries do not grow with rows ---------------------------------------------------------------------------


def count_queries(client, url, **params) -> int:
    client.get(url, params)  # the first request of a session also loads it
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url, params).status_code == 200
    return len(queries)


def test_the_list_costs_the_same_queries_with_more_scorecards_and_versions(world, django_assert_max_num_queries):
    client = as_role(world.a, "admin")
    few = count_queries(client, reverse("scorecard_editor"))
    admin = world.a.users["admin"]
    with tenant_scope(world.a.tenant):
        for n in range(4):
            scorecard = scorecard_create(name=f"Extra {n}", by=admin)
            for _ in range(3):
                draft = version_create_draft(
                    scorecard=scorecard, by=admin, copy_latest=False, partner_types=["reseller"]
                )
                item_add(version=draft, by=admin, metric=Metric.objects.get(key="revenue_won"), weight="100")
    many = count_queries(client, reverse("scorecard_editor"))
    assert few == many
    with django_assert_max_num_queries(many):
        client.get(reverse("scorecard_editor"))
    assert body(client.get(reverse("scorecard_editor"))).count('<tr id="version-') == 13


def test_a_version_page_costs_the_same_queries_with_more_items(world, draft):
    client = as_role(world.a, "admin")
    few = count_queries(client, version_url(draft))
    admin = world.a.users["admin"]
    with tenant_scope(world.a.tenant):
        for key in ("revenue_won", "win_rate", "deals_won", "renewal_rate", "qbr_attendance", "mdf_utilization"):
            item_add(version=draft, by=admin, metric=Metric.objects.get(key=key), weight="1", floor="0", target="1")
    many = count_queries(client, version_url(draft))
    assert few == many


def test_the_preview_page_costs_the_same_queries_with_more_partners(world, draft):
    from scorecards.models import MetricObservation, ObservationSource
    from scorecards.services.recompute import recompute_period

    client = as_role(world.a, "admin")
    scorecards = world.a.extra["scorecards"]
    period = scorecards.periods[-1]
    with tenant_scope(world.a.tenant):
        item_update(item=item_of(world, draft, "pipeline_created"), by=world.a.users["admin"], weight="20")
    few = count_queries(client, version_url(draft, "scorecard_editor_preview"), period=period)
    with tenant_scope(world.a.tenant):
        for n in range(20):
            partner = PartnerFactory(tenant=world.a.tenant)
            MetricObservation.objects.create(
                partner=partner,
                metric=scorecards.metrics["pipeline_created"],
                period=period,
                value=1000 * n,
                source=ObservationSource.MANUAL,
            )
        recompute_period(version=scorecards.version, period=period)
    many = count_queries(client, version_url(draft, "scorecard_editor_preview"), period=period)
    assert few == many
    assert "Biggest gains" in body(client.get(version_url(draft, "scorecard_editor_preview"), {"period": period}))


def typed_totals(html: str) -> dict[str, float]:
    return {key: float(total) for key, total in re.findall(r'data-segment="(\w+)" data-total="([\d.]+)"', html)}


def test_the_weights_are_summed_as_an_item_is_typed_without_saving_it(world, draft):
    client = as_role(world.a, "admin")
    url = version_url(draft, "scorecard_editor_pending_weights")
    before = state(world)

    adding = body(client.post(url, {"weight": "15", "scope": "plug_in", "applies_to": ["msp"]}, HTTP_HX_REQUEST="true"))
    assert typed_totals(adding) == {"reseller": 100, "msp": 115}
    assert "15 over" in adding

    pipeline = item_of(world, draft, "pipeline_created")
    editing = body(
        client.post(url, {"weight": "25", "scope": "core", "item": str(pipeline.pk)}, HTTP_HX_REQUEST="true")
    )
    assert typed_totals(editing) == {"reseller": 85, "msp": 85}

    for typed in ("lots", "1e999", "NaN", "-5", ""):
        garbage = body(client.post(url, {"weight": typed, "scope": "core", "item": "x"}, HTTP_HX_REQUEST="true"))
        assert typed_totals(garbage) == {"reseller": 100, "msp": 100}, typed
    assert state(world) == before


def test_the_item_form_asks_for_the_typed_totals(world, draft):
    html = body(as_role(world.a, "admin").get(version_url(draft)))
    form = html.split('id="add-item"')[1].split("</form>")[0]
    assert f'hx-post="{version_url(draft, "scorecard_editor_pending_weights")}"' in form


def test_the_typed_totals_are_for_administrators_of_the_versions_tenant(world, draft, foreign_draft):
    data = {"weight": "10", "scope": "core"}
    for role in READERS + PARTNER:
        assert (
            as_role(world.a, role).post(version_url(draft, "scorecard_editor_pending_weights"), data).status_code == 403
        )
    foreign = as_role(world.a, "admin").post(version_url(foreign_draft, "scorecard_editor_pending_weights"), data)
    assert foreign.status_code == 404


def test_the_preview_defaults_to_the_last_closed_period(world, draft):
    from scorecards.whatif import latest_closed_period

    expected = in_a(world, lambda: latest_closed_period(draft).key)  # relative to today
    response = preview(as_role(world.a, "admin"), draft)
    assert response.status_code == 200
    assert response.context["preview"].period == expected
    assert expected in text(response)


def test_anonymous_visitors_are_sent_to_sign_in(world, draft):
    for url in (reverse("scorecard_editor"), version_url(draft), version_url(draft, "scorecard_editor_preview")):
        response = Client().get(url)
        assert response.status_code == 302 and "login" in response["Location"], url
    response = Client().post(version_url(draft, "scorecard_editor_item_add"), item_post(world))
    assert response.status_code == 302 and "login" in response["Location"]
