"""The event envelope: every accepted form mapped onto CloudEvents 1.0 attributes.

Accepted forms:
- structured CloudEvents JSON (``application/cloudevents+json``), recognised by ``specversion``;
- binary mode: ``ce-*`` HTTP headers carry the attributes and the body is the data;
- the flat form of existing producers (``event_type``, ``user_id``, ``amount``, ``timestamp``,
  ``data``/``payload``, ``severity``, ``source``, ``metadata``, ``trace_id``, ``session_id``).

The result is a plain dict with ``id``, ``source``, ``type``, ``specversion``, ``time``,
``subject``, ``datacontenttype``, ``dataschema``, ``partitionkey``, ``data`` and EventHub's
extensions ``severity`` (1-10), ``traceid``, ``sessionid`` and ``metadata``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

SPECVERSION = "1.0"
STRING_ATTRIBUTES = (
    "id",
    "source",
    "type",
    "subject",
    "dataschema",
    "partitionkey",
    "traceid",
    "sessionid",
    "datacontenttype",
)
EXTENSION_NAME = re.compile(r"^[a-z0-9]{1,20}$")
# "data" and the names every event carries, accepted without the pattern (which they all match)
KNOWN_NAMES = frozenset((*STRING_ATTRIBUTES, "data", "specversion", "time", "severity", "metadata"))
MAX_STRING = 1024


class EnvelopeError(ValueError):
    """The event cannot be read; ``errors`` lists ``{"pointer", "detail"}`` entries."""

    def __init__(self, errors: list[dict[str, str]]):
        super().__init__("; ".join(f"{e['pointer']}: {e['detail']}" for e in errors))
        self.errors = errors

    @classmethod
    def at(cls, pointer: str, detail: str) -> EnvelopeError:
        return cls([{"pointer": pointer, "detail": detail}])


def parse_time(value: Any, pointer: str) -> str:
    """An RFC 3339 timestamp in UTC from an ISO string or epoch seconds / milliseconds."""
    if isinstance(value, bool):
        raise EnvelopeError.at(pointer, "must be an RFC 3339 timestamp")
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 1e11 else value
        try:
            moment = datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise EnvelopeError.at(pointer, "is not a valid epoch timestamp") from exc
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError as exc:
            raise EnvelopeError.at(pointer, "must be an RFC 3339 timestamp") from exc
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    else:
        raise EnvelopeError.at(pointer, "must be an RFC 3339 timestamp")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def now_rfc3339() -> str:
    return datetime.now(tz=UTC).isoformat().replace("+00:00", "Z")


def _string(value: Any, pointer: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise EnvelopeError.at(pointer, "must be a string")
    text = str(value)
    if not text:
        raise EnvelopeError.at(pointer, "must not be empty")
    if len(text) > MAX_STRING:
        raise EnvelopeError.at(pointer, f"must be at most {MAX_STRING} characters")
    return text


def _severity(value: Any, pointer: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise EnvelopeError.at(pointer, "must be a whole number from 1 to 10")
    if not 1 <= value <= 10:
        raise EnvelopeError.at(pointer, "must be from 1 to 10")
    return int(value)


def _finish(envelope: dict[str, Any], *, default_source: str) -> dict[str, Any]:
    """Fill defaults and check attribute types; the pointers name the envelope's fields."""
    errors: list[dict[str, str]] = []
    if not envelope.get("type"):
        errors.append({"pointer": "/type", "detail": "is required"})
    if "id" not in envelope:
        envelope["id"] = str(uuid.uuid4())
    envelope.setdefault("source", default_source)
    envelope["specversion"] = SPECVERSION
    envelope.setdefault("datacontenttype", "application/json")
    for name in STRING_ATTRIBUTES:
        value = envelope.get(name)
        if value is None or (type(value) is str and 0 < len(value) <= MAX_STRING):
            continue  # absent, or a string as it should be (most are)
        try:
            envelope[name] = _string(value, f"/{name}")
        except EnvelopeError as exc:
            errors.extend(exc.errors)
    if envelope.get("time") is not None:
        try:
            envelope["time"] = parse_time(envelope["time"], "/time")
        except EnvelopeError as exc:
            errors.extend(exc.errors)
    if envelope.get("severity") is not None:
        try:
            envelope["severity"] = _severity(envelope["severity"], "/severity")
        except EnvelopeError as exc:
            errors.extend(exc.errors)
    if envelope.get("time") is None:
        envelope["time"] = now_rfc3339()
    metadata = envelope.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        errors.append({"pointer": "/metadata", "detail": "must be an object"})
    if errors:
        raise EnvelopeError(errors)
    if None in envelope.values():
        return {key: value for key, value in envelope.items() if value is not None}
    return envelope


