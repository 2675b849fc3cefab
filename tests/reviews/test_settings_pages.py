"""The review settings page: cadence rules with the partners each decides, and the collaboration prompts."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from partnerhub.partners.models import PartnerStatus, PartnerType
from partnerhub.tenancy.context import tenant_scope
from reviews.models import CadenceRule, CollaborationPrompt
from reviews.services.cadences import cadence_rule_create
from tests.clients import session
from tests.reviews.conftest import new_partner

SETTINGS = reverse("review_settings")
ADD_RULE = reverse("review_settings_rule_add")
ADD_PROMPT = reverse("review_settings_prompt_add")
HTMX = {"HTTP_HX_REQUEST": "true"}


def text(response) -> str:
    return response.content.decode()


def rule_url(name: str, rule) -> str:
    return reverse(f"review_settings_rule_{name}", args=[rule.pk])


def prompt_url(name: str, prompt) -> str:
    return reverse(f"review_settings_prompt_{name}", args=[prompt.pk])


def row_of(body: str, row_id: str) -> str:
    match = re.search(rf'<tr id="{row_id}"[^>]*>(.*?)</tr>', body, re.S)
    assert match, row_id
    return match.group(1)


def decided(body: str, rule) -> int:
    cells = re.findall(r'<td class="num">([^<]*)</td>', row_of(body, f"rule-{rule.pk}"))
    return int(cells[1])


@pytest.fixture
def everyone(a):
    """The world's rule giving every partner a quarterly business review."""
    return CadenceRule.objects.get()


@pytest.fixture
def reseller(a):
    return PartnerType.objects.get(key="reseller")


# --- Reading the page -----------------------------------------------------------------------------------------


def test_rules_are_listed_in_the_order_they_apply_with_the_active_partners_each_decides_today(a, everyone, reseller):
    onboarding = new_partner(a, "Fresh Reseller", lifecycle_stage="onboarding")
    new_partner(a, "Gone Reseller", lifecycle_stage="onboarding", status=PartnerStatus.TERMINATED)
    specific = cadence_rule_create(
        kind="check_in", partner_type=reseller, lifecycle_stage="onboarding", position=9, by=a.users["admin"]
    )
    by_type = cadence_rule_create(kind="deep_dive", partner_type=reseller, position=1, by=a.users["admin"])

    response = session(a, "admin").get(SETTINGS)

    assert response.status_code == 200
    body = text(response)
    # Most specific first, whatever the positions: type and stage, then type alone, then everyone.
    assert body.index(f'id="rule-{specific.pk}"') < body.index(f'id="rule-{by_type.pk}"')
    assert body.index(f'id="rule-{by_type.pk}"') < body.index(f'id="rule-{everyone.pk}"')
    assert "Reseller, onboarding" in row_of(body, f"rule-{specific.pk}")
    assert "Monthly check-in" in row_of(body, f"rule-{specific.pk}")
    # The onboarding reseller falls to the specific rule; the world's two growing resellers to the type's
    # rule; the terminated partner counts nowhere, and the rule for everyone decides no one today.
    assert (decided(body, specific), decided(body, by_type), decided(body, everyone)) == (1, 2, 0)
    assert onboarding.name not in body
    assert "Not reviewed" not in body


def test_partners_no_rule_covers_are_counted_as_not_reviewed_with_a_link_to_the_partner_list(a, everyone, reseller):
    everyone.delete()
    new_partner(a, "Fresh Reseller", lifecycle_stage="onboarding")
    cadence_rule_create(kind="qbr", lifecycle_stage="onboarding", by=a.users["admin"])

    body = text(session(a, "partner_manager").get(SETTINGS))

    assert "Not reviewed" in body
    assert "Reseller, growing" in body
    assert f"{reverse('partner_list')}?status=active&amp;stage=growing&amp;type=reseller" in body
    assert "2 of 3 active partners are not reviewed" in body


def test_the_page_answers_in_a_fixed_number_of_queries_however_many_partners_and_rules(a, reseller):
    client = session(a, "admin")
    client.get(SETTINGS)  # warm the session and the caches
    with CaptureQueriesContext(connection) as small:
        assert client.get(SETTINGS).status_code == 200

    admin = a.users["admin"]
    for n in range(12):
        new_partner(a, f"Extra Partner {n}", lifecycle_stage=("onboarding", "mature", "at_risk")[n % 3])
    for stage in ("onboarding", "mature", "at_risk", "exiting"):
        cadence_rule_create(kind="check_in", partner_type=reseller, lifecycle_stage=stage, by=admin)
    cadence_rule_create(kind="deep_dive", partner_type=PartnerType.objects.get(key="msp"), by=admin)
    CollaborationPrompt.objects.create(key="extra", label="Extra", position=9)
    with CaptureQueriesContext(connection) as large:
        response = client.get(SETTINGS)

    assert response.status_code == 200 and "Extra Partner" not in text(response)
    assert len(large.captured_queries) == len(small.captured_queries), [q["sql"] for q in large.captured_queries]


