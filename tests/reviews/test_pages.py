"""Review pages: my reviews, cycles and their memo, the review workspace, and the partner's reviews in the portal."""

from __future__ import annotations

import csv
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from partnerhub.partners.models import Partner
from partnerhub.tenancy.context import tenant_scope
from reviews.models import (
    CadenceRule,
    CollaborationPrompt,
    CollaborationRating,
    MeetingNote,
    NoteVisibility,
    PartnerVoice,
    Review,
    ReviewCycle,
    ReviewState,
)
from reviews.services.workspace import note_add, summary_set
from tests.clients import session
from tests.reviews.conftest import force_state, generate, new_partner, review_of

INTERNAL = ("admin", "partner_manager", "executive")
PARTNER = ("partner_admin", "partner_member")
MINE = reverse("review_mine")
CYCLES = reverse("review_cycles")
PORTAL = reverse("portal_reviews")
MOVE_PREPARE = 'name="to" value="preparing"'


def text(response) -> str:
    return response.content.decode()


@pytest.fixture
def cycle(a):
    """Tenant a's FY2026-Q3 business reviews, its partners managed by the partner manager."""
    Partner.objects.update(manager=a.users["partner_manager"])
    return generate(a)


@pytest.fixture
def review(a, cycle):
    return review_of(cycle, a.partners[0])


def shared_review(a, review) -> Review:
    """The review shared with the partner, with one internal and one shared note."""
    manager = a.users["partner_manager"]
    note_add(review=review, body="Internal: margin pressure, keep quiet", by=manager)
    note_add(review=review, body="Agreed on the joint webinar", visibility=NoteVisibility.SHARED, by=manager)
    summary_set(review=review, summary="A good quarter overall.", by=manager)
    return force_state(review, ReviewState.SHARED)


def b_review(b) -> Review:
    """A review of tenant b (the world may hold one already)."""
    from reviews.services.cadences import cadence_rule_create

    if b.extra.get("review") is not None:
        return b.extra["review"]
    with tenant_scope(b.tenant):
        if not CadenceRule.objects.filter(kind="qbr").exists():
            cadence_rule_create(kind="qbr", by=b.users["admin"])
        return review_of(generate(b, period="FY2026-Q1"), b.partners[0])


# --- My reviews and cycles -------------------------------------------------------------------------------------


def test_my_reviews_lists_the_managers_upcoming_reviews_by_due_date_with_their_state(a, cycle, review):
    force_state(review, ReviewState.PREPARING)
    response = session(a, "partner_manager").get(MINE)
    body = text(response)
    assert response.status_code == 200
    assert a.partners[0].name in body and a.partners[1].name in body
    assert "Preparing" in body and reverse("review_detail", args=[review.pk]) in body


def test_my_reviews_says_so_when_there_are_none(a, cycle):
    response = session(a, "executive").get(MINE)
    assert response.status_code == 200
    assert "No upcoming reviews" in text(response)


@pytest.mark.parametrize("role", PARTNER)
def test_partner_users_do_not_find_the_internal_review_pages(a, review, role):
    client = session(a, role)
    for url in (
        MINE,
        CYCLES,
        reverse("review_cycle", args=[review.cycle_id]),
        reverse("review_cycle_memo", args=[review.cycle_id]),
        reverse("review_cycle_memo_csv", args=[review.cycle_id]),
        reverse("review_detail", args=[review.pk]),
    ):
        assert client.get(url).status_code == 404, url
    assert client.post(reverse("review_move", args=[review.pk]), {"to": "preparing"}).status_code == 404


def test_another_tenants_cycle_and_review_are_not_found(a, cycle, b):
    foreign = b_review(b)
    client = session(a, "admin")
    for url in (
        reverse("review_cycle", args=[foreign.cycle_id]),
        reverse("review_cycle_memo", args=[foreign.cycle_id]),
        reverse("review_cycle_memo_csv", args=[foreign.cycle_id]),
        reverse("review_detail", args=[foreign.pk]),
        reverse("review_detail", args=[2**63]),
    ):
        assert client.get(url).status_code == 404, url
    response = client.post(reverse("review_move", args=[foreign.pk]), {"to": "preparing"})
    assert response.status_code == 404
    with tenant_scope(b.tenant):
        assert Review.objects.get(pk=foreign.pk).state == ReviewState.SCHEDULED


