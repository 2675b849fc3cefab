"""Invitations: the email, accepting in every situation, and revoking or resending from the People page."""

from __future__ import annotations

import datetime
import re

import pytest
from allauth.account.models import EmailAddress
from django.urls import reverse
from django.utils import timezone

from partnerhub.tenancy.context import tenant_scope
from partnerhub.tenancy.middleware import SESSION_TENANT_KEY
from partnerhub.tenancy.models import AuditEvent, Invitation, Membership, Tenant, User
from partnerhub.tenancy.services import invitation_create
from tests.world import PASSWORD

PEOPLE = reverse("member_list")
HTMX = {"HTTP_HX_REQUEST": "true"}
NEW_PASSWORD = "a-long-and-unusual-passphrase"


def invite(tenant_world, email, role="partner_manager", partner=None, by="admin"):
    with tenant_scope(tenant_world.tenant):
        return invitation_create(email=email, role=role, partner=partner, by_membership=tenant_world.memberships[by])


def accept_url(token):
    return reverse("invitation_accept", args=[token])


def reload(tenant, invitation):
    with tenant_scope(tenant):
        return Invitation.objects.get(pk=invitation.pk)


def audit_verbs(tenant):
    with tenant_scope(tenant):
        return list(AuditEvent.objects.order_by("pk").values_list("verb", flat=True))


def link_in(message) -> str:
    match = re.search(r"https?://[^/\s]+(/invitations/\S+/)", message.body)
    assert match, message.body
    return match.group(1)


# --- The email ------------------------------------------------------------------------------------


def test_the_invitation_email_says_who_where_which_role_and_until_when(
    client, world, mailoutbox, django_capture_on_commit_callbacks
):
    client.force_login(world.a.users["admin"])
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("invitation_create"),
            {"email": "rep@partner.test", "role": "partner_admin", "partner": world.a.partners[1].pk},
        )
    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == ["rep@partner.test"]
    assert message.subject == "[PartnerHub] You are invited to Acme"
    assert "admin@acme.test" in message.body
    assert "join Acme on PartnerHub as Partner admin for Acme Partner 2" in message.body
    with tenant_scope(world.a.tenant):
        expires = Invitation.objects.get().expires_at
    assert f"{expires:%Y}" in message.body and "can be used once" in message.body
    assert link_in(message).startswith("/invitations/inv_")


def test_following_the_emailed_link_creates_the_account_and_joins_the_workspace(
    client, world, mailoutbox, django_capture_on_commit_callbacks
):
    admin_client = type(client)()
    admin_client.force_login(world.a.users["admin"])
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(reverse("invitation_create"), {"email": "New.Person@example.test", "role": "executive"})
    link = link_in(mailoutbox[0])

    page = client.get(link)
    assert page.status_code == 200
    assert "Set your name and a password" in page.content.decode()
    assert "new.person@example.test" in page.content.decode()

    response = client.post(link, {"full_name": "Nina Newman", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == reverse("home")

    user = User.objects.get(email="new.person@example.test")
    assert user.full_name == "Nina Newman"
    assert user.check_password(NEW_PASSWORD)
    address = EmailAddress.objects.get(user=user)
    assert (address.email, address.verified, address.primary) == ("new.person@example.test", True, True)
    with tenant_scope(world.a.tenant):
        membership = Membership.objects.get(user=user)
        invitation = Invitation.objects.get()
    assert membership.role == "executive"
    assert invitation.accepted_by == user and invitation.accepted_at is not None
    assert client.session[SESSION_TENANT_KEY] == world.a.tenant.pk
    assert int(client.session["_auth_user_id"]) == user.pk
    assert audit_verbs(world.a.tenant)[-2:] == ["membership.created", "invitation.accepted"]
    # The link is spent.
    assert client.get(link).status_code == 410


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"full_name": "", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}, "full_name", "Enter your name"),
        ({"full_name": "Nina", "password1": NEW_PASSWORD, "password2": "other"}, "password2", "not the same"),
        ({"full_name": "Nina", "password1": "short", "password2": "short"}, "password1", "too short"),
        ({"full_name": "Nina", "password1": "12345678901", "password2": "12345678901"}, "password1", "numeric"),
        ({"full_name": "Nina", "password1": "", "password2": ""}, "password1", "Choose a password."),
    ],
)
def test_a_new_account_needs_a_name_and_a_sound_password(client, world, data, field, message):
    _invitation, token = invite(world.a, "nina@example.test")
    response = client.post(accept_url(token), data)
    assert response.status_code == 200
    assert any(message in error for error in response.context["form"].errors[field])
    assert not User.objects.filter(email="nina@example.test").exists()
    assert "_auth_user_id" not in client.session


