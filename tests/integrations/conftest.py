"""Fixtures of the upload tests: a file received and checked, then recorded, as tenant a's people do it."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from partnerhub.integrations.models import Upload, UploadKind
from partnerhub.integrations.uploads import upload_commit_request, upload_receive
from partnerhub.tenancy.context import tenant_scope


@pytest.fixture
def in_a(world):
    with tenant_scope(world.a.tenant):
        yield world.a


@pytest.fixture
def receive(in_a, django_capture_on_commit_callbacks):
    """Upload a file as tenant a's partner manager; the check task runs once the upload commits."""

    def receive(content: str | bytes, *, kind: str = UploadKind.OBSERVATIONS, name: str = "values.csv") -> Upload:
        data = content.encode() if isinstance(content, str) else content
        with django_capture_on_commit_callbacks(execute=True):
            upload = upload_receive(file=SimpleUploadedFile(name, data), by=in_a.users["partner_manager"], kind=kind)
        return Upload.objects.get(pk=upload.pk)

    return receive


@pytest.fixture
def commit(in_a, django_capture_on_commit_callbacks):
    """Ask for an upload to be recorded, as tenant a's admin; the task (and recomputes) run on commit."""

    def commit(upload: Upload) -> Upload:
        with django_capture_on_commit_callbacks(execute=True):
            upload_commit_request(upload=upload, by=in_a.users["admin"])
        return Upload.objects.get(pk=upload.pk)

    return commit