def test_admins_generate_a_cycle_and_a_refused_one_says_why(a):
    client = session(a, "admin")
    assert "Generate a cycle" in text(client.get(CYCLES))
    data = {"kind": "deep_dive", "period": "FY2026-Q3", "opens_on": "2026-10-01", "due_on": "2026-10-31"}
    response = client.post(CYCLES, {**data, "capacity_per_manager": "4"})
    assert response.status_code == 400
    assert "Deep dives are held every second quarter" in text(response)
    response = client.post(CYCLES, {**data, "kind": "qbr", "due_on": "2026-09-01", "capacity_per_manager": "4"})
    assert response.status_code == 400 and "on or after the day it opens" in text(response)
    assert not ReviewCycle.objects.exists()

    response = client.post(CYCLES, {**data, "kind": "qbr", "capacity_per_manager": "4"})
    cycle = ReviewCycle.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("review_cycle", args=[cycle.pk])
    again = client.post(CYCLES, {**data, "kind": "qbr", "capacity_per_manager": "4"})
    assert again.status_code == 400 and "already exists" in text(again)


def test_managers_read_the_cycles_without_the_generate_form_and_cannot_post_it(a, cycle):
    client = session(a, "partner_manager")
    body = text(client.get(CYCLES))
    assert cycle.name in body and "Generate a cycle" not in body
    data = {"kind": "qbr", "period": "FY2026-Q2", "opens_on": "2026-07-01", "due_on": "2026-07-31"}
    assert client.post(CYCLES, {**data, "capacity_per_manager": "4"}).status_code == 403


def test_the_cycle_page_lists_detailed_reviews_and_monitored_partners_with_their_reasons(a):
    Partner.objects.update(manager=a.users["partner_manager"])
    cycle = generate(a, capacity=1)
    response = session(a, "executive").get(reverse("review_cycle", args=[cycle.pk]))
    body = text(response)
    assert response.status_code == 200
    assert "Detailed reviews" in body and "Monitored partners" in body
    monitored = Review.objects.get(cycle=cycle, track="monitored")
    assert monitored.partner.name in body
    for reason in monitored.priority_reasons:
        assert str(reason) in body


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured)


def test_list_pages_cost_the_same_queries_for_3_or_15_reviews(a):
    manager = a.users["partner_manager"]
    Partner.objects.update(manager=manager)
    new_partner(a, "Third", manager=manager)
    small = generate(a, capacity=2)
    for number in range(12):
        new_partner(a, f"Extra {number:02}", manager=manager)
    large = generate(a, period="FY2026-Q2", capacity=2, opens_on=small.opens_on, due_on=small.due_on)
    assert Review.objects.filter(cycle=small).count() == 3 and Review.objects.filter(cycle=large).count() == 15
    client = session(a, "partner_manager")
    client.get(MINE)  # the session's first request loads what later ones find cached
    assert _queries(client, reverse("review_cycle", args=[small.pk])) == _queries(
        client, reverse("review_cycle", args=[large.pk])
    )
    large.delete()
    few = _queries(client, MINE)
    large = generate(a, period="FY2026-Q2", capacity=2, opens_on=small.opens_on, due_on=small.due_on)
    assert _queries(client, MINE) == few
    assert _queries(client, CYCLES) <= few + 2


def test_cycle_pages_paginate_each_list_on_its_own(a, monkeypatch):
    monkeypatch.setattr("reviews.views.PAGE_SIZE", 1)
    Partner.objects.update(manager=a.users["partner_manager"])
    cycle = generate(a, capacity=8)
    client = session(a, "admin")
    url = reverse("review_cycle", args=[cycle.pk])
    first, second = Review.objects.filter(cycle=cycle).order_by("priority")
    body = text(client.get(url))
    assert first.partner.name in body and second.partner.name not in body
    body = text(client.get(url, {"detailed": 2}))
    assert second.partner.name in body and first.partner.name not in body


# --- The memo -----------------------------------------------------------------------------------------------


def test_the_memo_shows_its_figures_and_the_rating_distribution_as_a_chart(a, cycle, review):
    force_state(review, ReviewState.FINALIZED)
    response = session(a, "executive").get(reverse("review_cycle_memo", args=[cycle.pk]))
    body = text(response)
    assert response.status_code == 200
    assert '<dd data-figure="reviews">2</dd>' in body and '<dd data-figure="completed">1</dd>' in body
    assert "<svg" in body and "chart-distribution" in body


def test_the_memo_downloads_as_csv(a, cycle, review):
    force_state(review, ReviewState.SHARED)
    response = session(a, "partner_manager").get(reverse("review_cycle_memo_csv", args=[cycle.pk]))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["Section", "Item", "Value", "Previous cycle", "Change"]
    assert ["Reviews", "Partners in the cycle", "2", "", ""] in rows
    assert ["Reviews", "Completed", "1", "", ""] in rows


