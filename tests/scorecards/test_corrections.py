"""Corrections and appeals: requesting, withdrawing, deciding, evidence, emails and the audit trail."""

from __future__ import annotations

import datetime
import io
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, transaction
from django.http import Http404
from PIL import Image

from partnerhub.tenancy.context import tenant_scope
from partnerhub.tenancy.models import AuditEvent
from scorecards.correction_views import age_text, duration_text
from scorecards.models import (
    CorrectionKind,
    CorrectionRequest,
    CorrectionStatus,
    MetricObservation,
    ObservationSource,
    RecomputeRun,
    Score,
)
from scorecards.services import corrections
from scorecards.services.corrections import (
    SUPERSEDED_MEANWHILE,
    appeal_request,
    correction_request,
    request_decide,
    request_withdraw,
)
from scorecards.services.observations import observation_record

REASON = "Two surveys came in after the export; the report attached has every answer."


# --- Evidence files of every kind -----------------------------------------------------------------------


def pdf_bytes() -> bytes:
    return b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def image_bytes(kind: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 30, 30)).save(buffer, format=kind)
    return buffer.getvalue()


def xlsx_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
        archive.writestr("xl/worksheets/sheet1.xml", "<worksheet/>")
    return buffer.getvalue()


def plain_zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("notes.txt", "not a workbook")
    return buffer.getvalue()


def upload(name: str, content: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content)


# --- The world ----------------------------------------------------------------------------------------------


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    return tmp_path


@pytest.fixture
def a(world, media):
    """Tenant a with partner 1's manager set, inside its scope."""
    with tenant_scope(world.a.tenant):
        partner = world.a.partners[0]
        partner.manager = world.a.users["partner_manager"]
        partner.save(update_fields=["manager"])
        yield world.a


def period(world_tenant) -> str:
    return world_tenant.extra["scorecards"].periods[1]


def value_of(world_tenant, key="customer_satisfaction", partner_index=0) -> MetricObservation:
    return MetricObservation.objects.current().get(
        partner=world_tenant.partners[partner_index], metric__key=key, period=period(world_tenant)
    )


def current_score(world_tenant, partner_index=0) -> Score:
    return Score.objects.current().get(partner=world_tenant.partners[partner_index], period=period(world_tenant))


def ask(world_tenant, value="7.1", *, who="partner_member", observation=None, **extra) -> CorrectionRequest:
    return correction_request(
        observation=observation or value_of(world_tenant),
        proposed_value=value,
        reason=extra.pop("reason", REASON),
        by=world_tenant.users[who],
        **extra,
    )


def evidence_files(media: Path) -> list[Path]:
    return [path for path in media.rglob("*") if path.is_file()]


def events(verb: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(verb=verb).order_by("pk"))


# --- The whole loop ---------------------------------------------------------------------------------------


def test_correction_approval_supersedes_observation_and_revises_the_score(a, django_capture_on_commit_callbacks):
    old = value_of(a)
    score_before = current_score(a)
    with django_capture_on_commit_callbacks(execute=True):
        request = ask(a, "7.1")
    assert request.status == CorrectionStatus.OPEN and request.value_at_request == Decimal("8.4")
    assert request.metric.key == "customer_satisfaction" and request.period == period(a)

    with django_capture_on_commit_callbacks(execute=True):
        decided = request_decide(request=request, approve=True, comment="Checked the survey tool.", by=a.users["admin"])

    old.refresh_from_db()
    new = decided.resulting_observation
    assert decided.status == CorrectionStatus.APPROVED and decided.decided_by == a.users["admin"]
    assert old.superseded_by_id == new.pk, "the disputed value is superseded, never overwritten"
    assert old.value == Decimal("8.4")
    assert (new.value, new.source, new.source_ref) == (
        Decimal("7.1"),
        ObservationSource.CORRECTION,
        f"correction:{request.pk}",
    )
    assert new.recorded_by == a.users["admin"]

    revisions = list(Score.objects.filter(partner=a.partners[0], period=period(a)).order_by("revision"))
    assert [(score.revision, score.is_current) for score in revisions] == [(1, False), (2, True)]
    assert revisions[0].pk == score_before.pk and revisions[0].total == score_before.total
    satisfaction = next(c for c in revisions[1].components if c["metric_key"] == "customer_satisfaction")
    assert satisfaction["raw"] == pytest.approx(7.1)
    assert revisions[1].total < score_before.total
    reasons = set(RecomputeRun.objects.values_list("reason", flat=True))
    assert f"correction #{request.pk}" in reasons, "the partner's own fast recompute ran"