def from_structured(document: Mapping[str, Any], *, default_source: str) -> dict[str, Any]:
    """A structured-mode CloudEvent (``data_base64`` is not accepted: JSON data only)."""
    if document.get("specversion") != SPECVERSION:
        raise EnvelopeError.at("/specversion", f"must be {SPECVERSION!r}")
    if "data_base64" in document:
        raise EnvelopeError.at("/data_base64", "binary data is not accepted; send JSON data")
    envelope = dict(document)
    for name in envelope:
        if name not in KNOWN_NAMES and not EXTENSION_NAME.match(name):
            raise EnvelopeError.at(f"/{name}", "is not a valid CloudEvents attribute name")
    return _finish(envelope, default_source=default_source)


FLAT_FIELDS = {
    "event_type": "type",
    "type": "type",
    "id": "id",
    "event_id": "id",
    "source": "source",
    "user_id": "subject",
    "subject": "subject",
    "timestamp": "time",
    "time": "time",
    "severity": "severity",
    "metadata": "metadata",
    "trace_id": "traceid",
    "session_id": "sessionid",
    "partition_key": "partitionkey",
}


def from_flat(document: Mapping[str, Any], *, default_source: str) -> dict[str, Any]:
    """The flat form; ``amount`` joins the data, which comes from ``data`` or ``payload``."""
    if "data" in document and "payload" in document:
        raise EnvelopeError.at("/payload", "send either data or payload, not both")
    unknown = set(document) - set(FLAT_FIELDS) - {"data", "payload", "amount"}
    if unknown:
        raise EnvelopeError.at(f"/{sorted(unknown)[0]}", "is not a field of the flat form")
    envelope: dict[str, Any] = {}
    for field, attribute in FLAT_FIELDS.items():
        if document.get(field) is not None:
            envelope[attribute] = document[field]
    data = document.get("data", document.get("payload"))
    if "amount" in document:
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise EnvelopeError.at("/amount", "amount needs the data to be an object")
        data = {**data, "amount": document["amount"]}
    envelope["data"] = data if data is not None else {}
    return _finish(envelope, default_source=default_source)


def from_document(document: Any, *, default_source: str) -> dict[str, Any]:
    """One JSON event in structured CloudEvents or flat form."""
    if not isinstance(document, dict):
        raise EnvelopeError.at("/", "an event must be a JSON object")
    if "specversion" in document:
        return from_structured(document, default_source=default_source)
    return from_flat(document, default_source=default_source)


def from_binary(
    headers: Mapping[str, str], data: Any, *, content_type: str, default_source: str
) -> dict[str, Any]:
    """Binary mode: attributes from ``ce-*`` headers, the body is the data."""
    envelope: dict[str, Any] = {}
    for name, value in headers.items():
        lowered = name.lower()
        if lowered.startswith("ce-"):
            envelope[lowered[3:]] = value
    envelope["datacontenttype"] = content_type or "application/json"
    if "severity" in envelope:
        try:
            envelope["severity"] = int(envelope["severity"])
        except ValueError as exc:
            raise EnvelopeError.at("/severity", "must be a whole number from 1 to 10") from exc
    envelope["data"] = data
    return from_structured(envelope, default_source=default_source)


def kafka_headers(envelope: Mapping[str, Any], request_id: str) -> list[tuple[str, bytes]]:
    """CloudEvents Kafka binding headers (structured mode) plus the request id."""
    headers = [("content-type", b"application/cloudevents+json")]
    for name in ("id", "source", "type", "specversion", "time", "subject", "partitionkey"):
        value = envelope.get(name)
        if value is not None:
            headers.append((f"ce_{name}", str(value).encode()))
    headers.append(("x-request-id", request_id.encode()))
    return headers


def partition_key(envelope: Mapping[str, Any]) -> str | None:
    """Kafka key: the CloudEvents ``partitionkey``, else the subject (user id)."""
    return envelope.get("partitionkey") or envelope.get("subject")
