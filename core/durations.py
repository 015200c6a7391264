"""Durations as operators type them: ``90s``, ``30m``, ``2h``, ``1d``, ``1w`` or plain seconds.
A duration longer than ``LONGEST`` (ten years) means ``LONGEST``.

One parser for the REST API (``since``, ``overlap``) and the management commands
(``--since``), so ``replay_dlq --since 2h`` and ``{"since": "2h"}`` mean the same thing.
"""

from __future__ import annotations

import re
from datetime import timedelta

SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# Spelled for JSON Schema too (no flags; ASCII digits and blanks mean the same in both): the
# API's schema states these very patterns.
PATTERN = re.compile(r"[ \t]*([0-9]+)[ \t]*([smhdwSMHDW]?)[ \t]*")
NONZERO_PATTERN = re.compile(r"[ \t]*0*[1-9][0-9]*[ \t]*[smhdwSMHDW]?[ \t]*")
# Far enough back for any dead-letter queue, near enough that ``now - duration`` cannot overflow:
# a longer duration means this long (everything there is).
LONGEST = timedelta(days=3650)
EXAMPLES = "a number of seconds or a number and a unit (s, m, h, d, w), e.g. 90s, 30m, 2h, 1d"


class InvalidDuration(ValueError):
    """The text is not a duration; the message says what is accepted."""


def parse_duration(value: str | int, *, allow_zero: bool = False) -> timedelta:
    """A ``timedelta`` from ``"2h"``, ``"90s"``, ``"7200"`` or ``7200`` (seconds)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidDuration(f"expected {EXAMPLES}")
    match = PATTERN.fullmatch(str(value))
    if match is None:
        raise InvalidDuration(f"{value!r} is not a duration: use {EXAMPLES}")
    digits, unit = match.group(1).lstrip("0"), (match.group(2) or "s").lower()
    if not digits and not allow_zero:
        raise InvalidDuration("the duration must be longer than zero")
    if len(digits) > len(str(int(LONGEST.total_seconds()))):
        return LONGEST  # no need to read a number of a thousand digits to know it is longer
    return min(timedelta(seconds=int(digits or 0) * SECONDS[unit]), LONGEST)
