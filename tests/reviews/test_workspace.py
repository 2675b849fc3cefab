"""The review workspace's writes: ratings, commitments, notes, decisions, summary, the partner's voice."""

from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404

from actions.models import ActionItem
from partnerhub.tenancy.context import tenant_scope
from partnerhub.tenancy.models import AuditEvent
from reviews.models import CollaborationPrompt, CollaborationRating, PartnerVoice, ReviewState
from reviews.selectors import partner_reviews, review_workspace
from reviews.services.cycles import cycle_close, cycle_reopen
from reviews.services.prompts import prompt_deactivate
from reviews.services.workspace import (
    VOICE_CLOSED,
    commitment_add,
    decision_record,
    note_add,
    partner_voice_submit,
    rating_set,
    summary_set,
)
from tests.reviews.conftest import force_state, generate, review_of


@pytest.fixture
def review(a):
    return review_of(generate(a), a.partners[0])


@pytest.fixture
def manager(a):
    return a.users["partner_manager"]


def prompt(key="communication"):
    return CollaborationPrompt.objects.get(key=key)


# --- Ratings -----------------------------------------------------------------------------------------------


def test_rating_a_prompt_again_replaces_its_rating(a, review, manager):
    rating_set(review=review, prompt=prompt(), score=2, by=manager)
    rating_set(review=review, prompt=prompt(), score="4", comment="Weekly calls now", by=manager)

    rating = CollaborationRating.objects.get(review=review)
    assert (rating.prompt.key, rating.score, rating.comment, rating.rated_by) == (
        "communication",
        4,
        "Weekly calls now",
        manager,
    )
    assert list(
        AuditEvent.objects.filter(verb="review.rating_set").order_by("pk").values_list("changes", flat=True)
    ) == [
        {"prompt": [None, "communication"], "score": [None, 2], "comment": [None, ""]},
        {"prompt": [None, "communication"], "score": [2, 4], "comment": ["", "Weekly calls now"]},
    ]


@pytest.mark.parametrize("score", [0, 6, 3.5, "five", None, True])
def test_ratings_go_from_one_to_five(a, review, manager, score):
    with pytest.raises(ValidationError) as refused:
        rating_set(review=review, prompt=prompt(), score=score, by=manager)

    assert refused.value.message_dict == {"score": ["Rate from 1 (poor) to 5 (excellent), in whole numbers."]}
    assert not CollaborationRating.objects.exists()


def test_a_prompt_no_longer_asked_cannot_be_rated(a, review, manager):
    prompt_deactivate(prompt=prompt(), by=a.users["admin"])

    with pytest.raises(ValidationError) as refused:
        rating_set(review=review, prompt=prompt(), score=3, by=manager)

    assert refused.value.message_dict == {"prompt": ["“Communication” is no longer asked; rate the prompts in use."]}


def test_another_workspaces_prompt_is_not_found(a, review, manager, world):
    with tenant_scope(world.b.tenant):
        foreign = CollaborationPrompt.objects.get(key="communication")

    with pytest.raises(Http404):
        rating_set(review=review, prompt=foreign, score=3, by=manager)


# --- Commitments, notes, decisions, summary -----------------------------------------------------------------


def test_commitments_notes_decisions_and_the_summary_are_recorded_and_audited(a, review, manager):
    item = ActionItem.objects.create(partner=a.partners[0], title="Certify", due_on=datetime.date(2026, 12, 1))

    commitment = commitment_add(
        review=review,
        party="partner",
        text=" Certify two engineers ",
        due_on=datetime.date(2026, 12, 1),
        action_item=item,
        by=manager,
    )
    note = note_add(review=review, body="They want MDF", visibility="shared", by=manager)
    decision = decision_record(review=review, decision="Fund the lab", rationale="Pipeline doubled", by=manager)
    by_partner = decision_record(
        review=review,
        decision="Hire a presales engineer",
        rationale="Demos are the bottleneck",
        decided_by=a.users["partner_admin"],
        by=manager,
    )
    review = summary_set(review=review, summary="A good quarter.", by=manager)

    assert (commitment.party, commitment.text, commitment.action_item, commitment.created_by) == (
        "partner",
        "Certify two engineers",
        item,
        manager,
    )
    assert (note.visibility, note.author) == ("shared", manager)
    assert (decision.decided_by, decision.recorded_by) == (manager, manager)
    assert by_partner.decided_by == a.users["partner_admin"]
    assert review.summary == "A good quarter."
    assert list(
        AuditEvent.objects.filter(verb__startswith="review.").order_by("pk").values_list("verb", flat=True)
    ) == [
        "review.commitment_added",
        "review.note_added",
        "review.decision_recorded",
        "review.decision_recorded",
        "review.summary_set",
    ]


