"""Governed scorecard rules: scorecards, draft versions and their items, and the approval workflow.

A version moves draft -> proposed -> approved -> active, and an active version is retired when a
successor is activated. Only drafts change; everything past draft is the record of what was
published. Two administrators are needed to change the rules: one proposes, another approves.

Every transition locks the scorecard row first, so two administrators acting on versions of the
same scorecard at once (say, activating two approved versions) are serialized; edits of a draft
lock the version row, which a transition of that version also locks.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.forms.models import model_to_dict
from django.utils import timezone

from partnerhub.partners.models import PartnerType
from partnerhub.tenancy.audit import audit, diff
from partnerhub.tenancy.context import current_tenant_id
from partnerhub.tenancy.models import ApiKey, Membership, Tenant, User
from partnerhub.tenancy.roles import Capability
from scorecards.models import (
    PERIOD_KINDS,
    Metric,
    MetricObservation,
    MissingData,
    Normalization,
    RubricKind,
    Scorecard,
    ScorecardItem,
    ScorecardVersion,
    Unit,
    VersionStatus,
)
from scorecards.periods import PeriodError, parse_period, period_containing
from scorecards.services.observations import schedule_recompute_on_commit

HUNDRED = Decimal("100")
SCORECARD_EDITABLE_FIELDS = ("name", "description")
VERSION_EDITABLE_FIELDS = (
    "partner_types",
    "period_kind",
    "band_excellent",
    "band_good",
    "missing_data",
    "min_completeness",
    "rationale",
)
ITEM_EDITABLE_FIELDS = (
    "metric",
    "weight",
    "applies_to",
    "normalization",
    "segment_targets",
    "rubric",
    "floor",
    "target",
    "cap",
    "bands",
    "position",
)
# Settings a new draft takes over from the version it copies.
COPIED_VERSION_FIELDS = (
    "partner_types",
    "period_kind",
    "band_excellent",
    "band_good",
    "missing_data",
    "min_completeness",
)
COPIED_ITEM_FIELDS = (*(field for field in ITEM_EDITABLE_FIELDS if field != "metric"), "metric_id")

# The only legal moves; "retired" is reached only when a successor is activated.
TRANSITIONS: dict[str, frozenset[str]] = {
    VersionStatus.DRAFT: frozenset({VersionStatus.PROPOSED}),
    VersionStatus.PROPOSED: frozenset({VersionStatus.DRAFT, VersionStatus.APPROVED}),
    VersionStatus.APPROVED: frozenset({VersionStatus.ACTIVE}),
    VersionStatus.ACTIVE: frozenset({VersionStatus.RETIRED}),
    VersionStatus.RETIRED: frozenset(),
}
WHAT_IS_POSSIBLE = {
    VersionStatus.DRAFT: "A draft can be edited, then proposed.",
    VersionStatus.PROPOSED: "A proposed version can be approved by another administrator, or sent back to draft.",
    VersionStatus.APPROVED: "An approved version can only be activated from a named period.",
    VersionStatus.ACTIVE: "An active version never changes; create a new draft to change the rules.",
    VersionStatus.RETIRED: "A retired version is kept as history and never changes.",
}
STATUS_WORDS = {
    VersionStatus.DRAFT: "a draft",
    VersionStatus.PROPOSED: "proposed",
    VersionStatus.APPROVED: "approved",
    VersionStatus.ACTIVE: "active",
    VersionStatus.RETIRED: "retired",
}


# --- Checks shared by the services ----------------------------------------------------------------


def _require_admin(by: User | ApiKey | None, doing: str) -> Membership:
    """The acting administrator's membership; the governance steps are taken by people, by name."""
    if not isinstance(by, User):
        raise PermissionDenied(f"Only an administrator, signed in as themselves, can {doing} a scorecard version.")
    membership = Membership.objects.filter(user=by).first()
    if membership is None or not membership.can(Capability.MANAGE_SCORECARDS):
        raise PermissionDenied(f"Only administrators can {doing} a scorecard version.")
    return membership


