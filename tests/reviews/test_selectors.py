"""Reads for reviews: queues, a cycle's lists, what each viewer sees of a review, tenant isolation."""

from __future__ import annotations

import pytest
from django.db import connection
from django.http import Http404
from django.test.utils import CaptureQueriesContext

from partnerhub.tenancy.context import tenant_scope
from reviews.models import CollaborationPrompt, ReviewState, ReviewTrack
from reviews.selectors import (
    cycle_detailed,
    cycle_memo,
    cycle_monitored,
    partner_reviews,
    review_workspace,
    reviews_for_manager,
)
from reviews.services.cycles import cycle_add_missing
from reviews.services.lifecycle import review_amend, review_transition
from reviews.services.workspace import (
    commitment_add,
    decision_record,
    note_add,
    partner_voice_submit,
    rating_set,
    summary_set,
)
from tests.reviews.conftest import force_state, generate, new_manager, new_partner, review_of


@pytest.fixture
def cycle(a):
    return generate(a, capacity=1)


@pytest.fixture
def review(a, cycle):
    return review_of(cycle, a.partners[0])


def move(review, *states, by):
    for state in states:
        review = review_transition(review=review, to=state, by=by)
    return review


@pytest.fixture
def held(a, review):
    """Partner 1's review in its meeting, with an internal and a shared note and the rest of the workspace."""
    manager = a.users["partner_manager"]
    partner_voice_submit(review=review, wins="Two logos", by=a.users["partner_admin"])
    review = move(review, "preparing", "in_meeting", by=manager)
    rating_set(review=review, prompt=CollaborationPrompt.objects.get(key="responsiveness"), score=5, by=manager)
    commitment_add(review=review, party="vendor", text="Provide a demo lab", by=manager)
    note_add(review=review, body="Internal: their margin is thin", by=manager)
    note_add(review=review, body="Next step: joint webinar", visibility="shared", by=manager)
    decision_record(review=review, decision="Renew the MDF", rationale="Strong pipeline", by=manager)
    summary_set(review=review, summary="Great quarter.", by=manager)
    return review


# --- Queues and lists --------------------------------------------------------------------------------------


def test_a_managers_upcoming_reviews_are_their_open_latest_revisions(a, cycle):
    manager = new_manager(a, "mia@acme.test")
    mine = [new_partner(a, name, manager=manager) for name in ("Kilo", "Lima", "Mike")]
    cycle_add_missing(cycle=cycle, by=a.users["admin"])
    finalized = force_state(review_of(cycle, mine[2]), ReviewState.FINALIZED)
    amended = review_amend(review=finalized, reason="Fix", by=a.users["admin"])

    upcoming = list(reviews_for_manager(manager=manager))

    assert [(r.partner.name, r.revision) for r in upcoming] == [("Kilo", 1), ("Lima", 1), ("Mike", 2)]
    assert upcoming[2] == amended


def test_a_cycles_detailed_and_monitored_lists_take_one_query_each_whatever_their_length(
    a, cycle, django_assert_num_queries
):
    manager = new_manager(a, "mia@acme.test")
    for n in range(12):
        new_partner(a, f"Partner {n:02d}", manager=manager)
    cycle_add_missing(cycle=cycle, by=a.users["admin"])

    with django_assert_num_queries(2):
        detailed = [
            (r.partner.name, r.partner.partner_type.key, r.manager and r.manager.email) for r in cycle_detailed(cycle)
        ]
        monitored = [(r.partner.name, r.priority) for r in cycle_monitored(cycle)]

    assert detailed == [("Partner 00", "reseller", "mia@acme.test"), ("Acme Partner 2", "reseller", None)]
    assert len(monitored) == 12
    assert (monitored[0], monitored[-1]) == (("Partner 01", 2), ("Acme Partner 1", 2))


# --- What each viewer sees of a review ---------------------------------------------------------------------


def test_internal_people_see_the_whole_workspace(a, held):
    workspace = review_workspace(review_id=held.pk, viewer=a.users["executive"])

    assert workspace.audience == "internal"
    assert workspace.review == held
    assert [note.body for note in workspace.notes] == ["Internal: their margin is thin", "Next step: joint webinar"]
    assert [prompt.key for prompt in workspace.prompts] == [
        "responsiveness",
        "communication",
        "customer_alignment",
        "joint_planning",
    ]
    assert {prompt_id: rating.score for prompt_id, rating in workspace.ratings.items()} == {
        CollaborationPrompt.objects.get(key="responsiveness").pk: 5
    }
    assert [c.text for c in workspace.commitments] == ["Provide a demo lab"]
    assert [d.decision for d in workspace.decisions] == ["Renew the MDF"]
    assert workspace.voice.wins == "Two logos"
    assert workspace.summary == "Great quarter."
    assert workspace.can_edit is False  # executives read
    assert review_workspace(review_id=held.pk, viewer=a.users["partner_manager"]).can_edit is True


