"""From stored facts to observations: the step every way facts arrive (sync, upload, API) ends with."""

from __future__ import annotations

import datetime
from collections.abc import Iterable

import pandas as pd
from django.db.models import Q

from partnerhub.integrations.derive import (
    DEAL_COLUMNS,
    MARKETING_COLUMNS,
    MARKETING_METRICS,
    derive_deal_observations,
    derive_marketing_observations,
)
from partnerhub.integrations.source_models import Deal, MarketingFact
from partnerhub.tenancy.context import current_tenant_id
from partnerhub.tenancy.models import Tenant
from scorecards.periods import QUARTER, period_containing
from scorecards.services.observations import observations_record_derived

# Sums and counts are zero when a touched period has no deal left; rates have no value then.
ADDITIVE = ("pipeline_created", "deals_registered", "revenue_won", "deals_won", "deals_closed")


def deal_frame(partner_ids: Iterable[int]) -> pd.DataFrame:
    """The live deals of these partners, from every source, as the frame the derivation reads."""
    rows = (
        Deal.objects.filter(partner_id__in=list(partner_ids), deleted_at__isnull=True)
        .filter(Q(closed=False) | Q(close_date__isnull=False))
        .values_list(*DEAL_COLUMNS[:3], "created_on", "close_date", "closed", "won")
    )
    return pd.DataFrame(list(rows), columns=list(DEAL_COLUMNS))


def record_deal_observations(
    *, partner_ids: set[int], days: set[datetime.date], currency: str, source_ref: str, kind: str = QUARTER
) -> int:
    """Derive and record the deal metrics of these partners for the periods containing ``days``.

    Every deal of the partners is read (all sources count towards one partner's pipeline), the
    derivation is limited to the touched periods, and only values that changed are recorded.
    Returns how many observations were added.
    """
    if not partner_ids or not days:
        return 0
    tenant = Tenant.objects.get(pk=current_tenant_id())
    start = tenant.fiscal_year_start_month
    periods = {period_containing(day, kind=kind, start_month=start).key for day in days}
    derived = derive_deal_observations(
        deal_frame(partner_ids), kind=kind, start_month=start, currency=currency, periods=periods
    )
    values = derived.values()
    # A touched period the partner no longer has deals in still has sums and counts: zero.
    for partner_id in partner_ids:
        for period in periods:
            for metric in ADDITIVE:
                values.setdefault((partner_id, metric, period), 0)
    return observations_record_derived(values=values, source_ref=source_ref)


def marketing_frame(partner_ids: Iterable[int]) -> pd.DataFrame:
    """The marketing facts of these partners, from every source."""
    rows = MarketingFact.objects.filter(partner_id__in=list(partner_ids)).values_list(*MARKETING_COLUMNS)
    return pd.DataFrame(list(rows), columns=list(MARKETING_COLUMNS))


def record_marketing_observations(
    *, partner_ids: set[int], days: set[datetime.date], currency: str, source_ref: str, kind: str = QUARTER
) -> int:
    """Derive and record the marketing metrics of these partners for the periods containing ``days``.

    Touched periods without facts of a kind get zero for its metric: marketing metrics are sums.
    """
    if not partner_ids or not days:
        return 0
    tenant = Tenant.objects.get(pk=current_tenant_id())
    start = tenant.fiscal_year_start_month
    periods = {period_containing(day, kind=kind, start_month=start).key for day in days}
    derived = derive_marketing_observations(
        marketing_frame(partner_ids), kind=kind, start_month=start, currency=currency, periods=periods
    )
    values = derived.values()
    for partner_id in partner_ids:
        for period in periods:
            for metric, _amount in MARKETING_METRICS.values():
                values.setdefault((partner_id, metric, period), 0)
    return observations_record_derived(values=values, source_ref=source_ref)
