"""Data-source credentials, encrypted at rest with keys from the environment.

Credentials (API tokens, client secrets) are stored as a Fernet token (AES-128-CBC with an
HMAC-SHA256, from the ``cryptography`` package) of their JSON. The keys come from
``CREDENTIALS_KEYS``: the first encrypts, every key decrypts, so rotating a key means putting a
new one first and re-encrypting (``manage.py rotate_credentials``). Plain values are never
written to the database, the audit log or a page: pages show only which fields are set.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.checks import Error, register
from django.core.exceptions import ImproperlyConfigured


class CredentialsUnreadable(Exception):
    """Stored credentials that none of the configured keys can decrypt."""


def _derived_key() -> bytes:
    digest = hashlib.sha256(b"partnerhub-credentials:" + settings.SECRET_KEY.encode()).digest()
    return base64.urlsafe_b64encode(digest)


def _keys() -> list[bytes]:
    keys = [key.strip().encode() for key in settings.CREDENTIALS_KEYS if key.strip()]
    if keys:
        return keys
    if settings.PRODUCTION:
        raise ImproperlyConfigured("Set CREDENTIALS_KEYS to encrypt data-source credentials.")
    return [_derived_key()]


def _fernet() -> MultiFernet:
    try:
        return MultiFernet([Fernet(key) for key in _keys()])
    except ValueError as error:
        raise ImproperlyConfigured(f"CREDENTIALS_KEYS holds a key that is not a Fernet key: {error}") from None


def encrypt(values: dict[str, Any]) -> str:
    """The encrypted token of ``values`` (a JSON object)."""
    return _fernet().encrypt(json.dumps(values, sort_keys=True).encode()).decode()


def decrypt(token: str) -> dict[str, Any]:
    """The values ``token`` holds; ``CredentialsUnreadable`` when no configured key opens it."""
    if not token:
        return {}
    try:
        return json.loads(_fernet().decrypt(token.encode()))
    except InvalidToken:
        raise CredentialsUnreadable(
            "The stored credentials cannot be decrypted with the configured CREDENTIALS_KEYS; "
            "enter them again or restore the key they were saved with."
        ) from None


def rotate(token: str) -> str:
    """``token`` re-encrypted with the first configured key."""
    return _fernet().rotate(token.encode()).decode() if token else token


@register("security", deploy=True)
def check_credentials_keys(app_configs, **kwargs):
    """``manage.py check --deploy``: production needs its own credentials keys."""
    try:
        _fernet()
    except ImproperlyConfigured as error:
        return [Error(str(error), id="partnerhub.E101")]
    if not settings.CREDENTIALS_KEYS:
        return [
            Error(
                "CREDENTIALS_KEYS is not set; credentials would be encrypted with a key derived from SECRET_KEY.",
                id="partnerhub.E102",
            )
        ]
    return []
