"""Forms for the workspace pages. They check input shape only; the rules live in the services."""

from __future__ import annotations

import calendar
import datetime

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from partnerhub.partners.models import Partner
from partnerhub.tenancy.models import ApiKeyAccess, Membership
from partnerhub.tenancy.roles import INTERNAL_ROLES, PARTNER_ROLES, Role
from partnerhub.tenancy.selectors import audit_target_types
from partnerhub.tenancy.services import assignable_roles


def add_service_errors(form: forms.Form, error: ValidationError) -> None:
    """Show a service's ValidationError on the form: on its field when the form has it, else on top."""
    if hasattr(error, "error_dict"):
        for field, errors in error.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error)


class RoleAndPartnerMixin:
    """Role choices limited to what the acting member may hand out; a partner only for partner roles.

    Partner admins only ever place people at their own partner: for them the partner is a hidden
    field holding it, and anything else posted there is refused by the service with a clear reason.
    """

    def _setup_role_and_partner(self, actor: Membership) -> None:
        self.actor = actor
        allowed = assignable_roles(actor)
        self.fields["role"].choices = [(value, label) for value, label in Role.choices if value in allowed]
        # Scoped manager: only this workspace's partners are valid choices.
        self.fields["partner"].queryset = Partner.objects.order_by("name", "pk")
        if actor.is_partner_user:
            self.fields["partner"].widget = forms.HiddenInput()
            self.initial["partner"] = actor.partner_id

    @property
    def partner_is_fixed(self) -> bool:
        return self.actor.is_partner_user

    def _clean_role_and_partner(self, cleaned: dict) -> dict:
        role = cleaned.get("role")
        if self.partner_is_fixed:
            return cleaned
        if role in INTERNAL_ROLES:
            # A partner left selected from an earlier choice means nothing for an internal role.
            cleaned["partner"] = None
        elif role in PARTNER_ROLES and not cleaned.get("partner") and "partner" not in self.errors:
            self.add_error("partner", "Choose the partner this person works for.")
        return cleaned


class InvitationForm(RoleAndPartnerMixin, forms.Form):
    email = forms.EmailField(
        label="Email address",
        max_length=254,
        error_messages={"required": "Enter the email address of the person to invite."},
        widget=forms.EmailInput(attrs={"autocomplete": "off", "placeholder": "name@company.com"}),
    )
    role = forms.ChoiceField(
        label="Role",
        error_messages={
            "required": "Choose a role.",
            "invalid_choice": "You cannot give people this role.",
        },
    )
    partner = forms.ModelChoiceField(
        label="Partner",
        queryset=None,
        required=False,
        empty_label="Choose a partner…",
        help_text="Partner admins and partner members only see this partner.",
        error_messages={"invalid_choice": "Choose a partner of this workspace."},
    )

    def __init__(self, *args, actor: Membership, **kwargs):
        super().__init__(*args, **kwargs)
        self._setup_role_and_partner(actor)
        if actor.is_partner_user:
            self.initial.setdefault("role", Role.PARTNER_MEMBER)
        else:
            # No preselected role: an administrator invitation should never be one click away.
            self.fields["role"].choices = [("", "Choose a role…"), *self.fields["role"].choices]

    def clean(self):
        return self._clean_role_and_partner(super().clean())


class MembershipRoleForm(RoleAndPartnerMixin, forms.Form):
    role = forms.ChoiceField(
        label="Role",
        error_messages={"required": "Choose a role.", "invalid_choice": "You cannot give people this role."},
    )
    partner = forms.ModelChoiceField(
        label="Partner",
        queryset=None,
        required=False,
        empty_label="No partner (internal roles)",
        error_messages={"invalid_choice": "Choose a partner of this workspace."},
    )

    def __init__(self, *args, actor: Membership, membership: Membership, **kwargs):
        kwargs.setdefault("initial", {"role": membership.role, "partner": membership.partner_id})
        super().__init__(*args, **kwargs)
        self._setup_role_and_partner(actor)

    def clean(self):
        return self._clean_role_and_partner(super().clean())


class AcceptInvitationForm(forms.Form):
    """A new person's name and password, chosen when accepting their invitation."""

    full_name = forms.CharField(
        label="Your name",
        max_length=200,
        error_messages={"required": "Enter your name as colleagues should see it."},
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
    password1 = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 10 characters; not a common password and not only digits.",
        error_messages={"required": "Choose a password."},
    )
    password2 = forms.CharField(
        label="Password again",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        error_messages={"required": "Type the password again."},
    )

    def clean(self):
        cleaned = super().clean()
        first, second = cleaned.get("password1"), cleaned.get("password2")
        if first and second and first != second:
            self.add_error("password2", "The two passwords are not the same.")
        return cleaned


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        label="Name",
        max_length=100,
        help_text="Say which integration uses it, e.g. “Salesforce sync”.",
        error_messages={"required": "Give the key a name that says which integration uses it."},
    )
    access = forms.ChoiceField(
        label="Access",
        choices=ApiKeyAccess.choices,
        initial=ApiKeyAccess.READ_ONLY,
        help_text="Read only is enough for dashboards and exports; pushing data needs read and write.",
        error_messages={"invalid_choice": "Choose read only or read and write."},
    )


