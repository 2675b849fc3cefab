"""Portal entry pages that belong to no single app."""

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET


@login_required
def home(request):
    """Send each person to where their role starts: the directory, or their partner's portal."""
    membership = request.membership
    if membership is None:
        return render(request, "no_workspace.html", status=403)
    if membership.is_partner_user:
        return redirect("portal_home")
    return redirect("partner_list")


@require_GET
def healthz(request):
    """Liveness and database reachability for load balancers and compose health checks."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
