"""The partner directory and detail pages: filters, sorting, paging, htmx, access and isolation."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from partnerhub.partners.models import Partner, PartnerType
from partnerhub.partners.services import partner_update
from partnerhub.tenancy.context import tenant_scope
from tests.factories import MembershipFactory, PartnerFactory, UserFactory

LIST = reverse("partner_list")


def names(response) -> list[str]:
    return [partner.name for partner in response.context["partners"]]


def add_partners(tenant, count: int, **fields) -> list[Partner]:
    with tenant_scope(tenant):
        return [PartnerFactory(tenant=tenant, **fields) for _ in range(count)]


def partner_type(tenant, key: str) -> PartnerType:
    with tenant_scope(tenant):
        return PartnerType.objects.get(key=key)


@pytest.fixture
def manager_client(client, world):
    client.force_login(world.a.users["partner_manager"])
    return client


# --- Listing, search and filters ------------------------------------------------------------------


def test_directory_lists_the_active_tenants_partners_only(manager_client, world):
    response = manager_client.get(LIST)

    assert response.status_code == 200
    assert names(response) == ["Acme Partner 1", "Acme Partner 2"]
    assert b"Globex Partner" not in response.content


def test_search_finds_partners_by_part_of_the_name_and_by_exact_crm_id(manager_client, world):
    with tenant_scope(world.a.tenant):
        PartnerFactory(tenant=world.a.tenant, name="Alpine Systems", hubspot_company_id="18340021")
        PartnerFactory(tenant=world.a.tenant, name="Blue Harbor", salesforce_account_id="0015g00000AbCdEAAZ")

    assert names(manager_client.get(LIST, {"q": "pine"})) == ["Alpine Systems"]
    assert names(manager_client.get(LIST, {"q": "18340021"})) == ["Alpine Systems"]
    assert names(manager_client.get(LIST, {"q": "0015g00000AbCdEAAZ"})) == ["Blue Harbor"]
    assert names(manager_client.get(LIST, {"q": "  "})) == [
        "Acme Partner 1",
        "Acme Partner 2",
        "Alpine Systems",
        "Blue Harbor",
    ]


def test_filters_narrow_by_type_stage_status_region_and_manager(manager_client, world):
    tenant, manager = world.a.tenant, world.a.users["partner_manager"]
    with tenant_scope(tenant):
        PartnerFactory(
            tenant=tenant,
            name="Match",
            partner_type=partner_type(tenant, "msp"),
            lifecycle_stage="mature",
            status="suspended",
            region="APAC — ANZ",
            manager=manager,
        )
        PartnerFactory(tenant=tenant, name="Wrong stage", partner_type=partner_type(tenant, "msp"), region="APAC — ANZ")

    assert names(manager_client.get(LIST, {"type": "msp"})) == ["Match", "Wrong stage"]
    assert names(manager_client.get(LIST, {"type": "msp", "stage": "mature"})) == ["Match"]
    assert names(manager_client.get(LIST, {"status": "suspended"})) == ["Match"]
    assert names(manager_client.get(LIST, {"region": "APAC — ANZ", "stage": "growing"})) == ["Wrong stage"]
    assert names(manager_client.get(LIST, {"manager": manager.pk})) == ["Match"]


def test_the_manager_filter_finds_partners_nobody_manages(manager_client, world):
    add_partners(world.a.tenant, 1, name="Managed", manager=world.a.users["admin"])

    response = manager_client.get(LIST, {"manager": "none"})

    assert names(response) == ["Acme Partner 1", "Acme Partner 2"]


def test_filter_values_that_do_not_parse_are_ignored_and_named_on_the_page(manager_client, world):
    response = manager_client.get(
        LIST, {"type": "no-such-type", "manager": "abc", "sort": "secret_column", "q": "Acme"}
    )

    assert response.status_code == 200
    assert names(response) == ["Acme Partner 1", "Acme Partner 2"]
    assert set(response.context["ignored_filters"]) == {"Type", "Manager", "Sort"}
    assert b"not understood" in response.content


def test_another_tenants_type_or_manager_in_the_address_filters_nothing_in(manager_client, world):
    foreign_manager = world.b.users["partner_manager"]

    response = manager_client.get(LIST, {"manager": foreign_manager.pk})

    assert names(response) == ["Acme Partner 1", "Acme Partner 2"]
    assert response.context["ignored_filters"] == ["Manager"]
    assert foreign_manager.email.encode() not in response.content


# --- Sorting and paging ---------------------------------------------------------------------------


def test_sorting_by_size_puts_the_biggest_first_and_unknown_sizes_last(manager_client, world):
    tenant = world.a.tenant
    with tenant_scope(tenant):
        Partner.objects.filter(name="Acme Partner 1").update(size=None)
        Partner.objects.filter(name="Acme Partner 2").update(size=5)
        PartnerFactory(tenant=tenant, name="Big", size=500)

    assert names(manager_client.get(LIST, {"sort": "-size"})) == ["Big", "Acme Partner 2", "Acme Partner 1"]
    assert names(manager_client.get(LIST, {"sort": "size"})) == ["Acme Partner 2", "Big", "Acme Partner 1"]


@pytest.mark.parametrize(
    ("sort", "field"),
    [("stage", "lifecycle_stage"), ("region", "region"), ("joined", "joined_on"), ("updated", "updated_at")],
)
def test_every_sortable_column_sorts_both_ways(manager_client, world, sort, field):
    tenant = world.a.tenant
    start = datetime.date(2020, 1, 1)
    with tenant_scope(tenant):
        for number, (stage, region) in enumerate([("mature", "LATAM"), ("at_risk", "EMEA"), ("onboarding", "APAC")]):
            PartnerFactory(
                tenant=tenant,
                name=f"Sorted {number}",
                lifecycle_stage=stage,
                region=region,
                joined_on=start + datetime.timedelta(days=number),
            )

    ascending = manager_client.get(LIST, {"sort": sort}).context["partners"]
    descending = manager_client.get(LIST, {"sort": f"-{sort}"}).context["partners"]

    up = [getattr(partner, field) for partner in ascending if partner.name.startswith("Sorted")]
    down = [getattr(partner, field) for partner in descending if partner.name.startswith("Sorted")]
    assert up == sorted(up)
    assert down == sorted(up, reverse=True)


def test_column_headers_toggle_the_sort_direction(manager_client, world):
    headers = manager_client.get(LIST).context["sort_headers"]
    assert (headers["name"].direction, headers["name"].next_sort) == ("asc", "-name")
    assert (headers["size"].direction, headers["size"].next_sort) == ("", "-size")

    headers = manager_client.get(LIST, {"sort": "-size"}).context["sort_headers"]
    assert (headers["size"].direction, headers["size"].next_sort) == ("desc", "size")
    assert headers["name"].direction == ""


def test_sort_links_keep_the_filters_and_go_back_to_the_first_page(manager_client, world):
    add_partners(world.a.tenant, 55)

    response = manager_client.get(LIST, {"stage": "growing", "page": 2})

    assert b'href="?stage=growing&amp;sort=-size"' in response.content


def test_directory_shows_fifty_partners_a_page_with_a_stable_order(manager_client, world):
    add_partners(world.a.tenant, 60)

    first = manager_client.get(LIST)
    second = manager_client.get(LIST, {"page": 2})

    assert len(first.context["partners"]) == 50
    assert len(second.context["partners"]) == 12
    assert first.context["page_obj"].paginator.count == 62
    assert not set(names(first)) & set(names(second))
    assert b"Page 1 of 2" in first.content


@pytest.mark.parametrize("page", ["0", "-3", "999", "abc", "1e9999", "2.5"])
def test_odd_page_numbers_show_a_page_instead_of_an_error(manager_client, world, page):
    response = manager_client.get(LIST, {"page": page})

    assert response.status_code == 200
    assert len(response.context["partners"]) == 2


def test_the_result_count_says_how_many_partners_match(manager_client, world):
    add_partners(world.a.tenant, 3, lifecycle_stage="mature")

    response = manager_client.get(LIST, {"stage": "mature"})

    assert b"<strong>3</strong> partners match these filters" in response.content


def test_query_count_does_not_grow_with_the_number_of_partners(manager_client, world):
    tenant = world.a.tenant
    manager = world.a.users["partner_manager"]
    types = ["reseller", "msp", "referral"]

    def queries_for_listing() -> int:
        with CaptureQueriesContext(connection) as captured:
            response = manager_client.get(LIST, {"sort": "-updated"})
        assert response.status_code == 200
        return len(captured)

    with tenant_scope(tenant):
        PartnerFactory(tenant=tenant, manager=manager, partner_type=partner_type(tenant, "msp"))
    manager_client.get(LIST)  # the first request of a session also records the active workspace
    few = queries_for_listing()
    with tenant_scope(tenant):
        for number in range(37):
            PartnerFactory(tenant=tenant, manager=manager, partner_type=partner_type(tenant, types[number % 3]))
    many = queries_for_listing()

    assert manager_client.get(LIST).context["page_obj"].paginator.count == 40
    assert many == few


# --- htmx -----------------------------------------------------------------------------------------


def test_htmx_requests_get_only_the_results_fragment(manager_client, world):
    response = manager_client.get(LIST, {"stage": "growing"}, headers={"HX-Request": "true"})

    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<section id="results"')
    assert "<html" not in body
    assert 'id="partner-filters"' not in body
    assert "Acme Partner 1" in body
    assert "HX-Request" in response.headers["Vary"]


def test_the_full_page_has_a_form_that_works_without_javascript(manager_client, world):
    response = manager_client.get(LIST)

    body = response.content.decode()
    assert '<form id="partner-filters"' in body
    assert 'method="get"' in body and f'action="{LIST}"' in body
    assert 'hx-get="/partners/"' in body and 'hx-push-url="true"' in body
    assert "<noscript><button" in body
    assert "HX-Request" in response.headers["Vary"]


def test_htmx_history_restore_gets_the_full_page(manager_client, world):
    response = manager_client.get(LIST, headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})

    assert "<html" in response.content.decode()


# --- Empty states ---------------------------------------------------------------------------------


def test_an_empty_directory_invites_editors_to_add_the_first_partner(client, db):
    from tests.factories import TenantFactory

    tenant = TenantFactory()
    admin = MembershipFactory(tenant=tenant, role="admin").user
    executive = MembershipFactory(tenant=tenant, role="executive").user

    client.force_login(admin)
    body = client.get(LIST).content.decode()
    assert "No partners yet — " in body and "add the first one" in body
    assert reverse("partner_create") in body

    client.force_login(executive)
    body = client.get(LIST).content.decode()
    assert "No partners yet" in body
    assert "add the first one" not in body
    assert reverse("partner_create") not in body


def test_filters_that_match_nothing_offer_to_clear_them(manager_client, world):
    body = manager_client.get(LIST, {"q": "no such partner"}).content.decode()

    assert "No partners match these filters — " in body
    assert "clear filters" in body
    assert "add the first one" not in body


# --- Detail page ----------------------------------------------------------------------------------


def test_detail_shows_the_partners_facts_and_placeholders_for_later_features(manager_client, world):
    tenant = world.a.tenant
    partner = world.a.partners[0]
    with tenant_scope(tenant):
        Partner.objects.filter(pk=partner.pk).update(
            product_lines=["Analytics", "Cloud"],
            hubspot_company_id="18340021",
            salesforce_account_id="0015g00000AbCdEAAZ",
            external_ids={"erp": "P-0042"},
            website="https://alpine.example",
            joined_on=datetime.date(2024, 3, 1),
            manager=world.a.users["partner_manager"],
        )

    response = manager_client.get(reverse("partner_detail", args=[partner.pk]))

    body = response.content.decode()
    assert response.status_code == 200
    for text in [
        "Acme Partner 1",
        "Reseller",
        "Growing",
        "Active",
        "Analytics",
        "18340021",
        "0015g00000AbCdEAAZ",
        "P-0042",
        "https://alpine.example",
        "March 1, 2024",
        world.a.tenant.size_measure_label,
        world.a.users["partner_manager"].get_full_name(),
    ]:
        assert text in body, text
    for section in ["Scorecard", "Reviews", "Action items", "Data &amp; corrections", "Recognition"]:
        assert section in body, section
    assert reverse("partner_scorecard", args=[world.a.partners[0].pk]) in body


def test_detail_lists_recent_changes_by_name_and_email_rather_than_ids(manager_client, world):
    partner = world.a.partners[0]
    with tenant_scope(world.a.tenant):
        partner_update(
            partner=partner,
            by=world.a.users["admin"],
            manager=world.a.users["partner_manager"],
            lifecycle_stage="at_risk",
        )

    response = manager_client.get(reverse("partner_detail", args=[partner.pk]))

    (change,) = response.context["changes"]
    assert change["event"].actor_label == world.a.users["admin"].email
    fields = {row["label"]: (row["old"], row["new"]) for row in change["fields"]}
    # The event names the manager as they were then, so it still reads right after they leave.
    assert fields["Manager"] == ("—", world.a.users["partner_manager"].email)
    assert fields["Lifecycle stage"] == ("Growing", "At risk")


def test_recent_changes_show_the_latest_ten(manager_client, world):
    partner = world.a.partners[0]
    with tenant_scope(world.a.tenant):
        for size in range(1, 13):
            partner_update(partner=partner, by=world.a.users["admin"], size=size)

    changes = manager_client.get(reverse("partner_detail", args=[partner.pk])).context["changes"]

    assert len(changes) == 10
    assert changes[0]["fields"][0]["new"] == "12"


def test_the_edit_button_shows_only_to_people_who_may_edit(client, world):
    partner = world.a.partners[0]
    edit_url = reverse("partner_edit", args=[partner.pk]).encode()

    client.force_login(world.a.users["partner_manager"])
    assert edit_url in client.get(reverse("partner_detail", args=[partner.pk])).content
    client.force_login(world.a.users["executive"])
    assert edit_url not in client.get(reverse("partner_detail", args=[partner.pk])).content


# --- Who may open what ----------------------------------------------------------------------------

ALLOWED, DENIED, TO_DIRECTORY = 200, 403, 302
ACCESS = {
    # role:             list     detail   create   edit     portal
    "admin": (ALLOWED, ALLOWED, ALLOWED, ALLOWED, TO_DIRECTORY),
    "partner_manager": (ALLOWED, ALLOWED, ALLOWED, ALLOWED, TO_DIRECTORY),
    "executive": (ALLOWED, ALLOWED, DENIED, DENIED, TO_DIRECTORY),
    "partner_admin": (DENIED, DENIED, DENIED, DENIED, ALLOWED),
    "partner_member": (DENIED, DENIED, DENIED, DENIED, ALLOWED),
}


@pytest.mark.parametrize("role", list(ACCESS))
def test_every_page_answers_each_role_as_the_access_table_says(client, world, role):
    partner = world.a.partners[0]
    urls = [
        LIST,
        reverse("partner_detail", args=[partner.pk]),
        reverse("partner_create"),
        reverse("partner_edit", args=[partner.pk]),
        reverse("portal_home"),
    ]
    client.force_login(world.a.users[role])

    statuses = tuple(client.get(url).status_code for url in urls)

    assert statuses == ACCESS[role]


def test_signed_out_visitors_are_sent_to_sign_in(client, world):
    for url in [LIST, reverse("partner_detail", args=[world.a.partners[0].pk]), reverse("partner_create")]:
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("account_login"))


def test_people_without_a_workspace_are_told_why(client, world):
    client.force_login(UserFactory())

    response = client.get(LIST)

    assert response.status_code == 403
    assert b"not part of a workspace" in response.content


@pytest.mark.parametrize("role", ["admin", "partner_manager", "executive"])
def test_another_tenants_partner_is_not_found_for_internal_people(client, world, role):
    foreign = world.b.partners[0]
    client.force_login(world.a.users[role])

    assert client.get(reverse("partner_detail", args=[foreign.pk])).status_code == 404
    edit = client.get(reverse("partner_edit", args=[foreign.pk]))
    assert edit.status_code == 404
    assert foreign.name.encode() not in edit.content


def test_another_tenants_partner_cannot_be_changed_by_posting_to_it(client, world):
    foreign = world.b.partners[0]
    client.force_login(world.a.users["admin"])

    response = client.post(reverse("partner_edit", args=[foreign.pk]), {"name": "Taken over"})

    assert response.status_code == 404
    with tenant_scope(world.b.tenant):
        assert Partner.objects.get(pk=foreign.pk).name == foreign.name


@pytest.mark.parametrize("role", ["partner_admin", "partner_member"])
def test_partner_users_learn_nothing_about_other_partners_from_their_ids(client, world, role):
    client.force_login(world.a.users[role])
    other, foreign = world.a.partners[1], world.b.partners[0]

    for partner in (other, foreign):
        for url in (reverse("partner_detail", args=[partner.pk]), reverse("partner_edit", args=[partner.pk])):
            response = client.get(url)
            assert response.status_code == 403
            assert partner.name.encode() not in response.content
    # A missing id answers exactly like an existing one.
    assert client.get(reverse("partner_detail", args=[999_999])).status_code == 403


def test_listing_and_detail_accept_only_reads(manager_client, world):
    assert manager_client.post(LIST).status_code == 405
    assert manager_client.post(reverse("partner_detail", args=[world.a.partners[0].pk])).status_code == 405


@pytest.mark.parametrize(
    ("value", "shown"),
    [("12.00", "12"), ("1250.50", "1,250.5"), ("0.05", "0.05"), ("1000000.00", "1,000,000"), ("0.00", "0"), (None, "")],
)
def test_sizes_show_without_trailing_zeros_and_with_thousands_grouped(value, shown):
    from decimal import Decimal

    from partnerhub.partners.templatetags.partner_display import plain_number

    assert plain_number(None if value is None else Decimal(value)) == shown


def test_directory_dates_read_month_day_year():
    from partnerhub.partners.templatetags.partner_display import short_date

    assert short_date(datetime.date(2024, 3, 1)) == "Mar 1, 2024"
    assert short_date(None) == ""


@pytest.mark.parametrize("name", ["partner_detail", "partner_edit"])
def test_an_id_beyond_any_database_integer_is_simply_not_found(manager_client, world, name):
    response = manager_client.get(reverse(name, args=[10**30]))

    assert response.status_code == 404


def test_the_page_and_the_filter_agree_on_the_sort_keys():
    from partnerhub.partners.filters import SORT_FIELDS
    from partnerhub.partners.views import SORTABLE_COLUMNS

    assert set(SORTABLE_COLUMNS) == set(SORT_FIELDS)
