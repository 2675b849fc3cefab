"""Editing an action in the browser: the program's page with every field, the portal's with the working
notes; only what changed is saved, the services' refusals are shown by field, across partners and tenants."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.urls import reverse

from actions.models import ActionItem, ActionStatus, PlanStatus, Priority, RemediationPlan, RootCause
from partnerhub.tenancy.context import tenant_scope
from partnerhub.tenancy.models import AuditEvent
from scorecards.models import Metric
from tests.actions.conftest import days
from tests.actions.test_pages import (
    INTERNAL,
    PARTNER,
    make,
    make_overdue,
    metric,
    move,
    open_plan,
    reload,
    text,
)
from tests.clients import session


def edit_url(action: ActionItem) -> str:
    return reverse("action_edit", args=[action.pk])


def portal_edit_url(action: ActionItem) -> str:
    return reverse("portal_action_edit", args=[action.pk])


def prefilled(client, url: str, **changes) -> dict:
    """What the edit page's form sends as shown (every field as prefilled), with ``changes`` applied."""
    response = client.get(url)
    assert response.status_code == 200
    form = response.context["form"]
    data = {}
    for name in form.fields:
        value = form[name].value()
        if isinstance(value, datetime.date):
            value = value.isoformat()
        data[name] = "" if value is None else str(value)
    return data | {name: "" if value is None else str(value) for name, value in changes.items()}


def field_html(page: str, name: str) -> str:
    """The markup of one field's block on the page (its input, its errors, its help)."""
    start = page.rindex('<div class="field', 0, page.index(f'name="{name}"'))
    return page[start : page.index("</div>", page.index(f'name="{name}"'))]


def two_metrics(tw) -> list[Metric]:
    with tenant_scope(tw.tenant):
        return list(Metric.objects.filter(is_active=True).order_by("pk")[:2])


def events(tw, action: ActionItem) -> int:
    with tenant_scope(tw.tenant):
        return AuditEvent.objects.filter(verb="action.updated", target_id=str(action.pk)).count()


# --- The program's page --------------------------------------------------------------------------------------


def test_the_edit_page_is_prefilled_and_offers_owners_and_plans_of_the_actions_partner(world):
    tw = world.a
    target = metric(tw)
    own_plan = open_plan(tw, 0)
    other_plan = open_plan(tw, 1)
    action = make(
        tw,
        title="Certify two engineers",
        owner=tw.users["partner_admin"],
        priority=Priority.HIGH,
        plan=own_plan,
        targets=[(target, "12")],
        contingency="Next quarter.",
    )
    page = text(session(tw, "partner_manager").get(edit_url(action)))
    assert 'value="Certify two engineers"' in page and "Next quarter." in page
    assert f'value="{days(7).isoformat()}"' in page
    assert '<option value="high" selected>' in page
    owners = field_html(page, "owner")
    assert f'<option value="{tw.users["partner_admin"].pk}" selected>' in owners
    assert f'value="{tw.users["admin"].pk}"' in owners
    assert f'value="{tw.users["other_partner_admin"].pk}"' not in owners
    plans = field_html(page, "plan")
    assert f'<option value="{own_plan.pk}" selected>' in plans and f'value="{other_plan.pk}"' not in plans
    assert f'<option value="{target.pk}" selected>' in field_html(page, "target_metric_1")
    assert 'value="12"' in field_html(page, "target_value_1")
    assert 'name="partner"' not in page, "an action stays with its partner"


def test_the_currently_linked_plan_stays_offered_once_it_closes(world):
    tw = world.a
    plan = open_plan(tw, 0)
    action = make(tw, plan=plan)
    with tenant_scope(tw.tenant):
        RemediationPlan.objects.filter(pk=plan.pk).update(status=PlanStatus.CANCELLED)
    client = session(tw, "admin")
    assert f'<option value="{plan.pk}" selected>' in field_html(text(client.get(edit_url(action))), "plan")
    response = client.post(edit_url(action), prefilled(client, edit_url(action), title="Renamed"))
    assert response.status_code == 302
    assert reload(tw, action).plan_id == plan.pk and reload(tw, action).title == "Renamed"


