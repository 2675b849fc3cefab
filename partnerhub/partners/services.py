"""Writes for partners and partner types. Each validates, saves atomically and audits."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.forms.models import model_to_dict

from partnerhub.partners.models import DEFAULT_PARTNER_TYPES, Partner, PartnerType
from partnerhub.partners.selectors import internal_users
from partnerhub.tenancy.audit import audit, diff
from partnerhub.tenancy.models import ApiKey, User

# Fields a create or update may set; everything else is owned by the system.
PARTNER_EDITABLE_FIELDS = (
    "name",
    "partner_type",
    "lifecycle_stage",
    "status",
    "region",
    "product_lines",
    "size",
    "hubspot_company_id",
    "salesforce_account_id",
    "external_ids",
    "manager",
    "website",
    "joined_on",
)


def partner_types_seed_defaults() -> None:
    """Give the active tenant the default partner types it does not have yet."""
    existing = set(PartnerType.objects.values_list("key", flat=True))
    for position, (key, name) in enumerate(DEFAULT_PARTNER_TYPES):
        if key not in existing:
            PartnerType.objects.create(key=key, name=name, position=position)


def _validate_manager(manager: User | None) -> None:
    if manager is not None and not internal_users().filter(pk=manager.pk).exists():
        raise ValidationError({"manager": "The partner manager must be an internal member of this workspace."})


def _normalize(fields: dict[str, Any]) -> dict[str, Any]:
    unknown = set(fields) - set(PARTNER_EDITABLE_FIELDS)
    if unknown:
        raise ValidationError({field: "This field cannot be set." for field in sorted(unknown)})
    for field in ("name", "region", "hubspot_company_id", "salesforce_account_id", "website"):
        if isinstance(fields.get(field), str):
            fields[field] = fields[field].strip()
    if "product_lines" in fields:
        lines = fields["product_lines"] or []
        if not isinstance(lines, list) or not all(isinstance(line, str) for line in lines):
            raise ValidationError({"product_lines": "Give product lines as a list of names."})
        # One entry per line whatever its case; the first spelling given wins, sorted for display.
        unique: dict[str, str] = {}
        for line in (line.strip() for line in lines):
            if line:
                unique.setdefault(line.casefold(), line)
        fields["product_lines"] = [unique[key] for key in sorted(unique)]
    if "external_ids" in fields:
        ids = fields["external_ids"] or {}
        if not isinstance(ids, dict) or not all(
            isinstance(k, str) and isinstance(v, str | int) for k, v in ids.items()
        ):
            raise ValidationError({"external_ids": 'Give other systems\' ids as {"system": "id"}.'})
        fields["external_ids"] = {str(k).strip(): str(v).strip() for k, v in ids.items() if str(k).strip()}
    return fields


def _snapshot(partner: Partner) -> dict[str, Any]:
    """The editable fields as an audit event records them: related rows by name, as they are now."""
    values = model_to_dict(partner, PARTNER_EDITABLE_FIELDS)
    values["partner_type"] = partner.partner_type.name if partner.partner_type_id else None
    values["manager"] = partner.manager.email if partner.manager_id else None
    return values


def _check_unique(partner: Partner) -> None:
    """Name and CRM ids are unique per tenant; report a clash on the field that clashes."""
    others = Partner.objects.exclude(pk=partner.pk)
    errors = {}
    if partner.name and others.filter(name__iexact=partner.name).exists():
        errors["name"] = "A partner with this name already exists."
    for field, label in (
        ("hubspot_company_id", "HubSpot company id"),
        ("salesforce_account_id", "Salesforce account id"),
    ):
        value = getattr(partner, field)
        if value and others.filter(**{field: value}).exists():
            errors[field] = f"Another partner already has this {label}."
    if errors:
        raise ValidationError(errors)


def _save(partner: Partner) -> None:
    _check_unique(partner)
    partner.full_clean()
    try:
        with transaction.atomic():
            partner.save()
    except IntegrityError as error:  # a concurrent writer won the race the validation checked
        raise ValidationError("Another partner with the same name or CRM id was saved at the same time.") from error


@transaction.atomic
def partner_create(*, by: User | ApiKey, **fields: Any) -> Partner:
    """Add a partner to the active tenant."""
    fields = _normalize(fields)
    _validate_manager(fields.get("manager"))
    partner = Partner(**fields)
    _save(partner)
    audit(
        actor=by,
        verb="partner.created",
        target=partner,
        changes=diff({}, _snapshot(partner)),
    )
    return partner


@transaction.atomic
def partner_update(*, partner: Partner, by: User | ApiKey, **fields: Any) -> Partner:
    """Change a partner's details; records exactly which fields changed."""
    fields = _normalize(fields)
    if "manager" in fields:
        _validate_manager(fields["manager"])
    before = _snapshot(partner)
    for field, value in fields.items():
        setattr(partner, field, value)
    try:
        _save(partner)
    except ValidationError:
        partner.refresh_from_db()  # the caller's object must not keep values that were refused
        raise
    changes = diff(before, _snapshot(partner))
    if changes:
        audit(actor=by, verb="partner.updated", target=partner, changes=changes)
    return partner
