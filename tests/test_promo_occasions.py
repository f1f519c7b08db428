"""Occasions from the date: festival windows, school start and weekends."""

from __future__ import annotations

from datetime import date

import pytest

from recsys.promo.occasions import occasions_for


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2025, 6, 1), ["618", "weekend"]),  # a Sunday
        (date(2025, 6, 18), ["618", "weekday"]),
        (date(2025, 6, 19), ["weekday"]),
        (date(2025, 11, 11), ["双11", "weekday"]),
        (date(2025, 11, 12), ["weekday"]),
        (date(2025, 1, 8), ["春节", "weekday"]),  # 21 days before 2025-01-29
        (date(2025, 1, 7), ["weekday"]),
        (date(2025, 2, 4), ["春节", "weekday"]),  # 6 days after
        (date(2025, 2, 5), ["weekday"]),
        (date(2026, 2, 17), ["春节", "开学", "weekday"]),  # festival day inside the spring school window
        (date(2025, 8, 20), ["开学", "weekday"]),
        (date(2025, 9, 10), ["开学", "weekday"]),
        (date(2025, 9, 11), ["weekday"]),
        (date(2025, 3, 5), ["开学", "weekday"]),
        (date(2025, 7, 12), ["weekend"]),  # a Saturday
    ],
)
def test_occasions_for(day: date, expected: list[str]) -> None:
    assert occasions_for(day) == expected
