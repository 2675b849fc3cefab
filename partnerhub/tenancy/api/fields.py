"""Serializer fields whose choices are read in the active tenant at request time."""

from rest_framework import serializers


class ScopedSlugRelatedField(serializers.SlugRelatedField):
    """A slug relation over a tenant-owned model, resolved through its scoped manager.

    DRF evaluates a field's ``queryset`` when the serializer class is built, outside any tenant;
    this field asks for it per request instead.
    """

    def __init__(self, *, model, queryset_method=None, **kwargs):
        self.model = model
        self.queryset_method = queryset_method
        if not kwargs.get("read_only"):
            kwargs["queryset"] = model.objects.none()  # replaced per request in get_queryset()
        super().__init__(**kwargs)

    def get_queryset(self):
        if self.queryset_method is not None:
            return self.queryset_method()
        return self.model.objects.all()
