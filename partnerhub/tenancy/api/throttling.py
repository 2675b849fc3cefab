"""Request throttling per principal; DRF answers 429 with a Retry-After header past the rate."""

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from partnerhub.tenancy.models import ApiKey


class PrincipalRateThrottle(SimpleRateThrottle):
    """One budget per API key, per signed-in person, or per client address."""

    scope = "principal"

    def get_rate(self):
        # Read at request time so that operators (and tests) can change it through settings.
        return settings.API_THROTTLE_RATE

    def get_cache_key(self, request, view):
        if isinstance(request.auth, ApiKey):
            ident = f"key:{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        return f"throttle:{self.scope}:{ident}"