def _refuse_unless_allowed(version: ScorecardVersion, target: str, doing: str) -> None:
    if target not in TRANSITIONS[version.status]:
        raise ValidationError(
            f"Version {version.number} is {STATUS_WORDS[version.status]}, so it cannot be {doing}. "
            f"{WHAT_IS_POSSIBLE[version.status]}",
            code="illegal_transition",
        )


def _require_draft(version: ScorecardVersion) -> None:
    if version.status != VersionStatus.DRAFT:
        raise ValidationError(
            f"Version {version.number} is {STATUS_WORDS[version.status]} and can no longer be changed; "
            "create a new draft to change the rules.",
            code="not_a_draft",
        )


def _lock_scorecard(scorecard_id: int) -> None:
    if not list(Scorecard.objects.select_for_update().filter(pk=scorecard_id).values_list("pk", flat=True)):
        raise ValidationError("This scorecard no longer exists.")


def _lock_version(version: ScorecardVersion, *, scorecard_too: bool) -> ScorecardVersion:
    """Lock the version (after its scorecard, for transitions) and reload it: decide on fresh state."""
    if scorecard_too:
        _lock_scorecard(version.scorecard_id)
    if not list(ScorecardVersion.objects.select_for_update().filter(pk=version.pk).values_list("pk", flat=True)):
        raise ValidationError("This scorecard version no longer exists.")
    version.refresh_from_db()
    return version


def _decimal(value: Any, field: str, *, allow_none: bool = False) -> Decimal | None:
    if value is None or value == "":
        if allow_none:
            return None
        raise ValidationError({field: "Enter a number."})
    if isinstance(value, bool):
        raise ValidationError({field: "Enter a number."})
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValidationError({field: "Enter a number."}) from None
    if not number.is_finite():
        raise ValidationError({field: "Enter a number."})
    return number


def _json_number(value: Decimal) -> int | float:
    """A number as JSON stores it: integral values as integers, others as their shortest float."""
    return int(value) if value == value.to_integral_value() else float(value)


def _partner_type_keys(value: Any, field: str) -> list[str]:
    """A list of the tenant's partner type keys, in the order given, each once."""
    if not isinstance(value, list | tuple) or not all(isinstance(key, str) for key in value):
        raise ValidationError({field: 'Give partner types as a list of their keys, e.g. ["reseller", "msp"].'})
    keys = list(dict.fromkeys(key.strip() for key in value if key.strip()))
    known = set(PartnerType.objects.filter(key__in=keys).values_list("key", flat=True))
    unknown = [key for key in keys if key not in known]
    if unknown:
        raise ValidationError({field: f"Unknown partner type: {', '.join(unknown)}."})
    return keys


def _type_names() -> dict[str, str]:
    return dict(PartnerType.objects.values_list("key", "name"))


def _tenant() -> Tenant:
    return Tenant.objects.get(pk=current_tenant_id())


# --- Scorecards -----------------------------------------------------------------------------------


def _clean_scorecard(scorecard: Scorecard) -> None:
    scorecard.name = (scorecard.name or "").strip()
    scorecard.description = (scorecard.description or "").strip()
    if not scorecard.name:
        raise ValidationError({"name": "Give the scorecard a name."})
    if Scorecard.objects.exclude(pk=scorecard.pk).filter(name__iexact=scorecard.name).exists():
        raise ValidationError({"name": "A scorecard with this name already exists."})
    scorecard.full_clean()


@transaction.atomic
def scorecard_create(*, name: str, description: str = "", by: User | ApiKey) -> Scorecard:
    """Add a scorecard; its rules are written in versions."""
    scorecard = Scorecard(name=name, description=description)
    _clean_scorecard(scorecard)
    try:
        with transaction.atomic():
            scorecard.save()
    except IntegrityError as error:
        raise ValidationError({"name": "A scorecard with this name was saved at the same time."}) from error
    audit(
        actor=by,
        verb="scorecard.created",
        target=scorecard,
        changes=diff({}, {"name": scorecard.name, "description": scorecard.description}),
    )
    return scorecard


