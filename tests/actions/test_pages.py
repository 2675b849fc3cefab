"""Action and remediation pages: my actions, the board, the list, creating and following up an action,
plans, and the partner portal's actions; by role, across partners and tenants, with htmx and without."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from actions.models import (
    ActionItem,
    ActionStatus,
    ActionUpdate,
    Checkpoint,
    Milestone,
    MilestoneStatus,
    PlanStatus,
    Priority,
    RemediationPlan,
    RootCause,
    UpdateKind,
)
from actions.services.escalation import action_escalate
from actions.services.followup import action_transition
from actions.services.plans import plan_activate, plan_open
from partnerhub.tenancy.context import tenant_scope
from scorecards.models import Metric
from tests.actions.conftest import backdate, days, new_action
from tests.clients import session

INTERNAL = ("admin", "partner_manager", "executive")
PARTNER = ("partner_admin", "partner_member")
HTMX = {"HTTP_HX_REQUEST": "true"}
MINE, BOARD, LIST, NEW = (reverse(name) for name in ("action_mine", "action_board", "action_list", "action_create"))
PLANS, PORTAL = reverse("plan_list"), reverse("portal_actions")


def text(response) -> str:
    return response.content.decode()


def make(tw, **fields) -> ActionItem:
    with tenant_scope(tw.tenant):
        return new_action(tw, **fields)


def make_overdue(tw, *, due_days_ago: int = 3, **fields) -> ActionItem:
    with tenant_scope(tw.tenant):
        return backdate(new_action(tw, **fields), due_days_ago=due_days_ago)


def reload(tw, action: ActionItem) -> ActionItem:
    with tenant_scope(tw.tenant):
        return ActionItem.objects.get(pk=action.pk)


def move(tw, action: ActionItem, to: str, note: str = "", by: str = "partner_manager") -> ActionItem:
    with tenant_scope(tw.tenant):
        return action_transition(action=action, to=to, by=tw.users[by], note=note)


def open_plan(tw, partner_index: int = 0, *, activate: bool = False) -> RemediationPlan:
    with tenant_scope(tw.tenant):
        plan = plan_open(
            partner=tw.partners[partner_index], by=tw.users["admin"], trigger_period=tw.extra["scorecards"].periods[1]
        )
        if activate:
            plan = plan_activate(
                plan=plan,
                leader=tw.users["partner_manager"],
                root_cause=RootCause.ENABLEMENT,
                root_cause_analysis="Sales engineers never finished the new training.",
                by=tw.users["admin"],
            )
        return plan


def metric(tw) -> Metric:
    with tenant_scope(tw.tenant):
        return (
            Metric.objects.filter(is_active=True, unit="count").order_by("pk").first()
            or Metric.objects.filter(is_active=True).order_by("pk").first()
        )


# --- My actions ---------------------------------------------------------------------------------------------


def test_my_actions_lists_the_persons_unfinished_actions_with_overdue_ones_marked(world):
    pm = world.a.users["partner_manager"]
    soon = make(world.a, title="Refresh the deal registration guide", owner=pm)
    late = make_overdue(world.a, title="Book the enablement day", owner=pm)
    make(world.a, title="Someone else's action", owner=world.a.users["admin"])
    finished = make(world.a, title="Already finished", owner=pm)
    move(world.a, finished, ActionStatus.DONE)
    page = text(session(world.a, "partner_manager").get(MINE))
    assert soon.title in page and late.title in page
    assert "Someone else&#x27;s action" not in page and "Already finished" not in page
    assert "1 overdue" in page and page.count('badge badge-bad">Overdue') == 1
    assert page.index(late.title) < page.index(soon.title), "due soonest first"


def test_my_actions_says_so_when_there_is_nothing_to_do(world):
    page = text(session(world.a, "executive").get(MINE))
    assert "Nothing on your list" in page


# --- Board ---------------------------------------------------------------------------------------------------


def test_the_board_shows_a_column_per_status_with_cards(world):
    open_one = make(world.a, title="Open card", owner=world.a.users["partner_admin"], priority=Priority.HIGH)
    blocked = make(world.a, title="Blocked card")
    move(world.a, blocked, ActionStatus.BLOCKED, note="Waiting for the budget.")
    late = make_overdue(world.a, title="Late card", partner_index=1)
    page = text(session(world.a, "admin").get(BOARD))
    for status in ActionStatus:
        assert f'id="column-{status.value}"' in page
    column = page[page.index('id="column-open"') : page.index('id="column-in_progress"')]
    assert open_one.title in column and late.title in column and blocked.title not in column
    assert blocked.title in page[page.index('id="column-blocked"') : page.index('id="column-done"')]
    card = page[page.index(f'id="action-card-{late.pk}"') :]
    assert "Overdue" in card[: card.index("</article>")]
    assert "Acme Partner 2" in page and "High" in page


class _TopLevel(HTMLParser):
    """The top-level elements of an HTML fragment, each as its markup."""

    VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"})

    def __init__(self, body: str):
        super().__init__(convert_charrefs=False)
        self.body, self.depth, self.start, self.parts = body, 0, 0, []
        self.line_starts = [0] + [i + 1 for i, char in enumerate(body) if char == "\n"]
        self.feed(body)
        self.close()

    def _offset(self) -> int:
        line, column = self.getpos()
        return self.line_starts[line - 1] + column

    def handle_starttag(self, tag, attrs):
        if self.depth == 0:
            self.start = self._offset()
        if tag not in self.VOID:
            self.depth += 1

    def handle_endtag(self, tag):
        self.depth -= 1
        if self.depth == 0:
            self.parts.append(self.body[self.start : self.body.index(">", self._offset()) + 1])


def oob_parts(body: str) -> tuple[list[str], list[str]]:
    """An htmx answer's top-level elements: those swapped into the target, and those swapped out of band."""
    parts = _TopLevel(body).parts
    is_oob = ["hx-swap-oob" in part[: part.index(">")] for part in parts]
    return [p for p, oob in zip(parts, is_oob, strict=True) if not oob], [
        p for p, oob in zip(parts, is_oob, strict=True) if oob
    ]


