"""A review's life: its moves and the refusals of every other move, the frozen pre-read, sharing, amendments."""

from __future__ import annotations

import datetime
import itertools

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.utils import timezone

from actions.models import ActionItem, ActionStatus
from partnerhub.tenancy.context import tenant_scope
from partnerhub.tenancy.models import AuditEvent
from reviews.models import (
    REVIEW_TRANSITIONS,
    CollaborationPrompt,
    CollaborationRating,
    DevelopmentCommitment,
    MeetingNote,
    PartnerVoice,
    Review,
    ReviewDecision,
    ReviewState,
)
from reviews.services.cycles import cycle_add_missing
from reviews.services.lifecycle import review_amend, review_transition, transition_refusal
from reviews.services.workspace import (
    commitment_add,
    decision_record,
    note_add,
    partner_voice_submit,
    rating_set,
    summary_set,
)
from tests.reviews.conftest import add_score, force_state, generate, new_partner, review_of

STATES = list(ReviewState.values)
ILLEGAL = [
    (current, to)
    for current, to in itertools.product(STATES, STATES)
    if to not in REVIEW_TRANSITIONS[ReviewState(current)]
]


@pytest.fixture
def cycle(a):
    return generate(a)


@pytest.fixture
def review(a, cycle):
    return review_of(cycle, a.partners[0])


def move(review, *states, by):
    for state in states:
        review = review_transition(review=review, to=state, by=by)
    return review


def test_there_are_twenty_illegal_moves():
    assert len(ILLEGAL) == 20


@pytest.mark.parametrize(("current", "to"), ILLEGAL)
def test_every_move_the_review_states_do_not_allow_is_refused_with_the_reason(a, review, current, to):
    review = force_state(review, current)

    with pytest.raises(ValidationError) as refused:
        review_transition(review=review, to=to, by=a.users["partner_manager"])

    assert refused.value.messages == [transition_refusal(current, to)]
    review.refresh_from_db()
    assert review.state == current
    assert not AuditEvent.objects.filter(verb__startswith="review.").exists()


@pytest.mark.parametrize(
    ("current", "to", "message"),
    [
        ("finalized", "preparing", "A finalized review cannot go back to preparing; amend it instead."),
        ("shared", "in_meeting", "A shared review cannot go back to in meeting; amend it instead."),
        ("shared", "finalized", "A shared review cannot be taken back from the partner; amend it instead."),
        ("finalized", "finalized", "This review is already finalized."),
        (
            "scheduled",
            "in_meeting",
            "Prepare the review first: moving it to preparing freezes the pre-read the meeting starts from.",
        ),
        ("preparing", "finalized", "The review has not been held yet: start its meeting before finalizing it."),
        ("in_meeting", "shared", "Finalize the review before sharing it with the partner."),
        (
            "in_meeting",
            "preparing",
            "The meeting has started; the review cannot go back to preparing. Finalize it when the meeting ends.",
        ),
        (
            "scheduled",
            "shared",
            "Only a finalized review is shared with the partner: hold the meeting and finalize it first.",
        ),
    ],
)
def test_refusals_say_what_to_do_instead(current, to, message):
    assert transition_refusal(current, to) == message


def test_an_unknown_state_is_refused(a, review):
    with pytest.raises(ValidationError) as refused:
        review_transition(review=review, to="archived", by=a.users["admin"])

    assert refused.value.message_dict == {"to": ["“archived” is not a state of a review."]}


def test_a_review_goes_through_its_states_recording_each_step(a, review, django_capture_on_commit_callbacks):
    manager = a.users["partner_manager"]

    with django_capture_on_commit_callbacks(execute=True):
        review = move(review, "preparing", "scheduled", "preparing", "in_meeting", "finalized", "shared", by=manager)

    review.refresh_from_db()
    assert review.state == ReviewState.SHARED
    assert review.started_at <= review.pre_read_frozen_at <= review.meeting_started_at
    assert review.meeting_started_at <= review.finalized_at <= review.shared_at
    assert review.finalized_by == manager
    assert list(
        AuditEvent.objects.filter(target_type="reviews.review", target_id=str(review.pk))
        .order_by("pk")
        .values_list("verb", "changes")
    ) == [
        ("review.preparing", {"state": ["scheduled", "preparing"]}),
        ("review.scheduled", {"state": ["preparing", "scheduled"]}),
        ("review.preparing", {"state": ["scheduled", "preparing"]}),
        ("review.in_meeting", {"state": ["preparing", "in_meeting"]}),
        ("review.finalized", {"state": ["in_meeting", "finalized"]}),
        ("review.shared", {"state": ["finalized", "shared"]}),
    ]


