"""Values compared as mongod compares them: BSON's type brackets and order, dates normalised,
booleans apart from numbers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

# --- values


def bracket(value: Any) -> str | None:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, datetime):
        return "date"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return None


# BSON's order of the brackets, used where values of different brackets meet inside arrays
# and sub-documents that are compared.
RANK = {"null": 5, "number": 10, "string": 15, "object": 20, "array": 25, "bool": 40, "date": 45}


def normalise_date(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def equal(left: Any, right: Any) -> bool:
    left_kind, right_kind = bracket(left), bracket(right)
    if left_kind != right_kind:
        return False
    if left_kind == "date":
        return normalise_date(left) == normalise_date(right)
    if left_kind == "object":
        # MongoDB compares embedded documents field by field, in order
        return list(left.keys()) == list(right.keys()) and all(
            equal(left[k], right[k]) for k in left
        )
    if left_kind == "array":
        return len(left) == len(right) and all(
            equal(a, b) for a, b in zip(left, right, strict=True)
        )
    return left == right


def order(left: Any, right: Any) -> int | None:
    """BSON's order of two values of one bracket (negative, zero, positive); None when a value
    of a type events cannot carry is met."""
    kind = bracket(left)
    if kind in ("object", "array"):
        left_items = left.items() if kind == "object" else enumerate(left)
        right_items = right.items() if kind == "object" else enumerate(right)
        for (left_name, left_value), (right_name, right_value) in zip(
            left_items, right_items, strict=False
        ):
            # element by element: the bracket first, then the field name, then the value
            left_kind, right_kind = bracket(left_value), bracket(right_value)
            if left_kind is None or right_kind is None:
                return None
            if left_kind != right_kind:
                return RANK[left_kind] - RANK[right_kind]
            if left_name != right_name:
                return -1 if left_name < right_name else 1
            difference = order(left_value, right_value)
            if difference != 0:
                return difference
        return len(left) - len(right)
    if kind == "null":
        return 0
    if kind is None:
        return None
    left, right = normalise_date(left), normalise_date(right)
    return (left > right) - (left < right)
