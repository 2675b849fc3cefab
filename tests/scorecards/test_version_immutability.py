"""Published rules are immutable in the database: no code path changes an approved, active or retired version.

The governance services refuse such edits themselves (tests/scorecards/test_governance.py); these
tests go around them, with raw queryset updates and model saves and deletes, and expect the
database to refuse and nothing to change. On PostgreSQL they run as the application role, under
row-level security, like the portal.
"""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction

from partnerhub.tenancy.context import tenant_scope
from partnerhub.tenancy.roles import Role
from scorecards.models import Scorecard, ScorecardItem, ScorecardVersion, VersionStatus
from scorecards.services.governance import (
    item_add,
    item_remove,
    item_update,
    version_activate,
    version_approve,
    version_create_draft,
    version_propose,
    version_update,
)
from tests.factories import MembershipFactory, TenantFactory, UserFactory
from tests.scorecards.scoring_setup import active_version, metric

PINNED = datetime.datetime(2026, 3, 14, 9, 30, tzinfo=datetime.UTC)
# What the lifecycle moves; every other column of a version is its rules or its record.
LIFECYCLE = {"status", "effective_from", "activated_at", "created_by_id", "proposed_by_id", "approved_by_id"}
TRIGGERS = {
    "postgresql": {"scorecards_version_rules_immutable", "scorecards_item_rules_immutable"},
    "sqlite": {
        "scorecards_version_rules_immutable",
        "scorecards_version_status_forward",
        "scorecards_version_activation_once",
        "scorecards_version_people_kept",
        "scorecards_version_kept",
        "scorecards_item_insert_immutable",
        "scorecards_item_update_immutable",
        "scorecards_item_delete_immutable",
    },
}


@pytest.fixture
def tenant(db):
    tenant = TenantFactory()
    with tenant_scope(tenant):
        yield tenant


@pytest.fixture
def active(tenant):
    return active_version(effective_from="FY2026-Q1")


def refused(match: str = "(?i)scorecard version"):
    """The database refuses the statement; the savepoint keeps the test's transaction usable."""

    class Refused:
        def __enter__(self):
            self.raises = pytest.raises(IntegrityError, match=match)
            self.raises.__enter__()
            self.atomic = transaction.atomic()
            self.atomic.__enter__()

        def __exit__(self, *exc):
            self.atomic.__exit__(*exc)
            return self.raises.__exit__(*exc)

    return Refused()


def snapshot(version: ScorecardVersion) -> tuple[dict, list[dict]]:
    """A version's row and its items' rows, as stored."""
    row = ScorecardVersion.objects.filter(pk=version.pk).values().get()
    items = list(ScorecardItem.objects.filter(version_id=version.pk).order_by("pk").values())
    return row, items


def published(active: ScorecardVersion, status: str) -> ScorecardVersion:
    """A version of the scorecard in ``status`` with the active version's items (a draft copy moved on)."""
    if status == VersionStatus.ACTIVE:
        return active
    copy = version_create_draft(scorecard=active.scorecard, by=None)
    ScorecardVersion.objects.filter(pk=copy.pk).update(status=status)
    copy.refresh_from_db()
    return copy


def rule_changes(version: ScorecardVersion) -> dict[str, object]:
    """A different value for every column of a version that is neither lifecycle nor people."""
    other_tenant = TenantFactory()
    return {
        "id": version.pk + 1000,
        "tenant_id": other_tenant.pk,
        "scorecard_id": Scorecard.objects.create(name="Another scorecard").pk,
        "number": version.number + 1,
        "partner_types": ["msp"],
        "period_kind": "month",
        "band_excellent": Decimal("90"),
        "band_good": Decimal("50"),
        "missing_data": "zero",
        "min_completeness": Decimal("0.9"),
        "rationale": "Changed after the fact.",
        "created_at": PINNED,
        "proposed_at": PINNED,
        "approved_at": PINNED,
    }


# --- The version's rules ---------------------------------------------------------------------------


def test_every_column_of_a_version_is_either_lifecycle_or_guarded(active):
    columns = {field.attname for field in ScorecardVersion._meta.concrete_fields}
    assert columns == LIFECYCLE | set(rule_changes(active)), (
        "A new column of ScorecardVersion: decide whether the lifecycle moves it, and on SQLite add it to "
        "the triggers of scorecards/migrations (PostgreSQL guards every column but the lifecycle's)."
    )