# --- The workspace ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", INTERNAL)
def test_the_workspace_renders_for_the_programs_people(a, review, role):
    response = session(a, role).get(reverse("review_detail", args=[review.pk]))
    body = text(response)
    assert response.status_code == 200
    assert a.partners[0].name in body and "FY2026-Q3" in body and "Scheduled" in body
    if role == "executive":
        assert 'name="to"' not in body and "hx-post" not in body
    else:
        assert 'name="to" value="preparing"' in body and 'name="to" value="finalized"' not in body


def test_only_the_legal_moves_are_offered_and_taking_one_freezes_the_pre_read(a, review):
    client = session(a, "partner_manager")
    url = reverse("review_detail", args=[review.pk])
    response = client.post(reverse("review_move", args=[review.pk]), {"to": "preparing"}, follow=True)
    body = text(response)
    assert response.status_code == 200 and "The review is now preparing." in body
    assert 'name="to" value="in_meeting"' in body and 'name="to" value="scheduled"' in body
    assert 'name="to" value="shared"' not in body
    assert "Frozen" in body and "Last review" in body
    review.refresh_from_db()
    assert review.state == ReviewState.PREPARING and review.pre_read_frozen_at is not None
    assert client.get(url).status_code == 200


def test_an_illegal_move_shows_the_reason_and_changes_nothing(a, review):
    client = session(a, "partner_manager")
    response = client.post(reverse("review_move", args=[review.pk]), {"to": "finalized"}, follow=True)
    assert response.status_code == 200
    assert "The review has not been held yet" in text(response)
    review.refresh_from_db()
    assert review.state == ReviewState.SCHEDULED and review.finalized_at is None
    response = client.post(reverse("review_move", args=[review.pk]), {"to": "nonsense"}, follow=True)
    assert response.status_code == 200 and "is not a state of a review" in text(response)


def test_executives_cannot_move_a_review(a, review):
    response = session(a, "executive").post(reverse("review_move", args=[review.pk]), {"to": "preparing"})
    assert response.status_code == 403
    review.refresh_from_db()
    assert review.state == ReviewState.SCHEDULED


def test_a_rating_saves_through_htmx_as_its_row_alone(a, review):
    prompt = CollaborationPrompt.objects.get(key="communication")
    client = session(a, "partner_manager")
    url = reverse("review_rate", args=[review.pk, prompt.pk])
    response = client.post(url, {"score": "4", "comment": "Weekly calls"}, HTTP_HX_REQUEST="true")
    body = text(response)
    assert response.status_code == 200
    assert "<html" not in body and f'id="prompt-{prompt.pk}"' in body and "Saved." in body
    assert 'value="4" checked' in body
    rating = CollaborationRating.objects.get(review=review, prompt=prompt)
    assert (rating.score, rating.comment) == (4, "Weekly calls")

    refused = client.post(url, {"score": "9", "comment": "Too high"}, HTTP_HX_REQUEST="true")
    assert refused.status_code == 200 and "Rate from 1 (poor) to 5" in text(refused)
    assert "<html" not in text(refused)
    rating.refresh_from_db()
    assert rating.score == 4


def test_a_rating_without_htmx_returns_to_the_workspace(a, review):
    prompt = CollaborationPrompt.objects.get(key="communication")
    client = session(a, "partner_manager")
    response = client.post(reverse("review_rate", args=[review.pk, prompt.pk]), {"score": "3"}, follow=True)
    assert response.status_code == 200 and "rated 3" in text(response)
    assert CollaborationRating.objects.get(review=review).score == 3


def test_commitments_notes_decisions_and_the_summary_are_written_from_the_workspace(a, review):
    client = session(a, "partner_manager")
    posts = [
        ("review_commitment", {"party": "partner", "text": "Certify two engineers", "due_on": "2026-12-01"}),
        ("review_note", {"body": "Shared note for the partner", "visibility": "shared"}),
        ("review_note", {"body": "Internal note only", "visibility": "internal"}),
        ("review_decision", {"decision": "Co-fund the webinar", "rationale": "Pipeline is thin"}),
        ("review_summary", {"summary": "Solid quarter."}),
    ]
    for name, data in posts:
        response = client.post(reverse(name, args=[review.pk]), data)
        assert response.status_code == 302, (name, text(response))
    body = text(client.get(reverse("review_detail", args=[review.pk])))
    for snippet in (
        "Certify two engineers",
        "Shared note for the partner",
        "Internal note only",
        "Co-fund the webinar",
    ):
        assert snippet in body
    review.refresh_from_db()
    assert review.summary == "Solid quarter."
    assert MeetingNote.objects.filter(review=review, visibility="internal").count() == 1

    refused = client.post(reverse("review_decision", args=[review.pk]), {"decision": "", "rationale": ""})
    assert refused.status_code == 400 and "Write the decision." in text(refused)


