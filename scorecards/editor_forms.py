"""Forms of the scorecard editor: they read what an administrator typed; the governance services decide.

Each form turns the posted text into the keyword arguments of one service call (``service_fields``)
and checks only what a form can know (a number is a number, a plug-in names its partner types);
the rules themselves (weights adding up to 100, rubrics, targets) are the services' to check.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal, InvalidOperation

from django import forms
from django.core.exceptions import ValidationError

from partnerhub.partners.models import PartnerType
from scorecards.models import (
    PERIOD_KINDS,
    Metric,
    MissingData,
    Normalization,
    RubricKind,
    ScorecardItem,
    ScorecardVersion,
)

CORE, PLUG_IN = "core", "plug_in"
TARGET_PREFIX = "target__"
BAND_SEPARATORS = (":", "=", "→")
POINTS = {"max_digits": 6, "decimal_places": 2}  # weights, caps and rating thresholds
BAND_THRESHOLD_LIMIT = Decimal("1e14")
MILLIONTH, HUNDREDTH = Decimal("0.000001"), Decimal("0.01")


def _partner_type_choices() -> list[tuple[str, str]]:
    return list(PartnerType.objects.order_by("position", "name").values_list("key", "name"))


def _decimal_field(
    label: str, *, required: bool = True, help_text: str = "", max_digits: int = 20, decimal_places: int = 6, **limits
) -> forms.DecimalField:
    """A number field as the model column stores it (digits and places), with a plain error message."""
    return forms.DecimalField(
        label=label,
        required=required,
        help_text=help_text,
        max_digits=max_digits,
        decimal_places=decimal_places,
        error_messages={"invalid": "Enter a number, such as 80 or 0.75."},
        widget=forms.TextInput(attrs={"inputmode": "decimal", "size": 10}),
        **limits,
    )


def _plain(number) -> str:
    """A stored number as a person would type it: 80, 0.75, 250000."""
    text = format(Decimal(str(number)).normalize(), "f")
    return text


class NewScorecardForm(forms.Form):
    """A scorecard and its first, empty draft."""

    name = forms.CharField(max_length=120)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    partner_types = forms.MultipleChoiceField(
        label="Partner types it scores",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="The segments the first draft scores; you can change them while drafting.",
    )
    period_kind = forms.ChoiceField(label="Scored every", choices=PERIOD_KINDS, initial="quarter")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["partner_types"].choices = _partner_type_choices()


class VersionSettingsForm(forms.Form):
    """A draft's settings: segments, period kind, rating bands, missing data, minimum completeness."""

    partner_types = forms.MultipleChoiceField(
        label="Partner types it scores", required=False, widget=forms.CheckboxSelectMultiple
    )
    period_kind = forms.ChoiceField(label="Scored every", choices=PERIOD_KINDS)
    band_excellent = _decimal_field("“Excellent” from a total of", min_value=0, max_value=100, **POINTS)
    band_good = _decimal_field("“Good” from a total of", min_value=0, max_value=100, **POINTS)
    missing_data = forms.ChoiceField(label="When a metric has no value", choices=MissingData.choices)
    min_completeness = _decimal_field(
        "Minimum completeness",
        min_value=0,
        max_value=1,
        max_digits=4,
        decimal_places=3,
        help_text="Share of the weight that must have data, e.g. 0.7 for 70%; below it a score is “Incomplete”.",
    )

    def __init__(self, *args, version: ScorecardVersion, **kwargs):
        kwargs.setdefault(
            "initial",
            {
                "partner_types": list(version.partner_types or []),
                "period_kind": version.period_kind,
                "band_excellent": _plain(version.band_excellent),
                "band_good": _plain(version.band_good),
                "missing_data": version.missing_data,
                "min_completeness": _plain(version.min_completeness),
            },
        )
        super().__init__(*args, **kwargs)
        choices = _partner_type_choices()
        known = {key for key, _ in choices}
        # A segment the version names but the workspace no longer has stays visible, to be unticked.
        choices += [(key, key) for key in version.partner_types or [] if key not in known]
        self.fields["partner_types"].choices = choices

    def service_fields(self) -> dict:
        return dict(self.cleaned_data)