def test_sharing_emails_each_of_the_partners_people_once_committed(a, review, django_capture_on_commit_callbacks):
    manager = a.users["partner_manager"]
    review = move(review, "preparing", "in_meeting", by=manager)
    summary_set(review=review, summary="A strong quarter; training is next.", by=manager)
    review = move(review, "finalized", by=manager)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        review_transition(review=review, to="shared", by=manager)
    assert mail.outbox == []  # nothing is sent before the commit
    for callback in callbacks:
        callback()

    assert sorted(message.to[0] for message in mail.outbox) == ["partner_admin@acme.test", "partner_member@acme.test"]
    message = mail.outbox[0]
    assert message.subject == "[PartnerHub] Your quarterly business review for FY2026-Q3 with Acme is ready"
    assert "A strong quarter; training is next." in message.body
    assert "http://127.0.0.1:8000/portal/" in message.body


def test_a_refused_share_emails_nobody(a, review, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ValidationError):
        review_transition(review=review, to="shared", by=a.users["partner_manager"])

    assert mail.outbox == []


@pytest.mark.parametrize("role", ["executive", "partner_admin", "partner_member"])
def test_only_people_who_run_reviews_move_them(a, review, role):
    with pytest.raises(PermissionDenied):
        review_transition(review=review, to="preparing", by=a.users[role])


def test_another_workspaces_review_is_not_found(a, review, world):
    with tenant_scope(world.b.tenant), pytest.raises(Http404):
        review_transition(review=review, to="preparing", by=world.b.users["admin"])

    review.refresh_from_db()
    assert review.state == ReviewState.SCHEDULED


# --- The pre-read ------------------------------------------------------------------------------------------


def action(a, partner, title, *, due_on, status=ActionStatus.OPEN):
    return ActionItem.objects.create(
        partner=partner,
        title=title,
        due_on=due_on,
        status=status,
        owner=a.users["partner_manager"],
        completed_at=timezone.now() if status == ActionStatus.DONE else None,
    )


@pytest.fixture
def previous_review(a):
    """Last quarter's review of partner 1, finalized with a commitment and a decision."""
    manager = a.users["partner_manager"]
    earlier = review_of(
        generate(a, period="FY2026-Q2", opens_on=datetime.date(2026, 7, 1), due_on=datetime.date(2026, 7, 31)),
        a.partners[0],
    )
    earlier = move(earlier, "preparing", "in_meeting", by=manager)
    commitment_add(
        review=earlier, party="partner", text="Certify two engineers", due_on=datetime.date(2026, 9, 30), by=manager
    )
    decision_record(
        review=earlier,
        decision="Co-fund the autumn campaign",
        rationale="Pipeline is strong",
        decided_by_name="CEO",
        by=manager,
    )
    return move(earlier, "finalized", by=manager)


