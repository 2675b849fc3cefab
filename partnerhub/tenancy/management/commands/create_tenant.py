"""`create_tenant`: a new workspace and its first administrator, for operators.

The administrator either gets the password given with --password, or (the default) a one-time
link to choose one, printed here for the operator to pass on. A person who already has an account
(an administrator of another workspace, say) keeps their password and simply gains the membership.
"""

from __future__ import annotations

from allauth.account.forms import default_token_generator
from allauth.account.models import EmailAddress
from allauth.account.utils import user_pk_to_url_str
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email
from django.db import transaction
from django.urls import reverse

from partnerhub.tenancy.context import tenant_scope
from partnerhub.tenancy.models import Tenant, User
from partnerhub.tenancy.roles import Role
from partnerhub.tenancy.services import membership_create, tenant_create


def _messages(error: ValidationError) -> str:
    if hasattr(error, "error_dict"):
        return "; ".join(f"{field}: {' '.join(messages)}" for field, messages in error.message_dict.items())
    return " ".join(error.messages)


class Command(BaseCommand):
    help = "Create a workspace (tenant) and its first administrator."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="The vendor's name, e.g. “Northwind Software”.")
        parser.add_argument("--slug", required=True, help="Short unique identifier, e.g. northwind.")
        parser.add_argument("--admin-email", required=True, help="Email address of the first administrator.")
        parser.add_argument("--admin-name", default="", help="The administrator's full name.")
        parser.add_argument(
            "--password",
            help="Set this password for a new administrator account instead of printing a link to choose one.",
        )
        parser.add_argument(
            "--fiscal-year-start-month", type=int, default=1, help="Month (1-12) the fiscal year starts in."
        )

    def handle(self, *args, name, slug, admin_email, admin_name, password, fiscal_year_start_month, **options):
        email = admin_email.strip().lower()
        try:
            validate_email(email)
        except ValidationError as error:
            raise CommandError(f"--admin-email: {_messages(error)}") from error
        if Tenant.objects.filter(slug=slug).exists():
            raise CommandError(f"A workspace with the slug “{slug}” already exists.")
        user = User.objects.filter(email__iexact=email).first()
        if user is not None and password is not None:
            raise CommandError(f"{email} already has an account, whose password is left alone; drop --password.")

        try:
            with transaction.atomic():
                tenant = tenant_create(name=name, slug=slug, fiscal_year_start_month=fiscal_year_start_month)
                if user is None:
                    user = User.objects.create_user(email, password=None, full_name=admin_name.strip())
                if password is not None:
                    validate_password(password, user)
                    user.set_password(password)
                    user.save(update_fields=["password"])
                # The operator vouches for the address, so sign-in works when verification is mandatory.
                has_primary = EmailAddress.objects.filter(user=user, primary=True).exists()
                EmailAddress.objects.get_or_create(
                    user=user, email=email, defaults={"verified": True, "primary": not has_primary}
                )
                with tenant_scope(tenant):
                    membership_create(user=user, role=Role.ADMIN, by=None)
        except ValidationError as error:
            raise CommandError(_messages(error)) from error

        self.stdout.write(f"Created workspace “{tenant.name}” ({tenant.slug}) with administrator {email}.")
        if password is not None:
            self.stdout.write("They sign in with the password given.")
        elif user.has_usable_password():
            self.stdout.write("They already have an account and sign in with their own password.")
        else:
            self.stdout.write("Send them this link to choose a password (it works once, for a limited time):")
            self.stdout.write(f"  {password_set_link(user)}")


def password_set_link(user: User) -> str:
    """allauth's password-reset-from-key link, which also sets a first password."""
    path = reverse(
        "account_reset_password_from_key",
        kwargs={"uidb36": user_pk_to_url_str(user), "key": default_token_generator.make_token(user)},
    )
    return settings.SITE_URL.rstrip("/") + path
