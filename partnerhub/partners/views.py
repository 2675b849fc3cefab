"""Partner directory, detail, create/edit, and the partner portal home."""

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse


@login_required
def partner_list(request):
    return HttpResponse("directory")


@login_required
def portal_home(request):
    return HttpResponse("portal")
