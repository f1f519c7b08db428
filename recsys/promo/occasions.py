"""Occasions derived from the date: 618, 双11, 春节 (年货节), 开学, weekend, weekday.

Windows: 618 is Jun 1–18; 双11 is Nov 1–11; 春节 runs from 21 days before the Spring Festival to
6 days after it (年货节 and the holiday week); 开学 is Aug 20–Sep 10 and Feb 15–Mar 5. A day may
fall in several windows; `occasions_for` lists them most specific first, then weekend or weekday.
"""

from __future__ import annotations

from datetime import date, timedelta

# Spring Festival (正月初一) dates; outside this table the 春节 window is simply not detected.
SPRING_FESTIVAL: dict[int, date] = {
    2024: date(2024, 2, 10),
    2025: date(2025, 1, 29),
    2026: date(2026, 2, 17),
    2027: date(2027, 2, 6),
    2028: date(2028, 1, 26),
    2029: date(2029, 2, 13),
    2030: date(2030, 2, 3),
}
SPRING_BEFORE_DAYS = 21
SPRING_AFTER_DAYS = 6

DATE_OCCASIONS: tuple[str, ...] = ("双11", "618", "春节", "开学", "weekend", "weekday")
PRODUCT_OCCASIONS: tuple[str, ...] = ("presale", "coupon")


def in_spring_festival(day: date) -> bool:
    """True from 21 days before the Spring Festival to 6 days after it."""
    for year in (day.year, day.year + 1):  # a late-December day can precede next year's festival
        fest = SPRING_FESTIVAL.get(year)
        if fest and fest - timedelta(days=SPRING_BEFORE_DAYS) <= day <= fest + timedelta(days=SPRING_AFTER_DAYS):
            return True
    return False


def in_school_start(day: date) -> bool:
    """True from Aug 20 to Sep 10 and from Feb 15 to Mar 5."""
    md = (day.month, day.day)
    return (8, 20) <= md <= (9, 10) or (2, 15) <= md <= (3, 5)


def occasions_for(day: date) -> list[str]:
    """Every date occasion of a day, festivals first, then 'weekend' or 'weekday'."""
    found: list[str] = []
    if day.month == 11 and day.day <= 11:
        found.append("双11")
    if day.month == 6 and day.day <= 18:
        found.append("618")
    if in_spring_festival(day):
        found.append("春节")
    if in_school_start(day):
        found.append("开学")
    found.append("weekend" if day.weekday() >= 5 else "weekday")
    return found
