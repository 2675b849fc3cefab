"""Facts become per-period metric observations, set-based with pandas: deals here, marketing facts below.

The input is one row per deal (every source's deals of the partners concerned, deleted ones
already left out); the output is one row per partner, period and metric with the value the
period's observation should hold. Nothing here reads or writes the database: the sync and upload
services load the frame, call :func:`derive_deal_observations` and record what changed.

How each metric is derived (the catalogue's definitions, made exact):

==================  ==========================================================================
pipeline_created    sum of the amounts of deals created in the period
deals_registered    number of deals created in the period
revenue_won         sum of the amounts of deals won whose close date falls in the period
deals_won           number of deals won whose close date falls in the period
deals_closed        number of deals closed (won or lost) whose close date falls in the period
win_rate            deals_won / deals_closed, when at least one deal closed
average_deal_size   revenue_won / deals_won, when at least one deal was won
deal_velocity       mean days from creation to close over the deals won in the period
==================  ==========================================================================

Amounts are summed as whole cents (integers), so sums are exact whatever the number of deals.
Deals in another currency than the program's reporting currency are not converted: they are
left out of the amount metrics and counted in ``skipped_currency`` so data health can show them.
A deal without a close date counts as created but never as closed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal

import pandas as pd

from scorecards.periods import QUARTER

DEAL_COLUMNS = ("partner_id", "amount", "currency", "created", "close_date", "closed", "won")

DEAL_METRICS = (
    "pipeline_created", "deals_registered", "revenue_won", "deals_won", "deals_closed",
    "win_rate", "average_deal_size", "deal_velocity",
)  # fmt: skip

RATE_PLACES = Decimal("0.000001")  # the observation column keeps six decimal places
CENT = Decimal("0.01")


@dataclass
class Derived:
    """Observations derived from deals, and what could not be used."""

    observations: pd.DataFrame  # partner_id, period, metric, value (Decimal), deals (int: supporting deals)
    skipped_currency: dict[str, int] = field(default_factory=dict)  # currency -> deals left out of amounts

    def values(self) -> dict[tuple[int, str, str], Decimal]:
        """``{(partner_id, metric, period): value}``, the shape the recording services compare against."""
        frame = self.observations
        return dict(
            zip(
                zip(frame["partner_id"].tolist(), frame["metric"].tolist(), frame["period"].tolist(), strict=True),
                frame["value"].tolist(),
                strict=True,
            )
        )


def period_keys(dates: pd.Series, *, kind: str, start_month: int) -> pd.Series:
    """The fiscal period key of each date (``FY2026-Q3``), vectorized; missing dates stay missing.

    Mirrors :func:`scorecards.periods.period_containing`: a fiscal year is named after the
    calendar year in which it ends.
    """
    stamps = pd.to_datetime(dates)
    month, year = stamps.dt.month, stamps.dt.year
    months_into_year = (month - start_month) % 12
    fiscal_year = year + ((month >= start_month) & (start_month > 1)).astype("Int64")
    if kind == QUARTER:
        number = (months_into_year // 3 + 1).astype("Int64").astype("string")
        keys = "FY" + fiscal_year.astype("Int64").astype("string") + "-Q" + number
    else:
        number = (months_into_year + 1).astype("Int64").astype("string").str.zfill(2)
        keys = "FY" + fiscal_year.astype("Int64").astype("string") + "-M" + number
    return keys.where(stamps.notna())


def _cents(amounts: pd.Series) -> pd.Series:
    """Decimal amounts as whole cents (int64); a missing amount is 0 cents."""
    return amounts.map(lambda amount: 0 if pd.isna(amount) else int((Decimal(amount) * 100).to_integral_value()))


def _long(frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """Wide per-(partner, period) columns to long rows (partner_id, period, metric, raw, deals)."""
    parts = []
    for column, support in columns.items():
        part = frame[["partner_id", "period", column, support]].rename(columns={column: "raw", support: "deals"})
        part = part[part["raw"].notna()]
        parts.append(part.assign(metric=column))
    if not parts:
        return pd.DataFrame(columns=["partner_id", "period", "metric", "raw", "deals"])
    return pd.concat(parts, ignore_index=True)


def derive_deal_observations(
    deals: pd.DataFrame,
    *,
    kind: str,
    start_month: int,
    currency: str,
    periods: set[str] | None = None,
) -> Derived:
    """Per-partner, per-period deal metrics from one row per deal (see the module docstring).

    ``deals`` has the columns of :data:`DEAL_COLUMNS`; ``created`` and ``close_date`` are dates.
    ``periods`` limits the result to those period keys (the periods a sync touched).
    """
    empty = pd.DataFrame(columns=["partner_id", "period", "metric", "value", "deals"])
    if deals.empty:
        return Derived(empty)
    frame = deals.loc[:, list(DEAL_COLUMNS)].copy()
    frame["partner_id"] = frame["partner_id"].astype("int64")
    in_currency = frame["currency"].fillna("").str.upper() == currency.upper()
    has_amount = frame["amount"].notna()
    skipped = frame.loc[has_amount & ~in_currency, "currency"].fillna("").str.upper().value_counts()
    frame["cents"] = _cents(frame["amount"].where(in_currency))
    frame["priced"] = (has_amount & in_currency).astype("int64")
    frame["created_period"] = period_keys(frame["created"], kind=kind, start_month=start_month)
    frame["close_period"] = period_keys(frame["close_date"], kind=kind, start_month=start_month)
    closed = frame["closed"].astype(bool) & frame["close_period"].notna()
    won = closed & frame["won"].astype(bool)
    created_days = pd.to_datetime(frame["created"]).dt.normalize()
    close_days = pd.to_datetime(frame["close_date"]).dt.normalize()
    frame["days"] = (close_days - created_days).dt.days.clip(lower=0)

    opened = (
        frame[frame["created_period"].notna()]
        .groupby(["partner_id", "created_period"], sort=True)
        .agg(deals_registered=("partner_id", "size"), pipeline_cents=("cents", "sum"), priced=("priced", "sum"))
        .reset_index()
        .rename(columns={"created_period": "period"})
    )
    closes = frame[closed].assign(won=won[closed].astype("int64"))
    closes = closes.assign(
        won_cents=closes["cents"].where(closes["won"] == 1, 0),
        won_priced=closes["priced"].where(closes["won"] == 1, 0),
        won_days=closes["days"].where(closes["won"] == 1),
    )
    finished = (
        closes.groupby(["partner_id", "close_period"], sort=True)
        .agg(
            deals_closed=("partner_id", "size"),
            deals_won=("won", "sum"),
            revenue_cents=("won_cents", "sum"),
            won_priced=("won_priced", "sum"),
            days_sum=("won_days", "sum"),
            days_count=("won_days", "count"),
        )
        .reset_index()
        .rename(columns={"close_period": "period"})
    )
    wide = opened.merge(finished, on=["partner_id", "period"], how="outer")
    if periods is not None:
        wide = wide[wide["period"].isin(periods)]
    if wide.empty:
        return Derived(empty, skipped_currency={str(k): int(v) for k, v in skipped.items()})

    counts = [
        "deals_registered", "deals_closed", "deals_won", "priced", "won_priced",
        "pipeline_cents", "revenue_cents", "days_sum", "days_count",
    ]  # fmt: skip
    wide[counts] = wide[counts].fillna(0).astype("int64")
    # Amount metrics exist only where a deal in the reporting currency stands behind them; every
    # quotient is taken in Decimal from whole numbers, so it is exact up to its rounding.
    wide["pipeline_created"] = _quotients(wide["pipeline_cents"], 100, wide["priced"] > 0, CENT)
    wide["revenue_won"] = _quotients(wide["revenue_cents"], 100, wide["won_priced"] > 0, CENT)
    won_priced = wide["won_priced"] > 0
    wide["average_deal_size"] = _quotients(wide["revenue_cents"], wide["won_priced"] * 100, won_priced, CENT)
    wide["win_rate"] = _quotients(wide["deals_won"], wide["deals_closed"], wide["deals_closed"] > 0, RATE_PLACES)
    wide["deal_velocity"] = _quotients(wide["days_sum"], wide["days_count"], wide["days_count"] > 0, RATE_PLACES)
    wide["deals_registered"] = wide["deals_registered"].where(wide["deals_registered"] > 0)
    wide["deals_closed_value"] = wide["deals_closed"].where(wide["deals_closed"] > 0)
    wide["deals_won_value"] = wide["deals_won"].where(wide["deals_closed"] > 0)
    wide = wide.rename(columns={"deals_closed": "closed_support", "deals_won": "won_support"})
    wide = wide.rename(columns={"deals_closed_value": "deals_closed", "deals_won_value": "deals_won"})
    wide["registered_support"] = wide["deals_registered"].fillna(0).astype("int64")

    long = _long(
        wide,
        {
            "pipeline_created": "priced",
            "deals_registered": "registered_support",
            "revenue_won": "won_priced",
            "deals_won": "closed_support",
            "deals_closed": "closed_support",
            "win_rate": "closed_support",
            "average_deal_size": "won_priced",
            "deal_velocity": "days_count",
        },
    )
    long["value"] = [raw if isinstance(raw, Decimal) else Decimal(int(raw)) for raw in long["raw"]]
    long["deals"] = long["deals"].astype("int64")
    order = {metric: index for index, metric in enumerate(DEAL_METRICS)}
    long = long.assign(order=long["metric"].map(order)).sort_values(["partner_id", "period", "order"])
    result = long[["partner_id", "period", "metric", "value", "deals"]].reset_index(drop=True)
    return Derived(result, skipped_currency={str(k): int(v) for k, v in skipped.items()})


def _quotients(numerators: pd.Series, denominators: pd.Series | int, present: pd.Series, places: Decimal) -> pd.Series:
    """``numerator / denominator`` per row as a Decimal rounded half-even to ``places``; None where absent."""
    if isinstance(denominators, int):
        denominators = pd.Series(denominators, index=numerators.index)
    values = [
        (Decimal(int(top)) / Decimal(int(bottom))).quantize(places, rounding=ROUND_HALF_EVEN) if keep else None
        for top, bottom, keep in zip(numerators, denominators, present, strict=True)
    ]
    return pd.Series(values, index=numerators.index, dtype=object)


# --- Marketing facts ---------------------------------------------------------------------------------

MARKETING_COLUMNS = ("partner_id", "kind", "occurred_on", "quantity", "currency")

# fact kind -> (metric, whether the quantity is an amount in the reporting currency)
MARKETING_METRICS: dict[str, tuple[str, bool]] = {
    "mql": ("mqls_generated", False),
    "campaign_pipeline": ("campaign_influenced_pipeline", True),
    "event_attended": ("joint_marketing_events", False),
}


def derive_marketing_observations(
    facts: pd.DataFrame, *, kind: str, start_month: int, currency: str, periods: set[str] | None = None
) -> Derived:
    """Per-partner, per-period marketing metrics from one row per marketing fact.

    ==============================  ===========================================================
    mqls_generated                  sum of the quantities of MQL facts in the period (1 each by default)
    campaign_influenced_pipeline    sum of the campaign-influenced pipeline amounts in the period
                                    (reporting currency only, like deal amounts)
    joint_marketing_events          sum of the quantities of events attended in the period
    ==============================  ===========================================================
    """
    empty = pd.DataFrame(columns=["partner_id", "period", "metric", "value", "deals"])
    if facts.empty:
        return Derived(empty)
    frame = facts.loc[:, list(MARKETING_COLUMNS)].copy()
    frame["partner_id"] = frame["partner_id"].astype("int64")
    frame["period"] = period_keys(frame["occurred_on"], kind=kind, start_month=start_month)
    frame = frame[frame["period"].notna() & frame["kind"].isin(MARKETING_METRICS)]
    if periods is not None:
        frame = frame[frame["period"].isin(periods)]
    is_amount = frame["kind"].map(lambda name: MARKETING_METRICS[name][1]).astype(bool)
    other_currency = is_amount & (frame["currency"].fillna("").str.upper() != currency.upper())
    skipped = frame.loc[other_currency, "currency"].fillna("").str.upper().value_counts()
    frame = frame[~other_currency]
    if frame.empty:
        return Derived(empty, skipped_currency={str(k): int(v) for k, v in skipped.items()})
    frame["cents"] = _cents(frame["quantity"])
    grouped = (
        frame.groupby(["partner_id", "period", "kind"], sort=True)
        .agg(cents=("cents", "sum"), facts=("partner_id", "size"))
        .reset_index()
    )
    grouped["metric"] = grouped["kind"].map(lambda name: MARKETING_METRICS[name][0])
    grouped["value"] = [(Decimal(int(cents)) / 100).quantize(CENT) for cents in grouped["cents"]]
    grouped = grouped.rename(columns={"facts": "deals"}).sort_values(["partner_id", "period", "metric"])
    result = grouped[["partner_id", "period", "metric", "value", "deals"]].reset_index(drop=True)
    return Derived(result, skipped_currency={str(k): int(v) for k, v in skipped.items()})
