from django.urls import path

from partnerhub.tenancy import views

urlpatterns = [
    path("workspace/switch/", views.workspace_switch, name="workspace_switch"),
    path("invitations/<str:token>/", views.invitation_accept, name="invitation_accept"),
    path("settings/people/", views.invitation_accept, name="member_list"),
    path("settings/api-keys/", views.invitation_accept, name="api_key_list"),
    path("settings/audit/", views.invitation_accept, name="audit_list"),
]
