"""The REST API router: one router under /api/v1/ for every app."""

from rest_framework.routers import DefaultRouter

from partnerhub.partners.api.views import PartnerViewSet

router = DefaultRouter()
router.register("partners", PartnerViewSet, basename="partner")