def test_a_closed_review_reads_only_and_is_amended_into_a_new_revision(a, review):
    note_add(review=review, body="Before closing", by=a.users["partner_manager"])
    force_state(review, ReviewState.FINALIZED)
    client = session(a, "partner_manager")
    body = text(client.get(reverse("review_detail", args=[review.pk])))
    assert "hx-post" not in body and "Add the note" not in body and "Before closing" in body
    assert 'name="to" value="shared"' in body and "Amend the review" in body

    refused = client.post(reverse("review_note", args=[review.pk]), {"body": "Late", "visibility": "internal"})
    assert refused.status_code == 400 and "amend it to record a change" in text(refused)

    response = client.post(reverse("review_amend", args=[review.pk]), {"reason": "Wrong rating"})
    amendment = Review.objects.get(amends=review)
    assert response.status_code == 302 and response["Location"] == reverse("review_detail", args=[amendment.pk])
    assert amendment.state == ReviewState.IN_MEETING
    review.refresh_from_db()
    assert review.state == ReviewState.FINALIZED


# --- The partner's reviews -----------------------------------------------------------------------------------


def test_partners_read_their_shared_review_without_internal_notes(a, review):
    shared_review(a, review)
    client = session(a, "partner_member")
    listing = text(client.get(PORTAL))
    assert reverse("portal_review", args=[review.pk]) in listing
    response = client.get(reverse("portal_review", args=[review.pk]))
    body = text(response)
    assert response.status_code == 200
    assert "Agreed on the joint webinar" in body and "A good quarter overall." in body
    assert "margin pressure" not in body
    assert "Internal" not in body


def test_partners_send_their_voice_before_the_meeting(a, review):
    client = session(a, "partner_admin")
    url = reverse("portal_review", args=[review.pk])
    assert "What you bring to the review" in text(client.get(url))
    empty = client.post(url, {})
    assert empty.status_code == 400 and "Write at least one of" in text(empty)
    response = client.post(url, {"wins": "Two big deals", "asks": "More MDF"}, follow=True)
    assert response.status_code == 200 and "your input was sent" in text(response)
    voice = PartnerVoice.objects.get(review=review)
    assert (voice.wins, voice.asks) == ("Two big deals", "More MDF")
    body = text(session(a, "partner_manager").get(reverse("review_detail", args=[review.pk])))
    assert "Two big deals" in body


def test_partners_cannot_read_an_unshared_or_another_partners_review(a, cycle, review):
    force_state(review, ReviewState.FINALIZED)
    other = review_of(cycle, a.partners[1])
    client = session(a, "partner_member")
    assert client.get(reverse("portal_review", args=[review.pk])).status_code == 404
    assert client.get(reverse("portal_review", args=[other.pk])).status_code == 404
    assert client.post(reverse("portal_review", args=[other.pk]), {"wins": "x"}).status_code == 404
    assert not PartnerVoice.objects.exists()
    assert a.partners[1].name not in text(client.get(PORTAL))


def test_the_portal_review_pages_are_not_found_for_internal_people_and_another_tenant(a, review, b):
    shared_review(a, review)
    assert session(a, "admin").get(reverse("portal_review", args=[review.pk])).status_code == 404
    assert session(a, "admin").get(PORTAL).status_code == 404
    foreign = b_review(b)
    assert session(a, "partner_admin").get(reverse("portal_review", args=[foreign.pk])).status_code == 404


# --- Closing and reopening a cycle ----------------------------------------------------------------------------