def test_moving_a_card_with_htmx_puts_it_at_the_top_of_its_new_column_and_recounts_both(world):
    action = make(world.a, title="Moving card")
    make(world.a, title="Staying card")
    started = make(world.a, title="Already started")
    move(world.a, started, ActionStatus.IN_PROGRESS)
    response = session(world.a, "partner_manager").post(
        reverse("action_move", args=[action.pk]),
        {"to": ActionStatus.IN_PROGRESS, "view": "card", "next": BOARD},
        **HTMX,
    )
    assert response.status_code == 200
    main, oob = oob_parts(text(response))
    assert main == [], "the card leaves its old column, which still holds a card"
    (insert,) = [part for part in oob if 'hx-swap-oob="afterbegin:#column-in_progress"' in part]
    assert insert.startswith('<div hx-swap-oob="afterbegin:#column-in_progress"><article class="card action-card"')
    assert f'id="action-card-{action.pk}"' in insert and "Moved to in progress." in insert
    assert 'name="to" value="blocked"' in insert, "the new status's moves"
    assert f'name="next" value="{BOARD}"' in insert, "the card keeps the board it is on"
    heads = {part.split('"')[1]: part for part in oob if part.startswith("<h2")}
    assert set(heads) == {"column-head-open", "column-head-in_progress"}
    assert '<span class="muted small column-count">1</span>' in heads["column-head-open"]
    assert '<span class="muted small column-count">2</span>' in heads["column-head-in_progress"]
    assert reload(world.a, action).status == ActionStatus.IN_PROGRESS


def test_a_card_moved_into_an_empty_column_replaces_its_placeholder_and_leaves_one_behind(world):
    action = make(world.a)
    response = session(world.a, "admin").post(
        reverse("action_move", args=[action.pk]),
        {"to": ActionStatus.BLOCKED, "note": "Waiting for the budget.", "view": "card", "next": BOARD},
        **HTMX,
    )
    main, oob = oob_parts(text(response))
    assert main == ['<p class="muted small column-empty">No actions.</p>'], "the open column is empty now"
    (column,) = [part for part in oob if 'id="column-blocked"' in part]
    assert column.startswith('<div class="column-cards" id="column-blocked" hx-swap-oob="true"><article')
    assert "No actions." not in column and f'id="action-card-{action.pk}"' in column
    heads = [part for part in oob if part.startswith("<h2")]
    assert 'column-count">0<' in heads[0] and 'column-head-open"' in heads[0]
    assert 'column-count">1<' in heads[1] and 'column-head-blocked"' in heads[1]