def test_a_rejection_needs_a_comment_and_changes_no_data(a, django_capture_on_commit_callbacks):
    request = ask(a)
    with pytest.raises(ValidationError) as problem:
        request_decide(request=request, approve=False, comment="   ", by=a.users["partner_manager"])
    assert "comment" in problem.value.message_dict
    request.refresh_from_db()
    assert request.status == CorrectionStatus.OPEN

    runs_before = RecomputeRun.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        request_decide(request=request, approve=False, comment="The export is right.", by=a.users["partner_manager"])
    request.refresh_from_db()
    assert (request.status, request.decision_comment) == (CorrectionStatus.REJECTED, "The export is right.")
    assert request.resulting_observation is None
    assert value_of(a).value == Decimal("8.4") and RecomputeRun.objects.count() == runs_before


def test_a_decided_request_cannot_be_decided_again(a):
    request = ask(a)
    request_decide(request=request, approve=False, comment="No.", by=a.users["admin"])
    with pytest.raises(ValidationError, match="already rejected"):
        request_decide(request=request, approve=True, by=a.users["partner_manager"])


def test_the_requester_withdraws_an_open_request_and_may_ask_again(a):
    request = ask(a)
    with pytest.raises(PermissionDenied):
        request_withdraw(request=request, by=a.users["partner_admin"])  # a colleague, not the requester
    withdrawn = request_withdraw(request=request, by=a.users["partner_member"])
    assert withdrawn.status == CorrectionStatus.WITHDRAWN and withdrawn.decided_at is not None
    assert withdrawn.decided_by is None
    with pytest.raises(ValidationError, match="already withdrawn"):
        request_withdraw(request=request, by=a.users["partner_member"])
    with pytest.raises(ValidationError, match="already withdrawn"):
        request_decide(request=request, approve=True, by=a.users["admin"])
    again = ask(a, "7.3")
    assert again.is_open


def test_one_open_request_per_observation(a):
    first = ask(a)
    with pytest.raises(ValidationError) as problem:
        ask(a, "7.5", who="partner_admin")
    assert f"#{first.pk}" in problem.value.message_dict["__all__"][0]
    assert CorrectionRequest.objects.filter(observation=first.observation).count() == 1
    # The database holds the line too, for two requests arriving at the same moment.
    with pytest.raises(IntegrityError), transaction.atomic():
        CorrectionRequest.objects.create(
            partner=first.partner,
            kind=CorrectionKind.CORRECTION,
            observation=first.observation,
            metric=first.metric,
            period=first.period,
            value_at_request=first.value_at_request,
            proposed_value=Decimal("7.9"),
            reason="again",
        )


def test_one_open_appeal_per_score_and_only_of_the_score_in_force(a):
    score = current_score(a)
    appeal = appeal_request(
        score=score, reason="The peers' pipeline looks double counted.", by=a.users["partner_admin"]
    )
    assert (appeal.kind, appeal.value_at_request, appeal.metric) == (CorrectionKind.APPEAL, score.total, None)
    with pytest.raises(ValidationError, match="already an open appeal"):
        appeal_request(score=score, reason="Again.", by=a.users["partner_member"])
    Score.objects.filter(pk=score.pk).update(is_current=False)
    request_withdraw(request=appeal, by=a.users["partner_admin"])
    with pytest.raises(ValidationError, match="recomputed since"):
        appeal_request(score=score, reason="Again.", by=a.users["partner_member"])


def test_approving_an_appeal_records_the_decision_and_recomputes_the_partner(a, django_capture_on_commit_callbacks):
    appeal = appeal_request(score=current_score(a), reason="Please check.", by=a.users["partner_admin"])
    observations_before = MetricObservation.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        request_decide(request=appeal, approve=True, comment="Rechecked with the latest data.", by=a.users["admin"])
    appeal.refresh_from_db()
    assert appeal.status == CorrectionStatus.APPROVED and appeal.resulting_observation is None
    assert MetricObservation.objects.count() == observations_before
    assert RecomputeRun.objects.filter(reason=f"appeal #{appeal.pk}", period=period(a)).exists()
    # Nothing changed in the data, so the recompute wrote no new revision.
    assert Score.objects.filter(partner=a.partners[0], period=period(a)).count() == 1