@transaction.atomic
def scorecard_update(*, scorecard: Scorecard, by: User | ApiKey, **fields: Any) -> Scorecard:
    """Rename a scorecard or change its description (its rules change only through versions)."""
    unknown = set(fields) - set(SCORECARD_EDITABLE_FIELDS)
    if unknown:
        raise ValidationError({field: "This field cannot be set." for field in sorted(unknown)})
    before = model_to_dict(scorecard, SCORECARD_EDITABLE_FIELDS)
    for field, value in fields.items():
        setattr(scorecard, field, value)
    try:
        _clean_scorecard(scorecard)
        with transaction.atomic():
            scorecard.save(update_fields=list(SCORECARD_EDITABLE_FIELDS))
    except (ValidationError, IntegrityError) as error:
        scorecard.refresh_from_db()
        if isinstance(error, IntegrityError):
            raise ValidationError({"name": "A scorecard with this name was saved at the same time."}) from error
        raise
    changes = diff(before, model_to_dict(scorecard, SCORECARD_EDITABLE_FIELDS))
    if changes:
        audit(actor=by, verb="scorecard.updated", target=scorecard, changes=changes)
    return scorecard


# --- Draft versions -------------------------------------------------------------------------------


def _version_snapshot(version: ScorecardVersion) -> dict[str, Any]:
    return model_to_dict(version, VERSION_EDITABLE_FIELDS)


@transaction.atomic
def version_create_draft(
    *, scorecard: Scorecard, by: User | ApiKey, copy_latest: bool = True, **fields: Any
) -> ScorecardVersion:
    """Start a new draft of a scorecard's rules, by default a copy of its latest version's.

    The copy takes the settings and items, never the rationale: each version says why it exists.
    ``fields`` (the draft's settings, as for ``version_update``) apply on top of the copy.
    """
    cleaned = _clean_version_fields(fields)
    _lock_scorecard(scorecard.pk)  # numbers are given out one at a time
    versions = ScorecardVersion.objects.filter(scorecard=scorecard)
    number = (versions.aggregate(highest=Max("number"))["highest"] or 0) + 1
    latest = versions.order_by("-number").first() if copy_latest else None
    draft = ScorecardVersion(scorecard=scorecard, number=number, status=VersionStatus.DRAFT, created_by=_user(by))
    if latest is not None:
        for field in COPIED_VERSION_FIELDS:
            setattr(draft, field, getattr(latest, field))
    for field, value in cleaned.items():
        setattr(draft, field, value)
    if draft.band_good > draft.band_excellent:
        raise ValidationError({"band_good": "The “good” threshold must not be above the “excellent” one."})
    # Partner types may be empty while drafting (validation says so); an API key creates drafts too.
    draft.full_clean(exclude=["partner_types", "created_by"])
    draft.save()
    if latest is not None:
        ScorecardItem.objects.bulk_create(
            ScorecardItem(
                tenant_id=draft.tenant_id,
                version=draft,
                **{field: getattr(item, field) for field in COPIED_ITEM_FIELDS},
            )
            for item in ScorecardItem.objects.filter(version=latest).order_by("position", "pk")
        )
    audit(
        actor=by,
        verb="scorecard_version.created",
        target=draft,
        changes={"number": [None, number], "copied_from": [None, latest.number if latest else None]},
    )
    return draft


def _user(by: User | ApiKey | None) -> User | None:
    return by if isinstance(by, User) else None


