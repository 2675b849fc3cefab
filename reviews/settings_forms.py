"""Forms of the review settings page. They parse input; the services validate and write, in their own words."""

from __future__ import annotations

from typing import Any

from django import forms

from partnerhub.partners.models import LifecycleStage, PartnerType
from reviews.models import CadenceRule, ReviewKind
from scorecards.correction_forms import ServiceErrorsMixin


def _position(help_text: str) -> forms.CharField:
    # Parsed here, judged by the services: a value that is no number goes to them as typed, so that
    # every field's problem is named at once and in the words the API uses.
    return forms.CharField(
        label="Position",
        required=False,
        max_length=20,
        help_text=help_text,
        widget=forms.NumberInput(attrs={"min": 0, "max": 32767}),
    )


def _select(label: str, choices: list[tuple[str, str]]) -> forms.CharField:
    # Plain text behind a select: the service names a value that is not a choice in its own words.
    return forms.CharField(label=label, required=False, widget=forms.Select(choices=choices))


class SettingsForm(ServiceErrorsMixin, forms.Form):
    """A form whose fields go to one service; a blank position is left out (the service's default, or unchanged)."""

    def clean_position(self) -> Any:
        value = self.cleaned_data["position"].strip()
        try:
            return int(value)
        except ValueError:
            return value

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("position") == "":
            del cleaned["position"]
        return cleaned


class CadenceRuleForm(SettingsForm):
    """A rule's segment (partner type and lifecycle stage) and its kind of review; tiers do not choose yet."""

    partner_type = _select("Partner type", [])
    lifecycle_stage = _select("Lifecycle stage", [("", "Any stage"), *LifecycleStage.choices])
    kind = _select("Kind of review", [("", "Choose…"), *ReviewKind.choices])
    position = _position("Among equally specific rules, the lower position wins.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.types = {str(partner_type.pk): partner_type for partner_type in PartnerType.objects.all()}
        self.fields["partner_type"].widget.choices = [
            ("", "Every partner type"),
            *((pk, partner_type.name) for pk, partner_type in self.types.items()),
        ]

    @staticmethod
    def initial_of(rule: CadenceRule) -> dict[str, Any]:
        return {
            "partner_type": rule.partner_type_id or "",
            "lifecycle_stage": rule.lifecycle_stage,
            "kind": rule.kind,
            "position": rule.position,
        }

    def clean_partner_type(self) -> Any:
        # A type of another workspace is not among them: it goes on as typed and the service refuses it.
        value = self.cleaned_data["partner_type"].strip()
        return self.types.get(value, value) if value else None


class PromptForm(SettingsForm):
    """A collaboration prompt's question, help text and place in the list."""

    label = forms.CharField(label="Question", required=False, max_length=240)
    help_text = forms.CharField(label="Help text", required=False, max_length=510)
    position = _position("Prompts are asked in this order; leave blank to keep the place (or, for a new one, last).")
