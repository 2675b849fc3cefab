import datetime

import pytest

from scorecards.periods import MONTH, QUARTER, Period, PeriodError, last_closed, parse_period, period_containing


def test_calendar_fiscal_year_quarters():
    q3 = period_containing(datetime.date(2026, 8, 15), kind=QUARTER, start_month=1)
    assert q3.key == "FY2026-Q3"
    assert (q3.start, q3.end) == (datetime.date(2026, 7, 1), datetime.date(2026, 9, 30))


def test_a_february_fiscal_year_is_named_after_the_year_it_ends_in():
    q1 = period_containing(datetime.date(2026, 2, 1), kind=QUARTER, start_month=2)
    assert q1.key == "FY2027-Q1" and q1.start == datetime.date(2026, 2, 1)
    q4 = period_containing(datetime.date(2027, 1, 31), kind=QUARTER, start_month=2)
    assert q4.key == "FY2027-Q4" and q4.end == datetime.date(2027, 1, 31)
    assert period_containing(datetime.date(2026, 1, 31), kind=QUARTER, start_month=2).key == "FY2026-Q4"


@pytest.mark.parametrize("start_month", range(1, 13))
def test_periods_tile_the_calendar_without_gaps_or_overlaps(start_month):
    period = period_containing(datetime.date(2024, 1, 1), kind=MONTH, start_month=start_month)
    for _ in range(40):
        following = period.next()
        assert following.start == period.end + datetime.timedelta(days=1)
        assert following.previous() == period
        assert period_containing(period.start, kind=MONTH, start_month=start_month) == period
        period = following


def test_keys_parse_back_and_sort_in_time_order():
    periods = Period(2026, QUARTER, 3, 7).last(8)
    assert [parse_period(p.key, start_month=7) for p in periods] == periods
    assert sorted(p.key for p in periods) == [p.key for p in periods]
    assert parse_period("fy2026-m07", start_month=1).key == "FY2026-M07"


@pytest.mark.parametrize("bad", ["", "2026Q3", "FY2026-Q5", "FY2026-M13", "FY2026-Q0", "FY26-Q1"])
def test_bad_period_keys_are_refused_with_a_clear_message(bad):
    with pytest.raises(PeriodError):
        parse_period(bad, start_month=1)


def test_last_closed_period():
    assert last_closed(datetime.date(2026, 11, 22), kind=QUARTER, start_month=1).key == "FY2026-Q3"
