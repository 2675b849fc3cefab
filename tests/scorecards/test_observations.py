"""Recording observations: validation, append-only supersession, idempotency, bulk, and the database's guard."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from partnerhub.tenancy.context import tenant_scope
from partnerhub.tenancy.models import AuditEvent
from scorecards.models import Metric, MetricObservation, ObservationSource, RecomputeRun, RecomputeStatus, Score
from scorecards.periods import QUARTER, period_containing
from scorecards.services import observations
from scorecards.services.observations import observation_record, observations_bulk_record
from tests.factories import PartnerFactory, TenantFactory

PERIOD = "FY2026-Q2"


@pytest.fixture
def in_a(world):
    with tenant_scope(world.a.tenant):
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


def metric(key: str) -> Metric:
    return Metric.objects.get(key=key)


def record(world_tenant, value, *, key="revenue_won", period=PERIOD, partner=None, **extra):
    return observation_record(
        partner=partner or world_tenant.partners[0],
        metric=metric(key),
        period=period,
        value=value,
        source=extra.pop("source", ObservationSource.MANUAL),
        by=extra.pop("by", world_tenant.users["admin"]),
        **extra,
    )


def history(partner, key=PERIOD, metric_key="revenue_won"):
    return list(
        MetricObservation.objects.filter(partner=partner, metric__key=metric_key, period=key).order_by(
            "recorded_at", "pk"
        )
    )


# --- One value ------------------------------------------------------------------------------------------


def test_recording_a_value_stores_it_with_its_source_and_audits_it(in_a):
    observation, created = record(in_a, "184500.50", source_ref="crm-export-7", note="From the March export.")
    assert created
    stored = MetricObservation.objects.get(pk=observation.pk)
    assert stored.value == Decimal("184500.5") and stored.period == PERIOD
    assert (stored.source, stored.source_ref, stored.recorded_by) == ("manual", "crm-export-7", in_a.users["admin"])
    assert stored.superseded_by is None
    event = AuditEvent.objects.get(verb="observation.recorded")
    assert event.target_id == str(observation.pk)
    assert event.changes["value"] == [None, "184500.500000"] and event.changes["note"] == [
        None,
        "From the March export.",
    ]


def test_a_new_value_supersedes_the_current_one_and_keeps_the_history(in_a):
    partner = in_a.partners[0]
    first, _ = record(in_a, "100")
    second, created = record(in_a, "120", source=ObservationSource.CORRECTION)
    third, _ = record(in_a, "125")
    assert created
    rows = history(partner)
    assert [row.value for row in rows] == [Decimal("100"), Decimal("120"), Decimal("125")]
    assert [row.superseded_by_id for row in rows] == [second.pk, third.pk, None]
    assert MetricObservation.objects.current().get(partner=partner, metric__key="revenue_won", period=PERIOD) == third
    # Nothing but the pointer changed on the superseded rows.
    first_again = MetricObservation.objects.get(pk=first.pk)
    assert (first_again.value, first_again.source, first_again.recorded_at) == (
        first.value,
        "manual",
        first.recorded_at,
    )
    event = AuditEvent.objects.filter(verb="observation.recorded").order_by("pk").last()
    assert event.changes["value"] == ["120.000000", "125.000000"] and event.changes["supersedes"] == [None, second.pk]


def test_recording_the_value_in_force_again_adds_nothing(in_a):
    first, _ = record(in_a, "100", source_ref="req-1")
    again, created = record(in_a, "100.000", source_ref="req-1")
    other_source, created_too = record(in_a, "100", source_ref="req-2")
    assert again == first == other_source and not created and not created_too
    assert len(history(in_a.partners[0])) == 1
    assert AuditEvent.objects.filter(verb="observation.recorded").count() == 1


def test_a_repeated_source_reference_does_not_undo_a_later_correction(in_a):
    record(in_a, "100", source_ref="upload:abc")
    corrected, _ = record(in_a, "90", source=ObservationSource.CORRECTION, source_ref="correction:7")
    current, created = record(in_a, "100", source_ref="upload:abc")  # the same request, delivered again
    assert not created and current == corrected
    assert len(history(in_a.partners[0])) == 2


def test_keys_are_independent(in_a):
    record(in_a, "100")
    record(in_a, "100", partner=in_a.partners[1])
    record(in_a, "100", period="FY2026-Q1")
    record(in_a, "0.4", key="win_rate")
    assert MetricObservation.objects.filter(source=ObservationSource.MANUAL).current().count() == 4


@pytest.mark.parametrize(
    "period, message",
    [
        ("Q3 2026", "“Q3 2026” is not a period; write it like FY2026-Q3 or FY2026-M07."),
        ("FY2026-Q5", "There is no quarter 5 in a year."),
        ("FY2026-M13", "There is no month 13 in a year."),
        ("", "Name the period, like FY2026-Q3 or FY2026-M07."),
    ],
)
def test_a_period_that_is_not_one_is_refused_with_a_clear_message(in_a, period, message):
    with pytest.raises(ValidationError) as error:
        record(in_a, "1", period=period)
    assert error.value.message_dict == {"period": [message]}


def test_period_keys_are_stored_in_their_canonical_form(in_a):
    observation, _ = record(in_a, "1", period=" fy2026-q02 ")
    assert observation.period == "FY2026-Q2"


def test_periods_follow_the_tenants_fiscal_year_and_must_have_started(db):
    tenant = TenantFactory(fiscal_year_start_month=2)
    today = timezone.localdate()
    current = period_containing(today, kind=QUARTER, start_month=2)
    with tenant_scope(tenant):
        partner = PartnerFactory()
        revenue = Metric.objects.get(key="revenue_won")
        observation, _ = observation_record(partner=partner, metric=revenue, period=current.key, value="5", by=None)
        assert observation.period == current.key
        upcoming = current.next()
        with pytest.raises(ValidationError) as error:
            observation_record(partner=partner, metric=revenue, period=upcoming.key, value="5", by=None)
    assert error.value.message_dict["period"] == [
        f"{upcoming.key} has not started yet (it starts on {upcoming.start:%d %B %Y}); record values for periods "
        "under way or past."
    ]
    assert upcoming.start > today and upcoming.start - today < datetime.timedelta(days=93)


@pytest.mark.parametrize(
    "key, value, message",
    [
        (
            "win_rate",
            "1.5",
            "1.5 is outside the plausible range for Win rate: between 0 and 1 (a ratio: 0.25 means one in four).",
        ),
        (
            "renewal_rate",
            "185",
            "185 is outside the plausible range for Renewal rate: between 0 and 100 (a percentage: 85 means 85%).",
        ),
        ("revenue_won", "-10", "-10 is outside the plausible range for Revenue won: between 0 and 10000000000."),
        (
            "revenue_won",
            "1,234.50",
            "“1,234.50” is not a number; write it like 1234.5 (a dot for decimals, no thousands separators).",
        ),
        (
            "revenue_won",
            "NaN",
            "“NaN” is not a number; write it like 1234.5 (a dot for decimals, no thousands separators).",
        ),
        ("revenue_won", "", "Enter the value."),
        ("revenue_won", "1e20", "100000000000000000000 is too large to store."),
    ],
)
def test_values_outside_the_plausible_bounds_are_refused_naming_the_bounds(in_a, key, value, message):
    with pytest.raises(ValidationError) as error:
        record(in_a, value, key=key)
    assert error.value.message_dict == {"value": [message]}
    assert not MetricObservation.objects.filter(source=ObservationSource.MANUAL).exists()


def test_a_percentage_may_carry_its_sign_and_values_keep_six_decimals(in_a):
    percent, _ = record(in_a, "85.5 %", key="renewal_rate")
    assert percent.value == Decimal("85.5")
    precise, _ = record(in_a, "0.12345675", key="win_rate")
    assert str(MetricObservation.objects.get(pk=precise.pk).value) == "0.123457"


def test_period_and_value_problems_are_reported_together(in_a):
    with pytest.raises(ValidationError) as error:
        record(in_a, "lots", period="soon")
    assert set(error.value.message_dict) == {"period", "value"}


def test_a_metric_out_of_use_takes_no_new_values(in_a):
    Metric.objects.filter(key="revenue_won").update(is_active=False)
    with pytest.raises(ValidationError) as error:
        record(in_a, "1")
    assert error.value.message_dict == {"metric": ["Revenue won is no longer in use in the catalogue."]}


def test_another_tenants_partner_is_refused(world):
    with tenant_scope(world.a.tenant), pytest.raises(ValidationError) as error:
        record(world.a, "1", partner=world.b.partners[0])
    assert "partner" in error.value.message_dict


def test_a_change_asks_for_its_periods_to_be_recomputed_once_committed(
    in_a, recompute_calls, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        record(in_a, "100")
    assert recompute_calls() == [(PERIOD, "observations changed")]
    with django_capture_on_commit_callbacks(execute=True):
        record(in_a, "100")  # nothing changed, nothing to recompute
    assert recompute_calls() == [(PERIOD, "observations changed")]


def test_nothing_is_scheduled_when_the_change_is_rolled_back(in_a, recompute_calls, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        try:
            with transaction.atomic():
                record(in_a, "100")
                raise RuntimeError("the caller failed after recording")
        except RuntimeError:
            pass
    assert callbacks == [] and recompute_calls() == []


def test_a_recorded_value_is_scored_once_the_change_commits(in_a, django_capture_on_commit_callbacks):
    world = in_a.extra["scorecards"]
    period = world.periods[-1]
    with django_capture_on_commit_callbacks(execute=True):
        record(in_a, "400000", key="pipeline_created", period=period)
    run = RecomputeRun.objects.get(reason="observations changed")
    assert (run.version, run.period, run.status) == (world.version, period, RecomputeStatus.DONE)
    score = Score.objects.current().get(partner=in_a.partners[0], period=period)
    [pipeline] = [component for component in score.components if component["metric_key"] == "pipeline_created"]
    assert pipeline["raw"] == 400000


# --- Many values ------------------------------------------------------------------------------------------


def items(world_tenant, *rows):
    partner = world_tenant.partners[0].pk
    return [{"partner": partner, "metric": "revenue_won", "period": PERIOD, **row} for row in rows]


def test_bulk_records_every_item_and_reports_each(in_a):
    result = observations_bulk_record(
        items=items(in_a, {"value": "10"}, {"value": "0.3", "metric": "win_rate"}, {"value": 7, "period": "FY2026-Q1"}),
        by=in_a.users["partner_manager"],
    )
    assert result.written and result.statuses == ["created", "created", "created"] and result.errors == []
    again = observations_bulk_record(items=items(in_a, {"value": "10"}), by=in_a.users["partner_manager"])
    assert again.statuses == ["unchanged"] and again.observations[0] == result.observations[0]


def test_bulk_writes_one_audit_event_for_the_call_and_none_when_nothing_changed(in_a):
    by = in_a.users["partner_manager"]
    observations_bulk_record(items=items(in_a, {"value": "10", "source_ref": "crm:7"}), by=by)
    result = observations_bulk_record(
        items=items(
            in_a,
            {"value": "10", "source_ref": "crm:7"},
            {"value": "12", "period": "FY2026-Q1", "source_ref": "crm:8", "note": "Late deal"},
            {"value": "0.3", "metric": "win_rate", "source_ref": "crm:8"},
        ),
        by=by,
    )
    assert result.statuses == ["unchanged", "created", "created"]
    assert not AuditEvent.objects.filter(verb="observation.recorded").exists()
    event = AuditEvent.objects.filter(verb="observations.bulk_recorded").order_by("-pk").first()
    assert AuditEvent.objects.filter(verb="observations.bulk_recorded").count() == 2
    assert event.actor == by and event.target_type == "tenancy.tenant"
    assert event.changes == {
        "observations": [None, 2],
        "replaced": [None, 0],
        "unchanged": [None, 1],
        "periods": [None, ["FY2026-Q1", "FY2026-Q2"]],
        "source": [None, "manual"],
        "source_ref": [None, "crm:8"],
        "notes": [None, [f"{in_a.partners[0].name} · revenue_won · FY2026-Q1: Late deal"]],
    }
    observations_bulk_record(items=items(in_a, {"value": "10", "source_ref": "crm:7"}), by=by)
    assert AuditEvent.objects.filter(verb="observations.bulk_recorded").count() == 2


def test_bulk_all_or_nothing_writes_nothing_when_one_item_is_invalid(in_a):
    before = MetricObservation.objects.count()
    result = observations_bulk_record(
        items=items(
            in_a, {"value": "10"}, {"value": "-5"}, {"metric": "revenu_won", "value": "1"}, {"partner": 10**30}
        ),
        by=in_a.users["admin"],
        atomic=True,
    )
    assert not result.written and MetricObservation.objects.count() == before
    assert result.statuses == ["valid", "invalid", "invalid", "invalid"]
    by_item = {(e.position, e.field): e.message for e in result.errors}
    assert by_item[(1, "value")].startswith("-5 is outside the plausible range for Revenue won")
    assert by_item[(2, "metric")] == "There is no metric with the key “revenu_won”. Did you mean “revenue_won”?"
    assert by_item[(3, "partner")] == "There is no partner with this id."
    assert (3, "value") in by_item


def test_bulk_without_atomic_records_the_valid_items(in_a):
    result = observations_bulk_record(
        items=items(in_a, {"value": "10"}, {"value": "-5", "period": "FY2026-Q1"}), by=in_a.users["admin"], atomic=False
    )
    assert result.written and result.statuses == ["created", "invalid"]
    assert MetricObservation.objects.filter(period=PERIOD, metric__key="revenue_won").count() == 1


def test_bulk_refuses_two_values_for_one_key(in_a):
    result = observations_bulk_record(items=items(in_a, {"value": "10"}, {"value": "11"}), by=in_a.users["admin"])
    assert [(e.position, e.field, e.message) for e in result.errors] == [
        (1, "partner", "Repeats item 0: a partner has one value per metric and period.")
    ]


def test_bulk_partner_ids_of_another_tenant_are_unknown(world):
    with tenant_scope(world.a.tenant):
        result = observations_bulk_record(
            items=[{"partner": world.b.partners[0].pk, "metric": "revenue_won", "period": PERIOD, "value": 1}],
            by=world.a.users["admin"],
        )
    assert result.errors[0].message == "There is no partner with this id."


def test_bulk_has_a_size_limit(in_a, monkeypatch):
    monkeypatch.setattr(observations, "MAX_BULK_ITEMS", 2)
    with pytest.raises(ValidationError, match=r"Send at most 2 observations per request; this one has 3\."):
        observations_bulk_record(items=items(in_a, {"value": 1}, {"value": 2}, {"value": 3}), by=None)


def test_bulk_asks_for_one_recompute_per_period(in_a, recompute_calls, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        observations_bulk_record(
            items=items(
                in_a, {"value": "10"}, {"value": "0.3", "metric": "win_rate"}, {"value": 1, "period": "FY2026-Q1"}
            ),
            by=None,
        )
    # FY2026-Q1 comes before the active version's first period: no version scores it, so no run.
    assert sorted(recompute_calls()) == [(PERIOD, "observations changed")]


# --- The database's guard (PostgreSQL) -----------------------------------------------------------------------


def fetch(sql, params=()):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


@pytest.mark.postgres
def test_the_application_role_cannot_change_or_delete_an_observation(in_a):
    observation, _ = record(in_a, "100")
    for statement in (
        "UPDATE scorecards_metricobservation SET value = 1 WHERE id = %s",
        "UPDATE scorecards_metricobservation SET period = 'FY2020-Q1' WHERE id = %s",
        "DELETE FROM scorecards_metricobservation WHERE id = %s",
    ):
        with pytest.raises(DatabaseError, match="permission denied"), transaction.atomic():
            fetch(statement, [observation.pk])
    with pytest.raises(DatabaseError, match="permission denied"), transaction.atomic():
        MetricObservation.objects.filter(pk=observation.pk).update(value=Decimal("1"))
    assert MetricObservation.objects.get(pk=observation.pk).value == Decimal("100")


@pytest.mark.postgres
def test_superseding_is_the_one_change_the_application_role_may_make(in_a):
    first, _ = record(in_a, "100")
    second, created = record(in_a, "120")
    assert created
    first.refresh_from_db()
    assert first.superseded_by_id == second.pk and first.value == Decimal("100")
    [(current,)] = fetch(
        "SELECT count(*) FROM scorecards_metricobservation WHERE partner_id = %s AND metric_id = %s AND period = %s "
        "AND superseded_by_id IS NULL",
        [in_a.partners[0].pk, first.metric_id, PERIOD],
    )
    assert current == 1
