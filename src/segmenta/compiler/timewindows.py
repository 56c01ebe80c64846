"""Relative time windows resolved against ``as_of`` at compile time.

Resolving windows in Python (rather than with each engine's interval arithmetic)
makes every dialect agree exactly: calendar months clamp to the month's end, and
the SQL holds plain timestamp or date literals.
"""

from __future__ import annotations

import calendar
import datetime as dt

from segmenta.model.definition import Window


def shift(moment: dt.datetime, window: Window, sign: int) -> dt.datetime:
    """``moment`` moved by ``sign * window``; months and years are calendar units clamped to the month's end.

    >>> shift(dt.datetime(2024, 3, 31, 12), Window(unit="months", n=1), -1)
    datetime.datetime(2024, 2, 29, 12, 0)
    """
    n = window.n * sign
    try:
        if window.unit == "hours":
            return moment + dt.timedelta(hours=n)
        if window.unit == "days":
            return moment + dt.timedelta(days=n)
        if window.unit == "weeks":
            return moment + dt.timedelta(weeks=n)
        months = n * (12 if window.unit == "years" else 1)
        index = moment.year * 12 + (moment.month - 1) + months
        year, month = divmod(index, 12)
        month += 1
        day = min(moment.day, calendar.monthrange(year, month)[1])
        return moment.replace(year=year, month=month, day=day)
    except (OverflowError, ValueError):
        # Beyond the calendar (``{"days": 10**9}``): the window reaches every stored value on that side.
        return dt.datetime.max if sign > 0 else dt.datetime.min


def datetime_window(op: str, window: Window, as_of: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """Inclusive [low, high] of ``in_last`` / ``in_next`` on a datetime attribute."""
    if op == "in_next":
        return as_of, shift(as_of, window, +1)
    return shift(as_of, window, -1), as_of


def date_window(op: str, window: Window, as_of: dt.datetime) -> tuple[dt.date, dt.date]:
    """Inclusive [low, high] of ``in_last`` / ``in_next`` on a date attribute, in calendar dates.

    The contract's window is ``date(as_of) - N units <= x <= date(as_of)``; with hours
    the bound can fall inside a day, and a date (its midnight) is inside only from the
    next midnight on.
    """
    today = dt.datetime.combine(as_of.date(), dt.time())
    if op == "in_next":
        high = shift(today, window, +1)
        return today.date(), high.date()
    low = shift(today, window, -1)
    low_date = low.date() if low.time() == dt.time() else low.date() + dt.timedelta(days=1)
    return low_date, today.date()
