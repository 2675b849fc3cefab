"""Writes for data sources and partner mappings, and the connection test.

Every change is validated (each problem named on its field), saved atomically and audited.
Credentials are never audited with their values: events name the fields that were entered.
A mapping resolves the unmatched queue: it assigns its partner to the source's unmatched facts
under that reference and derives the partner's observations for the periods of those deals.
"""

from __future__ import annotations

import copy
import datetime
import ipaddress
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.forms.models import model_to_dict
from django.utils import timezone

from partnerhub.integrations.connectors import (
    AuthenticationFailed,
    ConfigurationError,
    ConnectorError,
    RateLimited,
    RetryPolicy,
    TransientError,
)
from partnerhub.integrations.facts import record_deal_observations
from partnerhub.integrations.secrets import CredentialsUnreadable
from partnerhub.integrations.source_models import (
    CREDENTIAL_FIELDS,
    DEFAULT_ENDPOINTS,
    Attribution,
    DataSource,
    Deal,
    MarketingFact,
    PartnerMapping,
    PartnerMatch,
    SourceKind,
    SyncErrorKind,
    SyncRun,
    SyncStatus,
)
from partnerhub.integrations.sync import PartnerMatcher, build_connector, sync_request
from partnerhub.partners.models import Partner
from partnerhub.tenancy.audit import audit, diff
from partnerhub.tenancy.models import ApiKey, User

# Someone is waiting on the page: one retry at most, and no long Retry-After slept through.
CONNECTION_TEST_RETRIES = RetryPolicy(max_attempts=2, rate_limit_attempts=1, max_retry_after=3.0)

# Fields a create or update may set; kind is fixed once created, the sync owns the rest.
SOURCE_EDITABLE_FIELDS = (
    "name",
    "base_url",
    "token_url",
    "api_version",
    "attribution",
    "attribution_field",
    "partner_match",
    "currency",
    "schedule_minutes",
    "overlap_minutes",
    "stale_after_hours",
)
AUDITED_FIELDS = ("kind", "is_active", *SOURCE_EDITABLE_FIELDS)

# Beat looks for due sources every five minutes; more often than this would only queue work twice.
SCHEDULE_MINUTES_MIN = 15
SCHEDULE_MINUTES_MAX = 7 * 24 * 60
OVERLAP_MINUTES_MAX = 24 * 60
STALE_AFTER_HOURS_MAX = 90 * 24
CREDENTIAL_MAX_LENGTH = 4096
EXTERNAL_REF_MAX_LENGTH = 200
URL_MAX_LENGTH = 200

ATTRIBUTIONS = {
    SourceKind.HUBSPOT: (Attribution.DEAL_PROPERTY, Attribution.ASSOCIATION_LABEL),
    SourceKind.SALESFORCE: (Attribution.PARTNER_ACCOUNT, Attribution.DEAL_PROPERTY),
}
PARTNER_MATCHES = {
    SourceKind.HUBSPOT: (PartnerMatch.HUBSPOT_COMPANY_ID, PartnerMatch.PARTNER_ID, PartnerMatch.MAPPING_ONLY),
    SourceKind.SALESFORCE: (PartnerMatch.SALESFORCE_ACCOUNT_ID, PartnerMatch.PARTNER_ID, PartnerMatch.MAPPING_ONLY),
    SourceKind.FILE: tuple(PartnerMatch),
    SourceKind.API: tuple(PartnerMatch),
}
CREDENTIAL_LABELS = {
    "access_token": "Private app access token",
    "client_id": "Consumer key",
    "client_secret": "Consumer secret",
}

API_VERSION = re.compile(r"^v\d{1,3}\.\d$")
HUBSPOT_PROPERTY = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
SALESFORCE_FIELD = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*$")  # as the connector checks
CURRENCY = re.compile(r"^[A-Z]{3}$")
_url = URLValidator(schemes=["http", "https"])


def source_defaults(kind: str) -> dict[str, Any]:
    """What a new source of ``kind`` starts with: the CRM's public endpoints and its usual attribution."""
    defaults: dict[str, Any] = dict(DEFAULT_ENDPOINTS.get(kind, {}))
    # A blank token address follows the login address (a sandbox's or My Domain's), which a
    # copied default would not.
    defaults["token_url"] = ""
    if kind == SourceKind.HUBSPOT:
        defaults.update(attribution=Attribution.DEAL_PROPERTY, partner_match=PartnerMatch.HUBSPOT_COMPANY_ID)
    elif kind == SourceKind.SALESFORCE:
        defaults.update(attribution=Attribution.PARTNER_ACCOUNT, partner_match=PartnerMatch.SALESFORCE_ACCOUNT_ID)
    else:
        defaults.update(partner_match=PartnerMatch.MAPPING_ONLY, schedule_minutes=0)
    return defaults


