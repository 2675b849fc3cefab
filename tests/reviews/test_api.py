"""The reviews API: cadence rules, cycles, reviews and their workspace; isolation, refusals, query bounds."""

from __future__ import annotations

import pytest
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from partnerhub.partners.models import PartnerType
from partnerhub.tenancy.context import tenant_scope
from reviews.models import CadenceRule, CollaborationPrompt, MeetingNote, PartnerVoice, Review, ReviewCycle, ReviewState
from reviews.services.cadences import cadence_rule_create
from tests.clients import key, post, session, url
from tests.factories import PartnerFactory
from tests.reviews.conftest import generate

INTERNAL = ("admin", "partner_manager", "executive")
PARTNER = ("partner_admin", "partner_member")
RULES, CYCLES, REVIEWS = "/api/v1/cadence-rules/", "/api/v1/review-cycles/", "/api/v1/reviews/"
INTERNAL_NOTE = "Margin squeeze in EMEA is an internal worry only"
SHARED_NOTE = "Joint webinar agreed for November"


def ids(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


@pytest.fixture
def cycle(world) -> ReviewCycle:
    """Tenant a's FY2026-Q3 business reviews: a review for each of its two partners, scheduled."""
    with tenant_scope(world.a.tenant):
        cadence_rule_create(kind="qbr", by=world.a.users["admin"])
        return generate(world.a)


def review_of(world, cycle, index: int = 0) -> Review:
    with tenant_scope(world.a.tenant):
        return Review.objects.current().get(cycle=cycle, partner=world.a.partners[index])


def state_of(world, review: Review) -> str:
    with tenant_scope(world.a.tenant):
        return Review.objects.get(pk=review.pk).state


def move(client: Client, review: Review, *states: str) -> None:
    for to in states:
        response = post(client, url(REVIEWS, review.pk, "transition"), {"to": to})
        assert response.status_code == 200, response.content


# --- Cadence rules ------------------------------------------------------------------------------------------


def test_administrators_add_change_and_remove_cadence_rules(world):
    admin = session(world.a, "admin")
    with tenant_scope(world.a.tenant):
        reseller = PartnerType.objects.create(key="apitype", name="API type")
    created = post(admin, RULES, {"partner_type": reseller.pk, "lifecycle_stage": "growing", "kind": "qbr"})
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["partner_type_key"] == "apitype" and body["kind"] == "qbr" and body["active"] is True
    twin = post(admin, RULES, {"partner_type": reseller.pk, "lifecycle_stage": "growing", "kind": "qbr"})
    assert twin.status_code == 400 and "already" in str(twin.json())
    bad = post(admin, RULES, {"kind": "yearly", "lifecycle_stage": "teenage"})
    assert bad.status_code == 400 and {"kind", "lifecycle_stage"} <= set(bad.json())
    changed = admin.patch(url(RULES, body["id"]), {"active": False}, content_type="application/json")
    assert changed.status_code == 200 and changed.json()["active"] is False
    assert ids(key(world.a).get(RULES)) == {body["id"]}
    assert admin.delete(url(RULES, body["id"])).status_code == 204
    with tenant_scope(world.a.tenant):
        assert not CadenceRule.objects.filter(pk=body["id"]).exists()


def test_only_administrators_change_cadence_rules_and_api_keys_only_read(world):
    manager = session(world.a, "partner_manager")
    assert post(manager, RULES, {"kind": "qbr"}).status_code == 403
    assert post(key(world.a, "write_key"), RULES, {"kind": "qbr"}).status_code == 403
    for role in PARTNER:
        assert post(session(world.a, role), RULES, {"kind": "qbr"}).status_code == 403
        assert ids(session(world.a, role).get(RULES)) == set()
    with tenant_scope(world.a.tenant):
        assert not CadenceRule.objects.exists()


def test_another_tenants_cadence_rule_and_partner_type_are_not_found(world):
    foreign = world.b.extra["cadence_rule"]
    admin = session(world.a, "admin")
    assert admin.get(url(RULES, foreign.pk)).status_code == 404
    assert admin.patch(url(RULES, foreign.pk), {"active": False}, content_type="application/json").status_code == 404
    assert admin.delete(url(RULES, foreign.pk)).status_code == 404
    with tenant_scope(world.b.tenant):
        foreign_type = PartnerType.objects.create(key="far", name="Far away")
        assert CadenceRule.objects.get(pk=foreign.pk).active
    refused = post(admin, RULES, {"kind": "qbr", "partner_type": foreign_type.pk})
    assert refused.status_code == 400 and "partner_type" in refused.json()


# --- Cycles --------------------------------------------------------------------------------------------------------


def test_administrators_generate_a_cycle_and_everyone_internal_reads_it(world):
    admin = session(world.a, "admin")
    assert post(admin, RULES, {"kind": "qbr"}).status_code == 201
    body = {"kind": "qbr", "period": "FY2026-Q3", "opens_on": "2026-10-01", "due_on": "2026-10-31"}
    created = post(admin, CYCLES, body)
    assert created.status_code == 201, created.content
    cycle = created.json()
    assert cycle["name"] == "FY2026-Q3 business reviews" and cycle["review_count"] == 2
    again = post(admin, CYCLES, body)
    assert again.status_code == 400 and "FY2026-Q3" in str(again.json())
    wrong = post(admin, CYCLES, {**body, "kind": "deep_dive"})
    assert wrong.status_code == 400 and "period" in wrong.json()
    assert post(session(world.a, "partner_manager"), CYCLES, {**body, "kind": "check_in"}).status_code == 403
    for client in [session(world.a, role) for role in INTERNAL] + [key(world.a)]:
        assert ids(client.get(CYCLES)) == {cycle["id"]}
        assert client.get(url(CYCLES, cycle["id"])).status_code == 200
    for role in PARTNER:
        assert ids(session(world.a, role).get(CYCLES)) == set()
        assert session(world.a, role).get(url(CYCLES, cycle["id"])).status_code == 404
    assert admin.get(url(CYCLES, world.b.extra["review_cycle"].pk)).status_code == 404


def cycle_status(world, cycle) -> str:
    with tenant_scope(world.a.tenant):
        return ReviewCycle.objects.get(pk=cycle.pk).status


def test_administrators_close_and_reopen_a_cycle_and_a_refusal_is_a_400_with_the_reason(world, cycle):
    admin, manager = session(world.a, "admin"), session(world.a, "partner_manager")
    review = review_of(world, cycle)
    move(manager, review, "preparing", "in_meeting")

    in_meeting = post(admin, url(CYCLES, cycle.pk, "close"), {"confirm_unfinished": True})
    assert in_meeting.status_code == 400
    assert "cannot close while 1 review is in its meeting (Acme Partner 1)" in in_meeting.json()["non_field_errors"][0]
    move(manager, review, "finalized")
    unfinished = post(admin, url(CYCLES, cycle.pk, "close"), {})
    assert unfinished.status_code == 400 and "1 review of" in unfinished.json()["non_field_errors"][0]
    assert post(admin, url(CYCLES, cycle.pk, "close"), {"confirm_unfinished": "maybe"}).status_code == 400
    assert cycle_status(world, cycle) == "open"

    closed = post(admin, url(CYCLES, cycle.pk, "close"), {"confirm_unfinished": True})
    assert closed.status_code == 200, closed.content
    body = closed.json()
    assert body["id"] == cycle.pk and body["status"] == "closed" and body["closed_at"] and body["review_count"] == 2
    twice = post(admin, url(CYCLES, cycle.pk, "close"), {"confirm_unfinished": True})
    assert twice.status_code == 400 and "already closed" in twice.json()["non_field_errors"][0]

    other = review_of(world, cycle, 1)
    start = post(manager, url(REVIEWS, other.pk, "transition"), {"to": "preparing"})
    assert start.status_code == 400 and "is closed" in start.json()["non_field_errors"][0]
    move(manager, review, "shared")

    reopened = post(admin, url(CYCLES, cycle.pk, "reopen"), {})
    assert reopened.status_code == 200 and reopened.json()["status"] == "open"
    assert reopened.json()["closed_at"] is None
    again = post(admin, url(CYCLES, cycle.pk, "reopen"), {})
    assert again.status_code == 400 and "only a closed cycle is reopened" in again.json()["non_field_errors"][0]
    move(manager, other, "preparing")


def test_only_administrators_close_a_cycle_and_api_keys_only_read(world, cycle):
    for client in [session(world.a, role) for role in ("partner_manager", "executive")] + [
        key(world.a),
        key(world.a, "write_key"),
    ]:
        for command in ("close", "reopen"):
            assert post(client, url(CYCLES, cycle.pk, command), {"confirm_unfinished": True}).status_code == 403
    for role in PARTNER:
        for command in ("close", "reopen"):
            response = post(session(world.a, role), url(CYCLES, cycle.pk, command), {"confirm_unfinished": True})
            assert response.status_code == 404  # partner users find no cycle
    assert cycle_status(world, cycle) == "open"


def test_another_tenants_cycle_is_not_found_for_closing(world, cycle):
    foreign = world.b.extra["review_cycle"]
    for command in ("close", "reopen"):
        response = post(session(world.a, "admin"), url(CYCLES, foreign.pk, command), {"confirm_unfinished": True})
        assert response.status_code == 404
    with tenant_scope(world.b.tenant):
        assert ReviewCycle.objects.get(pk=foreign.pk).status == "open"


# --- Reviews: reading ------------------------------------------------------------------------------------------


def test_reviews_list_with_filters_and_partner_users_see_their_own_only(world, cycle):
    mine, theirs = review_of(world, cycle, 0), review_of(world, cycle, 1)
    for client in [session(world.a, role) for role in INTERNAL] + [key(world.a)]:
        assert ids(client.get(REVIEWS)) == {mine.pk, theirs.pk}
    admin = session(world.a, "admin")
    assert ids(admin.get(REVIEWS, {"partner": world.a.partners[1].pk})) == {theirs.pk}
    assert ids(admin.get(REVIEWS, {"cycle": cycle.pk, "state": "scheduled", "track": "detailed"})) == {
        mine.pk,
        theirs.pk,
    }
    assert ids(admin.get(REVIEWS, {"state": "shared"})) == set()
    assert ids(admin.get(REVIEWS, {"manager": 999999})) == set()
    assert admin.get(REVIEWS, {"state": "someday"}).status_code == 400
    # Awaiting their input, partner users see their own partner's review, without the ranking.
    for role in PARTNER:
        response = session(world.a, role).get(REVIEWS)
        assert ids(response) == {mine.pk}
        assert "priority_reasons" not in response.json()["results"][0]
        assert "track" not in response.json()["results"][0]
        assert session(world.a, role).get(url(REVIEWS, theirs.pk)).status_code == 404
    assert ids(session(world.a, "other_partner_admin").get(REVIEWS)) == {theirs.pk}


def test_another_tenants_review_is_not_found_for_anyone(world, cycle):
    foreign = world.b.extra["review"]
    for client in [session(world.a, role) for role in (*INTERNAL, *PARTNER)] + [key(world.a, "write_key")]:
        assert client.get(url(REVIEWS, foreign.pk)).status_code == 404
        assert post(client, url(REVIEWS, foreign.pk, "transition"), {"to": "preparing"}).status_code in (403, 404)
    for role in ("admin", "partner_manager"):
        assert post(session(world.a, role), url(REVIEWS, foreign.pk, "notes"), {"body": "x"}).status_code == 404
    assert post(session(world.a, "partner_admin"), url(REVIEWS, foreign.pk, "voice"), {"wins": "x"}).status_code == 404
    with tenant_scope(world.b.tenant):
        assert Review.objects.get(pk=foreign.pk).state == ReviewState.SCHEDULED
        assert not PartnerVoice.objects.filter(review_id=foreign.pk).exists()


def test_the_review_list_runs_the_same_queries_for_3_and_15_reviews(world):
    def build(count: int) -> None:
        with tenant_scope(world.a.tenant):
            cycle = ReviewCycle.objects.first() or ReviewCycle.objects.create(
                name="c", kind="qbr", period="FY2026-Q3", opens_on="2026-10-01", due_on="2026-10-31"
            )
            while Review.objects.count() < count:
                partner = PartnerFactory(tenant=world.a.tenant, manager=world.a.users["partner_manager"])
                Review.objects.create(cycle=cycle, partner=partner, kind="qbr", period="FY2026-Q3", due_on=cycle.due_on)

    def queries(client: Client) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(REVIEWS).status_code == 200
        return len(captured)

    clients = [session(world.a, "admin"), key(world.a)]
    build(3)
    for client in clients:  # the first call saves the session and touches the key
        client.get(REVIEWS)
    few = [queries(client) for client in clients]
    build(15)
    assert len(ids(clients[0].get(REVIEWS))) == 15
    assert [queries(client) for client in clients] == few


# --- The workspace and the review's life ---------------------------------------------------------------------


def test_a_review_runs_from_scheduled_to_shared_and_the_partner_reads_only_what_is_shared(world, cycle):
    review = review_of(world, cycle)
    manager, admin = session(world.a, "partner_manager"), session(world.a, "admin")
    voice = post(session(world.a, "partner_member"), url(REVIEWS, review.pk, "voice"), {"wins": "Closed the bank."})
    assert voice.status_code == 200 and voice.json()["wins"] == "Closed the bank."
    move(manager, review, "preparing", "in_meeting")
    with tenant_scope(world.a.tenant):
        prompt = CollaborationPrompt.objects.order_by("position").first()
    rating = post(manager, url(REVIEWS, review.pk, "ratings"), {"prompt": prompt.pk, "score": 4, "comment": "Good."})
    assert rating.status_code == 201 and rating.json()["score"] == 4
    bad = post(manager, url(REVIEWS, review.pk, "ratings"), {"prompt": prompt.pk, "score": 9})
    assert bad.status_code == 400 and "score" in bad.json()
    assert post(manager, url(REVIEWS, review.pk, "ratings"), {"prompt": 999999, "score": 3}).status_code == 404
    commitment = post(manager, url(REVIEWS, review.pk, "commitments"), {"party": "partner", "text": "Certify two."})
    assert commitment.status_code == 201
    missing = post(manager, url(REVIEWS, review.pk, "commitments"), {"party": "partner", "text": "  "})
    assert missing.status_code == 400 and "text" in missing.json()
    assert post(manager, url(REVIEWS, review.pk, "notes"), {"body": INTERNAL_NOTE}).status_code == 201
    shared = post(manager, url(REVIEWS, review.pk, "notes"), {"body": SHARED_NOTE, "visibility": "shared"})
    assert shared.status_code == 201 and shared.json()["visibility"] == "shared"
    decision = post(manager, url(REVIEWS, review.pk, "decisions"), {"decision": "Co-fund.", "rationale": "Gap."})
    assert decision.status_code == 201 and decision.json()["decided_by"] == world.a.users["partner_manager"].pk
    summary = post(manager, url(REVIEWS, review.pk, "summary"), {"summary": "A good quarter."})
    assert summary.status_code == 200 and summary.json()["summary"] == "A good quarter."
    # Inside the meeting, the partner's input is closed and the review is hidden from them.
    late = post(session(world.a, "partner_member"), url(REVIEWS, review.pk, "voice"), {"wins": "More."})
    assert late.status_code == 404
    move(admin, review, "finalized")
    closed = post(manager, url(REVIEWS, review.pk, "notes"), {"body": "After the fact"})
    assert closed.status_code == 400 and "amend" in str(closed.json())
    mail.outbox.clear()
    move(admin, review, "shared")

    internal = admin.get(url(REVIEWS, review.pk))
    assert internal.status_code == 200
    body = internal.json()
    assert body["audience"] == "internal" and body["internal"]["pre_read"] is not None
    assert {note["body"] for note in body["notes"]} == {INTERNAL_NOTE, SHARED_NOTE}
    assert INTERNAL_NOTE.encode() in key(world.a).get(url(REVIEWS, review.pk)).content
    for role in PARTNER:
        response = session(world.a, role).get(url(REVIEWS, review.pk))
        assert response.status_code == 200
        assert INTERNAL_NOTE.encode() not in response.content
        assert SHARED_NOTE.encode() in response.content
        data = response.json()
        assert data["audience"] == "partner" and data["internal"] is None and data["summary"] == "A good quarter."
        assert len(data["ratings"]) == 1 and len(data["commitments"]) == 1 and len(data["decisions"]) == 1
        assert ids(session(world.a, role).get(REVIEWS)) == {review.pk}
    assert session(world.a, "other_partner_admin").get(url(REVIEWS, review.pk)).status_code == 404


def test_illegal_moves_are_refused_with_the_reason_and_change_nothing(world, cycle):
    review = review_of(world, cycle)
    manager = session(world.a, "partner_manager")
    refused = post(manager, url(REVIEWS, review.pk, "transition"), {"to": "finalized"})
    assert refused.status_code == 400
    assert "start its meeting before finalizing" in refused.json()["non_field_errors"][0]
    nonsense = post(manager, url(REVIEWS, review.pk, "transition"), {"to": "archived"})
    assert nonsense.status_code == 400 and "to" in nonsense.json()
    assert post(manager, url(REVIEWS, review.pk, "transition"), {}).status_code == 400
    assert state_of(world, review) == ReviewState.SCHEDULED
    for role in PARTNER:
        assert (
            post(session(world.a, role), url(REVIEWS, review.pk, "transition"), {"to": "preparing"}).status_code == 403
        )
    assert (
        post(key(world.a, "write_key"), url(REVIEWS, review.pk, "transition"), {"to": "preparing"}).status_code == 403
    )
    assert post(
        session(world.a, "executive"), url(REVIEWS, review.pk, "transition"), {"to": "preparing"}
    ).status_code == (403)
    assert state_of(world, review) == ReviewState.SCHEDULED
    amend_open = post(manager, url(REVIEWS, review.pk, "amend"), {"reason": "Typo."})
    assert amend_open.status_code == 400 and "Only a finalized or shared review" in str(amend_open.json())


def test_a_finalized_review_is_amended_as_a_new_revision(world, cycle):
    review = review_of(world, cycle)
    manager = session(world.a, "partner_manager")
    move(manager, review, "preparing", "in_meeting")
    assert post(manager, url(REVIEWS, review.pk, "notes"), {"body": INTERNAL_NOTE}).status_code == 201
    move(manager, review, "finalized")
    assert post(manager, url(REVIEWS, review.pk, "amend"), {"reason": " "}).status_code == 400
    amended = post(manager, url(REVIEWS, review.pk, "amend"), {"reason": "The pipeline figure was corrected."})
    assert amended.status_code == 201, amended.content
    body = amended.json()
    assert body["revision"] == 2 and body["state"] == "in_meeting" and len(body["notes"]) == 1
    assert state_of(world, review) == ReviewState.FINALIZED
    assert ids(manager.get(REVIEWS, {"partner": world.a.partners[0].pk})) == {body["id"]}
    twice = post(manager, url(REVIEWS, review.pk, "amend"), {"reason": "Again."})
    assert twice.status_code == 400 and "Revision 2 already amends" in str(twice.json())


def test_only_the_partners_own_people_submit_its_voice_before_the_meeting(world, cycle):
    review = review_of(world, cycle)
    admin = session(world.a, "admin")
    assert post(admin, url(REVIEWS, review.pk, "voice"), {"wins": "Us."}).status_code == 403
    assert post(key(world.a, "write_key"), url(REVIEWS, review.pk, "voice"), {"wins": "Us."}).status_code == 403
    other = post(session(world.a, "other_partner_admin"), url(REVIEWS, review.pk, "voice"), {"wins": "Them."})
    assert other.status_code == 404
    empty = post(session(world.a, "partner_admin"), url(REVIEWS, review.pk, "voice"), {"wins": " "})
    assert empty.status_code == 400
    with tenant_scope(world.a.tenant):
        assert not PartnerVoice.objects.filter(review=review).exists()
    ok = post(session(world.a, "partner_admin"), url(REVIEWS, review.pk, "voice"), {"asks": "Demo licences."})
    assert ok.status_code == 200 and ok.json()["asks"] == "Demo licences."
    workspace = session(world.a, "partner_admin").get(url(REVIEWS, review.pk)).json()
    assert workspace["can_submit_voice"] is True and workspace["voice"]["asks"] == "Demo licences."
    assert workspace["notes"] == [] and workspace["internal"] is None


def test_partner_users_never_write_the_workspace_and_internal_notes_stay_internal(world, cycle):
    review = review_of(world, cycle)
    manager = session(world.a, "partner_manager")
    move(manager, review, "preparing", "in_meeting")
    assert post(manager, url(REVIEWS, review.pk, "notes"), {"body": INTERNAL_NOTE}).status_code == 201
    for role in PARTNER:
        client = session(world.a, role)
        # In its meeting the review is hidden from them: writing to it is "not found" too.
        assert post(client, url(REVIEWS, review.pk, "notes"), {"body": "Ours"}).status_code == 404
        assert post(client, url(REVIEWS, review.pk, "summary"), {"summary": "Ours"}).status_code == 404
        response = client.get(url(REVIEWS, review.pk))
        assert response.status_code == 404 and INTERNAL_NOTE.encode() not in response.content
        assert INTERNAL_NOTE.encode() not in client.get(REVIEWS).content
    with tenant_scope(world.a.tenant):
        assert MeetingNote.objects.filter(review=review).count() == 1


def test_the_openapi_schema_builds_without_warnings():
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null")