def _clean_version_fields(fields: dict[str, Any]) -> dict[str, Any]:
    unknown = set(fields) - set(VERSION_EDITABLE_FIELDS)
    if unknown:
        raise ValidationError({field: "This field cannot be set." for field in sorted(unknown)})
    cleaned: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for field, value in fields.items():
        try:
            if field == "partner_types":
                cleaned[field] = _partner_type_keys(value, field)
            elif field == "period_kind":
                if value not in dict(PERIOD_KINDS):
                    raise ValidationError({field: "Choose quarter or month."})
                cleaned[field] = value
            elif field in ("band_excellent", "band_good"):
                number = _decimal(value, field)
                if not 0 <= number <= HUNDRED:
                    raise ValidationError({field: "A rating threshold is a total between 0 and 100."})
                cleaned[field] = number
            elif field == "min_completeness":
                number = _decimal(value, field)
                if not 0 <= number <= 1:
                    raise ValidationError({field: "Give the minimum completeness as a share between 0 and 1."})
                cleaned[field] = number
            elif field == "missing_data":
                if value not in MissingData.values:
                    raise ValidationError({field: f"Choose one of: {', '.join(MissingData.values)}."})
                cleaned[field] = value
            elif field == "rationale":
                cleaned[field] = (value or "").strip() if isinstance(value, str | type(None)) else value
                if not isinstance(cleaned[field], str):
                    raise ValidationError({field: "Write the rationale as text."})
        except ValidationError as error:
            for name, messages in error.message_dict.items():
                errors.setdefault(name, []).extend(messages)
    if errors:
        raise ValidationError(errors)
    return cleaned


@transaction.atomic
def version_update(*, version: ScorecardVersion, by: User | ApiKey, **fields: Any) -> ScorecardVersion:
    """Change a draft's settings: partner types, period kind, rating bands, missing data, rationale."""
    cleaned = _clean_version_fields(fields)
    _lock_version(version, scorecard_too=False)
    _require_draft(version)
    before = _version_snapshot(version)
    for field, value in cleaned.items():
        setattr(version, field, value)
    if version.band_good > version.band_excellent:
        version.refresh_from_db()
        raise ValidationError({"band_good": "The “good” threshold must not be above the “excellent” one."})
    version.full_clean(exclude=["partner_types", "created_by"])
    changes = diff(before, _version_snapshot(version))
    if changes:
        version.save(update_fields=sorted(changes))
        audit(actor=by, verb="scorecard_version.updated", target=version, changes=changes)
    return version


@transaction.atomic
def version_discard(*, version: ScorecardVersion, by: User | ApiKey) -> None:
    """Delete a draft that is not wanted; versions past draft are history and stay."""
    _lock_version(version, scorecard_too=True)
    _require_draft(version)
    audit(actor=by, verb="scorecard_version.discarded", target=version, changes={"number": [version.number, None]})
    version.delete()


# --- Items of a draft -----------------------------------------------------------------------------


def _clean_bands(value: Any) -> list[dict[str, int | float]]:
    message = 'Give bands as a list like [{"at_least": 1.2, "points": 100}, {"at_least": 1.0, "points": 80}].'
    if not isinstance(value, list | tuple):
        raise ValidationError({"bands": message})
    bands = []
    for band in value:
        if not isinstance(band, dict) or set(band) != {"at_least", "points"}:
            raise ValidationError({"bands": message})
        bands.append(
            {
                "at_least": _json_number(_decimal(band["at_least"], "bands")),
                "points": _json_number(_decimal(band["points"], "bands")),
            }
        )
    return bands


def _clean_segment_targets(value: Any) -> dict[str, int | float]:
    if not isinstance(value, dict):
        raise ValidationError({"segment_targets": 'Give targets per partner type, e.g. {"reseller": 250000}.'})
    keys = _partner_type_keys(list(value), "segment_targets")
    return {key: _json_number(_decimal(value[key], "segment_targets")) for key in keys}


