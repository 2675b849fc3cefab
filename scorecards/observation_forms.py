"""Forms of the observation pages. They parse input; the observation and upload services validate and write."""

from __future__ import annotations

import django_filters
from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db.models import Q

from partnerhub.integrations.models import Upload, UploadKind
from partnerhub.integrations.uploads import upload_receive
from partnerhub.tenancy.models import Tenant, User
from scorecards.filters import ObservationFilter
from scorecards.models import Metric, MetricObservation, ObservationSource
from scorecards.services.observations import (
    MAX_UPLOAD_BYTES,
    clean_period,
    clean_value,
    observation_record,
    partner_lookup,
)

MAX_PARTNER_SEARCH = 100


class ObservationPageFilter(ObservationFilter):
    """The API's observation filters plus a partner search; superseded values are listed unless
    ``current`` asks for the values in force only (their history is what this page is for)."""

    q = django_filters.CharFilter(method="filter_partner_name", label="Partner", max_length=MAX_PARTNER_SEARCH)

    class Meta(ObservationFilter.Meta):
        fields = ["q", *ObservationFilter.Meta.fields]

    def __init__(self, data=None, *args, **kwargs):
        if data is not None and "current" not in data:
            data = data.copy()
            data["current"] = "false"
        super().__init__(data, *args, **kwargs)

    def filter_partner_name(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(
            Q(partner__name__icontains=value)
            | Q(partner__hubspot_company_id=value)
            | Q(partner__salesforce_account_id=value)
        )


class ObservationEntryForm(forms.Form):
    """One value typed by hand: the partner by name or CRM id, the metric, the period, the value."""

    partner = forms.CharField(
        max_length=200,
        help_text="Its name, or its HubSpot or Salesforce id.",
        widget=forms.TextInput(attrs={"list": "partner-options", "autocomplete": "off"}),
    )
    metric = forms.ModelChoiceField(
        queryset=Metric.objects.none(),
        to_field_name="key",
        empty_label="Choose a metric",
        error_messages={
            "required": "Choose the metric.",
            "invalid_choice": "Choose a metric from the list; that one is not in use in this workspace.",
        },
    )
    period = forms.CharField(
        max_length=20,
        help_text="Like FY2026-Q3 (a quarter) or FY2026-M07 (a month), in the workspace's fiscal year.",
        widget=forms.TextInput(attrs={"list": "period-options", "autocomplete": "off", "placeholder": "FY2026-Q3"}),
        error_messages={"required": "Name the period, like FY2026-Q3 or FY2026-M07."},
    )
    value = forms.CharField(
        max_length=40,
        help_text="A dot for decimals, no thousands separators. Percentages as 85 for 85%.",
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
        error_messages={"required": "Enter the value."},
    )
    note = forms.CharField(
        max_length=500,
        required=False,
        help_text="Where the number comes from; kept in the audit log.",
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args, tenant: Tenant, **kwargs):
        super().__init__(*args, **kwargs)
        self.tenant = tenant
        # Scoped managers need the request's tenant, so the choices are built here, not at import.
        self.fields["metric"].queryset = Metric.objects.filter(is_active=True).order_by("name")
        self.fields["metric"].label_from_instance = lambda metric: f"{metric.name} ({metric.get_unit_display()})"

    def _add_errors(self, error: ValidationError) -> None:
        if hasattr(error, "error_dict"):
            for name, messages in error.message_dict.items():
                for message in messages:
                    self.add_error(name if name in self.fields else None, message)
        else:
            for message in error.messages:
                self.add_error(None, message)

    def save(self, *, by: User) -> tuple[MetricObservation, bool] | None:
        """Record the value; None with the form's errors set when it cannot be recorded."""
        if not self.is_valid():
            return None
        data = self.cleaned_data
        try:
            partner = partner_lookup(data["partner"])
        except ValidationError as error:
            self._add_errors(error)
            # Say everything that is wrong at once, not one field per attempt.
            for check in (
                lambda: clean_period(data["period"], tenant=self.tenant),
                lambda: clean_value(data["value"], metric=data["metric"]),
            ):
                try:
                    check()
                except ValidationError as problem:
                    self._add_errors(problem)
            return None
        try:
            return observation_record(
                partner=partner,
                metric=data["metric"],
                period=data["period"],
                value=data["value"],
                source=ObservationSource.MANUAL,
                note=data["note"],
                by=by,
            )
        except ValidationError as error:
            self._add_errors(error)
            return None


class UploadForm(forms.Form):
    """A file to check, then record: metric observations, deals or marketing facts, as CSV or XLSX."""

    kind = forms.ChoiceField(
        label="The file holds",
        choices=UploadKind.choices,
        required=False,
        initial=UploadKind.OBSERVATIONS,
        widget=forms.RadioSelect,
        error_messages={"invalid_choice": "Choose what the file holds: observations, deals or marketing facts."},
    )
    file = forms.FileField(
        label="File",
        help_text=f"CSV (UTF-8) or an Excel workbook (.xlsx), at most {MAX_UPLOAD_BYTES // (1024 * 1024)} MB.",
        widget=forms.ClearableFileInput(
            attrs={
                "accept": ".csv,.xlsx,.xlsm,text/csv,text/plain,"
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            }
        ),
        error_messages={
            "required": "Choose a CSV or XLSX file to upload.",
            "empty": "The file is empty.",
            "invalid": "No file was received; choose the file again.",
        },
    )

    def clean_kind(self) -> str:
        # A form posted without the choice (an older page, a script) uploads observations, as it always did.
        return self.cleaned_data.get("kind") or UploadKind.OBSERVATIONS

    def save(self, *, by: User) -> Upload | None:
        """Store the file and queue its check; None with the form's errors set when it is refused."""
        if not self.is_valid():
            return None
        try:
            return upload_receive(file=self.cleaned_data["file"], by=by, kind=self.cleaned_data["kind"])
        except ValidationError as error:
            for name, messages in error.message_dict.items():
                for message in messages:
                    target = name if name in ("file", "kind") else "file" if name == NON_FIELD_ERRORS else None
                    self.add_error(target, message)
            return None
