"""Pages name who acted when no account of the workspace is linked.

A decision may name someone who has no account (typed in), and a person's account may be erased
after they acted (by the database owner: the audit log keeps the application from deleting people),
which leaves the link empty. Each page then shows the typed name, or says a former user acted, and
never fails.
"""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from actions.models import ActionUpdate
from partnerhub.partners.models import Partner
from partnerhub.tenancy.context import tenant_scope
from reviews.models import ReviewState
from reviews.services.cadences import cadence_rule_create
from reviews.services.workspace import decision_record
from scorecards.models import ScorecardVersion, VersionStatus
from tests.actions.conftest import new_action
from tests.reviews.conftest import force_state, generate, review_of


def session(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def a(world):
    with tenant_scope(world.a.tenant):
        yield world.a


def test_a_decision_taken_by_someone_named_but_without_an_account_shows_their_name(a):
    Partner.objects.update(manager=a.users["partner_manager"])
    cadence_rule_create(kind="qbr", by=a.users["admin"])
    review = review_of(generate(a), a.partners[0])
    force_state(review, ReviewState.IN_MEETING)
    decision_record(
        review=review,
        decision="Co-fund two webinars",
        rationale="Pipeline is thin in the north region",
        by=a.users["partner_manager"],
        decided_by_name="Their CEO, Dana Reyes",
    )

    workspace = session(a.users["partner_manager"]).get(reverse("review_detail", args=[review.pk]))
    assert workspace.status_code == 200
    assert "Their CEO, Dana Reyes" in workspace.content.decode()

    force_state(review, ReviewState.SHARED)
    portal = session(a.users["partner_admin"]).get(reverse("portal_review", args=[review.pk]))
    assert portal.status_code == 200
    assert "Their CEO, Dana Reyes" in portal.content.decode()


def test_an_action_update_by_an_erased_account_is_shown_as_a_former_user(a):
    action = new_action(a)
    # What erasing the author's account leaves behind: the update, with nobody linked.
    ActionUpdate.objects.create(action=action, kind="comment", body="Booked the venue", author=None)

    page = session(a.users["partner_manager"]).get(reverse("action_detail", args=[action.pk]))
    assert page.status_code == 200
    body = page.content.decode()
    assert "Booked the venue" in body and "a former user" in body


def test_a_scorecard_version_made_and_proposed_by_an_erased_account_still_shows(a):
    version = ScorecardVersion.objects.get(pk=a.extra["scorecards"].version.pk)
    draft = ScorecardVersion.objects.create(
        tenant=a.tenant,
        scorecard=version.scorecard,
        number=version.number + 1,
        status=VersionStatus.PROPOSED,
        effective_from=version.effective_from,
        created_by=None,
        proposed_by=None,
    )

    admin = session(a.users["admin"])
    assert admin.get(reverse("scorecard_editor")).status_code == 200
    page = admin.get(reverse("scorecard_editor_version", args=[draft.pk]))
    assert page.status_code == 200
    assert "Proposed by an administrator" in page.content.decode()
