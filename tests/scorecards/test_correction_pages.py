"""Correction pages: “Your data” and “Your requests” in the portal, the corrections queue, evidence downloads."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from partnerhub.tenancy.context import tenant_scope
from scorecards.correction_views import open_requests_link
from scorecards.models import (
    CorrectionKind,
    CorrectionRequest,
    CorrectionStatus,
    Metric,
    MetricObservation,
    ObservationSource,
    Score,
)
from scorecards.services.corrections import correction_request
from scorecards.services.observations import observation_record

INTERNAL = ("admin", "partner_manager", "executive")
PARTNER = ("partner_admin", "partner_member")
DATA = reverse("portal_data")
REQUESTS = reverse("correction_portal_requests")
QUEUE = reverse("correction_queue")
PDF = b"%PDF-1.4\n1 0 obj << >> endobj\n%%EOF\n"


def session(world_tenant, role: str) -> Client:
    client = Client()
    client.force_login(world_tenant.users[role])
    return client


def text(response) -> str:
    return response.content.decode()


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    return tmp_path


def period(world_tenant) -> str:
    return world_tenant.extra["scorecards"].periods[1]


def satisfaction(world_tenant, partner_index=0) -> MetricObservation:
    with tenant_scope(world_tenant.tenant):
        return MetricObservation.objects.current().get(
            partner=world_tenant.partners[partner_index],
            metric__key="customer_satisfaction",
            period=period(world_tenant),
        )


def score_of(world_tenant, partner_index=0) -> Score:
    with tenant_scope(world_tenant.tenant):
        return Score.objects.current().get(partner=world_tenant.partners[partner_index], period=period(world_tenant))


def make_request(world_tenant, *, who="partner_member", value="7.1", evidence=None, days_ago=0) -> CorrectionRequest:
    with tenant_scope(world_tenant.tenant):
        request = correction_request(
            observation=satisfaction(world_tenant),
            proposed_value=value,
            reason="Two late surveys.",
            evidence=evidence,
            by=world_tenant.users[who],
        )
        if days_ago:
            when = timezone.now() - datetime.timedelta(days=days_ago, hours=1)
            CorrectionRequest.objects.filter(pk=request.pk).update(requested_at=when)
            request.refresh_from_db()
        return request


def extra_requests(world_tenant, count: int, *, partner_index=0, start=0) -> None:
    """``count`` more open requests of a partner, each for a value of its own."""
    with tenant_scope(world_tenant.tenant):
        partner = world_tenant.partners[partner_index]
        taken = set(MetricObservation.objects.filter(partner=partner).values_list("metric_id", flat=True))
        metrics = list(Metric.objects.exclude(pk__in=taken).order_by("key"))[start : start + count]
        assert len(metrics) == count
        for number, metric in enumerate(metrics):
            observation = MetricObservation.objects.create(
                partner=partner,
                metric=metric,
                period=period(world_tenant),
                value=Decimal(number + 1),
                source=ObservationSource.HUBSPOT,
                source_ref=f"sync:{number}",
            )
            CorrectionRequest.objects.create(
                partner=partner,
                kind=CorrectionKind.CORRECTION,
                observation=observation,
                metric=metric,
                period=observation.period,
                value_at_request=observation.value,
                proposed_value=observation.value + 1,
                reason=f"Reason {number}",
                requested_by=world_tenant.users["partner_admin"],
                requested_at=timezone.now() - datetime.timedelta(days=number),
            )


# --- Your data --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", PARTNER)
def test_your_data_lists_the_values_behind_the_score_with_their_source(world, role):
    response = session(world.a, role).get(DATA)
    assert response.status_code == 200
    page = text(response)
    assert f"Your score for {period(world.a)}" in page
    for name, value in (("Customer satisfaction", "8.4"), ("Pipeline created", "310,000"), ("Training", "91%")):
        assert name in page and value in page
    assert "File upload" in page and ">world<" in page, "source and source reference"
    assert reverse("correction_new", args=[satisfaction(world.a).pk]) in page
    assert reverse("appeal_new", args=[score_of(world.a).pk]) in page
    assert "Acme Partner 2" not in page and "Globex" not in page


def test_your_data_picks_a_period_and_names_one_it_cannot_read(world):
    client = session(world.a, "partner_member")
    older = world.a.extra["scorecards"].periods[0]
    page = text(client.get(DATA, {"period": older}))
    assert f"Your score for {older}" in page and "8.1" in page and "8.4" not in page
    page = text(client.get(DATA, {"period": "next week"}))
    assert "“next week” is not a period" in page


def test_your_data_marks_a_value_with_an_open_request(world):
    request = make_request(world.a)
    page = text(session(world.a, "partner_admin").get(DATA))
    assert "Correction requested" in page and f"#{request.pk}" in page
    assert reverse("correction_new", args=[request.observation_id]) not in page


@pytest.mark.parametrize("role", INTERNAL)
def test_internal_people_have_no_portal_data_pages(world, role):
    client = session(world.a, role)
    for url in (DATA, REQUESTS, reverse("correction_new", args=[satisfaction(world.a).pk])):
        assert client.get(url).status_code == 403, url


def test_anonymous_visitors_sign_in_first(world):
    for url in (DATA, REQUESTS, QUEUE, reverse("correction_evidence", args=[1])):
        response = Client().get(url)
        assert response.status_code == 302 and reverse("account_login") in response["Location"]


# --- Requesting through the pages ----------------------------------------------------------------------------


def test_a_partner_requests_a_correction_with_evidence(world, media, django_capture_on_commit_callbacks):
    with tenant_scope(world.a.tenant):
        world.a.partners[0].manager = world.a.users["partner_manager"]
        world.a.partners[0].save(update_fields=["manager"])
    client = session(world.a, "partner_member")
    url = reverse("correction_new", args=[satisfaction(world.a).pk])
    form = client.get(url)
    assert form.status_code == 200 and "recorded as <strong>8.4</strong>" in text(form)
    evidence = SimpleUploadedFile("survey.pdf", PDF)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"proposed_value": "7.1", "reason": "Two late surveys.", "evidence": evidence})
    assert response.status_code == 302 and response["Location"] == REQUESTS
    with tenant_scope(world.a.tenant):
        request = CorrectionRequest.objects.get(partner=world.a.partners[0])
    assert request.proposed_value == Decimal("7.1") and request.evidence_name == "survey.pdf"
    assert len(mail.outbox) == 1
    page = text(client.get(REQUESTS))
    assert "Your request to correct Customer satisfaction" in page
    assert "open less than a minute" in page and "survey.pdf" in page


def test_a_request_form_names_every_problem_and_writes_nothing(world, media):
    client = session(world.a, "partner_member")
    url = reverse("correction_new", args=[satisfaction(world.a).pk])
    fake = SimpleUploadedFile("invoice.pdf", b"MZ\x90\x00 a program")
    response = client.post(url, {"proposed_value": "12", "reason": "", "evidence": fake})
    assert response.status_code == 400
    page = text(response)
    assert "outside the plausible range for Customer satisfaction: between 1 and 10" in page
    assert "Say why" in page
    assert "named like a PDF file but its content is not PDF" in page
    with tenant_scope(world.a.tenant):
        assert not CorrectionRequest.objects.filter(partner=world.a.partners[0]).exists()
    assert not any(path.is_file() for path in media.rglob("*"))


def test_an_oversized_evidence_file_is_refused_on_the_page(world, media):
    client = session(world.a, "partner_member")
    url = reverse("correction_new", args=[satisfaction(world.a).pk])
    big = SimpleUploadedFile("scan.pdf", b"%PDF-1.7\n" + b"0" * (10 * 1024 * 1024 + 100))
    response = client.post(url, {"proposed_value": "7", "reason": "Scan.", "evidence": big})
    assert response.status_code == 400 and "evidence files are at most 10 MB" in text(response)
    assert not any(path.is_file() for path in media.rglob("*"))


def test_a_partner_appeals_its_score(world):
    client = session(world.a, "partner_admin")
    url = reverse("appeal_new", args=[score_of(world.a).pk])
    assert client.get(url).status_code == 200
    assert client.post(url, {"reason": ""}).status_code == 400
    response = client.post(url, {"reason": "The peers' pipeline is double counted."})
    assert response.status_code == 302
    page = text(client.get(DATA))
    assert "You appealed this score" in page
    assert "Appeal of a score" in text(client.get(REQUESTS))


def test_pages_of_another_partner_or_tenant_answer_404(world, media):
    request = make_request(world.a, evidence=SimpleUploadedFile("survey.pdf", PDF))
    other_partner = session(world.a, "other_partner_admin")
    with tenant_scope(world.b.tenant):
        foreign_value = MetricObservation.objects.current().first()
        foreign_score = Score.objects.current().first()
        foreign_request = CorrectionRequest.objects.first()
    for url in (
        reverse("correction_new", args=[request.observation_id]),
        reverse("appeal_new", args=[score_of(world.a).pk]),
        reverse("correction_evidence", args=[request.pk]),
    ):
        assert other_partner.get(url).status_code == 404, url
    assert other_partner.post(reverse("correction_withdraw", args=[request.pk])).status_code == 404
    assert "Acme Partner 1" not in text(other_partner.get(REQUESTS))
    assert "Customer satisfaction" in text(other_partner.get(REQUESTS)), "its own (the world's) request"
    member = session(world.a, "partner_member")
    for url in (
        reverse("correction_new", args=[foreign_value.pk]),
        reverse("appeal_new", args=[foreign_score.pk]),
        reverse("correction_evidence", args=[foreign_request.pk]),
    ):
        assert member.get(url).status_code == 404, url
    assert member.post(reverse("correction_withdraw", args=[foreign_request.pk])).status_code == 404
    manager = session(world.a, "partner_manager")
    assert manager.get(reverse("correction_decide", args=[foreign_request.pk])).status_code == 404
    assert (
        manager.post(reverse("correction_decide", args=[foreign_request.pk]), {"decision": "approve"}).status_code
        == 404
    )
    with tenant_scope(world.b.tenant):
        assert CorrectionRequest.objects.get(pk=foreign_request.pk).is_open


# --- Your requests -------------------------------------------------------------------------------------------------


def test_your_requests_show_status_age_decision_and_comment(world):
    open_one = make_request(world.a, days_ago=6)
    client = session(world.a, "partner_member")
    page = text(client.get(REQUESTS))
    assert "open 6 days" in page and "Withdraw" in page
    assert "Withdraw" not in text(session(world.a, "partner_admin").get(REQUESTS)), "only the requester withdraws"
    manager = session(world.a, "partner_manager")
    manager.post(
        reverse("correction_decide", args=[open_one.pk]), {"decision": "reject", "comment": "Export is right."}
    )
    page = text(client.get(REQUESTS))
    assert "Rejected" in page and "rejected after 6 days" in page and "“Export is right.”" in page


def test_the_requester_withdraws_from_the_page(world):
    request = make_request(world.a)
    colleague = session(world.a, "partner_admin")
    response = colleague.post(reverse("correction_withdraw", args=[request.pk]), follow=True)
    assert "Only the person who made a request can withdraw it." in text(response)
    client = session(world.a, "partner_member")
    response = client.post(reverse("correction_withdraw", args=[request.pk]), follow=True)
    assert f"Request #{request.pk} was withdrawn." in text(response)
    response = client.post(reverse("correction_withdraw", args=[request.pk]), follow=True)
    assert "already withdrawn" in text(response)
    assert client.get(reverse("correction_withdraw", args=[request.pk])).status_code == 405


# --- The corrections queue ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["executive", *PARTNER])
def test_only_deciders_reach_the_queue(world, role):
    request = make_request(world.a)
    client = session(world.a, role)
    assert client.get(QUEUE).status_code == 403
    assert client.post(reverse("correction_decide", args=[request.pk]), {"decision": "approve"}).status_code == 403


@pytest.mark.parametrize("role", ["admin", "partner_manager"])
def test_the_queue_lists_open_requests_oldest_first(world, media, role):
    waiting = make_request(world.a, evidence=SimpleUploadedFile("survey.pdf", PDF), days_ago=2)
    response = session(world.a, role).get(QUEUE)
    assert response.status_code == 200
    page = text(response)
    recent = world.a.extra["correction_request"]  # partner 2's, requested when the world was built
    assert page.index(f"correction-{waiting.pk}") < page.index(f"correction-{recent.pk}")
    assert "open 2 days" in page and "8.4 → <strong>7.1</strong>" in page and "Two late surveys." in page
    assert reverse("correction_evidence", args=[waiting.pk]) in page
    assert "Acme Partner 1" in page and "Acme Partner 2" in page and "Globex" not in page
    assert response.context["corrections_open"] == 2
    assert "2 open" in page


def test_the_queue_is_ordered_by_waiting_time(world):
    extra_requests(world.a, 3)
    page = text(session(world.a, "admin").get(QUEUE))
    positions = [page.index(f"Reason {n}") for n in (2, 1, 0)]
    assert positions == sorted(positions), "the longest waiting first"


def test_the_queue_filters_by_status_partner_and_kind(world):
    request = make_request(world.a)
    client = session(world.a, "admin")
    manager = session(world.a, "partner_manager")
    manager.post(reverse("correction_decide", args=[request.pk]), {"decision": "reject", "comment": "No."})
    assert f"correction-{request.pk}" not in text(client.get(QUEUE))
    approved = text(client.get(QUEUE, {"status": "rejected"}))
    assert f"correction-{request.pk}" in approved and "“No.”" in approved
    other = world.a.extra["correction_request"]
    by_partner = text(client.get(QUEUE, {"status": "", "partner": world.a.partners[1].pk}))
    assert f"correction-{other.pk}" in by_partner and f"correction-{request.pk}" not in by_partner
    assert "Nothing to decide" in text(client.get(QUEUE, {"kind": "appeal"}))


@pytest.mark.parametrize(
    "query",
    [
        {"status": "bogus"},
        {"partner": "abc"},
        {"partner": "99999999999999999999999999"},
        {"partner": "-1"},
        {"kind": "x" * 500},
        {"page": "9999"},
        {"page": "-1"},
        {"period": "\x00"},
    ],
)
def test_the_queue_reads_any_query_without_failing(world, query):
    response = session(world.a, "admin").get(QUEUE, query)
    assert response.status_code == 200


def test_deciding_without_javascript(world, django_capture_on_commit_callbacks):
    request = make_request(world.a)
    client = session(world.a, "partner_manager")
    url = reverse("correction_decide", args=[request.pk])
    assert client.get(url).status_code == 200
    response = client.post(url, {"decision": "reject", "comment": ""})
    assert response.status_code == 400 and "Say why the request is rejected" in text(response)
    assert client.post(url, {"decision": "maybe"}).status_code == 400
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"decision": "approve", "next": f"{QUEUE}?kind=correction"})
    assert response.status_code == 302 and response["Location"] == f"{QUEUE}?kind=correction"
    with tenant_scope(world.a.tenant):
        request.refresh_from_db()
        assert request.status == CorrectionStatus.APPROVED
        assert request.resulting_observation.source == ObservationSource.CORRECTION
    response = client.post(url, {"decision": "approve", "next": "https://evil.example/"})
    assert response.status_code == 400 and "already approved" in text(response)
    assert client.post(url, {"decision": "reject", "comment": "x", "next": "https://evil.example/"}).status_code == 400


def test_deciding_inline_with_htmx(world):
    request = make_request(world.a)
    client = session(world.a, "admin")
    url = reverse("correction_decide", args=[request.pk])
    response = client.post(url, {"decision": "reject", "comment": ""}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert "Say why the request is rejected" in text(response) and text(response).lstrip().startswith("<tr")
    response = client.post(url, {"decision": "reject", "comment": "Export is right."}, HTTP_HX_REQUEST="true")
    page = text(response)
    assert response.status_code == 200 and "Rejected." in page and "“Export is right.”" in page
    assert "<html" not in page


def test_a_value_changed_meanwhile_is_refused_on_the_page(world):
    request = make_request(world.a)
    with tenant_scope(world.a.tenant):
        observation_record(
            partner=world.a.partners[0],
            metric=request.metric,
            period=request.period,
            value="8.0",
            by=world.a.users["admin"],
        )
    response = session(world.a, "admin").post(
        reverse("correction_decide", args=[request.pk]), {"decision": "approve"}, HTTP_HX_REQUEST="true"
    )
    assert "The value changed since the request; ask the partner to check the new value." in text(response)


# --- Evidence downloads -------------------------------------------------------------------------------------------


def test_evidence_is_served_as_an_attachment_to_the_partner_and_the_program_only(world, media):
    request = make_request(world.a, evidence=SimpleUploadedFile("Survey export.pdf", PDF))
    url = reverse("correction_evidence", args=[request.pk])
    for role in ("partner_member", "partner_admin", *INTERNAL):
        response = session(world.a, role).get(url)
        assert response.status_code == 200, role
        assert response["Content-Type"] == "application/pdf"
        assert (
            response["Content-Disposition"].startswith("attachment;")
            and "Survey export.pdf" in response["Content-Disposition"]
        )
        assert response["X-Content-Type-Options"] == "nosniff"
        assert b"".join(response.streaming_content) == PDF
    assert session(world.a, "other_partner_admin").get(url).status_code == 404
    for role in ("admin", "partner_member"):
        assert session(world.b, role).get(url).status_code == 404, role
    no_file = world.a.extra["correction_request"]
    assert session(world.a, "admin").get(reverse("correction_evidence", args=[no_file.pk])).status_code == 404


def test_a_missing_evidence_file_answers_404(world, media):
    request = make_request(world.a, evidence=SimpleUploadedFile("survey.pdf", PDF))
    with tenant_scope(world.a.tenant):
        request.evidence.storage.delete(request.evidence.name)
    assert session(world.a, "admin").get(reverse("correction_evidence", args=[request.pk])).status_code == 404


# --- The number on the queue's link, and query counts -------------------------------------------------------------


def test_the_open_count_is_offered_to_deciders_only(world, rf):
    make_request(world.a)
    with tenant_scope(world.a.tenant):
        for role, expected in (("admin", 2), ("partner_manager", 2), ("executive", None), ("partner_member", None)):
            http = rf.get("/")
            http.membership = world.a.memberships[role]
            context = open_requests_link(http)
            assert (context["corrections_open"]() if context else None) == expected, role


def queries(client, url, params=None) -> int:
    client.get(url, params)  # warm: sessions, workspace lookups
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, params)
    assert response.status_code == 200
    return len(captured)


def test_the_queue_costs_the_same_queries_whatever_its_length(world):
    client = session(world.a, "partner_manager")
    extra_requests(world.a, 2)
    few = queries(client, QUEUE)
    extra_requests(world.a, 15, start=2)
    extra_requests(world.a, 5, partner_index=1)
    assert queries(client, QUEUE) == few
    assert queries(client, QUEUE, {"status": ""}) == few


def test_your_data_and_requests_cost_the_same_queries_whatever_their_length(world):
    client = session(world.a, "partner_member")
    extra_requests(world.a, 2)
    few_data, few_requests = queries(client, DATA), queries(client, REQUESTS)
    extra_requests(world.a, 15, start=2)
    assert queries(client, DATA) == few_data
    assert queries(client, REQUESTS) == few_requests
