"""Forms of the review pages. They parse input; ``reviews.services`` validates and writes."""

from __future__ import annotations

from django import forms

from reviews.models import CommitmentParty, NoteVisibility, ReviewKind
from scorecards.correction_forms import ServiceErrorsMixin

TEXT_LIMIT = 8000


def _text(label: str, *, rows: int = 3, required: bool = False, help_text: str = "") -> forms.CharField:
    # The services trim, require and bound text, so the page and the API say the same thing.
    return forms.CharField(
        label=label,
        required=required,
        max_length=TEXT_LIMIT * 2,
        help_text=help_text,
        widget=forms.Textarea(attrs={"rows": rows, "maxlength": TEXT_LIMIT}),
    )


class ReviewForm(ServiceErrorsMixin, forms.Form):
    """A form whose fields are handed to one service as keyword arguments."""


class CycleGenerateForm(ReviewForm):
    kind = forms.ChoiceField(label="Kind of review", choices=ReviewKind.choices)
    period = forms.CharField(
        label="Period reviewed", max_length=20, help_text="A quarter like FY2026-Q3, or a month like FY2026-M07."
    )
    opens_on = forms.DateField(label="Opens on", widget=forms.DateInput(attrs={"type": "date"}))
    due_on = forms.DateField(label="Due on", widget=forms.DateInput(attrs={"type": "date"}))
    capacity_per_manager = forms.IntegerField(
        label="Detailed reviews per manager",
        initial=8,
        help_text="Partners beyond it are monitored, ranked by need.",
        error_messages={"invalid": "Give the number of detailed reviews as a whole number."},
    )


class CycleCloseForm(ReviewForm):
    confirm_unfinished = forms.BooleanField(
        label="Close anyway: the reviews not held stay as they are and the memo counts them", required=False
    )


class RatingForm(ReviewForm):
    score = forms.CharField(label="Rating", required=False, max_length=4)
    comment = _text("Comment", rows=2)


class CommitmentForm(ReviewForm):
    party = forms.ChoiceField(label="Who commits", choices=CommitmentParty.choices)
    text = _text("Commitment", rows=2)
    due_on = forms.DateField(label="Due on", required=False, widget=forms.DateInput(attrs={"type": "date"}))


class NoteForm(ReviewForm):
    body = _text("Note", rows=3)
    visibility = forms.ChoiceField(
        label="Who reads it", choices=NoteVisibility.choices, initial=NoteVisibility.INTERNAL
    )


class DecisionForm(ReviewForm):
    decision = _text("Decision", rows=2)
    rationale = _text("Why", rows=2)
    decided_by_name = forms.CharField(
        label="Decided by", required=False, max_length=400, help_text="Leave blank when you decided it yourself."
    )


class SummaryForm(ReviewForm):
    summary = _text("Summary", rows=5, help_text="The partner reads it once the review is shared.")


class AmendForm(ReviewForm):
    reason = _text("Why it is amended", rows=2)


class VoiceForm(ReviewForm):
    wins = _text("Wins")
    lessons_learned = _text("Lessons learned")
    needs = _text("What you need from us")
    asks = _text("Asks")
    forecast = _text("Your forecast for the coming period")
    risks = _text("Risks")
