"""Writes for the metric catalogue: the default seed, and admins' additions and changes."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.forms.models import model_to_dict

from partnerhub.partners.selectors import internal_users
from partnerhub.tenancy.audit import audit, diff
from partnerhub.tenancy.context import current_tenant_id
from partnerhub.tenancy.models import ApiKey, User
from scorecards.catalogue import DEFAULT_METRICS
from scorecards.models import Aggregation, Metric, ScorecardItem, VersionStatus

METRIC_EDITABLE_FIELDS = (
    "key",
    "name",
    "definition",
    "unit",
    "direction",
    "indicator",
    "pillar",
    "aggregation",
    "numerator",
    "denominator",
    "owner",
    "data_source",
    "plausible_min",
    "plausible_max",
    "is_active",
)
# What a metric's number means. Once a proposed or approved version scores with the metric, these
# stay as they are: changing them would change published rules without going through governance.
METRIC_SCORING_FIELDS = ("unit", "direction", "aggregation", "numerator", "denominator")


def metrics_seed_defaults() -> int:
    """Give the active tenant the default catalogue's metrics it does not have yet; returns how many."""
    tenant_id = current_tenant_id()
    existing = dict(Metric.objects.values_list("key", "pk"))
    missing = [spec for spec in DEFAULT_METRICS if spec.key not in existing]
    if not missing:
        return 0
    # Ratios name other metrics, so the metrics they divide are created first.
    for ratios in (False, True):
        batch = [spec for spec in missing if (spec.numerator is not None) is ratios]
        Metric.objects.bulk_create(
            Metric(
                tenant_id=tenant_id,
                key=spec.key,
                name=spec.name,
                definition=spec.definition,
                unit=spec.unit,
                direction=spec.direction,
                indicator=spec.indicator,
                pillar=spec.pillar,
                aggregation=spec.aggregation,
                numerator_id=existing.get(spec.numerator),
                denominator_id=existing.get(spec.denominator),
                data_source=spec.data_source,
                plausible_min=spec.plausible_min,
                plausible_max=spec.plausible_max,
            )
            for spec in batch
        )
        existing = dict(Metric.objects.values_list("key", "pk"))
    return len(missing)


def _decimal_or_none(value: Any, field: str) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValidationError({field: "Enter a number."}) from None
    if not number.is_finite():
        raise ValidationError({field: "Enter a number."})
    return number


def _normalize(fields: dict[str, Any]) -> dict[str, Any]:
    unknown = set(fields) - set(METRIC_EDITABLE_FIELDS)
    if unknown:
        raise ValidationError({field: "This field cannot be set." for field in sorted(unknown)})
    for field in ("key", "name", "definition", "data_source"):
        if isinstance(fields.get(field), str):
            fields[field] = fields[field].strip()
    if isinstance(fields.get("key"), str):
        fields["key"] = fields["key"].lower()
    for field in ("plausible_min", "plausible_max"):
        if field in fields:
            fields[field] = _decimal_or_none(fields[field], field)
    return fields


def _check(metric: Metric) -> None:
    """Rules a metric row cannot express as a constraint, reported on the field concerned."""
    errors: dict[str, str] = {}
    if metric.aggregation == Aggregation.RATIO:
        for field in ("numerator", "denominator"):
            related = getattr(metric, field)
            if related is None:
                errors[field] = "A ratio names the metric it divides (numerator) and the one it divides by."
            elif related.pk is not None and related.pk == metric.pk:
                errors[field] = "A ratio cannot divide by or into itself."
            elif related.tenant_id != current_tenant_id():
                errors[field] = "Choose a metric of this workspace."
        if not errors and metric.numerator_id == metric.denominator_id:
            errors["denominator"] = "Divide by a different metric than the numerator."
    else:
        for field in ("numerator", "denominator"):
            if getattr(metric, f"{field}_id") is not None:
                errors[field] = "Only ratio metrics name a numerator and a denominator."
    if (
        metric.plausible_min is not None
        and metric.plausible_max is not None
        and metric.plausible_min > metric.plausible_max
    ):
        errors["plausible_max"] = "The plausible maximum must not be below the minimum."
    if metric.owner_id is not None and not internal_users().filter(pk=metric.owner_id).exists():
        errors["owner"] = "The owner must be an internal member of this workspace."
    if metric.key and Metric.objects.exclude(pk=metric.pk).filter(key=metric.key).exists():
        errors["key"] = "A metric with this key already exists."
    if errors:
        raise ValidationError(errors)


def _save(metric: Metric) -> None:
    _check(metric)
    metric.full_clean()
    try:
        with transaction.atomic():
            metric.save()
    except IntegrityError as error:  # a concurrent writer took the key between the check and the insert
        raise ValidationError({"key": "A metric with this key was saved at the same time."}) from error


def _snapshot(metric: Metric) -> dict[str, Any]:
    values = model_to_dict(metric, METRIC_EDITABLE_FIELDS)
    for field in ("numerator", "denominator"):
        related = getattr(metric, field)
        values[field] = related.key if related is not None else None
    values["owner"] = metric.owner.email if metric.owner_id else None
    return values


def metric_in_governed_versions(metric: Metric) -> bool:
    """Whether a version past draft scores with this metric, or with a ratio built on it."""
    ratios = Metric.objects.filter(Q(numerator=metric) | Q(denominator=metric)).values("pk")
    return (
        ScorecardItem.objects.filter(Q(metric=metric) | Q(metric__in=ratios))
        .exclude(version__status=VersionStatus.DRAFT)
        .exists()
    )


@transaction.atomic
def metric_create(*, by: User | ApiKey, **fields: Any) -> Metric:
    """Add a metric to the active tenant's catalogue."""
    fields = _normalize(fields)
    metric = Metric(**fields)
    _save(metric)
    audit(actor=by, verb="metric.created", target=metric, changes=diff({}, _snapshot(metric)))
    return metric


@transaction.atomic
def metric_update(*, metric: Metric, by: User | ApiKey, **fields: Any) -> Metric:
    """Change a metric. Its key never changes; what its number means is fixed once rules use it."""
    fields = _normalize(fields)
    if "key" in fields and fields["key"] != metric.key:
        raise ValidationError({"key": "A metric's key cannot change: uploads and integrations refer to it."})
    fields.pop("key", None)
    changing = [
        field
        for field in METRIC_SCORING_FIELDS
        if field in fields
        and getattr(metric, f"{field}_id" if field in ("numerator", "denominator") else field)
        != getattr(fields[field], "pk", fields[field])
    ]
    if changing and metric_in_governed_versions(metric):
        raise ValidationError(
            {
                field: "Proposed or approved scorecard rules use this metric, so what its number means cannot "
                "change; add a new metric instead."
                for field in changing
            }
        )
    before = _snapshot(metric)
    for field, value in fields.items():
        setattr(metric, field, value)
    try:
        _save(metric)
    except ValidationError:
        metric.refresh_from_db()  # the caller's object must not keep values that were refused
        raise
    changes = diff(before, _snapshot(metric))
    if changes:
        audit(actor=by, verb="metric.updated", target=metric, changes=changes)
    return metric
