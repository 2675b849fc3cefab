"""Observation pages: the list with its history, entry by hand, uploads with their progress, report and recording."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from partnerhub.integrations.models import Upload, UploadStatus
from partnerhub.tenancy.context import tenant_scope
from partnerhub.tenancy.models import AuditEvent
from scorecards.models import Metric, MetricObservation
from scorecards.services.observations import observation_record
from tests.factories import MembershipFactory, PartnerFactory, TenantFactory

ENTERING = ("admin", "partner_manager")
PARTNER = ("partner_admin", "partner_member")
LIST = reverse("observation_list")
NEW = reverse("observation_create")
UPLOAD = reverse("observation_upload")
TEMPLATE = reverse("observation_upload_template")

# Partner 1's pipeline and partner 2's satisfaction replace the world's FY2026-Q3 values; revenue is new.
GOOD = """partner,metric,period,value,note
Acme Partner 1,pipeline_created,FY2026-Q3,400000,Q3 pipeline from the CRM
Acme Partner 2,customer_satisfaction,FY2026-Q3,7.5,
Acme Partner 1,revenue_won,FY2026-Q2,184500,
"""


def session(world_tenant, role: str) -> Client:
    client = Client()
    client.force_login(world_tenant.users[role])
    return client


def csv_file(text: str | bytes, name: str = "values.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode() if isinstance(text, str) else text, content_type="text/csv")


def page(response) -> str:
    return response.content.decode()


def detail_url(upload_id: int, name: str = "observation_upload_detail") -> str:
    return reverse(name, args=[upload_id])


@pytest.fixture
def manager(world):
    return session(world.a, "partner_manager")


@pytest.fixture
def upload_file(manager, django_capture_on_commit_callbacks):
    """Upload a file through the page; the check task runs (eagerly) once the upload commits."""

    def upload_file(text: str | bytes, name: str = "values.csv"):
        with django_capture_on_commit_callbacks(execute=True):
            response = manager.post(UPLOAD, {"file": csv_file(text, name)})
        return response

    return upload_file


def only_upload(world_tenant) -> Upload:
    with tenant_scope(world_tenant.tenant):
        return Upload.objects.get()


def uploaded_values(world_tenant) -> list[tuple[str, str, str, Decimal]]:
    with tenant_scope(world_tenant.tenant):
        return sorted(
            MetricObservation.objects.filter(source="upload")
            .exclude(source_ref="world")
            .values_list("partner__name", "metric__key", "period", "value")
        )


# --- The list ---------------------------------------------------------------------------------------


def test_the_list_shows_values_with_their_source_and_who_recorded_them_and_greys_what_was_replaced(world, manager):
    with tenant_scope(world.a.tenant):
        observation_record(
            partner=world.a.partners[0],
            metric=Metric.objects.get(key="pipeline_created"),
            period="FY2026-Q3",
            value="400000",
            source_ref="crm-export-7",
            by=world.a.users["admin"],
        )
    response = manager.get(LIST, {"metric": "pipeline_created", "period": "FY2026-Q3", "q": "acme partner 1"})
    assert response.status_code == 200
    body = page(response)
    assert body.count('class="muted superseded"') == 1
    assert "<s>310,000</s>" in body and "Replaced by <strong>400,000</strong> (entered by hand" in body
    assert "crm-export-7" in body and "Entered by hand" in body and "File upload" in body
    assert world.a.users["admin"].get_full_name() in body
    assert "Acme Partner 2" not in body  # filtered out by the partner search


def test_only_values_in_force_hides_the_replaced_ones(world, manager):
    with tenant_scope(world.a.tenant):
        observation_record(
            partner=world.a.partners[0],
            metric=Metric.objects.get(key="pipeline_created"),
            period="FY2026-Q3",
            value="400000",
            by=None,
        )
    body = page(manager.get(LIST, {"metric": "pipeline_created", "current": "true", "partner": world.a.partners[0].pk}))
    assert "superseded" not in body and "400,000" in body and "310,000" not in body


def test_filters_by_source_and_a_filter_that_cannot_be_read_is_named_not_fatal(world, manager):
    body = page(manager.get(LIST, {"source": "manual"}))
    assert "No values match these filters" in body
    response = manager.get(LIST, {"metric": "no_such_metric", "source": "carrier-pigeon", "page": "x", "partner": "a"})
    assert response.status_code == 200
    assert "Ignored filters that could not be read" in page(response)


def test_the_list_never_shows_another_tenants_values(world, manager):
    body = page(manager.get(LIST))
    assert "Acme Partner 1" in body
    for name in [partner.name for partner in world.b.partners] + [world.b.tenant.name]:
        assert name not in body


def test_list_queries_do_not_grow_with_rows(world, manager):
    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert manager.get(LIST).status_code == 200
        return len(ctx.captured_queries)

    def grow(count: int, start: int) -> None:
        with tenant_scope(world.a.tenant):
            metric = Metric.objects.get(key="deals_registered")
            for n in range(start, start + count):
                partner = PartnerFactory(name=f"Grown {n:03d}")
                for value in (n, n + 1):  # the second replaces the first
                    observation_record(partner=partner, metric=metric, period="FY2026-Q2", value=value, by=None)

    grow(3, 0)
    manager.get(LIST)  # the session's first request loads what later ones reuse; measure steady state
    few = queries()
    assert few <= 10
    grow(30, 3)  # 60 more rows: a second page
    assert queries() == few
    assert manager.get(LIST, {"page": 2}).status_code == 200


# --- Entry by hand ------------------------------------------------------------------------------------


def test_the_entry_form_offers_the_workspaces_partners_metrics_and_recent_periods(world, manager):
    response = manager.get(NEW, {"partner": world.a.partners[1].pk, "metric": "win_rate"})
    assert response.status_code == 200
    body = page(response)
    assert '<option value="Acme Partner 1">' in body and 'value="Acme Partner 2"' in body  # prefilled from the link
    assert '<option value="win_rate" selected>Win rate (Ratio)</option>' in body
    assert '<option value="FY2026-Q4">' in body
    assert "Globex" not in body


def test_entering_a_value_records_it_audits_it_and_shows_it_in_the_list(world, manager):
    body = {"partner": "acme partner 2", "metric": "win_rate", "period": "fy2026-q2", "value": "0.31", "note": "QBR"}
    response = manager.post(NEW, body, follow=True)
    assert response.redirect_chain[-1][0].startswith(LIST)
    text = page(response)
    assert "Recorded Win rate of Acme Partner 2 for FY2026-Q2." in text and "0.31" in text
    with tenant_scope(world.a.tenant):
        stored = MetricObservation.objects.get(metric__key="win_rate", partner=world.a.partners[1])
        event = AuditEvent.objects.get(verb="observation.recorded")
    assert (stored.value, stored.source, stored.recorded_by) == (
        Decimal("0.31"),
        "manual",
        world.a.users["partner_manager"],
    )
    assert event.changes["note"] == [None, "QBR"]
    again = manager.post(NEW, body, follow=True)
    assert "Nothing changed: Win rate of Acme Partner 2 for FY2026-Q2 already has this value." in page(again)


@pytest.mark.parametrize(
    "changes, field, message",
    [
        ({"value": "1,234.5"}, "value", "“1,234.5” is not a number; write it like 1234.5"),
        ({"value": "-5"}, "value", "-5 is outside the plausible range for Revenue won: between 0 and 10000000000."),
        ({"value": ""}, "value", "Enter the value."),
        ({"period": "Q3 2026"}, "period", "“Q3 2026” is not a period; write it like FY2026-Q3 or FY2026-M07."),
        ({"period": "FY2030-Q1"}, "period", "FY2030-Q1 has not started yet"),
        ({"partner": "Nobody Ltd"}, "partner", "There is no partner named “Nobody Ltd”"),
        ({"partner": "Globex Partner 1"}, "partner", "There is no partner named “Globex Partner 1”"),
        ({"metric": "no_such_metric"}, "metric", "Choose a metric from the list"),
        ({"note": "x" * 501}, "note", "Ensure this value has at most 500 characters"),
    ],
)
def test_bad_input_is_answered_with_a_field_error_and_nothing_is_recorded(world, manager, changes, field, message):
    body = {"partner": "Acme Partner 1", "metric": "revenue_won", "period": "FY2026-Q2", "value": "100", **changes}
    response = manager.post(NEW, body)
    assert response.status_code == 400
    form = response.context["form"]
    assert any(error.startswith(message) for error in form.errors[field]), form.errors
    with tenant_scope(world.a.tenant):
        assert not MetricObservation.objects.filter(metric__key="revenue_won").exists()


def test_an_unknown_partner_is_reported_with_the_other_problems_at_once(world, manager):
    body = {"partner": "Nobody", "metric": "revenue_won", "period": "soon", "value": "lots"}
    form = manager.post(NEW, body).context["form"]
    assert set(form.errors) == {"partner", "period", "value"}
    assert set(manager.post(NEW, {}).context["form"].errors) == {"partner", "metric", "period", "value"}


# --- Uploads ------------------------------------------------------------------------------------------


def test_the_upload_page_explains_the_file_and_lists_recent_uploads(world, manager, upload_file):
    upload_file(GOOD)
    response = manager.get(UPLOAD)
    assert response.status_code == 200
    body = page(response)
    assert "At most 5 MB per file" in body and f'href="{TEMPLATE}"' in body
    assert "At most 10,000 rows per file." in body and "At most 5,000 rows per file." in body
    for kind in ("deals", "marketing"):
        for fmt in ("csv", "xlsx"):
            assert f'href="{reverse("upload_template", args=[kind, fmt])}"' in body
    assert f'href="{reverse("upload_template", args=["observations", "xlsx"])}"' in body
    assert 'name="kind" value="deals"' in body and 'name="kind" value="marketing"' in body
    assert "values.csv" in body and "Ready to record" in body and "Metric observations" in body


def test_the_upload_page_queries_do_not_grow_with_uploads(world, manager):
    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert manager.get(UPLOAD).status_code == 200
        return len(ctx.captured_queries)

    def grow(count: int) -> None:
        with tenant_scope(world.a.tenant):
            for n in range(count):
                Upload.objects.create(
                    file_name=f"file-{n}.csv",
                    size=1,
                    sha256=f"{n:064d}",
                    content=b"x",
                    uploaded_by=world.a.users["admin"],
                )

    grow(2)
    manager.get(UPLOAD)  # the session's first request loads what later ones reuse; measure steady state
    few = queries()
    grow(30)
    assert queries() == few


def test_the_template_is_built_from_the_workspaces_metrics_and_a_partner_and_adds_nothing_unchanged(
    world, manager, upload_file
):
    response = manager.get(TEMPLATE)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert 'filename="observations-template.csv"' in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["partner", "metric", "period", "value", "note"]
    assert len(rows) == 3 and {row[0] for row in rows[1:]} == {"Acme Partner 1"}
    with tenant_scope(world.a.tenant):
        keys = set(Metric.objects.values_list("key", flat=True))
    assert {row[1] for row in rows[1:]} <= keys and {row[2] for row in rows[1:]} == {"FY2026-Q3"}
    upload_file(response.content, name="observations-template.csv")
    upload = only_upload(world.a)
    assert upload.status == UploadStatus.CHECKED and upload.check_report["created"] == 0


def test_a_template_for_a_workspace_without_values_shows_values_of_each_metrics_unit(db):
    tenant = TenantFactory(name="Initech", slug="initech")
    with tenant_scope(tenant):
        PartnerFactory(name="Initrode")
        admin = MembershipFactory(tenant=tenant, role="admin", user__email="admin@initech.test").user
    client = Client()
    client.force_login(admin)
    rows = list(csv.reader(io.StringIO(client.get(TEMPLATE).content.decode())))
    assert len(rows) == 3 and all(row[0] == "Initrode" and row[3] for row in rows[1:])
    with tenant_scope(tenant):
        from scorecards.services.observations import observations_import_csv

        result = observations_import_csv(file=client.get(TEMPLATE).content, by=admin, dry_run=True)
    assert result.errors == [] and result.created == 2


def test_an_uploaded_file_is_checked_and_its_page_says_what_recording_it_would_do(world, manager, upload_file):
    response = upload_file(GOOD)
    upload = only_upload(world.a)
    assert response.status_code == 302 and response["Location"] == detail_url(upload.pk)
    body = page(manager.get(detail_url(upload.pk)))
    assert "Ready to record" in body
    assert (
        "<strong>3</strong> observations will be added (2 replacing a value in force), "
        "<strong>0</strong> unchanged, for periods FY2026-Q2, FY2026-Q3." in body
    )
    assert f'action="{detail_url(upload.pk, "observation_upload_commit")}"' in body
    assert uploaded_values(world.a) == []  # nothing recorded before the confirmation


def test_recording_a_checked_upload_shows_the_result_and_the_recomputes(
    world, manager, upload_file, django_capture_on_commit_callbacks
):
    upload_file(GOOD)
    upload = only_upload(world.a)
    with django_capture_on_commit_callbacks(execute=True):
        response = manager.post(detail_url(upload.pk, "observation_upload_commit"))
    assert response.status_code == 302 and response["Location"] == detail_url(upload.pk)
    body = page(manager.get(detail_url(upload.pk)))
    assert "<strong>3</strong> observations added (2 replacing a value in force)" in body
    assert "for periods FY2026-Q2, FY2026-Q3." in body
    assert body.count('<span class="badge badge-ok">Done</span>') == 2
    assert f"{reverse('scorecard_portfolio')}?period=FY2026-Q3&amp;scope=all" in body
    assert len(uploaded_values(world.a)) == 3
    # The recompute panel polls only while a recompute is under way.
    panel = page(manager.get(detail_url(upload.pk, "observation_upload_scores")))
    assert 'id="upload-scores"' in panel and "hx-get" not in panel
    # Asking again changes nothing.
    with django_capture_on_commit_callbacks(execute=True):
        manager.post(detail_url(upload.pk, "observation_upload_commit"))
    assert len(uploaded_values(world.a)) == 3


def test_a_file_with_problems_lists_each_by_row_column_and_reason_and_cannot_be_recorded(
    world, manager, upload_file, django_capture_on_commit_callbacks
):
    upload_file("partner,metric,period,value\nAcme Partner 9,revenue_won,FY2026-Q2,1\nAcme Partner 1,revenu_won,Q2,1\n")
    upload = only_upload(world.a)
    body = page(manager.get(detail_url(upload.pk)))
    assert "Problems to fix" in body and "<strong>3</strong> problems found in 2 rows" in body
    assert '<td class="num">2</td><td><code>partner</code></td>' in body
    assert "There is no metric with the key “revenu_won”. Did you mean “revenue_won”?" in body
    assert "“Q2” is not a period" in body
    with django_capture_on_commit_callbacks(execute=True):
        response = manager.post(detail_url(upload.pk, "observation_upload_commit"), follow=True)
    assert "This upload cannot be recorded: it has problems to fix first." in page(response)
    assert uploaded_values(world.a) == []


def test_the_same_file_uploaded_twice_adds_nothing_and_says_so(
    world, manager, upload_file, django_capture_on_commit_callbacks
):
    upload_file(GOOD)
    first = only_upload(world.a)
    with django_capture_on_commit_callbacks(execute=True):
        manager.post(detail_url(first.pk, "observation_upload_commit"))
    upload_file(GOOD)
    with tenant_scope(world.a.tenant):
        second = Upload.objects.exclude(pk=first.pk).get()
    body = page(manager.get(detail_url(second.pk)))
    assert "This exact file was uploaded before" in body and detail_url(first.pk) in body
    assert "<strong>Nothing new:</strong> all 3 values in this file are already recorded." in body
    with django_capture_on_commit_callbacks(execute=True):
        manager.post(detail_url(second.pk, "observation_upload_commit"))
    body = page(manager.get(detail_url(second.pk)))
    assert "<strong>Nothing new was recorded:</strong> every value in this file was already recorded." in body
    assert len(uploaded_values(world.a)) == 3
    with tenant_scope(world.a.tenant):
        assert AuditEvent.objects.filter(verb="observations.imported").count() == 1


@pytest.mark.parametrize(
    "data, name, message",
    [
        (None, "", "Choose a CSV or XLSX file to upload."),
        (b"", "values.csv", "The file is empty."),
        (b"PK\x03\x04", "values.xlsx", "This file is not an XLSX workbook: .xlsx files are ZIP archives"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "values.xls", "This is an Excel 97-2003 workbook (.xls), which cannot"),
        (
            b"x" * (5 * 1024 * 1024 + 10),
            "big.csv",
            "The file is larger than 5 MB; split it into smaller files.",
        ),
    ],
)
def test_a_file_that_cannot_be_taken_is_refused_with_a_clear_message_and_nothing_is_stored(
    world, manager, data, name, message
):
    response = manager.post(UPLOAD, {} if data is None else {"file": csv_file(data, name)})
    assert response.status_code == 400
    assert any(error.startswith(message) for error in response.context["form"].errors["file"])
    with tenant_scope(world.a.tenant):
        assert not Upload.objects.exists()


def test_a_file_over_the_row_limit_is_reported_on_its_page(world, manager, upload_file):
    upload_file("partner,metric,period,value\n" + "Acme Partner 1,revenue_won,FY2026-Q2,1\n" * 10_001)
    body = page(manager.get(detail_url(only_upload(world.a).pk)))
    assert "The file has more than 10,000 rows; split it into smaller files." in body


# --- Progress -----------------------------------------------------------------------------------------


def running_upload(world_tenant, **fields) -> Upload:
    with tenant_scope(world_tenant.tenant):
        return Upload.objects.create(
            file_name="big.csv", size=10, sha256="0" * 64, content=b"partner\n", uploaded_by=None, **fields
        )


def test_a_running_check_shows_a_progress_bar_that_polls_its_fragment(world, manager):
    upload = running_upload(world.a, status=UploadStatus.CHECKING, rows_done=2500, rows_total=10000)
    progress_url = detail_url(upload.pk, "observation_upload_progress")
    body = page(manager.get(detail_url(upload.pk)))
    assert f'hx-get="{progress_url}"' in body and "Checking rows: 2,500 of 10,000" in body
    fragment = manager.get(progress_url, HTTP_HX_REQUEST="true")
    assert fragment.status_code == 200 and "HX-Refresh" not in fragment
    text = page(fragment)
    assert text.lstrip().startswith('<div class="progress-block"') and "<html" not in text
    assert 'aria-valuenow="25"' in text and f'hx-get="{progress_url}"' in text


def test_a_recording_in_progress_and_one_not_started_show_their_own_labels(world, manager):
    committing = running_upload(
        world.a, status=UploadStatus.COMMITTING, rows_done=300, rows_total=1200, result={"check": {"rows": 600}}
    )
    text = page(manager.get(detail_url(committing.pk, "observation_upload_progress")))
    assert "Recording 600 rows" in text and 'aria-valuenow="25"' in text
    received = running_upload(world.a, status=UploadStatus.RECEIVED)
    text = page(manager.get(detail_url(received.pk, "observation_upload_progress")))
    assert "Waiting for the check to start" in text and "progress-indeterminate" in text


def test_the_fragment_of_a_finished_upload_stops_polling_and_reloads_the_page(world, manager):
    upload = running_upload(world.a, status=UploadStatus.CHECKED, rows_done=3, rows_total=3)
    response = manager.get(detail_url(upload.pk, "observation_upload_progress"), HTTP_HX_REQUEST="true")
    assert response["HX-Refresh"] == "true" and "hx-get" not in page(response)


def test_a_failed_upload_explains_and_can_be_checked_again(
    world, manager, upload_file, django_capture_on_commit_callbacks
):
    upload_file(GOOD)
    upload = only_upload(world.a)
    with tenant_scope(world.a.tenant):
        Upload.objects.filter(pk=upload.pk).update(status=UploadStatus.FAILED, error="The worker was stopped.")
    body = page(manager.get(detail_url(upload.pk)))
    assert "The worker was stopped." in body and detail_url(upload.pk, "observation_upload_recheck") in body
    with django_capture_on_commit_callbacks(execute=True):
        manager.post(detail_url(upload.pk, "observation_upload_recheck"))
    assert only_upload(world.a).status == UploadStatus.CHECKED


# --- Who may reach these pages ------------------------------------------------------------------------


def every_page(upload_id: int) -> list[tuple[str, str]]:
    return [
        ("get", LIST),
        ("get", NEW),
        ("post", NEW),
        ("get", UPLOAD),
        ("post", UPLOAD),
        ("get", TEMPLATE),
        ("get", detail_url(upload_id)),
        ("get", detail_url(upload_id, "observation_upload_progress")),
        ("get", detail_url(upload_id, "observation_upload_scores")),
        ("post", detail_url(upload_id, "observation_upload_commit")),
        ("post", detail_url(upload_id, "observation_upload_recheck")),
    ]


@pytest.mark.parametrize("role", [*PARTNER, "executive"])
def test_partner_users_and_roles_without_entry_never_reach_these_pages(world, upload_file, role):
    upload_file(GOOD)
    upload = only_upload(world.a)
    client = session(world.a, role)
    for method, url in every_page(upload.pk):
        data = {"partner": "Acme Partner 1", "metric": "revenue_won", "period": "FY2026-Q2", "value": "1"}
        response = getattr(client, method)(url, data if method == "post" else {})
        assert response.status_code == 403, (role, method, url)
        assert "Acme Partner 2" not in page(response)
    assert only_upload(world.a).status == UploadStatus.CHECKED
    with tenant_scope(world.a.tenant):
        assert not MetricObservation.objects.filter(metric__key="revenue_won").exists()


@pytest.mark.parametrize("role", ENTERING)
def test_another_tenants_upload_answers_404_and_is_left_alone(world, role, django_capture_on_commit_callbacks):
    client = session(world.b, "admin")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(UPLOAD, {"file": csv_file(GOOD.replace("Acme", "Globex"))})
    theirs = only_upload(world.b)
    ours = session(world.a, role)
    for method, url in every_page(theirs.pk)[6:]:
        assert getattr(ours, method)(url).status_code == 404, (method, url)
    assert only_upload(world.b).status == UploadStatus.CHECKED
    assert uploaded_values(world.b) == []
    for missing in (theirs.pk + 1000, 10**30):
        assert ours.get(detail_url(missing)).status_code == 404
        assert ours.post(detail_url(missing, "observation_upload_commit")).status_code == 404


def test_anonymous_visitors_are_sent_to_sign_in(world, upload_file):
    upload_file(GOOD)
    for method, url in every_page(only_upload(world.a).pk):
        response = getattr(Client(), method)(url)
        assert response.status_code == 302 and reverse("account_login") in response["Location"], url


# --- Files of deals and marketing facts ---------------------------------------------------------------------

DEALS = """external_id,partner,amount,currency,closed,won,created_on,close_date
D-1,Acme Partner 1,1000.50,USD,true,true,2026-07-02,2026-08-14
D-2,Acme Partner 2,500,USD,false,false,2026-07-03,
D-3,Reseller Nine,75,USD,,,2026-08-01,
"""


@pytest.fixture
def upload_facts(manager, django_capture_on_commit_callbacks):
    def upload_facts(content: str | bytes, kind: str, name: str = "deals.csv"):
        data = content.encode() if isinstance(content, str) else content
        with django_capture_on_commit_callbacks(execute=True):
            return manager.post(UPLOAD, {"kind": kind, "file": SimpleUploadedFile(name, data)})

    return upload_facts


def test_a_deals_file_is_checked_recorded_and_reported_with_its_unmatched_partners(
    world, manager, upload_facts, django_capture_on_commit_callbacks
):
    response = upload_facts(DEALS, "deals")
    upload = only_upload(world.a)
    assert upload.kind == "deals" and response["Location"] == detail_url(upload.pk)
    body = page(manager.get(detail_url(upload.pk)))
    assert "Ready to record" in body and "Deals ·" in body
    assert (
        "<strong>3</strong> deals will be added, <strong>0</strong> updated, <strong>0</strong> unchanged; "
        "their metrics will be derived again for period FY2026-Q3." in body
    )
    assert "<strong>1</strong> row names a partner that matches none; it will be kept" in body
    assert "“Reseller Nine” (1 row)" in body and reverse("unmatched_queue") in body
    assert "Record 3 deals" in body
    with django_capture_on_commit_callbacks(execute=True):
        manager.post(detail_url(upload.pk, "observation_upload_commit"))
    body = page(manager.get(detail_url(upload.pk)))
    assert "Recorded" in body and "<strong>3</strong> deals added, <strong>0</strong> updated" in body
    with tenant_scope(world.a.tenant):
        from partnerhub.integrations.source_models import DataSource, Deal

        source = DataSource.objects.get()
        assert Deal.objects.filter(source=source).count() == 3
    assert reverse("data_source_detail", args=[source.pk]) in body and "File uploads" in body
    assert 'id="upload-scores"' in body  # the recomputes of FY2026-Q3 follow


def test_a_marketing_workbook_with_problems_lists_them_by_row_and_column(world, manager, upload_facts):
    book = openpyxl.Workbook()
    book.active.title = "Facts"
    book.active.append(["external_id", "partner", "kind", "occurred_on", "quantity"])
    book.active.append(["M-1", "Acme Partner 1", "lead", "2026-07-01", 1])
    book.create_sheet("Read me")
    out = io.BytesIO()
    book.save(out)
    upload_facts(out.getvalue(), "marketing", name="facts.xlsx")
    upload = only_upload(world.a)
    body = page(manager.get(detail_url(upload.pk)))
    assert "Problems to fix" in body and "Read the first sheet, “Facts”. Not read: “Read me”." in body
    assert '<td class="num">2</td><td><code>kind</code></td>' in body
    assert "“lead” is not a kind of marketing fact" in body


def test_a_file_of_an_unknown_kind_is_refused_on_the_form(world, manager):
    response = manager.post(UPLOAD, {"kind": "surveys", "file": csv_file(DEALS)})
    assert response.status_code == 400
    assert response.context["form"].errors["kind"] == [
        "Choose what the file holds: observations, deals or marketing facts."
    ]
    with tenant_scope(world.a.tenant):
        assert not Upload.objects.exists()


@pytest.mark.parametrize("kind", ["observations", "deals", "marketing"])
@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_every_template_names_the_workspaces_partners_and_passes_its_own_check(world, manager, upload_facts, kind, fmt):
    response = manager.get(reverse("upload_template", args=[kind, fmt]))
    assert response.status_code == 200
    name = {"observations": "observations", "deals": "deals", "marketing": "marketing-facts"}[kind]
    assert f'filename="{name}-template.{fmt}"' in response["Content-Disposition"]
    if fmt == "csv":
        assert response["Content-Type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(response.content.decode())))
    else:
        assert response["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        sheet = openpyxl.load_workbook(io.BytesIO(response.content), read_only=True).worksheets[0]
        rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert len(rows) == 3 and "partner" in rows[0]
    partners = {row[rows[0].index("partner")] for row in rows[1:]}
    assert partners <= {"Acme Partner 1", "Acme Partner 2"} and partners
    upload_facts(response.content, kind, name=f"template.{fmt}")
    upload = only_upload(world.a)
    assert upload.status == UploadStatus.CHECKED, upload.check_report["errors"]
    assert upload.kind == kind


def test_a_template_that_does_not_exist_answers_404(world, manager):
    for kind, fmt in (("surveys", "csv"), ("deals", "xls"), ("deals", "pdf")):
        assert manager.get(reverse("upload_template", args=[kind, fmt])).status_code == 404


@pytest.mark.parametrize("role", [*PARTNER, "executive"])
def test_partner_users_cannot_download_templates_or_upload_facts(world, role):
    client = session(world.a, role)
    for kind in ("deals", "marketing"):
        for fmt in ("csv", "xlsx"):
            assert client.get(reverse("upload_template", args=[kind, fmt])).status_code == 403
        assert client.post(UPLOAD, {"kind": kind, "file": csv_file(DEALS)}).status_code == 403
    with tenant_scope(world.a.tenant):
        assert not Upload.objects.exists()


def test_another_tenants_fact_upload_answers_404(world, django_capture_on_commit_callbacks):
    theirs = session(world.b, "admin")
    with django_capture_on_commit_callbacks(execute=True):
        theirs.post(UPLOAD, {"kind": "deals", "file": csv_file(DEALS.replace("Acme", "Globex"))})
    upload = only_upload(world.b)
    ours = session(world.a, "admin")
    for method, url in every_page(upload.pk)[6:]:
        assert getattr(ours, method)(url).status_code == 404, (method, url)
    assert only_upload(world.b).status == UploadStatus.CHECKED


def test_the_upload_page_queries_do_not_grow_with_fact_uploads(world, manager, upload_facts):
    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert manager.get(UPLOAD).status_code == 200
        return len(ctx.captured_queries)

    upload_facts(DEALS, "deals")
    manager.get(UPLOAD)
    few = queries()
    with tenant_scope(world.a.tenant):
        report = only_upload(world.a).result
        for n in range(30):
            Upload.objects.create(
                kind=("deals", "marketing")[n % 2],
                file_name=f"facts-{n}.xlsx",
                size=1,
                sha256=f"{n:064d}",
                content=b"x",
                result=report,
                status=UploadStatus.CHECKED,
                uploaded_by=world.a.users["partner_manager"],
            )
    assert queries() == few