def _clean_item_fields(fields: dict[str, Any]) -> dict[str, Any]:
    unknown = set(fields) - set(ITEM_EDITABLE_FIELDS)
    if unknown:
        raise ValidationError({field: "This field cannot be set." for field in sorted(unknown)})
    cleaned: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for field, value in fields.items():
        try:
            if field == "metric":
                if not isinstance(value, Metric) or value.tenant_id != current_tenant_id():
                    raise ValidationError({field: "Choose a metric of this workspace's catalogue."})
                if not value.is_active:
                    raise ValidationError({field: f"{value.name} is no longer in use in the catalogue."})
                cleaned[field] = value
            elif field == "weight":
                number = _decimal(value, field)
                if not 0 <= number <= HUNDRED:
                    raise ValidationError({field: "A weight is between 0 and 100."})
                cleaned[field] = number
            elif field == "applies_to":
                cleaned[field] = _partner_type_keys(value or [], field)
            elif field == "normalization":
                if value not in Normalization.values:
                    raise ValidationError({field: f"Choose one of: {', '.join(Normalization.values)}."})
                cleaned[field] = value
            elif field == "rubric":
                if value not in RubricKind.values:
                    raise ValidationError({field: f"Choose one of: {', '.join(RubricKind.values)}."})
                cleaned[field] = value
            elif field == "segment_targets":
                cleaned[field] = _clean_segment_targets(value or {})
            elif field in ("floor", "target"):
                cleaned[field] = _decimal(value, field, allow_none=True)
            elif field == "cap":
                number = _decimal(value, field)
                if not 0 < number <= HUNDRED:
                    raise ValidationError({field: "The most points an item gives is above 0 and at most 100."})
                cleaned[field] = number
            elif field == "bands":
                cleaned[field] = _clean_bands(value or [])
            elif field == "position":
                if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 32767:
                    raise ValidationError({field: "Give the position as a whole number from 0."})
                cleaned[field] = value
        except ValidationError as error:
            for name, messages in error.message_dict.items():
                errors.setdefault(name, []).extend(messages)
    if errors:
        raise ValidationError(errors)
    return cleaned


def _apply_defaults(item: ScorecardItem) -> None:
    # A percentile is already 0-100, best at 100: the natural linear rubric runs from 0 to 100.
    if (
        item.normalization == Normalization.PERCENTILE
        and item.rubric == RubricKind.LINEAR
        and item.floor is None
        and item.target is None
    ):
        item.floor, item.target = Decimal("0"), HUNDRED


def _item_snapshot(item: ScorecardItem) -> dict[str, Any]:
    values = model_to_dict(item, ITEM_EDITABLE_FIELDS)
    values["metric"] = item.metric.key if item.metric_id else None
    return values


def _save_item(item: ScorecardItem) -> None:
    if ScorecardItem.objects.filter(version_id=item.version_id, metric_id=item.metric_id).exclude(pk=item.pk).exists():
        raise ValidationError({"metric": "This metric is already in the version."})
    item.full_clean(exclude=["version", "metric"])
    try:
        with transaction.atomic():
            item.save()
    except IntegrityError as error:
        raise ValidationError({"metric": "This metric was added to the version at the same time."}) from error


@transaction.atomic
def item_add(*, version: ScorecardVersion, by: User | ApiKey, **fields: Any) -> ScorecardItem:
    """Add a metric to a draft with its weight, normalization and rubric."""
    if "metric" not in fields:
        raise ValidationError({"metric": "Choose the metric the item scores."})
    if "weight" not in fields:
        raise ValidationError({"weight": "Give the item a weight."})
    cleaned = _clean_item_fields(fields)
    _lock_version(version, scorecard_too=False)
    _require_draft(version)
    if "position" not in cleaned:
        highest = ScorecardItem.objects.filter(version=version).aggregate(highest=Max("position"))["highest"]
        cleaned["position"] = 0 if highest is None else highest + 1
    item = ScorecardItem(version=version, **cleaned)
    _apply_defaults(item)
    _save_item(item)
    audit(actor=by, verb="scorecard_item.added", target=item, changes=diff({}, _item_snapshot(item)))
    return item


@transaction.atomic
def item_update(*, item: ScorecardItem, by: User | ApiKey, **fields: Any) -> ScorecardItem:
    """Change an item of a draft."""
    cleaned = _clean_item_fields(fields)
    _lock_version(item.version, scorecard_too=False)
    _require_draft(item.version)
    before = _item_snapshot(item)
    for field, value in cleaned.items():
        setattr(item, field, value)
    _apply_defaults(item)
    try:
        _save_item(item)
    except ValidationError:
        item.refresh_from_db()
        raise
    changes = diff(before, _item_snapshot(item))
    if changes:
        audit(actor=by, verb="scorecard_item.updated", target=item, changes=changes)
    return item


