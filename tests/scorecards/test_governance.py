"""Governed scorecard rules: drafts and their items, validation, the approval workflow, immutability."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from partnerhub.tenancy.context import tenant_scope
from partnerhub.tenancy.models import AuditEvent
from partnerhub.tenancy.roles import Role
from scorecards.models import Metric, Normalization, RubricKind, ScorecardItem, ScorecardVersion, VersionStatus
from scorecards.periods import QUARTER, period_containing
from scorecards.published_rules import published_rules
from scorecards.services.governance import (
    item_add,
    item_remove,
    item_update,
    scorecard_create,
    scorecard_update,
    version_activate,
    version_approve,
    version_create_draft,
    version_discard,
    version_propose,
    version_update,
    version_validate,
    version_withdraw,
)
from tests.factories import MembershipFactory

RATIONALE = "Revenue matters most; satisfaction keeps it honest."


@pytest.fixture
def in_a(world):
    with tenant_scope(world.a.tenant):
        world.a.extra["second_admin"] = MembershipFactory(
            tenant=world.a.tenant, role=Role.ADMIN, user__email="second-admin@acme.test"
        ).user
        yield world.a


@pytest.fixture
def recompute_calls(in_a):
    """(period, reason) of each recompute run asked for since the test began, oldest first."""
    from scorecards.models import RecomputeRun

    before = set(RecomputeRun.objects.values_list("pk", flat=True))

    def requested() -> list[tuple[str, str]]:
        runs = RecomputeRun.objects.exclude(pk__in=before).order_by("queued_at", "pk")
        return [(run.period, run.reason) for run in runs]

    return requested


@pytest.fixture
def admins(in_a):
    return in_a.users["admin"], in_a.extra["second_admin"]


def metric(key: str) -> Metric:
    return Metric.objects.get(key=key)


def valid_draft(by, *, name: str = "Channel scorecard") -> ScorecardVersion:
    """A draft for resellers and MSPs whose weights add up to 100 for both."""
    scorecard = scorecard_create(name=name, by=by)
    draft = version_create_draft(scorecard=scorecard, by=by, partner_types=["reseller", "msp"])
    item_add(version=draft, by=by, metric=metric("revenue_won"), weight="60", floor="0", target="500000")
    item_add(version=draft, by=by, metric=metric("customer_satisfaction"), weight="20", floor="5", target="9")
    item_add(
        version=draft,
        by=by,
        metric=metric("certifications_completed"),
        weight="20",
        applies_to=["reseller"],
        rubric=RubricKind.BANDED,
        bands=[{"at_least": 1, "points": 50}, {"at_least": 3, "points": 100}],
    )
    item_add(
        version=draft,
        by=by,
        metric=metric("lead_response_time"),
        weight="20",
        applies_to=["msp"],
        floor="48",
        target="4",
    )
    return draft


def approved(version, admins):
    first, second = admins
    version_propose(version=version, by=first, rationale=RATIONALE)
    return version_approve(version=version, by=second)


def messages(version) -> list[str]:
    return [problem.message for problem in version_validate(version)]


def verbs() -> list[str]:
    return list(AuditEvent.objects.filter(verb__startswith="scorecard").order_by("pk").values_list("verb", flat=True))


# --- Scorecards and drafts -----------------------------------------------------------------------------


def test_scorecard_names_are_unique_per_tenant_whatever_their_case(in_a):
    scorecard_create(name="Channel", by=in_a.users["admin"])
    with pytest.raises(ValidationError) as error:
        scorecard_create(name="channel ", by=in_a.users["admin"])
    assert "name" in error.value.message_dict


def test_renaming_a_scorecard_is_audited(in_a):
    scorecard = scorecard_create(name="Channel", by=in_a.users["admin"])
    scorecard_update(scorecard=scorecard, by=in_a.users["admin"], name="Channel 2027")
    event = AuditEvent.objects.get(verb="scorecard.updated")
    assert event.changes == {"name": ["Channel", "Channel 2027"]}


def test_a_new_draft_copies_the_latest_versions_settings_and_items_but_not_its_rationale(in_a, admins):
    first = valid_draft(admins[0])
    version_update(version=first, by=admins[0], band_excellent="85", rationale="First rules.")
    second = version_create_draft(scorecard=first.scorecard, by=admins[0])
    assert second.number == 2 and second.status == VersionStatus.DRAFT
    assert second.partner_types == ["reseller", "msp"] and second.band_excellent == Decimal("85")
    assert second.rationale == ""
    copied = ScorecardItem.objects.filter(version=second).order_by("position")
    original = ScorecardItem.objects.filter(version=first).order_by("position")
    assert [(i.metric_id, i.weight, i.applies_to, i.bands) for i in copied] == [
        (i.metric_id, i.weight, i.applies_to, i.bands) for i in original
    ]
    assert messages(second) == []


def test_a_draft_may_start_empty(in_a, admins):
    first = valid_draft(admins[0])
    empty = version_create_draft(scorecard=first.scorecard, by=admins[0], copy_latest=False)
    assert not ScorecardItem.objects.filter(version=empty).exists()
    assert "Add at least one metric." in messages(empty)


def test_a_draft_only_scores_partner_types_that_exist(in_a, admins):
    draft = valid_draft(admins[0])
    with pytest.raises(ValidationError) as error:
        version_update(version=draft, by=admins[0], partner_types=["reseller", "astronauts"])
    assert "astronauts" in error.value.message_dict["partner_types"][0]


def test_rating_bands_keep_good_at_or_below_excellent(in_a, admins):
    draft = valid_draft(admins[0])
    with pytest.raises(ValidationError) as error:
        version_update(version=draft, by=admins[0], band_good="90", band_excellent="80")
    assert "band_good" in error.value.message_dict
    draft.refresh_from_db()
    assert (draft.band_good, draft.band_excellent) == (Decimal("60"), Decimal("80"))


def test_a_metric_appears_once_per_version(in_a, admins):
    draft = valid_draft(admins[0])
    with pytest.raises(ValidationError) as error:
        item_add(version=draft, by=admins[0], metric=metric("revenue_won"), weight="10", floor="0", target="1")
    assert "metric" in error.value.message_dict


def test_item_fields_are_checked_for_shape(in_a, admins):
    draft = valid_draft(admins[0])
    item = ScorecardItem.objects.get(version=draft, metric__key="revenue_won")
    with pytest.raises(ValidationError) as error:
        item_update(item=item, by=admins[0], weight="140", bands=[{"from": 1}], applies_to=["nobody"])
    assert set(error.value.message_dict) == {"weight", "bands", "applies_to"}


def test_a_percentile_item_defaults_to_a_floor_of_0_and_a_target_of_100(in_a, admins):
    draft = valid_draft(admins[0])
    item = item_add(
        version=draft, by=admins[0], metric=metric("pipeline_created"), weight="0",
        normalization=Normalization.PERCENTILE,
    )  # fmt: skip
    assert (item.floor, item.target) == (Decimal("0"), Decimal("100"))


def test_draft_edits_are_audited(in_a, admins):
    draft = valid_draft(admins[0])
    item = ScorecardItem.objects.get(version=draft, metric__key="revenue_won")
    item_update(item=item, by=admins[0], target="600000")
    item_remove(item=item, by=admins[0])
    version_update(version=draft, by=admins[0], min_completeness="0.8")
    assert verbs()[-3:] == ["scorecard_item.updated", "scorecard_item.removed", "scorecard_version.updated"]
    event = AuditEvent.objects.get(verb="scorecard_item.updated")
    assert list(event.changes) == ["target"] and event.changes["target"][1] == "600000"


# --- Validation ------------------------------------------------------------------------------------------


def test_a_valid_draft_has_no_problems(in_a, admins):
    assert messages(valid_draft(admins[0])) == []


def test_weights_must_add_up_to_100_for_every_partner_type_counting_its_plug_ins(in_a, admins):
    draft = valid_draft(admins[0])
    msp_plug_in = ScorecardItem.objects.get(version=draft, metric__key="lead_response_time")
    item_update(item=msp_plug_in, by=admins[0], weight="15")
    problems = version_validate(draft)
    assert len(problems) == 1
    assert problems[0].partner_type == "msp"
    assert problems[0].message == (
        "For Managed service provider partners the weights add up to 95, not 100 "
        "(Revenue won 60, Customer satisfaction 20, Lead response time 15)."
    )


def test_a_plug_in_for_a_type_the_version_does_not_score_is_a_problem(in_a, admins):
    draft = valid_draft(admins[0])
    item_add(version=draft, by=admins[0], metric=metric("deals_registered"), weight="20", applies_to=["referral"],
             floor="0", target="10")  # fmt: skip
    assert any("plug-in for Referral, which this version does not score" in m for m in messages(draft))


def test_a_partner_type_without_any_metric_is_a_problem(in_a, admins):
    draft = valid_draft(admins[0])
    version_update(version=draft, by=admins[0], partner_types=["reseller", "msp", "distributor"])
    assert "For Distributor partners the weights add up to 80, not 100" in " ".join(messages(draft))


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({"floor": "9", "target": "9"}, "the floor and the target are both 9"),
        ({"floor": None}, "a linear rubric needs a floor (0 points) and a target (full points)"),
        ({"rubric": RubricKind.BANDED, "bands": []}, "a banded rubric needs at least one band"),
        (
            {"rubric": RubricKind.BANDED, "bands": [{"at_least": 8, "points": 100}, {"at_least": 6, "points": 50}]},
            "list the bands from the lowest threshold to the highest",
        ),
        (
            {"rubric": RubricKind.BANDED, "cap": "80", "bands": [{"at_least": 8, "points": 100}]},
            "a band gives 100 points; band points are between 0 and 80",
        ),
        ({"normalization": Normalization.PER_SIZE}, "per-size normalization divides by the partner's size"),
        (
            {"normalization": Normalization.TARGET_ATTAINMENT, "segment_targets": {"reseller": 8}},
            "attainment needs a target for every partner type it scores; missing: Managed service provider",
        ),
        ({"weight": "0"}, "has no weight"),
    ],
)
def test_rubric_parameters_must_make_sense(in_a, admins, changes, expected):
    draft = valid_draft(admins[0])
    item = ScorecardItem.objects.get(version=draft, metric__key="customer_satisfaction")
    item_update(item=item, by=admins[0], **changes)
    found = [problem for problem in version_validate(draft) if problem.item_id == item.pk]
    assert any(expected in problem.message for problem in found), [p.message for p in found]
    assert all(problem.message.startswith("Customer satisfaction") for problem in found)


def test_per_size_normalization_suits_counts_and_amounts(in_a, admins):
    draft = valid_draft(admins[0])
    revenue = ScorecardItem.objects.get(version=draft, metric__key="revenue_won")
    item_update(item=revenue, by=admins[0], normalization=Normalization.PER_SIZE, target="50000")
    assert messages(draft) == []


def test_attainment_with_a_target_for_every_segment_is_valid(in_a, admins):
    draft = valid_draft(admins[0])
    revenue = ScorecardItem.objects.get(version=draft, metric__key="revenue_won")
    item_update(
        item=revenue, by=admins[0], normalization=Normalization.TARGET_ATTAINMENT,
        segment_targets={"reseller": "250000", "msp": 120000}, floor="0.5", target="1",
    )  # fmt: skip
    assert messages(draft) == []
    revenue.refresh_from_db()
    assert revenue.segment_targets == {"reseller": 250000, "msp": 120000}


def test_a_metric_taken_out_of_the_catalogue_is_a_problem(in_a, admins):
    draft = valid_draft(admins[0])
    Metric.objects.filter(key="customer_satisfaction").update(is_active=False)
    assert any("no longer in use" in m for m in messages(draft))


# --- The workflow ----------------------------------------------------------------------------------------


def test_draft_to_active_with_two_admins_retires_the_version_it_replaces(in_a, admins):
    world_version = in_a.extra["scorecards"].version
    first, second = admins
    draft = valid_draft(first)
    # Put the draft on the world's scorecard by building it there instead.
    draft = version_create_draft(scorecard=world_version.scorecard, by=first)
    approved(draft, admins)
    next_period = "FY2027-Q1"
    version_activate(version=draft, by=second, effective_from=next_period.lower())

    draft.refresh_from_db()
    world_version.refresh_from_db()
    assert draft.status == VersionStatus.ACTIVE and draft.effective_from == next_period
    assert world_version.status == VersionStatus.RETIRED
    assert draft.proposed_by == first and draft.approved_by == second
    assert draft.proposed_at and draft.approved_at and draft.activated_at


def test_every_transition_is_audited_with_who_did_it(in_a, admins):
    first, second = admins
    draft = valid_draft(first)
    version_propose(version=draft, by=first, rationale=RATIONALE)
    version_withdraw(version=draft, by=first, note="Forgot the MSP targets.")
    version_propose(version=draft, by=first)
    version_withdraw(version=draft, by=second, note="Weights too steep.")
    version_propose(version=draft, by=first)
    version_approve(version=draft, by=second, note="Agreed in the program review.")
    version_activate(version=draft, by=first, effective_from="FY2026-Q4")
    events = AuditEvent.objects.filter(target_id=str(draft.pk), verb__startswith="scorecard_version.").order_by("pk")
    assert [(e.verb, e.actor) for e in events] == [
        ("scorecard_version.created", first),
        ("scorecard_version.proposed", first),
        ("scorecard_version.withdrawn", first),
        ("scorecard_version.proposed", first),
        ("scorecard_version.rejected", second),
        ("scorecard_version.proposed", first),
        ("scorecard_version.approved", second),
        ("scorecard_version.activated", first),
    ]
    rejected = events.get(verb="scorecard_version.rejected")
    assert rejected.changes["note"] == [None, "Weights too steep."]
    assert all(event.created_at for event in events)


def test_the_same_admin_cannot_approve_their_own_proposal(in_a, admins):
    first, _ = admins
    draft = valid_draft(first)
    version_propose(version=draft, by=first, rationale=RATIONALE)
    with pytest.raises(ValidationError) as error:
        version_approve(version=draft, by=first)
    assert error.value.messages == [
        "You proposed this version, so another administrator must approve it: changing the rules takes two people."
    ]
    draft.refresh_from_db()
    assert draft.status == VersionStatus.PROPOSED and draft.approved_by is None


def test_a_proposal_needs_a_rationale(in_a, admins):
    draft = valid_draft(admins[0])
    with pytest.raises(ValidationError) as error:
        version_propose(version=draft, by=admins[0], rationale="   ")
    assert "rationale" in error.value.message_dict
    draft.refresh_from_db()
    assert draft.status == VersionStatus.DRAFT


def test_a_proposal_must_pass_validation_and_lists_every_problem(in_a, admins):
    draft = valid_draft(admins[0])
    item = ScorecardItem.objects.get(version=draft, metric__key="revenue_won")
    item_update(item=item, by=admins[0], weight="50", target="0")
    with pytest.raises(ValidationError) as error:
        version_propose(version=draft, by=admins[0], rationale=RATIONALE)
    assert len(error.value.messages) == 3  # floor = target, and both segments' weights
    draft.refresh_from_db()
    assert draft.status == VersionStatus.DRAFT and draft.rationale == ""


def test_sending_back_to_draft_needs_a_note(in_a, admins):
    draft = valid_draft(admins[0])
    version_propose(version=draft, by=admins[0], rationale=RATIONALE)
    with pytest.raises(ValidationError) as error:
        version_withdraw(version=draft, by=admins[1], note=" ")
    assert "note" in error.value.message_dict


@pytest.mark.parametrize("role", [Role.PARTNER_MANAGER, Role.EXECUTIVE])
def test_only_administrators_take_governance_steps(in_a, admins, role):
    draft = valid_draft(admins[0])
    someone = in_a.users[role.value]
    with pytest.raises(PermissionDenied):
        version_propose(version=draft, by=someone, rationale=RATIONALE)
    version_propose(version=draft, by=admins[0], rationale=RATIONALE)
    with pytest.raises(PermissionDenied):
        version_approve(version=draft, by=someone)


def test_an_api_key_cannot_take_governance_steps(in_a, admins):
    draft = valid_draft(admins[0])
    key, _ = in_a.write_key
    with pytest.raises(PermissionDenied, match="signed in as themselves"):
        version_propose(version=draft, by=key, rationale=RATIONALE)


def _at(status: str, admins) -> ScorecardVersion:
    first, second = admins
    draft = valid_draft(first, name=f"Scorecard {status}")
    if status == VersionStatus.DRAFT:
        return draft
    version_propose(version=draft, by=first, rationale=RATIONALE)
    if status == VersionStatus.PROPOSED:
        return draft
    version_approve(version=draft, by=second)
    if status == VersionStatus.APPROVED:
        return draft
    version_activate(version=draft, by=first, effective_from="FY2026-Q1")
    if status == VersionStatus.ACTIVE:
        return draft
    successor = version_create_draft(scorecard=draft.scorecard, by=first)
    approved(successor, admins)
    version_activate(version=successor, by=first, effective_from="FY2026-Q3")
    draft.refresh_from_db()
    assert draft.status == VersionStatus.RETIRED
    return draft


def _steps(admins):
    first, second = admins
    return {
        "propose": lambda v: version_propose(version=v, by=first, rationale=RATIONALE),
        "withdraw": lambda v: version_withdraw(version=v, by=first, note="Not now."),
        "approve": lambda v: version_approve(version=v, by=second),
        "activate": lambda v: version_activate(version=v, by=first, effective_from="FY2026-Q4"),
    }


LEGAL = {
    (VersionStatus.DRAFT, "propose"),
    (VersionStatus.PROPOSED, "withdraw"),
    (VersionStatus.PROPOSED, "approve"),
    (VersionStatus.APPROVED, "activate"),
}
ILLEGAL = [
    (status, step)
    for status in VersionStatus.values
    for step in ("propose", "withdraw", "approve", "activate")
    if (status, step) not in LEGAL
]


@pytest.mark.parametrize("status, step", ILLEGAL, ids=[f"{s}-{t}" for s, t in ILLEGAL])
def test_every_illegal_transition_is_refused_with_a_clear_message(in_a, admins, status, step):
    version = _at(status, admins)
    before = verbs()
    with pytest.raises(ValidationError) as error:
        _steps(admins)[step](version)
    [message] = error.value.messages
    assert message.startswith(f"Version {version.number} is ") and "so it cannot be" in message
    assert error.value.error_list[0].code == "illegal_transition"
    version.refresh_from_db()
    assert version.status == status
    assert verbs() == before


@pytest.mark.parametrize("status", [VersionStatus.PROPOSED, VersionStatus.APPROVED, VersionStatus.ACTIVE, "retired"])
def test_versions_past_draft_never_change(in_a, admins, status):
    version = _at(status, admins)
    item = ScorecardItem.objects.filter(version=version).first()
    admin = admins[0]
    attempts = [
        lambda: version_update(version=version, by=admin, band_excellent="90"),
        lambda: version_update(version=version, by=admin, rationale="Rewritten history."),
        lambda: item_add(version=version, by=admin, metric=metric("deals_registered"), weight="5"),
        lambda: item_update(item=item, by=admin, weight="1"),
        lambda: item_remove(item=item, by=admin),
        lambda: version_discard(version=version, by=admin),
    ]
    for attempt in attempts:
        with pytest.raises(ValidationError) as error:
            attempt()
        assert "can no longer be changed; create a new draft to change the rules" in error.value.messages[0]
    version.refresh_from_db()
    assert version.band_excellent == Decimal("80") and version.rationale == RATIONALE
    assert ScorecardItem.objects.filter(version=version).count() == 4


def test_a_discarded_draft_is_gone_and_audited(in_a, admins):
    draft = valid_draft(admins[0])
    version_discard(version=draft, by=admins[0])
    assert not ScorecardVersion.objects.filter(pk=draft.pk).exists()
    assert verbs()[-1] == "scorecard_version.discarded"


def test_activation_names_a_period_of_the_versions_kind_after_the_one_in_force(in_a, admins):
    world_version = in_a.extra["scorecards"].version
    draft = version_create_draft(scorecard=world_version.scorecard, by=admins[0])
    approved(draft, admins)
    for period, expected in [
        ("next quarter", "is not a period"),
        ("FY2026-M11", "This version scores quarters; name a quarter such as FY2026-Q3."),
        (world_version.effective_from, f"Version 1 is in force from {world_version.effective_from}"),
    ]:
        with pytest.raises(ValidationError) as error:
            version_activate(version=draft, by=admins[0], effective_from=period)
        assert expected in error.value.message_dict["effective_from"][0]
    draft.refresh_from_db()
    world_version.refresh_from_db()
    assert (draft.status, world_version.status) == (VersionStatus.APPROVED, VersionStatus.ACTIVE)


def test_activating_a_version_for_a_period_under_way_asks_for_a_recompute(
    in_a, admins, recompute_calls, django_capture_on_commit_callbacks
):
    from scorecards.models import Metric
    from scorecards.services.observations import observation_record

    world_version = in_a.extra["scorecards"].version
    draft = version_create_draft(scorecard=world_version.scorecard, by=admins[0])
    approved(draft, admins)
    under_way = period_containing(timezone.localdate(), kind=QUARTER, start_month=in_a.tenant.fiscal_year_start_month)
    observation_record(
        partner=in_a.partners[0],
        metric=Metric.objects.get(key="pipeline_created"),
        period=under_way.key,
        value="1000",
        by=admins[0],
    )
    before = recompute_calls()
    with django_capture_on_commit_callbacks(execute=True):
        version_activate(version=draft, by=admins[0], effective_from=under_way.key)
    assert recompute_calls()[len(before) :] == [(under_way.key, f"version 2 of {world_version.scorecard} activated")]


def test_activation_does_not_score_a_period_under_way_that_has_no_data_yet(
    in_a, admins, recompute_calls, django_capture_on_commit_callbacks
):
    world_version = in_a.extra["scorecards"].version
    draft = version_create_draft(scorecard=world_version.scorecard, by=admins[0])
    approved(draft, admins)
    under_way = period_containing(timezone.localdate(), kind=QUARTER, start_month=in_a.tenant.fiscal_year_start_month)
    with django_capture_on_commit_callbacks(execute=True):
        version_activate(version=draft, by=admins[0], effective_from=under_way.key)
    # Scoring it now would mark every partner as missing data; its first values will ask instead.
    assert recompute_calls() == []


# --- How you are scored ------------------------------------------------------------------------------------


def test_partners_read_the_rules_in_force_for_their_type_with_the_change_history(in_a, admins):
    world = in_a.extra["scorecards"]
    successor = version_create_draft(scorecard=world.scorecard, by=admins[0])
    item_update(
        item=ScorecardItem.objects.get(version=successor, metric__key="pipeline_created"), by=admins[0], weight="30"
    )
    item_update(
        item=ScorecardItem.objects.get(version=successor, metric__key="customer_satisfaction"),
        by=admins[0],
        weight="40",
    )
    version_propose(version=successor, by=admins[0], rationale="Satisfaction counts more than pipeline now.")
    version_approve(version=successor, by=admins[1])
    version_activate(version=successor, by=admins[0], effective_from="FY2026-Q4")

    [rules] = published_rules(partner_type="reseller")
    assert rules.version_number == 2 and rules.effective_from == "FY2026-Q4"
    assert rules.rationale == "Satisfaction counts more than pipeline now."
    assert [(item.metric_key, item.weight, item.is_core) for item in rules.items] == [
        ("pipeline_created", Decimal("30"), True),
        ("customer_satisfaction", Decimal("40"), True),
        ("training_completion_rate", Decimal("30"), False),
    ]
    assert [(past.number, past.status, past.effective_from, past.effective_until) for past in rules.history] == [
        (2, VersionStatus.ACTIVE, "FY2026-Q4", None),
        (1, VersionStatus.RETIRED, world.periods[0], "FY2026-Q3"),
    ]
    assert rules.history[1].rationale == world.version.rationale
    [msp_rules] = published_rules(partner_type="msp")
    assert "lead_response_time" in [item.metric_key for item in msp_rules.items]
    assert published_rules(partner_type="referral") == []


def test_drafts_and_proposals_are_never_published(in_a, admins):
    draft = valid_draft(admins[0])
    version_propose(version=draft, by=admins[0], rationale=RATIONALE)
    assert [rules.version_id for rules in published_rules(partner_type="reseller")] == [
        in_a.extra["scorecards"].version.pk
    ]