def test_preparing_freezes_the_pre_read(a, review, previous_review):
    open_item = action(a, a.partners[0], "Publish the joint case study", due_on=datetime.date(2026, 10, 1))
    action(a, a.partners[0], "Done already", due_on=datetime.date(2026, 9, 1), status=ActionStatus.DONE)
    action(a, a.partners[1], "Another partner's", due_on=datetime.date(2026, 9, 1))

    review = review_transition(review=review, to="preparing", by=a.users["partner_manager"])

    review.refresh_from_db()
    pre_read = review.pre_read
    assert pre_read["period"] == "FY2026-Q3"
    assert pre_read["score"] | {"id": None, "version_id": None} == {
        "id": None,
        "period": "FY2026-Q3",
        "total": 89.5,
        "rating": "excellent",
        "rating_label": "Excellent",
        "change": 11.25,
        "completeness": 1.0,
        "rank": 1,
        "percentile": pre_read["score"]["percentile"],
        "segment": "reseller",
        "version_id": None,
    }
    assert [c["metric_key"] for c in pre_read["components"]] == [
        "pipeline_created",
        "customer_satisfaction",
        "training_completion_rate",
    ]
    assert pre_read["explanation"]["previous_period"] == "FY2026-Q2"
    assert pre_read["flags"] == []
    assert {b["metric_key"] for b in pre_read["benchmarks"]} >= {"pipeline_created", "customer_satisfaction"}
    assert pre_read["open_actions"] == [
        {
            "id": open_item.pk,
            "title": "Publish the joint case study",
            "status": "open",
            "priority": "medium",
            "due_on": "2026-10-01",
            "overdue": open_item.is_overdue(timezone.localdate()),
            "progress": 0,
            "owner": a.users["partner_manager"].get_full_name(),
        }
    ]
    previous = pre_read["previous_review"]
    assert (previous["id"], previous["period"]) == (previous_review.pk, "FY2026-Q2")
    assert previous["commitments"] == [
        {"party": "partner", "text": "Certify two engineers", "due_on": "2026-09-30", "action_item_id": None}
    ]
    assert previous["decisions"] == [
        {"decision": "Co-fund the autumn campaign", "rationale": "Pipeline is strong", "decided_by": "CEO"}
    ]


def test_the_pre_read_never_changes_once_frozen(a, review, previous_review):
    manager = a.users["partner_manager"]
    item = action(a, a.partners[0], "Publish the joint case study", due_on=datetime.date(2026, 10, 1))
    review = review_transition(review=review, to="preparing", by=manager)
    review.refresh_from_db()
    frozen, frozen_at = review.pre_read, review.pre_read_frozen_at

    # The score is recomputed, the action is done and a new one opened, last quarter's review amended.
    add_score(a, a.partners[0], total="41.5", rating="needs_improvement", change="-48", regression=True)
    item.status, item.completed_at = ActionStatus.DONE, timezone.now()
    item.save()
    action(a, a.partners[0], "A new action", due_on=datetime.date(2026, 12, 1))
    amendment = review_amend(review=previous_review, reason="The decision was misquoted", by=manager)
    commitment_add(review=amendment, party="vendor", text="Fund the lab", by=manager)
    # Sent back to scheduled and prepared again, and on to the meeting.
    review = move(review, "scheduled", "preparing", "in_meeting", by=manager)

    review.refresh_from_db()
    assert review.pre_read == frozen
    assert review.pre_read_frozen_at == frozen_at
    assert review.pre_read["score"]["total"] == 89.5
    assert [entry["title"] for entry in review.pre_read["open_actions"]] == ["Publish the joint case study"]


def test_a_partner_without_a_score_gets_an_empty_pre_read_score(a, cycle):
    unscored = new_partner(a, "Unscored")
    cycle_add_missing(cycle=cycle, by=a.users["admin"])

    review = review_transition(review=review_of(cycle, unscored), to="preparing", by=a.users["admin"])

    review.refresh_from_db()
    assert review.pre_read["score"] is None
    assert review.pre_read["components"] == review.pre_read["benchmarks"] == review.pre_read["open_actions"] == []
    assert review.pre_read["previous_review"] is None


# --- Amendments --------------------------------------------------------------------------------------------


@pytest.fixture
def finalized(a, review):
    """Partner 1's review held and finalized with something in every part of the workspace."""
    manager = a.users["partner_manager"]
    partner_voice_submit(review=review, wins="Two enterprise logos", by=a.users["partner_admin"])
    review = move(review, "preparing", "in_meeting", by=manager)
    rating_set(review=review, prompt=CollaborationPrompt.objects.get(key="communication"), score=4, by=manager)
    commitment_add(review=review, party="vendor", text="Provide a demo lab", by=manager)
    note_add(review=review, body="Internal: margin pressure", by=manager)
    note_add(review=review, body="Shared: great quarter", visibility="shared", by=manager)
    decision_record(review=review, decision="Renew the MDF", rationale="Strong pipeline", by=manager)
    summary_set(review=review, summary="Great quarter.", by=manager)
    return move(review, "finalized", by=manager)


