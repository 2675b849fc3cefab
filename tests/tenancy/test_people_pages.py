"""The People page: listing, inviting, changing roles and removing members, per role and tenant."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from partnerhub.tenancy.context import tenant_scope
from partnerhub.tenancy.models import AuditEvent, Invitation, Membership
from partnerhub.tenancy.roles import Role
from tests.factories import MembershipFactory

PEOPLE = reverse("member_list")
INVITE = reverse("invitation_create")
HTMX = {"HTTP_HX_REQUEST": "true"}


def signed_in(client, user):
    client.force_login(user)
    return client


def edit_url(membership):
    return reverse("member_edit", args=[membership.pk])


def remove_url(membership):
    return reverse("member_remove", args=[membership.pk])


def audit_verbs(tenant):
    with tenant_scope(tenant):
        return list(AuditEvent.objects.order_by("pk").values_list("verb", flat=True))


def membership_of(tenant, pk):
    with tenant_scope(tenant):
        return Membership.objects.select_related("partner").filter(pk=pk).first()


# --- Who may open the page ------------------------------------------------------------------------


def test_admin_sees_every_member_of_the_workspace_and_no_one_else(client, world):
    response = signed_in(client, world.a.users["admin"]).get(PEOPLE)
    assert response.status_code == 200
    body = response.content.decode()
    for user in world.a.users.values():
        assert user.email in body
    for user in world.b.users.values():
        assert user.email not in body
    assert response.context["nav"] == "members"


def test_partner_admin_sees_only_the_people_of_their_own_partner(client, world):
    response = signed_in(client, world.a.users["partner_admin"]).get(PEOPLE)
    assert response.status_code == 200
    listed = {m.user.email for m in response.context["members"]}
    assert listed == {"partner_admin@acme.test", "partner_member@acme.test"}
    body = response.content.decode()
    # The membership knows its partner (on PostgreSQL too, where it is loaded under the bound tenant).
    assert "Your colleagues at Acme Partner 1" in body
    for hidden in ("executive@acme.test", "partner_manager@acme.test", "p2admin@acme.test", ">admin@acme.test"):
        assert hidden not in body


@pytest.mark.parametrize("role", ["partner_manager", "executive", "partner_member"])
def test_roles_without_people_rights_get_403(client, world, role):
    client = signed_in(client, world.a.users[role])
    assert client.get(PEOPLE).status_code == 403
    assert client.post(INVITE, {"email": "x@example.test", "role": "partner_member"}).status_code == 403
    target = world.a.memberships["partner_member"]
    assert client.post(remove_url(target)).status_code == 403
    assert client.post(edit_url(target), {"role": "partner_admin"}).status_code == 403


def test_anonymous_visitors_are_sent_to_sign_in(client, world):
    response = client.get(PEOPLE)
    assert response.status_code == 302
    assert reverse("account_login") in response["Location"]


def test_member_list_is_paginated(client, world):
    with tenant_scope(world.a.tenant):
        MembershipFactory.create_batch(55, tenant=world.a.tenant, role=Role.EXECUTIVE)
    client = signed_in(client, world.a.users["admin"])
    first = client.get(PEOPLE)
    assert len(first.context["members"]) == 50
    assert "Page 1 of 2" in first.content.decode()
    second = client.get(PEOPLE, {"page": 2})
    assert len(second.context["members"]) == 5 + 6
    assert client.get(PEOPLE, {"page": "nonsense"}).status_code == 200


def test_member_list_filters_by_search_and_role(client, world):
    client = signed_in(client, world.a.users["admin"])
    response = client.get(PEOPLE, {"q": "executive@"})
    assert [m.user.email for m in response.context["members"]] == ["executive@acme.test"]
    response = client.get(PEOPLE, {"role": "partner_admin"})
    assert {m.user.email for m in response.context["members"]} == {"partner_admin@acme.test", "p2admin@acme.test"}
    assert client.get(PEOPLE, {"role": "bogus"}).status_code == 200


def _people_queries(client, world, extra: int) -> int:
    with tenant_scope(world.a.tenant):
        MembershipFactory.create_batch(
            extra, tenant=world.a.tenant, role=Role.PARTNER_MEMBER, partner=world.a.partners[0]
        )
        for n in range(extra):
            Invitation.objects.create(
                email=f"invitee{extra}-{n}@example.test",
                role=Role.PARTNER_MEMBER,
                partner=world.a.partners[n % 2],
                digest=f"{extra:04d}{n:060d}",
                invited_by=world.a.users["admin"],
                expires_at="2999-01-01T00:00:00Z",
            )
    with CaptureQueriesContext(connection) as queries:
        response = client.get(PEOPLE)
    assert response.status_code == 200
    return len(queries)


def test_people_page_query_count_does_not_grow_with_rows(client, world):
    client = signed_in(client, world.a.users["admin"])
    client.get(PEOPLE)  # the first request stores the active workspace in the session
    few = _people_queries(client, world, 3)
    many = _people_queries(client, world, 27)
    assert few == many


# --- Inviting -------------------------------------------------------------------------------------


def test_admin_invites_an_internal_colleague_and_the_email_goes_out(
    client, world, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in(client, world.a.users["admin"]).post(
            INVITE, {"email": "New.Person@Example.test", "role": "partner_manager"}
        )
    assert response.status_code == 302
    assert response["Location"] == PEOPLE
    with tenant_scope(world.a.tenant):
        invitation = Invitation.objects.get(email="new.person@example.test")
    assert invitation.role == "partner_manager"
    assert invitation.partner is None
    assert invitation.invited_by == world.a.users["admin"]
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["new.person@example.test"]
    assert "invitation.created" in audit_verbs(world.a.tenant)
    page = client.get(PEOPLE).content.decode()
    assert "new.person@example.test" in page
    assert "Invitation sent to new.person@example.test" in page


def test_admin_invites_a_partner_user_for_a_chosen_partner(
    client, world, mailoutbox, django_capture_on_commit_callbacks
):
    partner = world.a.partners[1]
    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in(client, world.a.users["admin"]).post(
            INVITE, {"email": "rep@partner.test", "role": "partner_admin", "partner": partner.pk}
        )
    assert response.status_code == 302
    with tenant_scope(world.a.tenant):
        invitation = Invitation.objects.get(email="rep@partner.test")
    assert invitation.partner_id == partner.pk
    assert partner.name in mailoutbox[0].body


def test_partner_admin_invites_a_colleague_to_their_own_partner(
    client, world, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in(client, world.a.users["partner_admin"]).post(
            INVITE, {"email": "colleague@partner.test", "role": "partner_member"}
        )
    assert response.status_code == 302
    with tenant_scope(world.a.tenant):
        invitation = Invitation.objects.get(email="colleague@partner.test")
    assert invitation.partner_id == world.a.partners[0].pk
    assert len(mailoutbox) == 1


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"email": "", "role": "executive"}, "email", "Enter the email address of the person to invite."),
        ({"email": "not-an-email", "role": "executive"}, "email", "Enter a valid email address."),
        ({"email": "x@example.test", "role": "overlord"}, "role", "You cannot give people this role."),
        ({"email": "x@example.test", "role": ""}, "role", "Choose a role."),
        ({"email": "x@example.test", "role": "partner_member"}, "partner", "Choose the partner this person works for."),
        (
            {"email": "x@example.test", "role": "partner_member", "partner": "999999"},
            "partner",
            "Choose a partner of this workspace.",
        ),
        (
            {"email": "executive@acme.test", "role": "executive"},
            "email",
            "This person already belongs to the workspace.",
        ),
        (
            {"email": "EXECUTIVE@ACME.TEST", "role": "admin"},
            "email",
            "This person already belongs to the workspace.",
        ),
    ],
)
def test_invalid_invitations_show_the_reason_on_the_form(
    client, world, mailoutbox, django_capture_on_commit_callbacks, data, field, message
):
    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in(client, world.a.users["admin"]).post(INVITE, data)
    assert response.status_code == 200
    assert message in response.context["invite_form"].errors[field]
    assert message in response.content.decode()
    assert mailoutbox == []
    with tenant_scope(world.a.tenant):
        assert not Invitation.objects.exists()


def test_partner_id_of_another_tenant_is_not_a_valid_choice(client, world):
    response = signed_in(client, world.a.users["admin"]).post(
        INVITE, {"email": "x@example.test", "role": "partner_member", "partner": world.b.partners[0].pk}
    )
    assert response.status_code == 200
    assert "Choose a partner of this workspace." in response.context["invite_form"].errors["partner"]


@pytest.mark.parametrize("role", ["admin", "partner_manager", "executive"])
def test_partner_admin_cannot_invite_to_an_internal_role(client, world, role):
    response = signed_in(client, world.a.users["partner_admin"]).post(INVITE, {"email": "x@example.test", "role": role})
    assert response.status_code == 200
    assert "You cannot give people this role." in response.content.decode()
    with tenant_scope(world.a.tenant):
        assert not Invitation.objects.exists()


def test_partner_admin_cannot_invite_to_another_partner(client, world):
    response = signed_in(client, world.a.users["partner_admin"]).post(
        INVITE, {"email": "x@example.test", "role": "partner_member", "partner": world.a.partners[1].pk}
    )
    assert response.status_code == 200
    assert "You can only add colleagues of your own partner." in response.content.decode()
    with tenant_scope(world.a.tenant):
        assert not Invitation.objects.exists()


def test_the_invite_form_makes_administrators_choose_a_role_deliberately(client, world):
    response = signed_in(client, world.a.users["admin"]).get(PEOPLE)
    choices = response.context["invite_form"].fields["role"].choices
    assert choices[0] == ("", "Choose a role…")
    assert '<option value="admin" selected>' not in response.content.decode()


def test_partner_admin_sees_no_partner_picker_and_only_partner_roles(client, world):
    response = signed_in(client, world.a.users["partner_admin"]).get(PEOPLE)
    form = response.context["invite_form"]
    assert form.partner_is_fixed
    assert 'name="partner"' not in response.content.decode()
    assert [value for value, _label in form.fields["role"].choices] == ["partner_admin", "partner_member"]


def test_inviting_the_same_address_again_replaces_the_open_invitation(
    client, world, mailoutbox, django_capture_on_commit_callbacks
):
    client = signed_in(client, world.a.users["admin"])
    with django_capture_on_commit_callbacks(execute=True):
        client.post(INVITE, {"email": "twice@example.test", "role": "executive"})
    with django_capture_on_commit_callbacks(execute=True):
        client.post(INVITE, {"email": "twice@example.test", "role": "partner_manager"})
    with tenant_scope(world.a.tenant):
        statuses = dict(Invitation.objects.values_list("role", "revoked_at"))
    assert statuses["executive"] is not None
    assert statuses["partner_manager"] is None
    assert len(mailoutbox) == 2


# --- Changing roles -------------------------------------------------------------------------------


def test_admin_changes_a_role_inline_with_htmx(client, world):
    target = world.a.memberships["executive"]
    client = signed_in(client, world.a.users["admin"])
    edit_row = client.get(edit_url(target), **HTMX)
    assert edit_row.status_code == 200
    assert 'name="role"' in edit_row.content.decode()
    assert "<html" not in edit_row.content.decode()
    response = client.post(edit_url(target), {"role": "partner_manager"}, **HTMX)
    assert response.status_code == 200
    body = response.content.decode()
    assert "<html" not in body
    assert "Partner manager" in body and "Role updated." in body
    assert membership_of(world.a.tenant, target.pk).role == "partner_manager"
    with tenant_scope(world.a.tenant):
        event = AuditEvent.objects.get(verb="membership.role_changed")
    assert event.changes == {"role": ["executive", "partner_manager"]}
    assert event.actor == world.a.users["admin"]


def test_cancelling_an_inline_edit_returns_the_plain_row(client, world):
    target = world.a.memberships["executive"]
    response = signed_in(client, world.a.users["admin"]).get(edit_url(target), {"view": "row"}, **HTMX)
    assert f'id="member-{target.pk}"' in response.content.decode()
    assert "Change role" in response.content.decode()


def test_role_change_without_htmx_uses_a_page_and_redirects_back(client, world):
    target = world.a.memberships["executive"]
    client = signed_in(client, world.a.users["admin"])
    page = client.get(edit_url(target))
    assert page.status_code == 200
    assert "<html" in page.content.decode()
    response = client.post(edit_url(target), {"role": "partner_admin", "partner": world.a.partners[1].pk})
    assert response.status_code == 302
    changed = membership_of(world.a.tenant, target.pk)
    assert (changed.role, changed.partner_id) == ("partner_admin", world.a.partners[1].pk)
    assert "is now Partner admin" in client.get(PEOPLE).content.decode()


def test_changing_to_an_internal_role_drops_the_partner(client, world):
    target = world.a.memberships["partner_member"]
    signed_in(client, world.a.users["admin"]).post(
        edit_url(target), {"role": "executive", "partner": world.a.partners[0].pk}
    )
    changed = membership_of(world.a.tenant, target.pk)
    assert (changed.role, changed.partner_id) == ("executive", None)


def test_a_partner_role_without_a_partner_is_refused_with_a_message(client, world):
    target = world.a.memberships["executive"]
    response = signed_in(client, world.a.users["admin"]).post(edit_url(target), {"role": "partner_member"}, **HTMX)
    assert response.status_code == 200
    assert "Choose the partner this person works for." in response.content.decode()
    assert membership_of(world.a.tenant, target.pk).role == "executive"


def test_bad_role_on_change_is_a_form_error_not_a_crash(client, world):
    target = world.a.memberships["executive"]
    response = signed_in(client, world.a.users["admin"]).post(edit_url(target), {"role": "root"})
    assert response.status_code == 200
    assert "You cannot give people this role." in response.content.decode()


def test_demoting_the_last_admin_is_refused_with_a_clear_message(client, world):
    admin = world.a.memberships["admin"]
    client = signed_in(client, world.a.users["admin"])
    response = client.post(edit_url(admin), {"role": "executive"}, **HTMX)
    assert response.status_code == 200
    assert "A workspace needs at least one administrator" in response.content.decode()
    assert membership_of(world.a.tenant, admin.pk).role == "admin"
    response = client.post(edit_url(admin), {"role": "executive"})
    assert "A workspace needs at least one administrator" in response.content.decode()
    assert "membership.role_changed" not in audit_verbs(world.a.tenant)


def test_an_admin_may_step_down_when_another_admin_remains(client, world):
    with tenant_scope(world.a.tenant):
        MembershipFactory(tenant=world.a.tenant, role=Role.ADMIN)
    admin = world.a.memberships["admin"]
    response = signed_in(client, world.a.users["admin"]).post(edit_url(admin), {"role": "executive"}, **HTMX)
    # They can no longer manage people: the browser is sent to the start page.
    assert response.status_code == 200
    assert response["HX-Redirect"] == reverse("home")
    assert membership_of(world.a.tenant, admin.pk).role == "executive"


def test_partner_admin_changes_a_colleague_between_partner_roles(client, world):
    colleague = world.a.memberships["partner_member"]
    client = signed_in(client, world.a.users["partner_admin"])
    response = client.post(edit_url(colleague), {"role": "partner_admin"}, **HTMX)
    assert response.status_code == 200
    changed = membership_of(world.a.tenant, colleague.pk)
    assert (changed.role, changed.partner_id) == ("partner_admin", world.a.partners[0].pk)
    response = client.post(edit_url(colleague), {"role": "admin"}, **HTMX)
    assert "You cannot give people this role." in response.content.decode()
    assert membership_of(world.a.tenant, colleague.pk).role == "partner_admin"


# --- Removing -------------------------------------------------------------------------------------


def test_admin_removes_a_member_inline_and_the_row_disappears(client, world):
    target = world.a.memberships["executive"]
    response = signed_in(client, world.a.users["admin"]).post(remove_url(target), **HTMX)
    assert response.status_code == 200
    assert response.content == b""
    assert membership_of(world.a.tenant, target.pk) is None
    with tenant_scope(world.a.tenant):
        event = AuditEvent.objects.get(verb="membership.removed")
    assert event.changes["user"] == ["executive@acme.test", None]


def test_removal_without_htmx_asks_for_confirmation_first(client, world):
    target = world.a.memberships["executive"]
    client = signed_in(client, world.a.users["admin"])
    confirm = client.get(remove_url(target))
    assert confirm.status_code == 200
    assert "will lose access" in confirm.content.decode()
    assert membership_of(world.a.tenant, target.pk) is not None
    response = client.post(remove_url(target))
    assert response.status_code == 302
    assert membership_of(world.a.tenant, target.pk) is None
    assert "executive@acme.test no longer has access" in client.get(PEOPLE).content.decode()


def test_removing_the_last_admin_is_refused_with_a_clear_message(client, world):
    admin = world.a.memberships["admin"]
    client = signed_in(client, world.a.users["admin"])
    response = client.post(remove_url(admin), **HTMX)
    assert response.status_code == 200
    assert "A workspace needs at least one administrator" in response.content.decode()
    response = client.post(remove_url(admin))
    assert response.status_code == 200
    assert "A workspace needs at least one administrator" in response.content.decode()
    assert membership_of(world.a.tenant, admin.pk) is not None


def test_partner_admin_removes_a_colleague_of_their_own_partner(client, world):
    colleague = world.a.memberships["partner_member"]
    response = signed_in(client, world.a.users["partner_admin"]).post(remove_url(colleague), **HTMX)
    assert response.status_code == 200
    assert membership_of(world.a.tenant, colleague.pk) is None


@pytest.mark.parametrize("target", ["other_partner_admin", "admin", "executive"])
def test_partner_admin_gets_404_for_anyone_outside_their_partner(client, world, target):
    membership = world.a.memberships[target]
    client = signed_in(client, world.a.users["partner_admin"])
    assert client.get(edit_url(membership)).status_code == 404
    assert client.post(edit_url(membership), {"role": "partner_member"}).status_code == 404
    assert client.post(remove_url(membership)).status_code == 404
    assert membership_of(world.a.tenant, membership.pk) is not None


def test_another_tenants_membership_ids_answer_404(client, world):
    foreign = world.b.memberships["executive"]
    client = signed_in(client, world.a.users["admin"])
    assert client.get(edit_url(foreign)).status_code == 404
    assert client.post(edit_url(foreign), {"role": "admin"}).status_code == 404
    assert client.post(remove_url(foreign)).status_code == 404
    assert client.post(remove_url(foreign), **HTMX).status_code == 404
    assert membership_of(world.b.tenant, foreign.pk).role == "executive"
    assert audit_verbs(world.b.tenant) == ["api_key.created", "api_key.created"]


def test_get_never_changes_anything(client, world):
    target = world.a.memberships["executive"]
    client = signed_in(client, world.a.users["admin"])
    client.get(remove_url(target))
    client.get(edit_url(target), {"role": "admin"})
    assert membership_of(world.a.tenant, target.pk).role == "executive"


def test_partner_admin_cannot_replace_an_invitation_an_administrator_sent(client, world):
    admin_client = type(client)()
    admin_client.force_login(world.a.users["admin"])
    admin_client.post(INVITE, {"email": "wanted@example.test", "role": "executive"})
    response = signed_in(client, world.a.users["partner_admin"]).post(
        INVITE, {"email": "wanted@example.test", "role": "partner_member"}
    )
    assert response.status_code == 200
    assert "already has an open invitation from a workspace administrator" in response.content.decode()
    with tenant_scope(world.a.tenant):
        invitation = Invitation.objects.get(email="wanted@example.test")
    assert invitation.is_pending and invitation.role == "executive"
