"""Pages for entering metric observations, uploading files of observations, deals and marketing facts, and
following recomputes."""

from django.urls import path

from scorecards import observation_views as views

urlpatterns = [
    path("observations/", views.observation_list, name="observation_list"),
    path("observations/new/", views.observation_create, name="observation_create"),
    path("observations/uploads/", views.observation_upload, name="observation_upload"),
    path("observations/uploads/template.csv", views.observation_upload_template, name="observation_upload_template"),
    path("observations/uploads/templates/<slug:kind>.<slug:fmt>", views.upload_template, name="upload_template"),
    path("observations/uploads/<int:pk>/", views.observation_upload_detail, name="observation_upload_detail"),
    path(
        "observations/uploads/<int:pk>/progress/",
        views.observation_upload_progress,
        name="observation_upload_progress",
    ),
    path("observations/uploads/<int:pk>/scores/", views.observation_upload_scores, name="observation_upload_scores"),
    path("observations/uploads/<int:pk>/commit/", views.observation_upload_commit, name="observation_upload_commit"),
    path("observations/uploads/<int:pk>/check/", views.observation_upload_recheck, name="observation_upload_recheck"),
]
