"""Clients that read deals from partner-facing CRMs, page by page, as typed records.

No Django models here: a sync run gives a connector its source configuration and the cursor it
stored after the last committed page, and gets back `Page`s of `DealRecord`s.
"""

from partnerhub.integrations.connectors.base import (
    AuthenticationFailed,
    ConfigurationError,
    ConnectorError,
    Cursor,
    DealRecord,
    Page,
    PageStats,
    RateLimited,
    TransientError,
)
from partnerhub.integrations.connectors.http import RetryPolicy
from partnerhub.integrations.connectors.hubspot import HubSpotConnector
from partnerhub.integrations.connectors.salesforce import SalesforceConnector

__all__ = [
    "AuthenticationFailed",
    "ConfigurationError",
    "ConnectorError",
    "Cursor",
    "DealRecord",
    "HubSpotConnector",
    "Page",
    "PageStats",
    "RateLimited",
    "RetryPolicy",
    "SalesforceConnector",
    "TransientError",
]
