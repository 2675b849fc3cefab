"""Corrections and appeals: a partner disputes a value or a score, the program's people decide.

Nothing is overwritten. Approving a correction records the proposed value as a new observation
(source ``correction``, reference ``correction:<id>``) that supersedes the disputed one; the old
observation and the scores computed from it stay as history, and the partner's score is recomputed
as a new revision. An appeal changes no data: its decision is recorded, and an approved appeal
recomputes the partner's score for the period (a revision is written only if anything changed).

Every step writes an audit event naming the value at the time and the value proposed. Emails are
sent once the transaction commits: the partner's manager hears of a new request, the requester and
the partner's administrators of its decision.

The person acting is checked here, not only by the pages: only a partner's own people (partner
roles with ``REQUEST_CORRECTIONS``) ask, about their own partner's data; only internal people with
``DECIDE_CORRECTIONS`` decide. Another partner's value or score is "not found", as if missing.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from decimal import Decimal
from pathlib import PurePath
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.http import Http404
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from partnerhub.tenancy.audit import audit
from partnerhub.tenancy.context import current_tenant_id
from partnerhub.tenancy.emails import Email, send_on_commit
from partnerhub.tenancy.models import Membership, User
from partnerhub.tenancy.roles import Capability, Role
from scorecards.models import (
    CorrectionKind,
    CorrectionRequest,
    CorrectionStatus,
    MetricObservation,
    ObservationSource,
    Score,
    Unit,
)
from scorecards.services.observations import clean_value, observation_record

MAX_EVIDENCE_BYTES = 10 * 1024 * 1024
MAX_REASON_CHARS = 4000
MAX_COMMENT_CHARS = 4000
SNIFF_BYTES = 8192
SUPERSEDED_MEANWHILE = "The value changed since the request; ask the partner to check the new value."
# Bytes that never occur in a text (CSV) file, whatever its encoding: controls other than tab,
# line feed, form feed and carriage return.
_CONTROL_BYTES = frozenset(range(0x00, 0x09)) | {0x0B} | frozenset(range(0x0E, 0x20)) | {0x7F}


# --- Evidence files ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EvidenceKind:
    label: str
    content_type: str
    extension: str  # the extension the stored file gets


EVIDENCE_KINDS = {
    ".pdf": EvidenceKind("PDF", "application/pdf", ".pdf"),
    ".png": EvidenceKind("PNG", "image/png", ".png"),
    ".jpg": EvidenceKind("JPEG", "image/jpeg", ".jpg"),
    ".jpeg": EvidenceKind("JPEG", "image/jpeg", ".jpg"),
    ".csv": EvidenceKind("CSV", "text/csv", ".csv"),
    ".xlsx": EvidenceKind(
        "Excel (.xlsx)", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ".xlsx"
    ),
}
ACCEPTED_EVIDENCE = "a PDF, PNG, JPEG, CSV or Excel (.xlsx) file"
EVIDENCE_ACCEPT_ATTRIBUTE = ",".join(sorted(EVIDENCE_KINDS))


def _size_text(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    if size >= 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size} bytes"


def _is_text(head: bytes) -> bool:
    return bool(head.strip()) and not any(byte in _CONTROL_BYTES for byte in head)


def _is_xlsx(file) -> bool:
    """An Office Open XML workbook: a ZIP holding the content-types part and the workbook folder."""
    try:
        file.seek(0)
        with zipfile.ZipFile(file) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return False
    finally:
        file.seek(0)
    return "[Content_Types].xml" in names and any(name.startswith("xl/") for name in names)


def _content_matches(kind: EvidenceKind, head: bytes, file) -> bool:
    if kind.label == "PDF":
        return head.startswith(b"%PDF-")
    if kind.label == "PNG":
        return head.startswith(b"\x89PNG\r\n\x1a\n")
    if kind.label == "JPEG":
        return head.startswith(b"\xff\xd8\xff")
    if kind.extension == ".xlsx":
        return head.startswith(b"PK\x03\x04") and _is_xlsx(file)
    return _is_text(head)


def evidence_check(file: UploadedFile) -> EvidenceKind:
    """The kind of an evidence file, read from its first bytes; a clear error when it cannot be accepted.

    The name's extension says what the file claims to be and its content must agree: a renamed
    executable is not a PDF. At most ``MAX_EVIDENCE_BYTES``; nothing is stored here.
    """
    name = PurePath(str(getattr(file, "name", "") or "")).name or "The file"
    size = getattr(file, "size", None)
    if size is None:
        raise ValidationError({"evidence": "Attach the evidence as a file."})
    if size == 0:
        raise ValidationError({"evidence": f"“{name}” is empty; attach {ACCEPTED_EVIDENCE}."})
    if size > MAX_EVIDENCE_BYTES:
        raise ValidationError(
            {
                "evidence": f"“{name}” is {_size_text(size)}; evidence files are at most "
                f"{MAX_EVIDENCE_BYTES // (1024 * 1024)} MB. Attach a smaller file or an extract."
            }
        )
    kind = EVIDENCE_KINDS.get(PurePath(name).suffix.lower())
    if kind is None:
        raise ValidationError({"evidence": f"“{name}” is not a kind of file we accept; attach {ACCEPTED_EVIDENCE}."})
    file.seek(0)
    head = file.read(SNIFF_BYTES)
    file.seek(0)
    if not isinstance(head, bytes) or not _content_matches(kind, head, file):
        raise ValidationError(
            {
                "evidence": f"“{name}” is named like a {kind.label} file but its content is not {kind.label}; "
                f"attach the file itself ({ACCEPTED_EVIDENCE})."
            }
        )
    return kind


def _attach_evidence(request: CorrectionRequest, file: UploadedFile, kind: EvidenceKind) -> None:
    """Store the file under evidence/<tenant>/ with a random name and the extension of its real kind."""
    request.evidence_name = PurePath(str(file.name)).name[:255]
    request.evidence_type = kind.content_type
    request.evidence_size = file.size
    request.evidence.save(f"evidence{kind.extension}", file, save=False)


def _discard_evidence(request: CorrectionRequest) -> None:
    if request.evidence:
        request.evidence.delete(save=False)


# --- Who may act -------------------------------------------------------------------------------------


def _membership(by: Any) -> Membership | None:
    if not isinstance(by, User) or not by.is_active:
        return None
    return Membership.objects.filter(user=by).first()


def _require_requester(by: Any, partner_id: int) -> Membership:
    """A partner user of ``partner_id`` who may request corrections.

    Internal people and API keys are refused (403); a partner user of another partner is told the
    value does not exist (404), exactly as for one that does not.
    """
    membership = _membership(by)
    if membership is None or not membership.can(Capability.REQUEST_CORRECTIONS):
        raise PermissionDenied("Corrections and appeals are requested by the partner's own people.")
    if membership.partner_id != partner_id:
        raise Http404("No such value or score.")
    return membership


def _require_decider(by: Any) -> Membership:
    membership = _membership(by)
    if membership is None or not membership.is_internal or not membership.can(Capability.DECIDE_CORRECTIONS):
        raise PermissionDenied("Your role does not decide corrections and appeals.")
    return membership


# --- Validation ----------------------------------------------------------------------------------------


def _clean_reason(reason: Any, errors: dict[str, list[str]]) -> str:
    text = reason.strip() if isinstance(reason, str) else ""
    if not text:
        errors.setdefault("reason", []).append("Say why: what is wrong, and where the right number comes from.")
    elif len(text) > MAX_REASON_CHARS:
        errors.setdefault("reason", []).append(
            f"Keep the reason under {MAX_REASON_CHARS:,} characters ({len(text):,} now); attach longer explanations "
            "as evidence."
        )
    return text


def _clean_evidence(evidence: Any, errors: dict[str, list[str]]) -> EvidenceKind | None:
    if evidence in (None, ""):
        return None
    try:
        return evidence_check(evidence)
    except ValidationError as error:
        errors.setdefault("evidence", []).extend(error.message_dict["evidence"])
        return None


def _plain(number: Decimal | None) -> str | None:
    if number is None:
        return None
    return format(number.normalize(), "f")


UNIT_SUFFIX = {Unit.PERCENT: "%", Unit.DAYS: " days", Unit.HOURS: " hours"}


def value_text(number: Decimal | None, unit: str = "") -> str:
    """A stored value as a person reads it, every digit kept: 1,250.5 · 91% · 12 days; a dash for none."""
    if number is None:
        return "—"
    text = format(number.normalize(), ",f")
    return f"{text}{UNIT_SUFFIX.get(unit, '')}"


def request_values(request: CorrectionRequest) -> tuple[str, str]:
    """The value disputed and the value proposed (corrections), or the total appealed and a dash."""
    if request.kind == CorrectionKind.CORRECTION:
        unit = request.metric.unit
        return value_text(request.value_at_request, unit), value_text(request.proposed_value, unit)
    return value_text(request.value_at_request), "—"


def _lock_request(request: CorrectionRequest) -> CorrectionRequest:
    """The request as stored now, locked: two people deciding at once are serialized here."""
    return (
        CorrectionRequest.objects.select_for_update(of=("self",))
        .select_related("partner", "metric", "observation", "score", "requested_by")
        .get(pk=request.pk)
    )


def _ensure_open(request: CorrectionRequest) -> None:
    if request.status != CorrectionStatus.OPEN:
        raise ValidationError(f"This request is already {request.get_status_display().lower()}.", code="closed")


def _label(request: CorrectionRequest) -> str:
    return "correction" if request.kind == CorrectionKind.CORRECTION else "appeal"


def _audit_changes(request: CorrectionRequest, **extra: list[Any]) -> dict[str, list[Any]]:
    """What every event of a request names: whose, which value, and the value then and proposed."""
    changes: dict[str, list[Any]] = {
        "partner": [None, request.partner.name],
        "period": [None, request.period],
    }
    if request.kind == CorrectionKind.CORRECTION:
        changes["metric"] = [None, request.metric.key]
        changes["value"] = [_plain(request.value_at_request), _plain(request.proposed_value)]
    else:
        changes["score"] = [None, _plain(request.value_at_request)]
    changes.update(extra)
    return changes


# --- Emails ---------------------------------------------------------------------------------------------


def _site_url(name: str) -> str:
    return settings.SITE_URL.rstrip("/") + reverse(name)


def _what(request: CorrectionRequest) -> str:
    if request.kind == CorrectionKind.CORRECTION:
        return f"{request.metric.name} for {request.period}"
    return f"the {request.period} score"


def _request_email(request: CorrectionRequest) -> Email | None:
    manager = request.partner.manager
    if manager is None or not manager.is_active or not manager.email:
        return None
    old_value, new_value = request_values(request)
    context = {
        "request": request,
        "partner": request.partner,
        "old_value": old_value,
        "new_value": new_value,
        "queue_url": _site_url("correction_queue"),
    }
    verb = "asks to correct" if request.kind == CorrectionKind.CORRECTION else "appeals"
    return Email(
        subject=f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}{request.partner.name} {verb} {_what(request)}",
        body=render_to_string("scorecards/corrections/email/requested.txt", context),
        recipients=(manager.email,),
    )


def _decision_email(request: CorrectionRequest) -> Email:
    admins = Membership.objects.filter(
        partner_id=request.partner_id, role=Role.PARTNER_ADMIN, user__is_active=True
    ).values_list("user__email", flat=True)
    recipients = set(admins)
    if request.requested_by is not None and request.requested_by.is_active:
        recipients.add(request.requested_by.email)
    old_value, new_value = request_values(request)
    context = {
        "request": request,
        "partner": request.partner,
        "old_value": old_value,
        "new_value": new_value,
        "requests_url": _site_url("correction_portal_requests"),
    }
    return Email(
        subject=f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}Your {_label(request)} of {_what(request)} was "
        f"{request.get_status_display().lower()}",
        body=render_to_string("scorecards/corrections/email/decided.txt", context),
        recipients=tuple(sorted(email for email in recipients if email)),
    )


# --- Requests ---------------------------------------------------------------------------------------------


def _save_new(request: CorrectionRequest, evidence: UploadedFile | None, kind: EvidenceKind | None, message: str):
    request.adopt_active_tenant()  # the evidence path names the tenant
    if evidence is not None and kind is not None:
        _attach_evidence(request, evidence, kind)
    try:
        with transaction.atomic():
            request.save()
    except IntegrityError as error:
        # Two requests for the same value at the same moment: the partial unique index lets one in.
        _discard_evidence(request)
        raise ValidationError(message, code="already_open") from error


@transaction.atomic
def correction_request(
    *,
    observation: MetricObservation,
    proposed_value: Any,
    reason: Any,
    evidence: UploadedFile | None = None,
    by: User,
) -> CorrectionRequest:
    """A partner user asks for a value of their own partner to be corrected.

    Only the value in force can be disputed, once at a time; the proposed value is held to the
    metric's plausible bounds. Every problem is reported at once, by field, and nothing is stored
    (not even the evidence file) unless all is well.
    """
    if observation.tenant_id != current_tenant_id():
        raise Http404("No such value.")
    _require_requester(by, observation.partner_id)
    observation = (
        MetricObservation.objects.select_for_update(of=("self",))
        .select_related("partner", "partner__manager", "metric")
        .get(pk=observation.pk)
    )
    if observation.superseded_by_id is not None:
        raise ValidationError(
            "This value has been replaced since you opened the page; ask for a correction of the value in force.",
            code="superseded",
        )
    errors: dict[str, list[str]] = {}
    value = None
    try:
        value = clean_value(proposed_value, metric=observation.metric)
    except ValidationError as error:
        errors["proposed_value"] = error.message_dict["value"]
    if value is not None and value == observation.value:
        errors["proposed_value"] = ["That is the value already recorded; propose the value it should be."]
    reason = _clean_reason(reason, errors)
    kind = _clean_evidence(evidence, errors)
    existing = CorrectionRequest.objects.open().filter(observation=observation).first()
    if existing is not None:
        errors.setdefault("__all__", []).append(
            f"There is already an open correction request for this value (#{existing.pk}); "
            "follow it under “Your requests”, or withdraw it first."
        )
    if errors:
        raise ValidationError(errors)
    request = CorrectionRequest(
        partner=observation.partner,
        kind=CorrectionKind.CORRECTION,
        observation=observation,
        metric=observation.metric,
        period=observation.period,
        value_at_request=observation.value,
        proposed_value=value,
        reason=reason,
        requested_by=by,
        requested_at=timezone.now(),
    )
    _save_new(request, evidence, kind, "There is already an open correction request for this value.")
    audit(
        actor=by,
        verb="correction.requested",
        target=request,
        changes=_audit_changes(
            request,
            status=[None, CorrectionStatus.OPEN.value],
            reason=[None, reason],
            **({"evidence": [None, request.evidence_name]} if request.evidence else {}),
        ),
    )
    send_on_commit([_request_email(request)])
    return request


@transaction.atomic
def appeal_request(*, score: Score, reason: Any, evidence: UploadedFile | None = None, by: User) -> CorrectionRequest:
    """A partner user appeals their own partner's current score for a period (with a reason, maybe evidence)."""
    if score.tenant_id != current_tenant_id():
        raise Http404("No such score.")
    _require_requester(by, score.partner_id)
    score = Score.objects.select_for_update(of=("self",)).select_related("partner", "partner__manager").get(pk=score.pk)
    if not score.is_current:
        raise ValidationError(
            "This score has been recomputed since you opened the page; appeal the score in force.", code="superseded"
        )
    errors: dict[str, list[str]] = {}
    reason = _clean_reason(reason, errors)
    kind = _clean_evidence(evidence, errors)
    existing = CorrectionRequest.objects.open().filter(score=score).first()
    if existing is not None:
        errors.setdefault("__all__", []).append(
            f"There is already an open appeal of this score (#{existing.pk}); follow it under “Your requests”."
        )
    if errors:
        raise ValidationError(errors)
    request = CorrectionRequest(
        partner=score.partner,
        kind=CorrectionKind.APPEAL,
        score=score,
        period=score.period,
        value_at_request=score.total,
        reason=reason,
        requested_by=by,
        requested_at=timezone.now(),
    )
    _save_new(request, evidence, kind, "There is already an open appeal of this score.")
    audit(
        actor=by,
        verb="appeal.requested",
        target=request,
        changes=_audit_changes(
            request,
            status=[None, CorrectionStatus.OPEN.value],
            reason=[None, reason],
            **({"evidence": [None, request.evidence_name]} if request.evidence else {}),
        ),
    )
    send_on_commit([_request_email(request)])
    return request


