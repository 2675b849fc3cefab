"""Review cycles: who is due, the ranking by need, capacity per manager, duplicates, top-ups, query bounds."""

from __future__ import annotations

import datetime
import math

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.db.models import AutoField
from django.http import Http404
from django.test.utils import CaptureQueriesContext

from partnerhub.partners.models import LifecycleStage, PartnerStatus, PartnerType
from partnerhub.tenancy.models import AuditEvent
from reviews.models import CollaborationPrompt, CycleStatus, Review, ReviewCycle, ReviewState, ReviewTrack
from reviews.services.cadences import cadence_rule_create
from reviews.services.cycles import cycle_add_missing, cycle_close, cycle_generate, cycle_reopen
from reviews.services.lifecycle import review_amend, review_transition
from scorecards.models import Rating
from tests.reviews.conftest import (
    DUE_ON,
    OPENS_ON,
    PERIOD,
    add_score,
    force_state,
    generate,
    new_manager,
    new_partner,
    review_of,
)


def ranked(cycle, manager):
    return list(
        Review.objects.filter(cycle=cycle, manager=manager)
        .order_by("priority")
        .values_list("partner__name", "priority", "track")
    )


@pytest.fixture
def portfolio(a):
    """Ten partners of one manager, each with what makes it rank where it does."""
    manager = new_manager(a, "mia@acme.test")
    partners = {
        name: new_partner(a, name, manager=manager)
        for name in ("Alpha", "Bravo", "Charlie", "Delta", "Echo", "Foxtrot", "Golf", "Hotel", "India", "Juliet")
    }
    add_score(a, partners["Alpha"], total="60")
    add_score(a, partners["Bravo"], total="30", rating=Rating.NEEDS_IMPROVEMENT)
    add_score(a, partners["Charlie"], total="70", regression=True)
    add_score(a, partners["Delta"], total="50", data_gap=True)
    add_score(a, partners["Echo"], total="55", stagnation=True)
    # Foxtrot has no score at all.
    add_score(a, partners["Golf"], total="40", change="-3.25")
    add_score(a, partners["Hotel"], total="20", rating=Rating.NEEDS_IMPROVEMENT, regression=True)
    add_score(a, partners["India"], total="45", period="FY2026-Q2", regression=True)  # nothing newer
    add_score(a, partners["Juliet"], total="10", period="FY2026-Q4")  # after the period: does not count
    return manager, partners


def test_generation_ranks_each_managers_partners_by_need_and_splits_them_at_capacity(a, portfolio):
    manager, _ = portfolio

    cycle = generate(a, capacity=3)

    assert cycle.name == "FY2026-Q3 business reviews"
    assert ranked(cycle, manager) == [
        ("Foxtrot", 1, ReviewTrack.DETAILED),
        ("Juliet", 2, ReviewTrack.DETAILED),
        ("Hotel", 3, ReviewTrack.DETAILED),
        ("Bravo", 4, ReviewTrack.MONITORED),
        ("India", 5, ReviewTrack.MONITORED),
        ("Charlie", 6, ReviewTrack.MONITORED),
        ("Delta", 7, ReviewTrack.MONITORED),
        ("Echo", 8, ReviewTrack.MONITORED),
        ("Golf", 9, ReviewTrack.MONITORED),
        ("Alpha", 10, ReviewTrack.MONITORED),
    ]


def test_partners_without_a_manager_are_ranked_together_as_unassigned(a, portfolio):
    cycle = generate(a, capacity=1)

    # The world's two partners have no manager: the one needing improvement comes first.
    assert ranked(cycle, None) == [
        ("Acme Partner 2", 1, ReviewTrack.DETAILED),
        ("Acme Partner 1", 2, ReviewTrack.MONITORED),
    ]