def test_administrators_see_how_many_reviews_are_not_held_and_close_only_when_told_to_close_anyway(a, cycle):
    client = session(a, "admin")
    page = reverse("review_cycle", args=[cycle.pk])
    close = reverse("review_cycle_close", args=[cycle.pk])
    body = text(client.get(page))
    assert close in body and 'data-not-held="2"' in body and 'name="confirm_unfinished"' in body

    refused = client.post(close, follow=True)
    assert refused.status_code == 200
    assert "2 reviews of “FY2026-Q3 business reviews” have not been held" in text(refused)
    cycle.refresh_from_db()
    assert cycle.status == "open" and cycle.closed_at is None

    closed = client.post(close, {"confirm_unfinished": "on"}, follow=True)
    body = text(closed)
    cycle.refresh_from_db()
    assert cycle.status == "closed"
    closed_on = timezone.localdate(cycle.closed_at)
    assert "“FY2026-Q3 business reviews” is closed." in body
    assert f"Closed on {closed_on:%-d %b %Y}" in body
    assert reverse("review_cycle_reopen", args=[cycle.pk]) in body and close not in body

    memo = text(client.get(reverse("review_cycle_memo", args=[cycle.pk])))
    assert f'<dd data-figure="closed_on">{closed_on:%-d %b %Y}</dd>' in memo
    assert '<dd data-figure="not_held">2</dd>' in memo
    rows = list(csv.reader(io.StringIO(text(client.get(reverse("review_cycle_memo_csv", args=[cycle.pk]))))))
    assert ["Cycle", "Closed on", closed_on.isoformat(), "", ""] in rows
    assert ["Reviews", "Not held", "2", "", ""] in rows


def test_a_cycle_with_every_review_finished_closes_and_reopens_from_its_page(a, cycle):
    for review in Review.objects.filter(cycle=cycle):
        force_state(review, ReviewState.SHARED)
    client = session(a, "admin")
    body = text(client.get(reverse("review_cycle", args=[cycle.pk])))
    assert "data-not-held" not in body and "Every review of this cycle is finished" in body

    assert client.post(reverse("review_cycle_close", args=[cycle.pk])).status_code == 302
    cycle.refresh_from_db()
    assert cycle.status == "closed"

    reopened = client.post(reverse("review_cycle_reopen", args=[cycle.pk]), follow=True)
    cycle.refresh_from_db()
    assert (cycle.status, cycle.closed_at) == ("open", None)
    assert "is open again" in text(reopened)
    again = client.post(reverse("review_cycle_reopen", args=[cycle.pk]), follow=True)
    assert again.status_code == 200 and "only a closed cycle is reopened" in text(again)


def test_closing_while_a_review_is_in_its_meeting_shows_why_and_changes_nothing(a, cycle, review):
    force_state(review, ReviewState.IN_MEETING)
    client = session(a, "admin")
    assert 'data-in-meeting="1"' in text(client.get(reverse("review_cycle", args=[cycle.pk])))

    response = client.post(reverse("review_cycle_close", args=[cycle.pk]), {"confirm_unfinished": "on"}, follow=True)

    assert response.status_code == 200
    assert "cannot close while 1 review is in its meeting (Acme Partner 1)" in text(response)
    cycle.refresh_from_db()
    assert cycle.status == "open"


def test_a_closed_cycles_review_does_not_start_from_the_workspace(a, cycle, review):
    admin = session(a, "admin")
    admin.post(reverse("review_cycle_close", args=[cycle.pk]), {"confirm_unfinished": "on"})

    response = session(a, "partner_manager").post(
        reverse("review_move", args=[review.pk]), {"to": "preparing"}, follow=True
    )

    body = text(response)
    assert "is closed: its reviews no longer start" in body
    assert "data-cycle-closed" in body and MOVE_PREPARE not in body
    review.refresh_from_db()
    assert review.state == ReviewState.SCHEDULED


@pytest.mark.parametrize("role", ["partner_manager", "executive", *PARTNER])
def test_only_administrators_close_and_reopen_a_cycle_from_its_page(a, cycle, role):
    client = session(a, role)
    if role not in PARTNER:
        body = text(client.get(reverse("review_cycle", args=[cycle.pk])))
        assert reverse("review_cycle_close", args=[cycle.pk]) not in body
    expected = 404 if role in PARTNER else 403
    for name in ("review_cycle_close", "review_cycle_reopen"):
        assert client.post(reverse(name, args=[cycle.pk]), {"confirm_unfinished": "on"}).status_code == expected
    cycle.refresh_from_db()
    assert cycle.status == "open"


def test_closing_is_a_post_and_another_tenants_cycle_is_not_found(a, cycle, b):
    foreign = b_review(b)
    client = session(a, "admin")
    assert client.get(reverse("review_cycle_close", args=[cycle.pk])).status_code == 405
    for name in ("review_cycle_close", "review_cycle_reopen"):
        assert client.post(reverse(name, args=[foreign.cycle_id]), {"confirm_unfinished": "on"}).status_code == 404
    with tenant_scope(b.tenant):
        assert ReviewCycle.objects.get(pk=foreign.cycle_id).status == "open"
