"""Data-health pages: the program's, one partner's, and the review of a suspect value."""

from django.urls import path

from scorecards import health_views as views

urlpatterns = [
    path("data-health/", views.data_health, name="data_health"),
    path("data-health/checks/<int:pk>/review/", views.check_review_page, name="check_review"),
    path("partners/<int:pk>/data-health/", views.partner_data_health, name="partner_data_health"),
]
