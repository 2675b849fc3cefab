"""Accounts: allauth pages in our layout, invite-only sign-up, sign-in limits, two-factor
authentication and its requirement for administrators, workspace settings and switching."""

from __future__ import annotations

import re
import time

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, generate_totp_secret, hotp_value
from django.urls import reverse

from partnerhub.tenancy.context import tenant_scope
from partnerhub.tenancy.middleware import SESSION_TENANT_KEY
from partnerhub.tenancy.models import AuditEvent, Tenant, User
from partnerhub.tenancy.roles import Role
from tests.factories import MembershipFactory
from tests.world import PASSWORD

LOGIN = reverse("account_login")
PEOPLE = reverse("member_list")
SETTINGS = reverse("workspace_settings")
SWITCH = reverse("workspace_switch")
ACTIVATE_TOTP = reverse("mfa_activate_totp")


def sign_in(client, user, password=PASSWORD):
    return client.post(LOGIN, {"login": user.email, "password": password})


def current_code(secret: str) -> str:
    return format_hotp_value(hotp_value(secret, int(time.time()) // 30))


def require_mfa(tenant):
    Tenant.objects.filter(pk=tenant.pk).update(require_mfa_for_admins=True)


# --- allauth pages in the portal layout -----------------------------------------------------------


def test_the_sign_in_page_uses_the_portal_layout_and_says_accounts_are_by_invitation(client, db):
    response = client.get(LOGIN)
    assert response.status_code == 200
    body = response.content.decode()
    assert "css/partnerhub.css" in body and 'class="card account-card"' in body
    assert "<title>Sign in" in body
    assert "PartnerHub is by invitation" in body
    assert "sign up" not in body.lower()
    assert reverse("account_reset_password") in body


def test_signing_in_with_the_right_password_opens_the_portal(client, world):
    response = sign_in(client, world.a.users["admin"])
    assert response.status_code == 302
    assert response["Location"] == reverse("home")


def test_a_wrong_password_is_a_clear_form_error(client, world):
    response = sign_in(client, world.a.users["admin"], password="wrong-password")
    assert response.status_code == 200
    assert "not correct" in response.content.decode()
    assert 'class="form-errors"' in response.content.decode()


def test_sign_up_explains_that_accounts_are_by_invitation(client, db):
    page = client.get(reverse("account_signup"))
    assert page.status_code == 200
    body = page.content.decode()
    assert "Accounts are by invitation" in body
    assert 'name="password1"' not in body
    posted = client.post(
        reverse("account_signup"), {"email": "x@example.test", "password1": PASSWORD, "password2": PASSWORD}
    )
    assert posted.status_code == 200
    assert not User.objects.filter(email="x@example.test").exists()


def test_password_reset_from_request_to_new_password(client, world, mailoutbox):
    page = client.get(reverse("account_reset_password"))
    assert page.status_code == 200 and "account-card" in page.content.decode()
    response = client.post(reverse("account_reset_password"), {"email": "admin@acme.test"})
    assert response.status_code == 302
    done = client.get(response["Location"])
    assert done.status_code == 200 and "account-card" in done.content.decode()
    assert len(mailoutbox) == 1
    link = re.search(r"https?://[^/\s]+(/accounts/password/reset/key/\S+/)", mailoutbox[0].body).group(1)
    form_page = client.get(link, follow=True)
    assert form_page.status_code == 200
    assert 'name="password1"' in form_page.content.decode()
    new_password = "another-long-passphrase"
    form_url = form_page.redirect_chain[-1][0] if form_page.redirect_chain else link
    changed = client.post(form_url, {"password1": new_password, "password2": new_password}, follow=True)
    assert changed.status_code == 200
    assert "Your password is now changed." in changed.content.decode()
    assert User.objects.get(email="admin@acme.test").check_password(new_password)


def test_an_unusable_reset_link_says_so(client, db):
    response = client.get("/accounts/password/reset/key/x-y/", follow=True)
    assert response.status_code == 200
    assert "Bad Token" in response.content.decode()


def test_account_pages_for_signed_in_members_use_the_portal_shell(client, world):
    client.force_login(world.a.users["admin"])
    for name in ("account_email", "account_logout", "mfa_index", "account_change_password"):
        response = client.get(reverse(name))
        assert response.status_code == 200, name
        body = response.content.decode()
        assert 'class="sidebar"' in body, name
        assert "account-page" in body, name


def test_signing_out_ends_the_session(client, world):
    client.force_login(world.a.users["admin"])
    response = client.post(reverse("account_logout"))
    assert response.status_code == 302
    assert "_auth_user_id" not in client.session


# --- Sign-in limits -------------------------------------------------------------------------------


def test_repeated_failed_sign_ins_lock_the_account_then_end_in_429(client, world):
    admin = world.a.users["admin"]
    # Five wrong passwords for one account (LOGIN_RATE_LIMIT "5/5m/key"): each a plain refusal.
    for _ in range(5):
        response = sign_in(client, admin, password="wrong-password")
        assert response.status_code == 200
        assert "not correct" in response.content.decode()
    # Then the account is locked for a while: even the right password is refused, with the reason.
    locked = sign_in(client, admin)
    assert locked.status_code == 200
    assert "Too many failed login attempts" in locked.content.decode()
    assert "_auth_user_id" not in client.session
    # Whoever keeps going from the same address is cut off entirely (login "30/m/ip"): HTTP 429.
    statuses = [sign_in(client, admin, password="wrong-password").status_code for _ in range(30)]
    assert statuses[-1] == 429
    assert set(statuses[: statuses.index(429)]) == {200}
    page = sign_in(client, admin, password="wrong-password")
    assert page.status_code == 429
    body = page.content.decode()
    assert "Too many attempts" in body and "css/partnerhub.css" in body
    assert reverse("account_reset_password") in body


def test_the_lock_of_one_account_does_not_lock_another(client, world):
    for _ in range(6):
        sign_in(client, world.a.users["admin"], password="wrong-password")
    response = sign_in(client, world.a.users["executive"])
    assert response.status_code == 302


# --- Two-factor authentication --------------------------------------------------------------------


def test_admins_of_a_workspace_requiring_mfa_must_set_up_an_authenticator_first(client, world):
    require_mfa(world.a.tenant)
    admin = world.a.users["admin"]
    assert sign_in(client, admin).status_code == 302

    blocked = client.get(PEOPLE)
    assert blocked.status_code == 302
    assert blocked["Location"] == f"{ACTIVATE_TOTP}?required=1"
    # allauth asks for the password again before adding an authenticator, then comes back.
    confirm = client.get(blocked["Location"])
    assert confirm["Location"].startswith(reverse("account_reauthenticate"))
    reauthenticate_page = client.get(confirm["Location"])
    assert reauthenticate_page.status_code == 200 and "account-page" in reauthenticate_page.content.decode()
    back = client.post(confirm["Location"], {"password": PASSWORD})
    assert back["Location"] == blocked["Location"]
    page = client.get(back["Location"])
    assert page.status_code == 200
    assert "requires administrators to use two-factor authentication" in page.content.decode()

    secret = client.session["mfa.totp.secret"]
    wrong = client.post(ACTIVATE_TOTP, {"code": "000000" if current_code(secret) != "000000" else "111111"})
    assert wrong.status_code == 200
    assert "Incorrect code" in wrong.content.decode()
    assert not Authenticator.objects.filter(user=admin).exists()

    activated = client.post(ACTIVATE_TOTP, {"code": current_code(secret)})
    assert activated.status_code == 302
    assert Authenticator.objects.filter(user=admin, type=Authenticator.Type.TOTP).exists()
    assert client.get(PEOPLE).status_code == 200


def test_an_admin_with_an_unverified_address_is_told_to_verify_it_first(client, world):
    from allauth.account.models import EmailAddress

    admin = world.a.users["admin"]
    EmailAddress.objects.create(user=admin, email=admin.email, verified=False, primary=True)
    require_mfa(world.a.tenant)
    client.force_login(admin)
    response = client.get(PEOPLE, follow=True)
    # allauth will not add an authenticator to an account with an unverified address; the person
    # lands on the two-factor page with the reason, and the email page is one click away.
    assert response.redirect_chain[-1][0] == reverse("mfa_index")
    body = response.content.decode()
    assert "verified your email address" in body
    assert reverse("account_email") in body


def test_an_admin_with_an_authenticator_gets_through(client, world):
    require_mfa(world.a.tenant)
    TOTP.activate(world.a.users["admin"], generate_totp_secret())
    client.force_login(world.a.users["admin"])
    assert client.get(PEOPLE).status_code == 200


def test_turning_the_authenticator_off_warns_an_admin_whose_workspace_requires_it(client, world):
    require_mfa(world.a.tenant)
    TOTP.activate(world.a.users["admin"], generate_totp_secret())
    client.force_login(world.a.users["admin"])
    confirm = client.get(reverse("mfa_deactivate_totp"))
    client.post(confirm["Location"], {"password": PASSWORD})
    page = client.get(reverse("mfa_deactivate_totp"))
    assert page.status_code == 200
    assert "Acme requires administrators to use two-factor authentication" in page.content.decode()


@pytest.mark.parametrize("role", ["partner_manager", "executive", "partner_admin", "partner_member"])
def test_other_roles_are_not_sent_to_set_up_an_authenticator(client, world, role):
    require_mfa(world.a.tenant)
    client.force_login(world.a.users[role])
    response = client.get(reverse("home"))
    assert ACTIVATE_TOTP not in response.get("Location", "")
    if role == "partner_admin":
        assert client.get(PEOPLE).status_code == 200


def test_admins_of_a_workspace_without_the_requirement_are_not_redirected(client, world):
    client.force_login(world.a.users["admin"])
    assert client.get(PEOPLE).status_code == 200


def test_signing_in_with_an_authenticator_asks_for_a_code(client, world):
    admin = world.a.users["admin"]
    secret = generate_totp_secret()
    TOTP.activate(admin, secret)
    response = sign_in(client, admin)
    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_authenticate")
    page = client.get(response["Location"])
    assert page.status_code == 200 and "account-card" in page.content.decode()
    assert "_auth_user_id" not in client.session
    done = client.post(reverse("mfa_authenticate"), {"code": current_code(secret)})
    assert done.status_code == 302
    assert int(client.session["_auth_user_id"]) == admin.pk


# --- Workspace settings ---------------------------------------------------------------------------


def test_admin_turns_on_the_mfa_requirement_and_it_is_audited(client, world):
    client.force_login(world.a.users["admin"])
    page = client.get(SETTINGS)
    assert page.status_code == 200
    assert "You have not set up an authenticator app yet" in page.content.decode()
    data = {
        "name": "Acme Corp",
        "fiscal_year_start_month": "4",
        "size_measure_label": "Certified engineers",
        "require_mfa_for_admins": "on",
        "suspect_values_count": "on",
    }
    response = client.post(SETTINGS, data)
    assert response.status_code == 302
    tenant = Tenant.objects.get(pk=world.a.tenant.pk)
    assert (tenant.name, tenant.fiscal_year_start_month, tenant.size_measure_label) == (
        "Acme Corp",
        4,
        "Certified engineers",
    )
    assert tenant.require_mfa_for_admins
    with tenant_scope(world.a.tenant):
        event = AuditEvent.objects.get(verb="tenant.updated")
    assert event.changes == {
        "fiscal_year_start_month": [1, 4],
        "name": ["Acme", "Acme Corp"],
        "require_mfa_for_admins": [False, True],
        "size_measure_label": ["Sales reps", "Certified engineers"],
    }
    # From now on the admin must set up an authenticator; the other workspace is unaffected.
    assert client.get(PEOPLE)["Location"] == f"{ACTIVATE_TOTP}?required=1"
    assert not Tenant.objects.get(pk=world.b.tenant.pk).require_mfa_for_admins


def test_saving_unchanged_settings_writes_no_audit_event(client, world):
    client.force_login(world.a.users["admin"])
    data = {
        "name": "Acme",
        "fiscal_year_start_month": "1",
        "size_measure_label": "Sales reps",
        "suspect_values_count": "on",
    }
    assert client.post(SETTINGS, data).status_code == 302
    with tenant_scope(world.a.tenant):
        assert not AuditEvent.objects.filter(verb="tenant.updated").exists()


def test_admin_keeps_suspect_values_out_of_scores_until_reviewed(client, world):
    client.force_login(world.a.users["admin"])
    assert "Suspect values count until reviewed" in client.get(SETTINGS).content.decode()
    data = {"name": "Acme", "fiscal_year_start_month": "1", "size_measure_label": "Sales reps"}
    assert client.post(SETTINGS, data).status_code == 302
    assert not Tenant.objects.get(pk=world.a.tenant.pk).suspect_values_count
    with tenant_scope(world.a.tenant):
        event = AuditEvent.objects.get(verb="tenant.updated")
    assert event.changes == {"suspect_values_count": [True, False]}


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"name": "", "fiscal_year_start_month": "1", "size_measure_label": "Reps"}, "name", "Give the workspace"),
        ({"name": "A", "fiscal_year_start_month": "13", "size_measure_label": "Reps"}, "fiscal_year_start_month", ""),
        ({"name": "A", "fiscal_year_start_month": "x", "size_measure_label": "Reps"}, "fiscal_year_start_month", ""),
        ({"name": "A", "fiscal_year_start_month": "1", "size_measure_label": ""}, "size_measure_label", "Say what"),
        ({"name": "A" * 201, "fiscal_year_start_month": "1", "size_measure_label": "Reps"}, "name", "at most 200"),
    ],
)
def test_bad_workspace_settings_are_explained(client, world, data, field, message):
    client.force_login(world.a.users["admin"])
    response = client.post(SETTINGS, data)
    assert response.status_code == 200
    assert any(message in error for error in response.context["form"].errors[field])
    assert Tenant.objects.get(pk=world.a.tenant.pk).name == "Acme"


