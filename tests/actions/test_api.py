"""The actions API: action items and remediation plans; isolation, refusals, escalations kept internal, query bounds."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from actions.models import ActionItem, ActionStatus, Checkpoint, Milestone, PlanStatus, RemediationPlan
from actions.services.plans import plan_open
from partnerhub.tenancy.context import tenant_scope
from tests.actions.conftest import backdate, days, new_action
from tests.clients import key, patch, post, session, url

INTERNAL = ("admin", "partner_manager", "executive")
PARTNER = ("partner_admin", "partner_member")
ACTIONS, PLANS = "/api/v1/action-items/", "/api/v1/remediation-plans/"
ESCALATION_REASON = "The partner's budget holder went silent"


def ids(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


def action(world, **fields) -> ActionItem:
    with tenant_scope(world.a.tenant):
        return new_action(world.a, **fields)


def stored(world, model, pk):
    with tenant_scope(world.a.tenant):
        return model.objects.get(pk=pk)


def suggested_plan(world, index: int = 0) -> RemediationPlan:
    with tenant_scope(world.a.tenant):
        return plan_open(partner=world.a.partners[index], by=world.a.users["admin"], trigger_period="FY2026-Q3")


# --- Action items: reading ------------------------------------------------------------------------------------


def test_actions_list_with_filters_and_partner_users_see_their_own_partners_only(world):
    mine = action(world, root_cause="enablement", owner=world.a.users["partner_member"])
    theirs = action(world, partner_index=1)
    late = action(world, partner_index=1)
    with tenant_scope(world.a.tenant):
        backdate(late, due_days_ago=3)
    for client in [session(world.a, role) for role in INTERNAL] + [key(world.a)]:
        assert ids(client.get(ACTIONS)) == {mine.pk, theirs.pk, late.pk}
    admin = session(world.a, "admin")
    assert ids(admin.get(ACTIONS, {"partner": world.a.partners[1].pk})) == {theirs.pk, late.pk}
    assert ids(admin.get(ACTIONS, {"owner": world.a.users["partner_member"].pk})) == {mine.pk}
    assert ids(admin.get(ACTIONS, {"overdue": "true"})) == {late.pk}
    assert ids(admin.get(ACTIONS, {"overdue": "false", "status": "open"})) == {mine.pk, theirs.pk}
    assert ids(admin.get(ACTIONS, {"root_cause": "enablement"})) == {mine.pk}
    assert admin.get(ACTIONS, {"status": "someday"}).status_code == 400
    assert admin.get(ACTIONS, {"overdue": "maybe"}).status_code == 400
    for role in PARTNER:
        client = session(world.a, role)
        assert ids(client.get(ACTIONS)) == {mine.pk}
        assert client.get(url(ACTIONS, theirs.pk)).status_code == 404
        assert post(client, url(ACTIONS, theirs.pk, "comment"), {"body": "Hello"}).status_code == 404
    assert ids(session(world.a, "other_partner_admin").get(ACTIONS)) == {theirs.pk, late.pk}
    detail = admin.get(url(ACTIONS, mine.pk)).json()
    assert detail["title"] and detail["history"] == [] and detail["owner_name"]


def test_another_tenants_action_and_plan_are_not_found_for_anyone(world):
    foreign_action, foreign_plan = world.b.extra["action_item"], world.b.extra["plan"]
    for client in [session(world.a, role) for role in (*INTERNAL, *PARTNER)] + [key(world.a)]:
        assert client.get(url(ACTIONS, foreign_action.pk)).status_code == 404
        assert client.get(url(PLANS, foreign_plan.pk)).status_code == 404
    manager = session(world.a, "partner_manager")
    assert post(manager, url(ACTIONS, foreign_action.pk, "transition"), {"to": "done"}).status_code == 404
    assert patch(manager, url(ACTIONS, foreign_action.pk), {"title": "Mine now"}).status_code == 404
    assert post(manager, url(PLANS, foreign_plan.pk, "close"), {"status": "cancelled", "note": "x"}).status_code == 404
    refused = post(manager, ACTIONS, {"partner": world.b.partners[0].pk, "title": "Theirs", "due_on": str(days(3))})
    assert refused.status_code == 400 and "partner" in refused.json()
    with tenant_scope(world.b.tenant):
        assert ActionItem.objects.get(pk=foreign_action.pk).status == ActionStatus.OPEN
        assert RemediationPlan.objects.get(pk=foreign_plan.pk).status == PlanStatus.SUGGESTED


@pytest.mark.parametrize("rows", [(3, 15)])
def test_the_lists_run_the_same_queries_for_3_and_15_rows(world, rows):
    few_rows, many_rows = rows

    def build(count: int) -> None:
        with tenant_scope(world.a.tenant):
            while ActionItem.objects.count() < count:
                new_action(world.a, partner_index=ActionItem.objects.count() % 2)
            from tests.factories import PartnerFactory

            while RemediationPlan.objects.count() < count:
                partner = PartnerFactory(tenant=world.a.tenant)
                plan = plan_open(partner=partner, by=world.a.users["admin"], trigger_period="FY2026-Q3")
                Milestone.objects.create(
                    plan=plan,
                    title="m",
                    due_on=days(30),
                    period="FY2026-Q4",
                    metric=world.a.extra["scorecards"].version.items.first().metric,
                    target_value=1,
                )

    def queries(client: Client, path: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(path).status_code == 200
        return len(captured)

    clients = [session(world.a, "admin"), key(world.a), session(world.a, "partner_member")]
    build(few_rows)
    for client in clients:  # the first call saves the session and touches the key
        client.get(ACTIONS)
    few = [queries(client, path) for client in clients for path in (ACTIONS, PLANS)]
    build(many_rows)
    assert len(ids(clients[0].get(ACTIONS, {"page_size": 50}))) == many_rows
    assert len(ids(clients[0].get(PLANS, {"page_size": 50}))) == many_rows
    assert [queries(client, path) for client in clients for path in (ACTIONS, PLANS)] == few


# --- Action items: writing ------------------------------------------------------------------------------------


def test_the_programs_people_create_actions_and_every_problem_is_answered_by_field(world):
    manager = session(world.a, "partner_manager")
    body = {
        "partner": world.a.partners[0].pk,
        "title": "Run a joint webinar",
        "due_on": str(days(10)),
        "owner": world.a.users["partner_admin"].pk,
        "priority": "high",
        "targets": [{"metric": "customer_satisfaction", "target_value": "8.5"}],
    }
    created = post(manager, ACTIONS, body)
    assert created.status_code == 201, created.content
    data = created.json()
    assert data["status"] == "open" and data["targets"] == [
        {"metric": "customer_satisfaction", "target_value": "8.500000"}
    ]
    bad = post(manager, ACTIONS, {**body, "title": " ", "due_on": str(days(-2)), "owner": world.b.users["admin"].pk})
    assert bad.status_code == 400 and "owner" in bad.json()
    bad = post(manager, ACTIONS, {**body, "title": " ", "due_on": str(days(-2))})
    assert bad.status_code == 400 and {"title", "due_on"} <= set(bad.json())
    assert post(manager, ACTIONS, {"title": "No partner"}).status_code == 400
    unknown = post(manager, ACTIONS, {**body, "targets": [{"metric": "nope", "target_value": "1"}]})
    assert unknown.status_code == 400 and "targets" in unknown.json()
    for client in [session(world.a, role) for role in PARTNER] + [key(world.a, "write_key")]:
        assert post(client, ACTIONS, body).status_code == 403
    with tenant_scope(world.a.tenant):
        assert ActionItem.objects.count() == 1


def test_partner_users_change_only_the_working_notes_of_their_actions(world):
    item = action(world)
    member = session(world.a, "partner_member")
    ok = patch(member, url(ACTIONS, item.pk), {"description": "Venue booked.", "resources": "Two engineers."})
    assert ok.status_code == 200 and ok.json()["description"] == "Venue booked."
    refused = patch(member, url(ACTIONS, item.pk), {"title": "Something easier"})
    assert refused.status_code == 403 and "agreed with the program" in refused.json()["detail"]
    manager = session(world.a, "partner_manager")
    assert patch(manager, url(ACTIONS, item.pk), {"title": "A bigger webinar"}).json()["title"] == "A bigger webinar"
    assert patch(manager, url(ACTIONS, item.pk), {"due_on": str(days(-1))}).status_code == 400
    assert patch(manager, url(ACTIONS, item.pk), {"partner": world.a.partners[1].pk}).status_code == 400
    assert patch(key(world.a, "write_key"), url(ACTIONS, item.pk), {"title": "Key"}).status_code == 403
    assert stored(world, ActionItem, item.pk).title == "A bigger webinar"


def test_actions_move_comment_and_report_progress_and_illegal_moves_change_nothing(world):
    item = action(world)
    member = session(world.a, "partner_member")
    moved = post(member, url(ACTIONS, item.pk, "transition"), {"to": "in_progress"})
    assert moved.status_code == 200 and moved.json()["status"] == "in_progress"
    assert post(member, url(ACTIONS, item.pk, "progress"), {"percent": 150}).status_code == 400
    progress = post(member, url(ACTIONS, item.pk, "progress"), {"percent": 40, "note": "Invitations out."})
    assert progress.status_code == 201 and progress.json()["progress"] == 40
    comment = post(member, url(ACTIONS, item.pk, "comment"), {"body": "Room booked."})
    assert comment.status_code == 201 and comment.json()["kind"] == "comment"
    assert post(member, url(ACTIONS, item.pk, "comment"), {"body": " "}).status_code == 400
    blocked = post(member, url(ACTIONS, item.pk, "transition"), {"to": "blocked"})
    assert blocked.status_code == 400 and "blocks" in str(blocked.json())
    cancel = post(member, url(ACTIONS, item.pk, "transition"), {"to": "cancelled", "note": "Not needed."})
    assert cancel.status_code == 403
    post(member, url(ACTIONS, item.pk, "transition"), {"to": "blocked", "note": "Waiting on budget."})
    illegal = post(member, url(ACTIONS, item.pk, "transition"), {"to": "done"})
    assert illegal.status_code == 400
    assert illegal.json()["non_field_errors"] == [
        "A blocked action is unblocked before it is done: move it to in progress first."
    ]
    assert post(member, url(ACTIONS, item.pk, "transition"), {"to": "archived"}).status_code == 400
    assert stored(world, ActionItem, item.pk).status == ActionStatus.BLOCKED
    history = session(world.a, "admin").get(url(ACTIONS, item.pk)).json()["history"]
    assert [update["kind"] for update in history] == ["status", "progress", "comment", "status"]


def test_escalations_are_the_programs_and_partner_users_never_read_them(world):
    item = action(world, priority="critical")
    executive = world.a.users["executive"]
    member = session(world.a, "partner_member")
    body = {"to": executive.pk, "reason": ESCALATION_REASON}
    assert post(member, url(ACTIONS, item.pk, "escalate"), body).status_code == 403
    not_executive = post(session(world.a, "admin"), url(ACTIONS, item.pk, "escalate"), {**body, "to": 999999})
    assert not_executive.status_code == 400 and "to" in not_executive.json()
    escalated = post(session(world.a, "partner_manager"), url(ACTIONS, item.pk, "escalate"), body)
    assert escalated.status_code == 200 and escalated.json()["escalated_to"] == executive.pk
    ordinary = action(world)
    refused = post(session(world.a, "admin"), url(ACTIONS, ordinary.pk, "escalate"), body)
    assert refused.status_code == 400 and "Only critical actions" in str(refused.json())
    assert stored(world, ActionItem, ordinary.pk).escalated_to_id is None
    for role in PARTNER:
        client = session(world.a, role)
        for response in (client.get(url(ACTIONS, item.pk)), client.get(ACTIONS)):
            assert response.status_code == 200
            assert ESCALATION_REASON.encode() not in response.content and b"escalated_to" not in response.content
    assert ESCALATION_REASON.encode() in key(world.a).get(url(ACTIONS, item.pk)).content


# --- Remediation plans --------------------------------------------------------------------------------------


def test_a_plan_is_activated_followed_and_completed_and_partner_users_see_it_once_active(world):
    plan = suggested_plan(world)
    admin = session(world.a, "admin")
    for role in PARTNER:
        assert ids(session(world.a, role).get(PLANS)) == set()
        assert session(world.a, role).get(url(PLANS, plan.pk)).status_code == 404
    assert post(admin, url(PLANS, plan.pk, "checkpoints"), {"held_on": str(days(0)), "outcome": "on_track"}).json() == {
        "non_field_errors": ["Checkpoints follow an active plan; activate the plan first."]
    }
    assert post(admin, url(PLANS, plan.pk, "close"), {"status": "completed"}).status_code == 400
    bad = post(
        admin,
        url(PLANS, plan.pk, "activate"),
        {"leader": 999999, "root_cause": "enablement", "root_cause_analysis": ""},
    )
    assert bad.status_code == 400 and "leader" in bad.json()
    activated = post(
        admin,
        url(PLANS, plan.pk, "activate"),
        {"leader": world.a.users["partner_manager"].pk, "root_cause": "enablement", "root_cause_analysis": "No certs."},
    )
    assert activated.status_code == 200 and activated.json()["status"] == "active"
    milestone = post(
        admin,
        url(PLANS, plan.pk, "milestones"),
        {
            "title": "Happier customers",
            "due_on": str(days(60)),
            "period": "FY2026-Q4",
            "metric": "customer_satisfaction",
            "target_value": "8",
        },
    )
    assert milestone.status_code == 201, milestone.content
    assert milestone.json()["status"] == "pending"
    assert post(admin, url(PLANS, plan.pk, "milestones"), {"title": "x"}).status_code == 400
    checkpoint = post(admin, url(PLANS, plan.pk, "checkpoints"), {"held_on": str(days(0)), "outcome": "at_risk"})
    assert checkpoint.status_code == 400 and "note" in checkpoint.json()
    checkpoint = post(
        admin, url(PLANS, plan.pk, "checkpoints"), {"held_on": str(days(0)), "outcome": "at_risk", "note": "Slow."}
    )
    assert checkpoint.status_code == 201
    for role in PARTNER:
        client = session(world.a, role)
        assert ids(client.get(PLANS)) == {plan.pk}
        body = client.get(url(PLANS, plan.pk)).json()
        assert "trigger_detail" not in body and len(body["milestones"]) == 1 and len(body["checkpoints"]) == 1
        assert post(client, url(PLANS, plan.pk, "close"), {"status": "completed"}).status_code == 403
    assert session(world.a, "other_partner_admin").get(url(PLANS, plan.pk)).status_code == 404
    assert post(key(world.a, "write_key"), url(PLANS, plan.pk, "close"), {"status": "completed"}).status_code == 403
    closed = post(admin, url(PLANS, plan.pk, "close"), {"status": "completed", "note": "Met."})
    assert closed.status_code == 200 and closed.json()["status"] == "completed"
    again = post(admin, url(PLANS, plan.pk, "close"), {"status": "cancelled", "note": "Oops."})
    assert again.status_code == 400 and "stays closed" in str(again.json())
    assert stored(world, RemediationPlan, plan.pk).status == PlanStatus.COMPLETED
    with tenant_scope(world.a.tenant):
        assert Milestone.objects.count() == 1 and Checkpoint.objects.count() == 1


def test_internal_people_and_api_keys_list_every_plan(world):
    plans = {suggested_plan(world, 0).pk, suggested_plan(world, 1).pk}
    for client in [session(world.a, role) for role in INTERNAL] + [key(world.a)]:
        assert ids(client.get(PLANS)) == plans