@pytest.mark.usefixtures("portfolio")
def test_each_review_says_why_it_ranks_where_it_does(a):
    cycle = generate(a, capacity=3)

    reasons = dict(Review.objects.filter(cycle=cycle).values_list("partner__name", "priority_reasons"))
    assert reasons["Foxtrot"] == ["No score up to FY2026-Q3: nothing yet tells how the partner is doing."]
    assert reasons["Hotel"] == [
        "Rated “needs improvement” in FY2026-Q3.",
        "Regressing: the score dropped sharply or twice in a row.",
        "Score 20.0 in FY2026-Q3.",
    ]
    assert reasons["India"] == ["Regressing: the score dropped sharply or twice in a row.", "Score 45.0 in FY2026-Q2."]
    assert reasons["Delta"] == [
        "Data gap: too few of the scorecard's values were reported.",
        "Score 50.0 in FY2026-Q3.",
    ]
    assert reasons["Echo"] == [
        "Stagnating: the score has barely moved for several periods.",
        "Score 55.0 in FY2026-Q3.",
    ]
    assert reasons["Golf"] == ["Score 40.0 in FY2026-Q3, \N{MINUS SIGN}3.3 since the period before."]


def test_generation_copies_the_cycle_onto_each_review(a, portfolio):
    manager, partners = portfolio

    cycle = generate(a, capacity=3)

    review = Review.objects.get(cycle=cycle, partner=partners["Alpha"])
    assert (review.kind, review.period, review.due_on, review.state, review.revision) == (
        "qbr",
        PERIOD,
        cycle.due_on,
        "scheduled",
        1,
    )
    assert review.manager == manager
    assert cycle.capacity_per_manager == 3
    assert cycle.created_by == a.users["admin"]
    event = AuditEvent.objects.get(verb="cycle.generated")
    assert event.changes["reviews"] == [None, 12]
    assert event.changes["detailed"] == [None, 5]
    assert event.changes["monitored"] == [None, 7]


def test_only_active_partners_whose_cadence_gives_the_kind_are_due(a):
    reseller = PartnerType.objects.get(key="reseller")
    cadence_rule_create(
        kind="check_in", partner_type=reseller, lifecycle_stage=LifecycleStage.ONBOARDING, by=a.users["admin"]
    )
    new_partner(a, "Suspended", status=PartnerStatus.SUSPENDED)
    new_partner(a, "Terminated", status=PartnerStatus.TERMINATED)
    new_partner(a, "Onboarding reseller", lifecycle_stage=LifecycleStage.ONBOARDING)
    new_partner(
        a, "Onboarding MSP", lifecycle_stage=LifecycleStage.ONBOARDING, partner_type=PartnerType.objects.get(key="msp")
    )

    quarterly = generate(a)
    monthly = generate(a, kind="check_in", period="FY2026-M10")

    assert sorted(quarterly.reviews.values_list("partner__name", flat=True)) == [
        "Acme Partner 1",
        "Acme Partner 2",
        "Onboarding MSP",
    ]
    assert list(monthly.reviews.values_list("partner__name", flat=True)) == ["Onboarding reseller"]
    assert monthly.name == "FY2026-M10 check-ins"


def test_deep_dives_are_held_in_the_second_and_fourth_quarters_only(a):
    cadence_rule_create(kind="deep_dive", lifecycle_stage=LifecycleStage.MATURE, by=a.users["admin"])
    new_partner(a, "Grower", lifecycle_stage=LifecycleStage.MATURE)

    with pytest.raises(ValidationError) as refused:
        generate(a, kind="deep_dive", period="FY2026-Q3")
    assert refused.value.message_dict == {
        "period": ["Deep dives are held every second quarter, in Q2 and Q4; FY2026-Q3 has none."]
    }

    cycle = generate(
        a, kind="deep_dive", period="FY2026-Q4", opens_on=datetime.date(2027, 1, 4), due_on=datetime.date(2027, 1, 29)
    )
    assert cycle.name == "FY2026-Q4 deep dives"
    assert list(cycle.reviews.values_list("partner__name", flat=True)) == ["Grower"]