def test_the_cycles_page_links_to_the_settings_for_administrators_only(a):
    link = f'href="{SETTINGS}"'
    assert link in text(session(a, "admin").get(reverse("review_cycles")))
    assert link not in text(session(a, "partner_manager").get(reverse("review_cycles")))


# --- Cadence rules through the page ---------------------------------------------------------------------------


def test_an_administrator_adds_edits_deactivates_and_deletes_a_rule_without_javascript(a, everyone, reseller):
    client = session(a, "admin")

    added = client.post(
        ADD_RULE,
        {
            "rule-partner_type": reseller.pk,
            "rule-lifecycle_stage": "growing",
            "rule-kind": "deep_dive",
            "rule-position": "3",
        },
    )
    assert added.status_code == 302 and added["Location"].startswith(SETTINGS)
    rule = CadenceRule.objects.exclude(pk=everyone.pk).get()
    assert (rule.partner_type, rule.lifecycle_stage, rule.kind, rule.position) == (reseller, "growing", "deep_dive", 3)
    assert "Reseller, growing get a biannual deep dive" in text(client.get(SETTINGS))

    form = client.get(rule_url("edit", rule))
    assert form.status_code == 200 and 'value="deep_dive" selected' in text(form)
    edited = client.post(
        rule_url("edit", rule),
        {"partner_type": reseller.pk, "lifecycle_stage": "", "kind": "check_in", "position": "0"},
    )
    assert edited.status_code == 302
    rule.refresh_from_db()
    assert (rule.lifecycle_stage, rule.kind, rule.position) == ("", "check_in", 0)

    assert client.post(rule_url("active", rule), {"active": "0"}).status_code == 302
    rule.refresh_from_db()
    assert rule.active is False
    body = text(client.get(SETTINGS))
    assert "Inactive" in row_of(body, f"rule-{rule.pk}") and decided(body, everyone) == 2
    assert client.post(rule_url("active", rule), {"active": "1"}).status_code == 302
    rule.refresh_from_db()
    assert rule.active is True

    confirm = client.get(rule_url("delete", rule))
    assert confirm.status_code == 200 and "Delete the rule for Reseller, any stage?" in text(confirm)
    assert CadenceRule.objects.filter(pk=rule.pk).exists()
    deleted = client.post(rule_url("delete", rule), follow=True)
    assert deleted.status_code == 200 and "The rule for Reseller, any stage was removed." in text(deleted)
    assert list(CadenceRule.objects.all()) == [everyone]


def test_with_htmx_a_rule_is_edited_inline_and_the_rules_come_back_alone(a, everyone, reseller):
    client = session(a, "admin")

    row = client.get(rule_url("edit", everyone), **HTMX)
    assert row.status_code == 200 and text(row).startswith(f'<tr id="rule-{everyone.pk}" class="editing">')

    refused = client.post(rule_url("edit", everyone), {"kind": "yearly", "position": "1"}, **HTMX)
    assert refused.status_code == 200 and "Choose the kind of review" in text(refused)
    assert 'class="editing"' in text(refused)
    everyone.refresh_from_db()
    assert everyone.kind == "qbr"

    saved = client.post(rule_url("edit", everyone), {"kind": "check_in", "position": "4"}, **HTMX)
    assert saved.status_code == 200 and saved["HX-Retarget"] == "#cadence-rules"
    assert text(saved).startswith('<section class="card" id="cadence-rules"') and "Monthly check-in" in text(saved)

    toggled = client.post(rule_url("active", everyone), {"active": "0"}, **HTMX)
    assert toggled.status_code == 200 and "no longer applies" in text(toggled)
    removed = client.post(rule_url("delete", everyone), **HTMX)
    assert removed.status_code == 200 and "was removed" in text(removed)
    assert "2 of 2 active partners are not reviewed" in text(removed)
    assert not CadenceRule.objects.exists()