# --- Validation -------------------------------------------------------------------------------------


def _normalize(kind: str, fields: dict[str, Any]) -> dict[str, Any]:
    unknown = set(fields) - set(SOURCE_EDITABLE_FIELDS)
    if unknown:
        raise ValidationError({field: "This field cannot be set." for field in sorted(unknown)})
    fields = {key: value.strip() if isinstance(value, str) else value for key, value in fields.items()}
    for key in ("name", "base_url", "token_url", "api_version", "attribution", "attribution_field", "currency"):
        if key in fields and fields[key] is None:
            fields[key] = ""
    if isinstance(fields.get("currency"), str):
        fields["currency"] = fields["currency"].upper()
    # Fields a kind does not use are kept empty, so nothing stale is shown or used later.
    if kind != SourceKind.SALESFORCE:
        fields.update({key: "" for key in ("token_url", "api_version") if key in fields})
    if kind not in ATTRIBUTIONS:
        fields.update({key: "" for key in ("base_url", "attribution", "attribution_field") if key in fields})
    if fields.get("attribution") == Attribution.PARTNER_ACCOUNT:
        fields["attribution_field"] = ""  # the connector reads PartnerAccountId
    return fields


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _url_error(value: str) -> str | None:
    if len(value) > URL_MAX_LENGTH:
        return f"Keep the address under {URL_MAX_LENGTH} characters."
    try:
        _url(value)
    except ValidationError:
        return "Enter a full web address, e.g. https://api.hubapi.com."
    parts = urlsplit(value)
    if parts.scheme != "https" and not _is_loopback(parts.hostname or ""):
        return "Use an https:// address: credentials are sent to it."
    if parts.username or parts.password:
        return "Leave credentials out of the address; enter them in the credential fields."
    return None


