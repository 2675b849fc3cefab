from django.urls import path

from scorecards import correction_urls, editor_urls, health_urls, observation_urls, recompute_urls, views

urlpatterns = [
    path("partners/<int:pk>/scorecard/", views.partner_scorecard_page, name="partner_scorecard"),
    path("scorecards/portfolio/", views.portfolio, name="scorecard_portfolio"),
    path("scorecards/rules/", views.scorecard_rules, name="scorecard_rules"),
    path("portal/scorecard/", views.portal_scorecard, name="portal_scorecard"),
    path("portal/how-you-are-scored/", views.portal_rules, name="portal_rules"),
    *editor_urls.urlpatterns,
    *observation_urls.urlpatterns,
    *recompute_urls.urlpatterns,
    *correction_urls.urlpatterns,
    *health_urls.urlpatterns,
]
