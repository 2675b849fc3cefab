"""The default metric catalogue every new tenant starts with.

Definitions are written for partners: they appear on the "How you are scored" page next to the
weights. Plausible bounds catch typing and unit mistakes (a percentage entered as 0.85, revenue in
cents), not unusual results: they are deliberately wide.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from scorecards.models import Aggregation, Direction, IndicatorKind, Pillar, Unit

BILLION = Decimal("1000000000")


@dataclass(frozen=True, slots=True)
class MetricSpec:
    key: str
    name: str
    definition: str
    unit: str
    direction: str
    indicator: str
    pillar: str
    aggregation: str
    data_source: str
    plausible_min: Decimal | None
    plausible_max: Decimal | None
    numerator: str | None = None  # keys of the metrics a ratio divides
    denominator: str | None = None


def _spec(key, name, definition, unit, *, lower=False, leading=False, pillar, aggregation, source, bounds, ratio=None):
    minimum, maximum = bounds
    numerator, denominator = ratio or (None, None)
    return MetricSpec(
        key=key,
        name=name,
        definition=definition,
        unit=unit,
        direction=Direction.LOWER_IS_BETTER if lower else Direction.HIGHER_IS_BETTER,
        indicator=IndicatorKind.LEADING if leading else IndicatorKind.LAGGING,
        pillar=pillar,
        aggregation=aggregation,
        data_source=source,
        plausible_min=None if minimum is None else Decimal(minimum),
        plausible_max=None if maximum is None else Decimal(maximum),
        numerator=numerator,
        denominator=denominator,
    )


PERFORMANCE, COLLABORATION, DEVELOPMENT = Pillar.PERFORMANCE, Pillar.COLLABORATION, Pillar.DEVELOPMENT
SUM, AVERAGE, LAST, RATIO = Aggregation.SUM, Aggregation.AVERAGE, Aggregation.LAST, Aggregation.RATIO
CRM = "CRM: deals the partner registered or sourced (HubSpot deals, Salesforce opportunities)."

DEFAULT_METRICS: tuple[MetricSpec, ...] = (
    # --- Performance results ---
    _spec(
        "pipeline_created",
        "Pipeline created",
        "The total value of new deals the partner opened in the period, at the amount first registered.",
        Unit.CURRENCY,
        leading=True,
        pillar=PERFORMANCE,
        aggregation=SUM,
        source=CRM,
        bounds=("0", 10 * BILLION),
    ),
    _spec(
        "revenue_won",
        "Revenue won",
        "The total value of deals the partner closed as won in the period (booked amount, before discounts "
        "to the end customer are netted out by finance).",
        Unit.CURRENCY,
        pillar=PERFORMANCE,
        aggregation=SUM,
        source=CRM,
        bounds=("0", 10 * BILLION),
    ),
    _spec(
        "deals_won",
        "Deals won",
        "How many of the partner's deals closed as won in the period.",
        Unit.COUNT,
        pillar=PERFORMANCE,
        aggregation=SUM,
        source=CRM,
        bounds=("0", "100000"),
    ),
    _spec(
        "deals_closed",
        "Deals closed",
        "How many of the partner's deals closed in the period, won or lost.",
        Unit.COUNT,
        pillar=PERFORMANCE,
        aggregation=SUM,
        source=CRM,
        bounds=("0", "100000"),
    ),
    _spec(
        "win_rate",
        "Win rate",
        "The share of the partner's closed deals that were won: deals won divided by deals closed "
        "(0.25 means one deal in four).",
        Unit.RATIO,
        pillar=PERFORMANCE,
        aggregation=RATIO,
        source="Computed from Deals won and Deals closed.",
        bounds=("0", "1"),
        ratio=("deals_won", "deals_closed"),
    ),
    _spec(
        "average_deal_size",
        "Average deal size",
        "Revenue won divided by the number of deals won in the period.",
        Unit.CURRENCY,
        pillar=PERFORMANCE,
        aggregation=AVERAGE,
        source=CRM,
        bounds=("0", BILLION),
    ),
    _spec(
        "deal_velocity",
        "Deal velocity",
        "The average number of days from registering a deal to closing it as won, over the deals won in "
        "the period. Fewer days is better.",
        Unit.DAYS,
        lower=True,
        pillar=PERFORMANCE,
        aggregation=AVERAGE,
        source=CRM,
        bounds=("0", "1095"),
    ),
    _spec(
        "deals_registered",
        "Deals registered",
        "How many new deal registrations the partner submitted in the period (approved or pending).",
        Unit.COUNT,
        leading=True,
        pillar=PERFORMANCE,
        aggregation=SUM,
        source="Deal registration portal or CRM deal registrations.",
        bounds=("0", "100000"),
    ),
    _spec(
        "new_customers",
        "New customers",
        "How many customers bought through the partner for the first time in the period.",
        Unit.COUNT,
        pillar=PERFORMANCE,
        aggregation=SUM,
        source=CRM,
        bounds=("0", "100000"),
    ),
    _spec(
        "renewal_rate",
        "Renewal rate",
        "The percentage of the partner's customer contracts due for renewal in the period that renewed.",
        Unit.PERCENT,
        pillar=PERFORMANCE,
        aggregation=AVERAGE,
        source="CRM renewal opportunities, or the subscription billing system.",
        bounds=("0", "100"),
    ),
    _spec(
        "time_to_first_sale",
        "Time to first sale",
        "Days from the partner joining the program to closing its first won deal. Fewer days is better.",
        Unit.DAYS,
        lower=True,
        pillar=PERFORMANCE,
        aggregation=LAST,
        source="Partner join date and the CRM's first won deal.",
        bounds=("0", "1825"),
    ),
    _spec(
        "customer_satisfaction",
        "Customer satisfaction",
        "The average answer of the partner's customers to “How satisfied are you with this partner?” on a "
        "scale from 1 (not at all) to 10 (completely), over the surveys answered in the period.",
        Unit.SCORE,
        pillar=PERFORMANCE,
        aggregation=AVERAGE,
        source="Customer satisfaction survey after implementation and support cases.",
        bounds=("1", "10"),
    ),
    # --- Collaboration health ---
    _spec(
        "lead_response_time",
        "Lead response time",
        "The average number of hours between passing a lead to the partner and the partner's first contact "
        "with it. Fewer hours is better.",
        Unit.HOURS,
        lower=True,
        leading=True,
        pillar=COLLABORATION,
        aggregation=AVERAGE,
        source="CRM lead assignment and first-activity timestamps.",
        bounds=("0", "2160"),
    ),
    _spec(
        "mqls_generated",
        "Marketing-qualified leads generated",
        "How many leads from the partner's own marketing met the marketing-qualified criteria in the period.",
        Unit.COUNT,
        leading=True,
        pillar=COLLABORATION,
        aggregation=SUM,
        source="Marketing automation (HubSpot, Marketo) leads attributed to the partner.",
        bounds=("0", "1000000"),
    ),
    _spec(
        "campaign_influenced_pipeline",
        "Campaign-influenced pipeline",
        "The value of new deals in the period that a joint or partner-run campaign touched before the deal was opened.",
        Unit.CURRENCY,
        leading=True,
        pillar=COLLABORATION,
        aggregation=SUM,
        source="CRM campaign influence report.",
        bounds=("0", 10 * BILLION),
    ),
    _spec(
        "joint_marketing_events",
        "Joint marketing events",
        "How many webinars, events and campaigns the partner ran together with us in the period.",
        Unit.COUNT,
        leading=True,
        pillar=COLLABORATION,
        aggregation=SUM,
        source="Marketing calendar and MDF claims.",
        bounds=("0", "1000"),
    ),
    _spec(
        "mdf_utilization",
        "MDF utilization",
        "The percentage of the market development funds allocated to the partner for the period that it "
        "claimed with approved activities.",
        Unit.PERCENT,
        leading=True,
        pillar=COLLABORATION,
        aggregation=LAST,
        source="MDF claims system.",
        bounds=("0", "100"),
    ),
    _spec(
        "qbr_attendance",
        "Business review attendance",
        "The percentage of scheduled quarterly business reviews that the partner's executive sponsor attended.",
        Unit.PERCENT,
        leading=True,
        pillar=COLLABORATION,
        aggregation=AVERAGE,
        source="PartnerHub review attendance.",
        bounds=("0", "100"),
    ),
    _spec(
        "partner_satisfaction",
        "Partner satisfaction",
        "The partner's own answer to “How likely are you to recommend our partner program?” from 0 to 10, "
        "averaged over the people who answered in the period.",
        Unit.SCORE,
        pillar=COLLABORATION,
        aggregation=AVERAGE,
        source="Partner survey in PartnerHub reviews.",
        bounds=("0", "10"),
    ),
    _spec(
        "support_escalations",
        "Support escalations",
        "How many of the partner's customer support cases had to be escalated to our support team in the "
        "period. Fewer is better.",
        Unit.COUNT,
        lower=True,
        pillar=COLLABORATION,
        aggregation=SUM,
        source="Support desk (escalated cases by partner).",
        bounds=("0", "100000"),
    ),
    # --- Development ---
    _spec(
        "certifications_completed",
        "Certifications completed",
        "How many product certifications the partner's people passed in the period.",
        Unit.COUNT,
        leading=True,
        pillar=DEVELOPMENT,
        aggregation=SUM,
        source="Learning management system (certification exams passed).",
        bounds=("0", "10000"),
    ),
    _spec(
        "active_certified_staff",
        "Certified people",
        "How many of the partner's people hold at least one current certification at the end of the period.",
        Unit.COUNT,
        leading=True,
        pillar=DEVELOPMENT,
        aggregation=LAST,
        source="Learning management system (unexpired certifications).",
        bounds=("0", "100000"),
    ),
    _spec(
        "training_completion_rate",
        "Training completion rate",
        "The percentage of assigned training courses that the partner's people completed by the end of the period.",
        Unit.PERCENT,
        leading=True,
        pillar=DEVELOPMENT,
        aggregation=AVERAGE,
        source="Learning management system (assigned versus completed courses).",
        bounds=("0", "100"),
    ),
    _spec(
        "solution_offerings",
        "Packaged solutions",
        "How many packaged solutions or services built on our products the partner has in its published "
        "offering at the end of the period.",
        Unit.COUNT,
        leading=True,
        pillar=DEVELOPMENT,
        aggregation=LAST,
        source="Partner solution directory.",
        bounds=("0", "1000"),
    ),
)

DEFAULT_METRIC_KEYS = frozenset(spec.key for spec in DEFAULT_METRICS)
