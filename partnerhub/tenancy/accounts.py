"""django-allauth adapter: sign-up is by invitation only."""

from allauth.account.adapter import DefaultAccountAdapter


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request) -> bool:
        # Accounts are created by accepting an invitation (see tenancy.views.invitation_accept),
        # which proves the email address; there is no public sign-up.
        return False