def test_saving_changes_every_given_field_and_names_what_changed(world):
    tw = world.a
    first, second = two_metrics(tw)
    action = make(tw, targets=[(first, "5")])
    client = session(tw, "partner_manager")
    data = prefilled(
        client,
        edit_url(action),
        title="Run two joint webinars",
        owner=tw.users["partner_member"].pk,
        due_on=days(20).isoformat(),
        priority=Priority.CRITICAL,
        kind="mid_term",
        root_cause=RootCause.ENABLEMENT,
        description="Two sessions, one per region.",
        target_metric_1=second.pk,
        target_value_1="8",
    )
    response = client.post(edit_url(action), data, follow=True)
    assert response.redirect_chain == [(reverse("action_detail", args=[action.pk]), 302)]
    assert "Saved: description, due date, kind, owner, priority, root cause, targets, title." in text(response)
    with tenant_scope(tw.tenant):
        stored = ActionItem.objects.get(pk=action.pk)
        assert stored.title == "Run two joint webinars" and stored.owner == tw.users["partner_member"]
        assert stored.due_on == days(20) and stored.priority == Priority.CRITICAL and stored.kind == "mid_term"
        assert stored.root_cause == RootCause.ENABLEMENT and stored.description == "Two sessions, one per region."
        assert [(t.metric_id, t.target_value) for t in stored.targets.all()] == [(second.pk, Decimal(8))]
    assert events(tw, action) == 1


def test_saving_only_the_due_date_and_owner_says_so(world):
    tw = world.a
    action = make(tw)
    client = session(tw, "admin")
    data = prefilled(client, edit_url(action), due_on=days(9).isoformat(), owner=tw.users["executive"].pk)
    response = client.post(edit_url(action), data, follow=True)
    assert "Saved: due date, owner." in text(response)


def test_a_blank_title_is_refused_next_to_the_title(world):
    tw = world.a
    action = make(tw, title="Keep me")
    client = session(tw, "partner_manager")
    response = client.post(edit_url(action), prefilled(client, edit_url(action), title="  ", priority="high"))
    assert response.status_code == 400
    page = text(response)
    assert "Give the action a title." in field_html(page, "title") and "Nothing was saved" in page
    stored = reload(tw, action)
    assert stored.title == "Keep me" and stored.priority == Priority.MEDIUM, "nothing is half-written"


def test_moving_the_due_date_into_the_past_is_refused_next_to_the_due_date(world):
    tw = world.a
    action = make(tw)
    client = session(tw, "partner_manager")
    response = client.post(edit_url(action), prefilled(client, edit_url(action), due_on=days(-1).isoformat()))
    assert response.status_code == 400
    assert "has passed; an action is due today or later" in field_html(text(response), "due_on")
    assert reload(tw, action).due_on == days(7)


def test_an_unchanged_past_due_date_is_kept_while_other_fields_change(world):
    tw = world.a
    action = make_overdue(tw, due_days_ago=10)
    client = session(tw, "partner_manager")
    response = client.post(edit_url(action), prefilled(client, edit_url(action), title="Still late"), follow=True)
    assert "Saved: title." in text(response)
    stored = reload(tw, action)
    assert stored.due_on == days(-10) and stored.title == "Still late"


def test_an_owner_of_another_partner_is_refused_next_to_the_owner(world):
    tw = world.a
    action = make(tw, owner=tw.users["partner_admin"])
    client = session(tw, "admin")
    response = client.post(
        edit_url(action), prefilled(client, edit_url(action), owner=tw.users["other_partner_admin"].pk)
    )
    assert response.status_code == 400
    assert "Select a valid choice" in field_html(text(response), "owner")
    assert reload(tw, action).owner == tw.users["partner_admin"]