def test_a_card_the_boards_filters_no_longer_show_leaves_without_arriving(world):
    action = make(world.a)
    board = f"{BOARD}?status=open"
    response = session(world.a, "admin").post(
        reverse("action_move", args=[action.pk]),
        {"to": ActionStatus.IN_PROGRESS, "view": "card", "next": board},
        **HTMX,
    )
    main, oob = oob_parts(text(response))
    assert main == ['<p class="muted small column-empty">No actions.</p>'] and "action-card" not in text(response)
    assert all(part.startswith("<h2") for part in oob) and len(oob) == 2
    assert all('column-count">0<' in part for part in oob), "the filtered board shows neither column's card"


def test_a_refused_move_on_the_board_shows_the_reason_and_changes_nothing(world):
    action = make(world.a)
    move(world.a, action, ActionStatus.BLOCKED, note="Waiting for the budget.")
    with tenant_scope(world.a.tenant):
        before = ActionUpdate.objects.filter(action=action).count()
    response = session(world.a, "partner_manager").post(
        reverse("action_move", args=[action.pk]), {"to": ActionStatus.DONE, "view": "card"}, **HTMX
    )
    assert response.status_code == 200
    body = text(response).strip()
    assert body.startswith(f'<article class="card action-card" id="action-card-{action.pk}"'), "stays in place"
    assert "A blocked action is unblocked before it is done: move it to in progress first." in body
    assert "hx-swap-oob" not in body and "column-count" not in body
    assert reload(world.a, action).status == ActionStatus.BLOCKED
    with tenant_scope(world.a.tenant):
        assert ActionUpdate.objects.filter(action=action).count() == before


def test_a_refused_move_without_htmx_redirects_with_the_reason_and_changes_nothing(world):
    action = make(world.a)
    move(world.a, action, ActionStatus.CANCELLED, note="Not needed any more.")
    response = session(world.a, "admin").post(
        reverse("action_move", args=[action.pk]), {"to": ActionStatus.OPEN}, follow=True
    )
    assert response.redirect_chain[-1][0] == reverse("action_detail", args=[action.pk])
    assert "A cancelled action stays cancelled; create a new one." in text(response)
    assert reload(world.a, action).status == ActionStatus.CANCELLED


def test_blocking_without_a_note_is_refused_with_the_services_words(world):
    action = make(world.a)
    response = session(world.a, "admin").post(
        reverse("action_move", args=[action.pk]), {"to": ActionStatus.BLOCKED}, **HTMX
    )
    assert "Say what blocks the action." in text(response)
    assert reload(world.a, action).status == ActionStatus.OPEN


def test_blocking_a_card_without_a_note_keeps_it_in_its_column_with_the_reason(world):
    action = make(world.a)
    response = session(world.a, "admin").post(
        reverse("action_move", args=[action.pk]),
        {"to": ActionStatus.BLOCKED, "view": "card", "next": BOARD + "?partner=1"},
        **HTMX,
    )
    body = text(response).strip()
    assert body.startswith(f'<article class="card action-card" id="action-card-{action.pk}"')
    assert "Say what blocks the action." in body and "hx-swap-oob" not in body
    assert 'name="next" value="/actions/board/?partner=1"' in body
    assert reload(world.a, action).status == ActionStatus.OPEN


def test_a_card_moved_without_javascript_redirects_back_to_the_board(world):
    action = make(world.a)
    board = f"{BOARD}?partner={world.a.partners[0].pk}"
    response = session(world.a, "admin").post(
        reverse("action_move", args=[action.pk]), {"to": ActionStatus.IN_PROGRESS, "view": "card", "next": board}
    )
    assert response.status_code == 302 and response["Location"] == board
    page = text(session(world.a, "admin").get(board))
    column = page[page.index('id="column-in_progress"') : page.index('id="column-head-blocked"')]
    assert f'id="action-card-{action.pk}"' in column
    assert "No actions." in page[page.index('id="column-open"') : page.index('id="column-head-in_progress"')]


# --- List and filters ---------------------------------------------------------------------------------------