def _whole_number(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _errors(source: DataSource) -> dict[str, str]:
    """Every problem with ``source``'s configuration, by field."""
    errors: dict[str, str] = {}
    kind = source.kind
    if not source.name:
        errors["name"] = "Give the source a name, e.g. “HubSpot — EMEA”."
    elif len(source.name) > 120:
        errors["name"] = "Keep the name under 120 characters."
    elif DataSource.objects.filter(name__iexact=source.name).exclude(pk=source.pk).exists():
        errors["name"] = "Another data source already has this name."

    if kind in ATTRIBUTIONS:
        if not source.base_url:
            errors["base_url"] = "Enter the address PartnerHub connects to."
        elif error := _url_error(source.base_url):
            errors["base_url"] = error
        if source.token_url and (error := _url_error(source.token_url)):
            errors["token_url"] = error
        if kind == SourceKind.SALESFORCE and not API_VERSION.match(source.api_version or ""):
            errors["api_version"] = "Give the REST API version as a “v”, the version and one decimal, e.g. v61.0."
        _attribution_errors(source, errors)

    if source.partner_match not in PARTNER_MATCHES.get(kind, ()):
        errors["partner_match"] = (
            "Salesforce account ids only match Salesforce sources."
            if source.partner_match == PartnerMatch.SALESFORCE_ACCOUNT_ID
            else "HubSpot company ids only match HubSpot sources."
            if source.partner_match == PartnerMatch.HUBSPOT_COMPANY_ID
            else "Choose how partner references are matched."
        )
    if not isinstance(source.currency, str) or not CURRENCY.match(source.currency):
        errors["currency"] = "Give the currency as its three-letter code, e.g. USD or EUR."

    schedule = _whole_number(source.schedule_minutes)
    if schedule is None or not (schedule == 0 or SCHEDULE_MINUTES_MIN <= schedule <= SCHEDULE_MINUTES_MAX):
        errors["schedule_minutes"] = (
            f"Sync every {SCHEDULE_MINUTES_MIN} to {SCHEDULE_MINUTES_MAX:,} minutes (a week), "
            "or 0 to sync only when asked."
        )
    overlap = _whole_number(source.overlap_minutes)
    if overlap is None or not 0 <= overlap <= OVERLAP_MINUTES_MAX:
        errors["overlap_minutes"] = f"Give an overlap from 0 to {OVERLAP_MINUTES_MAX:,} minutes (a day)."
    stale = _whole_number(source.stale_after_hours)
    if stale is None or not 1 <= stale <= STALE_AFTER_HOURS_MAX:
        errors["stale_after_hours"] = f"Give from 1 to {STALE_AFTER_HOURS_MAX:,} hours (90 days)."
    return errors


def _attribution_errors(source: DataSource, errors: dict[str, str]) -> None:
    kind, attribution, field = source.kind, source.attribution, source.attribution_field or ""
    if attribution not in ATTRIBUTIONS[kind]:
        if attribution == Attribution.ASSOCIATION_LABEL:
            errors["attribution"] = (
                "Association labels exist in HubSpot only; for Salesforce choose PartnerAccountId or an "
                "opportunity field."
            )
        elif attribution == Attribution.PARTNER_ACCOUNT:
            errors["attribution"] = (
                "PartnerAccountId is a Salesforce field; for HubSpot choose a deal property or an association label."
            )
        else:
            errors["attribution"] = "Choose how deals name their partner."
        return
    if len(field) > 120:
        errors["attribution_field"] = "Keep this under 120 characters."
    elif attribution == Attribution.ASSOCIATION_LABEL and not field:
        errors["attribution_field"] = "Enter the association label that marks a deal's partner company, e.g. Reseller."
    elif attribution == Attribution.DEAL_PROPERTY and kind == SourceKind.HUBSPOT and not HUBSPOT_PROPERTY.match(field):
        errors["attribution_field"] = (
            "Enter the deal property's internal name (letters, digits and underscores), e.g. partner_company_id."
            if field
            else "Enter the deal property that holds the partner, e.g. partner_company_id."
        )
    elif (
        attribution == Attribution.DEAL_PROPERTY and kind == SourceKind.SALESFORCE and not SALESFORCE_FIELD.match(field)
    ):
        errors["attribution_field"] = (
            "Enter the opportunity field's API name, e.g. Partner_Account__c."
            if field
            else "Enter the opportunity field that holds the partner, e.g. Partner_Account__c."
        )


def _validate(source: DataSource) -> None:
    errors = _errors(source)
    if errors:
        raise ValidationError(errors)


# --- Sources ----------------------------------------------------------------------------------------


def _snapshot(source: DataSource) -> dict[str, Any]:
    """What an audit event records of a source: its configuration, never its credentials."""
    return model_to_dict(source, AUDITED_FIELDS)


def _save(source: DataSource) -> None:
    try:
        with transaction.atomic():
            source.save()
    except IntegrityError as error:  # a concurrent writer took the name the validation checked
        raise ValidationError({"name": "Another data source with this name was saved at the same time."}) from error


def _apply_credentials(source: DataSource, values: dict[str, Any]) -> dict[str, list[str]]:
    """Encrypt the entered credentials onto ``source`` (unsaved); the audit changes, by field name only."""
    allowed = CREDENTIAL_FIELDS.get(source.kind, ())
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise ValidationError(
            {name: f"{source.get_kind_display()} sources have no credential “{name}”." for name in unknown}
        )
    entered = {name: str(value).strip() for name, value in values.items() if value is not None and str(value).strip()}
    too_long = [name for name, value in entered.items() if len(value) > CREDENTIAL_MAX_LENGTH]
    if too_long:
        raise ValidationError(
            {name: "This is longer than any credential we expect; check what was pasted." for name in too_long}
        )
    if not entered:
        return {}
    try:
        current = source.read_credentials()
    except CredentialsUnreadable:
        # Saved with a key we no longer have: every field must be entered again.
        missing = [name for name in allowed if name not in entered]
        if missing:
            raise ValidationError(
                {name: "The stored credentials can no longer be read; enter this one again too." for name in missing}
            ) from None
        current, source.credentials, source.credentials_set = {}, "", []
    changed = {name: value for name, value in entered.items() if current.get(name) != value}
    if not changed:
        return {}
    before = set(source.credentials_set or [])
    source.set_credentials(changed)
    return {name: ["set" if name in before else "not set", "replaced" if name in before else "set"] for name in changed}


@transaction.atomic
def source_create(
    *, kind: str, name: str, by: User | ApiKey, credentials: dict[str, Any] | None = None, **fields: Any
) -> DataSource:
    """Connect a CRM or feed: configuration from ``fields`` over the kind's defaults, credentials encrypted."""
    if kind not in SourceKind.values:
        raise ValidationError({"kind": "Choose HubSpot, Salesforce, file upload or API push."})
    values = _normalize(kind, {**source_defaults(kind), **fields, "name": name})
    source = DataSource(kind=kind, **values)
    _validate(source)
    credential_changes = _apply_credentials(source, credentials or {})
    _save(source)
    changes = diff({}, _snapshot(source))
    changes.update({f"credentials.{key}": value for key, value in credential_changes.items()})
    audit(actor=by, verb="data_source.created", target=source, changes=changes)
    return source


@transaction.atomic
def source_update(
    *, source: DataSource, by: User | ApiKey, credentials: dict[str, Any] | None = None, **fields: Any
) -> DataSource:
    """Change a source's configuration (and, when given, its credentials); records what changed."""
    if "kind" in fields and fields.pop("kind") != source.kind:
        raise ValidationError({"kind": "A source's kind cannot change; connect a new source instead."})
    fields = _normalize(source.kind, fields)
    before = _snapshot(source)
    for field, value in fields.items():
        setattr(source, field, value)
    try:
        _validate(source)
    except ValidationError:
        source.refresh_from_db()  # the caller's object must not keep values that were refused
        raise
    if "schedule_minutes" in fields and before["schedule_minutes"] != source.schedule_minutes:
        source.next_run_at = _next_run(source)
    _save(source)
    changes = diff(before, _snapshot(source))
    if changes:
        audit(actor=by, verb="data_source.updated", target=source, changes=changes)
    if credentials:
        source_set_credentials(source=source, values=credentials, by=by)
    return source


def _next_run(source: DataSource):
    if not source.schedule_minutes or not source.is_active:
        return None
    if source.last_success_at is None:
        return None  # due now: the next pass of the schedule syncs it
    return source.last_success_at + datetime.timedelta(minutes=source.schedule_minutes)


@transaction.atomic
def source_set_credentials(*, source: DataSource, values: dict[str, Any], by: User | ApiKey) -> list[str]:
    """Encrypt and store the entered credentials; a blank field keeps what was stored. Returns the fields changed.

    The audit event names the fields, never their values.
    """
    changes = _apply_credentials(source, values)
    if not changes:
        return []
    source.save(update_fields=["credentials", "credentials_set"])
    audit(actor=by, verb="data_source.credentials_changed", target=source, changes=changes)
    return sorted(changes)


@transaction.atomic
def source_deactivate(*, source: DataSource, by: User | ApiKey) -> DataSource:
    """Stop scheduling a source; its facts stay, and a sync already under way finishes."""
    if not source.is_active:
        return source
    source.is_active, source.next_run_at = False, None
    source.save(update_fields=["is_active", "next_run_at"])
    audit(actor=by, verb="data_source.deactivated", target=source, changes={"is_active": [True, False]})
    return source


@transaction.atomic
def source_activate(*, source: DataSource, by: User | ApiKey) -> DataSource:
    """Schedule a deactivated source again: it is due at once."""
    if source.is_active:
        return source
    source.is_active, source.next_run_at = True, None
    source.save(update_fields=["is_active", "next_run_at"])
    audit(actor=by, verb="data_source.activated", target=source, changes={"is_active": [False, True]})
    return source


def source_sync_now(*, source: DataSource, by: User) -> tuple[SyncRun, bool]:
    """Queue a sync of ``source`` now; ``(run, False)`` when one is already queued or running."""
    if not source.is_active:
        raise ValidationError(f"{source.name} is inactive; activate it to sync it.")
    if not source.pulled:
        raise ValidationError(f"{source.get_kind_display()} sources are not synced; they receive their facts.")
    open_run = SyncRun.objects.filter(source=source, status__in=[SyncStatus.QUEUED, SyncStatus.RUNNING]).first()
    if open_run is not None:
        return open_run, False
    return sync_request(source, by=by, trigger="manual"), True


# --- The connection test ----------------------------------------------------------------------------

# A person waits for the answer: waits the connector's retry policy asks for are cut short beyond this.
TEST_WAIT_BUDGET = 3.0

ADVICE = {
    SyncErrorKind.AUTHENTICATION: "Reconnect: the credentials were refused. Enter them again.",
    SyncErrorKind.CONFIGURATION: "Fix the configuration: the message names the field or setting.",
    SyncErrorKind.RATE_LIMIT: "The CRM is rate limiting PartnerHub; try again in a few minutes.",
    SyncErrorKind.TRANSIENT: "The CRM could not be reached or answered with a server error; try again shortly.",
    SyncErrorKind.OTHER: "The CRM refused the request; check the address and settings.",
}


@dataclass(frozen=True)
class ConnectionTest:
    """The outcome of a connection test, in words for the administrator."""

    ok: bool
    message: str
    error_kind: str = ""

    @property
    def advice(self) -> str:
        return ADVICE.get(self.error_kind, "")


def _bounded_sleep(budget: float = TEST_WAIT_BUDGET):
    remaining = [budget]

    def sleep(seconds: float) -> None:
        wait = max(0.0, min(seconds, remaining[0]))
        remaining[0] -= wait
        if wait:
            time.sleep(wait)

    return sleep


def source_test_connection(
    *,
    source: DataSource,
    changes: dict[str, Any] | None = None,
    credentials: dict[str, Any] | None = None,
) -> ConnectionTest:
    """Connect and read one page of what changed from now on (so nearly nothing); writes nothing.

    ``changes`` and ``credentials`` are applied to a copy that is never saved, so a form can be
    tested before it is saved (a blank credential uses the stored one). Invalid ``changes`` raise
    ValidationError, like an update would.
    """
    probe = copy.copy(source)
    if probe.pk is None:  # a source not created yet starts from its kind's defaults, as on creation
        changes = {**source_defaults(source.kind), **(changes or {})}
    if changes:
        for field, value in _normalize(source.kind, changes).items():
            setattr(probe, field, value)
        _validate(probe)
    if credentials:
        _apply_credentials(probe, credentials)
    if not probe.pulled:
        return ConnectionTest(
            False, f"{probe.get_kind_display()} sources have no connection to test.", SyncErrorKind.OTHER
        )
    try:
        with build_connector(
            probe, sleep=_bounded_sleep(), timeout=10.0, retry_policy=CONNECTION_TEST_RETRIES
        ) as connector:
            next(iter(connector.iter_pages(since=timezone.now())), None)
            instance = getattr(connector, "instance_url", None)
    except AuthenticationFailed as error:
        return ConnectionTest(False, str(error), SyncErrorKind.AUTHENTICATION)
    except ConfigurationError as error:
        return ConnectionTest(False, str(error), SyncErrorKind.CONFIGURATION)
    except RateLimited as error:
        return ConnectionTest(False, str(error), SyncErrorKind.RATE_LIMIT)
    except TransientError as error:
        return ConnectionTest(False, str(error), SyncErrorKind.TRANSIENT)
    except ConnectorError as error:
        return ConnectionTest(False, str(error), SyncErrorKind.OTHER)
    except (httpx.HTTPError, ValueError) as error:  # an address httpx cannot use, a malformed answer
        return ConnectionTest(False, f"The connection could not be made: {error}", SyncErrorKind.OTHER)
    if probe.kind == SourceKind.SALESFORCE:
        where = f" ({instance})" if instance else ""
        return ConnectionTest(
            True, f"Connected: Salesforce issued a session{where} and answered the opportunity query."
        )
    return ConnectionTest(True, "Connected: HubSpot accepted the token and answered the deal search.")


# --- Partner mappings -------------------------------------------------------------------------------


@dataclass(frozen=True)
class MappingOutcome:
    """What mapping a partner reference (or removing a mapping) changed."""

    mapping: PartnerMapping
    created: bool
    deals: int  # deals assigned (or, on removal, moved off the partner)
    facts: int  # marketing facts likewise
    observations: int  # observations recorded by deriving the affected periods again


def _periods_of(deals) -> set:
    days = set()
    for created_on, close_date in deals.values_list("created_on", "close_date").distinct():
        days.add(created_on)
        if close_date:
            days.add(close_date)
    return days


@transaction.atomic
def mapping_create(*, source: DataSource, external_ref: str, partner: Partner, by: User | ApiKey) -> MappingOutcome:
    """Map ``external_ref`` of ``source`` to ``partner`` and resolve the unmatched facts it names.

    Safe to repeat: mapping a reference to the partner it is already mapped to adds no mapping and
    assigns only facts still unmatched (those a sync running meanwhile stored with no partner).
    """
    ref = (external_ref or "").strip()
    if not ref:
        raise ValidationError({"external_ref": "Give the partner reference as the source names it."})
    if len(ref) > EXTERNAL_REF_MAX_LENGTH:
        raise ValidationError({"external_ref": f"Keep the reference under {EXTERNAL_REF_MAX_LENGTH} characters."})
    # The scoped manager sees this tenant's partners only: another tenant's is "not found".
    if partner is None or not Partner.objects.filter(pk=partner.pk).exists():
        raise ValidationError({"partner": "Choose a partner of this workspace."})
    mapping = PartnerMapping.objects.select_related("partner").filter(source=source, external_ref=ref).first()
    created = mapping is None
    if created:
        try:
            with transaction.atomic():
                mapping = PartnerMapping.objects.create(
                    source=source, external_ref=ref, partner=partner, created_by=_user(by)
                )
        except IntegrityError:  # mapped at the same moment by someone else
            created = False
            mapping = PartnerMapping.objects.select_related("partner").get(source=source, external_ref=ref)
    if mapping.partner_id != partner.pk:
        raise ValidationError(
            {"partner": f"“{ref}” is already mapped to {mapping.partner}. Remove that mapping to map it elsewhere."}
        )

    now = timezone.now()
    # One UPDATE per fact table; the periods to derive are read afterwards from every deal of the
    # partner under this reference, which includes any a concurrent sync matched in between.
    deals = Deal.objects.filter(source=source, partner_ref=ref, partner__isnull=True).update(
        partner=partner, updated_at=now
    )
    facts = MarketingFact.objects.filter(source=source, partner_ref=ref, partner__isnull=True).update(partner=partner)
    observations = 0
    if deals:
        days = _periods_of(
            Deal.objects.filter(source=source, partner_ref=ref, partner=partner, deleted_at__isnull=True)
        )
        observations = record_deal_observations(
            partner_ids={partner.pk}, days=days, currency=source.currency, source_ref=f"mapping:{mapping.pk}"
        )
    if created or deals or facts:
        audit(
            actor=by,
            verb="partner_mapping.created" if created else "partner_mapping.applied",
            target=mapping,
            changes={
                "source": [None, source.name],
                "external_ref": [None, ref],
                "partner": [None, partner.name],
                "deals_matched": [0, deals],
                "marketing_facts_matched": [0, facts],
                "observations_written": [0, observations],
            },
        )
    return MappingOutcome(mapping=mapping, created=created, deals=deals, facts=facts, observations=observations)


@transaction.atomic
def mapping_delete(*, mapping: PartnerMapping, by: User | ApiKey) -> MappingOutcome:
    """Remove a mapping; the facts it matched go back to the unmatched queue and are derived again.

    A fact goes to the partner the source's own matching rule finds for the reference, if any
    (what the next sync would do), otherwise back to the queue. The partner's observations for
    those periods are derived again (sums and counts drop; a rate with no deal left keeps its
    last value until a new one is recorded).
    """
    source, ref, old_partner = mapping.source, mapping.external_ref, mapping.partner
    removed = copy.copy(mapping)  # keeps its id for the audit event and the observations' reference
    mapping.delete()
    matcher = PartnerMatcher(source)  # the source's mappings without this one
    matcher.prepare([ref])
    fallback = matcher.partner_id(ref)
    deals = facts = observations = 0
    if fallback != old_partner.pk:
        matched = Deal.objects.filter(source=source, partner_ref=ref, partner=old_partner)
        days = _periods_of(matched.filter(deleted_at__isnull=True))
        deals = matched.update(partner_id=fallback, updated_at=timezone.now())
        facts = MarketingFact.objects.filter(source=source, partner_ref=ref, partner=old_partner).update(
            partner_id=fallback
        )
        if deals:
            observations = record_deal_observations(
                partner_ids={old_partner.pk} | ({fallback} if fallback else set()),
                days=days,
                currency=source.currency,
                source_ref=f"mapping:{removed.pk}:removed",
            )
    audit(
        actor=by,
        verb="partner_mapping.deleted",
        target=removed,
        changes={
            "source": [source.name, None],
            "external_ref": [ref, None],
            "partner": [old_partner.name, None],
            "deals_unassigned": [deals, 0],
            "observations_written": [0, observations],
        },
    )
    return MappingOutcome(mapping=removed, created=False, deals=deals, facts=facts, observations=observations)


def _user(actor: User | ApiKey | None) -> User | None:
    return actor if isinstance(actor, User) else None
