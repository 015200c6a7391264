"""Typed readers for settings that come from the environment.

Each helper returns the default when the variable is unset or empty and raises
``ImproperlyConfigured`` naming the variable when the value cannot be parsed, so a typo
in the environment stops the process at start-up instead of being silently ignored.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

from django.core.exceptions import ImproperlyConfigured

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _read(name: str, default: T, parse: Callable[[str], T], kind: str) -> T:
    raw = os.environ.get(name, "").strip()
    if raw == "":
        return default
    try:
        return parse(raw)
    except (TypeError, ValueError) as exc:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a valid {kind}: {exc}") from exc


def env_str(name: str, default: str = "") -> str:
    return _read(name, default, str, "string")


def env_int(
    name: str, default: int, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    value = _read(name, default, int, "integer")
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name}={value} must be at most {maximum}")
    return value


def env_float(name: str, default: float) -> float:
    return _read(name, default, float, "number")


def _parse_bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"expected one of {sorted(_TRUE | _FALSE)}")


def env_bool(name: str, default: bool) -> bool:
    return _read(name, default, _parse_bool, "boolean")


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    """A comma-separated list; blanks around items are dropped."""

    def parse(raw: str) -> list[str]:
        return [item.strip() for item in raw.split(",") if item.strip()]

    return _read(name, list(default or []), parse, "comma-separated list")