def parse_bands(text: str) -> list[dict]:
    """Bands written one per line as “threshold: points” (also “;” between bands, “=” or “→” inside one)."""
    bands = []
    lines = [line.strip() for chunk in (text or "").splitlines() for line in chunk.split(";")]
    for number, line in enumerate((line for line in lines if line), start=1):
        for separator in BAND_SEPARATORS:
            if separator in line:
                threshold, points = (part.strip() for part in line.split(separator, 1))
                break
        else:
            raise ValidationError(f"Band {number} (“{line}”): write a band as “threshold: points”, such as “80: 90”.")
        try:
            values = Decimal(threshold), Decimal(points)
        except InvalidOperation:
            raise ValidationError(
                f"Band {number} (“{line}”): the threshold and the points must be numbers, written without "
                "thousands separators."
            ) from None
        if not all(value.is_finite() for value in values):
            raise ValidationError(f"Band {number} (“{line}”): the threshold and the points must be numbers.")
        threshold, points = values
        # The same range as a floor or a target (20 digits, 6 after the point), so any threshold
        # reads back as the number typed; points are at most the cap, itself at most 100.
        if abs(threshold) >= BAND_THRESHOLD_LIMIT or threshold != threshold.quantize(MILLIONTH, rounding=ROUND_DOWN):
            raise ValidationError(
                f"Band {number} (“{line}”): a threshold has at most 14 digits before the point and 6 after it."
            )
        if not 0 <= points <= 100 or points != points.quantize(HUNDREDTH, rounding=ROUND_DOWN):
            raise ValidationError(f"Band {number} (“{line}”): points are between 0 and 100, to two decimals at most.")
        bands.append({"at_least": str(threshold), "points": str(points)})
    return bands


def bands_text(bands: list[dict]) -> str:
    return "\n".join(f"{_plain(band['at_least'])}: {_plain(band['points'])}" for band in bands or [])


