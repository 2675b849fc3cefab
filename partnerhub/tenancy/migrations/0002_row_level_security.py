from django.db import migrations

from partnerhub.tenancy.rls import EnableTenantRLS, GrantAppRole


class Migration(migrations.Migration):
    dependencies = [
        ("tenancy", "0001_initial"),
        ("partners", "0002_initial"),
    ]

    operations = [
        GrantAppRole(append_only=("AuditEvent",)),
        EnableTenantRLS("Membership", visible_to_own_user=True),
        EnableTenantRLS("Invitation"),
        EnableTenantRLS("ApiKey"),
        EnableTenantRLS("AuditEvent"),
    ]
