"""Uploads: stored, checked by a task with its report kept, recorded by a task once, safe to redeliver."""

from __future__ import annotations

import hashlib
import io
import zipfile
from decimal import Decimal

import openpyxl
import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction

from partnerhub.integrations.models import Upload, UploadStatus
from partnerhub.integrations.tasks import upload_check_task, upload_commit_task
from partnerhub.integrations.uploads import (
    ProgressWriter,
    recent_uploads,
    same_file_uploads,
    upload_commit_request,
    upload_receive,
    upload_recheck,
    upload_recomputes,
)
from partnerhub.tenancy import rls
from partnerhub.tenancy.context import tenant_scope
from partnerhub.tenancy.models import AuditEvent
from scorecards.models import Metric, MetricObservation, RecomputeStatus
from tests.factories import MembershipFactory, PartnerFactory, TenantFactory

# Partner 1's pipeline and partner 2's satisfaction replace the world's FY2026-Q3 values; revenue is new.
GOOD = """partner,metric,period,value,note
Acme Partner 1,pipeline_created,FY2026-Q3,400000,Q3 pipeline from the CRM
Acme Partner 2,customer_satisfaction,FY2026-Q3,7.5,
Acme Partner 1,revenue_won,FY2026-Q2,184500,
"""


def uploaded_values() -> list[tuple[str, str, str, Decimal]]:
    return sorted(
        MetricObservation.objects.filter(source="upload")
        .exclude(source_ref="world")
        .values_list("partner__name", "metric__key", "period", "value")
    )


# --- Receiving and checking ----------------------------------------------------------------------------


def test_a_received_file_is_stored_with_its_checksum_and_checked_by_a_task(in_a, receive):
    upload = receive(GOOD)
    assert (upload.file_name, upload.size, upload.kind) == ("values.csv", len(GOOD.encode()), "observations")
    assert upload.sha256 == hashlib.sha256(GOOD.encode()).hexdigest()
    assert bytes(upload.content) == GOOD.encode()
    assert upload.uploaded_by == in_a.users["partner_manager"]
    assert upload.status == UploadStatus.CHECKED and upload.checked_at is not None
    assert (upload.rows_done, upload.rows_total, upload.percent) == (3, 3, 100)
    assert upload.check_report == {
        "rows": 3,
        "created": 3,
        "replaced": 2,
        "unchanged": 0,
        "periods": ["FY2026-Q2", "FY2026-Q3"],
        "source_ref": f"upload:sha256:{upload.sha256}",
        "errors": [],
    }
    assert uploaded_values() == []  # checking writes nothing


def test_a_file_with_problems_is_invalid_and_its_report_names_every_row_column_and_reason(in_a, receive):
    upload = receive(
        "partner,metric,period,value\n"
        "Acme Partner 1,pipeline_created,FY2026-Q3,1\n"
        "Acme Partner 9,pipeline_created,FY2026-Q3,1\n"
        "Acme Partner 2,customer_satisfaction,FY2026-Q3,11\n"
    )
    assert upload.status == UploadStatus.INVALID
    assert upload.check_report["errors"] == [
        {
            "row": 3,
            "column": "partner",
            "message": "There is no partner named “Acme Partner 9” or with that HubSpot or Salesforce id.",
        },
        {
            "row": 4,
            "column": "value",
            "message": "11 is outside the plausible range for Customer satisfaction: between 1 and 10.",
        },
    ]
    with pytest.raises(ValidationError, match="it has problems to fix first"):
        upload_commit_request(upload=upload, by=in_a.users["admin"])
    assert Upload.objects.get(pk=upload.pk).status == UploadStatus.INVALID