@pytest.mark.parametrize("status", [VersionStatus.APPROVED, VersionStatus.ACTIVE, VersionStatus.RETIRED])
def test_a_raw_update_of_a_published_versions_rules_is_refused_and_changes_nothing(active, status):
    version = published(active, status)
    before = snapshot(version)
    for column, value in rule_changes(version).items():
        with refused("cannot change"):
            ScorecardVersion.objects.filter(pk=version.pk).update(**{column: value})
    assert snapshot(version) == before


def test_saving_an_active_version_with_changed_rules_is_refused(active):
    before = snapshot(active)
    active.band_good = Decimal("70")
    active.rationale = "Quietly stricter."
    with refused("create a new draft"):
        active.save()
    active.refresh_from_db()
    assert snapshot(active) == before and active.band_good == Decimal("60")


def test_saving_an_active_version_unchanged_is_allowed(active):
    before = snapshot(active)
    active.save()
    assert snapshot(active) == before


@pytest.mark.parametrize(
    "start, end",
    [
        (VersionStatus.ACTIVE, VersionStatus.DRAFT),
        (VersionStatus.ACTIVE, VersionStatus.PROPOSED),
        (VersionStatus.ACTIVE, VersionStatus.APPROVED),
        (VersionStatus.RETIRED, VersionStatus.ACTIVE),
        (VersionStatus.RETIRED, VersionStatus.DRAFT),
        (VersionStatus.APPROVED, VersionStatus.DRAFT),
        (VersionStatus.APPROVED, VersionStatus.RETIRED),
    ],
)
def test_a_published_version_never_goes_back_or_skips_a_step(active, start, end):
    version = published(active, start)
    with refused("can only be activated"):
        ScorecardVersion.objects.filter(pk=version.pk).update(status=end)
    assert ScorecardVersion.objects.get(pk=version.pk).status == start


def test_the_period_a_version_is_in_force_from_is_set_once(active):
    with refused("is set once"):
        ScorecardVersion.objects.filter(pk=active.pk).update(effective_from="FY2027-Q1")
    with refused("is set once"):
        ScorecardVersion.objects.filter(pk=active.pk).update(activated_at=PINNED)
    with refused("is set once"):  # not even together with retiring it
        ScorecardVersion.objects.filter(pk=active.pk).update(status=VersionStatus.RETIRED, effective_from="FY2027-Q1")
    assert ScorecardVersion.objects.get(pk=active.pk).effective_from == "FY2026-Q1"


def test_the_people_on_the_record_stay_unless_they_are_deleted(active):
    approver, someone_else = UserFactory(), UserFactory()
    draft = version_create_draft(scorecard=active.scorecard, by=None)
    ScorecardVersion.objects.filter(pk=draft.pk).update(status=VersionStatus.RETIRED, approved_by=approver)
    with refused("part of its record"):
        ScorecardVersion.objects.filter(pk=draft.pk).update(approved_by=someone_else)
    # Deleting a person sets their references to NULL (on_delete=SET_NULL), with this very update.
    ScorecardVersion.objects.filter(approved_by=approver).update(approved_by=None)
    assert ScorecardVersion.objects.get(pk=draft.pk).approved_by_id is None


def test_a_published_version_cannot_be_deleted(active):
    before = snapshot(active)
    with refused():
        active.delete()
    assert snapshot(active) == before
    # Without items, the version's own guard refuses.
    approved = version_create_draft(scorecard=active.scorecard, by=None, copy_latest=False)
    ScorecardVersion.objects.filter(pk=approved.pk).update(status=VersionStatus.APPROVED)
    with refused("cannot be deleted"):
        ScorecardVersion.objects.filter(pk=approved.pk).delete()
    assert ScorecardVersion.objects.filter(pk=approved.pk).exists()


# --- Its items -------------------------------------------------------------------------------------


def test_items_of_an_active_version_cannot_be_changed_added_or_removed(active):
    before = snapshot(active)
    item = ScorecardItem.objects.filter(version=active).order_by("pk").first()
    with refused("cannot be added, changed or removed"):
        ScorecardItem.objects.filter(version=active).update(weight=Decimal("10"))
    item.weight = Decimal("45")
    with refused("cannot be added, changed or removed"):
        item.save()
    with refused("cannot be added, changed or removed"):
        item.delete()
    with refused("cannot be added, changed or removed"):
        ScorecardItem.objects.filter(pk=item.pk).delete()
    with refused("cannot be added, changed or removed"):
        ScorecardItem.objects.create(version=active, metric=metric("deal_velocity"), weight=Decimal("5"))
    with refused("cannot be added, changed or removed"):
        ScorecardItem.objects.bulk_create([ScorecardItem(version=active, metric=metric("nps"), weight=Decimal("5"))])
    assert snapshot(active) == before


