"""The one duration parser of the API and the commands."""

from datetime import timedelta

import pytest

from core.durations import InvalidDuration, parse_duration


@pytest.mark.parametrize(
    "text, expected",
    [
        ("90s", timedelta(seconds=90)),
        ("30m", timedelta(minutes=30)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("1w", timedelta(weeks=1)),
        (" 2H ", timedelta(hours=2)),
        ("7200", timedelta(hours=2)),
        (7200, timedelta(hours=2)),
    ],
)
def test_it_reads_seconds_and_units(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "soon", "2 hours", "1h30m", "-5", "1.5h", "0", "0s", True, None, 3.5, "99999999w"]
)
def test_it_refuses_what_is_not_a_positive_duration(text):
    with pytest.raises(InvalidDuration):
        parse_duration(text)


def test_zero_is_allowed_when_asked():
    assert parse_duration("0s", allow_zero=True) == timedelta(0)
