from django.db import migrations

from partnerhub.tenancy.rls import EnableTenantRLS, RestrictAppRoleWrites


class Migration(migrations.Migration):
    dependencies = [
        ("scorecards", "0001_initial"),
        ("tenancy", "0002_row_level_security"),
    ]

    operations = [
        EnableTenantRLS("Metric"),
        EnableTenantRLS("Scorecard"),
        EnableTenantRLS("ScorecardVersion"),
        EnableTenantRLS("ScorecardItem"),
        EnableTenantRLS("MetricObservation"),
        EnableTenantRLS("Score"),
        EnableTenantRLS("SegmentBenchmark"),
        EnableTenantRLS("RecomputeRun"),
        # Observations are append-only: a change is a new row that the old one points to.
        RestrictAppRoleWrites("MetricObservation", updatable_columns=("superseded_by_id",)),
    ]