def test_a_metric_targeted_twice_is_refused_next_to_the_second_row(world):
    tw = world.a
    first, _ = two_metrics(tw)
    action = make(tw)
    client = session(tw, "admin")
    data = prefilled(
        client,
        edit_url(action),
        target_metric_1=first.pk,
        target_value_1="3",
        target_metric_2=first.pk,
        target_value_2="4",
    )
    response = client.post(edit_url(action), data)
    assert response.status_code == 400
    page = text(response)
    assert f"Target 2: {first.name} is already targeted" in field_html(page, "target_metric_2")
    with tenant_scope(tw.tenant):
        assert not ActionItem.objects.get(pk=action.pk).targets.exists()


def test_a_target_value_without_a_metric_is_refused(world):
    tw = world.a
    action = make(tw)
    client = session(tw, "admin")
    response = client.post(edit_url(action), prefilled(client, edit_url(action), target_value_2="4"))
    assert response.status_code == 400
    assert "Choose the metric this target value is for." in field_html(text(response), "target_metric_2")


def test_sending_the_form_as_shown_changes_nothing_and_says_so(world):
    tw = world.a
    target = metric(tw)
    action = make(tw, targets=[(target, "12.50")], description="Line one.\nLine two.")
    before = reload(tw, action).updated_at
    client = session(tw, "partner_manager")
    data = prefilled(client, edit_url(action))
    data["description"] = data["description"].replace("\n", "\r\n")  # as a browser sends a textarea
    response = client.post(edit_url(action), data, follow=True)
    assert "Nothing changed." in text(response)
    assert reload(tw, action).updated_at == before and events(tw, action) == 0


@pytest.mark.parametrize("status", [ActionStatus.DONE, ActionStatus.CANCELLED])
def test_a_finished_action_shows_why_it_is_not_edited(world, status):
    tw = world.a
    action = make(tw, title="Finished one")
    move(tw, action, status, note="Closed.")
    client = session(tw, "partner_manager")
    assert 'id="edit-action"' not in text(client.get(reverse("action_detail", args=[action.pk])))
    response = client.get(edit_url(action))
    page = text(response)
    refusal = "A done action is finished" if status == ActionStatus.DONE else "A cancelled action stays cancelled"
    assert response.status_code == 200 and refusal in page and 'id="edit-form"' not in page
    response = client.post(edit_url(action), {"title": "Renamed", "due_on": days(3).isoformat()})
    assert response.status_code == 400 and refusal in text(response)
    assert reload(tw, action).title == "Finished one"


@pytest.mark.parametrize("role", INTERNAL)
def test_the_detail_page_links_to_the_edit_page_while_the_action_is_unfinished(world, role):
    action = make(world.a)
    page = text(session(world.a, role).get(reverse("action_detail", args=[action.pk])))
    assert f'href="{edit_url(action)}"' in page


# --- The portal's page ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", PARTNER)
def test_partner_users_edit_the_working_notes_of_their_actions_in_the_portal(world, role):
    tw = world.a
    action = make(tw, title="Agreed title", resources="One engineer.")
    client = session(tw, role)
    detail = text(client.get(reverse("portal_action_detail", args=[action.pk])))
    assert f'href="{portal_edit_url(action)}"' in detail
    page = text(client.get(portal_edit_url(action)))
    for name in ("description", "impact_estimate", "success_criteria", "resources", "contingency"):
        assert f'name="{name}"' in page
    for name in ("title", "owner", "due_on", "priority", "plan", "target_metric_1"):
        assert f'name="{name}"' not in page, name
    data = prefilled(client, portal_edit_url(action), resources="Two engineers.", success_criteria="Ten leads.")
    data |= {"title": "Forged title", "due_on": days(1).isoformat()}
    response = client.post(portal_edit_url(action), data, follow=True)
    assert response.redirect_chain == [(reverse("portal_action_detail", args=[action.pk]), 302)]
    assert "Saved: resources, success criteria." in text(response)
    stored = reload(tw, action)
    assert stored.resources == "Two engineers." and stored.success_criteria == "Ten leads."
    assert stored.title == "Agreed title" and stored.due_on == days(7), "what was agreed stays the program's"