@pytest.mark.parametrize("role", ["partner_admin", "partner_member"])
def test_partner_users_see_a_shared_review_without_internal_notes_or_internal_fields(a, held, role):
    move(held, "finalized", "shared", by=a.users["partner_manager"])

    workspace = review_workspace(review_id=held.pk, viewer=a.users[role])

    assert workspace.audience == "partner"
    assert workspace.review is None  # the pre-read and the ranking by need stay internal
    assert [note.body for note in workspace.notes] == ["Next step: joint webinar"]
    assert all(note.visibility == "shared" for note in workspace.notes)
    assert workspace.summary == "Great quarter."
    assert [c.text for c in workspace.commitments] == ["Provide a demo lab"]
    assert [d.decision for d in workspace.decisions] == ["Renew the MDF"]
    assert [p.key for p in workspace.prompts] == ["responsiveness"]
    assert workspace.voice.wins == "Two logos"
    assert (workspace.header.state, workspace.header.partner, workspace.can_edit) == ("shared", "Acme Partner 1", False)


def test_no_query_of_a_partner_users_workspace_loads_an_internal_note(a, held):
    move(held, "finalized", "shared", by=a.users["partner_manager"])

    with CaptureQueriesContext(connection) as queries:
        review_workspace(review_id=held.pk, viewer=a.users["partner_member"])

    note_reads = [q["sql"] for q in queries.captured_queries if "reviews_meetingnote" in q["sql"]]
    assert len(note_reads) == 1
    assert "visibility" in note_reads[0]


@pytest.mark.parametrize("state", ["scheduled", "preparing"])
def test_partner_users_see_only_the_input_form_of_a_review_before_its_meeting(a, review, state):
    note_add(review=review, body="Internal prep", by=a.users["partner_manager"])
    summary_set(review=review, summary="Draft summary", by=a.users["partner_manager"])
    review = force_state(review, state)

    workspace = review_workspace(review_id=review.pk, viewer=a.users["partner_member"])

    assert (workspace.audience, workspace.can_submit_voice, workspace.review) == ("partner", True, None)
    assert workspace.notes == workspace.commitments == workspace.decisions == []
    assert workspace.summary == ""


@pytest.mark.parametrize("state", ["in_meeting", "finalized"])
def test_partner_users_do_not_see_a_review_between_its_meeting_and_its_sharing(a, held, state):
    review = force_state(held, state)

    with pytest.raises(Http404):
        review_workspace(review_id=review.pk, viewer=a.users["partner_admin"])


def test_another_partners_people_do_not_see_the_review_at_all(a, held):
    move(held, "finalized", "shared", by=a.users["partner_manager"])

    with pytest.raises(Http404) as refused:
        review_workspace(review_id=held.pk, viewer=a.users["other_partner_admin"])
    with pytest.raises(Http404) as missing:
        review_workspace(review_id=held.pk + 1000, viewer=a.users["other_partner_admin"])

    assert str(refused.value) == str(missing.value) == "No such review."


@pytest.mark.parametrize("review_id", ["abc", "-1", "99999999999999999999999", "", None, "1; drop"])
def test_a_review_id_that_is_not_one_is_not_found(a, review_id):
    with pytest.raises(Http404):
        review_workspace(review_id=review_id, viewer=a.users["admin"])


def test_partner_users_list_their_shared_reviews_and_those_awaiting_their_input(a, held, cycle):
    manager = a.users["partner_manager"]
    shared = move(held, "finalized", "shared", by=manager)
    later = generate(a, period="FY2026-Q4")
    amendment = review_amend(review=shared, reason="Fix", by=manager)

    # The amendment is in its meeting: the partner keeps the shared revision until it is shared.
    assert partner_reviews(viewer=a.users["partner_member"]) == [review_of(later, a.partners[0]), shared]
    assert partner_reviews(viewer=a.users["other_partner_admin"]) == [
        review_of(later, a.partners[1]),
        review_of(cycle, a.partners[1]),
    ]
    move(amendment, "finalized", "shared", by=manager)
    assert partner_reviews(viewer=a.users["partner_member"]) == [review_of(later, a.partners[0]), amendment]
    assert partner_reviews(viewer=a.users["partner_manager"]) == []


# --- Tenant isolation --------------------------------------------------------------------------------------


def test_no_read_crosses_into_another_workspace(a, held, cycle, world):
    move(held, "finalized", "shared", by=a.users["partner_manager"])
    b = world.b

    with tenant_scope(b.tenant):
        assert list(cycle_detailed(cycle)) == list(cycle_monitored(cycle)) == []
        assert list(reviews_for_manager(manager=a.users["partner_manager"])) == []
        assert partner_reviews(viewer=a.users["partner_admin"]) == []
        for viewer in (b.users["admin"], b.users["partner_admin"], a.users["admin"], a.users["partner_admin"]):
            with pytest.raises(Http404):
                review_workspace(review_id=held.pk, viewer=viewer)
        with pytest.raises(Http404):
            cycle_memo(cycle=cycle)


def test_a_viewer_of_another_workspace_is_nobody_here(a, held, world):
    with pytest.raises(Http404):
        review_workspace(review_id=held.pk, viewer=world.b.users["admin"])


def test_tracks_are_what_the_cycle_gave(a, cycle):
    assert set(cycle.reviews.values_list("track", flat=True)) == {ReviewTrack.DETAILED, ReviewTrack.MONITORED}
