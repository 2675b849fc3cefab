from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from partnerhub import views
from partnerhub.api import router

admin.site.site_header = "PartnerHub support"
admin.site.site_title = "PartnerHub support"

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/", include("allauth.urls")),
    path("", include("partnerhub.tenancy.urls")),
    path("", include("partnerhub.partners.urls")),
    path("", include("scorecards.urls")),
    path("", include("partnerhub.integrations.urls")),
    path("", include("reviews.settings_urls")),
    path("", include("reviews.urls")),
    path("", include("actions.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include(router.urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api_schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api_schema"), name="api_docs"),
]

handler403 = "partnerhub.errors.permission_denied"
handler404 = "partnerhub.errors.page_not_found"
handler500 = "partnerhub.errors.server_error"
