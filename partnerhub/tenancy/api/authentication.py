"""API authentication. The tenant always comes from the credential, never from the request body."""

from __future__ import annotations

from drf_spectacular.authentication import SessionScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from partnerhub.tenancy.context import bind
from partnerhub.tenancy.models import ApiKey
from partnerhub.tenancy.services import api_key_parse, api_key_touch, api_key_verify


class ApiKeyPrincipal:
    """``request.user`` for a request made with an API key: authenticated, but not a person."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    def __init__(self, key: ApiKey):
        self.key = key

    def __str__(self) -> str:
        return str(self.key)


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """``Authorization: Api-Key phk_...`` (``Bearer`` is accepted too).

    The key names its tenant; that tenant is bound for the lookup, so a key can only ever be
    found, and verified, inside the tenant that issued it.
    """

    keywords = ("api-key", "bearer")

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1").strip()
        if not header:
            return None
        keyword, _, plaintext = header.partition(" ")
        if keyword.lower() not in self.keywords:
            return None
        plaintext = plaintext.strip()
        parsed = api_key_parse(plaintext)
        if parsed is None:
            raise exceptions.AuthenticationFailed("Malformed API key.")
        tenant_id, prefix = parsed
        bind(tenant_id)
        key = ApiKey.objects.select_related("tenant").filter(prefix=prefix).first()
        if key is None or not api_key_verify(key=key, plaintext=plaintext) or not key.tenant.is_active:
            bind(None)
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        api_key_touch(key=key)
        request._request.tenant = key.tenant
        request._request.membership = None
        return ApiKeyPrincipal(key), key

    def authenticate_header(self, request):
        return 'Api-Key realm="api"'


class TenantSessionAuthentication(authentication.SessionAuthentication):
    """Browser sessions; the tenant is the session's active membership (bound by the middleware)."""


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = ApiKeyAuthentication
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key phk_<tenant>_<prefix>_<secret>` — created by a tenant admin, shown once.",
        }


class TenantSessionScheme(SessionScheme):
    target_class = TenantSessionAuthentication
