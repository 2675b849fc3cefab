from django.db import migrations

from partnerhub.tenancy.rls import EnableTenantRLS


class Migration(migrations.Migration):
    dependencies = [
        ("partners", "0002_initial"),
        ("tenancy", "0002_row_level_security"),
    ]

    operations = [
        EnableTenantRLS("PartnerType"),
        EnableTenantRLS("Partner"),
    ]