# --- Who may do what ------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["admin", "partner_manager", "executive"])
def test_internal_people_cannot_request_corrections(a, role):
    with pytest.raises(PermissionDenied):
        ask(a, who=role)
    with pytest.raises(PermissionDenied):
        appeal_request(score=current_score(a), reason="x", by=a.users[role])
    assert not CorrectionRequest.objects.filter(partner=a.partners[0]).exists()


def test_api_keys_cannot_request_or_decide(a):
    key = a.write_key[0]
    with pytest.raises(PermissionDenied):
        correction_request(observation=value_of(a), proposed_value="7", reason="x", by=key)
    with pytest.raises(PermissionDenied):
        request_decide(request=a.extra["correction_request"], approve=False, comment="x", by=key)


@pytest.mark.parametrize("role", ["partner_admin", "partner_member", "executive"])
def test_only_internal_deciders_decide(a, role):
    request = ask(a)
    with pytest.raises(PermissionDenied):
        request_decide(request=request, approve=True, by=a.users[role])
    request.refresh_from_db()
    assert request.is_open


def test_a_partner_user_cannot_touch_another_partners_values_or_requests(a):
    with pytest.raises(Http404):
        ask(a, who="other_partner_admin")  # partner 1's value, asked by partner 2's admin
    with pytest.raises(Http404):
        appeal_request(score=current_score(a), reason="x", by=a.users["other_partner_admin"])
    request = ask(a)
    with pytest.raises(Http404):
        request_withdraw(request=request, by=a.users["other_partner_admin"])
    request.refresh_from_db()
    assert request.is_open


def test_another_tenants_value_is_not_found(world, a):
    with tenant_scope(world.b.tenant):
        foreign = value_of(world.b)
    with pytest.raises(Http404):
        correction_request(observation=foreign, proposed_value="7", reason="x", by=a.users["partner_member"])


# --- Values and the moment they change ------------------------------------------------------------------


def test_approval_is_refused_when_the_value_changed_meanwhile(a, django_capture_on_commit_callbacks):
    request = ask(a, "7.1")
    observation_record(
        partner=a.partners[0],
        metric=request.metric,
        period=request.period,
        value="8.0",
        source=ObservationSource.MANUAL,
        by=a.users["admin"],
    )
    with pytest.raises(ValidationError) as problem:
        request_decide(request=request, approve=True, by=a.users["partner_manager"])
    assert problem.value.messages == [SUPERSEDED_MEANWHILE]
    request.refresh_from_db()
    assert request.is_open
    assert value_of(a).value == Decimal("8.0")
    assert not MetricObservation.objects.filter(source=ObservationSource.CORRECTION).exists()
    # It can still be rejected, saying why.
    request_decide(request=request, approve=False, comment="Replaced by the September survey.", by=a.users["admin"])


def test_a_replaced_value_cannot_be_disputed(a):
    old = value_of(a)
    observation_record(partner=a.partners[0], metric=old.metric, period=old.period, value="8.0", by=a.users["admin"])
    with pytest.raises(ValidationError, match="replaced since"):
        ask(a, observation=old)


@pytest.mark.parametrize(
    "value, message",
    [
        ("", "Enter the value."),
        ("seven", "is not a number"),
        ("11", "outside the plausible range for Customer satisfaction: between 1 and 10"),
        ("8.4", "already recorded"),
        ("NaN", "is not a number"),
        ("1e400", "too large to store"),
    ],
)
def test_the_proposed_value_is_checked_against_the_metric(a, media, value, message):
    with pytest.raises(ValidationError) as problem:
        ask(a, value, evidence=upload("survey.pdf", pdf_bytes()))
    assert message in problem.value.message_dict["proposed_value"][0]
    assert not CorrectionRequest.objects.filter(partner=a.partners[0]).exists()
    assert evidence_files(media) == [], "nothing is stored when the request is refused"


def test_every_problem_is_named_at_once(a):
    with pytest.raises(ValidationError) as problem:
        ask(a, "abc", reason="  ", evidence=upload("notes.txt", b"hello"))
    assert set(problem.value.message_dict) == {"proposed_value", "reason", "evidence"}