@transaction.atomic
def item_remove(*, item: ScorecardItem, by: User | ApiKey) -> None:
    """Take an item out of a draft."""
    _lock_version(item.version, scorecard_too=False)
    _require_draft(item.version)
    audit(actor=by, verb="scorecard_item.removed", target=item, changes=diff(_item_snapshot(item), {}))
    item.delete()


# --- Validation -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VersionProblem:
    """Something that stops a version from being proposed, in words the editor shows."""

    message: str
    item_id: int | None = None
    partner_type: str | None = None

    def __str__(self) -> str:
        return self.message


def _plain(number: Decimal | float | int) -> str:
    text = format(Decimal(str(number)).normalize(), "f")
    return text


def _item_problems(item: ScorecardItem, segments: list[str], type_names: dict[str, str]) -> list[VersionProblem]:
    name = item.metric.name
    problems: list[str] = []
    if not item.metric.is_active:
        problems.append(f"{name} is no longer in use in the catalogue; remove it or bring the metric back.")
    if item.weight <= 0:
        problems.append(f"{name} has no weight; give it a weight or remove it.")
    if not 0 < item.cap <= HUNDRED:
        problems.append(f"{name}: the most points it gives must be above 0 and at most 100.")
    if item.rubric == RubricKind.LINEAR:
        if item.floor is None or item.target is None:
            problems.append(f"{name}: a linear rubric needs a floor (0 points) and a target (full points).")
        elif item.floor == item.target:
            problems.append(
                f"{name}: the floor and the target are both {_plain(item.floor)}; "
                "they must differ for points to rise between them."
            )
    else:
        bands = item.bands or []
        if not bands:
            problems.append(f"{name}: a banded rubric needs at least one band (a threshold and its points).")
        thresholds = [Decimal(str(band["at_least"])) for band in bands]
        if any(later <= earlier for earlier, later in itertools.pairwise(thresholds)):
            problems.append(f"{name}: list the bands from the lowest threshold to the highest, each threshold once.")
        for band in bands:
            points = Decimal(str(band["points"]))
            if not 0 <= points <= item.cap:
                problems.append(
                    f"{name}: a band gives {_plain(points)} points; band points are between 0 and "
                    f"{_plain(item.cap)} (the item's cap)."
                )
                break
    if item.normalization == Normalization.PER_SIZE and item.metric.unit not in (Unit.COUNT, Unit.CURRENCY):
        problems.append(
            f"{name}: per-size normalization divides by the partner's size, which makes sense for counts and "
            f"amounts, not for a {item.metric.get_unit_display().lower()}."
        )
    if item.normalization == Normalization.TARGET_ATTAINMENT:
        applicable = item.applies_to or segments
        targets = item.segment_targets or {}
        missing = [key for key in applicable if key not in targets]
        if missing:
            names = ", ".join(type_names.get(key, key) for key in missing)
            problems.append(f"{name}: attainment needs a target for every partner type it scores; missing: {names}.")
        if any(Decimal(str(value)) <= 0 for value in targets.values()):
            problems.append(f"{name}: attainment targets must be above 0.")
    outside = [key for key in item.applies_to or [] if key not in segments]
    if outside:
        names = ", ".join(type_names.get(key, key) for key in outside)
        problems.append(f"{name} is a plug-in for {names}, which this version does not score.")
    return [VersionProblem(message, item_id=item.pk) for message in problems]