@pytest.mark.parametrize("role", ["partner_manager", "executive", "partner_admin", "partner_member"])
def test_only_admins_may_change_workspace_settings(client, world, role):
    client.force_login(world.a.users[role])
    assert client.get(SETTINGS).status_code == 403
    data = {"name": "Hijacked", "fiscal_year_start_month": "1", "size_measure_label": "x"}
    assert client.post(SETTINGS, data).status_code == 403
    assert Tenant.objects.get(pk=world.a.tenant.pk).name == "Acme"


# --- Workspace switcher ---------------------------------------------------------------------------


@pytest.fixture
def two_workspace_admin(world):
    """acme's admin, also an admin of globex."""
    user = world.a.users["admin"]
    with tenant_scope(world.b.tenant):
        MembershipFactory(tenant=world.b.tenant, user=user, role=Role.ADMIN)
    return user


def test_switching_to_another_of_ones_workspaces_shows_that_workspace(client, world, two_workspace_admin):
    client.force_login(two_workspace_admin)
    before = client.get(PEOPLE)
    assert before.context["request"].tenant == world.a.tenant
    response = client.post(SWITCH, {"tenant": world.b.tenant.pk})
    assert response.status_code == 302 and response["Location"] == reverse("home")
    assert client.session[SESSION_TENANT_KEY] == world.b.tenant.pk

    people = client.get(PEOPLE)
    assert people.context["request"].tenant == world.b.tenant
    emails = {m.user.email for m in people.context["members"]}
    assert "executive@globex.test" in emails and "executive@acme.test" not in emails
    keys = client.get(reverse("api_key_list")).context["keys"]
    assert {key.tenant_id for key in keys} == {world.b.tenant.pk}
    events = client.get(reverse("audit_list")).context["rows"]
    assert {event.tenant_id for event, _ in events} == {world.b.tenant.pk}
    assert "<title>People · Globex" in people.content.decode()