def test_an_item_cannot_be_moved_into_or_out_of_an_active_version(active):
    draft = version_create_draft(scorecard=active.scorecard, by=None)
    extra = ScorecardItem.objects.create(version=draft, metric=metric("deal_velocity"), weight=Decimal("5"))
    before = snapshot(active)
    with refused("cannot be added, changed or removed"):
        ScorecardItem.objects.filter(pk=extra.pk).update(version=active)
    active_item = ScorecardItem.objects.filter(version=active).order_by("pk").first()
    ScorecardItem.objects.filter(pk=extra.pk).delete()
    with refused("cannot be added, changed or removed"):
        ScorecardItem.objects.filter(pk=active_item.pk).update(version=draft)
    assert snapshot(active) == before


# --- What stays possible ---------------------------------------------------------------------------


def test_drafts_stay_editable_raw_and_through_the_services(active):
    draft = version_create_draft(scorecard=active.scorecard, by=None)
    ScorecardVersion.objects.filter(pk=draft.pk).update(band_good=Decimal("55"), rationale="Being written.")
    item = ScorecardItem.objects.filter(version=draft).order_by("pk").first()
    item.weight = Decimal("40")
    item.save()
    ScorecardItem.objects.filter(pk=item.pk).update(weight=Decimal("45"))
    version_update(version=draft, by=None, band_excellent="85")
    added = item_add(version=draft, by=None, metric=metric("deal_velocity"), weight="5", floor="90", target="30")
    item_update(item=added, by=None, weight="10")
    item_remove(item=added, by=None)
    draft.refresh_from_db()
    assert (draft.band_good, draft.band_excellent, draft.rationale) == (Decimal("55"), Decimal("85"), "Being written.")
    assert ScorecardItem.objects.get(pk=item.pk).weight == Decimal("45")
    assert not ScorecardItem.objects.filter(pk=added.pk).exists()
    draft.delete()  # a draft that is not wanted is discarded, items and all


def test_activation_and_retirement_through_the_services_still_work(tenant):
    proposer, approver = (MembershipFactory(tenant=tenant, role=Role.ADMIN).user for _ in range(2))
    scorecard = Scorecard.objects.create(name="Channel scorecard")

    def put_in_force(effective_from: str, weights: tuple[str, str]) -> ScorecardVersion:
        draft = version_create_draft(scorecard=scorecard, by=proposer, copy_latest=False, partner_types=["reseller"])
        item_add(version=draft, by=proposer, metric=metric("revenue_won"), weight=weights[0], floor="0", target="9")
        item_add(version=draft, by=proposer, metric=metric("win_rate"), weight=weights[1], floor="0", target="50")
        version_propose(version=draft, by=proposer, rationale="Revenue first.")
        version_approve(version=draft, by=approver)
        # A period still to come: activating it schedules no recompute, whatever today is.
        return version_activate(version=draft, by=proposer, effective_from=effective_from)

    first = put_in_force("FY2031-Q1", ("70", "30"))
    first_rules = snapshot(first)[1]
    second = put_in_force("FY2031-Q3", ("60", "40"))
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == (VersionStatus.RETIRED, VersionStatus.ACTIVE)
    assert (first.effective_from, second.effective_from) == ("FY2031-Q1", "FY2031-Q3")
    assert second.approved_by == approver and second.activated_at is not None
    assert snapshot(first)[1] == first_rules  # the retired version's items are as they were published
    with refused("cannot change"):
        ScorecardVersion.objects.filter(pk=second.pk).update(band_excellent=Decimal("95"))


# --- The guard itself ------------------------------------------------------------------------------


def test_the_guard_is_installed_on_this_database(db):
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgenabled = 'O' "
                "AND tgrelid IN ('scorecards_scorecardversion'::regclass, 'scorecards_scorecarditem'::regclass)"
            )
        else:
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        installed = {name for (name,) in cursor.fetchall()}
    assert TRIGGERS[connection.vendor] <= installed


@pytest.mark.postgres
def test_the_guard_binds_the_application_role_under_row_level_security(active):
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
        role, superuser, bypass = cursor.fetchone()
    assert (role, superuser, bypass) == ("partnerhub_app", False, False)
    before = snapshot(active)
    with refused("cannot be added, changed or removed"), connection.cursor() as cursor:
        cursor.execute("UPDATE scorecards_scorecarditem SET weight = 1 WHERE version_id = %s", [active.pk])
    with refused("cannot change"), connection.cursor() as cursor:
        cursor.execute("UPDATE scorecards_scorecardversion SET rationale = 'x' WHERE id = %s", [active.pk])
    assert snapshot(active) == before