def version_validate(version: ScorecardVersion) -> list[VersionProblem]:
    """Everything that stops a version from being proposed; an empty list means it may be."""
    type_names = _type_names()
    segments = list(version.partner_types or [])
    items = list(ScorecardItem.objects.filter(version=version).select_related("metric").order_by("position", "pk"))
    problems: list[VersionProblem] = []
    if not segments:
        problems.append(VersionProblem("Choose the partner types this version scores."))
    unknown = [key for key in segments if key not in type_names]
    if unknown:
        problems.append(VersionProblem(f"These partner types no longer exist: {', '.join(unknown)}."))
    if version.period_kind not in dict(PERIOD_KINDS):
        problems.append(VersionProblem("Choose whether the version scores quarters or months."))
    if not 0 <= version.band_good <= version.band_excellent <= HUNDRED:
        problems.append(
            VersionProblem(
                f"The rating thresholds must satisfy 0 ≤ good ({_plain(version.band_good)}) ≤ excellent "
                f"({_plain(version.band_excellent)}) ≤ 100."
            )
        )
    if not 0 <= version.min_completeness <= 1:
        problems.append(VersionProblem("The minimum completeness is a share between 0 and 1."))
    if not items:
        problems.append(VersionProblem("Add at least one metric."))
    for item in items:
        problems.extend(_item_problems(item, segments, type_names))
    for key in segments:
        applying = [item for item in items if not item.applies_to or key in item.applies_to]
        total = sum((item.weight for item in applying), Decimal("0"))
        if applying and total != HUNDRED:
            parts = ", ".join(f"{item.metric.name} {_plain(item.weight)}" for item in applying)
            problems.append(
                VersionProblem(
                    f"For {type_names.get(key, key)} partners the weights add up to {_plain(total)}, not 100 "
                    f"({parts}).",
                    partner_type=key,
                )
            )
        elif items and not applying:
            problems.append(VersionProblem(f"No metric scores {type_names.get(key, key)} partners.", partner_type=key))
    return problems


# --- Transitions ----------------------------------------------------------------------------------


def _refuse_problems(version: ScorecardVersion) -> None:
    problems = version_validate(version)
    if problems:
        raise ValidationError([problem.message for problem in problems], code="invalid_version")


@transaction.atomic
def version_propose(*, version: ScorecardVersion, by: User, rationale: str | None = None) -> ScorecardVersion:
    """Put a draft forward for approval; it must pass validation and say why."""
    _lock_version(version, scorecard_too=True)
    _refuse_unless_allowed(version, VersionStatus.PROPOSED, "proposed")
    _require_admin(by, "propose")
    before = {"status": version.status, "rationale": version.rationale}
    if rationale is not None:
        version.rationale = rationale.strip()
    if not version.rationale:
        version.refresh_from_db()
        raise ValidationError({"rationale": "Say why these rules are right: partners read this rationale."})
    try:
        _refuse_problems(version)
    except ValidationError:
        version.refresh_from_db()
        raise
    version.status = VersionStatus.PROPOSED
    version.proposed_by, version.proposed_at = by, timezone.now()
    version.save(update_fields=["status", "rationale", "proposed_by", "proposed_at"])
    audit(
        actor=by,
        verb="scorecard_version.proposed",
        target=version,
        changes=diff(before, {"status": version.status, "rationale": version.rationale}),
    )
    return version


@transaction.atomic
def version_withdraw(*, version: ScorecardVersion, by: User, note: str) -> ScorecardVersion:
    """Send a proposed version back to draft: withdrawn by its proposer, or rejected by another admin."""
    _lock_version(version, scorecard_too=True)
    _refuse_unless_allowed(version, VersionStatus.DRAFT, "sent back to draft")
    _require_admin(by, "withdraw or reject")
    note = (note or "").strip()
    if not note:
        raise ValidationError({"note": "Say why the proposal goes back to draft."})
    verb = "withdrawn" if version.proposed_by_id == by.pk else "rejected"
    proposer = version.proposed_by
    version.status = VersionStatus.DRAFT
    version.proposed_by, version.proposed_at = None, None
    version.save(update_fields=["status", "proposed_by", "proposed_at"])
    audit(
        actor=by,
        verb=f"scorecard_version.{verb}",
        target=version,
        changes={
            "status": [VersionStatus.PROPOSED, VersionStatus.DRAFT],
            "proposed_by": [proposer.email if proposer else None, None],
            "note": [None, note],
        },
    )
    return version