class AuditFilterForm(forms.Form):
    verb = forms.CharField(
        label="Action",
        required=False,
        max_length=64,
        widget=forms.TextInput(attrs={"placeholder": "e.g. membership or api_key.revoked", "list": "audit-verbs"}),
    )
    actor = forms.CharField(
        label="Who",
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"placeholder": "Email address", "type": "search"}),
    )
    target_type = forms.ChoiceField(label="Object", required=False)
    since = forms.DateField(label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(label="To", required=False, widget=forms.DateInput(attrs={"type": "date"}))

    # Suggestions for the action filter (any text still filters).
    KNOWN_VERBS = [
        "api_key.created",
        "api_key.revoked",
        "appeal.approved",
        "appeal.rejected",
        "appeal.requested",
        "appeal.withdrawn",
        "correction.approved",
        "correction.rejected",
        "correction.requested",
        "correction.withdrawn",
        "data_source.activated",
        "data_source.created",
        "data_source.credentials_changed",
        "data_source.deactivated",
        "data_source.updated",
        "deals.bulk_recorded",
        "invitation.accepted",
        "invitation.created",
        "invitation.resent",
        "invitation.revoked",
        "marketing.bulk_recorded",
        "membership.created",
        "membership.removed",
        "membership.role_changed",
        "metric.created",
        "metric.updated",
        "observation.recorded",
        "observation.reviewed",
        "observations.bulk_recorded",
        "observations.derived",
        "observations.imported",
        "partner.created",
        "partner.updated",
        "partner_mapping.applied",
        "partner_mapping.created",
        "partner_mapping.deleted",
        "scorecard.created",
        "scorecard.updated",
        "scorecard_item.added",
        "scorecard_item.removed",
        "scorecard_item.updated",
        "scorecard_version.activated",
        "scorecard_version.approved",
        "scorecard_version.created",
        "scorecard_version.discarded",
        "scorecard_version.proposed",
        "scorecard_version.rejected",
        "scorecard_version.retired",
        "scorecard_version.updated",
        "scorecard_version.withdrawn",
        "scores.recomputed",
        "tenant.created",
        "tenant.updated",
    ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["target_type"].choices = [("", "Any object"), *audit_target_types()]

    def clean(self):
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            self.add_error("until", "The end date is before the start date.")
        return cleaned

    def filters(self) -> dict:
        """Keyword arguments for ``audit_events``; dates are whole days in the portal's time zone."""
        # Invalid fields are left out of cleaned_data; the valid ones still filter.
        self.is_valid()
        data = self.cleaned_data
        since, until = data.get("since"), data.get("until")
        return {
            "verb": data.get("verb", ""),
            "actor": data.get("actor", ""),
            "target_type": data.get("target_type", ""),
            "since": _start_of(since) if since else None,
            "until": _start_of(until + datetime.timedelta(days=1)) if until else None,
        }


def _start_of(day: datetime.date) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))


class WorkspaceSettingsForm(forms.Form):
    name = forms.CharField(
        label="Workspace name",
        max_length=200,
        error_messages={"required": "Give the workspace a name."},
    )
    fiscal_year_start_month = forms.TypedChoiceField(
        label="Fiscal year starts in",
        coerce=int,
        choices=[(number, calendar.month_name[number]) for number in range(1, 13)],
        help_text="Review periods follow fiscal quarters.",
        error_messages={"invalid_choice": "Choose a month."},
    )
    size_measure_label = forms.CharField(
        label="Partner size is counted in",
        max_length=60,
        help_text="What a partner's size measures, e.g. “Sales reps” or “Certified engineers”.",
        error_messages={"required": "Say what a partner's size counts."},
    )
    require_mfa_for_admins = forms.BooleanField(
        label="Administrators must use an authenticator app",
        required=False,
        help_text="Administrators without one are sent to set it up before they can use the portal.",
    )
    suspect_values_count = forms.BooleanField(
        label="Suspect values count until reviewed",
        required=False,
        help_text="A value far from the partner's history and segment is flagged for review. On: it counts in "
        "scores meanwhile. Off: it waits out of the scores until a manager accepts it.",
    )
