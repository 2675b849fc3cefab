"""Import a large deal file (a CRM export of hundreds of thousands of deals) into a file data source.

For files beyond what the upload page takes; PostgreSQL only. The file is a UTF-8 CSV in the deal
upload template's columns. Every problem is printed by row and column and nothing is written; a
clean file is upserted, its deal metrics derived, and one audit event recorded.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError
from django.db import connection

from partnerhub.integrations.deal_copy import COLUMNS, deals_file_import
from partnerhub.integrations.source_models import DataSource, SourceKind
from partnerhub.tenancy.management.base import TenantCommand


class Command(TenantCommand):
    help = "Import a large CSV file of deals into a tenant's file data source (PostgreSQL)."

    def add_tenant_arguments(self, parser) -> None:
        parser.add_argument("path", help=f"A UTF-8 CSV file with the columns {', '.join(COLUMNS)}.")
        parser.add_argument("--source", required=True, help="The file data source's name or id.")

    def handle_tenant(self, tenant, *args, path: str, source: str, **options):
        if connection.vendor != "postgresql":
            raise CommandError("import_deals needs PostgreSQL; on SQLite upload deal files on the Uploads page.")
        sources = DataSource.objects.filter(kind=SourceKind.FILE)
        found = sources.filter(pk=int(source)).first() if source.isdigit() else sources.filter(name=source).first()
        if found is None:
            raise CommandError(f"{tenant.name} has no file data source “{source}”.")
        try:
            with open(path, "rb") as file:
                result = deals_file_import(file=file, source=found, name=path.rsplit("/", 1)[-1])
        except OSError as error:
            raise CommandError(f"Cannot read {path}: {error.strerror or error}.") from error
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from error
        if result.errors:
            for problem in result.errors:
                where = f"row {problem.row}" if problem.row else "file"
                column = f", {problem.column}" if problem.column else ""
                self.stderr.write(f"{where}{column}: {problem.message}")
            raise CommandError(f"{len(result.errors)} problem(s) found; nothing was imported.")
        self.stdout.write(
            f"{result.rows:,} deals read: {result.created:,} created, {result.updated:,} updated, "
            f"{result.unchanged:,} unchanged, {result.unmatched:,} without a partner yet; "
            f"{result.observations_written:,} observations recorded."
        )
