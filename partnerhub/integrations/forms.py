"""Forms for data sources and partner mappings. They parse input; the services validate and save."""

from __future__ import annotations

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from partnerhub.integrations.services import (
    ATTRIBUTIONS,
    CREDENTIAL_LABELS,
    PARTNER_MATCHES,
    SOURCE_EDITABLE_FIELDS,
    ConnectionTest,
    MappingOutcome,
    mapping_create,
    source_create,
    source_defaults,
    source_test_connection,
    source_update,
)
from partnerhub.integrations.source_models import (
    CREDENTIAL_FIELDS,
    Attribution,
    DataSource,
    PartnerMatch,
    SourceKind,
)
from partnerhub.partners.models import Partner
from partnerhub.tenancy.models import User

# Short labels for the choices (the model's labels explain them at length for the admin).
ATTRIBUTION_LABELS = {
    SourceKind.HUBSPOT: {
        Attribution.DEAL_PROPERTY: "A deal property",
        Attribution.ASSOCIATION_LABEL: "A labelled deal-to-company association",
    },
    SourceKind.SALESFORCE: {
        Attribution.PARTNER_ACCOUNT: "Opportunity.PartnerAccountId (Partner Relationship Management)",
        Attribution.DEAL_PROPERTY: "Another opportunity field",
    },
}
ATTRIBUTION_FIELD_HELP = {
    SourceKind.HUBSPOT: "The deal property's internal name (e.g. partner_company_id), or the association label "
    "(e.g. Reseller) whose company is the partner.",
    SourceKind.SALESFORCE: "The opportunity field's API name (e.g. Partner_Account__c); leave blank for "
    "PartnerAccountId.",
}
BASE_URL_LABELS = {
    SourceKind.HUBSPOT: ("API address", "HubSpot's API; change it only for a proxy or a regional host."),
    SourceKind.SALESFORCE: (
        "Login address",
        "https://login.salesforce.com, https://test.salesforce.com for a sandbox, or your My Domain address.",
    ),
}
PULLED_ONLY = (
    "base_url",
    "attribution",
    "attribution_field",
    "schedule_minutes",
    "overlap_minutes",
    "stale_after_hours",
)
SALESFORCE_ONLY = ("token_url", "api_version")
CREDENTIAL_SHORT_LABELS = {"access_token": "Token"}
CREDENTIAL_HELP = {
    "access_token": "From a HubSpot private app with the crm.objects.deals.read scope (and companies, for labels).",
    "client_id": "From the Salesforce external client app with the client credentials flow enabled.",
    "client_secret": "",
}


def add_service_errors(form: forms.Form, error: ValidationError) -> None:
    """Show a service's ValidationError on the form: on its field when the form has it, else on top."""
    errors = error.error_dict if hasattr(error, "error_dict") else {NON_FIELD_ERRORS: error.error_list}
    for field, field_errors in errors.items():
        for item in field_errors:
            form.add_error(field if field in form.fields else None, " ".join(item.messages))