def test_a_duplicate_rule_is_refused_with_the_reason_and_nothing_is_saved(a, everyone):
    response = session(a, "admin").post(
        ADD_RULE, {"rule-partner_type": "", "rule-lifecycle_stage": "", "rule-kind": "qbr", "rule-position": ""}
    )

    assert response.status_code == 400
    assert "A rule already gives every partner type, any stage a quarterly business review" in text(response)
    assert CadenceRule.objects.count() == 1


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("kind", "yearly", "Choose the kind of review: monthly check-in, quarterly business review or biannual"),
        ("lifecycle_stage", "teenage", "“teenage” is not a lifecycle stage"),
        ("position", "first", "Give the position as a whole number from 0 to 32767."),
        ("position", "-2", "Give the position as a whole number from 0 to 32767."),
        ("partner_type", "999999999999999999999", "Choose a partner type of this workspace, or none for every type."),
    ],
)
def test_a_bad_value_is_named_beside_its_field_and_nothing_is_saved(a, everyone, field, value, message):
    body = {"rule-partner_type": "", "rule-lifecycle_stage": "growing", "rule-kind": "check_in", f"rule-{field}": value}

    response = session(a, "admin").post(ADD_RULE, body)

    assert response.status_code == 400
    field_html = re.search(
        rf'<div class="field has-error">\s*<label for="id_rule-{field}".*?</div>', text(response), re.S
    )
    assert field_html and message in field_html.group(0).replace("&ldquo;", "“").replace("&rdquo;", "”")
    assert CadenceRule.objects.count() == 1


def test_every_bad_value_is_named_at_once(a, everyone):
    body = {"rule-partner_type": "reseller", "rule-lifecycle_stage": "teenage", "rule-kind": "", "rule-position": "1st"}

    response = session(a, "admin").post(ADD_RULE, body)

    assert response.status_code == 400
    assert text(response).count('<div class="field has-error">') == 4
    assert CadenceRule.objects.count() == 1


def test_another_tenants_partner_type_is_refused_like_an_unknown_one(a, world, everyone):
    with tenant_scope(world.b.tenant):
        foreign_type = PartnerType.objects.get(key="msp")

    response = session(a, "admin").post(ADD_RULE, {"rule-partner_type": foreign_type.pk, "rule-kind": "qbr"})
    edited = session(a, "admin").post(rule_url("edit", everyone), {"partner_type": foreign_type.pk, "kind": "qbr"})

    assert response.status_code == 400 and edited.status_code == 400
    assert "Choose a partner type of this workspace, or none for every type." in text(response)
    assert "Choose a partner type of this workspace, or none for every type." in text(edited)
    assert CadenceRule.objects.count() == 1
    assert CadenceRule.objects.get().partner_type is None


# --- Collaboration prompts through the page -------------------------------------------------------------------


def test_the_prompts_are_listed_in_order_with_the_built_in_ones_marked(a):
    body = text(session(a, "executive").get(SETTINGS))

    labels = ["Responsiveness", "Communication", "Customer alignment", "Joint planning"]
    assert [body.index(f"<strong>{label}</strong>") for label in labels] == sorted(
        body.index(f"<strong>{label}</strong>") for label in labels
    )
    assert body.count('<span class="badge">Built-in</span>') == 4


def test_an_administrator_adds_rewords_deactivates_and_reactivates_a_prompt(a):
    client = session(a, "admin")

    added = client.post(
        ADD_PROMPT,
        {
            "prompt-label": " Executive sponsorship ",
            "prompt-help_text": "Do their leaders back it?",
            "prompt-position": "",
        },
    )
    assert added.status_code == 302
    prompt = CollaborationPrompt.objects.get(key="executive_sponsorship")
    assert (prompt.label, prompt.built_in, prompt.position) == ("Executive sponsorship", False, 4)
    row = row_of(text(client.get(SETTINGS)), f"prompt-{prompt.pk}")
    assert "Executive sponsorship" in row and "Built-in" not in row

    assert client.get(prompt_url("edit", prompt)).status_code == 200
    reworded = client.post(prompt_url("edit", prompt), {"label": "Executive backing", "help_text": "", "position": "0"})
    assert reworded.status_code == 302
    prompt.refresh_from_db()
    assert (prompt.key, prompt.label, prompt.help_text, prompt.position) == (
        "executive_sponsorship",
        "Executive backing",
        "",
        0,
    )

    assert client.post(prompt_url("active", prompt), {"active": "0"}).status_code == 302
    prompt.refresh_from_db()
    assert prompt.active is False
    row = row_of(text(client.get(SETTINGS)), f"prompt-{prompt.pk}")
    assert "Inactive" in row and "keeps its past ratings, not asked in new reviews" in row

    again = client.post(prompt_url("active", prompt), {"active": "1"}, **HTMX)
    assert again.status_code == 200 and again["HX-Retarget"] == "#collaboration-prompts"
    prompt.refresh_from_db()
    assert prompt.active is True