def test_a_long_reason_is_refused_with_its_length(a):
    with pytest.raises(ValidationError, match="under 4,000 characters"):
        ask(a, reason="x" * 4001)


# --- Evidence -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, content, content_type",
    [
        ("Survey export.PDF", pdf_bytes(), "application/pdf"),
        ("screenshot.png", image_bytes("PNG"), "image/png"),
        ("photo.jpeg", image_bytes("JPEG"), "image/jpeg"),
        ("answers.csv", "respondent;score\nÅsa;9\n".encode("cp1252"), "text/csv"),
        (
            "answers.xlsx",
            xlsx_bytes(),
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
    ],
)
def test_evidence_is_accepted_by_its_content_and_stored_under_the_tenant(a, media, name, content, content_type):
    request = ask(a, evidence=upload(name, content))
    assert (request.evidence_name, request.evidence_type, request.evidence_size) == (name, content_type, len(content))
    stored = Path(request.evidence.path)
    assert stored.parent == media / "evidence" / str(a.tenant.pk)
    assert stored.read_bytes() == content
    assert name.split(".")[0] not in stored.name, "the partner's file name is never the stored name"


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("invoice.pdf", b"MZ\x90\x00\x03 this is a program", "named like a PDF file but its content is not PDF"),
        ("invoice.pdf", b"just some text", "named like a PDF file but its content is not PDF"),
        ("screenshot.png", pdf_bytes(), "named like a PNG file but its content is not PNG"),
        ("photo.jpg", image_bytes("PNG"), "named like a JPEG file but its content is not JPEG"),
        ("answers.csv", image_bytes("PNG"), "named like a CSV file but its content is not CSV"),
        ("answers.xlsx", plain_zip_bytes(), "content is not Excel (.xlsx)"),
        ("answers.xlsx", b"PK\x03\x04broken", "content is not Excel (.xlsx)"),
        ("notes.txt", b"hello", "not a kind of file we accept"),
        ("page.html", b"<html></html>", "not a kind of file we accept"),
        ("no-extension", pdf_bytes(), "not a kind of file we accept"),
        ("empty.pdf", b"", "is empty"),
    ],
)
def test_evidence_that_is_not_what_it_claims_is_refused_and_nothing_is_written(a, media, name, content, message):
    with pytest.raises(ValidationError) as problem:
        ask(a, evidence=upload(name, content))
    assert message in problem.value.message_dict["evidence"][0]
    assert not CorrectionRequest.objects.filter(partner=a.partners[0]).exists()
    assert evidence_files(media) == []


def test_evidence_over_ten_megabytes_is_refused_with_its_size(a, media):
    big = upload("scan.pdf", b"%PDF-1.7\n" + b"0" * (10 * 1024 * 1024))
    with pytest.raises(ValidationError) as problem:
        ask(a, evidence=big)
    assert problem.value.message_dict["evidence"] == [
        "“scan.pdf” is 10.0 MB; evidence files are at most 10 MB. Attach a smaller file or an extract."
    ]
    assert not CorrectionRequest.objects.filter(partner=a.partners[0]).exists()
    assert evidence_files(media) == []
    exactly = upload("scan.pdf", b"%PDF-1.7\n" + b"0" * (10 * 1024 * 1024 - 9))
    assert ask(a, evidence=exactly).evidence_size == 10 * 1024 * 1024


# --- Emails and the audit trail ------------------------------------------------------------------------------


