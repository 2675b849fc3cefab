"""Management commands as entry points: each one runs inside exactly one tenant scope."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from partnerhub.tenancy.context import tenant_scope
from partnerhub.tenancy.models import Tenant


class TenantCommand(BaseCommand):
    """A command that works on one tenant, named by ``--tenant <slug>``.

    The scope is opened around ``handle_tenant`` and closed afterwards, like a request or a task.
    """

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, metavar="SLUG", help="The tenant's slug.")
        self.add_tenant_arguments(parser)

    def add_tenant_arguments(self, parser) -> None:
        """Extra arguments of the concrete command."""

    def handle(self, *args, tenant: str, **options):
        found = Tenant.objects.filter(slug=tenant).first()
        if found is None:
            raise CommandError(f"No tenant with slug “{tenant}”.")
        with tenant_scope(found):
            return self.handle_tenant(found, *args, **options)

    def handle_tenant(self, tenant: Tenant, *args, **options):
        raise NotImplementedError
