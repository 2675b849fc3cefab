"""Parsing of CRM field values (amounts, timestamps, dates, booleans) into Python types.

CRMs hand values over as strings or JSON scalars in a handful of formats; these functions accept
all of them and return aware datetimes, `Decimal`s and `date`s, or raise `ValueError` naming the value.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DIGITS = re.compile(r"^-?\d+$")
# Python 3.11 parses at most microseconds; trim longer fractions (nanosecond timestamps) first.
_LONG_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_decimal(value: object) -> Decimal | None:
    """`"12500.50"`, `12500.5` or `12500` to a Decimal; empty or missing to None."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"Not an amount: {value!r}")
    if isinstance(value, float):
        # repr of a float is the shortest text that round-trips, i.e. what the CRM sent.
        value = repr(value)
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise ValueError(f"Not an amount: {value!r}") from exc
    if not amount.is_finite():
        raise ValueError(f"Not an amount: {value!r}")
    return amount


def parse_datetime(value: object) -> datetime | None:
    """An aware datetime from ISO 8601 (`Z`, `+hh:mm` or `+hhmm`, any fraction) or epoch milliseconds.

    A timestamp without an offset is taken as UTC, which is what both CRMs store.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"Not a timestamp: {value!r}")
    if isinstance(value, int | float):
        return from_epoch_millis(int(value))
    text = str(value).strip()
    if _DIGITS.match(text):
        return from_epoch_millis(int(text))
    try:
        parsed = datetime.fromisoformat(_LONG_FRACTION.sub(r"\1", text))
    except ValueError as exc:
        raise ValueError(f"Not a timestamp: {value!r}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def parse_date(value: object) -> date | None:
    """A calendar date from `2026-08-15`, or from a timestamp (its UTC date)."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    if len(text) == 10 and not _DIGITS.match(text):
        try:
            return date.fromisoformat(text)
        except ValueError as exc:
            raise ValueError(f"Not a date: {value!r}") from exc
    parsed = parse_datetime(text)
    return parsed.astimezone(UTC).date() if parsed else None


def parse_bool(value: object) -> bool | None:
    """`true`/`false` in any case, JSON booleans; empty or missing to None."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"true", "1", "yes"}:
        return True
    if text in {"false", "0", "no"}:
        return False
    raise ValueError(f"Not a boolean: {value!r}")


def to_epoch_millis(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("Timestamps sent to a CRM must be aware")
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def from_epoch_millis(millis: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=millis)