def test_the_manager_hears_of_a_request_once_and_the_partner_of_the_decision(a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        request = ask(a, "7.1", evidence=upload("survey.pdf", pdf_bytes()))
    assert len(mail.outbox) == 1
    arrived = mail.outbox[0]
    assert arrived.to == [a.users["partner_manager"].email]
    assert "Acme Partner 1 asks to correct Customer satisfaction for" in arrived.subject
    assert "Recorded value:  8.4" in arrived.body and "Proposed value:  7.1" in arrived.body
    assert REASON in arrived.body and "survey.pdf" in arrived.body and "/corrections/" in arrived.body

    with django_capture_on_commit_callbacks(execute=True):
        request_decide(request=request, approve=False, comment="The export is right.", by=a.users["partner_manager"])
    assert len(mail.outbox) == 2
    decided = mail.outbox[1]
    # The requester (a member) and the partner's administrators, in one message.
    assert sorted(decided.to) == sorted([a.users["partner_member"].email, a.users["partner_admin"].email])
    assert a.users["other_partner_admin"].email not in decided.to
    assert "was rejected" in decided.subject
    assert "The export is right." in decided.body and "8.4 → 7.1" in decided.body


def test_a_refused_request_sends_nothing_and_a_partner_without_manager_emails_nobody(
    a, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ValidationError):
        ask(a, "not a number")
    assert mail.outbox == []
    a.partners[0].manager = None
    a.partners[0].save(update_fields=["manager"])
    with django_capture_on_commit_callbacks(execute=True):
        ask(a)
    assert mail.outbox == []


def test_every_step_is_audited_with_the_old_and_proposed_values(a, django_capture_on_commit_callbacks):
    request = ask(a, "7.1", evidence=upload("survey.pdf", pdf_bytes()))
    [requested] = events("correction.requested")
    assert requested.actor == a.users["partner_member"] and requested.target_id == str(request.pk)
    assert requested.changes["value"] == ["8.4", "7.1"]
    assert requested.changes["metric"] == [None, "customer_satisfaction"]
    assert requested.changes["reason"] == [None, REASON]
    assert requested.changes["evidence"] == [None, "survey.pdf"]

    with django_capture_on_commit_callbacks(execute=True):
        request_decide(request=request, approve=True, comment="", by=a.users["partner_manager"])
    [approved] = events("correction.approved")
    request.refresh_from_db()
    assert approved.actor == a.users["partner_manager"]
    assert approved.changes["value"] == ["8.4", "7.1"]
    assert approved.changes["status"] == ["open", "approved"]
    assert approved.changes["observation"] == [request.observation_id, request.resulting_observation_id]

    second = ask(a, "7.4", observation=value_of(a))
    request_withdraw(request=second, by=a.users["partner_member"])
    [withdrawn] = events("correction.withdrawn")
    assert withdrawn.changes["value"] == ["7.1", "7.4"] and withdrawn.changes["status"] == ["open", "withdrawn"]

    third = ask(a, "7.6")
    request_decide(request=third, approve=False, comment="No.", by=a.users["admin"])
    [rejected] = events("correction.rejected")
    assert rejected.changes["value"] == ["7.1", "7.6"] and rejected.changes["comment"] == [None, "No."]

    appeal = appeal_request(score=current_score(a), reason="Please check.", by=a.users["partner_admin"])
    [appealed] = events("appeal.requested")
    assert appealed.changes["score"] == [None, corrections.value_text(appeal.value_at_request).replace(",", "")]


# --- Ages ------------------------------------------------------------------------------------------------


NOON = datetime.datetime(2026, 10, 15, 12, 0, tzinfo=datetime.UTC)


@pytest.mark.parametrize(
    "delta, text",
    [
        (datetime.timedelta(seconds=20), "less than a minute"),
        (datetime.timedelta(minutes=1), "1 minute"),
        (datetime.timedelta(minutes=59, seconds=59), "59 minutes"),
        (datetime.timedelta(hours=3, minutes=10), "3 hours"),
        (datetime.timedelta(days=1), "1 day"),
        (datetime.timedelta(days=6, hours=23), "6 days"),
        (datetime.timedelta(seconds=-5), "less than a minute"),
    ],
)
def test_durations_read_in_whole_units(delta, text):
    assert duration_text(delta) == text


def test_ages_say_how_long_a_request_is_open_or_took():
    request = CorrectionRequest(status=CorrectionStatus.OPEN, requested_at=NOON)
    assert age_text(request, now=NOON + datetime.timedelta(days=6, hours=2)) == "open 6 days"
    request.status, request.decided_at = CorrectionStatus.APPROVED, NOON + datetime.timedelta(days=2)
    assert age_text(request, now=NOON + datetime.timedelta(days=30)) == "approved after 2 days"
    request.status, request.decided_at = CorrectionStatus.WITHDRAWN, NOON + datetime.timedelta(hours=1)
    assert age_text(request, now=NOON + datetime.timedelta(days=30)) == "withdrawn after 1 hour"