def test_a_prompt_without_a_question_or_with_a_taken_key_is_refused_beside_its_field(a):
    client = session(a, "admin")

    blank = client.post(ADD_PROMPT, {"prompt-label": "   ", "prompt-position": ""})
    taken = client.post(ADD_PROMPT, {"prompt-label": "Communication", "prompt-position": ""})
    inline = client.post(
        prompt_url("edit", CollaborationPrompt.objects.get(key="communication")), {"label": "", "position": "1"}, **HTMX
    )

    assert blank.status_code == 400 and "Write the question." in text(blank)
    assert taken.status_code == 400 and "already exists" in text(taken)
    assert inline.status_code == 200 and "Write the question." in text(inline)
    assert CollaborationPrompt.objects.count() == 4
    assert CollaborationPrompt.objects.get(key="communication").label == "Communication"


# --- Who may change what ----------------------------------------------------------------------------------------


def _every_change(everyone, prompt, reseller) -> list[tuple[str, dict]]:
    return [
        (ADD_RULE, {"rule-partner_type": reseller.pk, "rule-kind": "deep_dive"}),
        (rule_url("edit", everyone), {"kind": "check_in"}),
        (rule_url("active", everyone), {"active": "0"}),
        (rule_url("delete", everyone), {}),
        (ADD_PROMPT, {"prompt-label": "Sneaky"}),
        (prompt_url("edit", prompt), {"label": "Sneaky"}),
        (prompt_url("active", prompt), {"active": "0"}),
    ]


@pytest.mark.parametrize("role", ["partner_manager", "executive"])
def test_other_internal_roles_read_the_page_but_change_nothing(a, everyone, reseller, role):
    prompt = CollaborationPrompt.objects.get(key="communication")
    client = session(a, role)

    page = client.get(SETTINGS)
    assert page.status_code == 200
    body = text(page)
    assert "Only administrators change them." in body and "Quarterly business review" in body
    assert "Add a cadence rule" not in body and rule_url("edit", everyone) not in body
    assert client.get(rule_url("edit", everyone)).status_code == 403
    assert client.get(rule_url("delete", everyone)).status_code == 403
    for url, data in _every_change(everyone, prompt, reseller):
        assert client.post(url, data).status_code == 403, url
        assert client.post(url, data, **HTMX).status_code == 403, url

    assert list(CadenceRule.objects.values_list("kind", "active")) == [("qbr", True)]
    prompt.refresh_from_db()
    assert (prompt.label, prompt.active) == ("Communication", True)
    assert not CollaborationPrompt.objects.filter(label="Sneaky").exists()


@pytest.mark.parametrize("role", ["partner_admin", "partner_member"])
def test_to_partner_users_the_settings_do_not_exist(a, everyone, reseller, role):
    prompt = CollaborationPrompt.objects.get(key="communication")
    client = session(a, role)

    assert client.get(SETTINGS).status_code == 404
    assert client.get(rule_url("edit", everyone)).status_code == 404
    for url, data in _every_change(everyone, prompt, reseller):
        assert client.post(url, data).status_code == 404, url

    assert list(CadenceRule.objects.values_list("kind", "active")) == [("qbr", True)]
    assert CollaborationPrompt.objects.get(key="communication").active


def test_another_tenants_rule_and_prompt_are_not_found(a, world):
    with tenant_scope(world.b.tenant):
        rule = world.b.extra["cadence_rule"]
        prompt = CollaborationPrompt.objects.get(key="communication")
    client = session(a, "admin")

    for url in (rule_url("edit", rule), rule_url("delete", rule), prompt_url("edit", prompt)):
        assert client.get(url).status_code == 404, url
    for url, data in [
        (rule_url("edit", rule), {"kind": "check_in"}),
        (rule_url("active", rule), {"active": "0"}),
        (rule_url("delete", rule), {}),
        (prompt_url("edit", prompt), {"label": "Taken over"}),
        (prompt_url("active", prompt), {"active": "0"}),
    ]:
        assert client.post(url, data).status_code == 404, url
    assert client.get(reverse("review_settings_rule_edit", args=[2**63])).status_code == 404

    with tenant_scope(world.b.tenant):
        rule.refresh_from_db()
        prompt.refresh_from_db()
        assert (rule.kind, rule.active) == ("qbr", True)
        assert (prompt.label, prompt.active) == ("Communication", True)