@pytest.mark.parametrize(
    ("kind", "period", "message"),
    [
        (
            "qbr",
            "FY2026-M07",
            "A quarterly business review reviews a quarter; write the period like FY2026-Q3, not FY2026-M07.",
        ),
        (
            "check_in",
            "FY2026-Q3",
            "A monthly check-in reviews a month; write the period like FY2026-M07, not FY2026-Q3.",
        ),
        ("qbr", "2026 Q3", "“2026 Q3” is not a period; write it like FY2026-Q3 or FY2026-M07."),
    ],
)
def test_a_period_the_kind_of_review_does_not_use_is_refused(a, kind, period, message):
    with pytest.raises(ValidationError) as refused:
        generate(a, kind=kind, period=period)

    assert refused.value.message_dict == {"period": [message]}
    assert not ReviewCycle.objects.exists()


def test_bad_dates_capacity_and_kind_are_refused_by_field(a):
    with pytest.raises(ValidationError) as refused:
        generate(a, opens_on=datetime.date(2026, 11, 1), due_on=datetime.date(2026, 10, 1))
    assert refused.value.message_dict == {"due_on": ["The cycle is due on or after the day it opens (2026-11-01)."]}

    with pytest.raises(ValidationError) as refused:
        generate(a, capacity=0)
    assert "capacity_per_manager" in refused.value.message_dict

    with pytest.raises(ValidationError) as refused:
        generate(a, kind="annual")
    assert "kind" in refused.value.message_dict


def test_generating_a_cycle_twice_is_refused_and_names_the_cycle(a):
    generate(a)

    with pytest.raises(ValidationError) as refused:
        generate(a, capacity=2)

    assert refused.value.messages == [
        "“FY2026-Q3 business reviews” already exists; add the partners it is missing to it instead of generating "
        "it again."
    ]
    assert ReviewCycle.objects.count() == 1


def test_a_cycle_nobody_is_due_for_is_refused(a):
    with pytest.raises(ValidationError) as refused:
        generate(a, kind="check_in", period="FY2026-M10")

    assert refused.value.messages == [
        "No active partner is due a monthly check-in: no cadence rule gives one to any of them. "
        "Set a cadence rule first."
    ]
    assert not ReviewCycle.objects.exists()


@pytest.mark.parametrize("role", ["partner_manager", "executive", "partner_admin"])
def test_only_administrators_generate_cycles(a, role):
    with pytest.raises(PermissionDenied):
        cycle_generate(
            kind="qbr", period=PERIOD, opens_on=OPENS_ON, due_on=DUE_ON, capacity_per_manager=2, by=a.users[role]
        )

    assert not ReviewCycle.objects.exists()


def test_adding_missing_partners_adds_only_those_and_ranks_them_after_the_reviews_there(a, portfolio):
    manager, _ = portfolio
    cycle = generate(a, capacity=11)
    before = set(Review.objects.filter(cycle=cycle).values_list("pk", "priority", "track"))
    late_needy = new_partner(a, "Kilo", manager=manager)
    add_score(a, late_needy, total="5", rating=Rating.NEEDS_IMPROVEMENT)
    new_partner(a, "Lima", manager=manager)

    added = cycle_add_missing(cycle=cycle, by=a.users["admin"])

    assert (
        set(
            Review.objects.filter(cycle=cycle, pk__lte=max(pk for pk, _, _ in before)).values_list(
                "pk", "priority", "track"
            )
        )
        == before
    )
    assert [(r.partner.name, r.priority, r.track) for r in sorted(added, key=lambda r: r.priority)] == [
        ("Lima", 11, ReviewTrack.DETAILED),  # no score outranks needing improvement
        ("Kilo", 12, ReviewTrack.MONITORED),  # the manager's 11 detailed reviews are taken
    ]
    assert cycle_add_missing(cycle=cycle, by=a.users["admin"]) == []
    assert Review.objects.filter(cycle=cycle).count() == 14


def test_generation_gives_a_workspace_created_earlier_its_collaboration_prompts(a):
    CollaborationPrompt.objects.all().delete()

    generate(a)

    assert list(CollaborationPrompt.objects.order_by("position").values_list("key", flat=True)) == [
        "responsiveness",
        "communication",
        "customer_alignment",
        "joint_planning",
    ]


