"""URLs for request-lifecycle tests: the portal's URLs plus two probe views."""

from django.db import connection
from django.http import JsonResponse
from django.urls import include, path

from partnerhub.partners.models import Partner
from partnerhub.tenancy.context import current_scope


def database_tenant() -> str | None:
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('app.tenant_id', true)")
        return cursor.fetchone()[0]


def explode(request):
    """Binds a tenant (through the middleware), touches its data, then fails."""
    list(Partner.objects.all())
    raise RuntimeError("boom")


def whoami(request):
    scope = current_scope()
    visible = []
    if scope.tenant_id:
        visible = list(Partner.all_tenants.order_by().values_list("tenant_id", flat=True).distinct())
    return JsonResponse(
        {"tenant_id": scope.tenant_id, "user_id": scope.user_id, "db_tenant": database_tenant(), "visible": visible}
    )


urlpatterns = [
    path("probe/explode/", explode),
    path("probe/whoami/", whoami),
    path("", include("partnerhub.urls")),
]