def workspace_rows(review):
    return {
        "ratings": list(CollaborationRating.objects.filter(review=review).values_list("prompt__key", "score")),
        "commitments": list(DevelopmentCommitment.objects.filter(review=review).values_list("party", "text")),
        "notes": list(MeetingNote.objects.filter(review=review).order_by("pk").values_list("visibility", "body")),
        "decisions": list(ReviewDecision.objects.filter(review=review).values_list("decision", "rationale")),
        "voice": list(PartnerVoice.objects.filter(review=review).values_list("wins", flat=True)),
    }


def test_amending_starts_a_new_revision_with_everything_the_review_held(a, finalized):
    old_rows = workspace_rows(finalized)

    amendment = review_amend(review=finalized, reason="The MDF amount was wrong", by=a.users["partner_manager"])

    assert (amendment.revision, amendment.amends, amendment.state) == (2, finalized, ReviewState.IN_MEETING)
    assert amendment.amendment_reason == "The MDF amount was wrong"
    assert (amendment.cycle, amendment.partner, amendment.summary) == (
        finalized.cycle,
        finalized.partner,
        "Great quarter.",
    )
    assert amendment.pre_read == finalized.pre_read and amendment.pre_read_frozen_at == finalized.pre_read_frozen_at
    assert amendment.finalized_at is None
    assert workspace_rows(amendment) == old_rows
    assert list(Review.objects.current().filter(cycle=finalized.cycle, partner=finalized.partner)) == [amendment]
    assert AuditEvent.objects.filter(verb="review.amended", target_id=str(amendment.pk)).exists()


def test_the_amended_revision_stays_as_it_was(a, finalized):
    manager = a.users["partner_manager"]
    old_rows = workspace_rows(finalized)
    finalized_at = finalized.finalized_at

    amendment = review_amend(review=finalized, reason="The MDF amount was wrong", by=manager)
    decision_record(review=amendment, decision="Renew the MDF at 20k", rationale="Corrected amount", by=manager)
    note_add(review=amendment, body="Corrected in revision 2", by=manager)
    summary_set(review=amendment, summary="Great quarter (corrected).", by=manager)
    move(amendment, "finalized", "shared", by=manager)

    finalized.refresh_from_db()
    assert (finalized.state, finalized.finalized_at, finalized.summary) == ("finalized", finalized_at, "Great quarter.")
    assert workspace_rows(finalized) == old_rows
    with pytest.raises(ValidationError) as refused:
        note_add(review=finalized, body="Sneaking in", by=manager)
    assert refused.value.messages == ["This review is finalized and can no longer change; amend it to record a change."]
    with pytest.raises(ValidationError) as refused:
        review_transition(review=finalized, to="shared", by=manager)
    assert refused.value.messages == ["This revision has been amended; share the latest revision instead."]


def test_a_revision_is_amended_once_and_only_when_closed(a, review, finalized):
    manager = a.users["partner_manager"]
    review_amend(review=finalized, reason="First correction", by=manager)

    with pytest.raises(ValidationError) as refused:
        review_amend(review=finalized, reason="Second correction", by=manager)
    assert refused.value.messages == ["Revision 2 already amends this review; amend the latest revision."]

    open_review = review_of(review.cycle, a.partners[1])
    with pytest.raises(ValidationError) as refused:
        review_amend(review=open_review, reason="Nothing to amend", by=manager)
    assert refused.value.messages == [
        "Only a finalized or shared review is amended; change this one directly while it is open."
    ]

    with pytest.raises(ValidationError) as refused:
        review_amend(review=Review.objects.get(revision=2), reason=" ", by=manager)
    assert refused.value.message_dict == {"reason": ["Write the reason for the amendment."]}


def test_an_amendment_of_a_shared_review_leaves_the_shared_revision_with_the_partner(a, finalized):
    manager = a.users["partner_manager"]
    shared = review_transition(review=finalized, to="shared", by=manager)

    amendment = review_amend(review=shared, reason="Add the forecast", by=manager)

    shared.refresh_from_db()
    assert (shared.state, amendment.state, amendment.revision) == ("shared", "in_meeting", 2)