def _generation_queries(a, *, partners: int, period: str, manager) -> tuple[int, int, int]:
    for n in range(partners):
        partner = new_partner(a, f"{period} partner {n:03d}", manager=manager)
        if n % 3:
            add_score(a, partner, total=str(40 + n), period=period, regression=bool(n % 2))
    with CaptureQueriesContext(connection) as queries:
        cycle = generate(a, period=period, capacity=2)
    inserts = [q for q in queries.captured_queries if q["sql"].startswith('INSERT INTO "reviews_review"')]
    return len(queries), len(inserts), cycle.reviews.count()


def test_generation_runs_the_same_queries_for_5_partners_as_for_50(a):
    manager = new_manager(a, "bulk@acme.test")
    # The world's partners are due too; each call only adds partners, so the second sees 5 + 45 more.
    small_total, small_inserts, small_reviews = _generation_queries(a, partners=5, period="FY2026-Q3", manager=manager)
    large_total, large_inserts, large_reviews = _generation_queries(a, partners=45, period="FY2026-Q4", manager=manager)

    assert (small_reviews, large_reviews) == (7, 52)
    # Everything but the insert of the reviews is the same; the insert is one statement, split in
    # batches only where the database caps a statement's parameters (SQLite).
    assert large_total - large_inserts == small_total - small_inserts
    fields = [f for f in Review._meta.concrete_fields if not isinstance(f, AutoField)]
    for reviews, inserts in ((small_reviews, small_inserts), (large_reviews, large_inserts)):
        batch = connection.ops.bulk_batch_size(fields, [Review()] * reviews)
        assert inserts == math.ceil(reviews / batch)
    if connection.vendor == "postgresql":
        assert large_total == small_total


# --- Closing and reopening ----------------------------------------------------------------------------------


def _move(review, *states, by):
    for state in states:
        review = review_transition(review=review, to=state, by=by)
    return review


def test_a_cycle_whose_reviews_are_all_finished_closes_and_says_so_in_the_audit(a):
    cycle = generate(a)
    for review in Review.objects.filter(cycle=cycle):
        force_state(review, ReviewState.FINALIZED)

    closed = cycle_close(cycle=cycle, by=a.users["admin"])

    cycle.refresh_from_db()
    assert closed.status == cycle.status == CycleStatus.CLOSED
    assert cycle.closed_at is not None
    event = AuditEvent.objects.get(verb="cycle.closed")
    assert event.target_id == str(cycle.pk)
    assert event.changes == {"status": ["open", "closed"], "not_held": [None, 0]}


def test_a_cycle_does_not_close_while_a_review_is_in_its_meeting(a):
    cycle = generate(a)
    in_meeting = force_state(review_of(cycle, a.partners[1]), ReviewState.IN_MEETING)

    with pytest.raises(ValidationError) as refused:
        cycle_close(cycle=cycle, by=a.users["admin"], confirm_unfinished=True)

    assert refused.value.messages == [
        "“FY2026-Q3 business reviews” cannot close while 1 review is in its meeting (Acme Partner 2); finalize it "
        "first."
    ]
    assert in_meeting.partner.name == "Acme Partner 2"
    cycle.refresh_from_db()
    assert (cycle.status, cycle.closed_at) == (CycleStatus.OPEN, None)
    assert not AuditEvent.objects.filter(verb="cycle.closed").exists()


def test_a_cycle_with_reviews_not_held_closes_only_when_told_to_close_anyway(a):
    cycle = generate(a)
    force_state(review_of(cycle, a.partners[0]), ReviewState.PREPARING)  # the other stays scheduled

    with pytest.raises(ValidationError) as refused:
        cycle_close(cycle=cycle, by=a.users["admin"])
    assert refused.value.messages == [
        "2 reviews of “FY2026-Q3 business reviews” have not been held (still scheduled or preparing). Close anyway "
        "to leave them as they are: the memo counts them as not held."
    ]
    cycle.refresh_from_db()
    assert cycle.status == CycleStatus.OPEN

    cycle_close(cycle=cycle, by=a.users["admin"], confirm_unfinished=True)

    cycle.refresh_from_db()
    assert cycle.status == CycleStatus.CLOSED
    assert sorted(Review.objects.filter(cycle=cycle).values_list("state", flat=True)) == ["preparing", "scheduled"]
    assert AuditEvent.objects.get(verb="cycle.closed").changes["not_held"] == [None, 2]