def test_the_list_filters_by_owner_partner_status_overdue_and_root_cause(world):
    tw = world.a
    owned = make(tw, title="Owned by the admin", owner=tw.users["admin"], root_cause=RootCause.ENABLEMENT)
    other = make(tw, title="Of the second partner", partner_index=1, root_cause=RootCause.DATA_QUALITY)
    late = make_overdue(tw, title="Overdue one")
    started = make(tw, title="Started one")
    move(tw, started, ActionStatus.IN_PROGRESS)
    client = session(tw, "partner_manager")

    def titles(**params) -> set[str]:
        page = text(client.get(LIST, params))
        return {a.title for a in (owned, other, late, started) if a.title in page}

    assert titles() == {owned.title, other.title, late.title, started.title}
    assert titles(owner=tw.users["admin"].pk) == {owned.title}
    assert titles(partner=tw.partners[1].pk) == {other.title}
    assert titles(status=ActionStatus.IN_PROGRESS) == {started.title}
    assert titles(overdue="yes") == {late.title}
    assert titles(overdue="no") == {owned.title, other.title, started.title}
    assert titles(root_cause=RootCause.DATA_QUALITY) == {other.title}
    assert titles(status="nonsense") == {owned.title, other.title, late.title, started.title}
    assert "Ignored filters" in text(client.get(LIST, {"status": "nonsense"}))


def test_the_board_takes_the_same_filters(world):
    mine = make(world.a, title="Second partner card", partner_index=1)
    theirs = make(world.a, title="First partner card")
    page = text(session(world.a, "admin").get(BOARD, {"partner": world.a.partners[1].pk}))
    assert mine.title in page and theirs.title not in page


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


@pytest.mark.parametrize("url", [LIST, BOARD, MINE])
def test_action_pages_answer_in_a_fixed_number_of_queries(world, url):
    tw = world.a
    with tenant_scope(tw.tenant):
        target = Metric.objects.filter(is_active=True).order_by("pk").first()
    client = session(tw, "partner_manager")
    for n in range(3):
        make(tw, title=f"Action {n}", owner=tw.users["partner_manager"], targets=[(target, None)], partner_index=n % 2)
    client.get(url)  # the first page of a session also reads what later pages find cached
    few = _queries(client, url)
    for n in range(3, 15):
        make(tw, title=f"Action {n}", owner=tw.users["partner_manager"], targets=[(target, None)], partner_index=n % 2)
    assert _queries(client, url) == few


def test_the_plans_list_answers_in_a_fixed_number_of_queries(world):
    client = session(world.a, "admin")
    open_plan(world.a, 0, activate=True)
    client.get(PLANS)
    few = _queries(client, PLANS + "?status=all")
    open_plan(world.a, 1)
    with tenant_scope(world.a.tenant):
        RemediationPlan.objects.update(status=PlanStatus.CANCELLED)
    open_plan(world.a, 0)
    open_plan(world.a, 1, activate=True)
    assert _queries(client, PLANS + "?status=all") == few


# --- Create --------------------------------------------------------------------------------------------------


def test_creating_an_action_stores_every_field_and_its_targets(world):
    tw = world.a
    target = metric(tw)
    data = {
        "partner": tw.partners[0].pk,
        "title": "Certify three more engineers",
        "owner": tw.users["partner_admin"].pk,
        "due_on": days(30).isoformat(),
        "priority": Priority.HIGH,
        "kind": "mid_term",
        "root_cause": RootCause.CAPABILITY_GAP,
        "description": "Book the exam slots.",
        "impact_estimate": "More certified staff.",
        "success_criteria": "Three certificates.",
        "resources": "Exam vouchers.",
        "contingency": "Next quarter.",
        "target_metric_1": target.pk,
        "target_value_1": "12",
    }
    response = session(tw, "partner_manager").post(NEW, data)
    with tenant_scope(tw.tenant):
        action = ActionItem.objects.get(title="Certify three more engineers")
        assert response.status_code == 302 and response["Location"] == reverse("action_detail", args=[action.pk])
        assert action.owner == tw.users["partner_admin"] and action.priority == Priority.HIGH
        assert action.contingency == "Next quarter." and action.kind == "mid_term"
        assert [(t.metric_id, int(t.target_value)) for t in action.targets.all()] == [(target.pk, 12)]


