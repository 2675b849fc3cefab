"""Local fakes of the external APIs PartnerHub talks to, served over HTTP for connector tests.

``FakeHubSpot`` (tests.fakes.hubspot) and ``FakeSalesforce`` (tests.fakes.salesforce) follow the public
API contracts; tests point a connector at ``fake.base_url`` instead of the SaaS.
"""

from tests.fakes.hubspot import FakeHubSpot
from tests.fakes.salesforce import FakeSalesforce
from tests.fakes.server import RecordedRequest

__all__ = ["FakeHubSpot", "FakeSalesforce", "RecordedRequest"]
