"""The corrections API: who lists, asks, withdraws and decides; isolation; validation; evidence; the whole loop."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from partnerhub.tenancy.context import tenant_scope
from scorecards.models import (
    CorrectionKind,
    CorrectionRequest,
    CorrectionStatus,
    Metric,
    MetricObservation,
    ObservationSource,
    Score,
)
from scorecards.services.observations import observation_record

LIST = "/api/v1/corrections/"
INTERNAL = ("admin", "partner_manager", "executive")
PARTNER = ("partner_admin", "partner_member")
PDF = b"%PDF-1.4\n1 0 obj << >> endobj\n%%EOF\n"


def session(world_tenant, role: str) -> Client:
    client = Client()
    client.force_login(world_tenant.users[role])
    return client


def key(world_tenant, which="read_key") -> Client:
    return Client(HTTP_AUTHORIZATION=f"Api-Key {getattr(world_tenant, which)[1]}")


def detail(pk: int, command: str = "") -> str:
    return f"{LIST}{pk}/{command + '/' if command else ''}"


def ids(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


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


def post_json(client: Client, url: str, body: dict):
    return client.post(url, body, content_type="application/json")


def ask(world_tenant, client=None, **body):
    body = {"observation": satisfaction(world_tenant).pk, "proposed_value": "7.1", "reason": "Late surveys.", **body}
    return post_json(client or session(world_tenant, "partner_member"), LIST, body)


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    return tmp_path


# --- Reading ------------------------------------------------------------------------------------------------


def test_partner_users_list_their_own_partners_requests_only(world):
    mine = ask(world.a).json()["id"]
    theirs = world.a.extra["correction_request"].pk  # partner 2's
    for role in PARTNER:
        assert ids(session(world.a, role).get(LIST)) == {mine}, role
        assert session(world.a, role).get(detail(theirs)).status_code == 404
    assert ids(session(world.a, "other_partner_admin").get(LIST)) == {theirs}
    for client in [session(world.a, role) for role in INTERNAL] + [key(world.a)]:
        assert ids(client.get(LIST)) == {mine, theirs}
    foreign = world.b.extra["correction_request"].pk
    for client in [session(world.a, role) for role in (*INTERNAL, *PARTNER)] + [key(world.a)]:
        assert client.get(detail(foreign)).status_code == 404


def test_a_request_reads_with_its_values_and_age(world):
    created = ask(world.a).json()
    assert created["kind"] == "correction" and created["status"] == "open"
    assert created["metric"] == "customer_satisfaction" and created["metric_name"] == "Customer satisfaction"
    assert created["value_at_request"] == "8.400000" and created["proposed_value"] == "7.100000"
    assert created["partner_name"] == "Acme Partner 1" and created["period"] == period(world.a)
    assert created["requested_by"] == world.a.users["partner_member"].email
    assert created["decided_by"] is None and created["evidence"] is None
    assert created["age"] == "open less than a minute"
    with tenant_scope(world.a.tenant):
        CorrectionRequest.objects.filter(pk=created["id"]).update(
            requested_at=timezone.now() - datetime.timedelta(days=6, hours=3)
        )
    assert session(world.a, "admin").get(detail(created["id"])).json()["age"] == "open 6 days"


def test_the_list_filters_and_refuses_filters_it_cannot_read(world):
    mine = ask(world.a).json()["id"]
    client = session(world.a, "admin")
    assert ids(client.get(LIST, {"partner": world.a.partners[0].pk})) == {mine}
    assert ids(client.get(LIST, {"kind": "appeal"})) == set()
    assert ids(client.get(LIST, {"status": "open", "period": period(world.a).lower()})) == {
        mine,
        world.a.extra["correction_request"].pk,
    }
    for bad in ({"status": "bogus"}, {"partner": "abc"}, {"partner": "9" * 30}, {"kind": "x" * 300}):
        assert client.get(LIST, bad).status_code == 400, bad


def test_the_list_costs_the_same_queries_whatever_its_length(world):
    client = session(world.a, "admin")
    ask(world.a)

    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(LIST).status_code == 200
        return len(captured)

    client.get(LIST)
    few = count()
    with tenant_scope(world.a.tenant):
        partner = world.a.partners[0]
        taken = set(MetricObservation.objects.filter(partner=partner).values_list("metric_id", flat=True))
        for number, metric in enumerate(Metric.objects.exclude(pk__in=taken)[:12]):
            observation = MetricObservation.objects.create(
                partner=partner, metric=metric, period=period(world.a), value=number, source=ObservationSource.API
            )
            CorrectionRequest.objects.create(
                partner=partner,
                kind=CorrectionKind.CORRECTION,
                observation=observation,
                metric=metric,
                period=observation.period,
                value_at_request=observation.value,
                proposed_value=observation.value + 1,
                reason="More.",
                requested_by=world.a.users["partner_admin"],
                decided_by=world.a.users["admin"],
                status=CorrectionStatus.REJECTED,
                decision_comment="No.",
                decided_at=timezone.now(),
            )
    assert count() == few


# --- Asking ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", PARTNER)
def test_partner_users_request_corrections_and_appeals(world, role):
    assert ask(world.a, session(world.a, role)).status_code == 201
    response = post_json(
        session(world.a, role), LIST, {"score": score_of(world.a).pk, "reason": "Peers double counted."}
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["kind"] == "appeal" and body["score"] == score_of(world.a).pk and body["metric"] is None
    assert Decimal(body["value_at_request"]) == score_of(world.a).total


@pytest.mark.parametrize("role", INTERNAL)
def test_internal_people_do_not_request(world, role):
    response = ask(world.a, session(world.a, role))
    assert response.status_code == 403
    assert response.json() == {"detail": "Corrections and appeals are requested by the partner's own people."}


@pytest.mark.parametrize("which", ["read_key", "write_key"])
def test_api_keys_do_not_request_or_decide(world, which):
    client = key(world.a, which)
    assert ask(world.a, client).status_code == 403
    target = world.a.extra["correction_request"].pk
    assert post_json(client, detail(target, "decide"), {"decision": "approve"}).status_code == 403
    assert post_json(client, detail(target, "withdraw"), {}).status_code == 403


def test_another_partners_or_tenants_value_or_score_answers_404_like_a_missing_one(world):
    with tenant_scope(world.b.tenant):
        foreign_value = MetricObservation.objects.current().first().pk
        foreign_score = Score.objects.current().first().pk
    other_partner = session(world.a, "other_partner_admin")
    member = session(world.a, "partner_member")
    cases = [
        (other_partner, {"observation": satisfaction(world.a).pk}),
        (other_partner, {"score": score_of(world.a).pk}),
        (member, {"observation": foreign_value}),
        (member, {"score": foreign_score}),
        (member, {"observation": 2**62}),
    ]
    answers = set()
    for client, body in cases:
        value = {"proposed_value": "7"} if "observation" in body else {}
        response = post_json(client, LIST, {"reason": "x", **value, **body})
        assert response.status_code == 404, body
        answers.add(response.json()["detail"].split(" matches")[0])
    assert answers == {"No metric observation", "No score"}
    with tenant_scope(world.a.tenant):
        assert not CorrectionRequest.objects.filter(partner=world.a.partners[0]).exists()


@pytest.mark.parametrize(
    "body, field, message",
    [
        ({"proposed_value": "12"}, "proposed_value", "outside the plausible range"),
        ({"proposed_value": 12.5}, "proposed_value", "outside the plausible range"),
        ({"proposed_value": True}, "proposed_value", "Not a valid string."),
        ({"proposed_value": ""}, "proposed_value", "Enter the value."),
        ({"reason": ""}, "reason", "Say why"),
        ({"reason": None}, "reason", "may not be null"),
        ({"observation": "abc"}, "observation", "A valid integer is required."),
        ({"observation": -4}, "observation", "greater than or equal to 1"),
        ({"observation": 10**30}, "observation", "less than or equal to"),
        ({"score": 1}, "non_field_errors", "Name either the observation"),
        ({"observation": None}, "observation", "may not be null"),
        ({"kind": "appeal"}, "kind", "A appeal names a score"),
        ({"kind": "complaint"}, "kind", "Either `correction` or `appeal`"),
        ({"proposed_value": "7", "evidence": "not a file"}, "evidence", "not a file"),
    ],
)
def test_bad_requests_are_told_what_is_wrong(world, body, field, message):
    response = ask(world.a, **body)
    assert response.status_code == 400, response.content
    assert message in " ".join(response.json()[field])
    with tenant_scope(world.a.tenant):
        assert not CorrectionRequest.objects.filter(partner=world.a.partners[0]).exists()


def test_an_appeal_proposes_no_value_and_malformed_bodies_are_refused(world):
    member = session(world.a, "partner_member")
    response = post_json(member, LIST, {"score": score_of(world.a).pk, "proposed_value": "90", "reason": "x"})
    assert response.status_code == 400 and "proposed_value" in response.json()
    assert member.post(LIST, "{not json", content_type="application/json").status_code == 400
    assert member.post(LIST, "[]", content_type="application/json").status_code == 400


def test_one_open_request_per_value(world):
    first = ask(world.a).json()["id"]
    response = ask(world.a, session(world.a, "partner_admin"), proposed_value="7.5")
    assert response.status_code == 400
    assert f"#{first}" in response.json()["__all__"][0]


def test_evidence_travels_in_a_multipart_request_and_is_checked(world, media):
    member = session(world.a, "partner_member")
    body = {"observation": satisfaction(world.a).pk, "proposed_value": "7.1", "reason": "Scan attached."}
    fake = SimpleUploadedFile("scan.pdf", b"GIF89a not a pdf")
    response = member.post(LIST, {**body, "evidence": fake})
    assert response.status_code == 400
    assert response.json()["evidence"] == [
        "“scan.pdf” is named like a PDF file but its content is not PDF; attach the file itself (a PDF, PNG, "
        "JPEG, CSV or Excel (.xlsx) file)."
    ]
    assert not any(path.is_file() for path in media.rglob("*"))
    response = member.post(LIST, {**body, "evidence": SimpleUploadedFile("scan.pdf", PDF)})
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["evidence"] == detail(created["id"], "evidence") and created["evidence_name"] == "scan.pdf"
    for client in (member, session(world.a, "partner_admin"), session(world.a, "admin"), key(world.a)):
        download = client.get(created["evidence"])
        assert download.status_code == 200
        assert download["Content-Disposition"].startswith("attachment;") and download["Content-Type"] == (
            "application/pdf"
        )
        assert b"".join(download.streaming_content) == PDF
    assert session(world.a, "other_partner_admin").get(created["evidence"]).status_code == 404
    assert key(world.b).get(created["evidence"]).status_code == 404
    no_file = world.a.extra["correction_request"].pk
    assert session(world.a, "admin").get(detail(no_file, "evidence")).status_code == 404


# --- Withdrawing and deciding ----------------------------------------------------------------------------


def test_only_the_requester_withdraws(world):
    created = ask(world.a).json()["id"]
    assert post_json(session(world.a, "other_partner_admin"), detail(created, "withdraw"), {}).status_code == 404
    assert post_json(session(world.a, "partner_admin"), detail(created, "withdraw"), {}).status_code == 403
    assert post_json(session(world.a, "admin"), detail(created, "withdraw"), {}).status_code == 403
    response = post_json(session(world.a, "partner_member"), detail(created, "withdraw"), {})
    assert response.status_code == 200 and response.json()["status"] == "withdrawn"
    again = post_json(session(world.a, "partner_member"), detail(created, "withdraw"), {})
    assert again.status_code == 400 and again.json() == {"non_field_errors": ["This request is already withdrawn."]}


@pytest.mark.parametrize("role", ["executive", *PARTNER, "other_partner_admin"])
def test_only_deciders_decide(world, role):
    created = ask(world.a).json()["id"]
    response = post_json(session(world.a, role), detail(created, "decide"), {"decision": "approve"})
    assert response.status_code == 403
    with tenant_scope(world.a.tenant):
        assert CorrectionRequest.objects.get(pk=created).is_open


def test_another_tenants_request_cannot_be_decided(world):
    foreign = world.b.extra["correction_request"].pk
    response = post_json(session(world.a, "admin"), detail(foreign, "decide"), {"decision": "reject", "comment": "x"})
    assert response.status_code == 404
    with tenant_scope(world.b.tenant):
        assert CorrectionRequest.objects.get(pk=foreign).is_open


def test_the_whole_loop_through_the_api(world, django_capture_on_commit_callbacks):
    with tenant_scope(world.a.tenant):
        world.a.partners[0].manager = world.a.users["partner_manager"]
        world.a.partners[0].save(update_fields=["manager"])
    with django_capture_on_commit_callbacks(execute=True):
        created = ask(world.a).json()
    assert [message.to for message in mail.outbox] == [[world.a.users["partner_manager"].email]]
    manager = session(world.a, "partner_manager")
    refused = post_json(manager, detail(created["id"], "decide"), {"decision": "reject"})
    assert refused.status_code == 400 and "comment" in refused.json()
    assert post_json(manager, detail(created["id"], "decide"), {"decision": "perhaps"}).status_code == 400
    with django_capture_on_commit_callbacks(execute=True):
        response = post_json(manager, detail(created["id"], "decide"), {"decision": "approve", "comment": "Checked."})
    assert response.status_code == 200, response.content
    decided = response.json()
    assert decided["status"] == "approved" and decided["decided_by"] == world.a.users["partner_manager"].get_full_name()
    assert decided["decision_comment"] == "Checked." and decided["age"] == "approved after less than a minute"
    assert len(mail.outbox) == 2

    member = session(world.a, "partner_member")
    new_value = member.get("/api/v1/observations/", {"period": period(world.a), "metric": "customer_satisfaction"})
    assert new_value.status_code == 200
    with tenant_scope(world.a.tenant):
        resulting = MetricObservation.objects.get(pk=decided["resulting_observation"])
        assert (resulting.value, resulting.source, resulting.source_ref) == (
            Decimal("7.1"),
            ObservationSource.CORRECTION,
            f"correction:{created['id']}",
        )
        assert MetricObservation.objects.get(pk=created["observation"]).superseded_by_id == resulting.pk
    history = member.get(
        "/api/v1/scores/", {"partner": world.a.partners[0].pk, "period": period(world.a), "revisions": "all"}
    ).json()["results"]
    assert sorted((row["revision"], row["is_current"]) for row in history) == [(1, False), (2, True)]

    again = post_json(manager, detail(created["id"], "decide"), {"decision": "reject", "comment": "Oops."})
    assert again.status_code == 400 and "already approved" in again.json()["non_field_errors"][0]


def test_approval_is_refused_when_the_value_changed_meanwhile(world):
    created = ask(world.a).json()["id"]
    with tenant_scope(world.a.tenant):
        observation_record(
            partner=world.a.partners[0],
            metric=Metric.objects.get(key="customer_satisfaction"),
            period=period(world.a),
            value="8.0",
            by=world.a.users["admin"],
        )
    response = post_json(session(world.a, "admin"), detail(created, "decide"), {"decision": "approve"})
    assert response.status_code == 400
    assert response.json() == {
        "non_field_errors": ["The value changed since the request; ask the partner to check the new value."]
    }


def test_writes_other_than_the_commands_are_not_offered(world):
    created = ask(world.a).json()["id"]
    admin = session(world.a, "admin")
    for method in ("put", "patch", "delete"):
        assert getattr(admin, method)(detail(created), {}, content_type="application/json").status_code == 405
    member = session(world.a, "partner_member")
    for method in ("put", "patch", "delete"):
        assert getattr(member, method)(detail(created), {}, content_type="application/json").status_code == 403