def test_owner_choices_are_the_people_eligible_for_the_chosen_partner(world):
    tw = world.a
    client = session(tw, "admin")
    page = text(client.get(NEW, {"partner": tw.partners[0].pk}, **HTMX))
    assert page.startswith('<form method="post"'), "htmx answers the form alone"
    assert f'<option value="{tw.partners[0].pk}" selected>' in page
    owners = page[page.index('name="owner"') :]
    owners = owners[: owners.index("</select>")]
    assert f'value="{tw.users["partner_admin"].pk}"' in owners and f'value="{tw.users["admin"].pk}"' in owners
    assert f'value="{tw.users["other_partner_admin"].pk}"' not in owners
    # A forged owner of another partner is refused, by field, and nothing is stored.
    response = client.post(
        NEW,
        {
            "partner": tw.partners[0].pk,
            "title": "Forged owner",
            "owner": tw.users["other_partner_admin"].pk,
            "due_on": days(3).isoformat(),
            "priority": Priority.LOW,
            "kind": "quick_win",
            "root_cause": RootCause.OTHER,
        },
    )
    assert response.status_code == 400 and "Nothing was created" in text(response)
    with tenant_scope(tw.tenant):
        assert not ActionItem.objects.filter(title="Forged owner").exists()


def test_creating_with_a_past_due_date_says_why_and_stores_nothing(world):
    tw = world.a
    response = session(tw, "partner_manager").post(
        NEW,
        {
            "partner": tw.partners[0].pk,
            "title": "Too late",
            "due_on": days(-2).isoformat(),
            "priority": Priority.LOW,
            "kind": "quick_win",
            "root_cause": RootCause.OTHER,
        },
    )
    assert response.status_code == 400 and "has passed" in text(response)
    with tenant_scope(tw.tenant):
        assert not ActionItem.objects.filter(title="Too late").exists()


# --- Detail and follow-up ---------------------------------------------------------------------------------------


def test_the_detail_offers_only_the_legal_moves(world):
    action = make(world.a)
    move(world.a, action, ActionStatus.BLOCKED, note="Budget.")
    page = text(session(world.a, "admin").get(reverse("action_detail", args=[action.pk])))
    assert 'value="in_progress"' in page and 'value="cancelled"' in page and 'value="open"' in page
    assert 'name="to" value="done"' not in page
    assert "Budget." in page, "the history"


def test_comment_and_progress_answer_htmx_with_the_follow_up_panel(world):
    action = make(world.a)
    client = session(world.a, "partner_manager")
    response = client.post(reverse("action_comment", args=[action.pk]), {"body": "Called the partner."}, **HTMX)
    body = text(response)
    assert response.status_code == 200 and body.startswith('<section class="card" id="followup">')
    assert "Called the partner." in body and "Comment added." in body
    response = client.post(reverse("action_progress", args=[action.pk]), {"percent": "40", "note": "Half"}, **HTMX)
    assert "40% done" in text(response)
    assert reload(world.a, action).progress == 40
    response = client.post(reverse("action_progress", args=[action.pk]), {"percent": "140"}, **HTMX)
    assert "Progress is a whole percentage from 0 to 100." in text(response)
    assert reload(world.a, action).progress == 40
    response = client.post(reverse("action_comment", args=[action.pk]), {"body": "Plain post"})
    assert response.status_code == 302 and response["Location"] == reverse("action_detail", args=[action.pk])


def test_the_escalate_form_appears_only_when_escalation_is_allowed_and_offers_executives(world):
    tw = world.a
    ordinary = make(tw)
    critical = make(tw, priority=Priority.CRITICAL)
    client = session(tw, "partner_manager")
    assert 'id="escalate-form"' not in text(client.get(reverse("action_detail", args=[ordinary.pk])))
    page = text(client.get(reverse("action_detail", args=[critical.pk])))
    form = page[page.index('id="escalate-form"') :]
    form = form[: form.index("</form>")]
    assert f'value="{tw.users["executive"].pk}"' in form
    assert f'value="{tw.users["admin"].pk}"' not in form
    response = client.post(
        reverse("action_escalate", args=[critical.pk]),
        {"to": tw.users["executive"].pk, "reason": "Blocks the renewal."},
        **HTMX,
    )
    assert "Escalated to" in text(response)
    assert reload(tw, critical).escalated_to == tw.users["executive"]
    # Escalating an ordinary action by hand is refused with the service's reason.
    response = client.post(
        reverse("action_escalate", args=[ordinary.pk]), {"to": tw.users["executive"].pk, "reason": "Now!"}, **HTMX
    )
    assert "Only critical actions" in text(response)
    assert reload(tw, ordinary).escalated_to is None


# --- Remediation ---------------------------------------------------------------------------------------------


