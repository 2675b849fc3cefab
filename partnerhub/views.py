"""Portal entry pages that belong to no single app."""

from django.db import connection
from django.http import JsonResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_GET

from partnerhub.tenancy.decorators import member_required


@member_required()
def home(request):
    """Send each person to where their role starts: the directory, or their partner's portal."""
    if request.membership.is_partner_user:
        return redirect("portal_home")
    return redirect("partner_list")


@require_GET
def healthz(request):
    """Liveness and database reachability for load balancers and compose health checks."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
