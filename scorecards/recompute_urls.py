"""Pages that follow and start score recomputes."""

from django.urls import path

from scorecards import recompute_views

urlpatterns: list = [
    path("scorecards/recomputes/", recompute_views.recompute_list, name="recompute_list"),
    path("scorecards/recomputes/request/", recompute_views.recompute_request, name="recompute_request"),
    path("scorecards/recomputes/<int:pk>/progress/", recompute_views.recompute_progress, name="recompute_progress"),
]