def test_the_plans_list_shows_suggested_active_and_closed_plans_by_partner(world):
    tw = world.a
    suggested = open_plan(tw, 0)
    active = open_plan(tw, 1, activate=True)
    client = session(tw, "partner_manager")
    page = text(client.get(PLANS))
    assert f'id="plan-{suggested.pk}"' in page and f'id="plan-{active.pk}"' in page
    page = text(client.get(PLANS, {"status": "active"}))
    assert f'id="plan-{suggested.pk}"' not in page and f'id="plan-{active.pk}"' in page
    page = text(client.get(PLANS, {"partner": tw.partners[0].pk, "status": "all"}))
    assert f'id="plan-{suggested.pk}"' in page and f'id="plan-{active.pk}"' not in page
    assert "No plans here" in text(client.get(PLANS, {"status": "closed"}))


def test_a_plan_is_activated_followed_and_closed_from_its_page(world):
    tw = world.a
    plan = open_plan(tw, 0)
    client = session(tw, "partner_manager")
    url = reverse("plan_detail", args=[plan.pk])
    page = text(client.get(url))
    assert 'id="activate-form"' in page and 'id="checkpoint-form"' not in page
    # Missing analysis: the service's words, nothing changed.
    response = client.post(
        reverse("plan_activate", args=[plan.pk]), {"leader": tw.users["partner_manager"].pk, "root_cause": "enablement"}
    )
    assert response.status_code == 400 and "Write the root-cause analysis" in text(response)
    response = client.post(
        reverse("plan_activate", args=[plan.pk]),
        {"leader": tw.users["partner_manager"].pk, "root_cause": "enablement", "root_cause_analysis": "No training."},
        **HTMX,
    )
    assert text(response).startswith('<div id="plan-body">') and "The plan is active." in text(response)
    target = metric(tw)
    response = client.post(
        reverse("plan_milestone_add", args=[plan.pk]),
        {
            "title": "Training done",
            "due_on": days(20).isoformat(),
            "period": tw.extra["scorecards"].periods[1],
            "metric": target.pk,
            "comparison": "at_least",
            "target_value": "5",
        },
    )
    assert response.status_code == 302
    response = client.post(
        reverse("plan_checkpoint_add", args=[plan.pk]), {"held_on": days(0).isoformat(), "outcome": "at_risk"}
    )
    assert response.status_code == 400 and "Say what puts the plan at risk or off track." in text(response)
    client.post(
        reverse("plan_checkpoint_add", args=[plan.pk]),
        {"held_on": days(0).isoformat(), "outcome": "at_risk", "note": "Trainer ill."},
    )
    with tenant_scope(tw.tenant):
        assert Checkpoint.objects.filter(plan=plan).count() == 1
        Milestone.objects.filter(plan=plan).update(status=MilestoneStatus.MISSED, observed_value=3)
    page = text(client.get(url))
    assert "No training." in page and "Trainer ill." in page and "Missed" in page
    assert "at least 5" in page and ">3<" in page, "observed against target"
    client.post(reverse("plan_close", args=[plan.pk]), {"status": "completed", "note": "Back on track."})
    with tenant_scope(tw.tenant):
        assert RemediationPlan.objects.get(pk=plan.pk).status == PlanStatus.COMPLETED
    assert 'id="close-form"' not in text(client.get(url))


def test_a_suggested_plan_is_not_completed(world):
    plan = open_plan(world.a, 0)
    response = session(world.a, "admin").post(reverse("plan_close", args=[plan.pk]), {"status": "completed"}, **HTMX)
    assert "Only an active plan is completed" in text(response)
    with tenant_scope(world.a.tenant):
        assert RemediationPlan.objects.get(pk=plan.pk).status == PlanStatus.SUGGESTED


# --- Partner portal ----------------------------------------------------------------------------------------------


def test_partner_users_see_their_own_actions_without_internal_data(world):
    tw = world.a
    own = make(tw, title="Our action", priority=Priority.CRITICAL)
    make(tw, title="The other partner's action", partner_index=1)
    with tenant_scope(tw.tenant):
        action_escalate(action=own, to=tw.users["executive"], reason="Secret board worry.", by=tw.users["admin"])
    for role in PARTNER:
        client = session(tw, role)
        page = text(client.get(PORTAL))
        assert "Our action" in page and "The other partner" not in page
        page = text(client.get(reverse("portal_action_detail", args=[own.pk])))
        assert "Our action" in page
        assert "Secret board worry." not in page and "Escalat" not in page
        assert 'value="cancelled"' not in page, "cancelling is the program's"


