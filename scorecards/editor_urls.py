"""Pages where administrators edit scorecard versions and preview their effect."""

from django.urls import path

from scorecards import editor_views as views

urlpatterns = [
    path("scorecards/editor/", views.editor_index, name="scorecard_editor"),
    path("scorecards/editor/new/", views.scorecard_new, name="scorecard_editor_new"),
    path("scorecards/editor/versions/<int:pk>/", views.version_detail, name="scorecard_editor_version"),
    path("scorecards/editor/versions/<int:pk>/new-draft/", views.draft_new, name="scorecard_editor_new_draft"),
    path("scorecards/editor/versions/<int:pk>/settings/", views.version_settings, name="scorecard_editor_settings"),
    path("scorecards/editor/versions/<int:pk>/items/add/", views.item_new, name="scorecard_editor_item_add"),
    path(
        "scorecards/editor/versions/<int:pk>/items/weights/",
        views.pending_weights,
        name="scorecard_editor_pending_weights",
    ),
    path("scorecards/editor/items/<int:pk>/edit/", views.item_edit, name="scorecard_editor_item_edit"),
    path("scorecards/editor/items/<int:pk>/remove/", views.item_delete, name="scorecard_editor_item_remove"),
    path("scorecards/editor/versions/<int:pk>/propose/", views.version_propose_view, name="scorecard_editor_propose"),
    path(
        "scorecards/editor/versions/<int:pk>/withdraw/", views.version_withdraw_view, name="scorecard_editor_withdraw"
    ),
    path("scorecards/editor/versions/<int:pk>/approve/", views.version_approve_view, name="scorecard_editor_approve"),
    path(
        "scorecards/editor/versions/<int:pk>/activate/", views.version_activate_view, name="scorecard_editor_activate"
    ),
    path("scorecards/editor/versions/<int:pk>/discard/", views.version_discard_view, name="scorecard_editor_discard"),
    path("scorecards/editor/versions/<int:pk>/preview/", views.version_preview, name="scorecard_editor_preview"),
]
