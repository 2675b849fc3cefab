from django.urls import path

from partnerhub.tenancy import views

urlpatterns = [
    path("workspace/switch/", views.workspace_switch, name="workspace_switch"),
    path("invitations/<str:token>/", views.invitation_accept, name="invitation_accept"),
    path("settings/people/", views.member_list, name="member_list"),
    path("settings/people/invite/", views.invitation_create, name="invitation_create"),
    path("settings/people/<int:pk>/", views.member_edit, name="member_edit"),
    path("settings/people/<int:pk>/remove/", views.member_remove, name="member_remove"),
    path("settings/invitations/<int:pk>/revoke/", views.invitation_revoke, name="invitation_revoke"),
    path("settings/invitations/<int:pk>/resend/", views.invitation_resend, name="invitation_resend"),
    path("settings/api-keys/", views.api_key_list, name="api_key_list"),
    path("settings/api-keys/<int:pk>/revoke/", views.api_key_revoke, name="api_key_revoke"),
    path("settings/audit/", views.audit_list, name="audit_list"),
    path("settings/workspace/", views.workspace_settings, name="workspace_settings"),
]
