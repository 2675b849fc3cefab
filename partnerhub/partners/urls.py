from django.urls import path

from partnerhub.partners import views

urlpatterns = [
    path("partners/", views.partner_list, name="partner_list"),
    path("portal/", views.portal_home, name="portal_home"),
]
