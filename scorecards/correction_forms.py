"""Forms of the correction pages. They parse input; ``scorecards.services.corrections`` validates and writes."""

from __future__ import annotations

import django_filters
from django import forms
from django.core.exceptions import ValidationError

from scorecards.models import CorrectionKind, CorrectionRequest, CorrectionStatus, MetricObservation, Score
from scorecards.services import corrections
from scorecards.services.corrections import EVIDENCE_ACCEPT_ATTRIBUTE, MAX_COMMENT_CHARS, MAX_REASON_CHARS


class ServiceErrorsMixin:
    """Put a service's ValidationError on the form: by field where the form has it, else on the form."""

    def add_service_errors(self, error: ValidationError) -> None:
        if hasattr(error, "error_dict"):
            for name, messages in error.message_dict.items():
                for message in messages:
                    self.add_error(name if name in self.fields else None, message)
        else:
            for message in error.messages:
                self.add_error(None, message)


def _evidence_field() -> forms.FileField:
    return forms.FileField(
        required=False,
        label="Evidence (optional)",
        help_text="A PDF, PNG, JPEG, CSV or Excel (.xlsx) file of at most 10 MB: an invoice, a report, a screenshot.",
        widget=forms.ClearableFileInput(attrs={"accept": EVIDENCE_ACCEPT_ATTRIBUTE}),
        error_messages={"invalid": "Attach the evidence as a file.", "empty": "The file is empty."},
    )


def _reason_field(label: str, help_text: str) -> forms.CharField:
    return forms.CharField(
        label=label,
        # The service trims, requires and bounds the reason, so that the page and the API say the same.
        required=False,
        max_length=MAX_REASON_CHARS * 2,
        help_text=help_text,
        widget=forms.Textarea(attrs={"rows": 4, "maxlength": MAX_REASON_CHARS}),
    )


class CorrectionRequestForm(ServiceErrorsMixin, forms.Form):
    """A partner's proposed value for one observation, with why and, perhaps, a file that shows it."""

    proposed_value = forms.CharField(
        required=False,
        max_length=40,
        label="The right value",
        help_text="A dot for decimals, no thousands separators. Percentages as 85 for 85%.",
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
    )
    reason = _reason_field(
        "Why it is wrong", "What is wrong with the recorded value, and where the right one comes from."
    )
    evidence = _evidence_field()

    def save(self, *, observation: MetricObservation, by) -> CorrectionRequest | None:
        """The new request; None with the form's errors set when it cannot be made."""
        if not self.is_valid():
            return None
        try:
            return corrections.correction_request(
                observation=observation,
                proposed_value=self.cleaned_data["proposed_value"],
                reason=self.cleaned_data["reason"],
                evidence=self.cleaned_data["evidence"] or None,
                by=by,
            )
        except ValidationError as error:
            self.add_service_errors(error)
            return None


class AppealForm(ServiceErrorsMixin, forms.Form):
    """A partner's appeal of a score: why it is wrong, and perhaps a file that shows it."""

    reason = _reason_field("Why the score is wrong", "What you think is wrong with the score, and why.")
    evidence = _evidence_field()

    def save(self, *, score: Score, by) -> CorrectionRequest | None:
        if not self.is_valid():
            return None
        try:
            return corrections.appeal_request(
                score=score, reason=self.cleaned_data["reason"], evidence=self.cleaned_data["evidence"] or None, by=by
            )
        except ValidationError as error:
            self.add_service_errors(error)
            return None


class DecisionForm(ServiceErrorsMixin, forms.Form):
    """Approve or reject a request; a rejection carries a comment the partner reads."""

    decision = forms.ChoiceField(
        choices=[("approve", "Approve"), ("reject", "Reject")],
        error_messages={"required": "Choose to approve or reject.", "invalid_choice": "Choose to approve or reject."},
    )
    comment = forms.CharField(
        required=False,
        max_length=MAX_COMMENT_CHARS,
        help_text="Required to reject: the partner reads it.",
        widget=forms.Textarea(attrs={"rows": 2, "maxlength": MAX_COMMENT_CHARS}),
    )

    def save(self, *, request: CorrectionRequest, by) -> CorrectionRequest | None:
        if not self.is_valid():
            return None
        try:
            return corrections.request_decide(
                request=request,
                approve=self.cleaned_data["decision"] == "approve",
                comment=self.cleaned_data["comment"],
                by=by,
            )
        except ValidationError as error:
            self.add_service_errors(error)
            return None


class IdFilter(django_filters.Filter):
    """A whole number within the range of a primary key (anything else is a filter error, not a crash)."""

    field_class = forms.IntegerField


class CorrectionRequestFilter(django_filters.FilterSet):
    """Filters of the corrections queue and of the API's list: status, partner, kind, period."""

    status = django_filters.ChoiceFilter(choices=CorrectionStatus.choices, empty_label="Any status")
    partner = IdFilter(field_name="partner_id", min_value=1, max_value=2**63 - 1, help_text="A partner's id.")
    kind = django_filters.ChoiceFilter(choices=CorrectionKind.choices, empty_label="Corrections and appeals")
    period = django_filters.CharFilter(max_length=20, help_text="A period key, e.g. FY2026-Q3.")

    class Meta:
        model = CorrectionRequest
        fields = ["status", "partner", "kind", "period"]

    def filter_queryset(self, queryset):
        period = self.form.cleaned_data.get("period")
        if period:
            self.form.cleaned_data["period"] = period.strip().upper()
        return super().filter_queryset(queryset)
