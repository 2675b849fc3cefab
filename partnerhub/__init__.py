"""PartnerHub: a multi-tenant partner relationship management portal."""

from partnerhub.celery import app as celery_app

__all__ = ["celery_app"]
