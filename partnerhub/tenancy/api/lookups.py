"""Rows named by id in a request body, looked up in the active tenant."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError


def row_or_invalid(model, pk: Any, *, field: str, missing: str):
    """The row of ``model`` with this id in the active tenant, None for no id, or a 400 on ``field``.

    The scoped manager hides other tenants' rows, so another workspace's id reads as ``missing``
    and reveals nothing.
    """
    if pk is None:
        return None
    found = model.objects.filter(pk=pk).first()
    if found is None:
        raise ValidationError({field: missing})
    return found