class DataSourceForm(forms.Form):
    """Connect or reconfigure a source of one kind; credentials are write-only."""

    name = forms.CharField(max_length=200, help_text="How the source is called on pages, e.g. “HubSpot — EMEA”.")
    base_url = forms.CharField(max_length=400, widget=forms.URLInput(attrs={"spellcheck": "false"}))
    token_url = forms.CharField(
        max_length=400,
        required=False,
        label="Token address",
        widget=forms.URLInput(attrs={"spellcheck": "false"}),
        help_text="Where OAuth tokens are requested; blank uses the login address's.",
    )
    api_version = forms.CharField(max_length=20, label="API version", help_text="The REST API version, e.g. v61.0.")
    attribution = forms.ChoiceField(label="Deals name their partner by")
    attribution_field = forms.CharField(max_length=400, required=False, label="Property, field or label")
    partner_match = forms.ChoiceField(label="Match the partner reference with")
    currency = forms.CharField(
        max_length=20, help_text="Three letters, e.g. USD: the currency derived amounts are reported in."
    )
    schedule_minutes = forms.IntegerField(
        label="Sync every (minutes)", help_text="15 minutes to a week (10,080); 0 syncs only when asked."
    )
    overlap_minutes = forms.IntegerField(
        label="Overlap (minutes)",
        help_text="Each sync reads again this many minutes before where the last one ended, for clock skew.",
    )
    stale_after_hours = forms.IntegerField(
        label="Stale after (hours)", help_text="Without a successful sync for this long, the source shows as stale."
    )

    def __init__(self, *args, kind: str, source: DataSource | None = None, **kwargs):
        self.kind = kind
        self.source = source
        if source is not None:
            kwargs.setdefault("initial", {field: getattr(source, field) for field in SOURCE_EDITABLE_FIELDS})
        else:
            model_defaults = {
                field: DataSource._meta.get_field(field).get_default() for field in SOURCE_EDITABLE_FIELDS
            }
            kwargs.setdefault("initial", {**model_defaults, **source_defaults(kind)})
        super().__init__(*args, **kwargs)
        pulled = kind in ATTRIBUTIONS
        for field in PULLED_ONLY if not pulled else ():
            del self.fields[field]
        for field in SALESFORCE_ONLY if kind != SourceKind.SALESFORCE else ():
            del self.fields[field]
        if kind == SourceKind.SALESFORCE:
            self.fields["token_url"].widget.attrs["placeholder"] = "<login address>/services/oauth2/token"
        if pulled:
            self.fields["base_url"].label, self.fields["base_url"].help_text = BASE_URL_LABELS[kind]
            self.fields["attribution"].choices = list(ATTRIBUTION_LABELS[kind].items())
            self.fields["attribution_field"].help_text = ATTRIBUTION_FIELD_HELP[kind]
        self.fields["partner_match"].choices = [
            (value, PartnerMatch(value).label) for value in PARTNER_MATCHES[SourceKind(kind)]
        ]
        stored = set(source.credentials_set or []) if source is not None else set()
        for name in CREDENTIAL_FIELDS[SourceKind(kind)]:
            label = CREDENTIAL_LABELS.get(name, name)
            is_set = name in stored
            short = CREDENTIAL_SHORT_LABELS.get(name, label)
            help_text = f"{short} set ✓ — leave blank to keep." if is_set else CREDENTIAL_HELP.get(name, "")
            self.fields[name] = forms.CharField(
                label=label,
                required=source is None,
                strip=True,
                max_length=8192,
                # Never echoed back: the page shows only whether it is set.
                widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
                help_text=help_text,
            )
            self.fields[name].is_credential = True
            self.fields[name].is_set = is_set

    @property
    def credential_fields(self):
        return [self[name] for name in CREDENTIAL_FIELDS[SourceKind(self.kind)]]

    @property
    def setting_fields(self):
        return [self[name] for name in SOURCE_EDITABLE_FIELDS if name in self.fields]

    def _values(self) -> tuple[dict, dict]:
        settings = {name: self.cleaned_data[name] for name in SOURCE_EDITABLE_FIELDS if name in self.fields}
        credentials = {name: self.cleaned_data.get(name) or "" for name in CREDENTIAL_FIELDS[SourceKind(self.kind)]}
        return settings, credentials

    def save(self, *, by: User) -> DataSource | None:
        """Create or update through the services; None when they refused (the errors are on the form)."""
        if not self.is_valid():
            return None
        settings, credentials = self._values()
        try:
            if self.source is None:
                return source_create(kind=self.kind, by=by, credentials=credentials, **settings)
            return source_update(source=self.source, by=by, credentials=credentials, **settings)
        except ValidationError as error:
            add_service_errors(self, error)
            return None

    def test_connection(self) -> ConnectionTest | None:
        """Test the connection with what the form holds, saving nothing; None when the form has errors.

        Required credentials may be left out for a test of a saved source (the stored ones are used).
        """
        for field in self.credential_fields:
            field.field.required = False
        if not self.is_valid():
            return None
        settings, credentials = self._values()
        source = self.source or DataSource(kind=self.kind)
        try:
            return source_test_connection(source=source, changes=settings, credentials=credentials)
        except ValidationError as error:
            add_service_errors(self, error)
            return None


class PartnerChoiceField(forms.CharField):
    """A partner of the active tenant, typed by name (the page offers the names) or given by id."""

    def clean(self, value):
        text = super().clean(value)
        if not text:
            return None
        partner = Partner.objects.filter(name__iexact=text).first()
        if partner is None and text.isascii() and text.isdigit() and len(text) < 19:
            partner = Partner.objects.filter(pk=int(text)).first()
        if partner is None:
            raise ValidationError("No partner of this workspace is called “%(name)s”.", params={"name": text[:80]})
        return partner


class MappingForm(forms.Form):
    """Map one partner reference of a source to a partner."""

    external_ref = forms.CharField(max_length=200, label="Partner reference")
    partner = PartnerChoiceField(max_length=200, widget=forms.TextInput(attrs={"list": "partner-options"}))

    def __init__(self, *args, source: DataSource, **kwargs):
        self.source = source
        super().__init__(*args, **kwargs)

    def save(self, *, by: User) -> MappingOutcome | None:
        if not self.is_valid():
            return None
        try:
            return mapping_create(
                source=self.source,
                external_ref=self.cleaned_data["external_ref"],
                partner=self.cleaned_data["partner"],
                by=by,
            )
        except ValidationError as error:
            add_service_errors(self, error)
            return None
