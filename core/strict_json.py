"""JSON as RFC 8259 defines it, for request bodies: what ``json.loads`` reads beyond it is
refused with a ``ValueError`` that says why, never let through and never a server error.

- ``NaN``, ``Infinity`` and ``-Infinity`` are not JSON: standard parsers downstream (the
  webhook receivers' JavaScript or Go) would refuse the bodies that carry them.
- A body nested deeper than Python's parser can follow raises ``RecursionError`` in
  ``json.loads``; it is refused here as too deep (the event's own limit, ``INGEST_MAX_DEPTH``,
  is far below that and is reported with its JSON pointer by ``events.storable``).
"""

from __future__ import annotations

import json
from typing import Any


class NotJSON(ValueError):
    """The text is not JSON (or nests too deep to read); the message says why."""


def _refuse_constant(name: str) -> Any:
    raise NotJSON(f"{name} is not a JSON number")


def loads(text: str | bytes) -> Any:
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except RecursionError as exc:
        raise NotJSON("it nests objects or arrays too deeply to be read") from exc