def test_an_existing_account_is_asked_to_sign_in_first(client, world):
    invitation, token = invite(world.a, "executive@globex.test")
    response = client.get(accept_url(token))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Sign in to accept" in body
    assert f"{reverse('account_login')}?next={accept_url(token)}" in body
    # Posting the new-account form for an address that has an account creates nothing.
    client.post(accept_url(token), {"full_name": "X", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert reload(world.a.tenant, invitation).is_pending


def test_signed_in_with_the_invited_address_confirms_and_lands_in_the_new_workspace(client, world):
    person = world.b.users["executive"]
    invitation, token = invite(world.a, person.email, role="partner_member", partner=world.a.partners[0])
    client.force_login(person)
    client.get(reverse("home"))  # the session now holds workspace b
    confirm = client.get(accept_url(token))
    assert confirm.status_code == 200
    assert "Accept and join Acme" in confirm.content.decode()
    assert reload(world.a.tenant, invitation).is_pending  # GET accepts nothing

    response = client.post(accept_url(token))
    assert response.status_code == 302
    assert response["Location"] == reverse("home")
    assert client.session[SESSION_TENANT_KEY] == world.a.tenant.pk
    with tenant_scope(world.a.tenant):
        membership = Membership.objects.get(user=person)
    assert (membership.role, membership.partner_id) == ("partner_member", world.a.partners[0].pk)
    # Membership in tenant b is untouched.
    with tenant_scope(world.b.tenant):
        assert Membership.objects.get(user=person).role == "executive"


def test_accepting_records_the_invited_address_as_verified(client, world):
    person = world.b.users["executive"]
    EmailAddress.objects.create(user=person, email=person.email, verified=False, primary=True)
    _invitation, token = invite(world.a, person.email)
    client.force_login(person)
    assert client.post(accept_url(token)).status_code == 302
    address = EmailAddress.objects.get(user=person)
    assert (address.verified, address.primary) == (True, True)


def test_signed_in_as_someone_else_explains_and_offers_to_sign_out(client, world):
    invitation, token = invite(world.a, "someone@example.test")
    client.force_login(world.b.users["admin"])
    response = client.get(accept_url(token))
    assert response.status_code == 403
    body = response.content.decode()
    assert "someone@example.test" in body and "admin@globex.test" in body
    assert reverse("account_logout") in body
    assert client.post(accept_url(token)).status_code == 403
    assert reload(world.a.tenant, invitation).is_pending


def test_someone_already_in_the_workspace_is_told_so(client, world):
    invitation, token = invite(world.a, "newcomer@example.test")
    user = User.objects.create_user("newcomer@example.test", PASSWORD)
    with tenant_scope(world.a.tenant):
        Membership.objects.create(user=user, role="executive")
    client.force_login(user)
    response = client.get(accept_url(token))
    assert response.status_code == 200
    assert "You already belong to Acme" in response.content.decode()
    assert reload(world.a.tenant, invitation).is_pending


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "inv_",
        "inv_abc_secret",
        "inv_99999_secret",
        "inv_1_",
        "phk_1_abc_def",
    ],
)
def test_malformed_or_unknown_tokens_show_a_clear_404(client, world, token):
    response = client.get(accept_url(token))
    assert response.status_code == 404
    assert "This invitation link does not work" in response.content.decode()
    assert client.post(accept_url(token), {"full_name": "x"}).status_code == 404


