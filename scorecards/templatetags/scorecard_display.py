"""Display filters for scorecard pages: numbers with their units, signed changes, rules in words."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from django import template

from partnerhub.partners.templatetags.partner_display import plain_number
from scorecards.models import MissingData, Normalization, RubricKind, Unit

register = template.Library()

UNIT_SUFFIX = {Unit.PERCENT: "%", Unit.DAYS: " days", Unit.HOURS: " hours"}
RATING_BADGE = {"excellent": "ok", "good": "growing", "needs_improvement": "warn", "incomplete": "bad"}
NORMALIZATION_WORDS = {
    Normalization.NONE: "The value is used as measured.",
    Normalization.PER_SIZE: "The value is divided by your size (for example per sales rep), so large and small "
    "partners compare fairly.",
    Normalization.PERCENTILE: "The value becomes your percentile within your segment for the period: 0 for the "
    "lowest, 100 for the highest.",
    Normalization.TARGET_ATTAINMENT: "The value becomes the share of your segment's target you reached "
    "(1 means exactly on target).",
}


def _round(value, digits: int) -> Decimal:
    """Rounded half away from zero, as people round (11.25 shows as 11.3, not 11.2)."""
    return Decimal(str(value)).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)


def _number(value, digits: int = 2) -> str:
    if value is None or value == "":
        return ""
    return plain_number(_round(value, digits))


@register.filter
def metric_value(value, unit: str = "") -> str:
    """310,000 · 8.4 · 91% · 12 days; a dash for no value."""
    if value is None:
        return "—"
    text = _number(value)
    if unit == Unit.CURRENCY:
        return text
    return f"{text}{UNIT_SUFFIX.get(unit, '')}"


@register.filter
def points(value) -> str:
    return "—" if value is None else _number(value, 1)


@register.filter
def signed(value) -> str:
    """+2.3 / -1.5 (a typographic minus) / ±0; empty for no value."""
    if value is None or value == "":
        return ""
    number = _round(value, 1)
    if number == 0:
        return "±0"
    return f"+{plain_number(number)}" if number > 0 else f"\u2212{plain_number(-number)}"


@register.filter
def change_class(value) -> str:
    if value is None or value == "":
        return ""
    number = Decimal(str(value))
    return "up" if number > 0 else "down" if number < 0 else "flat"


@register.filter
def percent(value) -> str:
    """0.875 as 88%."""
    if value is None:
        return "—"
    return f"{round(Decimal(str(value)) * 100)}%"


@register.filter
def rating_badge(rating: str) -> str:
    return RATING_BADGE.get(rating, "")


@register.filter
def normalization_words(value: str) -> str:
    return NORMALIZATION_WORDS.get(value, "")


@register.filter
def missing_data_words(version) -> str:
    threshold = percent(version.min_completeness)
    if version.missing_data == MissingData.ZERO:
        rule = "A metric without data counts as zero points."
    else:
        rule = (
            "A metric without data is left out and the weights of the others are scaled up to 100; the share of "
            "weight that had data is shown as completeness."
        )
    return f"{rule} A score with completeness under {threshold} is rated “Incomplete data”."


@register.filter
def rubric_words(item) -> str:
    """How an item's (normalized) value becomes points, in a sentence."""
    cap = _number(item.cap)
    if item.rubric == RubricKind.BANDED:
        bands = sorted(item.bands or [], key=lambda band: band.get("at_least", 0))
        if not bands:
            return "No thresholds are set."
        steps = "; ".join(f"at least {_number(b.get('at_least'))}: {_number(b.get('points'))} points" for b in bands)
        return f"Points by threshold: {steps}; below the lowest threshold, 0 points."
    if item.floor is None or item.target is None:
        return f"Points grow in a straight line with the value, up to {cap}."
    floor, target = _number(item.floor), _number(item.target)
    if item.floor == item.target:
        return f"{cap} points at {target} or better, otherwise 0."
    worse = "or below" if item.floor < item.target else "or above"
    beyond = "above" if item.floor < item.target else "below"
    past_target = (
        f"values {beyond} the target keep earning in the same line, up to {cap} points."
        if item.cap is not None and item.cap > 100
        else f"values {beyond} the target also give {cap} points."
    )
    return f"0 points at {floor} {worse}, 100 points at {target}, in a straight line in between; {past_target}"


@register.filter
def lookup(mapping, key):
    """``mapping[key]``, or None: for dicts keyed by data (segment names by key)."""
    return mapping.get(key) if hasattr(mapping, "get") else None


@register.inclusion_tag("scorecards/_summary.html")
def scorecard_summary(partner, link: str = "", portal: bool = False) -> dict:
    """The latest score of a partner with an 8-period sparkline: the scorecard cards (two queries)."""
    from partnerhub import charts
    from scorecards.page_selectors import latest_score
    from scorecards.selectors import score_history

    score = latest_score(partner)
    spark = ""
    if score is not None:
        history = [
            None if row["total"] is None else float(row["total"])
            for row in score_history(partner=partner, period=score.period)
        ]
        spark = charts.sparkline(history, title=f"Total score over the last {len(history)} periods")
    return {"score": score, "spark_svg": spark, "link": link, "portal": portal, "partner": partner}
