"""`migrate`, run as the schema owner even in processes that assume the application role."""

from django.core.management.commands.migrate import Command as DjangoMigrateCommand

from partnerhub.tenancy import rls


class Command(DjangoMigrateCommand):
    def handle(self, *args, **options):
        rls.release_app_role()
        return super().handle(*args, **options)
