"""The filters of the actions list and board, read into the keyword arguments of ``actions_list``."""

from __future__ import annotations

from django import forms

from actions.forms import PersonChoiceField
from actions.models import ActionStatus, RootCause
from partnerhub.partners.models import Partner
from partnerhub.tenancy.models import Membership, User

OVERDUE_CHOICES = [("", "Overdue or not"), ("yes", "Overdue only"), ("no", "Not overdue")]


class ActionFilterForm(forms.Form):
    owner = PersonChoiceField(queryset=None, required=False, empty_label="Anyone")
    partner = forms.ModelChoiceField(queryset=None, required=False, empty_label="Every partner")
    status = forms.ChoiceField(choices=[("", "Any status"), *ActionStatus.choices], required=False)
    overdue = forms.ChoiceField(choices=OVERDUE_CHOICES, required=False)
    root_cause = forms.ChoiceField(choices=[("", "Any root cause"), *RootCause.choices], required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Owners of a partner's actions may be its users: every person of the workspace is offered.
        self.fields["owner"].queryset = User.objects.filter(
            pk__in=Membership.objects.values("user_id"), is_active=True
        ).order_by("full_name", "email")
        self.fields["partner"].queryset = Partner.objects.order_by("name")

    def selector_filters(self) -> dict:
        data = self.cleaned_data
        filters = {
            "owner": data.get("owner"),
            "partner": data.get("partner"),
            "status": data.get("status") or None,
            "root_cause": data.get("root_cause") or None,
            "overdue": {"yes": True, "no": False}.get(data.get("overdue") or ""),
        }
        return {name: value for name, value in filters.items() if value is not None}
