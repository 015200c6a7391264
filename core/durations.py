"""Durations as operators type them: ``90s``, ``30m``, ``2h``, ``1d``, ``1w`` or plain seconds.

One parser for the REST API (``since``, ``overlap``) and the management commands
(``--since``), so ``replay_dlq --since 2h`` and ``{"since": "2h"}`` mean the same thing.
"""

from __future__ import annotations

import re
from datetime import timedelta

SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
PATTERN = re.compile(r"(\d+)\s*([smhdw]?)")
# Far enough back for any dead-letter queue, near enough that ``now - duration`` cannot overflow.
LONGEST = timedelta(days=3650)
EXAMPLES = "a number of seconds or a number and a unit (s, m, h, d, w), e.g. 90s, 30m, 2h, 1d"


class InvalidDuration(ValueError):
    """The text is not a duration; the message says what is accepted."""


def parse_duration(value: str | int, *, allow_zero: bool = False) -> timedelta:
    """A ``timedelta`` from ``"2h"``, ``"90s"``, ``"7200"`` or ``7200`` (seconds)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidDuration(f"expected {EXAMPLES}")
    match = PATTERN.fullmatch(str(value).strip().lower())
    if match is None:
        raise InvalidDuration(f"{value!r} is not a duration: use {EXAMPLES}")
    amount, unit = int(match.group(1)), match.group(2) or "s"
    if amount == 0 and not allow_zero:
        raise InvalidDuration("the duration must be longer than zero")
    seconds = amount * SECONDS[unit]
    if seconds > LONGEST.total_seconds():
        raise InvalidDuration(f"the duration may be at most {LONGEST.days}d")
    return timedelta(seconds=seconds)
