"""Fiscal periods: quarters (and months) that follow each tenant's fiscal year.

A fiscal year is named after the calendar year in which it ends: with a February start, FY2027
runs from February 2026 to January 2027. Keys sort in time order within a kind:
``FY2027-Q1`` ... ``FY2027-Q4``, ``FY2027-M01`` ... ``FY2027-M12``.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

QUARTER = "quarter"
MONTH = "month"
KINDS = (QUARTER, MONTH)
_KEY = re.compile(r"^FY(?P<year>\d{4})-(?P<kind>[QM])(?P<number>\d{1,2})$")


class PeriodError(ValueError):
    """A period key or date that does not name a period."""


@dataclass(frozen=True, order=True, slots=True)
class Period:
    fiscal_year: int
    kind: str
    number: int  # 1-4 for quarters, 1-12 for months
    start_month: int  # the tenant's fiscal-year start month, 1-12

    def __post_init__(self):
        if self.kind not in KINDS:
            raise PeriodError(f"Unknown period kind “{self.kind}”.")
        if not 1 <= self.number <= (4 if self.kind == QUARTER else 12):
            raise PeriodError(f"There is no {self.kind} {self.number} in a year.")
        if not 1 <= self.start_month <= 12:
            raise PeriodError("The fiscal year must start in a month between 1 and 12.")

    @property
    def key(self) -> str:
        if self.kind == QUARTER:
            return f"FY{self.fiscal_year}-Q{self.number}"
        return f"FY{self.fiscal_year}-M{self.number:02d}"

    @property
    def label(self) -> str:
        return f"FY{self.fiscal_year % 100:02d} {'Q' if self.kind == QUARTER else 'M'}{self.number}"

    @property
    def months(self) -> int:
        return 3 if self.kind == QUARTER else 1

    @property
    def start(self) -> datetime.date:
        # Month offset of this period from the first month of the fiscal year.
        offset = (self.number - 1) * self.months
        first_year = self.fiscal_year - 1 if self.start_month > 1 else self.fiscal_year
        month_index = (self.start_month - 1) + offset
        return datetime.date(first_year + month_index // 12, month_index % 12 + 1, 1)

    @property
    def end(self) -> datetime.date:
        """The last day of the period."""
        return self.next().start - datetime.timedelta(days=1)

    def next(self) -> Period:
        per_year = 4 if self.kind == QUARTER else 12
        if self.number == per_year:
            return Period(self.fiscal_year + 1, self.kind, 1, self.start_month)
        return Period(self.fiscal_year, self.kind, self.number + 1, self.start_month)

    def previous(self) -> Period:
        per_year = 4 if self.kind == QUARTER else 12
        if self.number == 1:
            return Period(self.fiscal_year - 1, self.kind, per_year, self.start_month)
        return Period(self.fiscal_year, self.kind, self.number - 1, self.start_month)

    def last(self, count: int) -> list[Period]:
        """This period and the ``count - 1`` before it, oldest first."""
        periods = [self]
        while len(periods) < count:
            periods.append(periods[-1].previous())
        return periods[::-1]

    def contains(self, day: datetime.date) -> bool:
        return self.start <= day <= self.end


def period_containing(day: datetime.date, *, kind: str, start_month: int) -> Period:
    """The fiscal period of ``kind`` that contains ``day``."""
    months_into_year = (day.month - start_month) % 12
    fiscal_year = day.year + (1 if start_month > 1 and day.month >= start_month else 0)
    number = months_into_year // (3 if kind == QUARTER else 1) + 1
    return Period(fiscal_year, kind, number, start_month)


def parse_period(key: str, *, start_month: int) -> Period:
    """The period a key such as ``FY2026-Q3`` names; ``PeriodError`` with a clear message otherwise."""
    match = _KEY.match((key or "").strip().upper())
    if not match:
        raise PeriodError(f"“{key}” is not a period; write it like FY2026-Q3 or FY2026-M07.")
    kind = QUARTER if match["kind"] == "Q" else MONTH
    return Period(int(match["year"]), kind, int(match["number"]), start_month)


def last_closed(today: datetime.date, *, kind: str, start_month: int) -> Period:
    """The most recent period that has ended before ``today``."""
    return period_containing(today, kind=kind, start_month=start_month).previous()
