"""Display filters for partner lists, cheap enough to run on every row of a 50-row page.

Django's ``date`` and ``floatformat`` filters look up localized formats on every call (about
0.1 ms each, several per row); the portal's pages are in English, so plain formatting does.
"""

from __future__ import annotations

import datetime
from decimal import Decimal, InvalidOperation

from django import template
from django.utils import timezone

register = template.Library()


@register.filter
def short_date(value) -> str:
    """“Mar 1, 2024”; datetimes in the portal's time zone. Empty for no value."""
    if not isinstance(value, datetime.date):
        return ""
    if isinstance(value, datetime.datetime):
        value = timezone.localtime(value) if timezone.is_aware(value) else value
    return f"{value:%b} {value.day}, {value.year}"


@register.filter
def plain_number(value) -> str:
    """12 for 12.00, 1,250.5 for 1250.50: no trailing zeros, thousands grouped. Empty for no value."""
    if value is None or value == "":
        return ""
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    if not number.is_finite():
        return str(value)
    text = format(number.normalize(), ",f") if number == number.to_integral() else format(number, ",f").rstrip("0")
    return text.removesuffix(".") if "." in text else text
