"""The one path walker, with MongoDB's array semantics: what a dotted path reaches in a stored
event (``reach``), and the cheap case of a path through sub-documents only (``plain_value``)."""

from __future__ import annotations

from typing import Any

# A path that reaches nothing (a missing field, or a scalar on the way).
MISSING = object()
# What a path reached: pairs of a value and whether it is an array the path ended at by name,
# whose elements most operators also try.
Reached = list[tuple[Any, bool]]

# --- paths


def position(part: str) -> int:
    """The array position a path part names, or -1: "0" and "12" do, "01" and "-1" do not."""
    if part.isascii() and part.isdigit() and (part == "0" or not part.startswith("0")):
        return int(part)
    return -1


def reach(value: Any, parts: list[str], positions: list[int], start: int, out: Reached) -> None:
    """Add to ``out`` every value ``parts[start:]`` reaches from ``value``."""
    for index in range(start, len(parts)):
        if isinstance(value, dict):
            value = value.get(parts[index], MISSING)
        elif isinstance(value, list):
            reach_across(value, parts, positions, index, out)
            return
        else:
            out.append((MISSING, False))
            return
    out.append((value, isinstance(value, list)))


def reach_across(
    array: list, parts: list[str], positions: list[int], index: int, out: Reached
) -> None:
    """An array met before the path ends: its sub-documents take the rest of the path by name
    and, when ``parts[index]`` is a position, the element there takes the rest after it."""
    position = positions[index]
    last = index + 1 == len(parts)
    for offset, element in enumerate(array):
        if isinstance(element, dict):
            reach(element, parts, positions, index, out)
        if offset == position:
            if last:
                out.append((element, False))  # picked by position: an array here is one value
            elif isinstance(element, dict):
                reach(element, parts, positions, index + 1, out)
            elif isinstance(element, list):
                reach_across(element, parts, positions, index + 1, out)


# What ``plain_value`` answers for a path that meets an array before its end.
THROUGH_ARRAY = object()


def plain_value(document: Any, parts: list[str]) -> Any:
    """What a path through sub-documents only reaches: the value (an array at the end is the
    value), ``MISSING`` when it runs into a scalar or a missing field, ``THROUGH_ARRAY`` when it
    meets an array on the way (then only ``reach`` knows what it reaches). The routing index
    and rule threshold keys use it; the evaluator uses it for its common case."""
    value: Any = document
    for part in parts:
        if isinstance(value, dict):
            value = value.get(part, MISSING)
        elif isinstance(value, list):
            return THROUGH_ARRAY
        else:
            return MISSING
    return value