class ItemForm(forms.Form):
    """One metric of a draft: weight, the partner types it applies to, normalization and rubric."""

    metric = forms.ModelChoiceField(
        queryset=Metric.objects.none(),
        empty_label="Choose a metric",
        error_messages={
            "invalid_choice": "Choose one of the metrics offered: those of this workspace's catalogue in use and "
            "not in the version yet."
        },
    )
    weight = _decimal_field("Weight", min_value=0, max_value=100, help_text="Points out of 100.", **POINTS)
    scope = forms.ChoiceField(
        label="Applies to",
        choices=[(CORE, "Every partner (core)"), (PLUG_IN, "Some partner types (plug-in)")],
        initial=CORE,
        widget=forms.RadioSelect,
    )
    applies_to = forms.MultipleChoiceField(label="Plug-in for", required=False, widget=forms.CheckboxSelectMultiple)
    normalization = forms.ChoiceField(choices=Normalization.choices, initial=Normalization.NONE)
    rubric = forms.ChoiceField(label="Points by", choices=RubricKind.choices, initial=RubricKind.LINEAR)
    floor = _decimal_field("Floor (0 points)", required=False)
    target = _decimal_field("Target (100 points)", required=False)
    cap = _decimal_field("Most points", min_value=Decimal("0.01"), max_value=100, initial="100", **POINTS)
    bands = forms.CharField(
        label="Bands",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "50: 50\n80: 80\n95: 100"}),
        help_text="One per line, “threshold: points”, from the lowest threshold up.",
    )

    def __init__(self, *args, version: ScorecardVersion, item: ScorecardItem | None = None, **kwargs):
        self.version = version
        self.item = item
        if item is not None:
            kwargs.setdefault("initial", self._initial_from(item))
        super().__init__(*args, **kwargs)
        types = _partner_type_choices()
        # Plug-ins and targets are offered for the partner types the version scores (all of them
        # while none is chosen), plus any the item already names, so nothing set is hidden.
        wanted = set(version.partner_types or []) or {key for key, _ in types}
        if item is not None:
            wanted |= set(item.applies_to or []) | set(item.segment_targets or {})
        types = [(key, name) for key, name in types if key in wanted]
        self.fields["applies_to"].choices = types
        # Metrics already in the version are left out, except the item's own (even if since retired).
        used = ScorecardItem.objects.filter(version=version).values("metric_id")
        if item is not None:
            used = used.exclude(pk=item.pk)
        metrics = Metric.objects.filter(is_active=True)
        if item is not None:
            metrics = metrics | Metric.objects.filter(pk=item.metric_id)
        self.fields["metric"].queryset = metrics.exclude(pk__in=used).order_by("pillar", "name")
        self.target_fields = []
        for key, name in types:
            field_name = f"{TARGET_PREFIX}{key}"
            self.fields[field_name] = _decimal_field(f"Target for {name}", required=False)
            self.target_fields.append(field_name)

    @staticmethod
    def _initial_from(item: ScorecardItem) -> dict:
        initial = {
            "metric": item.metric_id,
            "weight": _plain(item.weight),
            "scope": PLUG_IN if item.applies_to else CORE,
            "applies_to": list(item.applies_to or []),
            "normalization": item.normalization,
            "rubric": item.rubric,
            "floor": None if item.floor is None else _plain(item.floor),
            "target": None if item.target is None else _plain(item.target),
            "cap": _plain(item.cap),
            "bands": bands_text(item.bands),
        }
        for key, value in (item.segment_targets or {}).items():
            initial[f"{TARGET_PREFIX}{key}"] = _plain(value)
        return initial

    @property
    def target_bound_fields(self):
        return [self[name] for name in self.target_fields]

    def clean_bands(self) -> list[dict]:
        return parse_bands(self.cleaned_data.get("bands", ""))

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("scope") == PLUG_IN and not cleaned.get("applies_to"):
            self.add_error("applies_to", "Choose the partner types this plug-in scores, or make it a core item.")
        if cleaned.get("rubric") == RubricKind.BANDED and "bands" in cleaned and not cleaned["bands"]:
            self.add_error("bands", "A banded rubric needs at least one band, such as “80: 90”.")
        return cleaned

    def service_fields(self) -> dict:
        data = self.cleaned_data
        targets = {}
        if data["normalization"] == Normalization.TARGET_ATTAINMENT:
            for name in self.target_fields:
                if data.get(name) is not None:
                    targets[name.removeprefix(TARGET_PREFIX)] = str(data[name])
        return {
            "metric": data["metric"],
            "weight": data["weight"],
            "applies_to": list(data["applies_to"]) if data["scope"] == PLUG_IN else [],
            "normalization": data["normalization"],
            "segment_targets": targets,
            "rubric": data["rubric"],
            "floor": data["floor"],
            "target": data["target"],
            "cap": data["cap"],
            "bands": data["bands"] if data["rubric"] == RubricKind.BANDED else [],
        }


class ProposeForm(forms.Form):
    rationale = forms.CharField(
        label="Why these rules",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Published to partners on their “How you are scored” page.",
    )


class SendBackForm(forms.Form):
    note = forms.CharField(label="Why it goes back to draft", required=False, widget=forms.Textarea(attrs={"rows": 2}))


class ApproveForm(forms.Form):
    note = forms.CharField(label="Note (optional)", required=False, widget=forms.Textarea(attrs={"rows": 2}))


class ActivateForm(forms.Form):
    effective_from = forms.CharField(
        label="In force from", max_length=20, help_text="A period such as FY2026-Q3 (quarters) or FY2026-M07 (months)."
    )