def test_a_token_with_another_tenants_id_finds_nothing(client, world):
    invitation, token = invite(world.a, "victim@example.test")
    forged = token.replace(f"inv_{world.a.tenant.pk}_", f"inv_{world.b.tenant.pk}_", 1)
    response = client.post(accept_url(forged), {"full_name": "X", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert response.status_code == 404
    assert not User.objects.filter(email="victim@example.test").exists()
    assert reload(world.a.tenant, invitation).is_pending


def test_expired_invitations_show_a_clear_page(client, world):
    invitation, token = invite(world.a, "late@example.test")
    with tenant_scope(world.a.tenant):
        Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - datetime.timedelta(days=1))
    response = client.get(accept_url(token))
    assert response.status_code == 410
    assert "This invitation has expired" in response.content.decode()
    response = client.post(accept_url(token), {"full_name": "X", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert response.status_code == 410
    assert not User.objects.filter(email="late@example.test").exists()


def test_revoked_invitations_show_a_clear_page(client, world):
    invitation, token = invite(world.a, "gone@example.test")
    with tenant_scope(world.a.tenant):
        Invitation.objects.filter(pk=invitation.pk).update(revoked_at=timezone.now())
    response = client.get(accept_url(token))
    assert response.status_code == 410
    assert "This invitation was withdrawn" in response.content.decode()


def test_invitations_of_a_deactivated_workspace_do_not_work(client, world):
    _invitation, token = invite(world.a, "x@example.test")
    Tenant.objects.filter(pk=world.a.tenant.pk).update(is_active=False)
    assert client.get(accept_url(token)).status_code == 404


def test_the_invitation_page_is_never_cached(client, world):
    _invitation, token = invite(world.a, "x@example.test")
    assert "no-store" in client.get(accept_url(token))["Cache-Control"]


# --- Revoking and resending -----------------------------------------------------------------------


def revoke_url(invitation):
    return reverse("invitation_revoke", args=[invitation.pk])


def resend_url(invitation):
    return reverse("invitation_resend", args=[invitation.pk])


def test_open_invitations_are_listed_with_status_and_age(client, world):
    invite(world.a, "open@example.test")
    expired, _ = invite(world.a, "old@example.test")
    with tenant_scope(world.a.tenant):
        Invitation.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - datetime.timedelta(days=1))
    client.force_login(world.a.users["admin"])
    body = client.get(PEOPLE).content.decode()
    assert "open@example.test" in body and "old@example.test" in body
    assert "badge-pending" in body and "badge-expired" in body
    assert "ago by admin@acme.test" in body


def test_admin_revokes_an_invitation_inline_and_its_link_stops_working(client, world):
    invitation, token = invite(world.a, "x@example.test")
    client.force_login(world.a.users["admin"])
    response = client.post(revoke_url(invitation), **HTMX)
    assert response.status_code == 200 and response.content == b""
    assert reload(world.a.tenant, invitation).status == "revoked"
    assert audit_verbs(world.a.tenant)[-1] == "invitation.revoked"
    anonymous = type(client)()
    assert anonymous.get(accept_url(token)).status_code == 410


def test_revoking_without_htmx_confirms_first(client, world):
    invitation, _ = invite(world.a, "x@example.test")
    client.force_login(world.a.users["admin"])
    page = client.get(revoke_url(invitation))
    assert page.status_code == 200 and "Revoke the invitation" in page.content.decode()
    assert reload(world.a.tenant, invitation).is_pending
    response = client.post(revoke_url(invitation))
    assert response.status_code == 302
    assert reload(world.a.tenant, invitation).status == "revoked"
    # Twice is harmless and says why.
    again = client.post(revoke_url(invitation))
    assert again.status_code == 200
    assert "already revoked" in again.content.decode()


def test_resending_mails_a_new_link_and_retires_the_old_one(
    client, world, mailoutbox, django_capture_on_commit_callbacks
):
    invitation, old_token = invite(world.a, "x@example.test")
    with tenant_scope(world.a.tenant):
        Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - datetime.timedelta(days=1))
    client.force_login(world.a.users["admin"])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(resend_url(invitation), **HTMX)
    assert response.status_code == 200
    assert "Sent again with a new link." in response.content.decode()
    assert reload(world.a.tenant, invitation).is_pending
    assert len(mailoutbox) == 1
    new_link = link_in(mailoutbox[0])
    assert old_token not in new_link
    assert audit_verbs(world.a.tenant)[-1] == "invitation.resent"
    anonymous = type(client)()
    assert anonymous.get(accept_url(old_token)).status_code == 404
    assert anonymous.get(new_link).status_code == 200


def test_resending_without_htmx_redirects_with_a_message(client, world, mailoutbox, django_capture_on_commit_callbacks):
    invitation, _ = invite(world.a, "x@example.test")
    client.force_login(world.a.users["admin"])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(resend_url(invitation))
    assert response.status_code == 302
    assert "was sent to x@example.test again" in client.get(PEOPLE).content.decode()
    assert len(mailoutbox) == 1


def test_a_revoked_invitation_cannot_be_resent(client, world):
    invitation, _ = invite(world.a, "x@example.test")
    client.force_login(world.a.users["admin"])
    client.post(revoke_url(invitation))
    response = client.post(resend_url(invitation), **HTMX)
    assert "cannot be sent again" in response.content.decode()


def test_partner_admin_handles_their_own_partners_invitations_only(client, world):
    own, _ = invite(world.a, "own@example.test", role="partner_member", partner=world.a.partners[0])
    other, _ = invite(world.a, "other@example.test", role="partner_member", partner=world.a.partners[1])
    internal, _ = invite(world.a, "internal@example.test", role="executive")
    client.force_login(world.a.users["partner_admin"])
    listed = {inv.email for inv in client.get(PEOPLE).context["invitations"]}
    assert listed == {"own@example.test"}
    for foreign in (other, internal):
        assert client.get(revoke_url(foreign)).status_code == 404
        assert client.post(revoke_url(foreign)).status_code == 404
        assert client.post(resend_url(foreign)).status_code == 404
        assert reload(world.a.tenant, foreign).is_pending
    assert client.post(revoke_url(own), **HTMX).status_code == 200
    assert reload(world.a.tenant, own).status == "revoked"


def test_another_tenants_invitation_ids_answer_404(client, world):
    foreign, _ = invite(world.b, "x@example.test")
    client.force_login(world.a.users["admin"])
    assert client.get(revoke_url(foreign)).status_code == 404
    assert client.post(revoke_url(foreign)).status_code == 404
    assert client.post(resend_url(foreign)).status_code == 404
    assert reload(world.b.tenant, foreign).is_pending


@pytest.mark.parametrize("role", ["partner_manager", "executive", "partner_member"])
def test_roles_without_people_rights_cannot_revoke_or_resend(client, world, role):
    invitation, _ = invite(world.a, "x@example.test", role="partner_member", partner=world.a.partners[0])
    client.force_login(world.a.users[role])
    assert client.post(revoke_url(invitation)).status_code == 403
    assert client.post(resend_url(invitation)).status_code == 403
    assert reload(world.a.tenant, invitation).is_pending


@pytest.mark.parametrize(
    "token", ["inv_99999999999999999999999_secret", "inv_0_secret", "inv_\uff19_secret", "inv_9223372036854775808_x"]
)
def test_invitation_links_naming_impossible_tenants_are_not_found(client, world, token):
    assert client.get(reverse("invitation_accept", args=[token])).status_code == 404