@pytest.mark.parametrize("role", PARTNER)
def test_partner_users_find_no_program_edit_page_and_no_other_partners_action(world, role):
    tw = world.a
    own = make(tw, title="Ours")
    theirs = make(tw, partner_index=1, title="Theirs")
    client = session(tw, role)
    assert client.get(edit_url(own)).status_code == 404
    assert client.post(edit_url(own), {"title": "Forged", "due_on": days(3).isoformat()}).status_code == 404
    assert client.get(portal_edit_url(theirs)).status_code == 404
    assert client.post(portal_edit_url(theirs), {"description": "Forged"}).status_code == 404
    assert reload(tw, own).title == "Ours" and reload(tw, theirs).description == ""


@pytest.mark.parametrize("role", INTERNAL)
def test_internal_people_find_no_portal_edit_page(world, role):
    action = make(world.a)
    assert session(world.a, role).get(portal_edit_url(action)).status_code == 404


@pytest.mark.parametrize("role", INTERNAL + PARTNER)
def test_another_tenants_action_is_not_found_on_either_edit_page(world, role):
    foreign = make(world.b, title="Foreign")
    client = session(world.a, role)
    for url in (edit_url(foreign), portal_edit_url(foreign)):
        assert client.get(url).status_code == 404, url
        assert client.post(url, {"title": "Forged", "description": "Forged"}).status_code == 404, url
    stored = reload(world.b, foreign)
    assert stored.title == "Foreign" and stored.description == ""


# --- Two people editing at once --------------------------------------------------------------------------


def test_edits_of_different_fields_made_at_once_are_both_kept(world):
    tw = world.a
    action = make(tw)
    first, second = session(tw, "admin"), session(tw, "partner_manager")
    mine = prefilled(first, edit_url(action), title="Webinar for the Nordics")
    theirs = prefilled(second, edit_url(action), due_on=days(30).isoformat())
    assert second.post(edit_url(action), theirs).status_code == 302

    response = first.post(edit_url(action), mine, follow=True)

    assert "Saved: title." in text(response)
    stored = reload(tw, action)
    assert (stored.title, stored.due_on) == ("Webinar for the Nordics", days(30))


def test_a_field_someone_else_changed_meanwhile_is_not_overwritten_without_a_second_save(world):
    tw = world.a
    action = make(tw)
    first, second = session(tw, "admin"), session(tw, "partner_manager")
    mine = prefilled(first, edit_url(action), title="Webinar for the Nordics", resources="Two presales engineers")
    theirs = prefilled(second, edit_url(action), title="Roadshow in Oslo", due_on=days(30).isoformat())
    assert second.post(edit_url(action), theirs).status_code == 302

    refused = first.post(edit_url(action), mine)

    assert refused.status_code == 400
    page = text(refused)
    assert "Changed by someone else since you opened this page; it is now “Roadshow in Oslo”." in field_html(
        page, "title"
    )
    assert 'value="Webinar for the Nordics"' in page  # this person's value is still on the form
    assert f'value="{days(30).isoformat()}"' in field_html(page, "due_on")  # the other change is shown as stored
    stored = reload(tw, action)
    assert (stored.title, stored.due_on, stored.resources) == ("Roadshow in Oslo", days(30), "")

    # Saving again, having seen the other change, keeps this person's title and the other's due date.
    again = {key: value for key, value in refused.context["form"].data.items()}
    assert first.post(edit_url(action), again).status_code == 302
    stored = reload(tw, action)
    assert (stored.title, stored.due_on, stored.resources) == (
        "Webinar for the Nordics",
        days(30),
        "Two presales engineers",
    )


def test_a_form_without_its_fingerprint_saves_every_field_that_differs(world):
    tw = world.a
    action = make(tw)
    client = session(tw, "admin")
    data = prefilled(client, edit_url(action), title="Webinar for the Nordics")
    del data["seen"]
    assert client.post(edit_url(action), data).status_code == 302
    assert reload(tw, action).title == "Webinar for the Nordics"
