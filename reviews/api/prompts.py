"""Collaboration prompts over the API: the questions of the collaboration-health pillar, rated 1-5 in every review.

Reading is for every internal member and API key of the workspace (partner users find none: prompts
belong to no partner). Writes are people's, and ``reviews.services.prompts`` lets administrators
only. A prompt is never deleted: ``active: false`` stops asking it and keeps the ratings it was given.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.response import Response

from partnerhub.tenancy.api.viewsets import TenantViewSet
from partnerhub.tenancy.roles import Capability
from reviews.api.views import PeopleWrite
from reviews.models import CollaborationPrompt
from reviews.services import prompts


class CollaborationPromptSerializer(serializers.ModelSerializer):
    built_in = serializers.BooleanField(read_only=True, help_text="One of the standard prompts every workspace has.")
    active = serializers.BooleanField(read_only=True, help_text="False: kept with its past ratings, not asked anymore.")

    class Meta:
        model = CollaborationPrompt
        fields = ["id", "key", "label", "help_text", "position", "built_in", "active"]
        read_only_fields = fields


class CollaborationPromptInputSerializer(serializers.Serializer):
    """A prompt's words and place; the services trim, require and bound the text."""

    key = serializers.CharField(
        required=False, allow_blank=True, max_length=100, help_text="On creation only; made from the label when blank."
    )
    label = serializers.CharField(required=False, allow_blank=True, max_length=1000, help_text="The question.")
    help_text = serializers.CharField(required=False, allow_blank=True, max_length=1000)
    position = serializers.IntegerField(
        required=False, min_value=0, max_value=32767, help_text="Prompts are asked in this order; new ones go last."
    )
    active = serializers.BooleanField(required=False, help_text="`false` stops asking it; its ratings stay.")


@extend_schema_view(
    list=extend_schema(
        summary="List collaboration prompts",
        description="In the order they are asked, active and inactive (inactive ones keep their past ratings).",
    ),
    retrieve=extend_schema(summary="Get a collaboration prompt"),
    create=extend_schema(
        summary="Add a collaboration prompt",
        description="Administrators. Rated 1-5 in every review from the next rating on; its key is made from the "
        "label unless given, and must be new in the workspace.",
        request=CollaborationPromptInputSerializer,
        responses={201: CollaborationPromptSerializer},
        examples=[
            OpenApiExample(
                "Co-selling",
                value={"label": "Co-selling", "help_text": "How often we sell to the same customers together."},
            )
        ],
    ),
    partial_update=extend_schema(
        summary="Change a collaboration prompt",
        description="Administrators. Reword, reorder, or deactivate with `active: false` (reactivate with `true`); "
        "the key cannot change.",
        request=CollaborationPromptInputSerializer,
        responses=CollaborationPromptSerializer,
        examples=[OpenApiExample("Stop asking it", value={"active": False})],
    ),
)
class CollaborationPromptViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    TenantViewSet,
):
    """Collaboration prompts: the questions rated 1-5 in every review."""

    model = CollaborationPrompt
    serializer_class = CollaborationPromptSerializer
    permission_classes = [PeopleWrite]
    partner_access = True  # partner users find nothing: prompts belong to no partner
    read_capability = Capability.VIEW_PARTNERS
    http_method_names = ["get", "post", "patch", "head", "options"]

    def refine_queryset(self, queryset):
        return queryset.order_by("position", "pk")

    def create(self, request, *args, **kwargs):
        fields = self.validated_input(CollaborationPromptInputSerializer, partial=False)
        if not fields.pop("active", True):
            return Response(
                {"active": ["A new prompt is asked; deactivate it once it exists."]}, status=status.HTTP_400_BAD_REQUEST
            )
        prompt = prompts.prompt_create(by=request.user, **fields)
        return Response(self.get_serializer(prompt).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        prompt = self.get_object()
        fields = self.validated_input(CollaborationPromptInputSerializer, partial=True)
        if "key" in fields:
            return Response(
                {"key": ["The key cannot change: the prompt's ratings are kept under it."]},
                status=status.HTTP_400_BAD_REQUEST,
            )
        prompt = prompts.prompt_update(prompt=prompt, by=request.user, **fields)
        return Response(self.get_serializer(prompt).data)