def test_workspace_input_is_checked_field_by_field(a, review, manager, world):
    other_partners_item = ActionItem.objects.create(
        partner=a.partners[1], title="Other", due_on=datetime.date(2026, 12, 1)
    )

    with pytest.raises(ValidationError) as refused:
        commitment_add(review=review, party="both", text="x", by=manager)
    assert refused.value.message_dict == {"party": ["Say who commits: we (vendor) or the partner."]}
    with pytest.raises(ValidationError) as refused:
        commitment_add(review=review, party="vendor", text="  ", by=manager)
    assert refused.value.message_dict == {"text": ["Write the commitment."]}
    with pytest.raises(ValidationError) as refused:
        commitment_add(review=review, party="vendor", text="x", action_item=other_partners_item, by=manager)
    assert refused.value.message_dict == {"action_item": ["Choose an action item of this partner."]}
    with pytest.raises(ValidationError) as refused:
        note_add(review=review, body="x", visibility="public", by=manager)
    assert refused.value.message_dict == {
        "visibility": ["Say who reads the note: internal only, or shared with the partner."]
    }
    with pytest.raises(ValidationError) as refused:
        decision_record(review=review, decision="Fund the lab", rationale="", by=manager)
    assert refused.value.message_dict == {"rationale": ["Write the reason for the decision."]}
    with pytest.raises(ValidationError) as refused:
        decision_record(
            review=review, decision="x", rationale="y", decided_by=world.b.users["partner_admin"], by=manager
        )
    assert refused.value.message_dict == {"decided_by": ["Choose one of our people or of this partner's people."]}
    with pytest.raises(ValidationError) as refused:
        summary_set(review=review, summary="x" * 8001, by=manager)
    assert refused.value.message_dict == {"summary": ["Keep the summary under 8,000 characters (8,001 now)."]}


WRITES = {
    "rating": lambda review, by: rating_set(review=review, prompt=prompt(), score=3, by=by),
    "commitment": lambda review, by: commitment_add(review=review, party="vendor", text="More", by=by),
    "note": lambda review, by: note_add(review=review, body="Later", by=by),
    "decision": lambda review, by: decision_record(review=review, decision="d", rationale="r", by=by),
    "summary": lambda review, by: summary_set(review=review, summary="Changed", by=by),
}


@pytest.mark.parametrize("write", sorted(WRITES))
@pytest.mark.parametrize(
    ("state", "message"),
    [
        ("finalized", "This review is finalized and can no longer change; amend it to record a change."),
        ("shared", "This review is shared with the partner and can no longer change; amend it to record a change."),
    ],
)
def test_a_closed_review_refuses_every_workspace_write(a, review, manager, write, state, message):
    review = force_state(review, state)
    events = AuditEvent.objects.count()

    with pytest.raises(ValidationError) as refused:
        WRITES[write](review, manager)

    assert refused.value.messages == [message]
    assert AuditEvent.objects.count() == events


@pytest.mark.parametrize("state", ["finalized", "shared"])
def test_a_closed_review_refuses_the_partners_voice_too(a, review, state):
    review = force_state(review, state)

    with pytest.raises(ValidationError) as refused:
        partner_voice_submit(review=review, wins="Late news", by=a.users["partner_admin"])

    assert refused.value.messages == [VOICE_CLOSED]


@pytest.mark.parametrize("write", sorted(WRITES))
@pytest.mark.parametrize("role", ["executive", "partner_admin"])
def test_only_people_who_run_reviews_write_the_workspace(a, review, write, role):
    with pytest.raises(PermissionDenied):
        WRITES[write](review, a.users[role])