@transaction.atomic
def request_withdraw(*, request: CorrectionRequest, by: User) -> CorrectionRequest:
    """The person who asked takes their open request back; nothing else changes."""
    _require_requester(by, request.partner_id)
    request = _lock_request(request)
    if request.requested_by_id != by.pk:
        raise PermissionDenied("Only the person who made a request can withdraw it.")
    _ensure_open(request)
    request.status = CorrectionStatus.WITHDRAWN
    request.decided_at = timezone.now()
    request.save(update_fields=["status", "decided_at"])
    audit(
        actor=by,
        verb=f"{_label(request)}.withdrawn",
        target=request,
        changes=_audit_changes(request, status=[CorrectionStatus.OPEN.value, CorrectionStatus.WITHDRAWN.value]),
    )
    return request


@transaction.atomic
def request_decide(*, request: CorrectionRequest, approve: bool, comment: Any = "", by: User) -> CorrectionRequest:
    """Approve or reject an open request; a rejection says why (the partner reads it).

    Approving a correction records the proposed value as a new observation superseding the disputed
    one, which queues the period's (coalesced) recompute, and queues the fast recompute of this
    partner alone so the partner sees the new score within moments. If the disputed value was
    replaced meanwhile (a sync, an upload, another correction), approval is refused: the proposal
    answered a value that is no longer in force.
    """
    _require_decider(by)
    request = _lock_request(request)
    _ensure_open(request)
    comment = comment.strip() if isinstance(comment, str) else ""
    if not approve and not comment:
        raise ValidationError({"comment": "Say why the request is rejected; the partner reads this."})
    if len(comment) > MAX_COMMENT_CHARS:
        raise ValidationError({"comment": f"Keep the comment under {MAX_COMMENT_CHARS:,} characters."})
    extra: dict[str, list[Any]] = {}
    status = CorrectionStatus.APPROVED if approve else CorrectionStatus.REJECTED
    if approve and request.kind == CorrectionKind.CORRECTION:
        disputed = MetricObservation.objects.select_for_update(of=("self",)).get(pk=request.observation_id)
        if disputed.superseded_by_id is not None:
            raise ValidationError(SUPERSEDED_MEANWHILE, code="superseded")
        _recompute_partner_on_commit(request, reason=f"correction #{request.pk}")
        resulting, _created = observation_record(
            partner=request.partner,
            metric=request.metric,
            period=request.period,
            value=request.proposed_value,
            source=ObservationSource.CORRECTION,
            source_ref=f"correction:{request.pk}",
            by=by,
            note=f"Correction #{request.pk} requested by {request.requested_by or 'a partner user'}",
        )
        request.resulting_observation = resulting
        extra["observation"] = [disputed.pk, resulting.pk]
    elif approve:
        _recompute_partner_on_commit(request, reason=f"appeal #{request.pk}")
    request.status = status
    request.decided_by = by
    request.decided_at = timezone.now()
    request.decision_comment = comment
    request.save(update_fields=["status", "decided_by", "decided_at", "decision_comment", "resulting_observation"])
    audit(
        actor=by,
        verb=f"{_label(request)}.{status.value}",
        target=request,
        changes=_audit_changes(
            request, status=[CorrectionStatus.OPEN.value, status.value], comment=[None, comment or None], **extra
        ),
    )
    send_on_commit([_decision_email(request)])
    return request


def _recompute_partner_on_commit(request: CorrectionRequest, *, reason: str) -> None:
    from scorecards.tasks import recompute_partner_task

    tenant_id, partner_id, period = request.tenant_id, request.partner_id, request.period
    transaction.on_commit(
        lambda: recompute_partner_task.delay(tenant_id=tenant_id, partner_id=partner_id, period=period, reason=reason)
    )
