"""Reading a Kafka message as an event envelope, or the reason it cannot be one (the headers
a quarantined message carries)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import orjson
from confluent_kafka import Message

from events.envelope import EnvelopeError, from_structured
from events.registry import CompiledType
from events.services import event_validate


def quarantine_headers(message: Message, reason: str) -> list[tuple[str, bytes]]:
    return [
        *(message.headers() or []),
        ("x-quarantine-reason", reason[:1000].encode()),
        ("x-original-topic", message.topic().encode()),
        ("x-original-partition", str(message.partition()).encode()),
        ("x-original-offset", str(message.offset()).encode()),
    ]


# a run of 19 digits or more may be a number orjson reads differently (see ``loads``): found
# as a run of "0" once every digit is mapped to "0" (a translate is far cheaper than a regex)
DIGITS_AS_ZERO = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
LONG_NUMBER = b"0" * 19


def loads(value: bytes | None) -> Any:
    """``json.loads``, through orjson (several times faster) where its answer is the same.
    orjson refuses some of what json reads beyond the JSON grammar (NaN, a BOM, UTF-16, lone
    surrogates): json reads those. It reads integers beyond 64 bits as floats, where json
    keeps them whole: a message with a run of 19 digits or more goes to json directly."""
    if isinstance(value, bytes) and LONG_NUMBER not in value.translate(DIGITS_AS_ZERO):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            pass  # json has the last word, and words the reason
    return json.loads(value)


def decode(
    message: Message, types: dict[str, CompiledType] | None = None
) -> tuple[dict[str, Any] | None, str]:
    """The envelope of a message, or None and the reason it cannot be used. ``types`` is the
    registry's table for the batch (``registry.current()``); without it the registry is asked."""
    try:
        document = loads(message.value())
    except (TypeError, ValueError, UnicodeDecodeError) as exc:
        return None, f"not JSON: {exc}"
    except RecursionError:
        return None, "not JSON that can be read: it nests objects or arrays too deeply"
    if not isinstance(document, dict):
        return None, "not an event envelope: the message is not a JSON object"
    if not (document.get("id") and document.get("source") and document.get("type")):
        missing = [name for name in ("id", "source", "type") if not document.get(name)]
        # without them a replay could not be recognised as the same event
        return None, f"not an event envelope: missing {', '.join(missing)}"
    if "time" not in document:
        kind, millis = message.timestamp()
        if millis > 0:
            document["time"] = datetime.fromtimestamp(millis / 1000, tz=UTC).isoformat()
    try:
        envelope = from_structured(document, default_source="")
    except EnvelopeError as exc:
        return None, f"not an event envelope: {exc}"
    problems = event_validate(envelope, lookup=None if types is None else types.get)
    if problems:
        return None, "; ".join(f"{p['pointer']}: {p['detail']}" for p in problems)
    return envelope, ""


def coordinates(message: Message) -> tuple[str, int, int]:
    return message.topic(), message.partition(), message.offset()