@transaction.atomic
def version_approve(*, version: ScorecardVersion, by: User, note: str = "") -> ScorecardVersion:
    """Approve a proposed version; the approver must be a different administrator than the proposer."""
    _lock_version(version, scorecard_too=True)
    _refuse_unless_allowed(version, VersionStatus.APPROVED, "approved")
    _require_admin(by, "approve")
    if version.proposed_by_id == by.pk:
        raise ValidationError(
            "You proposed this version, so another administrator must approve it: changing the rules takes two people.",
            code="own_proposal",
        )
    _refuse_problems(version)  # e.g. a metric taken out of the catalogue since the proposal
    version.status = VersionStatus.APPROVED
    version.approved_by, version.approved_at = by, timezone.now()
    version.save(update_fields=["status", "approved_by", "approved_at"])
    changes = {"status": [VersionStatus.PROPOSED, VersionStatus.APPROVED]}
    if (note or "").strip():
        changes["note"] = [None, note.strip()]
    audit(actor=by, verb="scorecard_version.approved", target=version, changes=changes)
    return version


@transaction.atomic
def version_activate(*, version: ScorecardVersion, by: User, effective_from: str) -> ScorecardVersion:
    """Put an approved version in force from a named period; the version it replaces is retired.

    The replaced version keeps scoring the periods before ``effective_from``.
    """
    _lock_version(version, scorecard_too=True)
    _refuse_unless_allowed(version, VersionStatus.ACTIVE, "activated")
    _require_admin(by, "activate")
    tenant = _tenant()
    try:
        period = parse_period(effective_from, start_month=tenant.fiscal_year_start_month)
    except PeriodError as error:
        raise ValidationError({"effective_from": str(error)}) from None
    if period.kind != version.period_kind:
        example = "FY2026-Q3" if version.period_kind == "quarter" else "FY2026-M07"
        kind = version.period_kind
        raise ValidationError({"effective_from": f"This version scores {kind}s; name a {kind} such as {example}."})
    previous = (
        ScorecardVersion.objects.select_for_update()
        .filter(scorecard_id=version.scorecard_id, status=VersionStatus.ACTIVE)
        .first()
    )
    if previous is not None and previous.effective_from:
        previous_start = parse_period(previous.effective_from, start_month=tenant.fiscal_year_start_month).start
        if period.start <= previous_start:
            raise ValidationError(
                {
                    "effective_from": f"Version {previous.number} is in force from {previous.effective_from}; "
                    "the new version must start in a later period."
                }
            )
    now = timezone.now()
    if previous is not None:
        # Retire first: the database allows one active version per scorecard at any moment.
        previous.status = VersionStatus.RETIRED
        previous.save(update_fields=["status"])
        audit(
            actor=by,
            verb="scorecard_version.retired",
            target=previous,
            changes={"status": [VersionStatus.ACTIVE, VersionStatus.RETIRED], "replaced_by": [None, version.number]},
        )
    version.status = VersionStatus.ACTIVE
    version.effective_from = period.key
    version.activated_at = now
    version.save(update_fields=["status", "effective_from", "activated_at"])
    audit(
        actor=by,
        verb="scorecard_version.activated",
        target=version,
        changes={"status": [VersionStatus.APPROVED, VersionStatus.ACTIVE], "effective_from": [None, period.key]},
    )
    today = timezone.localdate()
    if period.start <= today:
        # Periods already under way are scored again under the new rules, those that have data.
        # A period without observations yet is scored when its first values arrive: scoring it now
        # would mark every partner as missing data.
        current = period_containing(today, kind=period.kind, start_month=tenant.fiscal_year_start_month)
        started = [period]
        while started[-1] < current:
            started.append(started[-1].next())
        keys = [step.key for step in started]
        with_data = set(
            MetricObservation.objects.current()
            .filter(period__in=keys)
            .order_by()
            .values_list("period", flat=True)
            .distinct()
        )
        affected = [key for key in keys if key in with_data]
        schedule_recompute_on_commit(affected, reason=f"version {version.number} of {version.scorecard} activated")
    return version