@pytest.mark.parametrize("state", ["scheduled", "preparing", "in_meeting"])
def test_an_open_review_takes_workspace_writes_in_every_open_state(a, review, manager, state):
    review = force_state(review, state)

    for write in WRITES.values():
        write(review, manager)

    assert AuditEvent.objects.filter(verb__startswith="review.").count() == len(WRITES)


# --- The partner's voice ------------------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["scheduled", "preparing"])
def test_the_partners_people_submit_their_voice_before_the_meeting(a, review, state):
    review = force_state(review, state)

    partner_voice_submit(review=review, wins="Two logos", risks="A key rep leaves", by=a.users["partner_member"])
    partner_voice_submit(review=review, wins="Three logos", asks="MDF", by=a.users["partner_admin"])

    voice = PartnerVoice.objects.get(review=review)
    assert (voice.wins, voice.asks, voice.risks, voice.submitted_by) == (
        "Three logos",
        "MDF",
        "",
        a.users["partner_admin"],
    )
    assert list(
        AuditEvent.objects.filter(verb="review.voice_submitted").order_by("pk").values_list("changes", flat=True)
    ) == [
        {"wins": [None, "Two logos"], "risks": [None, "A key rep leaves"]},
        {"wins": ["Two logos", "Three logos"], "asks": ["", "MDF"], "risks": ["A key rep leaves", ""]},
    ]


def test_the_partners_voice_is_closed_once_the_meeting_starts(a, review):
    review = force_state(review, ReviewState.IN_MEETING)

    with pytest.raises(ValidationError) as refused:
        partner_voice_submit(review=review, wins="Two logos", by=a.users["partner_admin"])

    assert refused.value.messages == [
        "The review meeting has started, so the partner's input for it is closed; tell your partner manager "
        "anything new."
    ]
    assert not PartnerVoice.objects.exists()


def test_an_empty_voice_is_refused(a, review):
    with pytest.raises(ValidationError) as refused:
        partner_voice_submit(review=review, wins="  ", by=a.users["partner_admin"])

    assert refused.value.messages == ["Write at least one of wins, lessons learned, needs, asks, forecast or risks."]


def test_another_partners_people_are_told_the_review_does_not_exist(a, review):
    with pytest.raises(Http404) as refused:
        partner_voice_submit(review=review, wins="Not ours", by=a.users["other_partner_admin"])

    assert str(refused.value) == "No such review."
    assert not PartnerVoice.objects.exists()


def test_another_workspaces_partner_people_are_told_the_review_does_not_exist(a, review, world):
    stranger = world.b.users["partner_admin"]

    # In our workspace they are nobody; in theirs, our review is not there.
    with pytest.raises(Http404) as as_stranger:
        partner_voice_submit(review=review, wins="Not ours", by=stranger)
    with tenant_scope(world.b.tenant), pytest.raises(Http404) as from_their_workspace:
        partner_voice_submit(review=review, wins="Not ours", by=stranger)

    assert str(as_stranger.value) == str(from_their_workspace.value) == "No such review."
    assert not PartnerVoice.objects.exists()


def test_internal_people_do_not_submit_the_partners_voice(a, review, manager):
    with pytest.raises(PermissionDenied):
        partner_voice_submit(review=review, wins="On their behalf", by=manager)


def test_a_review_left_unheld_when_its_cycle_closed_takes_no_more_input_and_leaves_the_portal(a, review):
    cycle_close(cycle=review.cycle, by=a.users["admin"], confirm_unfinished=True)

    with pytest.raises(ValidationError) as refused:
        partner_voice_submit(review=review, wins="Two logos", by=a.users["partner_admin"])

    assert refused.value.code == "voice_closed"
    assert "has closed and this review will not be held" in refused.value.messages[0]
    assert not PartnerVoice.objects.exists()
    assert review not in partner_reviews(viewer=a.users["partner_admin"])
    with pytest.raises(Http404):
        review_workspace(review_id=review.pk, viewer=a.users["partner_admin"])

    cycle_reopen(cycle=review.cycle, by=a.users["admin"])
    assert review in partner_reviews(viewer=a.users["partner_admin"])
    partner_voice_submit(review=review, wins="Two logos", by=a.users["partner_admin"])
