"""Pages for action items and remediation plans, and the partner portal's actions."""

from django.urls import path

from actions.views import items, plans, portal

urlpatterns = [
    path("actions/", items.action_list, name="action_list"),
    path("actions/mine/", items.my_actions, name="action_mine"),
    path("actions/board/", items.action_board, name="action_board"),
    path("actions/new/", items.action_create, name="action_create"),
    path("actions/<int:pk>/", items.action_detail, name="action_detail"),
    path("actions/<int:pk>/edit/", items.action_edit, name="action_edit"),
    path("actions/<int:pk>/comment/", items.action_comment, name="action_comment"),
    path("actions/<int:pk>/progress/", items.action_progress, name="action_progress"),
    path("actions/<int:pk>/move/", items.action_move, name="action_move"),
    path("actions/<int:pk>/escalate/", items.action_escalate, name="action_escalate"),
    path("remediation/", plans.plan_list, name="plan_list"),
    path("remediation/<int:pk>/", plans.plan_detail, name="plan_detail"),
    path("remediation/<int:pk>/activate/", plans.plan_activate, name="plan_activate"),
    path("remediation/<int:pk>/milestones/", plans.plan_milestone_add, name="plan_milestone_add"),
    path("remediation/<int:pk>/checkpoints/", plans.plan_checkpoint_add, name="plan_checkpoint_add"),
    path("remediation/<int:pk>/close/", plans.plan_close, name="plan_close"),
    path("portal/actions/", portal.portal_actions, name="portal_actions"),
    path("portal/actions/<int:pk>/", portal.portal_action_detail, name="portal_action_detail"),
    path("portal/actions/<int:pk>/edit/", portal.portal_action_edit, name="portal_action_edit"),
    path("portal/actions/<int:pk>/comment/", portal.portal_action_comment, name="portal_action_comment"),
    path("portal/actions/<int:pk>/progress/", portal.portal_action_progress, name="portal_action_progress"),
    path("portal/actions/<int:pk>/move/", portal.portal_action_move, name="portal_action_move"),
]
