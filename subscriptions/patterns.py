"""Event-type patterns of subscriptions: exact names and wildcards.

A pattern is an exact type name (``payment.failed``), a prefix wildcard (``order.*``, every
type under ``order.``, at any depth) or ``*`` (every type).
"""

from __future__ import annotations

import re

PATTERN_RE = re.compile(r"^(\*|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*(\.\*)?)$")


def is_valid_pattern(pattern: str) -> bool:
    return bool(PATTERN_RE.match(pattern))


def pattern_matches(pattern: str, event_type: str) -> bool:
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        return event_type.startswith(pattern[:-1])
    return pattern == event_type
