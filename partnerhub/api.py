"""The REST API router: one router under /api/v1/ for every app."""

from rest_framework.routers import DefaultRouter

from actions.api.views import ActionItemViewSet, RemediationPlanViewSet
from partnerhub.integrations.api.views import DataSourceViewSet, DealViewSet, SyncRunViewSet
from partnerhub.partners.api.views import PartnerViewSet
from reviews.api.prompts import CollaborationPromptViewSet
from reviews.api.views import CadenceRuleViewSet, ReviewCycleViewSet, ReviewViewSet
from scorecards.api.corrections import CorrectionRequestViewSet
from scorecards.api.scores import ScoreViewSet, SegmentBenchmarkViewSet
from scorecards.api.views import (
    MetricViewSet,
    ObservationViewSet,
    ScorecardItemViewSet,
    ScorecardVersionViewSet,
    ScorecardViewSet,
)

router = DefaultRouter()
router.register("partners", PartnerViewSet, basename="partner")
router.register("scores", ScoreViewSet, basename="score")
router.register("benchmarks", SegmentBenchmarkViewSet, basename="benchmark")
router.register("metrics", MetricViewSet, basename="metric")
router.register("scorecards", ScorecardViewSet, basename="scorecard")
router.register("scorecard-versions", ScorecardVersionViewSet, basename="scorecard-version")
router.register("scorecard-items", ScorecardItemViewSet, basename="scorecard-item")
router.register("observations", ObservationViewSet, basename="observation")
router.register("deals", DealViewSet, basename="deal")
router.register("data-sources", DataSourceViewSet, basename="data-source")
router.register("sync-runs", SyncRunViewSet, basename="sync-run")
router.register("corrections", CorrectionRequestViewSet, basename="correction")
router.register("cadence-rules", CadenceRuleViewSet, basename="cadence-rule")
router.register("collaboration-prompts", CollaborationPromptViewSet, basename="collaboration-prompt")
router.register("review-cycles", ReviewCycleViewSet, basename="review-cycle")
router.register("reviews", ReviewViewSet, basename="review")
router.register("action-items", ActionItemViewSet, basename="action-item")
router.register("remediation-plans", RemediationPlanViewSet, basename="remediation-plan")
