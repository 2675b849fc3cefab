from django.urls import path

from partnerhub.integrations import views

urlpatterns = [
    path("data-sources/", views.data_source_list, name="data_source_list"),
    path("data-sources/new/", views.data_source_new, name="data_source_new"),
    path("data-sources/new/<str:kind>/", views.data_source_create, name="data_source_create"),
    path("data-sources/unmatched/", views.unmatched_queue, name="unmatched_queue"),
    path("data-sources/<int:pk>/", views.data_source_detail, name="data_source_detail"),
    path("data-sources/<int:pk>/edit/", views.data_source_edit, name="data_source_edit"),
    path("data-sources/<int:pk>/test/", views.data_source_test, name="data_source_test"),
    path("data-sources/<int:pk>/sync/", views.data_source_sync, name="data_source_sync"),
    path("data-sources/<int:pk>/active/", views.data_source_active, name="data_source_active"),
    path("data-sources/<int:pk>/mappings/", views.mapping_list, name="mapping_list"),
    path("data-sources/mappings/<int:pk>/remove/", views.mapping_remove, name="mapping_remove"),
    path("data-sources/runs/<int:pk>/progress/", views.sync_run_progress, name="sync_run_progress"),
]
