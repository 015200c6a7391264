"""What an event's data may hold beyond its schema: only what JSON parsers everywhere and
MongoDB can keep.

Valid JSON, valid against ``{"type": "object"}``, and still unusable downstream:

- integers beyond 64 bits: BSON has no type for them, so MongoDB refuses the document;
- object keys containing NUL (``\\u0000``): BSON keys are NUL-terminated;
- ``NaN`` and ``Infinity``: not JSON numbers, so the webhook bodies that carry them are refused
  by standard parsers (JavaScript's, Go's);
- nesting deeper than ``INGEST_MAX_DEPTH`` levels (64): MongoDB stops at 100, and recursive
  code on the way (parsers, the filter evaluator) must never meet an unbounded depth.

Ingest refuses such events with a 422 naming the JSON pointer of each fault, on every door; the
pipeline quarantines the ones written straight to the topic. The walk is iterative, so an event
nested any depth is answered, never a RecursionError.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_REPORTED = 20  # faults listed per event; one is enough to refuse it


def escape(key: str) -> str:
    """A key as a JSON pointer segment (RFC 6901)."""
    if "~" in key or "/" in key:
        return key.replace("~", "~0").replace("/", "~1")
    return key


BEYOND_64_BITS = "is an integer beyond 64 bits, which MongoDB cannot store"
NUL_KEY = "has a key with a NUL character (\\u0000), which MongoDB cannot store"


def _scalar_fault(value: Any) -> str | None:
    kind = type(value)
    if kind is int and not INT64_MIN <= value <= INT64_MAX:
        return BEYOND_64_BITS
    if kind is float and value - value != 0.0:  # NaN and the infinities only
        return f"is {value!r}, which is not a JSON number"
    return None


def storage_problems(value: Any, pointer: str, *, max_depth: int | None = None) -> list[dict]:
    """Faults of ``value`` (found at ``pointer``) as ``{"pointer", "detail"}`` entries.

    On every event of the ingest path and the pipeline, so the loop is written for speed:
    strings, booleans, null and in-range numbers cost one type check each."""
    fault = _scalar_fault(value)
    if fault:
        return [{"pointer": pointer, "detail": fault}]
    kind = type(value)
    if kind is not dict and kind is not list:
        return []
    problems: list[dict[str, str]] = []
    stack: list[tuple[Any, str, int]] = [(value, pointer, 1)]
    while stack and len(problems) < MAX_REPORTED:
        container, where, depth = stack.pop()
        if depth > 1 and max_depth is None:
            # read once nesting is met (a settings read costs more than a flat event's walk)
            max_depth = settings.INGEST_MAX_DEPTH
        if depth > 1 and depth > max_depth:
            problems.append({"pointer": where, "detail": f"nests deeper than {max_depth} levels"})
            continue
        if type(container) is dict:
            items = container.items()
        else:
            items = enumerate(container)
        for key, item in items:
            if type(key) is str and "\x00" in key:
                problems.append({"pointer": f"{where}/{escape(key)}", "detail": NUL_KEY})
            kind = type(item)
            if kind is str or item is None or kind is bool:
                continue
            if kind is int:
                if INT64_MIN <= item <= INT64_MAX:
                    continue
            elif kind is float:
                if item - item == 0.0:
                    continue
            elif kind is dict or kind is list:
                stack.append((item, f"{where}/{escape(str(key))}", depth + 1))
                continue
            fault = _scalar_fault(item)
            if fault:
                problems.append({"pointer": f"{where}/{escape(str(key))}", "detail": fault})
    if len(problems) > 1:
        problems.sort(key=lambda p: p["pointer"])
    return problems[:MAX_REPORTED]


def envelope_problems(envelope: dict[str, Any]) -> list[dict[str, str]]:
    """Faults of the parts of an envelope that are stored as they come: data and metadata."""
    problems = storage_problems(envelope.get("data"), "/data")
    metadata = envelope.get("metadata")
    if metadata:
        problems += storage_problems(metadata, "/metadata")
    return problems