@pytest.mark.parametrize(
    "name, data, message",
    [
        ("values.xlsx", b"PK\x03\x04 a workbook", "This file is not an XLSX workbook: .xlsx files are ZIP archives"),
        ("values.xlsx", b"partner,metric\n", "This file is not an XLSX workbook: .xlsx files are ZIP archives"),
        ("values.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1 old", "This is an Excel 97-2003 workbook (.xls)"),
        ("values.csv", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1 old", "This is an Excel 97-2003 workbook (.xls)"),
        ("values.ods", b"PK\x03\x04", "A .ods spreadsheet cannot be read; save it from your spreadsheet as .xlsx"),
        ("values.csv", b"", "The file is empty."),
        ("values.csv", b"\n \n", "The file is empty."),
        ("values.csv", b"x" * (5 * 1024 * 1024 + 1), "The file is larger than 5 MB; split it into smaller files."),
        ("values.csv", b"x" * (6 * 1024 * 1024), "The file is larger than 5 MB (it has 6.0 MB); split it"),
    ],
)
def test_files_that_can_never_be_read_are_refused_before_anything_is_stored(in_a, name, data, message):
    with pytest.raises(ValidationError) as error:
        upload_receive(file=SimpleUploadedFile(name, data), by=in_a.users["admin"])
    assert error.value.message_dict["file"][0].startswith(message)
    assert not Upload.objects.exists()


def test_a_file_above_the_row_limit_is_invalid_with_the_limit_named(in_a, receive):
    rows = "".join(f"Acme Partner 1,revenue_won,FY2026-Q2,{n}\n" for n in range(10_001))
    upload = receive("partner,metric,period,value\n" + rows)
    assert upload.status == UploadStatus.INVALID
    assert upload.check_report["errors"] == [
        {"row": None, "column": "", "message": "The file has more than 10,000 rows; split it into smaller files."}
    ]


def test_a_file_that_is_not_utf8_is_invalid_with_a_clear_message(in_a, receive):
    upload = receive(GOOD.replace("Acme Partner 2", "Acmé Partner 2").encode("cp1252"))
    assert upload.status == UploadStatus.INVALID
    assert upload.check_report["errors"][0]["message"].startswith("The file is not UTF-8 text")


# --- Recording ----------------------------------------------------------------------------------------


def test_recording_writes_every_value_once_with_one_audit_event_and_recomputes_the_periods(in_a, receive, commit):
    upload = commit(receive(GOOD))
    assert upload.status == UploadStatus.COMMITTED and upload.committed_by == in_a.users["admin"]
    assert upload.committed_at is not None and (upload.rows_done, upload.rows_total) == (3, 3)
    assert upload.commit_report | {"source_ref": ""} == {
        "rows": 3,
        "created": 3,
        "replaced": 2,
        "unchanged": 0,
        "periods": ["FY2026-Q2", "FY2026-Q3"],
        "source_ref": "",
        "errors": [],
    }
    assert uploaded_values() == [
        ("Acme Partner 1", "pipeline_created", "FY2026-Q3", Decimal("400000")),
        ("Acme Partner 1", "revenue_won", "FY2026-Q2", Decimal("184500")),
        ("Acme Partner 2", "customer_satisfaction", "FY2026-Q3", Decimal("7.5")),
    ]
    [event] = AuditEvent.objects.filter(verb__startswith="observation")
    assert (event.verb, event.actor, event.target_type, event.target_id, event.target_repr) == (
        "observations.imported",
        in_a.users["admin"],
        "integrations.upload",
        str(upload.pk),
        "values.csv",
    )
    assert event.changes["observations"] == [None, 3] and event.changes["periods"] == [None, ["FY2026-Q2", "FY2026-Q3"]]
    assert event.changes["source_ref"] == [None, f"upload:sha256:{upload.sha256}"]
    # FY2026-Q2 and FY2026-Q3 are both scored by the world's scorecard; the recompute ran (eagerly).
    runs = upload_recomputes(upload)
    assert {run.period for run in runs} == {"FY2026-Q2", "FY2026-Q3"}
    assert all(run.status == RecomputeStatus.DONE for run in runs)


def test_a_recorded_upload_is_never_recorded_twice(in_a, receive, commit, django_capture_on_commit_callbacks):
    upload = commit(receive(GOOD))
    again = commit(upload)  # a second click
    assert again.status == UploadStatus.COMMITTED and again.committed_at == upload.committed_at
    with django_capture_on_commit_callbacks(execute=True):
        redelivered = upload_commit_task.delay(tenant_id=in_a.tenant.pk, upload_id=upload.pk).get()
        rechecked = upload_check_task.delay(tenant_id=in_a.tenant.pk, upload_id=upload.pk).get()
    assert redelivered is None and rechecked is None
    assert len(uploaded_values()) == 3
    assert AuditEvent.objects.filter(verb="observations.imported").count() == 1
    with pytest.raises(ValidationError, match="it cannot be checked again"):
        upload_recheck(upload=upload)


def test_the_same_file_uploaded_again_adds_nothing_and_says_so(in_a, receive, commit):
    first = commit(receive(GOOD))
    second = receive(GOOD, name="values (1).csv")
    assert second.check_report["created"] == 0 and second.check_report["unchanged"] == 3
    assert same_file_uploads(second) == [first]
    second = commit(second)
    assert second.status == UploadStatus.COMMITTED
    assert (second.commit_report["created"], second.commit_report["unchanged"]) == (0, 3)
    assert len(uploaded_values()) == 3
    assert AuditEvent.objects.filter(verb="observations.imported").count() == 1
    assert upload_recomputes(second) == []


def test_a_redelivered_check_starts_over(in_a, receive, django_capture_on_commit_callbacks):
    upload = receive(GOOD)
    # The worker stopped half-way: the status says checking, with the progress it had reached.
    Upload.objects.filter(pk=upload.pk).update(status=UploadStatus.CHECKING, rows_done=1, rows_total=3, result={})
    with django_capture_on_commit_callbacks(execute=True):
        upload_check_task.delay(tenant_id=in_a.tenant.pk, upload_id=upload.pk)
    upload.refresh_from_db()
    assert upload.status == UploadStatus.CHECKED and upload.check_report["created"] == 3


def test_a_redelivered_commit_that_wrote_nothing_records_the_file(in_a, receive, django_capture_on_commit_callbacks):
    upload = receive(GOOD)
    # Asked to record, then the worker died before its transaction committed: nothing was written.
    Upload.objects.filter(pk=upload.pk).update(
        status=UploadStatus.COMMITTING, committed_by=in_a.users["admin"], rows_done=2, rows_total=6
    )
    with django_capture_on_commit_callbacks(execute=True):
        upload_commit_task.delay(tenant_id=in_a.tenant.pk, upload_id=upload.pk)
    upload.refresh_from_db()
    assert upload.status == UploadStatus.COMMITTED and len(uploaded_values()) == 3


def test_data_that_changed_since_the_check_makes_the_upload_invalid_and_writes_nothing(in_a, receive, commit):
    upload = receive(GOOD)
    Metric.objects.filter(key="revenue_won").update(is_active=False)
    upload = commit(upload)
    assert upload.status == UploadStatus.INVALID
    assert upload.error.startswith("The file no longer passes its check")
    assert upload.check_report["errors"] == [
        {"row": 4, "column": "metric", "message": "Revenue won is no longer in use in the catalogue."}
    ]
    assert uploaded_values() == [] and not AuditEvent.objects.filter(verb="observations.imported").exists()
    with pytest.raises(ValidationError, match="it has problems to fix first"):
        upload_commit_request(upload=upload, by=in_a.users["admin"])  # it is checked again first


def test_an_invalid_upload_passes_when_checked_again_after_the_data_is_fixed(
    in_a, receive, commit, django_capture_on_commit_callbacks
):
    Metric.objects.filter(key="revenue_won").update(is_active=False)
    upload = receive(GOOD)
    assert upload.status == UploadStatus.INVALID
    Metric.objects.filter(key="revenue_won").update(is_active=True)
    with django_capture_on_commit_callbacks(execute=True):
        upload_recheck(upload=upload)
    upload.refresh_from_db()
    assert upload.status == UploadStatus.CHECKED
    assert commit(upload).status == UploadStatus.COMMITTED


def test_a_step_that_breaks_marks_the_upload_failed_and_it_can_be_checked_again(
    in_a, django_capture_on_commit_callbacks
):
    # An upload of a kind no reader exists for: the check raises, the task marks it failed.
    upload = Upload.objects.create(
        kind="surveys", file_name="surveys.csv", size=3, sha256="0" * 64, content=b"a,b", status=UploadStatus.RECEIVED
    )
    with pytest.raises(ValueError, match="no reader for surveys uploads"):
        upload_check_task.delay(tenant_id=in_a.tenant.pk, upload_id=upload.pk)
    upload.refresh_from_db()
    assert upload.status == UploadStatus.FAILED and "no reader for surveys uploads" in upload.error
    with pytest.raises(ValidationError, match="its last step failed"):
        upload_commit_request(upload=upload, by=in_a.users["admin"])
    upload_recheck(upload=upload)
    assert Upload.objects.get(pk=upload.pk).status == UploadStatus.RECEIVED


def test_asking_to_record_an_upload_that_is_not_checked_yet_is_refused(in_a):
    upload = Upload.objects.create(file_name="values.csv", size=3, sha256="0" * 64, content=b"a,b")
    with pytest.raises(ValidationError, match="it has not been checked yet"):
        upload_commit_request(upload=upload, by=in_a.users["admin"])


# --- Progress -----------------------------------------------------------------------------------------


@pytest.fixture
def committed_tenant(_owner_role_for_flush, transactional_db):
    """A tenant with two partners, committed, so that a second connection sees its rows."""
    tenant = TenantFactory(slug="initech", name="Initech")
    with tenant_scope(tenant):
        for name in ("Initech Partner 1", "Initech Partner 2"):
            PartnerFactory(name=name)
        admin = MembershipFactory(tenant=tenant, role="admin", user__email="admin@initech.test").user
    yield tenant, admin
    if connection.vendor == "postgresql":
        rls.release_app_role()


def rows_done_seen_elsewhere(upload_id: int) -> int:
    """rows_done as another session (a page) reads it now."""
    other = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT rows_done FROM integrations_upload WHERE id = %s", [upload_id])
            return cursor.fetchone()[0]
    finally:
        other.close()


def test_progress_is_stored_on_the_upload_of_the_step_it_belongs_to(committed_tenant):
    tenant, _admin = committed_tenant
    with tenant_scope(tenant):
        upload = Upload.objects.create(
            file_name="values.csv", size=3, sha256="0" * 64, content=b"a,b", status=UploadStatus.CHECKING
        )
        writer = ProgressWriter(upload_id=upload.pk, status=UploadStatus.CHECKING)
        try:
            writer(250, 1000)
            upload.refresh_from_db()
            assert (upload.rows_done, upload.rows_total, upload.percent) == (250, 1000, 25)
            with transaction.atomic():
                # Inside the import's transaction: the pages see the progress at once.
                writer(500, 1000)
                if connection.vendor == "postgresql":
                    assert rows_done_seen_elsewhere(upload.pk) == 500
            # A late report of a step that is over moves nothing.
            ProgressWriter(upload_id=upload.pk, status=UploadStatus.COMMITTING)(999, 1000)
            upload.refresh_from_db()
            assert upload.rows_done == 500
        finally:
            writer.close()


def test_checking_and_recording_committed_data_run_end_to_end(committed_tenant):
    """As in production: every step commits, and progress goes through its own connection."""
    tenant, admin = committed_tenant
    lines = ["partner,metric,period,value"]
    for month in range(60):
        for partner in ("Initech Partner 1", "Initech Partner 2"):
            for key in ("revenue_won", "deals_won", "deals_registered", "pipeline_created", "new_customers"):
                lines.append(f"{partner},{key},FY{2021 + month // 12}-M{month % 12 + 1:02d},{month + 1}")
    data = ("\n".join(lines) + "\n").encode()
    with tenant_scope(tenant):
        upload = upload_receive(file=SimpleUploadedFile("months.csv", data), by=admin)
        upload.refresh_from_db()
        assert upload.status == UploadStatus.CHECKED and upload.check_report["created"] == 600
        upload = upload_commit_request(upload=upload, by=admin)
        upload.refresh_from_db()
        assert upload.status == UploadStatus.COMMITTED and (upload.rows_done, upload.rows_total) == (600, 600)
        assert MetricObservation.objects.filter(source_ref=f"upload:sha256:{upload.sha256}").count() == 600


def test_an_upload_whose_size_is_not_known_yet_has_no_percent(in_a):
    upload = Upload(status=UploadStatus.RECEIVED, rows_total=0)
    assert upload.percent is None and upload.is_running


# --- Tenancy ------------------------------------------------------------------------------------------


def test_another_tenants_uploads_are_neither_listed_nor_worked_on(world, django_capture_on_commit_callbacks):
    with tenant_scope(world.b.tenant), django_capture_on_commit_callbacks(execute=True):
        theirs = upload_receive(
            file=SimpleUploadedFile("theirs.csv", GOOD.replace("Acme", "Globex").encode()),
            by=world.b.users["admin"],
        )
        Upload.objects.filter(pk=theirs.pk).update(status=UploadStatus.COMMITTING)  # as if asked to record
    with tenant_scope(world.a.tenant):
        assert recent_uploads() == [] and not Upload.objects.filter(pk=theirs.pk).exists()
    # A task naming tenant a and tenant b's upload finds nothing to do.
    assert upload_commit_task.delay(tenant_id=world.a.tenant.pk, upload_id=theirs.pk).get() is None
    with tenant_scope(world.b.tenant):
        assert Upload.objects.get(pk=theirs.pk).status == UploadStatus.COMMITTING
        assert not MetricObservation.objects.filter(source="upload").exclude(source_ref="world").exists()


def test_a_workbook_that_would_unpack_to_far_more_than_it_weighs_is_refused_on_arrival(in_a):
    book = openpyxl.Workbook()
    book.active.append(["partner", "metric", "period", "value"])
    plain = io.BytesIO()
    book.save(plain)
    bomb = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(plain.getvalue())) as source,
        zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as out,
    ):
        for name in source.namelist():
            body = b"\0" * (20 * 1024 * 1024) if name == "xl/worksheets/sheet1.xml" else source.read(name)
            out.writestr(name, body)
    with pytest.raises(ValidationError) as error:
        upload_receive(file=SimpleUploadedFile("values.xlsx", bomb.getvalue()), by=in_a.users["admin"])
    assert "(a “zip bomb” looks like this)" in error.value.message_dict["file"][0]
    assert not Upload.objects.exists()