def test_partner_users_comment_report_progress_and_move_their_actions(world):
    tw = world.a
    own = make(tw)
    client = session(tw, "partner_member")
    response = client.post(reverse("portal_action_comment", args=[own.pk]), {"body": "On it."}, **HTMX)
    assert "On it." in text(response)
    client.post(reverse("portal_action_progress", args=[own.pk]), {"percent": "30"})
    client.post(reverse("portal_action_move", args=[own.pk]), {"to": ActionStatus.IN_PROGRESS})
    action = reload(tw, own)
    assert action.progress == 30 and action.status == ActionStatus.IN_PROGRESS
    response = client.post(
        reverse("portal_action_move", args=[own.pk]), {"to": ActionStatus.CANCELLED, "note": "x"}, follow=True
    )
    assert "Only the program&#x27;s people cancel an action." in text(response)
    assert reload(tw, own).status == ActionStatus.IN_PROGRESS
    with tenant_scope(tw.tenant):
        kinds = list(ActionUpdate.objects.filter(action=own).values_list("kind", flat=True))
    assert kinds == [UpdateKind.COMMENT, UpdateKind.PROGRESS, UpdateKind.STATUS]


def test_another_partners_action_is_not_found_in_the_portal(world):
    tw = world.a
    theirs = make(tw, partner_index=1)
    client = session(tw, "partner_admin")
    assert client.get(reverse("portal_action_detail", args=[theirs.pk])).status_code == 404
    for name in ("portal_action_comment", "portal_action_progress", "portal_action_move"):
        response = client.post(reverse(name, args=[theirs.pk]), {"body": "x", "percent": "5", "to": "in_progress"})
        assert response.status_code == 404, name
    assert reload(tw, theirs).status == ActionStatus.OPEN and reload(tw, theirs).progress == 0


@pytest.mark.parametrize("role", PARTNER)
def test_partner_users_find_no_internal_action_pages(world, role):
    tw = world.a
    own = make(tw)
    plan = open_plan(tw, 0, activate=True)
    client = session(tw, role)
    for url in (
        MINE,
        BOARD,
        LIST,
        NEW,
        PLANS,
        reverse("action_detail", args=[own.pk]),
        reverse("plan_detail", args=[plan.pk]),
    ):
        assert client.get(url).status_code == 404, url
    for name in ("action_comment", "action_progress", "action_move", "action_escalate"):
        assert client.post(reverse(name, args=[own.pk]), {"body": "x"}).status_code == 404, name
    for name in ("plan_activate", "plan_milestone_add", "plan_checkpoint_add", "plan_close"):
        assert client.post(reverse(name, args=[plan.pk]), {"status": "cancelled", "note": "x"}).status_code == 404
    with tenant_scope(tw.tenant):
        assert RemediationPlan.objects.get(pk=plan.pk).status == PlanStatus.ACTIVE


@pytest.mark.parametrize("role", INTERNAL)
def test_internal_people_find_no_portal_action_pages(world, role):
    own = make(world.a)
    client = session(world.a, role)
    assert client.get(PORTAL).status_code == 404
    assert client.get(reverse("portal_action_detail", args=[own.pk])).status_code == 404


@pytest.mark.parametrize("role", INTERNAL)
def test_another_tenants_actions_and_plans_are_not_found(world, role):
    foreign = make(world.b)
    plan = open_plan(world.b, 1)  # partner 0 holds the world's own suggested plan
    client = session(world.a, role)
    for url in (reverse("action_detail", args=[foreign.pk]), reverse("plan_detail", args=[plan.pk])):
        assert client.get(url).status_code == 404, url
    for name in ("action_comment", "action_progress", "action_move", "action_escalate"):
        response = client.post(reverse(name, args=[foreign.pk]), {"body": "x", "percent": "5", "to": "in_progress"})
        assert response.status_code == 404, name
    for name in ("plan_activate", "plan_milestone_add", "plan_checkpoint_add", "plan_close"):
        assert client.post(reverse(name, args=[plan.pk]), {"status": "cancelled", "note": "x"}).status_code == 404
    assert reload(world.b, foreign).status == ActionStatus.OPEN
    for url in (LIST, BOARD):
        assert "Globex" not in text(client.get(url))