def test_switching_to_a_workspace_one_does_not_belong_to_is_a_404(client, world):
    client.force_login(world.a.users["admin"])
    client.get(PEOPLE)
    response = client.post(SWITCH, {"tenant": world.b.tenant.pk})
    assert response.status_code == 404
    assert client.session[SESSION_TENANT_KEY] == world.a.tenant.pk
    assert client.get(PEOPLE).context["request"].tenant == world.a.tenant


@pytest.mark.parametrize("value", ["", "abc", "999999", "1; DROP TABLE"])
def test_switching_with_a_bad_workspace_id_is_a_404(client, world, value):
    client.force_login(world.a.users["admin"])
    assert client.post(SWITCH, {"tenant": value}).status_code == 404


def test_switching_needs_a_post_and_a_signed_in_person(client, world):
    assert client.post(SWITCH, {"tenant": world.a.tenant.pk}).status_code == 302
    client.force_login(world.a.users["admin"])
    assert client.get(SWITCH).status_code == 405


def test_an_admin_who_owes_mfa_can_still_switch_workspace_but_not_use_the_api_from_the_browser(client, world):
    from tests.factories import MembershipFactory

    admin = world.a.users["admin"]
    MembershipFactory(tenant=world.b.tenant, user=admin, role="executive")
    require_mfa(world.a.tenant)
    client.force_login(admin)
    client.post(reverse("workspace_switch"), {"tenant": world.a.tenant.pk})
    api = client.get("/api/v1/partners/")
    assert api.status_code == 403 and "two-factor" in api.json()["detail"]
    switched = client.post(reverse("workspace_switch"), {"tenant": world.b.tenant.pk})
    assert switched.status_code == 302 and switched["Location"] == reverse("home")
    # In tenant b the person is an executive, and b does not require MFA.
    assert client.get(reverse("partner_list")).status_code == 200


def test_api_keys_are_not_held_by_the_mfa_requirement(world):
    from django.test import Client

    require_mfa(world.a.tenant)
    response = Client(HTTP_AUTHORIZATION=f"Api-Key {world.a.read_key[1]}").get("/api/v1/partners/")
    assert response.status_code == 200
