"""Pages for corrections and appeals: the partner's data and requests, the queue, evidence files."""

from django.urls import path

from scorecards import correction_views as views

urlpatterns = [
    path("portal/data/", views.portal_data, name="portal_data"),
    path("portal/data/values/<int:pk>/correct/", views.correction_new, name="correction_new"),
    path("portal/data/scores/<int:pk>/appeal/", views.appeal_new, name="appeal_new"),
    path("portal/requests/", views.portal_requests, name="correction_portal_requests"),
    path("portal/requests/<int:pk>/withdraw/", views.request_withdraw, name="correction_withdraw"),
    path("corrections/", views.correction_queue, name="correction_queue"),
    path("corrections/<int:pk>/decide/", views.correction_decide, name="correction_decide"),
    path("corrections/<int:pk>/evidence/", views.correction_evidence, name="correction_evidence"),
]
