"""When a failed delivery is tried again, and whether it is tried again at all.

Retried: timeouts, connection, DNS and TLS errors, 5xx, 408, 425 and 429. Any other answer
outside 2xx (other 4xx, 3xx: redirects are never followed) and a refused URL end the delivery at
once. The wait before retry ``n`` is the subscription's ``retry_schedule[n - 1]`` with ±20 %
jitter, or the endpoint's ``Retry-After`` clamped to the schedule's bounds.
"""

from __future__ import annotations

import random

from webhooks.models import ErrorClass
from webhooks.sender import Outcome

RETRYABLE_STATUSES = frozenset({408, 425, 429})
RETRYABLE_ERRORS = frozenset(
    {ErrorClass.TIMEOUT, ErrorClass.CONNECTION, ErrorClass.DNS, ErrorClass.TLS}
)
JITTER = 0.2


def is_retryable(outcome: Outcome) -> bool:
    if outcome.status is None:
        return outcome.error_class in RETRYABLE_ERRORS
    return outcome.status >= 500 or outcome.status in RETRYABLE_STATUSES


def retry_delay(
    schedule: list[int], attempt: int, retry_after: float | None = None
) -> float | None:
    """Seconds to wait after failed attempt number ``attempt`` (1-based); None when the
    schedule is exhausted."""
    if attempt > len(schedule):
        return None
    if retry_after is not None:
        return float(min(max(retry_after, min(schedule)), max(schedule)))
    base = schedule[attempt - 1]
    return base * random.uniform(1 - JITTER, 1 + JITTER)  # noqa: S311 - jitter, not crypto


def error_class_of(outcome: Outcome) -> str:
    """The recorded error class of an outcome ("" for a 2xx)."""
    if outcome.status is None:
        return outcome.error_class
    if outcome.status >= 500:
        return ErrorClass.HTTP_5XX
    if outcome.status >= 400:
        return ErrorClass.HTTP_4XX
    if outcome.status >= 300:
        return ErrorClass.HTTP_3XX
    return ""


def describe(outcome: Outcome) -> str:
    """A short human description of a failed outcome, for ``last_error``."""
    if outcome.status is None:
        return f"{outcome.error_class}: {outcome.error}"
    excerpt = " ".join(outcome.body.split())[:200]
    return f"HTTP {outcome.status}" + (f": {excerpt}" if excerpt else "")
