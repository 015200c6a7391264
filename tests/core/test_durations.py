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
        ("007m", timedelta(minutes=7)),
        # longer than ten years means ten years: "since" then reaches everything there is
        ("99999999w", timedelta(days=3650)),
        ("9" * 5000, timedelta(days=3650)),
    ],
)
def test_it_reads_seconds_and_units(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "soon", "2 hours", "1h30m", "-5", "1.5h", "0", "0s", "00h", True, None, 3.5]
)
def test_it_refuses_what_is_not_a_positive_duration(text):
    with pytest.raises(InvalidDuration):
        parse_duration(text)


def test_zero_is_allowed_when_asked():
    assert parse_duration("0s", allow_zero=True) == timedelta(0)


@pytest.mark.parametrize("text", ["90s", " 2H ", "7200", "007m", "0", "0s", "2 hours", "-5", ""])
def test_the_schema_patterns_say_what_the_parser_takes(text):
    import re

    from core.durations import NONZERO_PATTERN, PATTERN

    for pattern, allow_zero in ((NONZERO_PATTERN, False), (PATTERN, True)):
        # JSON Schema anchors nothing: the API's schema wraps the pattern in ^...$
        promised = re.search(f"^{pattern.pattern}$", text) is not None
        try:
            parse_duration(text, allow_zero=allow_zero)
            taken = True
        except InvalidDuration:
            taken = False
        assert promised == taken, (text, allow_zero)
