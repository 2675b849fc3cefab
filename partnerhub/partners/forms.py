"""Forms for adding and editing partners. They parse input; the services validate and save."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from partnerhub.partners.models import LifecycleStage, Partner, PartnerStatus, PartnerType
from partnerhub.partners.selectors import internal_users
from partnerhub.partners.services import PARTNER_EDITABLE_FIELDS, partner_create, partner_update
from partnerhub.tenancy.models import User

MAX_PRODUCT_LINES = 50
MAX_PRODUCT_LINE_LENGTH = 100
MAX_EXTERNAL_IDS = 50
MAX_SYSTEM_LENGTH = 50
MAX_EXTERNAL_ID_LENGTH = 200


class ProductLinesField(forms.CharField):
    """Product lines typed as “Analytics, Cloud”, cleaned into a list of names."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 4000)
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if isinstance(value, list | tuple):
            return ", ".join(value)
        return value

    def clean(self, value):
        text = super().clean(value)
        lines: list[str] = []
        seen: set[str] = set()
        for name in (part.strip() for part in text.replace("\n", ",").split(",")):
            if not name or name.lower() in seen:
                continue
            if len(name) > MAX_PRODUCT_LINE_LENGTH:
                raise ValidationError(
                    "“%(start)s…” is too long for a product line (at most %(max)s characters).",
                    params={"start": name[:30], "max": MAX_PRODUCT_LINE_LENGTH},
                    code="product_line_too_long",
                )
            seen.add(name.lower())
            lines.append(name)
        if len(lines) > MAX_PRODUCT_LINES:
            raise ValidationError(
                "Give at most %(max)s product lines.", params={"max": MAX_PRODUCT_LINES}, code="too_many"
            )
        return lines


class ExternalIdsField(forms.CharField):
    """Other systems' ids, one “system=id” per line, cleaned into {"system": "id"}."""

    widget = forms.Textarea(attrs={"rows": 3, "spellcheck": "false"})

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 10000)
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if isinstance(value, dict):
            return "\n".join(f"{system}={identifier}" for system, identifier in value.items())
        return value

    def clean(self, value):
        text = super().clean(value)
        ids: dict[str, str] = {}
        errors: list[ValidationError] = []
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line:
                continue
            system, sep, identifier = (part.strip() for part in line.partition("="))
            if not sep or not system or not identifier:
                errors.append(
                    ValidationError(
                        "Line %(n)s: “%(line)s” is not in the form system=id.",
                        params={"n": number, "line": line[:60]},
                        code="malformed",
                    )
                )
            elif len(system) > MAX_SYSTEM_LENGTH or len(identifier) > MAX_EXTERNAL_ID_LENGTH:
                errors.append(
                    ValidationError(
                        "Line %(n)s: keep the system name under %(system)s and the id under %(id)s characters.",
                        params={"n": number, "system": MAX_SYSTEM_LENGTH, "id": MAX_EXTERNAL_ID_LENGTH},
                        code="too_long",
                    )
                )
            elif system.lower() in {key.lower() for key in ids}:
                errors.append(
                    ValidationError(
                        "Line %(n)s: “%(system)s” is given twice; keep one id per system.",
                        params={"n": number, "system": system},
                        code="duplicate",
                    )
                )
            else:
                ids[system] = identifier
        if errors:
            raise ValidationError(errors)
        if len(ids) > MAX_EXTERNAL_IDS:
            raise ValidationError("Give at most %(max)s other ids.", params={"max": MAX_EXTERNAL_IDS}, code="too_many")
        return ids


class ManagerChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, user: User) -> str:
        return f"{user.full_name} ({user.email})" if user.full_name else user.email


_RELATIONS = ("partner_type", "manager")


class PartnerForm(forms.Form):
    """Add or edit a partner. ``save`` calls the partner services and shows their errors."""

    name = forms.CharField(max_length=200)
    partner_type = forms.ModelChoiceField(queryset=PartnerType.objects.none(), label="Type", empty_label=None)
    lifecycle_stage = forms.ChoiceField(choices=LifecycleStage.choices, label="Lifecycle stage")
    status = forms.ChoiceField(choices=PartnerStatus.choices)
    region = forms.CharField(
        max_length=100,
        required=False,
        widget=forms.TextInput(attrs={"list": "region-options", "autocomplete": "off"}),
        help_text="Region or market, e.g. “EMEA — DACH”. Pick an existing one to keep filters tidy.",
    )
    manager = ManagerChoiceField(
        queryset=User.objects.none(),
        required=False,
        label="Partner manager",
        empty_label="No manager yet",
        help_text="An internal member of this workspace; partners see this person as their contact.",
    )
    size = forms.DecimalField(
        max_digits=12,
        decimal_places=2,
        min_value=0,
        required=False,
        help_text="Used to compare partners of different sizes fairly.",
    )
    joined_on = forms.DateField(
        required=False, label="Joined the program", widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    website = forms.URLField(max_length=200, required=False, assume_scheme="https")
    product_lines = ProductLinesField(help_text="Separate with commas, e.g. “Analytics, Cloud”.")
    hubspot_company_id = forms.CharField(max_length=64, required=False, label="HubSpot company id")
    salesforce_account_id = forms.CharField(max_length=18, required=False, label="Salesforce account id")
    external_ids = ExternalIdsField(
        label="Other external ids", help_text="One per line as system=id, e.g. “erp=P-0042”."
    )

    def __init__(self, *args, partner: Partner | None = None, size_label: str = "", **kwargs):
        self.partner = partner
        if partner is not None:
            initial = {field: getattr(partner, field) for field in PARTNER_EDITABLE_FIELDS if field not in _RELATIONS}
            initial.update({field: getattr(partner, f"{field}_id") for field in _RELATIONS})
            if partner.size is not None:
                initial["size"] = format(Decimal(str(partner.size)).normalize(), "f")  # 14, not 14.00
            kwargs.setdefault("initial", initial)
        super().__init__(*args, **kwargs)
        self.fields["partner_type"].queryset = PartnerType.objects.all()
        self.fields["manager"].queryset = internal_users()
        if size_label:
            self.fields["size"].label = f"Size ({size_label})"
        self._flag_departed_manager()

    def _flag_departed_manager(self) -> None:
        """Say so when the current manager has left the internal team, instead of silently blanking it."""
        partner = self.partner
        if partner is None or partner.manager_id is None:
            return
        if not self.fields["manager"].queryset.filter(pk=partner.manager_id).exists():
            self.fields["manager"].help_text = (
                f"{partner.manager} is no longer an internal member of this workspace; choose who manages "
                "this partner now."
            )

    def save(self, *, by: User) -> Partner | None:
        """Create or update through the services; None when they refused (the errors are on the form)."""
        fields = {name: self.cleaned_data[name] for name in PARTNER_EDITABLE_FIELDS}
        try:
            if self.partner is None:
                return partner_create(by=by, **fields)
            return partner_update(partner=self.partner, by=by, **fields)
        except ValidationError as error:
            self._add_service_error(error)
            return None

    def _add_service_error(self, error: ValidationError) -> None:
        errors = error.error_dict if hasattr(error, "error_dict") else {NON_FIELD_ERRORS: error.error_list}
        for field, field_errors in errors.items():
            for item in field_errors:
                self.add_error(field if field in self.fields else None, " ".join(item.messages))
