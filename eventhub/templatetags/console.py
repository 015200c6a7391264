"""Filters of the operator console's templates: figures as operators read them."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.filter
def percent(value: float | None) -> str:
    """A share (0-1) as a percentage, a dash when there is none."""
    return "–" if value is None else f"{value:.1%}"


@register.filter
def milliseconds(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.0f} ms" if value < 10_000 else f"{value / 1000:.1f} s"


@register.filter
def duration(seconds: float | None) -> str:
    """Seconds as the largest units that say it: 42 s, 3 min 5 s, 2 h 10 min, 3 d 4 h."""
    if seconds is None:
        return "–"
    seconds = int(seconds)
    for unit, size, smaller, smaller_size in (
        ("d", 86400, "h", 3600),
        ("h", 3600, "min", 60),
        ("min", 60, "s", 1),
    ):
        if seconds >= size:
            rest = (seconds % size) // smaller_size
            return f"{seconds // size} {unit}" + (f" {rest} {smaller}" if rest else "")
    return f"{seconds} s"


@register.filter
def outcome_rows(deliveries: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [("hour", deliveries["hour"]), ("day", deliveries["day"])]


@register.filter
def other_start(shares: dict[str, float]) -> float:
    """Where the stacked bar's last part starts."""
    return shares["succeeded"] + shares["dead"]
