"""A partner's page shows its reviews and follow-up: cadence, next and recent reviews, open actions, the plan."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from actions.models import MilestoneStatus, RemediationPlan
from actions.services.followup import action_transition
from actions.services.plans import milestone_add, plan_activate, plan_open
from partnerhub.partners.models import Partner
from partnerhub.tenancy.context import tenant_scope
from reviews.models import Review, ReviewState
from reviews.services.cadences import cadence_rule_create
from reviews.services.workspace import commitment_add, decision_record
from scorecards.models import Metric, Score
from scorecards.services.corrections import appeal_request, correction_request
from tests.actions.conftest import backdate, days, new_action
from tests.factories import PartnerFactory
from tests.reviews.conftest import force_state, generate, review_of


def page(tw, partner: Partner) -> str:
    client = Client()
    client.force_login(tw.users["partner_manager"])
    response = client.get(reverse("partner_detail", args=[partner.pk]))
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def a(world):
    with tenant_scope(world.a.tenant):
        yield world.a


def test_a_partner_without_reviews_or_actions_says_so_and_what_to_do(a):
    body = page(a, a.partners[0])
    assert "No cadence rule covers this partner" in body
    assert "No review yet." in body and "Set a cadence rule for its segment" in body
    assert "Nothing to follow up: no unfinished action." in body
    assert f"{reverse('action_create')}?partner={a.partners[0].pk}" in body


def test_the_page_shows_the_cadence_the_next_review_and_the_last_ones_held(a):
    Partner.objects.update(manager=a.users["partner_manager"])
    cadence_rule_create(kind="qbr", by=a.users["admin"])
    cycle = generate(a)
    held = review_of(cycle, a.partners[0])
    force_state(held, ReviewState.IN_MEETING)
    decision_record(review=held, decision="Co-fund a webinar", rationale="Thin pipeline", by=a.users["partner_manager"])
    commitment_add(review=held, party="partner", text="Two certified engineers", by=a.users["partner_manager"])
    force_state(held, ReviewState.SHARED)
    # A second, later review still to hold, in a new cycle of another kind.
    cadence_rule_create(kind="check_in", lifecycle_stage=a.partners[0].lifecycle_stage, by=a.users["admin"])
    upcoming = review_of(generate(a, kind="check_in", period="FY2026-M10"), a.partners[0])

    body = page(a, a.partners[0])

    assert "Monthly check-in cadence" in body
    assert f'href="{reverse("review_detail", args=[upcoming.pk])}"' in body and "Scheduled" in body
    assert f'href="{reverse("review_detail", args=[held.pk])}"' in body and "Shared with partner" in body
    row = body[body.index(f'href="{reverse("review_detail", args=[held.pk])}"') :]
    assert '<td class="num">1</td>\n            <td class="num">1</td>' in row


def test_unfinished_actions_are_counted_by_status_with_the_overdue_and_the_open_plan(a):
    mine = [new_action(a, title=f"Action {n}", due_on=days(n + 1)) for n in range(3)]
    backdate(mine[0], due_days_ago=4)
    action_transition(action=mine[1], to="in_progress", by=a.users["partner_manager"])
    action_transition(action=mine[2], to="done", by=a.users["partner_manager"])
    new_action(a, partner_index=1, title="Another partner's action")
    plan = plan_open(partner=a.partners[0], by=a.users["admin"], trigger_period="FY2026-Q3")
    plan_activate(
        plan=plan,
        leader=a.users["partner_manager"],
        root_cause="enablement",
        root_cause_analysis="No certified engineers left.",
        by=a.users["admin"],
    )
    milestone = milestone_add(
        plan=plan,
        by=a.users["admin"],
        title="Win rate back to 25%",
        due_on=days(60),
        period="FY2026-Q4",
        metric=Metric.objects.get(key="customer_satisfaction"),
        target_value="8",
    )
    milestone.__class__.objects.filter(pk=milestone.pk).update(status=MilestoneStatus.MISSED)

    body = page(a, a.partners[0])

    assert '<span class="chip">1 open</span>' in body and '<span class="chip">1 in progress</span>' in body
    assert "1 overdue" in body
    assert "Action 0" in body and "Action 1" in body
    assert "Action 2" not in body  # done
    assert "Another partner" not in body
    assert f'href="{reverse("plan_detail", args=[plan.pk])}"' in body
    assert "milestones 0 met, 1 missed of 1" in body


def test_the_page_reads_a_fixed_number_of_queries_however_many_reviews_and_actions(a):
    Partner.objects.update(manager=a.users["partner_manager"])
    cadence_rule_create(kind="qbr", by=a.users["admin"])
    generate(a)
    new_action(a)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            page(a, a.partners[0])
        return len(captured)

    few = queries()
    for n in range(8):
        new_action(a, title=f"More work {n}", due_on=days(n + 2))
    for review in Review.objects.filter(partner=a.partners[0]):
        force_state(review, ReviewState.FINALIZED)
    RemediationPlan.objects.filter(partner=a.partners[0]).delete()
    plan_open(partner=a.partners[0], by=a.users["admin"], trigger_period="FY2026-Q3")
    assert queries() <= few + 1  # the open plan is one more query when there is one


# --- Data and corrections ----------------------------------------------------------------------------------


def test_the_page_counts_the_partners_open_requests_and_links_them_for_those_who_decide(a):
    observation = next(o for o in a.extra["scorecards"].observations if o.partner_id == a.partners[0].pk)
    correction_request(
        observation=observation, proposed_value="99", reason="The CRM missed two deals", by=a.users["partner_admin"]
    )
    appeal_request(
        score=Score.objects.current().filter(partner=a.partners[0]).first(),
        reason="The quarter had a one-off",
        by=a.users["partner_admin"],
    )
    other = next(o for o in a.extra["scorecards"].observations if o.partner_id == a.partners[1].pk)
    correction_request(
        observation=other, proposed_value="5", reason="Another partner's", by=a.users["other_partner_admin"]
    )

    body = page(a, a.partners[0])

    assert "1 correction, 1 appeal" in body
    assert f"{reverse('correction_queue')}?partner={a.partners[0].pk}" in body
    assert "Latest value" in body and "recorded" in body


def test_a_partner_with_no_data_yet_says_so(a):
    fresh = PartnerFactory(tenant=a.tenant, name="Newcomer Ltd")
    body = page(a, fresh)
    assert "None waiting" in body and "None to review" in body and "No values yet" in body
