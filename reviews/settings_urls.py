"""Review settings pages: cadence rules and collaboration prompts."""

from django.urls import path

from reviews import settings_views as views

urlpatterns = [
    path("reviews/settings/", views.review_settings, name="review_settings"),
    path("reviews/settings/rules/", views.cadence_rule_add, name="review_settings_rule_add"),
    path("reviews/settings/rules/<int:pk>/edit/", views.cadence_rule_edit, name="review_settings_rule_edit"),
    path("reviews/settings/rules/<int:pk>/active/", views.cadence_rule_activate, name="review_settings_rule_active"),
    path("reviews/settings/rules/<int:pk>/delete/", views.cadence_rule_delete, name="review_settings_rule_delete"),
    path("reviews/settings/prompts/", views.prompt_add, name="review_settings_prompt_add"),
    path("reviews/settings/prompts/<int:pk>/edit/", views.prompt_edit, name="review_settings_prompt_edit"),
    path("reviews/settings/prompts/<int:pk>/active/", views.prompt_activate, name="review_settings_prompt_active"),
]
