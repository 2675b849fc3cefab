"""The one base every API viewset derives from: tenant scoping that cannot be bypassed."""

from __future__ import annotations

from rest_framework import viewsets

from partnerhub.tenancy.models import ApiKey, TenantOwnedModel


class TenantViewSet(viewsets.GenericViewSet):
    """Base for every API viewset over tenant-owned data.

    Declare ``model`` (not ``queryset``); the queryset always starts from the model's scoped
    manager, so it holds the active tenant's rows only. Partner users are further limited to their
    own partner through the model's ``partner_path`` when ``partner_access`` is True, and refused
    otherwise. Subclasses shape the queryset in ``refine_queryset``; overriding ``get_queryset`` is
    refused at class creation, so the restriction cannot be skipped by accident.
    """

    model: type[TenantOwnedModel]
    partner_access = False
    read_capability = None
    write_capability = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "get_queryset" in cls.__dict__:
            raise TypeError(f"{cls.__name__} overrides get_queryset; shape the queryset in refine_queryset()")
        if "queryset" in cls.__dict__:
            raise TypeError(f"{cls.__name__} sets queryset; declare `model` instead")

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            # Schema generation inspects the model only; it runs outside any tenant.
            return self.model.objects.none()
        queryset = self.model.objects.all()
        membership = getattr(self.request, "membership", None)
        if not isinstance(self.request.auth, ApiKey) and membership is not None and membership.is_partner_user:
            if not self.partner_access:
                return queryset.none()
            queryset = self.restrict_to_partner(queryset, membership)
        return self.refine_queryset(queryset)

    def restrict_to_partner(self, queryset, membership):
        """What a partner user sees: their own partner's rows, through the model's ``partner_path``.

        A viewset over aggregates that belong to no partner (e.g. segment benchmarks) may narrow
        differently; it is only called for partner users and must always narrow.
        """
        if self.model.partner_path is None:
            return queryset.none()
        return queryset.filter(**{self.model.partner_path: membership.partner_id})

    def refine_queryset(self, queryset):
        return queryset

    def validated_input(self, serializer_class, **kwargs) -> dict:
        """The request body checked by ``serializer_class`` (400 with the problems by field otherwise)."""
        serializer = serializer_class(data=self.request.data, **kwargs)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    @property
    def principal(self):
        """Who acts: the person, or the API key for integrations (for audit events)."""
        if isinstance(self.request.auth, ApiKey):
            return self.request.auth
        return self.request.user

    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["tenant"] = getattr(self.request, "tenant", None)
        context["membership"] = getattr(self.request, "membership", None)
        return context