def test_closing_a_closed_cycle_and_reopening_an_open_one_are_refused_with_the_reason(a):
    cycle = generate(a)
    with pytest.raises(ValidationError) as refused:
        cycle_reopen(cycle=cycle, by=a.users["admin"])
    assert refused.value.messages == ["“FY2026-Q3 business reviews” is open; only a closed cycle is reopened."]

    cycle_close(cycle=cycle, by=a.users["admin"], confirm_unfinished=True)
    with pytest.raises(ValidationError) as refused:
        cycle_close(cycle=cycle, by=a.users["admin"], confirm_unfinished=True)

    assert refused.value.messages[0].startswith("“FY2026-Q3 business reviews” is already closed (on ")
    assert AuditEvent.objects.filter(verb="cycle.closed").count() == 1
    assert not AuditEvent.objects.filter(verb="cycle.reopened").exists()


def test_a_reopened_cycle_is_open_again_without_its_closing_day_and_is_audited(a):
    cycle = generate(a)
    cycle_close(cycle=cycle, by=a.users["admin"], confirm_unfinished=True)

    reopened = cycle_reopen(cycle=cycle, by=a.users["admin"])

    cycle.refresh_from_db()
    assert reopened.status == cycle.status == CycleStatus.OPEN
    assert cycle.closed_at is None
    event = AuditEvent.objects.get(verb="cycle.reopened")
    assert event.changes["status"] == ["closed", "open"]
    assert event.changes["closed_at"][1] is None
    review = _move(review_of(cycle, a.partners[0]), "preparing", by=a.users["partner_manager"])
    assert review.state == ReviewState.PREPARING


def test_a_closed_cycle_starts_no_review_but_its_finished_reviews_are_still_shared_and_amended(a):
    manager = a.users["partner_manager"]
    cycle = generate(a)
    finished = _move(review_of(cycle, a.partners[0]), "preparing", "in_meeting", "finalized", by=manager)
    preparing = _move(review_of(cycle, a.partners[1]), "preparing", by=manager)
    cycle_close(cycle=cycle, by=a.users["admin"], confirm_unfinished=True)

    with pytest.raises(ValidationError) as refused:
        review_transition(review=preparing, to="in_meeting", by=manager)
    assert refused.value.messages == [
        "“FY2026-Q3 business reviews” is closed: its reviews no longer start. Reopen the cycle to hold this review."
    ]
    assert Review.objects.get(pk=preparing.pk).state == ReviewState.PREPARING
    back = review_transition(review=preparing, to="scheduled", by=manager)  # not a start: allowed
    with pytest.raises(ValidationError, match="is closed"):
        review_transition(review=back, to="preparing", by=manager)

    shared = review_transition(review=finished, to="shared", by=manager)
    assert shared.state == ReviewState.SHARED
    amendment = review_amend(review=shared, reason="The pipeline figure was corrected.", by=manager)
    assert review_transition(review=amendment, to="finalized", by=manager).state == ReviewState.FINALIZED


@pytest.mark.parametrize("role", ["partner_manager", "executive", "partner_admin", "partner_member"])
def test_only_administrators_close_and_reopen_cycles(a, role):
    cycle = generate(a)

    with pytest.raises(PermissionDenied):
        cycle_close(cycle=cycle, by=a.users[role], confirm_unfinished=True)
    cycle_close(cycle=cycle, by=a.users["admin"], confirm_unfinished=True)
    with pytest.raises(PermissionDenied):
        cycle_reopen(cycle=cycle, by=a.users[role])

    cycle.refresh_from_db()
    assert cycle.status == CycleStatus.CLOSED
    assert AuditEvent.objects.filter(verb__in=["cycle.closed", "cycle.reopened"]).count() == 1


def test_another_tenants_cycle_is_not_found_for_closing(a, b):
    foreign = b.extra["review_cycle"]

    with pytest.raises(Http404):
        cycle_close(cycle=foreign, by=a.users["admin"], confirm_unfinished=True)
    with pytest.raises(Http404):
        cycle_reopen(cycle=foreign, by=a.users["admin"])
